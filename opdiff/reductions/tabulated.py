"""Reductions under kernels tabulated as piecewise cubics: thin wrappers over :func:`opdiff.reductions.reduce`.

Kept for the callers written against them; new code builds a
:class:`~opdiff.reductions.forms.DotProductTable` or :class:`~opdiff.reductions.forms.CoordinateTable`
(per-point and per-query tables included) and calls :func:`~opdiff.reductions.reduce`.

``dot_product_reduction``  ``log k(x, y) = f(x . y)``:
    ``mean`` = ``sum_i pi_i y_i`` (``gradient=False``) or, with ``g = f'``, the ``D + 1`` columns
    ``[sum_i pi_i g_i y_i, sum_i pi_i g_i u_i]`` (``gradient=True``), from which
    ``grad_x log sum = sum pi_i g_i (y_i - u_i x)`` on the sphere.
``difference_reduction``  ``log k(x, y) = sum_k f(|x_k - y_k|)``:
    ``mean`` = ``sum_i pi_i y_i`` or ``sum_i pi_i f'(|d_ik|) sign(d_ik)`` with ``d = x - y``.

Arithmetic is float64 whatever the input dtype; results come back in the dtype of ``points``.
"""
from typing import NamedTuple

import numpy as np

from .api import reduce
from .forms import CoordinateTable, DotProductTable


class _Table(NamedTuple):
    coefficients: object
    lo: float
    inv_step: float


def _run(form_type, queries, points, table, lo, inv_step, log_weights, gradient, chunk_bytes):
    dtype = np.asarray(points).dtype if np.issubdtype(np.asarray(points).dtype, np.floating) else np.float64
    form = form_type(_Table(table, float(lo), float(inv_step)))
    queries64 = np.asarray(queries, dtype=np.float64)
    result = reduce(form, queries64, np.asarray(points, dtype=np.float64), log_weights=log_weights,
                    gradient=bool(gradient), backend="numba", chunk_bytes=chunk_bytes)
    mean = result.mean
    if gradient and form_type is DotProductTable:
        mean = np.concatenate([mean, np.einsum("ij,ij->i", mean, queries64)[:, None]], axis=1)
    return result.log_sum.astype(dtype, copy=False), mean.astype(dtype, copy=False)


def dot_product_reduction(queries, points, table, lo, inv_step, log_weights=None, gradient=False, chunk_bytes=None):
    """Softmax sums for ``log k(x, y) = f(x . y)``, ``f`` a tabulated piecewise cubic (module docstring).

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    table : (4, n_int) array
        Cubic coefficients per interval in the local variable ``tau`` (``f = c0 + c1 tau + ...``).
    lo, inv_step : float
        Left end of the grid and inverse interval length; ``x . y`` outside the grid is clamped to it.
    log_weights : (n,) array, optional
        Log of non-negative weights (``-inf``: zero weight).
    gradient : bool
        False: ``mean (m, D)`` is the softmax mean of the points. True: ``mean (m, D + 1)`` holds
        ``sum pi_i f'(u_i) y_i`` and ``sum pi_i f'(u_i) u_i``.
    chunk_bytes : int, optional
        Budget for the per-thread scratch.

    Returns
    -------
    log_sum : (m,) array
        In the dtype of ``points`` (computed in float64).
    mean : array
    """
    return _run(DotProductTable, queries, points, table, lo, inv_step, log_weights, gradient, chunk_bytes)


def difference_reduction(queries, points, table, lo, inv_step, log_weights=None, gradient=False, chunk_bytes=None):
    """Softmax sums for ``log k(x, y) = sum_k f(|x_k - y_k|)`` (separable kernels, module docstring).

    Parameters
    ----------
    queries : (m, D) array
    points : (n, D) array
    table : (4, n_int) array
    lo, inv_step : float
    log_weights : (n,) array, optional
    gradient : bool
        False: ``mean (m, D)`` is the softmax mean of the points; True: that of
        ``grad_x log k = (f'(|d_k|) sign(d_k))_k``, ``d = x - y``.
    chunk_bytes : int, optional

    Returns
    -------
    log_sum : (m,) array
    mean : (m, D) array
    """
    return _run(CoordinateTable, queries, points, table, lo, inv_step, log_weights, gradient, chunk_bytes)
