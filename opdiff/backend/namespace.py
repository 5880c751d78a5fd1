"""Array-library dispatch: the same code runs on NumPy and CuPy arrays (POT-style ``get_namespace``)."""
import numpy as np


def is_cupy_array(x):
    """True when ``x`` is a CuPy ndarray (checked without importing CuPy).

    Parameters
    ----------
    x : object

    Returns
    -------
    bool
    """
    return type(x).__module__.split(".")[0] == "cupy"


def get_namespace(*arrays):
    """Return the array module (``numpy`` or ``cupy``) shared by ``arrays``.

    Non-array arguments (floats, ``None``) are ignored. Mixing NumPy and CuPy arrays raises.

    Parameters
    ----------
    *arrays : array_like or None

    Returns
    -------
    module
        ``numpy`` or ``cupy``.
    """
    kinds = {is_cupy_array(a) for a in arrays if a is not None and hasattr(a, "shape")}
    if len(kinds) > 1:
        raise TypeError("arrays: mixed NumPy and CuPy arrays; move them to one device first")
    if kinds == {True}:
        import cupy

        return cupy
    return np


def to_numpy(x):
    """Copy a CuPy array to the host; NumPy arrays and scalars pass through.

    Parameters
    ----------
    x : array or scalar

    Returns
    -------
    numpy.ndarray
    """
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)
