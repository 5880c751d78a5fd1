"""Maximum mean discrepancy with a Gaussian kernel, through the chunked reduction layer."""
import numpy as np

from ..backend import check_points, check_positive, to_numpy
from ..reductions import gaussian_reduction
from ..reductions._numpy import squared_distances


def _kernel_sum(x, y, bandwidth, backend):
    """``sum_{i, j} exp(-|x_i - y_j|^2 / (2 h^2))`` without an ``(n, m)`` array."""
    reduction = gaussian_reduction(x / bandwidth, y / bandwidth, backend=backend)
    return float(np.sum(np.exp(to_numpy(reduction.log_sum).astype(np.float64))))


def median_bandwidth(x, y, max_points=1000, rng=0):
    """Median heuristic: the median pairwise distance of (a subsample of) the pooled points.

    When more than half the pairs coincide the median is 0; then the median of the non-zero
    distances is used, and 1.0 when every point is the same (any bandwidth gives the same kernel).

    Parameters
    ----------
    x : (n, d) array
    y : (m, d) array
    max_points : int
        At most this many pooled rows (drawn with seed ``rng``).
    rng : int or Generator

    Returns
    -------
    float
        A positive bandwidth.
    """
    x, y = check_points(x, "x"), check_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: expected dimension {x.shape[1]} to match x, got {y.shape[1]}")
    pooled = np.concatenate([to_numpy(x), to_numpy(y)])
    if pooled.shape[0] > max_points:
        pooled = pooled[np.random.default_rng(rng).choice(pooled.shape[0], max_points, replace=False)]
    squared = squared_distances(pooled, pooled, np)  # (max_points, max_points): bounded by max_points
    pairs = squared[np.triu_indices(pooled.shape[0], 1)]
    median = float(np.sqrt(np.median(pairs)))
    if median > 0:
        return median
    positive = pairs[pairs > 0]
    return float(np.sqrt(np.median(positive))) if positive.size else 1.0


def mmd_squared(x, y, bandwidth=None, backend="auto"):
    """Unbiased estimate of ``MMD^2`` between the samples ``x (n, d)`` and ``y (m, d)``.

    Gaussian kernel ``k(a, b) = exp(-|a - b|^2 / (2 h^2))``; ``h`` by the median heuristic when not given.
    On a manifold, pass ambient coordinates (the Gaussian kernel of the embedding is characteristic).

    Parameters
    ----------
    x : (n, d) array
    y : (m, d) array
    bandwidth : float, optional
        ``h > 0`` (default :func:`median_bandwidth`).
    backend : str
        Reduction backend (:mod:`opdiff.reductions`).

    Returns
    -------
    float
        ``1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j) - 2/(nm) sum k(x_i, y_j)``.
    """
    x, y = check_points(x, "x"), check_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: expected dimension {x.shape[1]} to match x, got {y.shape[1]}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"x: the unbiased MMD needs at least two points in each sample, got {x.shape[0]} and {y.shape[0]}")
    h = median_bandwidth(x, y) if bandwidth is None else check_positive(bandwidth, "bandwidth")
    n, m = x.shape[0], y.shape[0]
    xx = (_kernel_sum(x, x, h, backend) - n) / (n * (n - 1))
    yy = (_kernel_sum(y, y, h, backend) - m) / (m * (m - 1))
    xy = _kernel_sum(x, y, h, backend) / (n * m)
    return xx + yy - 2.0 * xy
