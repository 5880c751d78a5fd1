"""Chunked array-namespace backend, the reference (NumPy, and CuPy arrays through the same code).

Each block of ``b`` query rows and ``t`` data points (``b t`` times the form's bytes per pair within
the chunk budget) is evaluated by the form's :meth:`~opdiff.reductions.forms.KernelForm.log_kernel`
and folded into the rows' partial reductions by :func:`opdiff.reductions.online.online_update`, so
memory stays bounded for any ``n``, even when one query row of ``n`` pairs exceeds the budget.
"""
from ..backend import get_chunk_bytes, get_namespace
from .online import finish, online_update

# Below this dimension the exact per-coordinate accumulation is used; above it, the
# |x|^2 - 2 x.y + |y|^2 matrix product (on centred data, to limit cancellation).
_DIRECT_MAX_DIM = 16


def squared_distances(query_block, points, xp, point_norms=None):
    """``(b, n)`` squared Euclidean distances, exact for small D, by matrix product for large D.

    Parameters
    ----------
    query_block : (b, D) array
    points : (n, D) array
    xp : module
        Array namespace.
    point_norms : (n,) array, optional
        ``|y_i|^2`` when already known (large D).

    Returns
    -------
    (b, n) array
    """
    if query_block.shape[1] <= _DIRECT_MAX_DIM:
        out = xp.zeros((query_block.shape[0], points.shape[0]), dtype=points.dtype)
        for k in range(points.shape[1]):
            diff = query_block[:, k, None] - points[None, :, k]
            out += diff * diff
        return out
    if point_norms is None:
        point_norms = xp.sum(points * points, axis=1)
    out = query_block @ points.T
    out *= -2.0
    out += xp.sum(query_block * query_block, axis=1)[:, None]
    out += point_norms[None, :]
    return xp.maximum(out, 0.0, out=out)


def block_shape(m, n, pair_bytes, chunk_bytes=None):
    """``(rows, columns)`` of the largest query x data block within the chunk budget.

    Parameters
    ----------
    m, n : int
        Numbers of queries and points.
    pair_bytes : int
        Bytes the block holds per (query, point) pair.
    chunk_bytes : int, optional
        Budget; default :func:`opdiff.backend.get_chunk_bytes`.

    Returns
    -------
    rows, columns : int
    """
    budget = chunk_bytes or get_chunk_bytes()
    columns = n if n * pair_bytes <= budget else max(1, budget // pair_bytes)
    return max(1, min(m, budget // (columns * pair_bytes))), columns


def reduce(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """Softmax reduction of a bound form, block by block (the reference backend).

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
    """
    xp = get_namespace(queries, points)
    values = points if values is None else values
    if form.translation_invariant:
        centre = xp.mean(points, axis=0)
        queries, points = queries - centre, points - centre
    m, n = queries.shape[0], points.shape[0]
    width = queries.shape[1] if gradient else values.shape[1]
    pair_bytes = points.dtype.itemsize * (form.pair_arrays + form.pair_arrays_per_dim * queries.shape[1])
    rows, columns = block_shape(m, n, pair_bytes, chunk_bytes)
    log_sum = xp.empty(m, dtype=points.dtype)
    mean = xp.empty((m, width), dtype=points.dtype)
    for start in range(0, m, rows):
        query_rows = slice(start, min(m, start + rows))
        state = None
        for first in range(0, n, columns):
            point_rows = slice(first, min(n, first + columns))
            logits, contract = form.select(query_rows, point_rows).log_kernel(
                queries[query_rows], points[point_rows], values[point_rows], gradient)
            if log_weights is not None:
                logits += log_weights[None, point_rows]
            state = online_update(state, logits, contract)
        log_sum[query_rows], mean[query_rows] = finish(state, points.dtype)
    return log_sum, mean
