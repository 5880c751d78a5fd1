"""Kernel forms: small objects that say what ``log k(x_j, y_i)`` is, for :func:`opdiff.reductions.reduce`.

A form holds only the kernel's parameters; the queries ``x (m, D)`` and points ``y (n, D)`` are given
to :func:`~opdiff.reductions.reduce`. Per-query parameters have ``m`` rows, per-point ones ``n``.

:class:`SquaredDistance`
    ``log k_ji = -s_i (rho_j |y_i - c_j|^2 + e_j) / 2`` (queries ``c``): a whitened Gaussian kernel with
    per-query precision ``rho`` and offset ``e`` (one reduction for many times) and per-point scale
    ``s`` (sample-point bandwidths).
:class:`DotProductTable`
    ``log k_ji = f_ji(<x_j, y_i>)`` with ``f`` a tabulated piecewise cubic (the heat kernel of ``S^n``).
:class:`CoordinateTable`
    ``log k_ji = sum_k f_ji(|x_jk - y_ik|)`` with ``f`` a tabulated piecewise cubic (the flat torus).

Table forms take a grid of tables: pair ``(j, i)`` uses ``tables[query_index[j]][point_index[i]]``
(one table per distinct per-query time, one per distinct per-point time). A table is any object with
``coefficients (4, n_int)``, ``lo`` and ``inv_step`` (:class:`opdiff.manifolds.heat_tables.HeatTable`):
on interval ``k`` of the uniform grid starting at ``lo``, with ``tau = (z - lo) inv_step - k`` in
``[0, 1]``, ``f = c0 + tau (c1 + tau (c2 + tau c3))``; ``z`` outside the grid is clamped to it. Table
forms compute in float64 whatever the input dtype (``1 - x.y`` must keep its digits for peaked
kernels); results come back in the input dtype.

``gradient=True`` in :func:`~opdiff.reductions.reduce` returns the softmax mean of the Euclidean
gradient of ``log k`` in the query: ``rho_j (sum_i pi_ji s_i y_i - c_j sum_i pi_ji s_i)``,
``sum_i pi_ji f'(u_ji) y_i`` and ``(sum_i pi_ji f'(|d_jik|) sign(d_jik))_k`` (``d = x - y``). On the
sphere the Riemannian score is its tangential part ``G - x (x . G)``.
"""
from typing import NamedTuple

import numpy as np

from ..backend import ParamsMixin, get_namespace
from ._numpy import squared_distances


class KernelForm(ParamsMixin):
    """Base class of the kernel forms (see the module docstring).

    A subclass names its per-query and per-point parameters (``query_parameters``,
    ``point_parameters``) and implements ``_bind`` (validation) and ``_log_kernel`` (one block in the
    array namespace); the public methods below are shared.
    """

    #: the kernel is unchanged when both sides are translated (the array path centres the data)
    translation_invariant = False
    #: (b, t) arrays of the pair dtype the array path holds per block, and per coordinate
    pair_arrays, pair_arrays_per_dim = 3, 0
    #: constructor parameters with one entry per query / per point
    query_parameters, point_parameters = (), ()
    #: whether the form is evaluated in float64 whatever the input dtype
    float64_only = False

    def compute_dtype(self, dtype):
        """The dtype the form is evaluated in, for inputs of ``dtype``.

        Parameters
        ----------
        dtype : dtype

        Returns
        -------
        dtype
        """
        return np.dtype(np.float64) if self.float64_only else np.dtype(dtype)

    def bind(self, m, n, dim, xp, dtype):
        """A copy with every parameter validated against ``m`` queries and ``n`` points, as ``xp`` arrays.

        The form itself is never changed.

        Parameters
        ----------
        m, n, dim : int
            Numbers of queries and points, and their dimension.
        xp : module
            Array namespace of the inputs.
        dtype : dtype
            Compute dtype.

        Returns
        -------
        KernelForm
        """
        return self._bind(m, n, dim, xp, dtype)

    def select(self, query_rows=slice(None), point_rows=slice(None)):
        """The bound form restricted to some query rows and point rows.

        Parameters
        ----------
        query_rows, point_rows : slice

        Returns
        -------
        KernelForm
        """
        params = self.get_params(deep=False)
        for name in self.query_parameters:
            params[name] = _take(params[name], query_rows)
        for name in self.point_parameters:
            params[name] = _take(params[name], point_rows)
        params.update({key: value for key, value in vars(self).items() if key.endswith("_")})
        return self._from_parameters(**params)

    @classmethod
    def _from_parameters(cls, **attributes):
        """An instance with these attributes, without the constructor's checks (already-validated values)."""
        form = cls.__new__(cls)
        form.__dict__.update(attributes)
        return form

    def log_kernel(self, queries, points, values, gradient):
        """Array-namespace evaluation of one block (of a bound, selected form).

        Parameters
        ----------
        queries : (b, D) array
        points : (t, D) array
        values : (t, p) array
        gradient : bool
            Contract against the gradient of ``log k`` in the query instead of ``values`` (table forms;
            :func:`~opdiff.reductions.reduce` forms the Gaussian gradient from values).

        Returns
        -------
        logits : (b, t) array
            ``log k`` (a fresh array, overwritten by the caller).
        contract : callable
            ``weights (b, t) -> (b, p)`` weighted sums.
        """
        return self._log_kernel(queries, points, values, gradient)


