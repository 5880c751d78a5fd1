"""Benchmarks of opdiff.reductions.reduce: Numba vs KeOps (CPU) vs chunked NumPy (d = 3; d = 16 and 17 at
n = 1e4 and 1e5, the small-D / large-D switch), per-query parameters and table forms, the
matrix-product bound at large D, and the dask overhead.

Run (table in benchmarks/README.md):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_reductions.py \
        --benchmark-enable --benchmark-columns=min,mean,rounds --benchmark-sort=name

With ``--benchmark-disable`` (as in CI) every case runs once on sizes 20x smaller, as a smoke test.
Each benchmark stores ``pairs_per_s`` (query-point pairs per second) in ``extra_info``;
``python benchmarks/bench_reductions.py table .benchmarks/.../*.json`` prints the README table.
The streaming peak-memory measurement is ``python benchmarks/bench_reductions.py memory [m] [n] [dtype]``
(default m = n = 1e6, float32). One case in a fresh process (the large-D rows of the README, with
``OMP_NUM_THREADS`` unset so that the matrix-product bound has both cores):
``python benchmarks/bench_reductions.py bound 64 2000 20000 float32 numba`` (or numpy, matmul, matmul_x2).
Against an earlier kernel, CPU time in one process: ``python benchmarks/bench_reductions.py previous 621eb06``.
"""
import importlib.util
import json
import resource
import sys
import time
import tracemalloc

import numpy as np
import pytest

from opdiff.reductions import DotProductTable, SquaredDistance, gaussian_reduction, reduce

HAS_KEOPS = importlib.util.find_spec("pykeops") is not None
HAS_DASK = importlib.util.find_spec("distributed") is not None


