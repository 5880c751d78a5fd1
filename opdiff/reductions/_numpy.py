"""Chunked array-namespace reference backend (NumPy, and CuPy arrays through the same code)."""
from ..backend import chunk_rows, get_namespace

# Below this dimension the exact per-coordinate accumulation is used; above it, the
# |x|^2 - 2 x.y + |y|^2 matrix product (on centred data, to limit cancellation).
_DIRECT_MAX_DIM = 16
_TEMPORARIES = 3  # (b, n) blocks alive at once: distances, weights, and a scratch copy


def squared_distances(query_block, points, xp, point_norms=None):
    """``(b, n)`` squared Euclidean distances, exact for small D, by matrix product for large D."""
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


def _softmax_block(log_kernel_block, log_weights, values, xp):
    """Stable log-sum-exp and weighted mean of one ``(b, n)`` block of log-kernel values."""
    if log_weights is not None:
        log_kernel_block += log_weights[None, :]
    row_max = xp.max(log_kernel_block, axis=1)
    row_max = xp.where(xp.isfinite(row_max), row_max, 0.0)
    log_kernel_block -= row_max[:, None]
    weights = xp.exp(log_kernel_block, out=log_kernel_block)
    total = xp.sum(weights, axis=1)
    weighted = weights @ values
    with_total = xp.where(total > 0, total, 1.0)
    return row_max + xp.log(total), weighted / with_total[:, None]


def gaussian_reduction(queries, points, values, log_weights, chunk_bytes=None):
    """Gaussian kernel ``exp(-|x-y|^2/2)``; see :func:`opdiff.reductions.gaussian_reduction`."""
    xp = get_namespace(queries, points)
    centre = xp.mean(points, axis=0)
    centred_points = points - centre
    values = points if values is None else values
    norms = xp.sum(centred_points * centred_points, axis=1)
    m, n = queries.shape[0], points.shape[0]
    log_sum = xp.empty(m, dtype=points.dtype)
    mean = xp.empty((m, values.shape[1]), dtype=points.dtype)
    row_bytes = n * points.dtype.itemsize * _TEMPORARIES
    for rows in chunk_rows(m, row_bytes, chunk_bytes):
        block = squared_distances(queries[rows] - centre, centred_points, xp, norms)
        block *= -0.5
        log_sum[rows], mean[rows] = _softmax_block(block, log_weights, values, xp)
    return log_sum, mean


def kernel_reduction(queries, points, log_kernel, values, log_weights, chunk_bytes=None):
    """Any log-kernel callable ``log_kernel(query_block, points) -> (b, n)``, chunked."""
    xp = get_namespace(queries, points)
    values = points if values is None else values
    m, n = queries.shape[0], points.shape[0]
    log_sum = xp.empty(m, dtype=points.dtype)
    mean = xp.empty((m, values.shape[1]), dtype=points.dtype)
    row_bytes = n * points.dtype.itemsize * (_TEMPORARIES + points.shape[1])
    for rows in chunk_rows(m, row_bytes, chunk_bytes):
        block = xp.asarray(log_kernel(queries[rows], points), dtype=points.dtype)
        if block.shape != (rows.stop - rows.start, n):
            raise ValueError(f"log_kernel: expected a block of shape {(rows.stop - rows.start, n)}, got {block.shape}")
        if bool(xp.any(xp.isnan(block))):
            raise ValueError("log_kernel: returned NaN log-kernel values")
        log_sum[rows], mean[rows] = _softmax_block(block.copy(), log_weights, values, xp)
    return log_sum, mean
