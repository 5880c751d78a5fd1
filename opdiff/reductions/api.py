"""Public entry points of the reduction layer and the backend registry."""
from typing import NamedTuple

import numpy as np

from ..backend import check_choice, check_count, check_finite, get_namespace, result_dtype
from . import _numpy
from .forms import KernelForm, LogKernel, SquaredDistance
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


# name -> (function(form, queries, points, values, log_weights, gradient, chunk_bytes) -> (log_sum, mean),
#          unsupported(form) -> None or the reason the backend cannot serve that form)
_BACKENDS = {"numpy": (_numpy.reduce, lambda form: None)}
_KNOWN = ("auto", "numpy", "numba", "keops", "cupy", "dask")
_EXTRAS = {"numba": "numba", "keops": "keops", "cupy": "gpu", "dask": "dask"}


def check_backend(backend, name="backend", form=None):
    """Validate a reduction backend name and, with ``form``, that it is installed and serves that form.

    Estimators call this in ``fit`` so that a typo, a missing extra or an unsupported kernel form fails
    there, not at the first query.

    Parameters
    ----------
    backend : str
        ``"auto"`` or one of the known backends.
    name : str
        Argument name for error messages.
    form : KernelForm, optional
        The kernel form the backend will be asked to reduce.

    Returns
    -------
    str
        ``backend``, unchanged.
    """
    check_choice(backend, name, _KNOWN)
    if form is not None:
        if not isinstance(form, KernelForm):
            raise TypeError(f"form: expected a KernelForm (opdiff.reductions.forms), got {type(form).__name__}")
        if backend != "auto":
            _registered(backend, form)
    return backend


def register_backend(name, function, unsupported=None):
    """Register a backend.

    Parameters
    ----------
    name : str
        One of the known backend names.
    function : callable
        ``function(form, queries, points, values, log_weights, gradient, chunk_bytes) -> (log_sum, mean)``:
        ``form`` bound to the arrays (:meth:`~opdiff.reductions.forms.KernelForm.bind`), ``queries (m, D)``
        and ``points (n, D)`` validated and in the form's compute dtype, ``values (n, p)`` or None (the
        points), ``log_weights (n,)`` or None, ``gradient`` (bool; table forms only, the Gaussian
        gradient is formed from values), ``chunk_bytes`` (int or None). Returns ``log_sum (m,)`` and
        ``mean (m, p)`` (``(m, D)`` with ``gradient``).
    unsupported : callable, optional
        ``unsupported(form) -> None`` or a string saying why the backend cannot serve ``form``
        (default: it serves every form).
    """
    check_choice(name, "name", _KNOWN[1:])
    _BACKENDS[name] = (function, unsupported or (lambda form: None))


def available_backends():
    """Names of the backends registered in this process (optional ones import lazily).

    Returns
    -------
    list of str
    """
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


def _registered(backend, form):
    """The backend's function, or an ImportError naming the extra / a ValueError giving the reason."""
    if backend not in _BACKENDS:
        _load_optional_backends()
    if backend not in _BACKENDS:
        raise ImportError(f"backend={backend!r} is not available: install it with "
                          f"`pip install opdiff[{_EXTRAS[backend]}]`")
    function, unsupported = _BACKENDS[backend]
    reason = unsupported(form)
    if reason is not None:
        raise ValueError(f"backend={backend!r} cannot reduce {type(form).__name__}: {reason}")
    return function


def _select_backend(backend, queries, points, form):
    check_backend(backend)
    if backend == "auto":
        _load_optional_backends()
        backend = _auto_policy(queries, points, [name for name, (_, unsupported) in _BACKENDS.items()
                                                 if unsupported(form) is None])
    return _registered(backend, form)


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


