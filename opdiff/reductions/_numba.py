"""Numba backend: one fused parallel kernel for every form, a blocked matrix-product path for large-D Gaussians.

The one online update (:func:`_online_update`: tile logits to weights, running maximum, rescaling of
the sums once when it grows) and the one merge of partial reductions (:func:`_merge_state`) are
written here once, as inline compiled functions, and every kernel below calls them; they are the
compiled twins of :mod:`opdiff.reductions.online`.

Fused kernel (:func:`_fused`; every table form, and ``SquaredDistance`` for ``D <= 16``): the data
are stored once as a structure of arrays ``(D, n)``. A task is a block of queries and a range of data
tiles; for each data tile (24 KiB of coordinates and values, so it stays in L1) every query of the block writes the
tile's logits into a scratch row (the form's inline function: squared distances with per-query
precision and offset and per-point scale, or a cubic table lookup at ``x . y`` or at ``|x_k - y_k|``
with per-pair table index), folds it into its running reduction and adds the weighted values. The
tile is read from memory once per query block rather than once per query (query tiling), so the cost
is linear in ``n`` at every ``D``. With fewer query blocks than twice the threads the data range is
split too and the partial reductions merged. The exponential is a branch-free Cody-Waite /
polynomial evaluation that LLVM vectorises (relative error ~1e-7 in float32, ~2e-16 in float64); tile
sums are added into float64 accumulators, so float32 keeps ~1e-6 relative accuracy for any ``n``.

Large D (``SquaredDistance``, ``D > 16``): one parallel kernel over tasks (block of <= 256 queries,
range of data tiles), in the style of flash attention. Per data tile, a BLAS product of the centred
queries and data gives the inner products in an L2-sized ``(b, tile)`` scratch block; one pass turns
them into logits (``x.y - |x|^2/2 - |y|^2/2``, clipped at 0, then precision, offset and scale), the
online update writes the exponentials in place; a second BLAS product of that block with the values'
tile adds to the weighted sums. BLAS runs single-threaded inside the Numba threads (threadpoolctl), so
both cores do products and exponentials without oversubscription. For ``D >= THREADED_BLAS_MIN_DIM``
with BLAS allowed as many threads as Numba, whole-chunk products on all BLAS threads (with the same
parallel pass in between, on one ``(b, n)`` block within the chunk budget) are faster; with
single-threaded BLAS (``OMP_NUM_THREADS=1``) the tiled kernel is used at every D.

Memory: a tile of scratch per thread and float64 partial sums for a chunk of queries, within the
chunk budget. All kernels are compiled lazily on first use and cached on disk (``cache=True``).
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
from .forms import CoordinateTable, DotProductTable, SquaredDistance

SMALL_DIM_MAX = 16  # fused per-coordinate kernel up to this dimension, blocked BLAS path above
_TILE_BYTES = 24 * 2**10  # fused kernel: data tile (coordinates and values) kept in L1, reused by a query block
_MAX_TILE = 1024  # fused kernel: at most this many points per tile (scratch rows stay in L1)
_QUERY_BLOCK = 32  # fused kernel: queries per task sharing each data tile
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



# ---- the one online update and the one merge (compiled twins of opdiff.reductions.online) --------------------

@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _online_update(scratch, size, running_max, total, sums):
    """Tile logits ``scratch[:size]`` -> ``exp(logit - max)`` in place, with the running maximum.

    ``sums`` (float64, one row) is rescaled once when the maximum grows; the caller then adds the
    tile's weighted values. Returns ``(running_max, total, skip)``; ``skip`` when every weight of the
    tile is zero (the tile adds nothing).
    """
    tile_max = _tile_max(scratch, size)
    if tile_max == -np.inf:
        return running_max, total, True
    if tile_max > running_max:
        rescale = math.exp(running_max - tile_max)
        total *= rescale
        for k in range(sums.shape[0]):
            sums[k] *= rescale
        running_max = np.float64(tile_max)
    shift = scratch.dtype.type(running_max)
    tile_total = scratch.dtype.type(0.0)
    for j in range(size):
        weight = _exp_nonpositive(scratch[j] - shift)
        scratch[j] = weight
        tile_total += weight
    return running_max, total + tile_total, False


@njit(inline="always", error_model="numpy")
def _merge_state(max_a, total_a, sums_a, max_b, total_b, sums_b):
    """Fold partial reduction ``b`` into ``a`` (``sums_a`` in place); returns ``(max, total)``."""
    if max_b == -np.inf:
        return max_a, total_a
    top = max(max_a, max_b)
    factor_a, factor_b = math.exp(max_a - top), math.exp(max_b - top)
    for k in range(sums_a.shape[0]):
        sums_a[k] = factor_a * sums_a[k] + factor_b * sums_b[k]
    return top, factor_a * total_a + factor_b * total_b


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _accumulate(weights, size, source, offset, sums):
    """``sums[k] += sum_j weights[j] source[k, offset + j]`` for every row ``k`` of ``sums``."""
    for k in range(sums.shape[0]):
        row = source[k, offset:offset + size]  # a slice: Numba's negative-index wraparound blocks vectorisation
        partial = weights.dtype.type(0.0)
        for j in range(size):
            partial += weights[j] * row[j]
        sums[k] += partial


@njit(inline="always", error_model="numpy")
def _split_state(running, totals, sums, split, first, size_q):
    """A task's rows of the per-split partial reductions, reset to the reduction over no data."""
    row_max = running[split, first:first + size_q]
    row_total = totals[split, first:first + size_q]
    row_sums = sums[split, first:first + size_q]
    row_max[:] = -np.inf
    row_total[:] = 0.0
    row_sums[:] = 0.0
    return row_max, row_total, row_sums


