"""Layer 1: the one hot kernel, softmax-weighted sums over data.

Every sum over training points in opdiff (DKS and RDKS scores, KME log-densities, mean shift,
OISM sample means) calls this package. For queries ``x (m, D)``, data ``y (n, D)``, optional
log-weights ``w (n,)`` and values ``v (n, p)`` (default: the data themselves) it returns

    log_sum[j] = log sum_i exp(w_i + log k(x_j, y_i))
    mean[j]    = sum_i softmax_i(w_i + log k(x_j, y_i)) v_i

with ``log k(x, y) = -|x - y|^2 / 2`` for :func:`gaussian_reduction` (Mahalanobis kernels are
whitened to this form by the caller), or any log-kernel for :func:`kernel_reduction`.
Memory is bounded by the chunk budget (:mod:`opdiff.backend.chunking`) for every backend.
"""
from .api import Reduction, gaussian_reduction, kernel_reduction, available_backends, register_backend, check_backend
from ._dask import clear_dask_cache, set_dask_client, get_dask_client

__all__ = ["Reduction", "gaussian_reduction", "kernel_reduction", "available_backends", "register_backend",
           "check_backend", "set_dask_client", "get_dask_client", "clear_dask_cache"]
from .pairwise import pairwise_reduction  # noqa: E402,F401  (per-pair coefficients: Riemannian scores)