def reduce(form, queries, points, values=None, log_weights=None, *, gradient=False, backend="auto",
           chunk_bytes=None):
    """Softmax-weighted reduction of the data under a kernel form: the one entry point of the layer.

    ``log_sum[j] = log sum_i exp(log_weights_i + log k(x_j, y_i))`` and ``mean[j] = sum_i pi_ji v_i``
    with ``pi_ji = softmax_i(log_weights_i + log k(x_j, y_i))``; with ``gradient=True`` the mean of
    ``grad_x log k(x_j, y_i)`` instead (:mod:`opdiff.reductions.forms`).

    Parameters
    ----------
    form : KernelForm
        :class:`~opdiff.reductions.forms.SquaredDistance`, :class:`~opdiff.reductions.forms.DotProductTable`,
        :class:`~opdiff.reductions.forms.CoordinateTable` (or :class:`~opdiff.reductions.forms.LogKernel`,
        array backends only).
    queries : (m, D) array
    points : (n, D) array
    values : (n, p) array, optional
        Per-point values to average; default the points. Not with ``gradient``.
    log_weights : (n,) array, optional
        Log of non-negative data weights (``-inf``: zero weight); default uniform (zero).
    gradient : bool
        Return the softmax mean of the gradient of ``log k`` in the query, ``(m, D)``.
    backend : {"auto", "numpy", "numba", "keops", "cupy", "dask"}
        "auto": cupy for CuPy arrays, numpy for tiny problems, else numba
        (:func:`opdiff.reductions._auto.auto_policy`); "dask" runs on the cluster set with
        :func:`opdiff.reductions.set_dask_client`. A backend that is not installed raises an
        ImportError naming the extra; one that cannot serve the form, a ValueError with the reason.
    chunk_bytes : int, optional
        Override of the chunk budget for this call (no block of pairs beyond it, any backend).

    Returns
    -------
    Reduction
        ``log_sum (m,)`` and ``mean (m, p)`` (``(m, D)`` with ``gradient``), in the dtype of the inputs
        (float32 kept).
    """
    if not isinstance(form, KernelForm):
        raise TypeError(f"form: expected a KernelForm (opdiff.reductions.forms), got {type(form).__name__}")
    if not isinstance(gradient, (bool, np.bool_)):
        raise TypeError(f"gradient: expected a bool, got {type(gradient).__name__}")
    if gradient and values is not None:
        raise ValueError("values: with gradient=True the mean is that of the kernel's gradient; pass values=None")
    queries, points, values, log_weights = _validate(queries, points, values, log_weights, chunk_bytes)
    xp = get_namespace(queries, points)
    dtype = queries.dtype
    compute = form.compute_dtype(dtype)
    if compute != dtype:
        queries, points = queries.astype(compute), points.astype(compute)
        values = None if values is None else values.astype(compute)
        log_weights = None if log_weights is None else log_weights.astype(compute)
    (m, dim), n = queries.shape, points.shape[0]
    bound = form.bind(m, n, dim, xp, compute)
    function = _select_backend(backend, queries, points, bound)
    if gradient and isinstance(bound, SquaredDistance):
        # grad_c log k = s_i rho (y_i - c): the softmax means of s_i y_i and s_i give it exactly
        scale = xp.ones(n, dtype=compute) if bound.point_scale is None else bound.point_scale
        augmented = xp.concatenate([points * scale[:, None], scale[:, None]], axis=1)
        log_sum, mean = function(bound, queries, points, augmented, log_weights, False, chunk_bytes)
        mean = mean[:, :dim] - queries * mean[:, dim:]
        if bound.precision is not None:
            mean = mean * bound.precision[:, None]
    else:
        log_sum, mean = function(bound, queries, points, values, log_weights, bool(gradient), chunk_bytes)
    return Reduction(log_sum.astype(dtype, copy=False), mean.astype(dtype, copy=False))


def gaussian_reduction(queries, points, values=None, log_weights=None, backend="auto", chunk_bytes=None):
    """Softmax-weighted mean under ``exp(-|x - y|^2 / 2)``: ``reduce(SquaredDistance(), ...)``.

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    values : (n, p) array, optional
        Per-point values to average; defaults to ``points``.
    log_weights : (n,) array, optional
        Log of non-negative data weights (``-inf`` for zero weight); default uniform (zero).
    backend : {"auto", "numpy", "numba", "keops", "cupy", "dask"}
        See :func:`reduce`.
    chunk_bytes : int, optional
        Override of the chunk budget for this call.

    Returns
    -------
    Reduction
        ``log_sum (m,)`` and ``mean (m, p)``, in the dtype of the inputs (float32 kept).
    """
    return reduce(SquaredDistance(), queries, points, values, log_weights, backend=backend, chunk_bytes=chunk_bytes)


def kernel_reduction(queries, points, log_kernel, values=None, log_weights=None, chunk_bytes=None):
    """Softmax-weighted mean under any log-kernel callable: ``reduce(LogKernel(log_kernel), ..., backend="numpy")``.

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    log_kernel : callable
        ``log_kernel(query_block (b, D), points (t, D)) -> (b, t)`` log-kernel values
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
    return reduce(LogKernel(log_kernel), queries, points, values, log_weights, backend="numpy",
                  chunk_bytes=chunk_bytes)
