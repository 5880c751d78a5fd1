"""Log heat kernels tabulated as piecewise cubics, for the table forms of ``opdiff.reductions``.

The tables feed :class:`~opdiff.reductions.DotProductTable` and :class:`~opdiff.reductions.CoordinateTable`.

For a fixed heat time ``s`` the ``S^n`` kernel is a function of ``u = x . y`` only and the flat-torus
kernel a product of circle kernels of ``|x_k - y_k|`` (in ``[0, 2 pi)`` for angle coordinates). Each
log-kernel ``f`` is tabulated on a uniform grid as a cubic Hermite interpolant of the reference values
and derivatives (:mod:`opdiff.manifolds.heat_sphere`, :mod:`opdiff.manifolds.heat_circle`).

In ``u`` the short-time log-kernel is ``-theta(u)^2 / 4 s`` plus smooth terms, and ``theta^2`` is
analytic at ``u = 1`` (``2 (1 - u) + (1 - u)^2 / 3 + ...``), so cubics in ``u`` resolve the peak with
an interval length that shrinks only like ``s^{1/4}``; on the circle ``f`` is nearly quadratic in the
angle. The grid starts at 64 intervals and is doubled until, on a check grid of 4 points per
interval (where cubic Hermite errors peak) and 60 geometrically spaced points into each end interval
(the peak can be narrower than one interval), ``|exp(f_hat - f_peak) - exp(f - f_peak)| <= tol / 2``
(the error of the tabulated kernel relative to its peak). For the sphere the reference is evaluated
at ``tol / 2`` as well, so the tabulated kernel keeps the documented contract ``|p_hat - p| <= tol
p_s(0)``; for the torus ``tol`` is the peak-relative accuracy of each circle factor.

Tables are cached per ``(manifold parameters, s)`` (a few KiB each; the cache keeps the last 64).
``None`` is returned when ``2^16`` intervals do not reach the tolerance (the caller then uses the
reference path).
"""
import functools
import math
from typing import NamedTuple

import numpy as np

from .heat_circle import circle_log_heat_kernel
from .heat_sphere import sphere_log_heat_kernel

_FIRST_INTERVALS = 64
_MAX_INTERVALS = 2**16
_CHECKS = np.array([0.125, 0.375, 0.625, 0.875])  # check points per interval
_END_OFFSETS = np.geomspace(1e-9, 0.5, 60)


class HeatTable(NamedTuple):
    """Piecewise cubic ``f`` on ``[lo, lo + n_int / inv_step]``; ``coefficients (4, n_int)`` in ``tau``.

    ``kind`` says how the variable is formed: ``"dot"`` (``u = x . y``) or ``"difference"``
    (``|x_k - y_k|``, the log-kernel summed over coordinates).
    """
    kind: str
    coefficients: np.ndarray
    lo: float
    inv_step: float

    def __call__(self, z):
        """Evaluate ``(f(z), f'(z))`` (NumPy; the test hook of the Numba kernels)."""
        z = np.asarray(z, dtype=np.float64)
        n_int = self.coefficients.shape[1]
        position = np.clip((z - self.lo) * self.inv_step, 0.0, n_int)
        index = np.minimum(position.astype(np.int64), n_int - 1)
        tau = position - index
        c0, c1, c2, c3 = self.coefficients[:, index]
        return c0 + tau * (c1 + tau * (c2 + tau * c3)), (c1 + tau * (2 * c2 + 3 * tau * c3)) * self.inv_step


def hermite_coefficients(values, slopes, step):
    """Cubic Hermite coefficients ``(4, n_int)`` in ``tau`` from node values and slopes (``n_int + 1``)."""
    f0, f1 = values[:-1], values[1:]
    d0, d1 = slopes[:-1] * step, slopes[1:] * step
    return np.ascontiguousarray(np.stack([f0, d0, 3 * (f1 - f0) - 2 * d0 - d1, 2 * (f0 - f1) + d0 + d1]))


def tabulate(function, lo, hi, tol, kind, end_slopes=None):
    """Refine a cubic Hermite table of ``function`` on ``[lo, hi]`` until the peak-relative check passes.

    Parameters
    ----------
    function : callable
        ``z (k,) -> (f (k,), f' (k,))`` (float64 log-kernel and its derivative).
    lo, hi : float
    tol : float
        Target ``max |exp(f_hat - f_max) - exp(f - f_max)|`` over the check grid.
    kind : str
        Stored in the :class:`HeatTable`.
    end_slopes : callable, optional
        ``(nodes, values, slopes) -> slopes``: adjust the node slopes (e.g. a singular end point).

    Returns
    -------
    HeatTable or None
    """
    n_int = _FIRST_INTERVALS
    while n_int <= _MAX_INTERVALS:
        nodes = np.linspace(lo, hi, n_int + 1)
        values, slopes = function(nodes)
        if end_slopes is not None:
            slopes = end_slopes(nodes, values, slopes)
        step = (hi - lo) / n_int
        table = HeatTable(kind, hermite_coefficients(values, slopes, step), float(lo), float(n_int / (hi - lo)))
        # 4 points per interval, and geometric offsets into both end intervals (kernel peaks narrower
        # than one interval sit at an end: u = 1 on the sphere, delta = 0 on the circle)
        offsets = step * _END_OFFSETS
        checks = np.concatenate([(nodes[:-1, None] + step * _CHECKS[None, :]).ravel(), lo + offsets, hi - offsets])
        exact, _ = function(checks)
        approx, _ = table(checks)
        peak = max(float(np.max(values)), float(np.max(exact)))
        error = np.abs(np.exp(approx - peak) - np.exp(exact - peak))
        if np.all(np.isfinite(approx)) and np.all(np.isfinite(table.coefficients)) and float(np.max(error)) <= tol:
            return table
        n_int *= 2
    return None


@functools.lru_cache(maxsize=64)
def sphere_heat_table(n, s, method, tol):
    """Table of ``u -> log p_s(arccos u)`` on ``S^n`` over ``u in [-1, 1]`` (``kind="dot"``), or None.

    The slope at ``u = -1`` (the antipode, where ``d theta / du`` is infinite and the short-time form
    has its caustic) is the secant slope of the first interval wherever the kernel there is below
    ``tol`` of its peak: its value matters to the contract, its reference slope (up to ``pi / 2 s``
    over a floored sine) would only make the cubic overshoot.
    """

    def function(u):
        theta = 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * (1.0 - u), 0.0, 1.0)))  # accurate near u = 1
        return sphere_log_heat_kernel(theta, s, n, method, 0.5 * tol)

    def end_slopes(nodes, values, slopes):
        if values[0] - np.max(values) < math.log(tol) or not np.isfinite(slopes[0]):
            slopes = slopes.copy()
            slopes[0] = (values[1] - values[0]) / (nodes[1] - nodes[0])
        return slopes

    return tabulate(function, -1.0, 1.0, 0.5 * tol, "dot", end_slopes)


@functools.lru_cache(maxsize=64)
def circle_heat_table(s, method, tol):
    """Table of ``delta -> log p_s(delta)`` on the circle over ``delta in [0, 2 pi]`` (``kind="difference"``)."""

    def function(delta):
        return circle_log_heat_kernel(delta, s, method)

    return tabulate(function, 0.0, 2.0 * math.pi, tol, "difference")