def _optional_vector(value, name, length, xp, dtype, positive):
    """``None`` or a validated ``(length,)`` array (a scalar is broadcast)."""
    if value is None:
        return None
    array = xp.asarray(value, dtype=dtype)
    if array.ndim == 0:
        array = xp.full(length, float(array), dtype=dtype)
    if array.shape != (length,):
        raise ValueError(f"{name}: expected a scalar or shape ({length},), got {tuple(array.shape)}")
    if not bool(xp.all(xp.isfinite(array))) or (positive and not bool(xp.all(array > 0))):
        kind = "finite positive" if positive else "finite"
        raise ValueError(f"{name}: expected {kind} values")
    return array


def _check_values(value, name, positive):
    """Construction-time check of a scalar or 1-D parameter (lengths are checked when bound)."""
    if value is None:
        return
    xp = get_namespace(value)
    try:
        array = xp.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or a 1-D array of numbers, got {type(value).__name__}") from None
    if array.ndim > 1:
        raise ValueError(f"{name}: expected a scalar or a 1-D array, got shape {tuple(array.shape)}")
    _optional_vector(array, name, array.size if array.ndim else 1, xp, np.float64, positive)


def _take(array, rows):
    return None if array is None else array[rows]


class SquaredDistance(KernelForm):
    """``log k_ji = -s_i (rho_j |y_i - c_j|^2 + e_j) / 2``: the (whitened) Gaussian kernel.

    With every parameter left at its default it is ``-|y_i - c_j|^2 / 2``.

    Parameters
    ----------
    precision : float or (m,) array, optional
        Per-query precision ``rho_j > 0`` (default 1).
    offset : float or (m,) array, optional
        Per-query offset ``e_j`` (default 0).
    point_scale : float or (n,) array, optional
        Per-point scale ``s_i > 0`` (default 1): point ``i`` has bandwidth ``s_i^{-1/2}``.
    """

    translation_invariant = True
    query_parameters, point_parameters = ("precision", "offset"), ("point_scale",)

    def __init__(self, precision=None, offset=None, point_scale=None):
        _check_values(precision, "precision", True)
        _check_values(offset, "offset", False)
        _check_values(point_scale, "point_scale", True)
        self.precision = precision
        self.offset = offset
        self.point_scale = point_scale

    def _bind(self, m, n, dim, xp, dtype):
        return self._from_parameters(precision=_optional_vector(self.precision, "precision", m, xp, dtype, True),
                                     offset=_optional_vector(self.offset, "offset", m, xp, dtype, False),
                                     point_scale=_optional_vector(self.point_scale, "point_scale", n, xp, dtype,
                                                                  True))

    def _log_kernel(self, queries, points, values, gradient):
        xp = get_namespace(queries, points)
        block = squared_distances(queries, points, xp)
        if self.precision is not None:
            block *= self.precision[:, None]
        if self.offset is not None:
            block += self.offset[:, None]
        if self.point_scale is not None:
            block *= self.point_scale[None, :]
        block *= -0.5
        return block, lambda weights: weights @ values


class PackedTables(NamedTuple):
    """A grid of ``n_query_tables x n_point_tables`` tables, flattened (row-major) and padded.

    ``coefficients (T, 4, N)`` (float64, zero-padded past each table's ``n_int``), ``lo``,
    ``inv_step`` ``(T,)`` float64, ``n_int`` ``(T,)`` int64, ``n_point_tables`` int.
    """

    coefficients: object
    lo: object
    inv_step: object
    n_int: object
    n_point_tables: int


