"""Every kernel form on every backend against a dense float64 reference computed here.

Independent route: the whole ``(m, n)`` logit matrix written out from the form's definition
(``-s_i (rho_j |y_i - c_j|^2 + e_j) / 2`` pair by pair; the tables evaluated with
``HeatTable.__call__``, NumPy's own cubic, table by table per pair), scipy's ``logsumexp`` and explicit
softmax weights; gradients from the dense per-pair gradients (and once by central finite differences
of the reference log-sum).

Tolerances: float64, 1e-10 relative (the kernels round ~1e-16 times logits of magnitude up to ~3e3
here, and the tables' float64 cubic is the same polynomial evaluated in another order); float32
inputs, 1e-4 relative to the float64 reference of the same float32 inputs (float32 rounding of the
logits, 6e-8 times their magnitude, and ~1e-7-accurate exponentials; the table forms compute in
float64 and only round the outputs, but share the bound). Means and gradients: the same relative
tolerance times the spread of the averaged quantity.
"""
import importlib.util
import math
import tracemalloc

import numpy as np
import pytest
from scipy.special import logsumexp

from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.manifolds.heat_tables import tabulate
from opdiff.reductions import (CoordinateTable, DotProductTable, LogKernel, SquaredDistance, check_backend, merge,
                               reduce)
from opdiff.reductions import _cupy

HAS_KEOPS = importlib.util.find_spec("pykeops") is not None
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


# ------------------------------------------------------------------------------------------ references

def dense_squared(queries, points, precision, offset, scale):
    x, y = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    rho = np.ones(len(x)) if precision is None else np.asarray(precision, np.float64)
    e = np.zeros(len(x)) if offset is None else np.asarray(offset, np.float64)
    s = np.ones(len(y)) if scale is None else np.asarray(scale, np.float64)
    difference = x[:, None, :] - y[None, :, :]
    logits = -0.5 * s[None, :] * (rho[:, None] * (difference ** 2).sum(-1) + e[:, None])
    gradient = -(s[None, :] * rho[:, None])[:, :, None] * difference  # grad_c of the log-kernel
    return logits, gradient


def dense_table(kind, grid, queries, points, point_index, query_index):
    x, y = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    m, n = len(x), len(y)
    rows = np.zeros(m, int) if query_index is None else query_index
    columns = np.zeros(n, int) if point_index is None else point_index
    logits, gradient = np.zeros((m, n)), np.zeros((m, n, x.shape[1]))
    for j in range(m):
        for i in range(n):
            table = grid[rows[j]][columns[i]]
            if kind == "dot":
                f, g = table(x[j] @ y[i])
                logits[j, i], gradient[j, i] = f, g * y[i]
            else:
                d = x[j] - y[i]
                f, g = table(np.abs(d))
                logits[j, i], gradient[j, i] = f.sum(), g * np.where(d >= 0, 1.0, -1.0)
    return logits, gradient


def softmax_reference(logits, pair_gradient, points, values, log_weights):
    y = np.asarray(points, np.float64)
    values = y if values is None else np.asarray(values, np.float64)
    if log_weights is not None:
        logits = logits + np.asarray(log_weights, np.float64)
    log_sum = logsumexp(logits, axis=1)
    pi = np.exp(logits - log_sum[:, None])
    return log_sum, pi @ values, np.einsum("mn,mnk->mk", pi, pair_gradient)


