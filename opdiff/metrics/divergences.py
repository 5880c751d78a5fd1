"""Sample and score discrepancies: sliced Wasserstein, Fisher divergence, held-out log-likelihood."""
import numpy as np

from ..backend import as_generator, check_count, check_points, check_positive


def sliced_wasserstein(x, y, n_projections=128, p=2, rng=None):
    """Sliced ``p``-Wasserstein distance between ``x (n, d)`` and ``y (m, d)``.

    Random unit directions; on each, the 1-D distance between the projected samples by quantile
    matching (the empirical quantile functions on a common grid when ``n != m``).
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
    if px.shape[0] != py.shape[0]:
        levels = (np.arange(max(px.shape[0], py.shape[0])) + 0.5) / max(px.shape[0], py.shape[0])
        px = np.quantile(px, levels, axis=0)
        py = np.quantile(py, levels, axis=0)
    return float(np.mean(np.abs(px - py) ** p) ** (1.0 / p))


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
    """Mean held-out log-likelihood and its standard error from per-point values ``(n,)``."""
    values = np.asarray(log_density_values, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("log_density_values: expected a non-empty array of finite log-densities")
    stderr = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
    return float(values.mean()), float(stderr)
