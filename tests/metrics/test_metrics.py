"""Metrics against brute-force and closed-form routes."""
import numpy as np
import pytest

from opdiff.metrics import fisher_divergence, held_out_log_likelihood, mmd_squared, sliced_wasserstein


def _brute_mmd(x, y, h):
    def k(a, b):
        return np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * h * h))
    kxx, kyy = k(x, x), k(y, y)
    n, m = len(x), len(y)
    return ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * k(x, y).mean())


def test_mmd_matches_the_dense_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(250, 3)) + 0.3
    assert mmd_squared(x, y, bandwidth=1.3) == pytest.approx(_brute_mmd(x, y, 1.3), rel=1e-10)


def test_mmd_separates_laws_and_is_unbiased_for_equal_ones():
    rng = np.random.default_rng(1)
    same = [mmd_squared(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)), 1.0) for _ in range(40)]
    # unbiased: the mean over replications is zero within 5 standard errors
    assert abs(np.mean(same)) < 5 * np.std(same) / np.sqrt(len(same))
    shifted = mmd_squared(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1.0, 1.0)
    assert shifted > np.mean(same) + 10 * np.std(same)


def test_sliced_wasserstein_of_a_shift():
    """For a translation by c, every projected W_p equals |c . u|; the slices average it."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 2))
    shift = np.array([3.0, 0.0])
    value = sliced_wasserstein(x, x + shift, n_projections=2000, p=1, rng=3)
    # E|3 cos(theta)| over uniform directions = 3 * 2/pi; 2000 slices give ~1% Monte Carlo error
    assert value == pytest.approx(6 / np.pi, rel=0.03)
    assert sliced_wasserstein(x, x, rng=0) == 0.0


def test_fisher_divergence_and_log_likelihood():
    a, b = np.ones((10, 2)), np.zeros((10, 2))
    assert fisher_divergence(a, b) == (2.0, 0.0)
    assert held_out_log_likelihood([1.0, 3.0])[0] == 2.0
    with pytest.raises(ValueError, match="reference_score"):
        fisher_divergence(a, b[:5])
    with pytest.raises(ValueError, match="log_density_values"):
        held_out_log_likelihood([np.nan])
    with pytest.raises(ValueError, match="y"):
        mmd_squared(a, np.zeros((4, 3)))
