"""Fused Numba reductions for kernels tabulated as piecewise cubics (isotropic and separable kernels).

Heat kernels of the sphere and the torus depend on the pair only through one scalar per pair
(``u = x . y`` on ``S^n``) or one scalar per coordinate (``|x_k - y_k|`` on the flat torus). For a
fixed heat time the log-kernel ``f`` is tabulated once as a piecewise cubic on a uniform grid of
``[lo, lo + n_int / inv_step]`` (``coefficients (4, n_int)``: on interval ``k`` with local variable
``tau = (z - lo) * inv_step - k`` in ``[0, 1]``, ``f = c0 + tau (c1 + tau (c2 + tau c3))``; the
manifolds build the tables, :mod:`opdiff.manifolds.heat_tables`). The kernels below then evaluate,
per query, in one pass over the data with an online maximum (as the small-``D`` kernel of
:mod:`opdiff.reductions._numba`, whose vectorised exponential and tile maximum they reuse):

``dot_product_reduction``  ``log k(x, y) = f(x . y)``:
    ``log_sum = log sum_i w_i k_i``; ``mean`` = ``sum_i pi_i y_i`` (``gradient=False``) or, with
    ``g = f'``, the ``D + 1`` columns ``[sum_i pi_i g_i y_i, sum_i pi_i g_i u_i]`` (``gradient=True``),
    from which ``grad_x log sum = sum pi_i g_i (y_i - u_i x)`` on the sphere.
``difference_reduction``  ``log k(x, y) = sum_k f(|x_k - y_k|)``:
    ``mean`` = ``sum_i pi_i y_i`` or ``sum_i pi_i f'(|d_ik|) sign(d_ik)`` with ``d = x - y`` (the
    gradient in ``x`` of the log-kernel, averaged).

The derivative ``g`` is that of the interpolating cubic, so gradients are exact gradients of the
computed log-kernel. Arithmetic is float64 whatever the input dtype (``1 - x.y`` must keep its
digits for peaked kernels). Memory: a few tiles of scratch per thread (within the chunk budget)
plus the outputs; no ``(m, n)`` array.
"""
import math

import numpy as np
from numba import njit, prange

from ..backend import get_chunk_bytes
from ._numba import _FLAGS, _exp_nonpositive, _thread_count, _tile_max
from .api import _validate

_TILE = 1024
_QUERY_BLOCK = 16


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _locate(z, lo, inv_step, n_int):
    """Interval index and local variable ``tau`` of ``z`` (clamped into the table's range)."""
    position = min(max((z - lo) * inv_step, 0.0), np.float64(n_int))
    index = min(np.int64(position), n_int - 1)
    return index, position - index


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _online_weights(scratch, size, running_max, total, sums):
    """Tile logits -> ``exp(logit - max)`` in place with an online maximum; returns ``(max, total, skip)``."""
    tile_max = _tile_max(scratch, size)
    if tile_max == -np.inf:
        return running_max, total, True  # every weight in this tile is zero
    if tile_max > running_max:
        rescale = math.exp(running_max - tile_max)
        total *= rescale
        for k in range(sums.shape[0]):
            sums[k] *= rescale
        running_max = tile_max
    tile_total = 0.0
    for j in range(size):
        weight = _exp_nonpositive(scratch[j] - running_max)
        scratch[j] = weight
        tile_total += weight
    return running_max, total + tile_total, False


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _dot_kernel(queries, points_t, log_weights, table, lo, inv_step, gradient, tile, query_block, log_sum, mean):
    m, dim = queries.shape
    n = points_t.shape[1]
    n_int = table.shape[1]
    c0, c1, c2, c3 = table[0], table[1], table[2], table[3]
    n_blocks = (m + query_block - 1) // query_block
    n_sums = mean.shape[1]
    for block in prange(n_blocks):
        scratch = np.empty(tile)
        dots = np.empty(tile)
        slopes = np.empty(tile)
        sums = np.empty(n_sums)
        for i in range(block * query_block, min(m, (block + 1) * query_block)):
            running_max = -np.inf
            total = 0.0
            sums[:] = 0.0
            for start in range(0, n, tile):
                size = min(tile, n - start)
                coordinate = queries[i, 0]
                tile_points = points_t[0, start:start + size]
                for j in range(size):
                    dots[j] = coordinate * tile_points[j]
                for k in range(1, dim):
                    coordinate = queries[i, k]
                    tile_points = points_t[k, start:start + size]
                    for j in range(size):
                        dots[j] += coordinate * tile_points[j]
                tile_weights = log_weights[start:start + size]
                if gradient:
                    for j in range(size):
                        index, tau = _locate(dots[j], lo, inv_step, n_int)
                        a1, a2, a3 = c1[index], c2[index], c3[index]
                        scratch[j] = tile_weights[j] + (c0[index] + tau * (a1 + tau * (a2 + tau * a3)))
                        slopes[j] = (a1 + tau * (2.0 * a2 + 3.0 * tau * a3)) * inv_step
                else:
                    for j in range(size):
                        index, tau = _locate(dots[j], lo, inv_step, n_int)
                        scratch[j] = tile_weights[j] + (c0[index] + tau * (c1[index] + tau * (c2[index]
                                                                                            + tau * c3[index])))
                running_max, total, skip = _online_weights(scratch, size, running_max, total, sums)
                if skip:
                    continue
                if gradient:
                    partial = 0.0
                    for j in range(size):
                        scratch[j] *= slopes[j]
                        partial += scratch[j] * dots[j]
                    sums[dim] += partial
                for k in range(dim):
                    tile_points = points_t[k, start:start + size]
                    partial = 0.0
                    for j in range(size):
                        partial += scratch[j] * tile_points[j]
                    sums[k] += partial
            log_sum[i] = running_max + math.log(total)
            for k in range(n_sums):
                mean[i, k] = sums[k] / total if total > 0 else 0.0


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _difference_kernel(queries, points_t, log_weights, table, lo, inv_step, gradient, tile, query_block, log_sum,
                       mean):
    m, dim = queries.shape
    n = points_t.shape[1]
    n_int = table.shape[1]
    c0, c1, c2, c3 = table[0], table[1], table[2], table[3]
    n_blocks = (m + query_block - 1) // query_block
    for block in prange(n_blocks):
        scratch = np.empty(tile)
        slopes = np.empty((dim, tile))
        sums = np.empty(dim)
        for i in range(block * query_block, min(m, (block + 1) * query_block)):
            running_max = -np.inf
            total = 0.0
            sums[:] = 0.0
            for start in range(0, n, tile):
                size = min(tile, n - start)
                tile_weights = log_weights[start:start + size]
                for j in range(size):
                    scratch[j] = tile_weights[j]
                for k in range(dim):
                    coordinate = queries[i, k]
                    tile_points = points_t[k, start:start + size]
                    row = slopes[k]
                    for j in range(size):
                        difference = coordinate - tile_points[j]
                        index, tau = _locate(abs(difference), lo, inv_step, n_int)
                        a1, a2, a3 = c1[index], c2[index], c3[index]
                        scratch[j] += c0[index] + tau * (a1 + tau * (a2 + tau * a3))
                        if gradient:
                            slope = (a1 + tau * (2.0 * a2 + 3.0 * tau * a3)) * inv_step
                            row[j] = slope if difference >= 0 else -slope
                running_max, total, skip = _online_weights(scratch, size, running_max, total, sums)
                if skip:
                    continue
                for k in range(dim):
                    values = slopes[k] if gradient else points_t[k, start:start + size]
                    partial = 0.0
                    for j in range(size):
                        partial += scratch[j] * values[j]
                    sums[k] += partial
            log_sum[i] = running_max + math.log(total)
            for k in range(dim):
                mean[i, k] = sums[k] / total if total > 0 else 0.0


