"""CuPy backend: the array-generic chunked path on GPU arrays (every form), plus a raw kernel for small-D Gaussians.

The generic path is :func:`opdiff.reductions._numpy.reduce` itself, run on CuPy arrays
(it is written against ``get_namespace``), so the NumPy tests cover its logic. The raw kernel
below is the only CuPy-specific code (plain ``SquaredDistance``): one thread per query, the online
log-sum-exp over the data written in CUDA (the one copy outside :mod:`opdiff.reductions.online`).
"""
import importlib.util

from ..backend import get_namespace, require_extra
from . import _numpy
from .forms import SquaredDistance

SMALL_DIM_MAX = 16  # the raw kernel keeps the query and the value sums in registers up to this size

# ---- CuPy-only (needs a CUDA GPU; exercised by the tests marked ``gpu``) -------------------------
_KERNEL_SOURCE = r"""
extern "C" __global__ void gaussian_reduction_small_dim(
    const SCALAR* queries, const SCALAR* points, const SCALAR* values, const SCALAR* log_weights,
    const long long m, const long long n, SCALAR* log_sum, SCALAR* mean)
{
    const long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= m) return;
    SCALAR x[DIM];
    for (int k = 0; k < DIM; ++k) x[k] = queries[i * DIM + k];
    double running_max = -INFINITY, total = 0.0, sums[NVAL];
    for (int k = 0; k < NVAL; ++k) sums[k] = 0.0;
    for (long long j = 0; j < n; ++j) {
        SCALAR value = log_weights[j];
        for (int k = 0; k < DIM; ++k) {
            const SCALAR diff = x[k] - points[j * DIM + k];
            value -= (SCALAR)0.5 * diff * diff;
        }
        if (value == -INFINITY) continue;  /* zero weight */
        if (value > running_max) {  /* rescale once per new maximum */
            const double scale = exp(running_max - (double)value);
            total *= scale;
            for (int k = 0; k < NVAL; ++k) sums[k] *= scale;
            running_max = value;
        }
        const double weight = exp((double)value - running_max);
        total += weight;
        for (int k = 0; k < NVAL; ++k) sums[k] += weight * values[j * NVAL + k];
    }
    log_sum[i] = (SCALAR)(running_max + log(total));
    for (int k = 0; k < NVAL; ++k) mean[i * NVAL + k] = (SCALAR)(sums[k] / total);
}
"""
_KERNELS = {}


def _raw_kernel(cupy, dtype, dim, n_values):
    key = (dtype.name, dim, n_values)
    if key not in _KERNELS:
        scalar = "float" if dtype.itemsize == 4 else "double"
        _KERNELS[key] = cupy.RawKernel(_KERNEL_SOURCE, "gaussian_reduction_small_dim",
                                       options=(f"-DSCALAR={scalar}", f"-DDIM={dim}", f"-DNVAL={n_values}"))
    return _KERNELS[key]


def _fused_small_dim(queries, points, values, log_weights):
    cupy = require_extra("cupy")
    m, dim = queries.shape
    n = points.shape[0]
    values = points if values is None else values
    log_weights = cupy.zeros(n, dtype=queries.dtype) if log_weights is None else log_weights
    log_sum = cupy.empty(m, dtype=queries.dtype)
    mean = cupy.empty((m, values.shape[1]), dtype=queries.dtype)
    threads = 128
    kernel = _raw_kernel(cupy, queries.dtype, dim, values.shape[1])
    kernel(((m + threads - 1) // threads,), (threads,),
           (cupy.ascontiguousarray(queries), cupy.ascontiguousarray(points), cupy.ascontiguousarray(values),
            cupy.ascontiguousarray(log_weights), cupy.int64(m), cupy.int64(n), log_sum, mean))
    return log_sum, mean
# ---- end of CuPy-only code ---------------------------------------------------------------------


def array_generic_reduction(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """The chunked path in the namespace of the inputs (CuPy on GPU, NumPy in the CPU tests).

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
    """
    return _numpy.reduce(form, queries, points, values, log_weights, gradient, chunk_bytes)


def reduce(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """Reduction of a bound form on CuPy arrays.

    ``SquaredDistance`` with default parameters, small D (and at most 16 values per point) uses the
    fused raw kernel; every other form and size, and NumPy inputs, the array-generic chunked path.

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
    """
    xp = get_namespace(queries, points, values, log_weights)
    n_values = queries.shape[1] if values is None else values.shape[1]
    plain = isinstance(form, SquaredDistance) and form.precision is None and form.offset is None \
        and form.point_scale is None
    if plain and xp.__name__ == "cupy" and queries.shape[1] <= SMALL_DIM_MAX and n_values <= SMALL_DIM_MAX:
        return _fused_small_dim(queries, points, values, log_weights)
    return array_generic_reduction(form, queries, points, values, log_weights, gradient, chunk_bytes)


def _register():
    from .api import register_backend

    if importlib.util.find_spec("cupy") is not None:
        register_backend("cupy", reduce)


_register()
