"""Tabulated log heat kernels against independent evaluations of the kernel.

Routes: the Gegenbauer series at a much tighter truncation (1e-14; independent of the short-time form
that the table interpolates below the switch), the image sum of the circle, finite differences of the
table itself (its slope is the derivative of its cubic).
"""
import math

import numpy as np
import pytest

from opdiff.manifolds import FlatTorus, Hypersphere, circle_log_heat_kernel, sphere_log_heat_kernel, switch_time
from opdiff.manifolds.heat_tables import HeatTable, circle_heat_table, hermite_coefficients, sphere_heat_table, tabulate


def _u_grid(s):
    # dense everywhere, and geometric into the peak at u = 1 (width ~ s in 1 - u)
    return np.concatenate([np.linspace(-1.0, 1.0, 40001), 1.0 - s * np.geomspace(1e-5, 300.0, 4000)])


def _theta(u):
    return 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * (1.0 - u), 0.0, 1.0)))


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("s", [2e-3, 0.6 * switch_time(2), 1.05 * switch_time(2), 0.05, 0.4, 3.0])
def test_sphere_table_is_within_tol_of_the_peak_against_the_tight_series(n, s):
    table = sphere_heat_table(n, s, "auto", 1e-8)
    assert table.kind == "dot" and table.coefficients.shape[0] == 4
    u = _u_grid(s)
    exact, _ = sphere_log_heat_kernel(_theta(u), s, n, "series", 1e-14)
    approx, _ = table(u)
    peak = sphere_log_heat_kernel(np.zeros(1), s, n, "series", 1e-14)[0][0]
    # the documented contract of the kernel: |p_hat - p| <= tol p_s(0)
    assert np.max(np.abs(np.exp(approx - peak) - np.exp(exact - peak))) <= 1e-8
    assert np.all(np.isfinite(approx))


@pytest.mark.parametrize("s", [1e-6, 1e-4])
def test_sphere_table_resolves_peaks_much_narrower_than_an_interval(s):
    table = sphere_heat_table(2, s, "auto", 1e-8)
    u = _u_grid(s)
    reference, _ = sphere_log_heat_kernel(_theta(u), s, 2)  # short-time form: the only route at such s
    approx, _ = table(u)
    peak = reference.max()
    assert np.max(np.abs(np.exp(approx - peak) - np.exp(reference - peak))) <= 0.5e-8


@pytest.mark.parametrize("s", [0.003, 0.05, 1.0])
def test_table_slope_is_the_derivative_of_its_values_and_close_to_the_kernel_slope(s):
    table = sphere_heat_table(2, s, "auto", 1e-8)
    u = np.linspace(-0.99, 0.999, 2001)
    f, g = table(u)
    h = 1e-7
    fd = (table(u + h)[0] - table(u - h)[0]) / (2 * h)
    # central differences of a piecewise cubic: O(h^2 |f'''|) plus rounding |f| 1e-16 / h, and at the
    # knots a jump of f'' times h (the cubic is C^1)
    scale = 1.0 + np.abs(f)
    np.testing.assert_allclose(fd, g, atol=1e-5 * scale.max() / s)
    _, g_exact = sphere_log_heat_kernel(_theta(u), s, 2)
    weight = np.exp(f - f.max())  # where the kernel matters (above 1e-6 of its peak) the slope is within 1e-5 / s
    relevant = weight > 1e-6
    assert np.max(np.abs(g - g_exact)[relevant]) * s < 1e-5


@pytest.mark.parametrize("s", [1e-3, 0.05, 0.5, 1.4, 1.6, 10.0])
def test_circle_table_against_the_image_sum(s):
    table = circle_heat_table(s, "auto", 1e-12)
    assert table.kind == "difference"
    delta = np.concatenate([np.linspace(0.0, 2 * math.pi, 40001), np.sqrt(s) * np.geomspace(1e-6, 1.0, 500)])
    exact, slope = circle_log_heat_kernel(delta, s, "image", 1e-16)  # image sum: all terms positive
    approx, approx_slope = table(delta)
    peak = circle_log_heat_kernel(np.zeros(1), s, "image", 1e-16)[0][0]
    assert np.max(np.abs(np.exp(approx - peak) - np.exp(exact - peak))) <= 1e-12


def test_manifold_hooks():
    assert Hypersphere(1).heat_table(0.1) is None  # the circle as S^1 keeps the reference path
    assert Hypersphere(2).heat_table(0.1) is sphere_heat_table(2, 0.1, "auto", 1e-8)  # cached
    assert FlatTorus(3).heat_table(0.2).kind == "difference"
    assert Hypersphere(3, method="series").heat_table(0.01).kind == "dot"


def test_hermite_cubic_reproduces_cubics_and_tabulate_gives_up():
    nodes = np.linspace(-1.0, 2.0, 7)
    table = HeatTable("dot", hermite_coefficients(nodes**3 - nodes, 3 * nodes**2 - 1, 0.5), -1.0, 2.0)
    z = np.linspace(-1.0, 2.0, 101)
    np.testing.assert_allclose(table(z)[0], z**3 - z, atol=1e-13)
    np.testing.assert_allclose(table(z)[1], 3 * z**2 - 1, atol=1e-12)
    # a kink cannot be interpolated to 1e-15 by cubics on <= 2^16 intervals: None (reference path)
    assert tabulate(lambda z: (-np.abs(z - 0.1234567), -np.sign(z - 0.1234567)), -1.0, 1.0, 1e-15, "dot") is None
