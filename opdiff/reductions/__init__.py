"""Layer 1: the one hot kernel, softmax-weighted sums over data.

Every sum over training points in opdiff (DKS and RDKS scores, KME log-densities, mean shift,
OISM sample means) calls this package, through one entry point::

    reduce(form, queries, points, values=None, log_weights=None, *, gradient=False,
           backend="auto", chunk_bytes=None) -> Reduction(log_sum, mean)

For queries ``x (m, D)``, points ``y (n, D)``, optional log-weights ``w (n,)`` (``-inf``: zero weight)
and values ``v (n, p)`` (default: the points themselves) it returns

    log_sum[j] = log sum_i exp(w_i + log k(x_j, y_i))
    mean[j]    = sum_i pi_ji v_i,     pi_ji = softmax_i(w_i + log k(x_j, y_i))

(with ``gradient=True``, ``mean[j] = sum_i pi_ji grad_x log k(x_j, y_i)``, ``(m, D)``). The kernel
form says what ``log k`` is (:mod:`opdiff.reductions.forms`):

- ``SquaredDistance(precision=rho (m,), offset=e (m,), point_scale=s (n,))``:
  ``log k_ji = -s_i (rho_j |y_i - c_j|^2 + e_j) / 2`` with queries ``c``; all defaults give
  ``-|y - c|^2 / 2`` (:func:`gaussian_reduction`). Per-query ``(rho, e)``: many times in one
  reduction without re-whitening the data; per-point ``s``: sample-point bandwidths.
- ``DotProductTable(tables, point_index=(n,) ints, query_index=(m,) ints)``:
  ``log k_ji = f(<x_j, y_i>)`` from tabulated cubics (sphere heat kernel); pair ``(j, i)`` uses
  ``tables[query_index[j]][point_index[i]]`` (a table, a list, or a grid of tables).
- ``CoordinateTable(tables, point_index, query_index)``: ``log k_ji = sum_k f(|x_jk - y_ik|)``
  (flat-torus heat kernel), tables as above.
- ``LogKernel(function)``: any callable log-kernel (array backends only).

Backends: ``"numpy"`` (chunked reference, also runs CuPy arrays), ``"numba"`` (fused kernels),
``"keops"``, ``"cupy"``, ``"dask"``; ``"auto"`` picks one. Every backend serves every form or raises
(a missing extra: ImportError naming ``pip install opdiff[...]``; a form a backend cannot serve:
ValueError with the reason). :func:`check_backend` ``(backend, form=form)`` makes that check up front
(in an estimator's ``fit``). Memory is bounded by the chunk budget (:mod:`opdiff.backend.chunking`)
for every backend and form. One online log-sum-exp update and one merge of partial results
(:mod:`opdiff.reductions.online`, compiled twins in :mod:`opdiff.reductions._numba`) serve every
backend.

Older entry points kept for their callers, thin wrappers: :func:`gaussian_reduction`
(``SquaredDistance()``), :func:`kernel_reduction` (``LogKernel``), and :func:`pairwise_reduction`
(softmax means of per-pair coefficients, through the same online update).
"""
from .api import (Reduction, reduce, gaussian_reduction, kernel_reduction, available_backends, register_backend,
                  check_backend)
from .forms import KernelForm, SquaredDistance, DotProductTable, CoordinateTable, LogKernel
from .online import merge
from ._dask import clear_dask_cache, set_dask_client, get_dask_client

__all__ = ["Reduction", "reduce", "KernelForm", "SquaredDistance", "DotProductTable", "CoordinateTable", "LogKernel",
           "merge", "gaussian_reduction", "kernel_reduction", "available_backends", "register_backend",
           "check_backend", "set_dask_client", "get_dask_client", "clear_dask_cache"]
from .pairwise import pairwise_reduction  # noqa: E402,F401  (per-pair coefficients: Riemannian scores)

__all__ += ["pairwise_reduction"]
