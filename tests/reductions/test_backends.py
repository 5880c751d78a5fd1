"""Every reduction backend against a dense float64 reference (an independent route: the full
log-kernel matrix and scipy's logsumexp), on the hard cases named in the reductions issue.

Tolerances: float64 inputs, 1e-10 relative (the kernels' rounding is ~1e-15 times the log-kernel
magnitude, at most ~1e3 here, so 1e-10 bounds it with a wide margin); float32 inputs, 1e-4 relative
to the float64 reference of the same float32 inputs (float32 rounding of the log-kernels, 6e-8
times their magnitude, and of ~1e-7-accurate exponentials). Means are compared with the same
relative tolerance scaled by the spread of the data.
"""
import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

from opdiff.reductions import SquaredDistance, available_backends, gaussian_reduction
from opdiff.reductions import _cupy, _numba

HAS_KEOPS = importlib.util.find_spec("pykeops") is not None
CPU_BACKENDS = ["numpy", "numba"] + (["keops"] if HAS_KEOPS else [])
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


def reference(queries, points, values=None, log_weights=None):
    """Dense float64 reference: the whole (m, n) log-kernel matrix, scipy's logsumexp."""
    x, y = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    values = y if values is None else np.asarray(values, np.float64)
    log_kernel = -0.5 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    if log_weights is not None:
        log_kernel = log_kernel + np.asarray(log_weights, np.float64)
    log_sum = logsumexp(log_kernel, axis=1)
    weights = np.exp(log_kernel - log_sum[:, None])
    return log_sum, weights @ values