def _pack_tables(tables, kind, has_query_index, has_point_index, xp):
    """Validate a table, a list or a nested grid of tables and pack it (``(grid rows, grid columns)``)."""
    def is_row(item):  # a list of tables (a table itself may be a tuple: HeatTable is a NamedTuple)
        return isinstance(item, (list, tuple)) and not hasattr(item, "coefficients")

    if hasattr(tables, "coefficients"):
        grid = [[tables]]
    elif is_row(tables) and tables and all(is_row(row) for row in tables):
        grid = [list(row) for row in tables]
    elif is_row(tables) and tables:
        if has_query_index and has_point_index:
            raise ValueError("tables: with both query_index and point_index, expected a nested "
                             "(n_query_tables, n_point_tables) grid of tables, got a flat list")
        grid = [[table] for table in tables] if has_query_index else [list(tables)]
    else:
        raise TypeError(f"tables: expected a table (with coefficients, lo, inv_step), a list or a grid of "
                        f"tables, got {type(tables).__name__}")
    if len({len(row) for row in grid}) != 1 or not grid[0]:
        raise ValueError("tables: expected a rectangular, non-empty grid of tables")
    flat = [table for row in grid for table in row]
    width = 0
    for table in flat:
        if not all(hasattr(table, name) for name in ("coefficients", "lo", "inv_step")):
            raise TypeError(f"tables: expected tables with coefficients, lo and inv_step, got {type(table).__name__}")
        if getattr(table, "kind", kind) != kind:
            raise ValueError(f"tables: expected {kind!r} tables, got a {table.kind!r} table")
        coefficients = np.asarray(table.coefficients, dtype=np.float64)
        if coefficients.ndim != 2 or coefficients.shape[0] != 4 or coefficients.shape[1] < 1:
            raise ValueError(f"tables: expected cubic coefficients of shape (4, n_intervals), got {coefficients.shape}")
        if not np.all(np.isfinite(coefficients)):
            raise ValueError("tables: expected finite coefficients")
        if not (np.isfinite(table.lo) and np.isfinite(table.inv_step) and table.inv_step > 0):
            raise ValueError(f"tables: expected a finite lo and a finite positive inv_step, got "
                             f"{table.lo} and {table.inv_step}")
        width = max(width, coefficients.shape[1])
    packed = np.zeros((len(flat), 4, width))
    for k, table in enumerate(flat):
        packed[k, :, :np.shape(table.coefficients)[1]] = table.coefficients
    as_xp = lambda array: xp.asarray(np.ascontiguousarray(array))  # noqa: E731
    return PackedTables(as_xp(packed), as_xp([float(t.lo) for t in flat]), as_xp([float(t.inv_step) for t in flat]),
                        as_xp(np.array([np.shape(t.coefficients)[1] for t in flat], dtype=np.int64)),
                        len(grid[0])), len(grid)


def _check_index(index, name, length, n_tables, xp):
    if index is None:
        return None
    array = np.asarray(index) if not hasattr(index, "__cuda_array_interface__") else index
    if array.ndim != 1 or (length >= 0 and array.shape != (length,)) or not np.issubdtype(array.dtype, np.integer):
        length = length if length >= 0 else "k"
        raise ValueError(f"{name}: expected integers of shape ({length},), got {array.dtype} {tuple(array.shape)}")
    if array.size and (int(array.min()) < 0 or int(array.max()) >= n_tables):
        raise ValueError(f"{name}: expected indices in [0, {n_tables}), got [{int(array.min())}, {int(array.max())}]")
    return xp.asarray(array, dtype=np.int64)


class _TableForm(KernelForm):
    """Shared parameters of the tabulated forms: ``tables``, ``point_index``, ``query_index``."""

    kind = None
    float64_only = True
    query_parameters, point_parameters = ("query_index",), ("point_index",)

    def __init__(self, tables, point_index=None, query_index=None):
        _pack_tables(tables, self.kind, query_index is not None, point_index is not None, np)  # raises if malformed
        for name, index in (("point_index", point_index), ("query_index", query_index)):
            if index is not None:
                _check_index(index, name, np.shape(index)[0] if np.ndim(index) == 1 else -1, np.inf, np)
        self.tables = tables
        self.point_index = point_index
        self.query_index = query_index

    def _bind(self, m, n, dim, xp, dtype):
        packed, n_rows = _pack_tables(self.tables, self.kind, self.query_index is not None,
                                      self.point_index is not None, xp)
        if n_rows > 1 and self.query_index is None:
            raise ValueError(f"query_index: expected an index for the {n_rows} rows of the table grid, got None")
        if packed.n_point_tables > 1 and self.point_index is None:
            raise ValueError(f"point_index: expected an index for the {packed.n_point_tables} columns of the "
                             "table grid, got None")
        return self._from_parameters(
            tables=self.tables, point_index=_check_index(self.point_index, "point_index", n, packed.n_point_tables, xp),
            query_index=_check_index(self.query_index, "query_index", m, n_rows, xp), packed_=packed)

    def table_index(self):
        """Flat table index per pair, broadcastable to ``(b, t)`` (an int when there is one table).

        Returns
        -------
        int or array
        """
        packed = self.packed_
        index = 0
        if self.query_index is not None:
            index = self.query_index[:, None] * packed.n_point_tables
        if self.point_index is not None:
            index = index + self.point_index[None, :]
        return index

    def evaluate(self, z, table):
        """``(f(z), f'(z))`` of the packed tables at ``z`` (any shape), tables ``table`` (broadcastable).

        Parameters
        ----------
        z : array
        table : int or int array

        Returns
        -------
        values, slopes : arrays of the shape of ``z``
        """
        xp = get_namespace(z)
        packed = self.packed_
        inv_step = packed.inv_step[table]
        position = xp.minimum(xp.maximum((z - packed.lo[table]) * inv_step, 0.0), packed.n_int[table])
        index = xp.minimum(position.astype(np.int64), packed.n_int[table] - 1)
        tau = position - index
        c0, c1, c2, c3 = (packed.coefficients[table, k, index] for k in range(4))
        return c0 + tau * (c1 + tau * (c2 + tau * c3)), (c1 + tau * (2.0 * c2 + 3.0 * tau * c3)) * inv_step


