"""KeOps backend: one symbolic ``Max_SumShiftExpWeight`` reduction over a LazyTensor.

For ``SquaredDistance`` the logit ``l_ij = log w_j - s_j (rho_i |x_i - y_j|^2 + e_i) / 2`` is never
stored: KeOps streams it and returns, per query, the row maximum ``m_i`` and ``sum_j exp(l_ij - m_i)
[1, v_j]`` in one pass, so ``log_sum = m + log s`` and ``mean = (sum of weighted values) / s``.
Memory is O(m + n). The first call for a new (dtype, D, p, parameters) compiles a kernel (tens of
seconds on CPU); KeOps caches the build on disk.

The table forms are not served: a KeOps formula has no indexed load from an array, so a piecewise
cubic with thousands of intervals cannot be written as one (a sum of masked pieces would cost one term
per interval and pair), and the heat kernels they tabulate have no closed form that KeOps could
evaluate at every time (a truncated eigen-series needs hundreds of terms at small times).
:func:`unsupported` says so when the reduction is resolved.
"""
import numpy as np

from ..backend import require_extra
from .forms import SquaredDistance


def _lazy_tensor():
    require_extra("pykeops")
    from pykeops.numpy import LazyTensor

    return LazyTensor


def reduce(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """``SquaredDistance`` reduction with pykeops (``chunk_bytes`` unused: KeOps stores no block).

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
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
    distance = ((x_i - y_j) ** 2).sum(-1)
    if form.precision is not None:
        distance = LazyTensor(np.ascontiguousarray(form.precision, dtype=dtype)[:, None, None]) * distance
    if form.offset is not None and form.point_scale is not None:
        distance = distance + LazyTensor(np.ascontiguousarray(form.offset, dtype=dtype)[:, None, None])
    if form.point_scale is not None:
        distance = LazyTensor(np.ascontiguousarray(form.point_scale, dtype=dtype)[None, :, None]) * distance
    log_kernel = w_j - 0.5 * distance
    out = log_kernel.reduction("Max_SumShiftExpWeight", other=g_j, axis=1)  # (m, 2 + p)
    row_max, total, weighted = out[:, 0], out[:, 1], out[:, 2:]
    log_sum = row_max + np.log(total)
    if form.offset is not None and form.point_scale is None:
        log_sum = log_sum - 0.5 * form.offset  # one constant per query when no point is scaled
    return log_sum.astype(dtype, copy=False), (weighted / total[:, None]).astype(dtype, copy=False)


def unsupported(form):
    """Why KeOps cannot serve ``form`` (None: it can; module notes and :func:`opdiff.reductions.register_backend`)."""
    if isinstance(form, SquaredDistance):
        return None
    return ("a KeOps formula has no indexed table lookup, and the tabulated heat kernels have no closed form "
            "KeOps can evaluate at every time; use backend='numba' (fused) or 'numpy'")


def _register():
    import importlib.util

    from .api import register_backend

    if importlib.util.find_spec("pykeops") is not None:
        register_backend("keops", reduce, unsupported)


_register()
