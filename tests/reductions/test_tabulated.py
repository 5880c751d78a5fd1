"""The table forms on real heat-kernel tables (S^2 and T^3) against a dense NumPy softmax of the same table.

Independent route: all pairs evaluated with ``HeatTable.__call__`` (NumPy), ``scipy.special.logsumexp``
and explicit softmax weights. Both routes use the same table, so agreement is to rounding (1e-12
relative in float64; float32 outputs are rounded float64 results, 1e-6).
"""
import math

import numpy as np
import pytest
from scipy.special import logsumexp

from opdiff.backend import chunk_budget
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.reductions import CoordinateTable, DotProductTable, reduce


def _dense(table, queries, points, log_weights, gradient):
    queries, points = queries.astype(np.float64), points.astype(np.float64)
    if table.kind == "dot":
        u = queries @ points.T
        f, g = table(u)
        logits = f + log_weights
    else:
        d = queries[:, None, :] - points[None, :, :]
        f, g = table(np.abs(d))
        logits = f.sum(-1) + log_weights
        g = g * np.where(d >= 0, 1.0, -1.0)
    log_sum = logsumexp(logits, axis=1)
    pi = np.exp(logits - log_sum[:, None])
    if not gradient:
        return log_sum, pi @ points
    if table.kind == "dot":
        return log_sum, (pi * g) @ points  # the Euclidean gradient of log k in the query, f'(u) y
    return log_sum, np.einsum("mn,mnk->mk", pi, g)


def _reduce(table, queries, points, log_weights=None, gradient=False, chunk_bytes=None):
    form = (DotProductTable if table.kind == "dot" else CoordinateTable)(table)
    return reduce(form, queries, points, log_weights=log_weights, gradient=gradient, backend="numba",
                  chunk_bytes=chunk_bytes)


def _case(kind, n, m, dtype, seed):
    rng = np.random.default_rng(seed)
    manifold = Hypersphere(2) if kind == "dot" else FlatTorus(3)
    points = manifold.random_uniform(n, rng, dtype)
    queries = manifold.random_uniform(m, rng, dtype)
    log_weights = np.log(rng.uniform(0.2, 1.0, n))
    log_weights[rng.uniform(size=n) < 0.3] = -np.inf  # zero weights
    log_weights[: n // 2] = -np.inf  # the first tiles entirely zero (with a small tile)
    return manifold, points, queries, log_weights


@pytest.mark.parametrize("kind", ["dot", "difference"])
@pytest.mark.parametrize("gradient", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("s", [0.004, 0.3])
def test_matches_the_dense_softmax(kind, gradient, dtype, s):
    manifold, points, queries, log_weights = _case(kind, 300, 37, dtype, 1)
    table = manifold.heat_table(s)
    log_sum, mean = _reduce(table, queries, points, log_weights, gradient)
    assert log_sum.dtype == dtype and mean.dtype == dtype
    expected_log, expected_mean = _dense(table, queries, points, log_weights, gradient)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(log_sum, expected_log, rtol=rtol, atol=rtol)
    scale = np.abs(expected_mean).max()
    np.testing.assert_allclose(mean, expected_mean, rtol=rtol, atol=rtol * scale)
    # a tiny chunk budget (16-point tiles: online maxima across many tiles, whole zero-weight tiles) changes nothing
    with chunk_budget(1024):
        tiny_log, tiny_mean = _reduce(table, queries, points, log_weights, gradient)
    np.testing.assert_allclose(tiny_log, log_sum, rtol=10 * rtol, atol=10 * rtol)
    np.testing.assert_allclose(tiny_mean, mean, rtol=10 * rtol, atol=10 * rtol * scale)


def test_uniform_weights_and_far_queries():
    # a peaked kernel and queries far from all data: log-sums far below zero stay finite (online max)
    manifold = Hypersphere(2)
    points = np.tile([[0.0, 0.0, 1.0]], (5, 1))
    queries = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    table = manifold.heat_table(1e-4)
    log_sum, mean = _reduce(table, queries, points)
    expected, _ = _dense(table, queries, points, np.zeros(5), False)
    np.testing.assert_allclose(log_sum, expected, rtol=1e-12)
    assert np.all(log_sum < -1e3)
    # every point is the north pole, so the softmax-weighted mean is exactly it, however small the weights
    np.testing.assert_allclose(mean, np.tile([[0.0, 0.0, 1.0]], (2, 1)), rtol=0, atol=1e-15)


def test_bad_inputs():
    table = Hypersphere(2).heat_table(0.1)
    x = Hypersphere(2).random_uniform(4, 0)

    class Table:  # a table object with chosen fields
        def __init__(self, coefficients, lo, inv_step):
            self.coefficients, self.lo, self.inv_step = coefficients, lo, inv_step

    with pytest.raises(ValueError, match="table"):
        DotProductTable(Table(table.coefficients[:3], table.lo, table.inv_step))
    with pytest.raises(ValueError, match="inv_step"):
        DotProductTable(Table(table.coefficients, table.lo, -1.0))
    with pytest.raises(ValueError, match="inv_step"):
        CoordinateTable(Table(table.coefficients, math.nan, 1.0))
    with pytest.raises(ValueError, match="points"):
        _reduce(table, x, x[:, :2])
    with pytest.raises(ValueError, match="log_weights"):
        _reduce(table, x, x, np.full(4, -np.inf))
