"""The one online log-sum-exp / softmax update and the one merge, in the array namespace of the inputs.

A partial reduction of a row ``j`` over some of the data is the triple ``(running_max_j, total_j,
sums_j)`` with ``total_j = sum_i exp(l_ji - running_max_j)`` and ``sums_j = sum_i exp(l_ji -
running_max_j) v_i`` (``l`` the logits ``log w_i + log k(x_j, y_i)``). :func:`online_update` folds one
more block of logits into it (rescaling the old sums once when the maximum grows, no exponential
before a maximum is subtracted); :func:`finish` turns it into ``(log_sum, mean)``; :func:`merge`
combines finished partial reductions of disjoint data into that of their union (it is the same update,
each partial acting as one point of logit ``log_sum`` and value ``mean``). NumPy, CuPy and Dask
backends use these; the fused Numba kernels use their compiled twins in
:mod:`opdiff.reductions._numba` (``_online_update``, ``_merge_state``).
"""
from typing import NamedTuple

import numpy as np

from ..backend import get_namespace


class OnlineState(NamedTuple):
    """Running maximum ``(b,)``, total ``(b,)`` and weighted sums ``(b, ...)`` of a partial reduction (float64)."""

    running_max: object
    total: object
    sums: object


def online_update(state, logits, contract):
    """Fold a ``(b, t)`` block of logits into ``state``; ``logits`` is overwritten with the weights.

    Parameters
    ----------
    state : OnlineState or None
        Partial reduction of the ``b`` rows over the data seen so far (None: no data yet).
    logits : (b, t) array
        ``log w_i + log k(x_j, y_i)`` for the block's data (``-inf``: zero weight; no NaN, no ``+inf``).
        Used as scratch: on return it holds ``exp(logit - new maximum)``.
    contract : callable
        ``contract(weights (b, t)) -> (b, ...)``: the block's weighted sums (e.g. ``weights @ values``).

    Returns
    -------
    OnlineState
        The partial reduction over the data seen so far and this block.
    """
    xp = get_namespace(logits)
    if state is None:
        state = OnlineState(xp.full(logits.shape[0], -np.inf), xp.zeros(logits.shape[0]), 0.0)
    new_max = xp.maximum(state.running_max, xp.max(logits, axis=1).astype(np.float64))
    shift = xp.where(xp.isfinite(new_max), new_max, 0.0)  # rows with only zero weights so far: exp(-inf) = 0
    rescale = xp.exp(state.running_max - shift)
    logits -= shift.astype(logits.dtype)[:, None]
    weights = xp.exp(logits, out=logits)
    total = state.total * rescale + xp.sum(weights, axis=1, dtype=np.float64)
    part = contract(weights)
    sums = part + state.sums * rescale.reshape((-1,) + (1,) * (part.ndim - 1))
    return OnlineState(new_max, total, sums)


def finish(state, dtype):
    """``(log_sum, mean)`` of a partial reduction, in ``dtype``; a row of zero total gets ``-inf`` and mean 0.

    Parameters
    ----------
    state : OnlineState
    dtype : dtype
        Output dtype (that of the inputs).

    Returns
    -------
    log_sum : (b,) array
    mean : (b, ...) array
    """
    xp = get_namespace(state.total)
    positive = state.total > 0
    with np.errstate(divide="ignore"):
        log_sum = xp.where(positive, state.running_max + xp.log(xp.where(positive, state.total, 1.0)), -np.inf)
    divisor = xp.where(positive, state.total, 1.0).reshape((-1,) + (1,) * (state.sums.ndim - 1))
    return log_sum.astype(dtype), (state.sums / divisor).astype(dtype)


def merge(partials):
    """Merge finished partial reductions ``[(log_sum (m,), mean (m, p)), ...]`` of disjoint data.

    A partial whose data had no weight (``log_sum = -inf``) drops out. The result equals the
    reduction over the union of the data.

    Parameters
    ----------
    partials : sequence of (log_sum, mean)
        At least one.

    Returns
    -------
    log_sum : (m,) array
    mean : (m, p) array
        In the dtype of the first partial.
    """
    partials = list(partials)
    if not partials:
        raise ValueError("partials: expected at least one partial reduction, got none")
    xp = get_namespace(partials[0][0])
    dtype = partials[0][1].dtype
    logits = xp.stack([xp.asarray(log_sum, dtype=np.float64) for log_sum, _ in partials], axis=1)
    means = xp.stack([xp.asarray(mean, dtype=np.float64) for _, mean in partials], axis=1)  # (m, k, p)
    state = online_update(None, logits, lambda weights: xp.einsum("mk,mk...->m...", weights, means))
    return finish(state, dtype)
