"""Dask backend: the data split into partitions across a ``dask.distributed`` cluster.

Each partition returns its partial reduction ``(log_sum_k, mean_k)`` computed on the worker by the
best local backend; partials are merged by a binary tree of the shared merge
(:func:`opdiff.reductions.online.merge`)

    log_sum = logaddexp(log_sum_a, log_sum_b)
    mean    = exp(log_sum_a - log_sum) mean_a + exp(log_sum_b - log_sum) mean_b,

which equals the reduction over the union exactly (a partition whose weights are all zero has
``log_sum = -inf`` and drops out). Peak memory per worker is the chunk budget plus its partition.

Which cluster: :func:`set_dask_client` (a ``distributed.Client`` or a scheduler address), else the
default client of this process (``distributed.get_client()``).

Data cache: the partitions of ``(points, values, log_weights)`` stay on the workers between calls, so
repeated queries against the same training set send only the queries. Entries are keyed by the
*content* of the three arrays (a SHA-1 digest of their bytes, dtypes and shapes), the number of
partitions and the client. Invalidation rule: any change to the data, including an in-place edit of
the same array, changes the key and re-sends the data; the least recently used entries beyond
``DATA_CACHE_SIZE`` are released, and so are all entries when :func:`set_dask_client` is called or
:func:`clear_dask_cache` is; entries whose futures were lost (a worker died) are re-sent. Hashing
reads the data once per call (SHA-1, about 2 GB/s on one core), a fraction of the cost of sending them.
"""
import hashlib
import logging
from collections import OrderedDict

import numpy as np

from ..backend import require_extra
from .online import merge

_STATE = {"client": None, "owned": False, "cluster": None, "n_partitions": None}
DATA_CACHE_SIZE = 4  # data sets kept scattered on the workers (least recently used released first)
_DATA_CACHE = OrderedDict()  # (digest, n_partitions, client id) -> list of futures, one per partition


def set_dask_client(client=None, n_partitions=None):
    """Choose the dask cluster used by ``backend="dask"``.

    Parameters
    ----------
    client : distributed.Client or str or None
        A client, or a scheduler address (``"tcp://host:8786"``) to connect to; ``None`` goes back
        to the default client of the process.
    n_partitions : int, optional
        Number of data partitions; default one per worker thread.

    Returns
    -------
    distributed.Client or None
        The client now in use (a new one when an address was given).
    """
    if n_partitions is not None and (int(n_partitions) != n_partitions or n_partitions < 1):
        raise ValueError(f"n_partitions: expected a positive integer or None, got {n_partitions!r}")
    if client is not None and not isinstance(client, str) and not hasattr(client, "scatter"):
        raise TypeError("client: expected a distributed.Client, an address string or None, "
                        f"got {type(client).__name__}")
    owned = False
    if isinstance(client, str):
        distributed = require_extra("distributed")
        client, owned = distributed.Client(client), True
    clear_dask_cache()
    if _STATE["owned"] and _STATE["client"] is not None and _STATE["client"] is not client:
        _STATE["client"].close()
        if _STATE["cluster"] is not None:
            _STATE["cluster"].close()
    keep = _STATE["client"] is client and _STATE["owned"]
    _STATE.update(client=client, owned=owned or keep, cluster=_STATE["cluster"] if keep else None,
                  n_partitions=None if n_partitions is None else int(n_partitions))
    return client


def start_local_cluster(n_workers=2, threads_per_worker=1, processes=True):
    """Start a ``distributed.LocalCluster`` on this machine and use it for ``backend="dask"``.

    The cluster and its client belong to opdiff: the next :func:`set_dask_client` call (e.g.
    ``set_dask_client(None)``) closes both.

    Returns
    -------
    distributed.Client
    """
    distributed = require_extra("distributed")
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                       processes=processes, dashboard_address=":0", silence_logs=logging.ERROR)
    client = set_dask_client(distributed.Client(cluster))
    _STATE.update(owned=True, cluster=cluster)
    return client


def get_dask_client():
    """The client ``backend="dask"`` will use; raises ``ValueError`` when there is none.

    Returns
    -------
    distributed.Client
    """
    if _STATE["client"] is not None:
        return _STATE["client"]
    distributed = require_extra("distributed")
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(
            "backend='dask': no dask client; pass one (or a scheduler address) to "
            "opdiff.reductions.set_dask_client, or create a distributed.Client first"
        ) from None


