"""Sample and score discrepancies: sliced Wasserstein, Fisher divergence, held-out log-likelihood."""
import numpy as np

from ..backend import as_generator, check_count, check_points, check_positive


def sliced_wasserstein(x, y, n_projections=128, p=2, rng=None):
    """Sliced ``p``-Wasserstein distance ``(E_theta W_p^p(theta # x, theta # y))^(1/p)`` between two samples.

    Random unit directions ``theta``; on each, the exact 1-D distance between the projected empirical
    laws, ``W_p^p = int_0^1 |F^{-1}(u) - G^{-1}(u)|^p du`` with the empirical quantile functions
    (piecewise constant, with breaks at ``i/n`` and ``j/m``: the integral is a finite sum over the
    merged breaks, exact for any sizes ``n`` and ``m``).

    Parameters
    ----------
    x : (n, d) array
    y : (m, d) array
    n_projections : int
    p : float
        Order, ``p >= 1``.
    rng : None, int or Generator
        Draws the directions.

    Returns
    -------
    float
    """
    x, y = check_points(x, "x"), check_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: expected dimension {x.shape[1]} to match x, got {y.shape[1]}")
    n_projections = check_count(n_projections, "n_projections")
    p = check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p: expected p >= 1 (a Wasserstein order), got {p}")
    rng = as_generator(rng)
    directions = rng.standard_normal((x.shape[1], n_projections))
    directions /= np.linalg.norm(directions, axis=0)
    px, py = np.sort(x @ directions, axis=0), np.sort(y @ directions, axis=0)
    n, m = px.shape[0], py.shape[0]
    if n == m:
        return float(np.mean(np.abs(px - py) ** p) ** (1.0 / p))
    # the merged breaks {i / n} U {j / m}, as exact integers in units of 1 / (n m)
    breaks = np.union1d(np.arange(1, n + 1) * m, np.arange(1, m + 1) * n)  # in units of 1 / (n m)
    start = np.concatenate([[0], breaks[:-1]])  # left end of each interval, same units
    widths = (breaks - start) / float(n * m)
    ix, iy = start // m, start // n  # F^{-1}(u) = x_(floor(u n)) on [i / n, (i + 1) / n)
    gaps = np.abs(px[ix] - py[iy]) ** p  # (intervals, n_projections)
    return float(np.mean(widths @ gaps) ** (1.0 / p))


def fisher_divergence(score, reference_score):
    """Monte Carlo Fisher divergence ``mean_i |s(x_i) - s_ref(x_i)|^2`` and its standard error.

    Parameters
    ----------
    score, reference_score : (n, D) arrays
        Two scores evaluated at the same samples ``x_i`` of the law the divergence is taken under.

    Returns
    -------
    value, standard_error : float
    """
    score, reference_score = check_points(score, "score"), check_points(reference_score, "reference_score")
    if score.shape != reference_score.shape:
        raise ValueError(f"reference_score: expected shape {score.shape}, got {reference_score.shape}")
    squared = np.sum((score - reference_score) ** 2, axis=1)
    return float(squared.mean()), float(squared.std(ddof=1) / np.sqrt(len(squared))) if len(squared) > 1 else 0.0


def held_out_log_likelihood(log_density_values):
    """Mean held-out log-likelihood and its standard error.

    Parameters
    ----------
    log_density_values : (n,) array
        Per-point log-densities (finite).

    Returns
    -------
    mean, standard_error : float
    """
    values = np.asarray(log_density_values, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("log_density_values: expected a non-empty array of finite log-densities")
    stderr = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
    return float(values.mean()), float(stderr)
