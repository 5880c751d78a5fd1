"""The dask backend on a real LocalCluster (2 worker processes, 1 thread each), against the
single-process NumPy backend (an independent route: one pass over all the data, no partitions,
no tree combination). Tolerance 1e-12 relative in float64: the tree combination adds a few
roundings of exp/logaddexp per level (~1e-16 each) to results of magnitude <= ~1e2.
"""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from opdiff.reductions import (CoordinateTable, DotProductTable, SquaredDistance, gaussian_reduction,  # noqa: E402
                               get_dask_client, reduce, set_dask_client)
from opdiff.reductions._dask import combine_partials, start_local_cluster  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # a cluster the user owns: opdiff only borrows its client
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
    client = distributed.Client(cluster)
    set_dask_client(client)
    yield client
    set_dask_client(None)
    client.close()
    cluster.close()


def _data(dtype=np.float64, n=301, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    queries, points = rng.normal(size=(40, dim)), rng.normal(size=(n, dim))
    log_weights = rng.normal(size=n)
    log_weights[: n // 2] = -np.inf  # whole partitions with zero weight drop out of the tree
    return queries.astype(dtype), points.astype(dtype), log_weights.astype(dtype)


@pytest.mark.parametrize("n_partitions", [None, 5])
def test_dask_matches_single_process(client, n_partitions):
    queries, points, log_weights = _data()
    values = np.random.default_rng(1).normal(size=(points.shape[0], 2))
    set_dask_client(client, n_partitions=n_partitions)
    try:
        got = gaussian_reduction(queries, points, values, log_weights, backend="dask")
    finally:
        set_dask_client(client)
    expected = gaussian_reduction(queries, points, values, log_weights, backend="numpy")
    np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-12)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=0, atol=1e-12)


def test_dask_serves_every_form(client):
    # per-point parameters travel with their partition (each worker takes its rows of the form),
    # per-query ones with the queries; gradients too. Same reference and tolerance as above.
    from opdiff.manifolds import FlatTorus, Hypersphere

    rng = np.random.default_rng(3)
    sphere, torus = Hypersphere(2), FlatTorus(2)
    forms = [
        (SquaredDistance(rng.uniform(0.5, 2, 40), rng.uniform(0, 1, 40), rng.uniform(0.5, 2, 301)),
         rng.normal(size=(40, 3)), rng.normal(size=(301, 3))),
        (DotProductTable([sphere.heat_table(0.02), sphere.heat_table(0.3)], point_index=rng.integers(0, 2, 301)),
         sphere.random_uniform(40, rng), sphere.random_uniform(301, rng)),
        (CoordinateTable([torus.heat_table(0.05), torus.heat_table(0.4)], query_index=rng.integers(0, 2, 40)),
         torus.random_uniform(40, rng), torus.random_uniform(301, rng)),
    ]
    log_weights = rng.normal(size=301)
    log_weights[:150] = -np.inf  # whole partitions with zero weight drop out of the merge
    set_dask_client(client, n_partitions=3)
    try:
        for form, queries, points in forms:
            for gradient in (False, True):
                got = reduce(form, queries, points, log_weights=log_weights, gradient=gradient, backend="dask")
                expected = reduce(form, queries, points, log_weights=log_weights, gradient=gradient,
                                  backend="numpy")
                np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-12)
                np.testing.assert_allclose(got.mean, expected.mean, rtol=0,
                                           atol=1e-12 * (1 + np.abs(expected.mean).max()))
    finally:
        set_dask_client(client)


def test_dask_keeps_float32_and_handles_far_queries(client):
    queries, points, log_weights = _data(np.float32)
    queries = queries + np.float32(20.0)  # every kernel value underflows in float32 (|x-y|^2/2 > 104)
    got = gaussian_reduction(queries, points, log_weights=log_weights, backend="dask")
    expected = gaussian_reduction(queries.astype(np.float64), points.astype(np.float64),
                                  log_weights=log_weights.astype(np.float64), backend="numpy")
    assert got.log_sum.dtype == np.float32 and got.mean.dtype == np.float32
    # float32 tolerance 1e-4 relative: rounding of float32 log-kernels of magnitude ~1e3
    np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-4)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=0, atol=1e-4 * (1 + np.ptp(points)))


def _check_small_problem(n):
    queries, points, log_weights = _data(n=n)
    got = gaussian_reduction(queries, points, log_weights=log_weights, backend="dask")
    expected = gaussian_reduction(queries, points, log_weights=log_weights, backend="numpy")
    np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-12)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=0, atol=1e-12)


def test_dask_scheduler_address(client):
    # a scheduler address connects a new client, owned (and closed) by opdiff
    own = set_dask_client(client.scheduler.address)
    try:
        assert own is not client and get_dask_client() is own
        _check_small_problem(n=7)
    finally:
        set_dask_client(client)
    assert own.status == "closed"


