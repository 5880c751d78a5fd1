"""Public entry points of the reduction layer and the backend registry."""
from typing import NamedTuple

import numpy as np

from ..backend import check_choice, check_count, check_finite, get_namespace, result_dtype
from . import _numpy
from ._auto import auto_policy as _auto_policy


class Reduction(NamedTuple):
    """Result of a softmax-weighted reduction.

    Attributes
    ----------
    log_sum : (m,) array
        ``log sum_i exp(log_weights_i + log k(x_j, y_i))``.
    mean : (m, p) array
        Softmax-weighted mean of the values.
    """

    log_sum: object
    mean: object


# name -> callable(queries, points, values, log_weights, chunk_bytes) -> (log_sum, mean)
_BACKENDS = {"numpy": _numpy.gaussian_reduction}
_KNOWN = ("auto", "numpy", "numba", "keops", "cupy", "dask")


def check_backend(backend, name="backend"):
    """Validate a reduction backend name (``"auto"`` or one of the known backends) and return it.

    Estimators call this in ``fit`` so that a typo fails there, not at the first query.
    """
    return check_choice(backend, name, _KNOWN)


def register_backend(name, function):
    """Register a Gaussian-reduction backend ``function(queries, points, values, log_weights, chunk_bytes)``."""
    check_choice(name, "name", _KNOWN[1:])
    _BACKENDS[name] = function


def available_backends():
    """Names of the backends registered in this process (optional ones import lazily)."""
    _load_optional_backends()
    return sorted(_BACKENDS)


def _load_optional_backends():
    """Import the optional backend modules; each registers itself when its dependency is present."""
    import importlib

    for module in ("_numba", "_keops", "_cupy", "_dask"):
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ImportError:
            pass


def _select_backend(backend, queries, points):
    check_backend(backend)
    if backend == "auto":
        _load_optional_backends()
        backend = _auto_policy(queries, points, _BACKENDS)
    if backend not in _BACKENDS:
        _load_optional_backends()
    if backend not in _BACKENDS:
        extra = {"numba": "numba", "keops": "keops", "cupy": "gpu", "dask": "dask"}[backend]
        raise ImportError(f"backend={backend!r} is not available: install it with `pip install opdiff[{extra}]`")
    return _BACKENDS[backend]


def _validate(queries, points, values, log_weights, chunk_bytes=None):
    if chunk_bytes is not None:
        check_count(chunk_bytes, "chunk_bytes")
    xp = get_namespace(queries, points, values, log_weights)
    queries, points = xp.asarray(queries), xp.asarray(points)
    if queries.ndim != 2:
        raise ValueError(f"queries: expected shape (m, D), got {tuple(queries.shape)}")
    if points.ndim != 2 or points.shape[1] != queries.shape[1]:
        raise ValueError(f"points: expected shape (n, {queries.shape[1]}), got {tuple(points.shape)}")
    if points.shape[0] == 0:
        raise ValueError("points: expected at least one data point, got 0")
    dtype = result_dtype(queries, points)
    queries, points = queries.astype(dtype, copy=False), points.astype(dtype, copy=False)
    check_finite(queries, "queries")
    check_finite(points, "points")
    if values is not None:
        values = xp.asarray(values)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] != points.shape[0]:
            raise ValueError(f"values: expected shape ({points.shape[0]}, p), got {tuple(values.shape)}")
        values = check_finite(values.astype(dtype, copy=False), "values")
    if log_weights is not None:
        log_weights = xp.asarray(log_weights).astype(dtype, copy=False)
        if log_weights.shape != (points.shape[0],):
            raise ValueError(f"log_weights: expected shape ({points.shape[0]},), got {tuple(log_weights.shape)}")
        if bool(xp.any(xp.isnan(log_weights))) or bool(xp.any(log_weights == np.inf)):
            raise ValueError("log_weights: expected finite values or -inf (zero weight), found NaN or +inf")
        if not bool(xp.any(xp.isfinite(log_weights))):
            raise ValueError("log_weights: every weight is zero; at least one must be positive")
    return queries, points, values, log_weights


def gaussian_reduction(queries, points, values=None, log_weights=None, backend="auto", chunk_bytes=None):
    """Softmax-weighted mean under the isotropic Gaussian kernel ``exp(-|x - y|^2 / 2)``.

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    values : (n, p) array, optional
        Per-point values to average; defaults to ``points``.
    log_weights : (n,) array, optional
        Log of non-negative data weights (``-inf`` for zero weight); default uniform (zero).
    backend : {"auto", "numpy", "numba", "keops", "cupy", "dask"}
        "auto" follows :func:`opdiff.reductions._auto.auto_policy` (CuPy arrays: cupy; otherwise numba
        when installed, numpy for tiny problems); "dask" runs on the cluster set with
        :func:`opdiff.reductions.set_dask_client` (or the process's default dask client).
    chunk_bytes : int, optional
        Override of the chunk budget for this call.

    Returns
    -------
    Reduction
        ``log_sum (m,)`` and ``mean (m, p)``, in the dtype of the inputs (float32 kept).
    """
    queries, points, values, log_weights = _validate(queries, points, values, log_weights, chunk_bytes)
    function = _select_backend(backend, queries, points)
    log_sum, mean = function(queries, points, values, log_weights, chunk_bytes)
    return Reduction(log_sum, mean)


def kernel_reduction(queries, points, log_kernel, values=None, log_weights=None, chunk_bytes=None):
    """Softmax-weighted mean under any log-kernel, chunked in the array namespace of the inputs.

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    log_kernel : callable
        ``log_kernel(query_block (b, D), points (n, D)) -> (b, n)`` log-kernel values
        (e.g. a heat kernel on a manifold).
    values : (n, p) array, optional
        Defaults to ``points``.
    log_weights : (n,) array, optional
    chunk_bytes : int, optional

    Returns
    -------
    Reduction
    """
    if not callable(log_kernel):
        raise TypeError(f"log_kernel: expected a callable (query_block, points) -> (b, n), "
                        f"got {type(log_kernel).__name__}")
    queries, points, values, log_weights = _validate(queries, points, values, log_weights, chunk_bytes)
    log_sum, mean = _numpy.kernel_reduction(queries, points, log_kernel, values, log_weights, chunk_bytes)
    return Reduction(log_sum, mean)
