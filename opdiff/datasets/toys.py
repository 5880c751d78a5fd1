"""Two-dimensional toy data sets (the standard benchmarks of score-based density estimation).

Every generator has the signature ``name(n, rng=None, noise=...) -> (n, 2) array``.
"""
import numpy as np

from ..backend import as_generator, check_count


def two_spirals(n, rng=None, noise=0.1):
    """Two interleaved spirals (Grathwohl et al.), scaled to roughly ``[-4, 4]^2``.

    Parameters
    ----------
    n : int
        Number of points.
    rng : None, int or Generator
    noise : float
        Standard deviation of the Gaussian noise added to each point.

    Returns
    -------
    (n, 2) array
    """
    rng, n = as_generator(rng), check_count(n, "n")
    radius = np.sqrt(rng.uniform(size=n)) * 540 * (2 * np.pi) / 360
    x = np.stack([-np.cos(radius) * radius, np.sin(radius) * radius], axis=1)
    sign = np.where(rng.uniform(size=n) < 0.5, 1.0, -1.0)[:, None]
    return sign * x / 3.0 + noise * rng.standard_normal((n, 2))


def eight_gaussians(n, rng=None, noise=0.1, radius=2.0):
    """Eight Gaussians on a circle of radius ``radius``, standard deviation ``noise``.

    Parameters
    ----------
    n : int
        Number of points.
    rng : None, int or Generator
    noise : float
        Standard deviation of each Gaussian.
    radius : float
        Radius of the circle of centres.

    Returns
    -------
    (n, 2) array
    """
    rng, n = as_generator(rng), check_count(n, "n")
    angles = 2 * np.pi * rng.integers(0, 8, size=n) / 8
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres + noise * rng.standard_normal((n, 2))


def pinwheel(n, rng=None, n_arms=5, radial_std=0.3, tangential_std=0.1, rate=0.25):
    """The pinwheel of Johnson et al. (2016): ``n_arms`` curved arms.

    Parameters
    ----------
    n : int
        Number of points.
    rng : None, int or Generator
    n_arms : int
        Number of arms.
    radial_std, tangential_std : float
        Spreads along and across an arm.
    rate : float
        How fast the arms curl.

    Returns
    -------
    (n, 2) array
    """
    rng, n = as_generator(rng), check_count(n, "n")
    arm = rng.integers(0, n_arms, size=n)
    features = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    angle = 2 * np.pi * arm / n_arms + rate * np.exp(features[:, 0])
    cos, sin = np.cos(angle), np.sin(angle)
    rotated = np.stack([cos * features[:, 0] - sin * features[:, 1], sin * features[:, 0] + cos * features[:, 1]], 1)
    return 2.0 * rotated


def checkerboard(n, rng=None):
    """Uniform on the dark squares of a 4 x 4 checkerboard on ``[-4, 4]^2`` (FFJORD's layout).

    Parameters
    ----------
    n : int
        Number of points.
    rng : None, int or Generator

    Returns
    -------
    (n, 2) array
    """
    rng, n = as_generator(rng), check_count(n, "n")
    x1 = rng.uniform(-2, 2, size=n)
    x2 = rng.uniform(0, 1, size=n) - 2.0 * rng.integers(0, 2, size=n) + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], axis=1)


def moons(n, rng=None, noise=0.05):
    """Two interleaving half circles, centred and scaled to unit order.

    Parameters
    ----------
    n : int
        Number of points.
    rng : None, int or Generator
    noise : float
        Standard deviation of the Gaussian noise added to each point.

    Returns
    -------
    (n, 2) array
    """
    rng, n = as_generator(rng), check_count(n, "n")
    upper = rng.uniform(size=n) < 0.5
    angle = np.pi * rng.uniform(size=n)
    x = np.where(upper, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    points = 2.0 * (np.stack([x, y], axis=1) - np.array([0.5, 0.25]))
    return points + noise * rng.standard_normal((n, 2))


def rings(n, rng=None, noise=0.08, radii=(1.0, 2.0, 3.0)):
    """Concentric rings with radii ``radii``, points spread in proportion to circumference.

    Parameters
    ----------
    n : int
        Number of points.
    rng : None, int or Generator
    noise : float
        Standard deviation of the radial noise.
    radii : sequence of float
        Ring radii.

    Returns
    -------
    (n, 2) array
    """
    rng, n = as_generator(rng), check_count(n, "n")
    radii = np.asarray(radii, dtype=np.float64)
    ring = rng.choice(len(radii), size=n, p=radii / radii.sum())
    angle = 2 * np.pi * rng.uniform(size=n)
    points = radii[ring, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return points + noise * rng.standard_normal((n, 2))


TOYS = {"two_spirals": two_spirals, "eight_gaussians": eight_gaussians, "pinwheel": pinwheel,
        "checkerboard": checkerboard, "moons": moons, "rings": rings}


def make_toy(name, n, rng=None, **kwargs):
    """Draw ``n`` points of the toy set ``name`` (one of :data:`TOYS`).

    Parameters
    ----------
    name : str
        One of :data:`TOYS`.
    n : int
    rng : None, int or Generator
    **kwargs
        Options of the generator (``noise``, ...).

    Returns
    -------
    (n, 2) array
    """
    if name not in TOYS:
        raise ValueError(f"name: expected one of {sorted(TOYS)}, got {name!r}")
    return TOYS[name](n, rng=rng, **kwargs)
