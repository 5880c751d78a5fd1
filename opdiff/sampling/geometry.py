"""Trajectory diagnostics: how straight, how planar, how curved, and where sampling ends.

All functions take a :class:`~opdiff.sampling.Trajectory` recorded with ``record=True`` or an array of
points ``(T, n, *shape)`` (``T`` points along each of ``n`` trajectories; trailing axes are flattened)
and work per trajectory.
"""
from typing import NamedTuple

import numpy as np

from ..backend import check_choice, check_finite, check_points, chunk_rows, get_chunk_bytes, get_namespace, to_numpy
from ..reductions._numpy import squared_distances
from .trajectory import Trajectory


def _points(trajectory, name="trajectory", attribute="samples"):
    """``(T, n, D)`` float array from a Trajectory (its ``attribute``) or an array."""
    if isinstance(trajectory, Trajectory):  # a run without ``record`` raises, naming record=True
        trajectory = getattr(trajectory, check_choice(attribute, "attribute", {"samples", "denoised"}))
    xp = get_namespace(trajectory)
    arr = xp.asarray(trajectory)
    if arr.ndim < 3 or arr.shape[0] < 2:
        raise ValueError(f"{name}: expected points of shape (T >= 2, n, *shape), got {tuple(arr.shape)}")
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return check_finite(arr, name)


def _norm(v, xp):
    return xp.sqrt(xp.sum(v * v, axis=-1))


def chord_deviation(trajectory, attribute="samples"):
    """Distance of every point from the chord through the first and last point (``cal_deviation``).

    Parameters
    ----------
    trajectory : Trajectory or (T, n, *shape) array
        A run recorded with ``record=True``, or the points themselves.
    attribute : {"samples", "denoised"}
        Which trajectory of a :class:`Trajectory` to measure.

    Returns
    -------
    (T, n) array
        Zero at both ends.
    """
    points = _points(trajectory, attribute=attribute)
    xp = get_namespace(points)
    chord = points[-1] - points[0]
    length = _norm(chord, xp)
    direction = chord / xp.where(length > 0, length, 1.0)[:, None]
    offset = points - points[0][None]
    along = xp.sum(offset * direction[None], axis=-1)
    return _norm(offset - along[..., None] * direction[None], xp)


def distance_to_end(trajectory, attribute="samples"):
    """Distance of every point to the last one.

    Parameters
    ----------
    trajectory, attribute
        As in :func:`chord_deviation`.

    Returns
    -------
    (T, n) array
    """
    points = _points(trajectory, attribute=attribute)
    xp = get_namespace(points)
    return _norm(points - points[-1][None], xp)


def noise_end_cosine(trajectory):
    """Cosine between the noise direction ``eps = (x_t - D(x_t)) / t`` and ``x_t - x_end``.

    Parameters
    ----------
    trajectory : Trajectory
        With a denoising trajectory and positive noise levels at the steps' starts.

    Returns
    -------
    (n_steps, n) array
    """
    if not isinstance(trajectory, Trajectory):
        raise TypeError(f"trajectory: expected a Trajectory, got {type(trajectory).__name__}")
    noise = trajectory.noise
    eps = noise.reshape(noise.shape[0], noise.shape[1], -1)
    points = _points(trajectory)
    xp = get_namespace(points)
    towards = points[: eps.shape[0]] - points[-1][None]
    denominator = _norm(eps, xp) * _norm(towards, xp)
    return xp.sum(eps * towards, axis=-1) / xp.where(denominator > 0, denominator, 1.0)


def projection_error(trajectory, n_components=2, attribute="samples"):
    """Relative error of the best ``n_components``-dimensional affine (PCA) fit of each trajectory.

    ``sqrt(sum_{k > n_components} s_k^2 / sum_k s_k^2)`` with ``s_k`` the singular values of the
    centred ``(T, D)`` points of one trajectory: 0 for a trajectory inside a plane, 1 at most.

    Parameters
    ----------
    trajectory, attribute
        As in :func:`chord_deviation`.
    n_components : int
        Dimension of the fitted affine subspace.

    Returns
    -------
    (n,) array
    """
    if int(n_components) < 1:
        raise ValueError(f"n_components: expected a positive integer, got {n_components}")
    points = _points(trajectory, attribute=attribute)
    xp = get_namespace(points)
    centred = points - xp.mean(points, axis=0, keepdims=True)
    singular = xp.linalg.svd(xp.moveaxis(centred, 1, 0), compute_uv=False)  # (n, min(T, D))
    energy = singular * singular
    total = xp.sum(energy, axis=1)
    residual = xp.sum(energy[:, int(n_components):], axis=1)
    return xp.sqrt(residual / xp.where(total > 0, total, 1.0))


def discrete_curvature(trajectory, attribute="samples"):
    """Menger curvature of consecutive triples: ``4 area / (|a| |b| |c|)`` (``1/R`` on a circle of radius R).

    Parameters
    ----------
    trajectory, attribute
        As in :func:`chord_deviation`.

    Returns
    -------
    (T - 2, n) array
    """
    points = _points(trajectory, attribute=attribute)
    if points.shape[0] < 3:
        raise ValueError(f"trajectory: curvature needs at least 3 points, got {points.shape[0]}")
    xp = get_namespace(points)
    a = points[1:-1] - points[:-2]
    b = points[2:] - points[1:-1]
    c = points[2:] - points[:-2]
    aa, bb, ab = xp.sum(a * a, -1), xp.sum(b * b, -1), xp.sum(a * b, -1)
    twice_area = xp.sqrt(xp.maximum(aa * bb - ab * ab, 0.0))
    lengths = xp.sqrt(aa * bb) * _norm(c, xp)
    return 2.0 * twice_area / xp.where(lengths > 0, lengths, 1.0)