def _sizes(benchmark, m, n):
    """Full sizes when benchmarking, 20x fewer pairs in smoke mode (``--benchmark-disable``)."""
    if getattr(benchmark, "disabled", False):
        return max(1, m // 5), max(1, n // 4)
    return m, n


def _data(m, n, dim, dtype, seed=0):
    rng = np.random.default_rng(seed)
    # data and queries on the same scale, bandwidth 1: a typical DKS query at moderate noise
    return rng.normal(size=(m, dim)).astype(dtype), rng.normal(size=(n, dim)).astype(dtype)


def _run(benchmark, function, m, n, rounds=3):
    function()  # warm-up: compilation (Numba, KeOps) and caches stay out of the timings
    result = benchmark.pedantic(function, rounds=rounds, iterations=1)
    benchmark.extra_info.update(m=m, n=n, pairs=m * n)
    if not getattr(benchmark, "disabled", False):
        benchmark.extra_info["pairs_per_s"] = m * n / benchmark.stats.stats.min
    return result


SMALL_BACKENDS = ["numba", "numpy"] + (["keops"] if HAS_KEOPS else [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_small_dim(benchmark, backend, dtype):
    """d = 3, m = n = 20,000."""
    benchmark.group = f"d=3 m=n=20000 {np.dtype(dtype).name}"
    m, n = _sizes(benchmark, 20_000, 20_000)
    queries, points = _data(m, n, 3, dtype)
    result = _run(benchmark, lambda: gaussian_reduction(queries, points, backend=backend), m, n,
                  rounds=1 if backend == "numpy" else 3)
    assert np.all(np.isfinite(result.log_sum)) and result.mean.dtype == dtype


SWITCH_PARAMS = [(dim, n, backend) for n in (10_000, 100_000) for dim in (16, 17) for backend in SMALL_BACKENDS]


@pytest.mark.parametrize("dim,n,backend", SWITCH_PARAMS, ids=[f"d{d}-n{n}-{b}" for d, n, b in SWITCH_PARAMS])
def test_dimension_switch(benchmark, dim, n, backend):
    """d = 16 (fused kernel) and d = 17 (BLAS tiles), m = 1,000, n = 1e4 and 1e5, float64: cost linear in n."""
    benchmark.group = f"d={dim} m=1000 n={n} float64"
    m, n = _sizes(benchmark, 1_000, n)
    queries, points = _data(m, n, dim, np.float64)
    _run(benchmark, lambda: gaussian_reduction(queries, points, backend=backend), m, n,
         rounds=1 if backend != "numba" else 3)


@pytest.mark.parametrize("per_query", [False, True], ids=["one_time", "per_query_times"])
def test_per_query_parameters(benchmark, per_query):
    """d = 3, m = n = 20,000, float64: 20,000 distinct (precision, offset) pairs against one shared time."""
    benchmark.group = "SquaredDistance per-query parameters, d=3 m=n=20000 float64"
    m, n = _sizes(benchmark, 20_000, 20_000)
    queries, points = _data(m, n, 3, np.float64)
    rng = np.random.default_rng(1)
    form = SquaredDistance(rng.uniform(0.5, 2.0, m), rng.uniform(0.0, 1.0, m)) if per_query else SquaredDistance()
    _run(benchmark, lambda: reduce(form, queries, points, backend="numba"), m, n)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("tables", [1, 3], ids=["one_table", "three_point_tables"])
def test_dot_product_table(benchmark, backend, tables):
    """S^2 heat kernel tabulated in x . y (times 0.01, 0.03, 0.1 by point class), m = n = 10,000, score."""
    from opdiff.manifolds import Hypersphere

    benchmark.group = f"DotProductTable {tables} table(s), S^2 m=n=10000, gradient"
    m, n = _sizes(benchmark, 10_000, 10_000)
    sphere = Hypersphere(2)
    rng = np.random.default_rng(2)
    queries, points = sphere.random_uniform(m, rng), sphere.random_uniform(n, rng)
    grid = [sphere.heat_table(s) for s in (0.01, 0.03, 0.1)[:tables]]
    form = DotProductTable(grid, point_index=rng.integers(0, tables, n) if tables > 1 else None)
    _run(benchmark, lambda: reduce(form, queries, points, gradient=True, backend=backend), m, n,
         rounds=1 if backend == "numpy" else 3)


LARGE_CASES = [(64, 2_000, 20_000), (3072, 256, 10_000)]
# KeOps CPU at large D: float32 only (one compile per case, minutes in float64)
LARGE_PARAMS = [(dim, m, n, backend, dtype) for dim, m, n in LARGE_CASES for dtype in (np.float32, np.float64)
                for backend in ["numba", "numpy", "matmul", "matmul_x2"] + (["keops"] if HAS_KEOPS else [])
                if not (backend == "keops" and dtype == np.float64)]


def _matmul(queries, points, twice):
    """The bare matrix product of the same sizes (and, for ``twice``, the weighted-mean product too)."""
    inner = queries @ points.T
    return inner @ points if twice else inner


@pytest.mark.parametrize("dim,m,n,backend,dtype", LARGE_PARAMS,
                         ids=[f"d{d}-{b}-{np.dtype(t).name}" for d, _, _, b, t in LARGE_PARAMS])
def test_large_dim(benchmark, dim, m, n, backend, dtype):
    """d = 64 (m = 2,000, n = 20,000) and d = 3072 (m = 256, n = 10,000) against the matmul bound."""
    benchmark.group = f"d={dim} m={m} n={n} {np.dtype(dtype).name}"
    m, n = _sizes(benchmark, m, n)
    queries, points = _data(m, n, dim, dtype)
    if backend.startswith("matmul"):
        function = lambda: _matmul(queries, points, backend == "matmul_x2")  # noqa: E731
    else:
        function = lambda: gaussian_reduction(queries, points, backend=backend)  # noqa: E731
    _run(benchmark, function, m, n, rounds=1 if backend == "keops" else 3)


@pytest.fixture(scope="module")
def dask_client():
    if not HAS_DASK:
        pytest.skip("dask.distributed is not installed")
    from opdiff.reductions import set_dask_client
    from opdiff.reductions._dask import start_local_cluster

    yield start_local_cluster(n_workers=2, threads_per_worker=1, processes=True)
    set_dask_client(None)


@pytest.mark.parametrize("backend", ["dask", "numba"])
def test_dask_overhead(benchmark, backend, request):
    """Largest pytest case (d = 3, m = n = 20,000, float64): dask LocalCluster vs one process."""
    if backend == "dask":
        request.getfixturevalue("dask_client")
    benchmark.group = "dask: d=3 m=n=20000 float64"
    m, n = _sizes(benchmark, 20_000, 20_000)
    queries, points = _data(m, n, 3, np.float64)
    _run(benchmark, lambda: gaussian_reduction(queries, points, backend=backend), m, n)


@pytest.mark.parametrize("backend", ["dask", "numba"])
def test_dask_repeated_queries(benchmark, backend, request):
    """Many data, few queries (d = 64, m = 100, n = 200,000, float64): the data stay on the workers."""
    if backend == "dask":
        request.getfixturevalue("dask_client")
    benchmark.group = "dask: d=64 m=100 n=200000 float64"
    m, n = _sizes(benchmark, 100, 200_000)
    queries, points = _data(m, n, 64, np.float64)
    _run(benchmark, lambda: gaussian_reduction(queries, points, backend=backend), m, n, rounds=5)


# ---- scripts: peak memory and the README table ----------------------------------------------------
def measure_memory(m=1_000_000, n=1_000_000, dim=3, dtype=np.float32, backend="numba"):
    """Peak memory of one streaming reduction: tracemalloc (NumPy allocations) and max RSS."""
    queries, points = _data(min(m, 1000), min(n, 1000), dim, dtype)
    gaussian_reduction(queries, points, backend=backend)  # compile / import outside the measurement
    queries, points = _data(m, n, dim, dtype)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    start = time.perf_counter()
    result = gaussian_reduction(queries, points, backend=backend)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert np.all(np.isfinite(result.log_sum))
    input_mb = (queries.nbytes + points.nbytes) / 2**20
    print(f"m={m} n={n} d={dim} {np.dtype(dtype).name} backend={backend}: {elapsed:.1f} s, "
          f"{m * n / elapsed:.3g} pairs/s; inputs {input_mb:.0f} MiB; tracemalloc peak during the call "
          f"{peak / 2**20:.0f} MiB; max RSS {rss_before:.0f} MiB before the call, {rss_after:.0f} MiB after")


def time_in_process(dim, m, n, dtype, backend, calls=5):
    """Median wall time of ``calls`` calls after a warm-up, in this process only (no BLAS threads left
    spinning by another case); ``backend`` is a reduction backend, "matmul" or "matmul_x2"."""
    queries, points = _data(m, n, dim, dtype)
    if backend.startswith("matmul"):
        function = lambda: _matmul(queries, points, backend == "matmul_x2")  # noqa: E731
    else:
        function = lambda: gaussian_reduction(queries, points, backend=backend)  # noqa: E731
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    print(f"d={dim} m={m} n={n} {np.dtype(dtype).name} {backend}: median {np.median(times):.4f} s, "
          f"min {min(times):.4f} s over {calls} calls")


def compare_with_revision(revision, calls=3):
    """CPU time of the current Numba Gaussian kernel against the one at a git ``revision``, in one process.

    The old ``opdiff/reductions/_numba.py`` is read with ``git show`` into a temporary folder and
    imported beside the current package (its relative imports pointed at the installed ``opdiff``).
    """
    import importlib.util
    import pathlib
    import subprocess
    import tempfile

    source = subprocess.run(["git", "show", f"{revision}:opdiff/reductions/_numba.py"], check=True,
                            capture_output=True, text=True).stdout
    source = source.replace("from ..backend", "from opdiff.backend").replace(
        "from .api import register_backend", "return")
    folder = pathlib.Path(tempfile.mkdtemp())
    (folder / "previous_numba.py").write_text(source)
    spec = importlib.util.spec_from_file_location("previous_numba", folder / "previous_numba.py")
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)

    def cpu(function):
        function()
        best = np.inf
        for _ in range(calls):
            start = time.process_time()
            function()
            best = min(best, time.process_time() - start)
        return best

    for dim, m, n, dtype in [(3, 20_000, 20_000, np.float32), (3, 20_000, 20_000, np.float64),
                             (16, 1_000, 100_000, np.float64), (16, 1_000, 10_000, np.float64)]:
        queries, points = _data(m, n, dim, dtype)
        old = cpu(lambda: previous.gaussian_reduction(queries, points, None, None))
        new = cpu(lambda: gaussian_reduction(queries, points, backend="numba"))
        print(f"d={dim} m={m} n={n} {np.dtype(dtype).name}: {revision} {m * n / old:.3g}, current "
              f"{m * n / new:.3g} pairs/CPU-s; current is {old / new:.2f}x as fast")


def print_table(paths):
    """Markdown rows (group, name, min time, pairs/s) from pytest-benchmark JSON files."""
    rows = []
    for path in paths:
        with open(path) as handle:
            for bench in json.load(handle)["benchmarks"]:
                info = bench.get("extra_info", {})
                rows.append((bench["group"], bench["name"], bench["stats"]["min"], info.get("pairs_per_s", 0.0)))
    for group, name, seconds, rate in sorted(rows):
        print(f"| {group} | {name} | {seconds:.4f} | {rate:.3g} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:  # memory [m] [n] [float32|float64]
        sizes = [int(float(a)) for a in sys.argv[2:4]] + [1_000_000] * (2 - len(sys.argv[2:4]))
        measure_memory(m=sizes[0], n=sizes[1], dtype=np.dtype(sys.argv[4] if len(sys.argv) > 4 else "float32"))
    elif sys.argv[1:2] == ["bound"]:  # bound dim m n dtype backend
        dim, m, n = (int(a) for a in sys.argv[2:5])
        time_in_process(dim, m, n, np.dtype(sys.argv[5]), sys.argv[6])
    elif sys.argv[1:2] == ["previous"]:  # previous <git revision>
        compare_with_revision(sys.argv[2])
    elif sys.argv[1:2] == ["table"]:
        print_table(sys.argv[2:])
    else:
        print(__doc__)
