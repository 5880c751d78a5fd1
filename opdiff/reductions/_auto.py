"""The ``backend="auto"`` policy: pick a registered backend from size, dimension, dtype and array type.

Measured on a 2-core AVX-512 machine (benchmarks/README.md): for D <= 16 the fused Numba kernel
is 5-20x faster than the chunked NumPy path; for large D the Numba blocked path (BLAS products,
parallel fused softmax) beats the NumPy path. Tiny problems stay on NumPy (no compilation on first
use). Dask and KeOps are used only when asked for by name.
"""
from ..backend import is_cupy_array

TINY_PAIRS = 2**16  # below this many (query, point) pairs the NumPy path costs microseconds


def auto_policy(queries, points, available):
    """Name of the backend ``backend="auto"`` uses for these inputs.

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    available : collection of str
        Names of the registered backends.

    Returns
    -------
    str
    """
    if is_cupy_array(queries):
        return "cupy"
    if queries.shape[0] * points.shape[0] < TINY_PAIRS:
        return "numpy"
    if "numba" in available:
        return "numba"
    return "numpy"
