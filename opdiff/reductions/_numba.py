"""Numba backend: fused parallel kernels for small D, a blocked matrix-product path for large D.

Small D (``D <= 16``): one fused kernel per query row. The data are stored once as a
structure of arrays ``(D, n)``; each query walks the data in tiles: it writes the tile's
log-kernels ``log w_i - |x - y_i|^2 / 2`` into a scratch row, takes the tile maximum, rescales
its running sums once if the maximum grew, then adds ``exp(l_i - max)`` and the weighted values.
The exponential is a branch-free Cody-Waite / polynomial evaluation that LLVM vectorises
(relative error ~1e-7 in float32, ~2e-16 in float64); tile sums are added into float64
accumulators, so float32 keeps ~1e-6 relative accuracy for any ``n``.

Large D: chunks of queries within the chunk budget. Per chunk, one BLAS product with the centred
data gives the inner products; a parallel fused pass per row turns them into log-kernels
(``x.y - |x|^2/2 - |y|^2/2``, clipped at 0), takes the row maximum and sums the exponentials in
place; a second BLAS product of those weights with the values gives the mean.

Memory: small D, one tile of scratch per thread; large D, one ``(b, n)`` block within the chunk
budget. All kernels are compiled lazily on first use and cached on disk (``cache=True``).
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from ..backend import chunk_rows, get_chunk_bytes

SMALL_DIM_MAX = 16  # fused per-coordinate kernel up to this dimension, blocked BLAS path above
_TILE = 1024  # data points per tile in the fused kernel (scratch row stays in L1)
_QUERY_BLOCK = 16  # queries per parallel task in the fused kernel
# Reassociation (vectorised reductions) and FMA contraction, but no 'nnan'/'ninf':
# log-weights may be -inf and must stay -inf.
_FLAGS = {"reassoc", "contract", "nsz", "arcp", "afn"}

# Cody-Waite split of log(2) and polynomial coefficients (Cephes expf / exp).
_LOG2E_32, _LN2_HI_32, _LN2_LO_32 = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
_P32 = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                     1.6666665459e-1, 5.0000001201e-1))
_EXP_MIN_32 = np.float32(-87.0)  # exp below this is < 1.7e-38 relative to the maximum: returned as 0
_LN2_HI_64, _LN2_LO_64 = 6.93145751953125e-1, 1.42860682030941723212e-6
_P64 = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))  # Taylor to r^13: < 1e-17 on |r| <= ln2/2
_EXP_MIN_64 = -708.0


@intrinsic
def _bits_of_float(typingctx, value):
    """Reinterpret a float32 (float64) as an int32 (int64) with the same bits."""
    if value not in (types.float32, types.float64):
        raise TypingError("_bits_of_float: expected float32 or float64")
    width = 32 if value == types.float32 else 64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(width))

    return types.int32(value) if width == 32 else types.int64(value), codegen


def _order_key(value):
    """Integer key with the order of the float ``value``; stub for typing (Numba only)."""
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(_order_key, inline="always")
def _order_key_overload(value):
    shift, mask = (31, 0x7FFFFFFF) if value == types.float32 else (63, 0x7FFFFFFFFFFFFFFF)

    def order_key(value):
        bits = _bits_of_float(value)
        return bits ^ ((bits >> shift) & mask)
    return order_key


@njit(inline="always", error_model="numpy")
def _tile_max(values, size):
    """``max(values[:size])`` via integer order keys: integer max reductions vectorise, float ones do not."""
    best = _order_key(values[0])
    for j in range(1, size):
        best = max(best, _order_key(values[j]))
    shift = 8 * values.itemsize - 1
    return _float_from_bits(best ^ ((best >> shift) & ((1 << shift) - 1)), values[0])


@intrinsic
def _float_from_bits(typingctx, bits, like):
    """Reinterpret the low 32 (float32) or 64 (float64) bits of an integer as a float."""
    if not isinstance(bits, types.Integer) or like not in (types.float32, types.float64):
        raise TypingError("_float_from_bits: expected an integer and a float32/float64 template")
    width, llvm_type = (32, ir.FloatType()) if like == types.float32 else (64, ir.DoubleType())

    def codegen(context, builder, signature, args):
        value = args[0]
        int_type = ir.IntType(width)
        if bits.bitwidth > width:
            value = builder.trunc(value, int_type)
        elif bits.bitwidth < width:
            value = builder.sext(value, int_type)
        return builder.bitcast(value, llvm_type)

    return like(bits, like), codegen


def _exp_nonpositive(x):
    """``exp(x)`` for ``x <= 0`` (``-inf`` allowed), vectorisable; pure-Python stub for typing."""
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(_exp_nonpositive, inline="always", fastmath=_FLAGS)
def _exp_nonpositive_overload(x):
    if x == types.float32:
        def exp32(x):
            t = max(x, _EXP_MIN_32)
            k = np.floor(t * _LOG2E_32 + np.float32(0.5))
            exponent = np.int64(k)
            # the second factor is k again, through an integer round trip, so that 'reassoc' cannot
            # fold k * hi + k * lo into k * (hi + lo) and undo the Cody-Waite split
            r = t - k * _LN2_HI_32 - np.float32(exponent) * _LN2_LO_32
            poly = _P32[0]
            poly = poly * r + _P32[1]
            poly = poly * r + _P32[2]
            poly = poly * r + _P32[3]
            poly = poly * r + _P32[4]
            poly = poly * r + _P32[5]
            poly = poly * (r * r) + r + np.float32(1.0)
            scale = _float_from_bits((exponent + 127) << 23, np.float32(0.0))
            return poly * scale if x >= _EXP_MIN_32 else np.float32(0.0)
        return exp32
    if x == types.float64:
        def exp64(x):
            t = max(x, _EXP_MIN_64)
            k = np.floor(t * 1.4426950408889634 + 0.5)
            exponent = np.int64(k)
            r = t - k * _LN2_HI_64 - np.float64(exponent) * _LN2_LO_64  # see exp32
            poly = _P64[0]
            for c in _P64[1:]:
                poly = poly * r + c
            scale = _float_from_bits((exponent + 1023) << 52, 0.0)
            return poly * scale if x >= _EXP_MIN_64 else 0.0
        return exp64
    return None


@njit(fastmath=_FLAGS, error_model="numpy", cache=True)
def _exp_array(x, out):
    """Vectorised ``exp`` of an array of non-positive values (test hook for the scalar routine)."""
    for i in range(x.shape[0]):
        out[i] = _exp_nonpositive(x[i])
    return out


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _fused_small_dim(queries, points_t, values_t, log_weights, tile, query_block, log_sum, mean):
    """Fused reduction; ``points_t (D, n)`` and ``values_t (p, n)`` in structure-of-arrays layout."""
    m, dim = queries.shape
    n = points_t.shape[1]
    n_values = values_t.shape[0]
    zero = queries.dtype.type(0.0)
    half = queries.dtype.type(0.5)
    n_blocks = (m + query_block - 1) // query_block
    for block in prange(n_blocks):
        scratch = np.empty(tile, dtype=queries.dtype)
        sums = np.empty(n_values, dtype=np.float64)
        for i in range(block * query_block, min(m, (block + 1) * query_block)):
            running_max = -np.inf
            total = 0.0
            sums[:] = 0.0
            for start in range(0, n, tile):
                # slices, not start + j indices: Numba's negative-index wraparound blocks vectorisation
                size = min(tile, n - start)
                tile_weights = log_weights[start:start + size]
                coordinate = queries[i, 0]
                tile_points = points_t[0, start:start + size]
                for j in range(size):
                    diff = coordinate - tile_points[j]
                    scratch[j] = tile_weights[j] - half * diff * diff
                for k in range(1, dim):
                    coordinate = queries[i, k]
                    tile_points = points_t[k, start:start + size]
                    for j in range(size):
                        diff = coordinate - tile_points[j]
                        scratch[j] -= half * diff * diff
                tile_max = _tile_max(scratch, size)
                if tile_max == -np.inf:
                    continue  # every weight in this tile is zero
                if tile_max > running_max:
                    rescale = math.exp(running_max - tile_max)
                    total *= rescale
                    for k in range(n_values):
                        sums[k] *= rescale
                    running_max = tile_max
                shift = queries.dtype.type(running_max)
                tile_total = zero
                for j in range(size):
                    weight = _exp_nonpositive(scratch[j] - shift)
                    scratch[j] = weight
                    tile_total += weight
                total += tile_total
                for k in range(n_values):
                    tile_values = values_t[k, start:start + size]
                    partial = zero
                    for j in range(size):
                        partial += scratch[j] * tile_values[j]
                    sums[k] += partial
            log_sum[i] = running_max + math.log(total)
            for k in range(n_values):
                mean[i, k] = sums[k] / total


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _softmax_rows(block, query_half_norms, point_half_norms, log_weights, log_sum, totals):
    """In place: inner products ``(b, n)`` -> unnormalised softmax weights; ``log_sum``, row ``totals``."""
    zero = block.dtype.type(0.0)
    for r in prange(block.shape[0]):
        row = block[r]
        offset = query_half_norms[r]
        for j in range(row.shape[0]):
            # -|x - y|^2 / 2 = x.y - |x|^2/2 - |y|^2/2, clipped at 0 against cancellation
            row[j] = min(row[j] - offset - point_half_norms[j], zero) + log_weights[j]
        row_max = _tile_max(row, row.shape[0])
        total = zero
        for j in range(row.shape[0]):
            weight = _exp_nonpositive(row[j] - row_max)
            row[j] = weight
            total += weight
        log_sum[r] = row_max + math.log(total)
        totals[r] = total


def _thread_count():
    return max(1, numba.get_num_threads())


def gaussian_reduction(queries, points, values, log_weights, chunk_bytes=None):
    """Gaussian kernel ``exp(-|x-y|^2/2)`` with Numba; see :func:`opdiff.reductions.gaussian_reduction`."""
    queries = np.ascontiguousarray(queries)
    dtype = queries.dtype
    m, dim = queries.shape
    n = points.shape[0]
    log_weights = np.zeros(n, dtype=dtype) if log_weights is None else np.ascontiguousarray(log_weights, dtype=dtype)
    n_values = dim if values is None else values.shape[1]
    log_sum = np.empty(m, dtype=dtype)
    mean = np.empty((m, n_values), dtype=dtype)
    if dim <= SMALL_DIM_MAX:
        budget = (chunk_bytes or get_chunk_bytes()) // _thread_count()
        points_t = np.ascontiguousarray(points.T)
        values_t = points_t if values is None else np.ascontiguousarray(values.T)
        tile = int(max(16, min(_TILE, n, budget // dtype.itemsize)))
        _fused_small_dim(queries, points_t, values_t, log_weights, tile, _QUERY_BLOCK, log_sum, mean)
        return log_sum, mean
    # Large D: BLAS products per chunk of queries (all BLAS threads), fused parallel softmax in between.
    centre = points.mean(axis=0)
    centred_points = points - centre
    point_half_norms = 0.5 * np.einsum("ij,ij->i", centred_points, centred_points)
    values = points if values is None else values
    totals = np.empty(m, dtype=dtype)
    row_bytes = n * dtype.itemsize  # one (b, n) block alive at a time
    for rows in chunk_rows(m, row_bytes, chunk_bytes):
        block_queries = queries[rows] - centre
        block = block_queries @ centred_points.T
        query_half_norms = 0.5 * np.einsum("ij,ij->i", block_queries, block_queries)
        _softmax_rows(block, query_half_norms, point_half_norms, log_weights, log_sum[rows], totals[rows])
        mean[rows] = block @ values
        mean[rows] /= totals[rows, None]
    return log_sum, mean




def _register():
    from .api import register_backend

    register_backend("numba", gaussian_reduction)


_register()