def assert_matches(result, expected, dtype, scale):
    rtol = RTOL[dtype]
    log_sum, mean = result
    assert log_sum.dtype == dtype and mean.dtype == dtype
    assert np.all(np.isfinite(log_sum)) and np.all(np.isfinite(mean))
    np.testing.assert_allclose(log_sum, expected[0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(mean, expected[1], rtol=0, atol=rtol * scale)


def cases(dim, dtype):
    """(name, queries, points, values, log_weights, scale) for the hard cases of the issue."""
    rng = np.random.default_rng(1234 + dim)
    m, n = 7, 37
    points = rng.normal(size=(n, dim))
    queries = rng.normal(size=(m, dim))
    far = 45.0 if dtype == np.float64 else 16.0  # |x - y|^2 / 2 > 745 (float64) / > 104 (float32): exp underflows
    zero_weights = rng.normal(size=n)
    zero_weights[::3] = -np.inf
    out = [
        ("plain", queries, points, None, None),
        ("weights_with_zeros", queries, points, None, zero_weights),
        ("other_values", queries, points, rng.normal(size=(n, 2)), rng.normal(size=n)),
        ("one_point_dominates", queries * 20.0, points * 20.0, None, None),
        ("all_points_equal", queries, np.repeat(points[:1], n, axis=0), None, None),
        ("repeated_points", queries, np.concatenate([points[:5]] * 4), None, None),
        ("far_queries", queries / np.linalg.norm(queries, axis=1, keepdims=True) * far * np.sqrt(dim) + 3.0,
         points, None, None),
        ("single_point", queries, points[:1], None, None),
        ("shifted_cloud", queries + 100.0, points + 100.0, None, zero_weights),
    ]
    for name, x, y, v, w in out:
        v = None if v is None else v.astype(dtype)
        w = None if w is None else w.astype(dtype)
        scale = 1.0 + float(np.ptp(y if v is None else v))
        yield name, x.astype(dtype), y.astype(dtype), v, w, scale


PARAMS = [(backend, dim, dtype, name) for backend in ("numpy", "numba") for dim in (3, 40)
          for dtype in (np.float64, np.float32) for name, *_ in cases(dim, dtype)]
if HAS_KEOPS:
    # KeOps compiles one kernel per (dtype, D, p), ~15 s each on CPU: one combination here, float32
    # and other sizes in benchmarks/bench_reductions.py
    PARAMS += [("keops", 3, np.float64, name) for name, *_ in cases(3, np.float64) if name != "other_values"]


@pytest.mark.parametrize("backend,dim,dtype,name", PARAMS, ids=[f"{b}-{d}-{t.__name__}-{c}" for b, d, t, c in PARAMS])
def test_backend_matches_float64_reference(backend, dim, dtype, name):
    case = {c[0]: c[1:] for c in cases(dim, dtype)}[name]
    queries, points, values, log_weights, scale = case
    result = gaussian_reduction(queries, points, values, log_weights, backend=backend)
    assert_matches(result, reference(queries, points, values, log_weights), dtype, scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dim", [3, 40])
def test_numba_streams_with_tiny_chunk_budget(dim, dtype):
    # many tiles per query (online rescaling across tiles) and many query chunks
    rng = np.random.default_rng(7)
    queries, points = rng.normal(size=(50, dim)).astype(dtype), 3 * rng.normal(size=(3000, dim)).astype(dtype)
    log_weights = rng.normal(size=3000).astype(dtype)
    log_weights[:1500] = -np.inf  # leading tiles with only zero weights
    result = gaussian_reduction(queries, points, log_weights=log_weights, backend="numba", chunk_bytes=4096)
    assert_matches(result, reference(queries, points, None, log_weights), dtype, 1 + np.ptp(points))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threaded", [True, False])
def test_numba_large_dim_paths(threaded, dtype, monkeypatch):
    # both large-D paths on every hard case, whatever BLAS threading this machine has: whole-chunk
    # threaded-BLAS products (forced: dimension threshold lowered, BLAS threads reported plentiful)
    # and the tiled kernel (forced: BLAS threads reported as one)
    monkeypatch.setattr(_numba, "THREADED_BLAS_MIN_DIM", 17)
    monkeypatch.setattr(_numba, "blas_threads", lambda: 1024 if threaded else 1)
    for name, queries, points, values, log_weights, scale in cases(40, dtype):
        result = gaussian_reduction(queries, points, values, log_weights, backend="numba", chunk_bytes=4096)
        assert_matches(result, reference(queries, points, values, log_weights), dtype, scale)


def test_numba_blas_pin_is_shared_and_restored():
    # the tiled kernel pins BLAS to one thread; overlapping pins (several Python threads) keep it until
    # the last one exits, which restores the previous thread count
    from opdiff.backend import threads

    import threadpoolctl
    controller = threadpoolctl.ThreadpoolController()
    with controller.limit(limits=2, user_api="blas"):
        before = threads.blas_threads()
        with threads.single_threaded_blas():
            with threads.single_threaded_blas():
                assert threads.blas_threads() == 1
            assert threads.blas_threads() == 1
        assert threads.blas_threads() == before
        rng = np.random.default_rng(4)
        gaussian_reduction(rng.normal(size=(5, 30)), rng.normal(size=(50, 30)), backend="numba")
        assert threads.blas_threads() == before


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_large_dim_splits_the_data_for_few_queries(dtype):
    # 3 queries, 4000 points: the large-D kernel splits the data range across tasks and merges the
    # partial reductions; the first half of the data has zero weight, so whole ranges drop out
    from opdiff.reductions._numba import _large_dim_blocks

    rng = np.random.default_rng(11)
    queries, points = rng.normal(size=(3, 24)).astype(dtype), rng.normal(size=(4000, 24)).astype(dtype)
    values = rng.normal(size=(4000, 5)).astype(dtype)
    log_weights = rng.normal(size=4000).astype(dtype)
    log_weights[:2000] = -np.inf
    assert _large_dim_blocks(3, 4000, 24, np.dtype(dtype).itemsize, None)[2] > 1
    result = gaussian_reduction(queries, points, values, log_weights, backend="numba")
    assert_matches(result, reference(queries, points, values, log_weights), dtype, 1 + np.ptp(values))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_exponential_is_accurate(dtype):
    # the vectorised exp against numpy's (float64) exp, over the whole range after max subtraction
    x = np.concatenate([-np.geomspace(1e-12, 800, 4000), [0.0, -np.inf]]).astype(dtype)
    out = _numba._exp_array(x, np.empty_like(x))
    exact = np.exp(x.astype(np.float64))
    normal = exact > (1e-37 if dtype == np.float32 else 1e-300)
    rel = np.abs(out[normal] - exact[normal]) / exact[normal]
    assert rel.max() < (3e-7 if dtype == np.float32 else 1e-14)  # float32: ~2 ulp, float64: ~10 ulp
    assert np.all(out[~normal] <= exact[~normal] * 1.01 + 1e-300) and out[-1] == 0.0 and out[-2] == 1.0


def test_cupy_array_generic_path_runs_on_numpy():
    # the path the cupy backend uses for large D is the namespace-generic one: check it on NumPy arrays
    rng = np.random.default_rng(3)
    queries, points = rng.normal(size=(9, 20)), rng.normal(size=(31, 20))
    log_weights = rng.normal(size=31)
    log_weights[4] = -np.inf
    result = _cupy.reduce(SquaredDistance(), queries, points, None, log_weights, False)
    assert_matches(result, reference(queries, points, None, log_weights), np.float64, 1 + np.ptp(points))


@pytest.mark.gpu
@pytest.mark.parametrize("dim", [3, 40])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cupy_backend_matches_reference(dim, dtype, cupy_gpu):
    cupy = cupy_gpu
    for name, queries, points, values, log_weights, scale in cases(dim, dtype):
        as_gpu = (lambda a: None if a is None else cupy.asarray(a))
        result = gaussian_reduction(as_gpu(queries), as_gpu(points), as_gpu(values), as_gpu(log_weights),
                                    backend="auto")
        got = (cupy.asnumpy(result.log_sum), cupy.asnumpy(result.mean))
        assert_matches(got, reference(queries, points, values, log_weights), dtype, scale)


def test_auto_policy_choices():
    from opdiff.reductions._auto import auto_policy

    small, large = np.zeros((400, 3)), np.zeros((400, 64))
    assert auto_policy(small, np.zeros((20, 3)), {"numpy", "numba"}) == "numpy"  # tiny: no compilation
    assert auto_policy(small, np.zeros((400, 3)), {"numpy", "numba"}) == "numba"
    assert auto_policy(large, np.zeros((400, 64)), {"numpy"}) == "numpy"
    assert "dask" not in {auto_policy(small, np.zeros((400, 3)), set(available_backends()))}


def test_auto_agrees_with_numpy():
    rng = np.random.default_rng(5)
    queries, points = rng.normal(size=(300, 2)), rng.normal(size=(400, 2))
    auto = gaussian_reduction(queries, points)
    numpy = gaussian_reduction(queries, points, backend="numpy")
    np.testing.assert_allclose(auto.log_sum, numpy.log_sum, rtol=1e-12)
    np.testing.assert_allclose(auto.mean, numpy.mean, rtol=0, atol=1e-12)


def test_unknown_and_missing_backends_raise():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="backend"):
        gaussian_reduction(x, x, backend="torch")
    if importlib.util.find_spec("cupy") is None:
        with pytest.raises(ImportError, match=r"opdiff\[gpu\]"):
            gaussian_reduction(x, x, backend="cupy")


def test_all_zero_weights_and_bad_shapes_raise_for_every_backend():
    x = np.zeros((2, 3))
    for backend in CPU_BACKENDS:
        with pytest.raises(ValueError, match="log_weights"):
            gaussian_reduction(x, x, log_weights=np.full(2, -np.inf), backend=backend)
        with pytest.raises(ValueError, match="points"):
            gaussian_reduction(x, np.zeros((2, 4)), backend=backend)
        with pytest.raises(ValueError, match="log_weights"):
            gaussian_reduction(x, x, log_weights=np.array([0.0, np.nan]), backend=backend)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 60), dim=st.sampled_from([1, 2, 5, 16, 17, 33]),
       scale=st.floats(0.01, 30.0), seed=st.integers(0, 2**16))
def test_numba_matches_numpy_and_ignores_data_order(m, n, dim, scale, seed):
    # two routes: the chunked NumPy backend (dense blocks) and Numba (tiles / BLAS blocks), on random
    # shapes either side of the small-D/large-D switch; the reduction is a sum over the data, so a
    # permutation of (points, log_weights) leaves it unchanged up to rounding (1e-10 relative)
    rng = np.random.default_rng(seed)
    queries, points = scale * rng.normal(size=(m, dim)), scale * rng.normal(size=(n, dim))
    log_weights = rng.normal(size=n)
    log_weights[rng.random(n) < 0.3] = -np.inf
    log_weights[rng.integers(n)] = 0.0  # at least one positive weight
    order = rng.permutation(n)
    numba = gaussian_reduction(queries, points, log_weights=log_weights, backend="numba")
    permuted = gaussian_reduction(queries, points[order], log_weights=log_weights[order], backend="numba")
    numpy = gaussian_reduction(queries, points, log_weights=log_weights, backend="numpy")
    spread = 1 + np.ptp(points)
    for other in (permuted, numpy):
        np.testing.assert_allclose(numba.log_sum, other.log_sum, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(numba.mean, other.mean, rtol=0, atol=1e-10 * spread)
