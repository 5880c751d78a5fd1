"""Dtype policy: float64 by default, float32 kept when given, never a silent upcast of user arrays."""
import numpy as np

from .namespace import get_namespace

DEFAULT_DTYPE = np.float64


def result_dtype(*arrays):
    """Floating dtype of a computation on ``arrays``.

    float32 only when every floating array is float32; integer and Python inputs count as float64
    unless a float32 array is present (so ``t=0.5`` does not upcast a float32 ``x``).

    Parameters
    ----------
    *arrays : arrays, scalars or None
        The inputs of the computation (``None`` entries are ignored).

    Returns
    -------
    numpy.dtype
        ``float32`` or ``float64``.
    """
    # Python scalars (no dtype) follow the arrays, as the docstring promises
    dtypes = [a.dtype for a in arrays if a is not None and hasattr(a, "dtype")]
    floats = [d for d in dtypes if np.issubdtype(d, np.floating)]
    if floats and all(d == np.float32 for d in floats):
        return np.dtype(np.float32)
    return np.dtype(DEFAULT_DTYPE)


def as_float_array(x, dtype=None, xp=None):
    """Convert to a floating array in the namespace of ``x`` (float32 kept, everything else float64).

    Parameters
    ----------
    x : array_like
        Any shape, real numbers (boolean, integer or floating).
    dtype : dtype, optional
        Force this floating dtype instead.
    xp : module, optional
        The array namespace (NumPy or CuPy); by default that of ``x``.

    Returns
    -------
    array
        Same shape as ``x``, not copied when already of the dtype.

    Raises
    ------
    TypeError
        If ``x`` is not a real numeric array (strings, objects, complex numbers), or ``dtype`` is not floating.
    """
    xp = xp or get_namespace(x)
    arr = xp.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"x: expected a real numeric array, got dtype {arr.dtype}")
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"dtype: expected a floating dtype, got {np.dtype(dtype)}")
    if dtype is None:
        dtype = np.float32 if arr.dtype == np.float32 else DEFAULT_DTYPE
    return arr.astype(dtype, copy=False)
