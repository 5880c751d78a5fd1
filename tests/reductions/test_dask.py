"""The dask backend on a real LocalCluster (2 worker processes, 1 thread each), against the
single-process NumPy backend (an independent route: one pass over all the data, no partitions,
no tree combination). Tolerance 1e-12 relative in float64: the tree combination adds a few
roundings of exp/logaddexp per level (~1e-16 each) to results of magnitude <= ~1e2.
"""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from opdiff.reductions import gaussian_reduction, get_dask_client, set_dask_client  # noqa: E402
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