class DotProductTable(_TableForm):
    """``log k_ji = f_ji(<x_j, y_i>)``, ``f`` tabulated (the heat kernel of the sphere ``S^n``).

    Parameters
    ----------
    tables : table, list of tables or nested list (grid) of tables
        ``kind="dot"`` tables (module docstring): one table, one per point class (``point_index``),
        one per query class (``query_index``) or a ``(n_query_tables, n_point_tables)`` grid.
    point_index : (n,) int array, optional
        Column of the table grid for each point.
    query_index : (m,) int array, optional
        Row of the table grid for each query.
    """

    kind = "dot"
    pair_arrays = 12

    def _log_kernel(self, queries, points, values, gradient):
        logits, slopes = self.evaluate(queries @ points.T, self.table_index())
        if gradient:
            return logits, lambda weights: (weights * slopes) @ points
        return logits, lambda weights: weights @ values


class CoordinateTable(_TableForm):
    """``log k_ji = sum_k f_ji(|x_jk - y_ik|)``, ``f`` tabulated (the wrapped heat kernel of a flat torus).

    Coordinates are expected within one period of the table (angles in ``[0, 2 pi)`` for a table on
    ``[0, 2 pi]``): ``|x_k - y_k|`` beyond the grid is clamped, not wrapped.

    Parameters
    ----------
    tables : table, list of tables or nested list (grid) of tables
        ``kind="difference"`` tables (see :class:`DotProductTable`).
    point_index : (n,) int array, optional
        Column of the table grid for each point.
    query_index : (m,) int array, optional
        Row of the table grid for each query.
    """

    kind = "difference"
    pair_arrays, pair_arrays_per_dim = 12, 1

    def _log_kernel(self, queries, points, values, gradient):
        xp = get_namespace(queries, points)
        table = self.table_index()
        logits = 0.0
        slopes = []
        for k in range(queries.shape[1]):
            difference = queries[:, k, None] - points[None, :, k]
            f, g = self.evaluate(xp.abs(difference), table)
            logits = logits + f
            if gradient:
                slopes.append(xp.where(difference >= 0, g, -g))
        if gradient:
            return logits, lambda weights: xp.stack([xp.sum(weights * g, axis=1) for g in slopes], axis=1)
        return logits, lambda weights: weights @ values


class LogKernel(KernelForm):
    """Any log-kernel given as a callable, evaluated block by block (array-namespace backends only).

    Parameters
    ----------
    function : callable
        ``function(query_block (b, D), points (t, D)) -> (b, t)`` log-kernel values (no NaN).
    """

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"log_kernel: expected a callable (query_block, points) -> (b, n), "
                            f"got {type(function).__name__}")
        self.function = function

    def _bind(self, m, n, dim, xp, dtype):
        return self

    def _log_kernel(self, queries, points, values, gradient):
        xp = get_namespace(queries, points)
        block = xp.array(self.function(queries, points), dtype=points.dtype)  # a copy: overwritten by the caller
        expected = (queries.shape[0], points.shape[0])
        if block.shape != expected:
            raise ValueError(f"log_kernel: expected a block of shape {expected}, got {tuple(block.shape)}")
        if bool(xp.any(xp.isnan(block))) or bool(xp.any(block == np.inf)):
            raise ValueError("log_kernel: returned NaN or +inf log-kernel values")
        return block, lambda weights: weights @ values
