"""Softmax-weighted sums of *per-pair* quantities: the reduction behind heat-kernel scores.

:func:`kernel_reduction` averages per-point values ``v_i``. Riemannian scores and mixtures with
per-point bandwidths need averages of quantities that depend on the pair ``(x_j, y_i)``
(``grad_x log p_t(x_j, y_i)``, ``1 / variance_i(t_j)``). :func:`pairwise_reduction` evaluates, one
chunk of query rows at a time (memory bounded by the chunk budget),

    log_sum[j]   = log sum_i exp(log w_i + log k(x_j, y_i))
    mean[j, q]   = sum_i pi_ji c_q(x_j, y_i)                     (coefficients only)
    mean[j, q, :] = sum_i pi_ji c_q(x_j, y_i) v_i                 (coefficients and per-point values)
    mean[j, :]   = sum_i pi_ji v_i                                (values only, as kernel_reduction)

with ``pi_ji = softmax_i(log w_i + log k(x_j, y_i))``, all in the log domain (the row maximum is
subtracted before any exponential).
"""
import numpy as np

from ..backend import chunk_rows, get_namespace
from .api import Reduction, _validate
from .online import finish, online_update


def pairwise_reduction(queries, points, block, values=None, log_weights=None, exclude_self=False,
                       chunk_bytes=None, pair_arrays=8, row_bytes=None):
    """Chunked softmax-weighted sums of per-pair coefficients (see the module docstring).

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    block : callable
        ``block(query_block (b, D), points (n, D), rows: slice) -> (log_kernel (b, n), coefficients)``
        with ``coefficients`` a ``(b, n, q)`` array or ``None``. ``rows`` locates the block among the
        queries (for per-query parameters).
    values : (n, p) array, optional
        Per-point values; with ``coefficients = None`` and no ``values`` the points are averaged.
    log_weights : (n,) array, optional
        Log of non-negative weights (``-inf``: zero weight).
    exclude_self : bool
        Leave-one-out: the queries are the points themselves (``m == n``, same order) and the pair
        ``(i, i)`` is dropped. A row with no remaining weight gets ``log_sum = -inf`` and mean 0.
    chunk_bytes : int, optional
        Budget override.
    pair_arrays : int
        Number of ``(b, n)`` float64 arrays ``block`` keeps alive per coefficient (for the budget).
    row_bytes : int, optional
        Bytes one query row needs, replacing the default estimate ``n * 8 * (pair_arrays + 2 D)``
        (which allows for per-coordinate pair arrays such as gradients): for blocks that hold only
        ``(b, n)`` arrays.

    Returns
    -------
    Reduction
        ``log_sum (m,)`` and ``mean`` (``(m, q)``, ``(m, q, p)`` or ``(m, p)``; ``None`` if the block
        returns no coefficients and ``values`` is ``None`` and ``mean_of_points`` is not wanted).
    """
    queries, points, values, log_weights = _validate(queries, points, values, log_weights)
    xp = get_namespace(queries, points)
    m, n = queries.shape[0], points.shape[0]
    if exclude_self and m != n:
        raise ValueError(f"queries: exclude_self needs the queries to be the points ({n} rows), got {m}")
    if row_bytes is None:
        row_bytes = n * 8 * (pair_arrays + 2 * points.shape[1])
    log_sum = xp.empty(m, dtype=points.dtype)
    mean = None
    for rows in chunk_rows(m, row_bytes, chunk_bytes):
        log_kernel, coefficients = block(queries[rows], points, rows)
        b = rows.stop - rows.start
        log_kernel = xp.asarray(log_kernel, dtype=np.float64)
        if log_kernel.shape != (b, n):
            raise ValueError(f"block: expected a log-kernel block of shape {(b, n)}, got {tuple(log_kernel.shape)}")
        if bool(xp.any(xp.isnan(log_kernel))):
            raise ValueError("block: returned NaN log-kernel values")
        log_kernel = log_kernel.copy()
        if log_weights is not None:
            log_kernel += log_weights[None, :]
        if exclude_self:
            local = xp.arange(b)
            log_kernel[local, rows.start + local] = -np.inf
        state = online_update(None, log_kernel,
                              lambda weights: _weighted_mean(weights, coefficients, values, points, xp, b, n))
        log_sum[rows], part = finish(state, points.dtype)
        if mean is None:
            mean = xp.empty((m,) + part.shape[1:], dtype=points.dtype)
        mean[rows] = part
    return Reduction(log_sum, mean)


def _weighted_mean(weights, coefficients, values, points, xp, b, n):
    if coefficients is None:
        return weights @ (points if values is None else values)
    coefficients = xp.asarray(coefficients)
    if coefficients.ndim != 3 or coefficients.shape[:2] != (b, n):
        raise ValueError(f"block: expected coefficients of shape ({b}, {n}, q), got {tuple(coefficients.shape)}")
    if not bool(xp.all(xp.isfinite(coefficients))):
        raise ValueError("block: returned non-finite coefficients")
    if values is None:
        return xp.einsum("bn,bnq->bq", weights, coefficients)
    return xp.stack([(weights * coefficients[:, :, q]) @ values for q in range(coefficients.shape[2])], axis=1)