def _run(kernel, queries, points, table, lo, inv_step, log_weights, gradient, extra, chunk_bytes, arrays):
    queries, points, _, log_weights = _validate(queries, points, None, log_weights)
    if not isinstance(queries, np.ndarray) or not isinstance(points, np.ndarray):
        raise TypeError(f"queries: the tabulated reductions take NumPy arrays, got {type(queries).__name__}")
    table = np.ascontiguousarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] != 4 or table.shape[1] < 1:
        raise ValueError(f"table: expected cubic coefficients of shape (4, n_intervals), got {table.shape}")
    if not (math.isfinite(lo) and math.isfinite(inv_step) and inv_step > 0):
        raise ValueError(f"inv_step: expected a finite positive grid density, got {inv_step} (lo = {lo})")
    m, dim = queries.shape
    n = points.shape[0]
    log_weights = np.zeros(n) if log_weights is None else np.ascontiguousarray(log_weights, dtype=np.float64)
    budget = (chunk_bytes or get_chunk_bytes()) // _thread_count()
    tile = int(max(16, min(_TILE, n, budget // (8 * arrays))))  # `arrays` float64 scratch rows per thread
    log_sum, mean = np.empty(m), np.empty((m, dim + extra))
    kernel(np.ascontiguousarray(queries, dtype=np.float64), np.ascontiguousarray(points.T, dtype=np.float64),
           log_weights, table, float(lo), float(inv_step), bool(gradient), tile, _QUERY_BLOCK, log_sum, mean)
    dtype = points.dtype
    return log_sum.astype(dtype, copy=False), mean.astype(dtype, copy=False)


def dot_product_reduction(queries, points, table, lo, inv_step, log_weights=None, gradient=False, chunk_bytes=None):
    """Softmax sums for ``log k(x, y) = f(x . y)``, ``f`` a tabulated piecewise cubic (module docstring).

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    table : (4, n_int) array
        Cubic coefficients per interval in the local variable ``tau`` (``f = c0 + c1 tau + ...``).
    lo, inv_step : float
        Left end of the grid and inverse interval length; ``x . y`` outside the grid is clamped to it.
    log_weights : (n,) array, optional
        Log of non-negative weights (``-inf``: zero weight).
    gradient : bool
        False: ``mean (m, D)`` is the softmax mean of the points. True: ``mean (m, D + 1)`` holds
        ``sum pi_i f'(u_i) y_i`` and ``sum pi_i f'(u_i) u_i``.
    chunk_bytes : int, optional
        Budget for the per-thread scratch.

    Returns
    -------
    log_sum : (m,) array
        In the dtype of ``points`` (computed in float64). A row with no weight gets ``-inf``, mean 0.
    mean : array
    """
    return _run(_dot_kernel, queries, points, table, lo, inv_step, log_weights, gradient, int(bool(gradient)),
                chunk_bytes, 3)


def difference_reduction(queries, points, table, lo, inv_step, log_weights=None, gradient=False, chunk_bytes=None):
    """Softmax sums for ``log k(x, y) = sum_k f(|x_k - y_k|)`` (separable kernels, module docstring).

    Parameters are those of :func:`dot_product_reduction`; ``mean (m, D)`` is the softmax mean of the
    points (``gradient=False``) or of ``grad_x log k = (f'(|d_k|) sign(d_k))_k``, ``d = x - y``.
    """
    dim = np.shape(queries)[-1] if np.ndim(queries) == 2 else 1
    return _run(_difference_kernel, queries, points, table, lo, inv_step, log_weights, gradient, 0, chunk_bytes,
                1 + dim)
