"""Metrics against brute-force and closed-form routes."""
import numpy as np
import pytest

from opdiff.metrics import fisher_divergence, held_out_log_likelihood, median_bandwidth, mmd_squared, sliced_wasserstein


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


def _exact_wasserstein_1d(x, y, p):
    """W_p^p between the empirical laws of x (n,) and y (m,) by the north-west corner rule on sorted
    samples: masses 1/n and 1/m are matched in order (the monotone coupling is optimal on the line)."""
    x, y = np.sort(x), np.sort(y)
    mass_x, mass_y = np.full(x.size, 1.0 / x.size), np.full(y.size, 1.0 / y.size)
    i = j = 0
    total = 0.0
    while i < x.size and j < y.size:
        moved = min(mass_x[i], mass_y[j])
        total += moved * abs(x[i] - y[j]) ** p
        mass_x[i] -= moved
        mass_y[j] -= moved
        if mass_x[i] <= 1e-15:
            i += 1
        if mass_y[j] <= 1e-15:
            j += 1
    return total


@pytest.mark.parametrize("n, m, p", [(60, 40, 2), (60, 40, 1), (7, 13, 3), (50, 50, 2)])
def test_sliced_wasserstein_uses_the_exact_empirical_quantile_functions(n, m, p):
    """On the line every direction is +-1 and W_p is invariant under x -> -x, so the sliced distance of
    1-D samples is W_p itself: equal to the transport computed independently, to rounding (1e-12)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(n, 1)), 0.4 + 1.5 * rng.normal(size=(m, 1))
    exact = _exact_wasserstein_1d(x[:, 0], y[:, 0], p) ** (1.0 / p)
    np.testing.assert_allclose(sliced_wasserstein(x, y, n_projections=3, p=p, rng=0), exact, rtol=1e-12)


def test_mmd_of_coincident_samples_is_zero():
    """All pairwise distances 0: the median bandwidth falls back to a positive value, and MMD^2 = 0
    (every kernel value is exactly 1; the unbiased terms cancel to rounding)."""
    assert median_bandwidth(np.ones((5, 2)), np.ones((5, 2))) == 1.0
    assert abs(mmd_squared(np.ones((5, 2)), np.ones((5, 2)))) < 1e-12
    # more than half the pairs coincide: the median of the non-zero distances
    x = np.zeros((6, 1))
    x[0] = 2.0
    assert median_bandwidth(x, x) == 2.0
