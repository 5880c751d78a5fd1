"""The GaussianProcess contract: transition log-density and score, sampling, lift, priors, bad input."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from opdiff.linalg import Kron, Scalar
from opdiff.processes import VPSDE, GaussianPrior, OrnsteinUhlenbeck, gaussian_logpdf
from opdiff.processes.base import GeneratorCoefficients, MarkovProcess
from opdiff.processes.linear import StationaryLinearSDE

PROCESSES = {"vp": lambda: VPSDE(), "cld": lambda: StationaryLinearSDE.cld()}


def _pair(process, n=4, d=2, seed=0):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(n, d))
    xt = rng.normal(size=(n, process.state_dim(d)))
    return xt, x0


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_transition_logpdf_against_scipy(name):
    process = PROCESSES[name]()
    xt, x0 = _pair(process)
    t = 0.4
    Phi, Sigma = process.transition(t)
    D = xt.shape[1]
    cov = Sigma.dense(D)
    expected = [multivariate_normal(Phi.apply(process.lift(x0))[i], cov).logpdf(xt[i]) for i in range(len(xt))]
    np.testing.assert_allclose(process.transition_logpdf(xt, x0, t), expected, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_transition_score_is_gradient_of_logpdf(name):
    process = PROCESSES[name]()
    xt, x0 = _pair(process)
    t, h = 0.4, 1e-5
    score = process.transition_score(xt, x0, t)
    fd = np.empty_like(xt)
    for j in range(xt.shape[1]):
        step = np.zeros_like(xt)
        step[:, j] = h
        fd[:, j] = (process.transition_logpdf(xt + step, x0, t) - process.transition_logpdf(xt - step, x0, t)) / (2 * h)
    # central differences: O(h^2 |d^3 log p|) truncation, O(eps |log p| / h) rounding ~ 1e-10
    np.testing.assert_allclose(score, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(score)))


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_sample_moments_and_marginal_moments(name):
    """Samples from x0 match (Phi lift(x0), Sigma); marginal_moments of N(m0, C0) data match sampling."""
    process = PROCESSES[name]()
    d, n, t = 1, 20000, 0.3
    x0 = np.full((n, d), 0.7)
    xt, noise = process.sample(x0, t, rng=0, return_noise=True)
    assert xt.shape == (n, process.state_dim(d)) and noise.shape == xt.shape
    Phi, Sigma = process.transition(t)
    D = xt.shape[1]
    mean, cov = Phi.apply(process.lift(x0[:1]))[0], Sigma.dense(D)
    stderr = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(xt.mean(axis=0) - mean) < 5 * stderr)
    assert np.all(np.abs(np.cov(xt.T).reshape(D, D) - cov) < 5 * np.sqrt(2.0 / n) * np.sqrt(np.outer(np.diag(cov), np.diag(cov))))
    # data drawn from N(m0, C0), pushed through the transition
    m0, C0 = np.array([0.5]), np.array([[0.3]])
    data = np.random.default_rng(1).normal(m0, np.sqrt(C0[0, 0]), size=(n, d))
    pushed = process.sample(data, t, rng=2)
    mean_t, cov_t, _ = process.marginal_moments(m0, C0, t)
    assert np.all(np.abs(pushed.mean(axis=0) - mean_t) < 5 * np.sqrt(np.diag(cov_t) / n))
    assert np.all(np.abs(np.diag(np.cov(pushed.T).reshape(D, D)) - np.diag(cov_t)) < 5 * np.sqrt(2.0 / n) * np.diag(cov_t))


def test_lift_and_project():
    process = StationaryLinearSDE.cld()
    x = np.arange(6.0).reshape(3, 2)
    z = process.lift(x)
    assert z.shape == (3, 4)
    np.testing.assert_array_equal(z[:, :2], x)
    np.testing.assert_array_equal(z[:, 2:], 0.0)
    np.testing.assert_array_equal(process.project(z), x)
    vp = VPSDE()
    assert vp.lift(x) is x and vp.project(x) is x and vp.state_dim(5) == 5


def test_gaussian_logpdf_and_prior_with_kron_covariance():
    block = np.array([[2.0, 0.5], [0.5, 1.0]])
    prior = GaussianPrior(lambda dim: Kron(block))
    x = np.random.default_rng(3).normal(size=(5, 4))
    dense = np.kron(block, np.eye(2))
    np.testing.assert_allclose(prior.log_density(x), multivariate_normal(np.zeros(4), dense).logpdf(x), rtol=1e-12)
    np.testing.assert_allclose(prior.score(x), -x @ np.linalg.inv(dense), rtol=1e-12)
    np.testing.assert_allclose(gaussian_logpdf(x, Kron(block).cholesky()), prior.log_density(x), rtol=1e-14)
    sample = prior.sample(20000, 4, rng=4)
    # sample covariance within 5 standard errors of Kron(block) entries
    assert np.all(np.abs(np.cov(sample.T) - dense) < 5 * np.sqrt(2.0 / 20000) * 2.0)
    assert prior.sample(3, 4, rng=0, dtype=np.float32).dtype == np.float32


def test_generator_coefficients_are_the_sde():
    process = OrnsteinUhlenbeck(theta=0.7)
    coefficients = process.generator
    assert isinstance(coefficients, GeneratorCoefficients)
    x = np.ones((2, 3))
    np.testing.assert_allclose(coefficients.drift(x, 0.5), -0.7 * x)
    a = coefficients.covariance(0.5)
    assert isinstance(a, Scalar)
    np.testing.assert_allclose(a.c, 2 * 0.7)
    cld = StationaryLinearSDE.cld()
    a = cld.generator.covariance(0.5)
    np.testing.assert_allclose(a.dense(2), cld.diffusion(0.5).dense(2) @ cld.diffusion(0.5).dense(2).T, atol=1e-14)


def test_abstract_methods_raise():
    process = MarkovProcess()
    for call in (lambda: process.drift(np.zeros((1, 1)), 0.5), lambda: process.diffusion(0.5),
                 lambda: process.sample(np.zeros((1, 1)), 0.5), lambda: process.prior()):
        with pytest.raises(NotImplementedError):
            call()


def test_bad_input():
    process = VPSDE()
    x0 = np.zeros((3, 2))
    with pytest.raises(ValueError, match="xt: expected trailing shape"):
        process.transition_logpdf(np.zeros((3, 3)), x0, 0.5)
    with pytest.raises(ValueError, match="xt: expected 3 rows to match x0"):
        process.transition_score(np.zeros((2, 2)), x0, 0.5)
    with pytest.raises(ValueError, match=r"t: expected times in \(0.0, 1.0\]"):
        process.sample(x0, 0.0)
    with pytest.raises(ValueError, match=r"t: expected a float or an array of shape \(3,\)"):
        process.sample(x0, np.full(2, 0.5))
    with pytest.raises(ValueError, match="x0: expected finite values"):
        process.sample(np.array([[np.nan, 0.0]]), 0.5)
    with pytest.raises(ValueError, match="x0: expected a 2-D array"):
        process.sample(np.zeros(3), 0.5)
    with pytest.raises(TypeError, match="rng: expected None"):
        process.sample(x0, 0.5, rng=np.random.RandomState(0))