def log_density_along(log_density, trajectory, shift=0):
    """``log rho_{sigma_i}(x_{i + shift})`` along a VE trajectory, at each step's starting noise level.

    Parameters
    ----------
    log_density : callable
        ``log_density(x (n, d), sigma) -> (n,)``, e.g. :meth:`VEDenoiser.log_density`.
    trajectory : Trajectory
        With ``sigmas``.
    shift : {0, 1}
        0: the point where the step starts; 1: the point it reaches (same bandwidth ``sigma_i``).

    Returns
    -------
    (m, n) array
        One row per step with ``sigma_i > 0``.
    """
    if not isinstance(trajectory, Trajectory) or trajectory.sigmas is None:
        raise TypeError("trajectory: expected a Trajectory with sigmas (a VE-form run)")
    if shift not in (0, 1):
        raise ValueError(f"shift: expected 0 or 1, got {shift!r}")
    rows = [i for i in range(trajectory.n_steps) if trajectory.sigmas[i] > 0]
    return np.stack([to_numpy(log_density(trajectory.samples[i + shift], float(trajectory.sigmas[i])))
                     for i in rows])


def mean_shift_increments(log_density, trajectory):
    """``log rho_{sigma_i}(x_{i+1}) - log rho_{sigma_i}(x_i)``: the change of the smoothed log-density
    over each step at that step's bandwidth (never negative for Euler steps with the exact empirical
    denoiser: annealed mean shift).

    Parameters
    ----------
    log_density : callable
        ``log_density(x (n, d), sigma) -> (n,)``, e.g. :meth:`VEDenoiser.log_density`.
    trajectory : Trajectory
        A VE-form run recorded with ``record=True``.

    Returns
    -------
    (m, n) array
        One row per step with ``sigma_i > 0``.
    """
    return log_density_along(log_density, trajectory, 1) - log_density_along(log_density, trajectory, 0)


class NearestNeighbour(NamedTuple):
    """Distance to, and index of, the nearest training point.

    Attributes
    ----------
    distance : (n,) array
        Euclidean distance of each query to its nearest training point.
    index : (n,) int array
        Row of that training point.
    """

    distance: object
    index: object


def nearest_neighbour(x, data, chunk_bytes=None):
    """Nearest training point of each query, chunked (memorisation check).

    Parameters
    ----------
    x : (m, *shape) array
    data : (n, *shape) array
    chunk_bytes : int, optional
        Budget for one ``(b, n)`` distance block.

    Returns
    -------
    NearestNeighbour
    """
    x = check_points(x, "x", ndim=None)
    data = check_points(data, "data", ndim=None)
    x, data = x.reshape(x.shape[0], -1), data.reshape(data.shape[0], -1)
    if x.shape[1] != data.shape[1]:
        raise ValueError(f"data: expected points of dimension {x.shape[1]}, got {data.shape[1]}")
    xp = get_namespace(x, data)
    centre = xp.mean(data, axis=0)
    centred = data - centre
    norms = xp.sum(centred * centred, axis=1)
    distance = xp.empty(x.shape[0], dtype=data.dtype)
    index = xp.empty(x.shape[0], dtype=np.int64)
    for rows in chunk_rows(x.shape[0], 2 * data.shape[0] * data.dtype.itemsize, chunk_bytes or get_chunk_bytes()):
        block = squared_distances(x[rows] - centre, centred, xp, norms)
        index[rows] = xp.argmin(block, axis=1)
        distance[rows] = xp.sqrt(block[xp.arange(block.shape[0]), index[rows]])
    return NearestNeighbour(distance, index)


def trajectory_statistics(trajectory):
    """Summary of a batch of trajectories (means over the batch).

    Parameters
    ----------
    trajectory : Trajectory or (T, n, *shape) array
        A run recorded with ``record=True`` (its denoising trajectory is summarised too), or points.

    Returns
    -------
    dict
        ``end_to_end`` (|x_0 - x_end|), ``max_deviation`` and ``relative_deviation`` (max chord
        deviation over end-to-end distance) of the sampling trajectory, the same ``denoised_*`` for the
        denoising trajectory when present, and ``projection_error`` (2-D PCA, relative).
    """
    points = _points(trajectory)
    xp = get_namespace(points)
    end_to_end = _norm(points[-1] - points[0], xp)
    deviation = xp.max(chord_deviation(points), axis=0)
    stats = {
        "end_to_end": float(xp.mean(end_to_end)),
        "max_deviation": float(xp.mean(deviation)),
        "relative_deviation": float(xp.mean(deviation / xp.where(end_to_end > 0, end_to_end, 1.0))),
        "projection_error": float(xp.mean(projection_error(points))),
    }
    if isinstance(trajectory, Trajectory) and trajectory.recorded.get("denoised", points[:0]).shape[0] >= 2:
        denoised = _points(trajectory, attribute="denoised")
        span = _norm(denoised[-1] - denoised[0], xp)
        dev = xp.max(chord_deviation(denoised), axis=0)
        stats["denoised_max_deviation"] = float(xp.mean(dev))
        stats["denoised_relative_deviation"] = float(xp.mean(dev / xp.where(span > 0, span, 1.0)))
        stats["denoised_projection_error"] = float(xp.mean(projection_error(denoised)))
    return stats
