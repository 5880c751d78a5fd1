"""KeOps backend: one symbolic ``Max_SumShiftExpWeight`` reduction over a LazyTensor.

The log-kernel ``f_ij = log w_j - |x_i - y_j|^2 / 2`` is never stored: KeOps streams it and
returns, per query, the row maximum ``m_i`` and ``sum_j exp(f_ij - m_i) [1, v_j]`` in one pass,
so ``log_sum = m + log s`` and ``mean = (sum of weighted values) / s``. Memory is O(m + n).
The first call for a new (dtype, D, p) compiles a kernel (tens of seconds on CPU); KeOps caches
the build on disk.
"""
import numpy as np

from ..backend import require_extra


def _lazy_tensor():
    require_extra("pykeops")
    from pykeops.numpy import LazyTensor

    return LazyTensor


def gaussian_reduction(queries, points, values, log_weights, chunk_bytes=None):
    """Gaussian kernel ``exp(-|x-y|^2/2)`` with pykeops; see :func:`opdiff.reductions.gaussian_reduction`.

    ``chunk_bytes`` is accepted for the common backend signature; KeOps never stores a block.
    """
    LazyTensor = _lazy_tensor()
    dtype = queries.dtype
    n = points.shape[0]
    values = points if values is None else values
    if log_weights is None:
        log_weights = np.zeros(n, dtype=dtype)
    else:
        # KeOps' running max starts at -inf, and exp(-inf - (-inf)) is NaN: a zero weight becomes a
        # finite log-weight so negative that its term is exactly 0 once any positive weight is seen.
        log_weights = np.maximum(log_weights, np.finfo(dtype).min / 4)
    # Centre both sides: distances are unchanged, cancellation in large coordinates is reduced.
    centre = points.mean(axis=0)
    x_i = LazyTensor(np.ascontiguousarray(queries - centre)[:, None, :])
    y_j = LazyTensor(np.ascontiguousarray(points - centre)[None, :, :])
    w_j = LazyTensor(np.ascontiguousarray(log_weights, dtype=dtype)[None, :, None])
    ones = np.ones((n, 1), dtype=dtype)
    g_j = LazyTensor(np.ascontiguousarray(np.concatenate([ones, values], axis=1))[None, :, :])
    log_kernel = w_j - 0.5 * ((x_i - y_j) ** 2).sum(-1)
    out = log_kernel.reduction("Max_SumShiftExpWeight", other=g_j, axis=1)  # (m, 2 + p)
    row_max, total, weighted = out[:, 0], out[:, 1], out[:, 2:]
    return (row_max + np.log(total)).astype(dtype, copy=False), (weighted / total[:, None]).astype(dtype, copy=False)


def _register():
    import importlib.util

    from .api import register_backend

    if importlib.util.find_spec("pykeops") is not None:
        register_backend("keops", gaussian_reduction)


_register()
