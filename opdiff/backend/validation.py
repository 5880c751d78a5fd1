"""Input validation with errors that name the argument, the expectation and what was given."""
import importlib

import numpy as np

from .dtypes import as_float_array
from .namespace import get_namespace


def check_finite(x, name):
    """Raise ``ValueError`` if ``x`` holds NaN or inf.

    Parameters
    ----------
    x : array
        Any shape, NumPy or CuPy.
    name : str
        Argument name used in the error message (which counts the non-finite entries).

    Returns
    -------
    array
        ``x``.
    """
    xp = get_namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        bad = int(xp.sum(~xp.isfinite(x)))
        raise ValueError(f"{name}: expected finite values, found {bad} non-finite entries")
    return x


def check_points(x, name, dim=None, ndim=2, allow_1d=False):
    """Validate an array of points.

    Parameters
    ----------
    x : array_like
        Expected shape ``(n, d)`` (``ndim=2``) or ``(n, *shape)``.
    name : str
        Argument name used in error messages.
    dim : int or tuple, optional
        Expected trailing dimension(s).
    ndim : int or None
        Expected number of dimensions (``None``: any).
    allow_1d : bool
        If true, a ``(d,)`` vector is accepted and promoted to ``(1, d)``.

    Returns
    -------
    array
        Floating array (float32 kept, otherwise float64), finite.
    """
    if x is None:
        raise ValueError(f"{name}: expected an array, got None")
    xp = get_namespace(x)
    arr = xp.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if allow_1d and arr.ndim == ndim - 1:
        arr = arr[None]
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one point, got shape {tuple(arr.shape)}")
    if dim is not None:
        expected = (dim,) if np.isscalar(dim) else tuple(dim)
        if tuple(arr.shape[1:]) != expected:
            raise ValueError(f"{name}: expected trailing shape {expected}, got shape {tuple(arr.shape)}")
    arr = as_float_array(arr, xp=xp)
    return check_finite(arr, name)


def check_time(t, name="t", t_min=0.0, t_max=np.inf, n=None, include_min=False):
    """Validate a time: a float or an ``(n,)`` array inside ``(t_min, t_max]``.

    Parameters
    ----------
    t : float or (n,) array
        The time(s) given (a CuPy array is brought to the host).
    name : str
        Argument name used in the error message.
    t_min, t_max : float
        The accepted range, ``(t_min, t_max]``.
    n : int, optional
        The number of points the times go with: an array must then have shape ``(n,)`` or ``(1,)``.
    include_min : bool
        Accept ``t_min`` itself, ``[t_min, t_max]``.

    Returns
    -------
    float64 array
        A 0-d array for a float, else ``(n,)``.
    """
    try:
        arr = np.asarray(t.get() if hasattr(t, "get") else t, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a float or a 1-D array of floats, got {type(t).__name__}") from None
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a float or a 1-D array, got shape {arr.shape}")
    if arr.ndim == 1 and n is not None and arr.shape[0] not in (1, n):
        raise ValueError(f"{name}: expected a float or an array of shape ({n},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite times, got {t}")
    low_ok = arr >= t_min if include_min else arr > t_min
    if not np.all(low_ok & (arr <= t_max)):
        bracket = "[" if include_min else "("
        bad = arr[~(low_ok & (arr <= t_max))].ravel()[0]
        raise ValueError(f"{name}: expected times in {bracket}{t_min}, {t_max}], got {bad}")
    return arr


def check_positive(value, name, strict=True):
    """Validate a positive (or non-negative) finite scalar and return it as float.

    Parameters
    ----------
    value : float
        The number given.
    name : str
        Argument name used in the error message.
    strict : bool
        Reject 0 too (positive) rather than only negatives (non-negative).

    Returns
    -------
    float
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}") from None
    if not np.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(f"{name}: expected a {'positive' if strict else 'non-negative'} finite number, got {value}")
    return v


def check_count(value, name, minimum=1):
    """Validate an integer count ``>= minimum`` (a number of points, steps, projections) and return it as int.

    Parameters
    ----------
    value : int or integral float
        The count given.
    name : str
        Argument name used in the error message.
    minimum : int
        The smallest accepted count.

    Returns
    -------
    int
    """
    try:
        count = int(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}") from None
    except (ValueError, OverflowError):  # NaN, inf, non-numeric strings
        count = None
    if count is None or count != value or count < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return count


def check_choice(value, name, choices):
    """Validate that ``value`` is one of ``choices``.

    Parameters
    ----------
    value : object
        The option given.
    name : str
        Argument name used in the error message.
    choices : collection
        The accepted values.

    Returns
    -------
    object
        ``value``.
    """
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def check_fitted(estimator, attributes):
    """Raise :class:`~opdiff.backend.params.NotFittedError` (a ValueError and an AttributeError) if unfitted.

    Parameters
    ----------
    estimator : object
    attributes : str or sequence of str
        Fitted attributes (scikit-learn convention: they end in ``_``).
    """
    from .params import NotFittedError

    attributes = [attributes] if isinstance(attributes, str) else list(attributes)
    if not all(getattr(estimator, name, None) is not None for name in attributes):
        raise NotFittedError(f"{type(estimator).__name__} is not fitted yet: call fit(X) before using this method")


_EXTRAS = {"cupy": "gpu", "pykeops": "keops", "dask": "dask", "distributed": "dask",
           "nbclient": "notebooks", "nbformat": "notebooks", "sklearn": "data"}


def require_extra(module):
    """Import an optional dependency or raise an ImportError naming the extra to install.

    Parameters
    ----------
    module : str
        Module name, e.g. ``"pykeops"`` or ``"sklearn.datasets"``.

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module.split(".")[0], "all")
        raise ImportError(
            f"{module} is required for this feature: install it with `pip install opdiff[{extra}]`"
        ) from exc