def test_combine_partials_is_the_union():
    rng = np.random.default_rng(2)
    queries, points = rng.normal(size=(6, 2)), rng.normal(size=(20, 2))
    whole = gaussian_reduction(queries, points, backend="numpy")
    first = gaussian_reduction(queries, points[:8], backend="numpy")
    second = gaussian_reduction(queries, points[8:], backend="numpy")
    empty = (np.full(6, -np.inf), np.zeros((6, 2)))
    log_sum, mean = combine_partials(combine_partials(first, empty), second)
    np.testing.assert_allclose(log_sum, whole.log_sum, rtol=1e-13)
    np.testing.assert_allclose(mean, whole.mean, rtol=0, atol=1e-13)


def test_bad_client_arguments():
    with pytest.raises(TypeError, match="client"):
        set_dask_client(3.0)
    with pytest.raises(ValueError, match="n_partitions"):
        set_dask_client(None, n_partitions=0)


def test_start_local_cluster_is_owned_and_closed(client):
    own = start_local_cluster(n_workers=1, threads_per_worker=1, processes=False)
    try:
        _check_small_problem(n=9)
    finally:
        set_dask_client(client)
    assert own.status == "closed" and client.status == "running"


def _count_data_scatters(client, monkeypatch):
    """Spy on client.scatter: counts the calls that send data partitions (the queries are broadcast)."""
    calls = []
    scatter = client.scatter

    def spy(data, *args, **kwargs):
        if not kwargs.get("broadcast"):
            calls.append(len(data))
        return scatter(data, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", spy)
    return calls


def test_dask_keeps_the_data_on_the_workers_between_calls(client, monkeypatch):
    from opdiff.reductions import _dask

    set_dask_client(client)  # also empties the cache
    calls = _count_data_scatters(client, monkeypatch)
    queries, points, log_weights = _data(seed=3)
    for query_block in (queries[:20], queries[20:]):  # two query batches, one training set
        got = gaussian_reduction(query_block, points, log_weights=log_weights, backend="dask")
        expected = gaussian_reduction(query_block, points, log_weights=log_weights, backend="numpy")
        np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-12)  # tolerance: module docstring
        np.testing.assert_allclose(got.mean, expected.mean, rtol=0, atol=1e-12)
    assert len(calls) == 1 and len(_dask._DATA_CACHE) == 1
    # an equal copy hits the cache (the key is the content); an in-place edit of the same array misses
    gaussian_reduction(queries, points.copy(), log_weights=log_weights.copy(), backend="dask")
    assert len(calls) == 1
    points[0] += 1.0
    got = gaussian_reduction(queries, points, log_weights=log_weights, backend="dask")
    expected = gaussian_reduction(queries, points, log_weights=log_weights, backend="numpy")
    np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-12)
    assert len(calls) == 2 and len(_dask._DATA_CACHE) == 2
    # partitions lost on the cluster (here: cancelled) are sent again
    client.cancel(list(_dask._DATA_CACHE.values())[-1])
    got = gaussian_reduction(queries, points, log_weights=log_weights, backend="dask")
    np.testing.assert_allclose(got.log_sum, expected.log_sum, rtol=1e-12)
    assert len(calls) == 3


def test_dask_data_cache_is_bounded_and_cleared(client, monkeypatch):
    from opdiff.reductions import _dask, clear_dask_cache

    set_dask_client(client)
    calls = _count_data_scatters(client, monkeypatch)
    queries, points, log_weights = _data(n=11)
    for k in range(_dask.DATA_CACHE_SIZE + 2):  # distinct data sets: the oldest entries are released
        gaussian_reduction(queries, points + k, log_weights=log_weights, backend="dask")
    assert len(_dask._DATA_CACHE) == _dask.DATA_CACHE_SIZE and len(calls) == _dask.DATA_CACHE_SIZE + 2
    gaussian_reduction(queries, points, log_weights=log_weights, backend="dask")  # evicted: sent again
    assert len(calls) == _dask.DATA_CACHE_SIZE + 3
    # another partition count is another key; values=None and explicit values are different data
    set_dask_client(client, n_partitions=3)
    assert len(_dask._DATA_CACHE) == 0  # set_dask_client empties the cache
    gaussian_reduction(queries, points, log_weights=log_weights, backend="dask")
    gaussian_reduction(queries, points, points, log_weights=log_weights, backend="dask")
    assert len(calls) == _dask.DATA_CACHE_SIZE + 5
    clear_dask_cache()
    assert len(_dask._DATA_CACHE) == 0
    set_dask_client(client)