def combine_partials(first, second):
    """Merge two partial reductions ``(log_sum, mean)`` of disjoint data into that of their union.

    Parameters
    ----------
    first, second : (log_sum (m,), mean (m, p))

    Returns
    -------
    log_sum : (m,) array
    mean : (m, p) array
    """
    return merge([first, second])


def partial_reduction(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """Reduction over one partition (the form restricted to it), on a worker; ``log_sum = -inf`` when every
    weight is zero.

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
    """
    from .api import _select_backend

    if log_weights is not None and not np.any(np.isfinite(log_weights)):
        n_values = queries.shape[1] if values is None or gradient else values.shape[1]
        m = queries.shape[0]
        return np.full(m, -np.inf, dtype=queries.dtype), np.zeros((m, n_values), dtype=queries.dtype)
    function = _select_backend("auto", queries, points, form)
    return function(form, queries, points, values, log_weights, gradient, chunk_bytes)


def _run_partition(piece, queries, form, gradient, chunk_bytes):
    points, values, log_weights, point_rows = piece
    return partial_reduction(form.select(slice(None), point_rows), queries, points, values, log_weights, gradient,
                             chunk_bytes)


def _tree_reduce(client, futures):
    """Pairwise combination, log2(k) levels deep; every level runs in parallel on the cluster."""
    while len(futures) > 1:
        paired = [client.submit(combine_partials, futures[i], futures[i + 1], pure=False)
                  for i in range(0, len(futures) - 1, 2)]
        if len(futures) % 2:
            paired.append(futures[-1])
        futures = paired
    return futures[0]


def clear_dask_cache():
    """Release every data partition kept on the workers by ``backend="dask"`` (see the module notes)."""
    _DATA_CACHE.clear()  # dropping the futures lets the scheduler free the data


def _data_digest(points, values, log_weights):
    digest = hashlib.sha1(usedforsecurity=False)  # a content key, not a security check; fastest with SHA-NI
    for array in (points, values, log_weights):
        if array is None:
            digest.update(b"None;")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _scattered_data(client, points, values, log_weights, n_partitions):
    """Futures of the data partitions on the workers, sent only on a cache miss."""
    key = (_data_digest(points, values, log_weights), n_partitions, client.id)
    futures = _DATA_CACHE.get(key)
    if futures is not None and all(future.status == "finished" for future in futures):
        _DATA_CACHE.move_to_end(key)
        return futures
    bounds = np.linspace(0, points.shape[0], n_partitions + 1).astype(int)
    pieces = [(points[start:stop], None if values is None else values[start:stop],
               None if log_weights is None else log_weights[start:stop], slice(int(start), int(stop)))
              for start, stop in zip(bounds[:-1], bounds[1:])]
    # hash=False: fresh keys (content-hashed keys collide with data being released from a previous call)
    futures = client.scatter(pieces, hash=False)
    _DATA_CACHE[key] = futures
    _DATA_CACHE.move_to_end(key)
    while len(_DATA_CACHE) > DATA_CACHE_SIZE:
        _DATA_CACHE.popitem(last=False)
    return futures


def reduce(form, queries, points, values, log_weights, gradient, chunk_bytes=None):
    """Reduction of a bound form on a dask cluster.

    The data partitions are cached on the workers between calls (module notes: invalidation rule);
    the form (per-point parameters included) travels with the queries, and each worker takes its
    partition's rows of it.

    Arguments and result: the backend signature of :func:`opdiff.reductions.register_backend`.
    """
    client = get_dask_client()
    n_partitions = _STATE["n_partitions"] or max(1, sum(client.nthreads().values()))
    scattered = _scattered_data(client, points, values, log_weights, min(points.shape[0], n_partitions))
    [query_future, form_future] = client.scatter([queries, form], broadcast=True, hash=False)
    partials = [client.submit(_run_partition, piece, query_future, form_future, gradient, chunk_bytes, pure=False)
                for piece in scattered]
    return _tree_reduce(client, partials).result()


def _register():
    import importlib.util

    from .api import register_backend

    if importlib.util.find_spec("distributed") is not None:
        register_backend("dask", reduce)


_register()
