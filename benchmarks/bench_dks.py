"""DKS throughput: opdiff against a plain NumPy broadcast and scikit-learn's KernelDensity, same data.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_dks.py --benchmark-enable``.
Groups: ``dks-score`` (score of the forward marginal) and ``dks-log-density`` (log-density; the peer is
``sklearn.neighbors.KernelDensity`` with the same Gaussian bandwidth). Every entry is checked against
the NumPy broadcast reference, so the file also passes as a plain test with ``--benchmark-disable``.
Throughput is ``n_queries * n_data`` kernel pairs per second (``pairs/s`` in ``extra_info``).
"""
import numpy as np
import pytest
from scipy.special import logsumexp

from opdiff.datasets import make_toy
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.processes import BrownianMotion

N_DATA, N_QUERIES, DIM, T = 4000, 2000, 2, 0.05  # BM sigma=1: Gaussian bandwidth sqrt(t) = 0.224
PAIRS = N_DATA * N_QUERIES


@pytest.fixture(scope="module")
def problem():
    X = make_toy("two_spirals", N_DATA, rng=0)
    queries = make_toy("two_spirals", N_QUERIES, rng=1) + np.sqrt(T) * np.random.default_rng(2).normal(size=(N_QUERIES, DIM))
    return X, queries


def _broadcast_log_kernel(X, queries, t):
    """The full (m, n) matrix of Gaussian log-kernel values, as a plain broadcast builds it."""
    diff = queries[:, None, :] - X[None, :, :]
    return -np.sum(diff * diff, axis=2) / (2 * t)


def numpy_broadcast_score(X, queries, t):
    """The plain implementation a user would write: the full (m, n) matrix of kernel weights."""
    log_k = _broadcast_log_kernel(X, queries, t)
    weights = np.exp(log_k - log_k.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights @ X - queries) / t


def numpy_broadcast_log_density(X, queries, t):
    log_k = _broadcast_log_kernel(X, queries, t)
    return logsumexp(log_k, axis=1) - np.log(len(X)) - 0.5 * DIM * np.log(2 * np.pi * t)


def _record(benchmark, group_result):
    benchmark.extra_info["pairs"] = PAIRS
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["pairs/s"] = PAIRS / stats.stats.mean
    return group_result


@pytest.mark.benchmark(group="dks-score")
@pytest.mark.parametrize("backend", ["numpy", "numba", "auto"])
def test_dks_score(benchmark, problem, backend):
    X, queries = problem
    dks = DiffusionKernelSmoother(BrownianMotion(sigma=1.0), backend=backend).fit(X)
    score = benchmark(dks.score, queries, T)
    _record(benchmark, score)
    np.testing.assert_allclose(score, numpy_broadcast_score(X, queries, T), rtol=1e-8, atol=1e-8)


@pytest.mark.benchmark(group="dks-score")
def test_numpy_broadcast_score(benchmark, problem):
    X, queries = problem
    score = benchmark(numpy_broadcast_score, X, queries, T)
    _record(benchmark, score)
    assert score.shape == queries.shape and np.all(np.isfinite(score))


@pytest.mark.benchmark(group="dks-log-density")
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dks_log_density(benchmark, problem, backend):
    X, queries = problem
    dks = DiffusionKernelSmoother(BrownianMotion(sigma=1.0), backend=backend).fit(X)
    log_density = benchmark(dks.log_density, queries, T)
    _record(benchmark, log_density)
    np.testing.assert_allclose(log_density, numpy_broadcast_log_density(X, queries, T), rtol=1e-10, atol=1e-10)


@pytest.mark.benchmark(group="dks-log-density")
def test_sklearn_kernel_density(benchmark, problem):
    sklearn_neighbors = pytest.importorskip("sklearn.neighbors")
    X, queries = problem
    kde = sklearn_neighbors.KernelDensity(kernel="gaussian", bandwidth=np.sqrt(T)).fit(X)
    log_density = benchmark(kde.score_samples, queries)
    _record(benchmark, log_density)
    # KernelDensity's tree sums are exact with its default rtol=atol=0
    np.testing.assert_allclose(log_density, numpy_broadcast_log_density(X, queries, T), rtol=1e-8, atol=1e-8)


@pytest.mark.benchmark(group="dks-log-density")
def test_numpy_broadcast_log_density(benchmark, problem):
    X, queries = problem
    log_density = benchmark(numpy_broadcast_log_density, X, queries, T)
    _record(benchmark, log_density)
    assert np.all(np.isfinite(log_density))


# ----------------------------------------------------------------------------- per-row times
PER_ROW_DATA, PER_ROW_QUERIES = 2000, 500


@pytest.fixture(scope="module", params=["vp", "cld"])
def per_row_problem(request):
    from opdiff.processes import StationaryLinearSDE, VPSDE

    process = VPSDE() if request.param == "vp" else StationaryLinearSDE.cld()
    rng = np.random.default_rng(3)
    X = make_toy("two_spirals", PER_ROW_DATA, rng=4)
    queries = process.sample(X[rng.integers(0, PER_ROW_DATA, PER_ROW_QUERIES)], 0.5, rng=5)
    return request.param, DiffusionKernelSmoother(process).fit(X), queries


@pytest.mark.parametrize("times", ["one-shared-time", "500-distinct-times"])
def test_per_row_times(benchmark, per_row_problem, times):
    """The score at 500 queries with one shared time, and with 500 distinct times (one reduction, per-row
    precisions and offsets: the data are never re-whitened per time)."""
    name, dks, queries = per_row_problem
    benchmark.group = f"dks-per-row-times-{name}"
    t = 0.5 if times == "one-shared-time" else np.linspace(0.05, 1.0, PER_ROW_QUERIES)
    score = benchmark(dks.score, queries, t)
    benchmark.extra_info["pairs"] = PER_ROW_DATA * PER_ROW_QUERIES
    if times != "one-shared-time":  # row by row at its own time: the same scores
        rows = np.concatenate([dks.score(queries[i:i + 1], t[i]) for i in range(0, PER_ROW_QUERIES, 50)])
        np.testing.assert_allclose(score[::50], rows, rtol=1e-9, atol=1e-9)
