"""Numba backend: fused parallel kernels for small D, a blocked matrix-product path for large D.

Small D (``D <= 16``): one fused kernel per query row. The data are stored once as a
structure of arrays ``(D, n)``; each query walks the data in tiles: it writes the tile's
log-kernels ``log w_i - |x - y_i|^2 / 2`` into a scratch row, takes the tile maximum, rescales
its running sums once if the maximum grew, then adds ``exp(l_i - max)`` and the weighted values.
The exponential is a branch-free Cody-Waite / polynomial evaluation that LLVM vectorises
(relative error ~1e-7 in float32, ~2e-16 in float64); tile sums are added into float64
accumulators, so float32 keeps ~1e-6 relative accuracy for any ``n``.

Large D: one parallel kernel over tasks (block of <= 256 queries, range of data tiles), in the style
of flash attention. Per data tile, a BLAS product of the centred queries and data gives the inner
products in an L2-sized ``(b, tile)`` scratch block; one pass turns them into log-kernels
(``x.y - |x|^2/2 - |y|^2/2``, clipped at 0), takes the row maxima, rescales the running sums when a
maximum grew and writes the exponentials in place; a second BLAS product of that block with the
values' tile adds to the weighted sums. BLAS runs single-threaded inside the Numba threads
(threadpoolctl), so both cores do products and exponentials without oversubscription. With fewer
query blocks than twice the threads the data range is split too, and the partial reductions merged.
For ``D >= THREADED_BLAS_MIN_DIM`` with BLAS allowed as many threads as Numba, the products dominate
and whole-chunk products on all BLAS threads (with the same parallel softmax pass in between, on one
``(b, n)`` block within the chunk budget) are faster; with single-threaded BLAS (``OMP_NUM_THREADS=1``)
the tiled kernel is used at every D.

Memory: small D, one tile of scratch per thread; large D, one ``(b, tile)`` block per thread and
float64 partial sums for a chunk of queries, both within the chunk budget. All kernels are compiled
lazily on first use and cached on disk (``cache=True``).
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from ..backend import chunk_rows, get_chunk_bytes
from ..backend.threads import blas_threads, single_threaded_blas

SMALL_DIM_MAX = 16  # fused per-coordinate kernel up to this dimension, blocked BLAS path above
_TILE = 1024  # data points per tile in the fused kernel (scratch row stays in L1)
_QUERY_BLOCK = 16  # queries per parallel task in the fused kernel
_LARGE_QUERY_BLOCK = 256  # large D: queries per task (rows of both BLAS products)
_LARGE_BLOCK_BYTES = 2 * 2**20  # large D: (query block, data tile) scratch, kept in L2
_LARGE_TILE_BYTES = 24 * 2**20  # large D: data tile (tile x D) read by the first product
# from this dimension on, when BLAS has as many threads as Numba, whole-chunk threaded products beat the tiled kernel
THREADED_BLAS_MIN_DIM = 1024
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
def _tiled_large_dim(queries, points, values, point_half_norms, log_weights, query_block, tile, running, totals,
                     sums):
    """Online-softmax reduction over (query block, data tile) pairs, BLAS products inside each task.

    ``queries (m, D)`` and ``points (n, D)`` centred; ``values (n, p)``. The data tiles are split into
    ``running.shape[0]`` contiguous ranges; task (block, split) writes, for its rows and its range, the
    running maximum ``running[split]``, the sum of ``exp(l - max)`` ``totals[split]`` and the weighted
    value sums ``sums[split]`` (all float64). :func:`_merge_splits` combines the ranges.
    """
    m, dim = queries.shape
    n = points.shape[0]
    n_values = values.shape[1]
    n_splits = running.shape[0]
    dtype = queries.dtype
    zero = dtype.type(0.0)
    n_tiles = (n + tile - 1) // tile
    n_blocks = (m + query_block - 1) // query_block
    for task in prange(n_blocks * n_splits):
        block_index, split = task // n_splits, task % n_splits
        first = block_index * query_block
        size_q = min(m, first + query_block) - first
        block_queries = queries[first:first + size_q]
        half_norms = np.empty(size_q, dtype=dtype)
        for r in range(size_q):
            acc = zero
            for k in range(dim):
                acc += block_queries[r, k] * block_queries[r, k]
            half_norms[r] = dtype.type(0.5) * acc
        # flat scratch, reshaped per tile: a (size_q, size) view of a (query_block, tile) array is not contiguous
        scratch = np.empty(query_block * tile, dtype=dtype)
        partial_flat = np.empty(query_block * n_values, dtype=dtype)
        row_max = running[split, first:first + size_q]
        row_total = totals[split, first:first + size_q]
        row_sums = sums[split, first:first + size_q]
        row_max[:] = -np.inf
        row_total[:] = 0.0
        row_sums[:] = 0.0
        for tile_index in range(split * n_tiles // n_splits, (split + 1) * n_tiles // n_splits):
            start = tile_index * tile
            size = min(tile, n - start)
            block = scratch[:size_q * size].reshape((size_q, size))
            np.dot(block_queries, points[start:start + size].T, block)
            tile_weights = log_weights[start:start + size]
            tile_norms = point_half_norms[start:start + size]
            for r in range(size_q):
                row = block[r]
                offset = half_norms[r]
                for j in range(size):
                    # -|x - y|^2 / 2 = x.y - |x|^2/2 - |y|^2/2, clipped at 0 against cancellation
                    row[j] = min(row[j] - offset - tile_norms[j], zero) + tile_weights[j]
                new_max = max(row_max[r], np.float64(_tile_max(row, size)))
                if new_max > row_max[r]:
                    rescale = math.exp(row_max[r] - new_max)
                    row_total[r] *= rescale
                    for k in range(n_values):
                        row_sums[r, k] *= rescale
                    row_max[r] = new_max
                shift = dtype.type(new_max) if new_max > -np.inf else zero  # all-zero weights so far: exp(-inf) = 0
                tile_total = zero
                for j in range(size):
                    weight = _exp_nonpositive(row[j] - shift)
                    row[j] = weight
                    tile_total += weight
                row_total[r] += tile_total
            if n_values > 0:
                partial = partial_flat[:size_q * n_values].reshape((size_q, n_values))
                np.dot(block, values[start:start + size], partial)
                for r in range(size_q):
                    for k in range(n_values):
                        row_sums[r, k] += partial[r, k]


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _softmax_rows(block, query_half_norms, point_half_norms, log_weights, log_sum, totals):
    """In place: inner products ``(b, n)`` -> unnormalised softmax weights; ``log_sum``, row ``totals``."""
    zero = block.dtype.type(0.0)
    for r in prange(block.shape[0]):
        row = block[r]
        offset = query_half_norms[r]
        for j in range(row.shape[0]):
            row[j] = min(row[j] - offset - point_half_norms[j], zero) + log_weights[j]  # as in _tiled_large_dim
        row_max = _tile_max(row, row.shape[0])
        total = zero
        for j in range(row.shape[0]):
            weight = _exp_nonpositive(row[j] - row_max)
            row[j] = weight
            total += weight
        log_sum[r] = row_max + math.log(total)
        totals[r] = total


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _centre_rows(points, centre, out, half_norms):
    """``out = points - centre`` and ``half_norms = |out|^2 / 2`` per row, in one parallel pass."""
    dim = points.shape[1]
    for i in prange(points.shape[0]):
        acc = points.dtype.type(0.0)
        for k in range(dim):
            value = points[i, k] - centre[k]
            out[i, k] = value
            acc += value * value
        half_norms[i] = points.dtype.type(0.5) * acc


@njit(parallel=True, error_model="numpy", cache=True)
def _merge_splits(running, totals, sums, log_sum, mean):
    """Combine the per-range partial reductions of :func:`_tiled_large_dim` (ranges of zero weight drop out)."""
    n_splits, m = running.shape
    for r in prange(m):
        top = -np.inf
        for s in range(n_splits):
            top = max(top, running[s, r])
        total = 0.0
        for k in range(mean.shape[1]):
            mean[r, k] = 0.0
        for s in range(n_splits):
            if running[s, r] > -np.inf:
                factor = math.exp(running[s, r] - top)
                total += factor * totals[s, r]
                for k in range(mean.shape[1]):
                    mean[r, k] += factor * sums[s, r, k]
        log_sum[r] = top + math.log(total)
        for k in range(mean.shape[1]):
            mean[r, k] /= total


def _thread_count():
    return max(1, numba.get_num_threads())


def _large_dim_blocks(m, n, dim, itemsize, chunk_bytes):
    """``(query_block, tile, n_splits)`` for the large-D kernel.

    Blocks of up to 256 queries (BLAS packs each data tile once per block: larger blocks amortise it);
    a ``(query_block, tile)`` scratch block of ~2 MiB (L2) between the product, the exp pass and the
    second product; a data tile (``tile x D``) of at most ~24 MiB; every thread's block within the
    chunk budget. With fewer query blocks than twice the threads the data range is split as well.
    Tuned on 2 Zen 4 cores (benchmarks/README.md): d = 64 and d = 3072, float32 and float64.
    """
    threads = _thread_count()
    budget = max(16, (chunk_bytes or get_chunk_bytes()) // (threads * itemsize))  # scratch elements per thread
    query_block = max(1, min(_LARGE_QUERY_BLOCK, m, budget // 16))
    tile = min(_LARGE_BLOCK_BYTES // (query_block * itemsize), _LARGE_TILE_BYTES // (dim * itemsize),
               budget // query_block, n)
    wanted_splits = -(-2 * threads // -(-m // query_block))
    tile = max(1, min(tile, -(-n // wanted_splits)))
    return query_block, tile, min(wanted_splits, -(-n // tile))


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
    # Large D: see the module notes (threaded-BLAS chunks for the largest D, else the tiled kernel).
    centre = points.mean(axis=0)
    centred_points, point_half_norms = np.empty((n, dim), dtype=dtype), np.empty(n, dtype=dtype)
    _centre_rows(points, centre, centred_points, point_half_norms)
    values = np.ascontiguousarray(points if values is None else values)
    centred_queries = queries - centre
    if dim >= THREADED_BLAS_MIN_DIM and blas_threads() >= _thread_count():
        # the products dominate: whole-chunk products on all BLAS threads, parallel softmax pass in between
        query_half_norms = 0.5 * np.einsum("ij,ij->i", centred_queries, centred_queries)
        totals = np.empty(m, dtype=dtype)
        for rows in chunk_rows(m, n * dtype.itemsize, chunk_bytes):  # one (b, n) block alive at a time
            block = centred_queries[rows] @ centred_points.T
            _softmax_rows(block, query_half_norms[rows], point_half_norms, log_weights, log_sum[rows], totals[rows])
            np.matmul(block, values, out=mean[rows])
            mean[rows] /= totals[rows, None]
        return log_sum, mean
    # float64 partial sums (max, total, p sums) per query row and data split, within the chunk budget
    with single_threaded_blas():
        for rows in chunk_rows(m, 8 * (n_values + 2), chunk_bytes):
            size = rows.stop - rows.start
            query_block, tile, n_splits = _large_dim_blocks(size, n, dim, dtype.itemsize, chunk_bytes)
            running, totals = np.empty((n_splits, size)), np.empty((n_splits, size))
            sums = np.empty((n_splits, size, n_values))
            _tiled_large_dim(centred_queries[rows], centred_points, values, point_half_norms, log_weights,
                             query_block, tile, running, totals, sums)
            _merge_splits(running, totals, sums, log_sum[rows], mean[rows])
    return log_sum, mean


def _register():
    from .api import register_backend

    register_backend("numba", gaussian_reduction)


_register()