def check(result, expected, dtype, scale, logit_scale=1.0):
    # float32: the logits themselves are rounded to ~6e-8 of their size, which moves the softmax weights
    # by that much relative (the underflow cases have logits of ~3e3)
    rtol = RTOL[dtype] if dtype == np.float64 else max(RTOL[dtype], 4 * 6e-8 * logit_scale)
    assert result.log_sum.dtype == dtype and result.mean.dtype == dtype
    assert np.all(np.isfinite(result.log_sum)) and np.all(np.isfinite(result.mean))
    np.testing.assert_allclose(result.log_sum, expected[0], rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(result.mean, expected[1], rtol=0, atol=rtol * scale)


# ------------------------------------------------------------------------------------------ tables

def _vmf_table(kappa, shift=0.0):
    """A cubic table of the vMF-like log-kernel ``kappa (u - 1) + log kappa + shift`` on ``[-1, 1]``."""
    def function(u):
        return kappa * (u - 1.0) + math.log(kappa) + shift, np.full_like(u, kappa)
    return tabulate(function, -1.0, 1.0, 1e-9, "dot")


def _circle_table(width, shift=0.0):
    """A periodic bump ``-(1 - cos z) / width + shift`` on ``[0, 2 pi]`` (cos keeps it smooth and periodic)."""
    def function(z):
        return -(1.0 - np.cos(z)) / width + shift, -np.sin(z) / width
    return tabulate(function, 0.0, 2.0 * math.pi, 1e-9, "difference")


def _sphere_points(n, rng, concentrate=None):
    x = rng.normal(size=(n, 3))
    if concentrate is not None:
        x = x * 0.05 + concentrate
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _torus_points(n, rng, concentrate=None):
    return (rng.uniform(0, 2 * np.pi, size=(n, 2)) if concentrate is None
            else np.mod(concentrate + 0.05 * rng.normal(size=(n, 2)), 2 * np.pi))


# ------------------------------------------------------------------------------------------ cases

def cases(kind, dtype):
    """(name, form, grid or None, queries, points, values, log_weights) for the hard cases."""
    rng = np.random.default_rng({"squared": 1, "dot": 2, "difference": 3}[kind])
    m, n = 7, 41
    zero_weights = rng.normal(size=n)
    zero_weights[::3] = -np.inf
    out = []
    if kind == "squared":
        points, queries = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
        rho, e, s = rng.uniform(0.3, 3.0, m), rng.uniform(0.0, 2.0, m), rng.uniform(0.2, 4.0, n)
        far = 60.0 * queries / np.linalg.norm(queries, axis=1, keepdims=True) + 3
        out += [
            ("plain", SquaredDistance(), points, queries, None, None),
            ("all_parameters", SquaredDistance(rho, e, s), points, queries, rng.normal(size=(n, 2)), zero_weights),
            ("precision_only", SquaredDistance(precision=rho), points, queries, None, zero_weights),
            ("offset_and_scale", SquaredDistance(offset=e, point_scale=s), points, queries, None, None),
            ("one_point_dominates", SquaredDistance(rho, e, s), 20 * points, 20 * queries, None, None),
            ("all_points_equal", SquaredDistance(rho, e, s), np.repeat(points[:1], n, 0), queries, None, None),
            ("underflow", SquaredDistance(precision=rho), points, far * np.sqrt(3), None, zero_weights),
            ("underflow_scaled", SquaredDistance(rho, e, s), points, far * np.sqrt(3), None, None),
            ("single_point", SquaredDistance(rho, e, s[:1]), points[:1], queries, None, None),
        ]
        return [(name, form, None, x, y, v, w) for name, form, y, x, v, w in out]
    sample = _sphere_points if kind == "dot" else _torus_points
    make = _vmf_table if kind == "dot" else _circle_table
    form_type = DotProductTable if kind == "dot" else CoordinateTable
    points, queries = sample(n, rng), sample(m, rng)
    grid = [[make(k) for k in (2.0, 30.0, 400.0)], [make(k) for k in (5.0, 60.0, 900.0)]]
    flat_point = [grid[0]]
    single = [[make(50.0)]]
    point_index, query_index = rng.integers(0, 3, n), rng.integers(0, 2, m)
    peaked = [[make(3000.0)]]  # tiny bandwidth: the nearest point dominates
    underflow = [[make(300.0, shift=-1500.0)]]  # every log k below -1000
    centre = points[0]
    clustered = sample(n, rng, centre)
    out += [
        ("one_table", form_type(single[0][0]), single, None, None, points, queries, None, None),
        ("point_tables", form_type(flat_point[0], point_index=point_index), flat_point, point_index, None,
         points, queries, rng.normal(size=(n, 2)), zero_weights),
        ("query_tables", form_type([row[0] for row in grid], query_index=query_index), [[row[0]] for row in grid],
         None, query_index, points, queries, None, None),
        ("grid", form_type(grid, point_index=point_index, query_index=query_index), grid, point_index, query_index,
         points, queries, None, zero_weights),
        ("one_point_dominates", form_type(peaked[0][0]), peaked, None, None, clustered, queries, None, None),
        ("all_points_equal", form_type(grid, point_index, query_index), grid, point_index, query_index,
         np.repeat(points[:1], n, 0), queries, None, None),
        ("underflow", form_type(underflow[0][0]), underflow, None, None, points, queries, None, zero_weights),
        ("single_point", form_type(flat_point[0], point_index=point_index[:1]), flat_point, point_index[:1], None,
         points[:1], queries, None, None),
    ]
    return [(name, form, (g, pi, qi), x, y, v, w) for name, form, g, pi, qi, y, x, v, w in out]


def expected_of(kind, form, tables, queries, points, values, log_weights):
    if kind == "squared":
        logits, pair = dense_squared(queries, points, form.precision, form.offset, form.point_scale)
    else:
        grid, point_index, query_index = tables
        logits, pair = dense_table(kind, grid, queries, points, point_index, query_index)
    return softmax_reference(logits, pair, points, values, log_weights)


def _cast(dtype, *arrays):
    return [None if a is None else np.asarray(a).astype(dtype) for a in arrays]


def _all_cases():
    for kind in ("squared", "dot", "difference"):
        for dtype in (np.float64, np.float32):
            for case in cases(kind, dtype):
                yield kind, dtype, case


def _params(backends):
    out = []
    for backend in backends:
        for kind in ("squared", "dot", "difference"):
            for dtype in (np.float64, np.float32):
                out += [(backend, kind, dtype, case[0]) for case in cases(kind, dtype)]
    return out


CPU_PARAMS = _params(["numpy", "numba", "cupy-array-path"])


def _run(backend, form, queries, points, values, log_weights, gradient=False, chunk_bytes=None):
    if backend == "cupy-array-path":
        # the code the cupy backend runs on GPU arrays, here on NumPy arrays (reduce() validates and binds,
        # then dispatches to _cupy.reduce with the namespace of the inputs)
        from opdiff.reductions import api

        previous = api._BACKENDS.get("cupy")
        api.register_backend("cupy", _cupy.reduce)
        try:
            return reduce(form, queries, points, values, log_weights, gradient=gradient, backend="cupy",
                          chunk_bytes=chunk_bytes)
        finally:
            if previous is None:
                del api._BACKENDS["cupy"]
            else:
                api._BACKENDS["cupy"] = previous
    return reduce(form, queries, points, values, log_weights, gradient=gradient, backend=backend,
                  chunk_bytes=chunk_bytes)


@pytest.mark.parametrize("backend,kind,dtype,name", CPU_PARAMS,
                         ids=[f"{b}-{k}-{d.__name__}-{c}" for b, k, d, c in CPU_PARAMS])
def test_form_matches_dense_reference(backend, kind, dtype, name):
    _, form, tables, queries, points, values, log_weights = {c[0]: c for c in cases(kind, dtype)}[name]
    queries, points, values, log_weights = _cast(dtype, queries, points, values, log_weights)
    log_sum, mean, gradient = expected_of(kind, form, tables, queries, points, values, log_weights)
    result = _run(backend, form, queries, points, values, log_weights)
    spread = 1.0 + float(np.ptp(points if values is None else values))
    logit_scale = float(np.max(np.abs(log_sum)))
    check(result, (log_sum, mean), dtype, spread, logit_scale)
    if values is None:
        result = _run(backend, form, queries, points, None, log_weights, gradient=True)
        check(result, (log_sum, gradient), dtype, 1.0 + float(np.max(np.abs(gradient))) * spread, logit_scale)
    if name == "underflow":
        assert np.all(log_sum < -1000)  # the case really underflows: exp(log k) is 0 in float64


def test_squared_distance_gradient_is_the_derivative_of_log_sum():
    # a third route for the gradient: central differences of the dense reference log-sum, step 1e-5
    # (truncation ~h^2 |d3 log_sum| ~ 1e-9, rounding ~1e-16 |log_sum| / h ~ 1e-10)
    rng = np.random.default_rng(9)
    queries, points = rng.normal(size=(5, 3)), rng.normal(size=(30, 3))
    form = SquaredDistance(rng.uniform(0.5, 2, 5), rng.uniform(0, 1, 5), rng.uniform(0.5, 2, 30))
    got = reduce(form, queries, points, gradient=True, backend="numba").mean
    h = 1e-5
    for k in range(3):
        step = np.zeros(3)
        step[k] = h
        up = logsumexp(dense_squared(queries + step, points, form.precision, form.offset, form.point_scale)[0], axis=1)
        down = logsumexp(dense_squared(queries - step, points, form.precision, form.offset, form.point_scale)[0],
                         axis=1)
        np.testing.assert_allclose(got[:, k], (up - down) / (2 * h), rtol=0, atol=1e-7)


def test_sphere_heat_tables_on_every_backend():
    # real heat-kernel tables of S^2 at two per-point times and the torus at two per-query times
    rng = np.random.default_rng(4)
    sphere, torus = Hypersphere(2), FlatTorus(2)
    cases_ = [("dot", [[sphere.heat_table(0.01), sphere.heat_table(0.2)]], sphere.random_uniform(60, rng),
               sphere.random_uniform(9, rng), rng.integers(0, 2, 60), None),
              ("difference", [[torus.heat_table(0.05)], [torus.heat_table(0.5)]], torus.random_uniform(60, rng),
               torus.random_uniform(9, rng), None, rng.integers(0, 2, 9))]
    for kind, grid, points, queries, point_index, query_index in cases_:
        form_type = DotProductTable if kind == "dot" else CoordinateTable
        form = form_type(grid, point_index=point_index, query_index=query_index)
        log_sum, mean, gradient = expected_of(kind, form, (grid, point_index, query_index), queries, points, None,
                                              None)
        for backend in ("numpy", "numba"):
            check(reduce(form, queries, points, backend=backend), (log_sum, mean), np.float64, 2 * np.pi)
            check(reduce(form, queries, points, gradient=True, backend=backend), (log_sum, gradient), np.float64,
                  2 * np.pi * (1 + np.abs(gradient).max()))


@pytest.mark.skipif(not HAS_KEOPS, reason="pykeops is an extra: the keops backend is tested where installed")
def test_keops_squared_distance_with_every_parameter():
    # one KeOps formula (compiling each costs ~15 s on CPU): precision, offset and point scale together
    for name, form, _, queries, points, values, log_weights in cases("squared", np.float64):
        if name in ("all_parameters", "underflow_scaled", "one_point_dominates"):
            expected = expected_of("squared", form, None, queries, points, values, log_weights)
            result = reduce(form, queries, points, values, log_weights, backend="keops")
            check(result, expected[:2], np.float64, 1.0 + float(np.ptp(points if values is None else values)))


def test_keops_refuses_table_forms_with_the_reason():
    form = DotProductTable(_vmf_table(3.0))
    x = _sphere_points(4, np.random.default_rng(0))
    if HAS_KEOPS:
        with pytest.raises(ValueError, match="keops.*DotProductTable.*table lookup"):
            check_backend("keops", form=form)
        with pytest.raises(ValueError, match="keops"):
            reduce(form, x, x, backend="keops")
    else:
        with pytest.raises(ImportError, match=r"opdiff\[keops\]"):
            check_backend("keops", form=form)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("kind", ["squared", "dot", "difference"])
def test_tiny_chunk_budget_gives_the_same_answer(backend, kind):
    # 1 KiB: the array path splits every query row into blocks of a few points (many online updates per
    # row); the fused kernel uses 16-point tiles and many chunks of partial sums
    rng = np.random.default_rng(6)
    sample = {"squared": lambda k: rng.normal(size=(k, 3)), "dot": lambda k: _sphere_points(k, rng),
              "difference": lambda k: _torus_points(k, rng)}[kind]
    points, queries = sample(700), sample(23)
    log_weights = rng.normal(size=700)
    log_weights[:400] = -np.inf  # leading blocks with only zero weights
    index = rng.integers(0, 2, 700)
    form = {"squared": SquaredDistance(rng.uniform(0.5, 2, 23), rng.uniform(0, 1, 23), rng.uniform(0.5, 2, 700)),
            "dot": DotProductTable([_vmf_table(5.0), _vmf_table(80.0)], point_index=index),
            "difference": CoordinateTable([_circle_table(0.3), _circle_table(0.05)], point_index=index)}[kind]
    for gradient in (False, True):
        small = reduce(form, queries, points, log_weights=log_weights, gradient=gradient, backend=backend,
                       chunk_bytes=1024)
        whole = reduce(form, queries, points, log_weights=log_weights, gradient=gradient, backend="numpy",
                       chunk_bytes=2**30)
        np.testing.assert_allclose(small.log_sum, whole.log_sum, rtol=1e-12)
        np.testing.assert_allclose(small.mean, whole.mean, rtol=0, atol=1e-10 * (1 + np.abs(whole.mean).max()))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_memory_stays_within_the_chunk_budget(backend):
    # m x n = 400 x 50,000 pairs would be 160 MB as one float64 block; with a 256 KiB budget the peak of
    # traced allocations stays below a few budgets plus the O(m + n) inputs and outputs
    rng = np.random.default_rng(8)
    queries, points = rng.normal(size=(400, 3)), rng.normal(size=(50_000, 3))
    form = SquaredDistance(point_scale=rng.uniform(0.5, 2, 50_000))
    reduce(form, queries[:2], points, backend=backend)  # compile outside the measurement
    budget = 256 * 2**10
    tracemalloc.start()
    try:
        reduce(form, queries, points, backend=backend, chunk_bytes=budget)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    inputs = points.nbytes * 3  # the transposed / centred copies of the data and the scale
    assert peak < inputs + 8 * budget


def test_merge_is_the_reduction_over_the_union():
    rng = np.random.default_rng(10)
    queries, points = rng.normal(size=(6, 2)), rng.normal(size=(90, 2))
    log_weights = rng.normal(size=90)
    log_weights[30:60] = -np.inf  # the middle part has no weight: its log_sum is -inf and drops out
    parts = [slice(0, 30), slice(30, 60), slice(60, 90)]
    partials = []
    for rows in parts:
        weights = log_weights[rows]
        if np.all(np.isinf(weights)):
            partials.append((np.full(6, -np.inf), np.zeros((6, 2))))
        else:
            partials.append(tuple(reduce(SquaredDistance(), queries, points[rows], log_weights=weights,
                                         backend="numpy")))
    log_sum, mean = merge(partials)
    expected = softmax_reference(dense_squared(queries, points, None, None, None)[0], np.zeros((6, 90, 2)), points,
                                 None, log_weights)
    np.testing.assert_allclose(log_sum, expected[0], rtol=1e-12)
    np.testing.assert_allclose(mean, expected[1], atol=1e-12)


def test_log_kernel_form_serves_array_backends_only():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(20, 2))
    form = LogKernel(lambda a, b: -np.abs(a[:, None, :] - b[None, :, :]).sum(-1))
    result = reduce(form, x, y, backend="numpy", chunk_bytes=1024)
    logits = -np.abs(x[:, None, :] - y[None, :, :]).sum(-1)
    np.testing.assert_allclose(result.log_sum, logsumexp(logits, axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="numba.*LogKernel"):
        reduce(form, x, y, backend="numba")


def test_bad_forms_and_arguments_raise_clear_errors():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(10, 3))
    u = _sphere_points(10, rng)
    table = _vmf_table(3.0)
    construction = [  # what can be checked without the data fails when the form is made
        (ValueError, "precision", lambda: SquaredDistance(precision=-1.0)),
        (ValueError, "offset", lambda: SquaredDistance(offset=[0.0, np.inf])),
        (ValueError, "point_scale", lambda: SquaredDistance(point_scale=np.zeros((2, 2)))),
        (TypeError, "point_scale", lambda: SquaredDistance(point_scale="wide")),
        (TypeError, "tables", lambda: DotProductTable(None)),
        (TypeError, "tables", lambda: CoordinateTable([None])),
        (ValueError, "point_index", lambda: DotProductTable(table, point_index=np.array([0.5]))),
        (ValueError, "query_index", lambda: DotProductTable([table], query_index=np.array([-1]))),
        (TypeError, "log_kernel", lambda: LogKernel(None)),
    ]
    bad = construction + [
        (TypeError, "form", lambda: reduce("gaussian", x, y)),
        (ValueError, "precision", lambda: reduce(SquaredDistance(precision=np.ones(3)), x, y)),
        (ValueError, "point_scale", lambda: reduce(SquaredDistance(point_scale=np.ones(9)), x, y)),
        (ValueError, "values", lambda: reduce(SquaredDistance(), x, y, values=y, gradient=True)),
        (TypeError, "gradient", lambda: reduce(SquaredDistance(), x, y, gradient="yes")),
        (ValueError, "point_index", lambda: reduce(DotProductTable([table, table], point_index=np.full(10, 2)), u, u)),
        (ValueError, "point_index", lambda: reduce(DotProductTable([table, table]), u, u)),
        (ValueError, "query_index", lambda: reduce(DotProductTable([[table], [table]]), u, u)),
        (ValueError, "tables", lambda: reduce(DotProductTable([table], np.zeros(10, int), np.zeros(10, int)), u, u)),
        (ValueError, "tables", lambda: reduce(CoordinateTable(table), u, u)),  # a "dot" table
        (TypeError, "tables", lambda: reduce(DotProductTable(np.zeros((4, 8))), u, u)),
        (ValueError, "backend", lambda: reduce(SquaredDistance(), x, y, backend="torch")),
        (ValueError, "log_weights", lambda: reduce(SquaredDistance(), x, y, log_weights=np.full(10, -np.inf))),
    ]
    for error, word, call in bad:
        with pytest.raises(error, match=word):
            call()
    form = SquaredDistance(precision=np.ones(4))
    before = repr(form)
    with pytest.raises(ValueError):
        reduce(form, x, y, log_weights=np.full(10, np.nan))
    assert repr(form) == before and form.precision.shape == (4,)  # the form is never changed by reduce


