"""GaussianMixture: exact forward marginals checked against independent routes."""
import numpy as np
import pytest

from opdiff.datasets import GaussianMixture, random_mixture
from opdiff.processes import BrownianMotion, OrnsteinUhlenbeck, VESDE, VPSDE

PROCESSES = [BrownianMotion(), OrnsteinUhlenbeck(), VESDE(), VPSDE(), VPSDE(schedule="cosine")]


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: type(p).__name__ + getattr(p, "schedule", ""))
def test_score_is_gradient_of_log_density(process):
    mixture = random_mixture(3, 2, rng=0)
    x = np.random.default_rng(1).normal(size=(5, 2)) * 2
    h = 1e-5
    fd = np.stack([(mixture.log_density(x + h * e, 0.3, process) - mixture.log_density(x - h * e, 0.3, process))
                   / (2 * h) for e in np.eye(2)], axis=1)
    # central differences: O(h^2 |f'''|) ~ 1e-10 truncation, plus 1e-16 / h ~ 1e-11 round-off
    np.testing.assert_allclose(mixture.score(x, 0.3, process), fd, atol=1e-7)


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: type(p).__name__ + getattr(p, "schedule", ""))
def test_denoiser_satisfies_tweedie(process):
    mixture = random_mixture(2, 3, rng=2)
    x = np.random.default_rng(3).normal(size=(6, 3))
    Phi, Sigma = process.transition(0.4)
    tweedie = -(x - Phi.apply(mixture.denoise(x, 0.4, process))) / Sigma.c
    np.testing.assert_allclose(mixture.score(x, 0.4, process), tweedie, rtol=1e-9, atol=1e-10)


def test_forward_marginal_matches_monte_carlo():
    """The closed-form marginal density integrates against samples pushed through the process."""
    mixture = GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])
    process = VPSDE()
    rng = np.random.default_rng(4)
    xt = process.sample(mixture.sample(200_000, rng), 0.3, rng)
    grid = np.linspace(-5, 5, 2001)[:, None]
    density = np.exp(mixture.log_density(grid, 0.3, process))
    for threshold in (-1.0, 0.0, 1.0):
        exact = np.trapezoid(density * (grid[:, 0] < threshold), grid[:, 0])
        empirical = np.mean(xt[:, 0] < threshold)
        stderr = np.sqrt(empirical * (1 - empirical) / xt.shape[0])
        assert abs(exact - empirical) < 5 * stderr  # 5 Monte Carlo standard errors


def test_data_law_integrates_to_one():
    mixture = random_mixture(2, 1, rng=5)
    grid = np.linspace(-20, 20, 40001)[:, None]
    assert np.trapezoid(np.exp(mixture.log_density(grid)), grid[:, 0]) == pytest.approx(1.0, abs=1e-8)


def test_bad_input():
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([-1.0, 2.0], [[0.0], [1.0]], 1.0)
    with pytest.raises(ValueError, match="covs"):
        GaussianMixture([1.0, 1.0], [[0.0], [1.0]], [1.0, -1.0, 2.0])
    mixture = random_mixture(2, 2, rng=0)
    with pytest.raises(ValueError, match="x"):
        mixture.log_density(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="t"):
        mixture.score(np.zeros((3, 2)), 2.0, VPSDE())
    with pytest.raises(ValueError, match="x"):
        mixture.score(np.full((3, 2), np.nan), 0.5, VPSDE())