# ---- per-form tile logits -----------------------------------------------------------------------------------

SQUARED, DOT, COORDINATE = 0, 1, 2


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _pair_sums(query, points_t, start, size, out, squared, factor):
    """``out[j] += factor sum_k g(x_k, y_jk)`` over the tile, ``g = (x - y)^2`` (``squared``) or ``x y``."""
    for k in range(query.shape[0]):
        coordinate = query[k]
        tile_points = points_t[k, start:start + size]  # a slice: negative-index wraparound blocks vectorisation
        if squared:
            for j in range(size):
                diff = coordinate - tile_points[j]
                out[j] += factor * diff * diff
        else:
            for j in range(size):
                out[j] += factor * coordinate * tile_points[j]


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _squared_logits(query, points_t, start, size, log_weights, rho, offset, half_scale, use_scale, scratch):
    """Tile logits ``log w_i - s_i (rho |x - y_i|^2 + e) / 2`` (``use_scale``; ``half_scale = s / 2``), else
    ``log w_i - rho |x - y_i|^2 / 2``."""
    tile_weights = log_weights[start:start + size]
    if use_scale:
        scratch[:size] = 0.0
        _pair_sums(query, points_t, start, size, scratch, True, scratch.dtype.type(1.0))
        tile_scale = half_scale[start:start + size]
        for j in range(size):
            scratch[j] = tile_weights[j] - tile_scale[j] * (rho * scratch[j] + offset)
    else:  # the offset is one constant per query: added to log_sum at the end
        scratch[:size] = tile_weights
        _pair_sums(query, points_t, start, size, scratch, True, scratch.dtype.type(-0.5) * rho)


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _cubic(z, table, coefficients, lo, inv_step, n_int):
    """Value and slope at ``z`` of packed table ``table`` (``z`` clamped into the table's grid)."""
    position = min(max((z - lo[table]) * inv_step[table], 0.0), np.float64(n_int[table]))
    index = min(np.int64(position), n_int[table] - 1)
    tau = position - index
    a1, a2, a3 = coefficients[table, 1, index], coefficients[table, 2, index], coefficients[table, 3, index]
    value = coefficients[table, 0, index] + tau * (a1 + tau * (a2 + tau * a3))
    return value, (a1 + tau * (2.0 * a2 + 3.0 * tau * a3)) * inv_step[table]


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _dot_logits(query, points_t, start, size, log_weights, base, point_index, coefficients, lo, inv_step, n_int,
                scratch, slopes):
    """``log w_i + f(x . y_i)``; ``slopes`` gets ``f'(x . y_i)``."""
    slopes[:size] = 0.0
    _pair_sums(query, points_t, start, size, slopes, False, slopes.dtype.type(1.0))
    tile_weights = log_weights[start:start + size]
    tile_index = point_index[start:start + size]
    for j in range(size):
        value, slope = _cubic(slopes[j], base + tile_index[j], coefficients, lo, inv_step, n_int)
        scratch[j] = tile_weights[j] + value
        slopes[j] = slope


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _coordinate_logits(query, points_t, start, size, log_weights, base, point_index, coefficients, lo, inv_step,
                       n_int, gradient, scratch, pair):
    """``log w_i + sum_k f(|x_k - y_ik|)``; with ``gradient`` ``pair[k]`` gets ``f'(|d_k|) sign(d_k)``."""
    tile_weights = log_weights[start:start + size]
    tile_index = point_index[start:start + size]
    for j in range(size):
        scratch[j] = tile_weights[j]
    for k in range(query.shape[0]):
        coordinate = query[k]
        tile_points = points_t[k, start:start + size]
        for j in range(size):
            difference = coordinate - tile_points[j]
            value, slope = _cubic(abs(difference), base + tile_index[j], coefficients, lo, inv_step, n_int)
            scratch[j] += value
            if gradient:
                pair[k, j] = slope if difference >= 0 else -slope


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _fused(kind, queries, points_t, values_t, log_weights, query_rho, query_offset, half_scale, use_scale,
           query_base, point_index, coefficients, lo, inv_step, n_int, gradient, tile, query_block,
           running, totals, sums):
    """Fused reduction of every form (module notes); partial reductions per data split into ``running,
    totals (splits, m)`` and ``sums (splits, m, p)`` (float64), merged by :func:`_merge_splits`."""
    m, dim = queries.shape
    n = points_t.shape[1]
    n_splits = running.shape[0]
    n_tiles = (n + tile - 1) // tile
    n_blocks = (m + query_block - 1) // query_block
    pair_rows = dim if (kind == COORDINATE and gradient) else 1
    for task in prange(n_blocks * n_splits):
        block, split = task // n_splits, task % n_splits
        first = block * query_block
        size_q = min(m, first + query_block) - first
        scratch = np.empty(tile, dtype=queries.dtype)
        slopes = np.empty(tile, dtype=queries.dtype)
        pair = np.empty((pair_rows, tile), dtype=queries.dtype)
        row_max, row_total, row_sums = _split_state(running, totals, sums, split, first, size_q)
        for tile_index in range(split * n_tiles // n_splits, (split + 1) * n_tiles // n_splits):
            start = tile_index * tile
            size = min(tile, n - start)
            for r in range(size_q):
                i = first + r
                if kind == SQUARED:
                    _squared_logits(queries[i], points_t, start, size, log_weights, query_rho[i], query_offset[i],
                                    half_scale, use_scale, scratch)
                elif kind == DOT:
                    _dot_logits(queries[i], points_t, start, size, log_weights, query_base[i], point_index,
                                coefficients, lo, inv_step, n_int, scratch, slopes)
                else:
                    _coordinate_logits(queries[i], points_t, start, size, log_weights, query_base[i], point_index,
                                       coefficients, lo, inv_step, n_int, gradient, scratch, pair)
                new_max, new_total, skip = _online_update(scratch, size, row_max[r], row_total[r], row_sums[r])
                row_max[r], row_total[r] = new_max, new_total
                if skip:
                    continue
                if kind == COORDINATE and gradient:
                    _accumulate(scratch, size, pair, 0, row_sums[r])
                elif kind == DOT and gradient:
                    for j in range(size):
                        scratch[j] *= slopes[j]
                    _accumulate(scratch, size, points_t, start, row_sums[r])
                else:
                    _accumulate(scratch, size, values_t, start, row_sums[r])


@njit(inline="always", fastmath=_FLAGS, error_model="numpy")
def _gaussian_row(row, size, half_norm, point_half_norms, log_weights, rho, half_offset, scale, use_scale):
    """Inner products ``x . y_i`` (centred) in ``row`` -> logits ``log w_i - s_i (rho |x - y_i|^2 + e) / 2``."""
    zero = row.dtype.type(0.0)
    if use_scale:
        for j in range(size):
            # -|x - y|^2 / 2 = x.y - |x|^2/2 - |y|^2/2, clipped at 0 against cancellation
            row[j] = log_weights[j] + scale[j] * (rho * min(row[j] - half_norm - point_half_norms[j], zero)
                                                  - half_offset)
    else:
        for j in range(size):
            row[j] = log_weights[j] + rho * min(row[j] - half_norm - point_half_norms[j], zero)


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _tiled_large_dim(queries, points, values, point_half_norms, log_weights, query_rho, query_half_offset, scale,
                     use_scale, query_block, tile, running, totals, sums):
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
    n_tiles = (n + tile - 1) // tile
    n_blocks = (m + query_block - 1) // query_block
    for task in prange(n_blocks * n_splits):
        block_index, split = task // n_splits, task % n_splits
        first = block_index * query_block
        size_q = min(m, first + query_block) - first
        block_queries = queries[first:first + size_q]
        half_norms = np.empty(size_q, dtype=dtype)
        for r in range(size_q):
            acc = dtype.type(0.0)
            for k in range(dim):
                acc += block_queries[r, k] * block_queries[r, k]
            half_norms[r] = dtype.type(0.5) * acc
        # flat scratch, reshaped per tile: a (size_q, size) view of a (query_block, tile) array is not contiguous
        scratch = np.empty(query_block * tile, dtype=dtype)
        partial_flat = np.empty(query_block * n_values, dtype=dtype)
        row_max, row_total, row_sums = _split_state(running, totals, sums, split, first, size_q)
        for tile_index in range(split * n_tiles // n_splits, (split + 1) * n_tiles // n_splits):
            start = tile_index * tile
            size = min(tile, n - start)
            block = scratch[:size_q * size].reshape((size_q, size))
            np.dot(block_queries, points[start:start + size].T, block)
            for r in range(size_q):
                row = block[r]
                _gaussian_row(row, size, half_norms[r], point_half_norms[start:start + size],
                              log_weights[start:start + size], query_rho[first + r], query_half_offset[first + r],
                              scale[start:start + size], use_scale)
                new_max, new_total, skip = _online_update(row, size, row_max[r], row_total[r], row_sums[r])
                row_max[r], row_total[r] = new_max, new_total
                if skip:
                    row[:] = 0.0  # weights of this tile for the product below
            if n_values > 0:
                partial = partial_flat[:size_q * n_values].reshape((size_q, n_values))
                np.dot(block, values[start:start + size], partial)
                for r in range(size_q):
                    for k in range(n_values):
                        row_sums[r, k] += partial[r, k]


@njit(parallel=True, fastmath=_FLAGS, error_model="numpy", cache=True)
def _softmax_rows(block, query_half_norms, point_half_norms, log_weights, query_rho, query_half_offset, scale,
                  use_scale, running, totals):
    """In place: inner products ``(b, n)`` -> weights relative to each row's maximum; ``running``, ``totals``."""
    no_sums = np.empty(0)
    for r in prange(block.shape[0]):
        row = block[r]
        _gaussian_row(row, row.shape[0], query_half_norms[r], point_half_norms, log_weights, query_rho[r],
                      query_half_offset[r], scale, use_scale)
        running[r], totals[r], skip = _online_update(row, row.shape[0], -np.inf, 0.0, no_sums)
        if skip:
            row[:] = 0.0


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
    """Merge the per-split partial reductions into ``log_sum``, ``mean`` (a row of no weight: ``-inf``, 0)."""
    n_splits, m = running.shape
    for r in prange(m):
        top, total = running[0, r], totals[0, r]
        merged = sums[0, r]
        for s in range(1, n_splits):
            top, total = _merge_state(top, total, merged, running[s, r], totals[s, r], sums[s, r])
        log_sum[r] = top + math.log(total) if total > 0 else -np.inf
        for k in range(mean.shape[1]):
            mean[r, k] = merged[k] / total if total > 0 else 0.0


def _thread_count():
    return max(1, numba.get_num_threads())


def _split_partials(m, n_values, n_splits, chunk_bytes):
    """Query-row chunks for float64 partial sums ``(splits, rows, p + 2)`` within the chunk budget."""
    return chunk_rows(m, 8 * n_splits * (n_values + 2), chunk_bytes)


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


def _fused_blocks(m, n, dim, n_values, itemsize, scratch_rows, chunk_bytes):
    """``(query_block, tile, n_splits)`` for :func:`_fused`.

    A data tile of coordinates and values within ``_TILE_BYTES`` (L1), at most ``_MAX_TILE`` points,
    each thread's ``scratch_rows`` scratch rows within the chunk budget; blocks of up to 32 queries,
    fewer when there are fewer than two blocks per thread, then the data range split across tasks.
    """
    threads = _thread_count()
    budget = (chunk_bytes or get_chunk_bytes()) // threads
    tile = _TILE_BYTES // ((dim + n_values) * itemsize)
    tile = int(max(16, min(_MAX_TILE, n, tile, budget // (scratch_rows * itemsize))))
    query_block = max(1, min(_QUERY_BLOCK, -(-m // (2 * threads))))
    n_blocks = -(-m // query_block)
    n_tiles = -(-n // tile)
    return query_block, tile, max(1, min(-(-2 * threads // n_blocks), n_tiles))


_NO_INDEX = np.zeros(1, dtype=np.int64)
_NO_TABLE = (np.zeros((1, 4, 1)), np.zeros(1), np.ones(1), np.ones(1, dtype=np.int64))


def _run_fused(kind, queries, points, values, log_weights, squared, tables, gradient, chunk_bytes):
    """Shared driver of :func:`_fused`: layout, blocking, chunks of partial sums, merge."""
    dtype = queries.dtype
    (m, dim), n = queries.shape, points.shape[0]
    points_t = np.ascontiguousarray(points.T)
    values_t = points_t if values is None else np.ascontiguousarray(values.T)
    n_values = dim if gradient else values_t.shape[0]
    query_rho, query_offset, half_scale, use_scale = squared
    query_base, point_index, coefficients, lo, inv_step, n_int = tables
    scratch_rows = 3 + (dim if kind == COORDINATE and gradient else 0)
    query_block, tile, n_splits = _fused_blocks(m, n, dim, values_t.shape[0], dtype.itemsize, scratch_rows,
                                                chunk_bytes)
    log_sum, mean = np.empty(m, dtype=dtype), np.empty((m, n_values), dtype=dtype)
    for rows in _split_partials(m, n_values, n_splits, chunk_bytes):
        size = rows.stop - rows.start
        running, totals = np.empty((n_splits, size)), np.empty((n_splits, size))
        sums = np.empty((n_splits, size, n_values))
        _fused(kind, queries[rows], points_t, values_t, log_weights, query_rho[rows], query_offset[rows], half_scale,
               use_scale, query_base[rows] if query_base.shape[0] == m else query_base, point_index,
               coefficients, lo, inv_step, n_int, gradient, tile, query_block, running, totals, sums)
        _merge_splits(running, totals, sums, log_sum[rows], mean[rows])
    return log_sum, mean


def _squared_parameters(form, m, n, dtype):
    """``(rho (m,), e (m,), s or s / 2 (n,), use_scale)`` arrays for the kernels, from a bound form."""
    rho = np.ones(m, dtype=dtype) if form.precision is None else np.ascontiguousarray(form.precision, dtype=dtype)
    offset = np.zeros(m, dtype=dtype) if form.offset is None else np.ascontiguousarray(form.offset, dtype=dtype)
    use_scale = form.point_scale is not None
    scale = np.ascontiguousarray(form.point_scale, dtype=dtype) if use_scale else np.ones(1, dtype=dtype)
    return rho, offset, scale, use_scale


def _squared_distance(form, queries, points, values, log_weights, chunk_bytes):
    dtype = queries.dtype
    (m, dim), n = queries.shape, points.shape[0]
    rho, offset, scale, use_scale = _squared_parameters(form, m, n, dtype)
    if dim <= SMALL_DIM_MAX:
        log_sum, mean = _run_fused(SQUARED, queries, points, values, log_weights,
                                   (rho, offset, (0.5 * scale).astype(dtype), use_scale),
                                   (_NO_INDEX,) * 2 + _NO_TABLE, False, chunk_bytes)
    else:
        log_sum, mean = _large_dim(queries, points, values, log_weights, rho, 0.5 * offset, scale, use_scale,
                                   chunk_bytes)
    if not use_scale:
        log_sum -= 0.5 * offset  # the offset is a constant per query when no point is scaled
    return log_sum, mean


def _large_dim(queries, points, values, log_weights, rho, half_offset, scale, use_scale, chunk_bytes):
    """Large-D Gaussian: threaded-BLAS chunks for the largest D, else the tiled kernel (module notes)."""
    dtype = queries.dtype
    (m, dim), n = queries.shape, points.shape[0]
    centre = points.mean(axis=0)
    centred_points, point_half_norms = np.empty((n, dim), dtype=dtype), np.empty(n, dtype=dtype)
    _centre_rows(points, centre, centred_points, point_half_norms)
    values = np.ascontiguousarray(points if values is None else values)
    n_values = values.shape[1]
    centred_queries = queries - centre
    log_sum, mean = np.empty(m, dtype=dtype), np.empty((m, n_values), dtype=dtype)
    half_offset = half_offset.astype(dtype)
    if dim >= THREADED_BLAS_MIN_DIM and blas_threads() >= _thread_count():
        query_half_norms = 0.5 * np.einsum("ij,ij->i", centred_queries, centred_queries)
        running, totals = np.empty(m), np.empty(m)
        for rows in chunk_rows(m, n * dtype.itemsize, chunk_bytes):  # one (b, n) block alive at a time
            block = centred_queries[rows] @ centred_points.T
            _softmax_rows(block, query_half_norms[rows], point_half_norms, log_weights, rho[rows], half_offset[rows],
                          scale, use_scale, running[rows], totals[rows])
            np.matmul(block, values, out=mean[rows])
            mean[rows] /= totals[rows, None]
        log_sum[:] = running + np.log(totals)
        return log_sum, mean
    with single_threaded_blas():
        for rows in chunk_rows(m, 8 * (n_values + 2), chunk_bytes):
            size = rows.stop - rows.start
            query_block, tile, n_splits = _large_dim_blocks(size, n, dim, dtype.itemsize, chunk_bytes)
            running, totals = np.empty((n_splits, size)), np.empty((n_splits, size))
            sums = np.empty((n_splits, size, n_values))
            _tiled_large_dim(centred_queries[rows], centred_points, values, point_half_norms, log_weights,
                             rho[rows], half_offset[rows], scale, use_scale, query_block, tile, running, totals, sums)
            _merge_splits(running, totals, sums, log_sum[rows], mean[rows])
    return log_sum, mean


def _tabulated(form, queries, points, values, log_weights, gradient, chunk_bytes):
    packed = form.packed_
    m, n = queries.shape[0], points.shape[0]
    base = np.zeros(m, dtype=np.int64) if form.query_index is None else form.query_index * packed.n_point_tables
    index = np.zeros(n, dtype=np.int64) if form.point_index is None else np.ascontiguousarray(form.point_index)
    kind = DOT if isinstance(form, DotProductTable) else COORDINATE
    ones = np.ones(m)
    return _run_fused(kind, queries, points, values, log_weights, (ones, ones, ones, False),
                      (np.ascontiguousarray(base), index, packed.coefficients, packed.lo, packed.inv_step,
                       packed.n_int), gradient, chunk_bytes)


def reduce(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """Numba reduction of a bound form: the fused kernel, or the large-D Gaussian path.

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
    """
    queries = np.ascontiguousarray(queries)
    dtype = queries.dtype
    n = points.shape[0]
    log_weights = np.zeros(n, dtype=dtype) if log_weights is None else np.ascontiguousarray(log_weights, dtype=dtype)
    if isinstance(form, SquaredDistance):
        return _squared_distance(form, queries, points, values, log_weights, chunk_bytes)
    return _tabulated(form, queries, points, values, log_weights, gradient, chunk_bytes)


def unsupported(form):
    """Why the Numba backend cannot serve ``form`` (None: it can); see :func:`opdiff.reductions.register_backend`."""
    if isinstance(form, (SquaredDistance, DotProductTable, CoordinateTable)):
        return None
    return "only SquaredDistance, DotProductTable and CoordinateTable have fused kernels (use backend='numpy')"


def _register():
    from .api import register_backend

    register_backend("numba", reduce, unsupported)


_register()