@pytest.mark.gpu
def test_cupy_arrays_every_form(cupy_gpu):
    # CuPy arrays through backend="auto" (the cupy backend: raw kernel for the plain Gaussian, the array
    # path otherwise) against the same dense references
    cupy = cupy_gpu
    as_gpu = (lambda a: None if a is None else cupy.asarray(a))  # noqa: E731
    for kind, dtype, (name, form, tables, queries, points, values, log_weights) in _all_cases():
        queries, points, values, log_weights = _cast(dtype, queries, points, values, log_weights)
        expected = expected_of(kind, form, tables, queries, points, values, log_weights)
        result = reduce(form, as_gpu(queries), as_gpu(points), as_gpu(values), as_gpu(log_weights))
        got = type(result)(cupy.asnumpy(result.log_sum), cupy.asnumpy(result.mean))
        spread = 1.0 + float(np.ptp(points if values is None else values))
        check(got, expected[:2], dtype, spread, float(np.max(np.abs(expected[0]))))


@pytest.mark.parametrize("kind", ["squared", "dot", "difference"])
def test_few_queries_split_the_data_across_threads(kind):
    # one and three queries against 5,000 points: the fused kernel splits the data range across tasks and
    # merges the partial reductions (the first 2,000 points have zero weight, so whole ranges drop out)
    from opdiff.reductions._numba import _fused_blocks

    rng = np.random.default_rng(13)
    sample = {"squared": lambda k: rng.normal(size=(k, 3)), "dot": lambda k: _sphere_points(k, rng),
              "difference": lambda k: _torus_points(k, rng)}[kind]
    points = sample(5000)
    log_weights = rng.normal(size=5000)
    log_weights[:2000] = -np.inf
    form = {"squared": SquaredDistance(point_scale=rng.uniform(0.5, 2, 5000)),
            "dot": DotProductTable(_vmf_table(20.0)), "difference": CoordinateTable(_circle_table(0.2))}[kind]
    assert _fused_blocks(1, 5000, 3, 3, 8, 3, None)[2] > 1
    for m in (1, 3):
        queries = sample(m)
        for gradient in (False, True):
            fused = reduce(form, queries, points, log_weights=log_weights, gradient=gradient, backend="numba")
            blocks = reduce(form, queries, points, log_weights=log_weights, gradient=gradient, backend="numpy")
            np.testing.assert_allclose(fused.log_sum, blocks.log_sum, rtol=1e-12)
            np.testing.assert_allclose(fused.mean, blocks.mean, rtol=0, atol=1e-10 * (1 + np.abs(blocks.mean).max()))
