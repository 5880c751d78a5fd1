"""Stochastic samplers: Euler-Maruyama (VE form and any process) and predictor-corrector.

Gaussian data ``N(0, c^2 I)`` make the VE Euler-Maruyama chain linear, so the law of its output is
known exactly for every grid: ``v_{i+1} = (1 - delta_i / (c^2 + sigma_i^2))^2 v_i + delta_i``. The
sampler is checked against that recursion by Monte Carlo, and the recursion's weak error against the
exact target ``c^2 + sigma_min^2`` gives the order.
"""
import numpy as np
import pytest

import opdiff.sampling as S
from opdiff.metrics import mmd_squared

C2 = 0.25


def gaussian_denoiser(x, sigma):
    return C2 / (C2 + sigma**2) * x


def discrete_variance(sigmas):
    v = sigmas[0] ** 2 + C2
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        delta = sigma**2 - sigma_next**2
        v = (1 - delta / (C2 + sigma**2)) ** 2 * v + (delta if sigma_next > 0 else 0.0)
    return v


def test_euler_maruyama_matches_the_exact_discrete_law_and_is_weak_order_one():
    sigmas = S.log_snr_grid(20, 0.05, 5.0)
    rng = np.random.default_rng(0)
    n, d = 20000, 2
    x0 = np.sqrt(sigmas[0] ** 2 + C2) * rng.standard_normal((n, d))
    out = S.sample_euler_maruyama(gaussian_denoiser, x0, sigmas, rng=1).x
    expected = discrete_variance(sigmas)
    # sample variance of 2n normal coordinates: standard error v sqrt(2 / (2n)); 5 standard errors
    assert abs(out.var() - expected) < 5 * expected * np.sqrt(2 / (n * d))
    assert abs(out.mean()) < 5 * np.sqrt(expected / (n * d))
    steps = np.array([40, 80, 160, 320])
    errors = [abs(discrete_variance(S.log_snr_grid(int(k), 0.05, 5.0)) - (C2 + 0.05**2)) for k in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    print(f"Euler-Maruyama weak error slope {slope:.3f}: {errors}")
    assert abs(slope - 1.0) < 0.1  # weak order 1, pre-asymptotic bias O(1/N)


def test_same_seed_same_samples(mixture):
    x0 = 5.0 * np.random.default_rng(0).standard_normal((10, 2))
    sigmas = S.edm_sigmas(10, 0.05, 5.0)
    for solver in (S.sample_euler_maruyama, S.sample_predictor_corrector):
        a, b = solver(mixture, x0, sigmas, rng=7, record=True), solver(mixture, x0, sigmas, rng=7, record=True)
        np.testing.assert_array_equal(a.samples, b.samples)
        assert not np.array_equal(a.x, solver(mixture, x0, sigmas, rng=8).x)
        assert a.samples.shape == (11, 10, 2) and a.denoised.shape == (10, 10, 2)


@pytest.fixture(scope="module")
def sde_problem(mixture):
    rng = np.random.default_rng(5)
    n = 600
    null = [mmd_squared(mixture.sample(n, rng), mixture.sample(n, rng), bandwidth=1.0) for _ in range(40)]
    # mean + 6 sd of the right-skewed null law ~ its 99.9th percentile (see test_process_form)
    return mixture, n, float(np.mean(null) + 6 * np.std(null)), rng


@pytest.mark.parametrize("solver,options", [(S.sample_euler_maruyama, {}),
                                            (S.sample_predictor_corrector, {"snr": 0.1, "n_corrector": 1})])
def test_stochastic_samplers_reach_the_mixture(sde_problem, solver, options):
    mixture, n, level, rng = sde_problem
    sigma_max = 20.0
    sigmas = S.edm_sigmas(100, 0.01, sigma_max)
    start = mixture.sample(n, rng) + sigma_max * rng.standard_normal((n, 2))  # exact law at sigma_max
    out = solver(mixture, start, sigmas, rng=rng, **options).x
    value = mmd_squared(out, mixture.sample(n, rng), bandwidth=1.0)
    print(f"{solver.__name__}: MMD^2 {value:.2e} (null level {level:.2e})")
    assert value < level


def test_bad_inputs(mixture):
    x0 = np.zeros((2, 2))
    with pytest.raises(ValueError, match="snr"):
        S.sample_predictor_corrector(mixture, x0, [1.0, 0.5], snr=-1)
    with pytest.raises(ValueError, match="n_corrector"):
        S.sample_predictor_corrector(mixture, x0, [1.0, 0.5], n_corrector=1.5)
    with pytest.raises(TypeError, match="rng"):
        S.sample_euler_maruyama(mixture, x0, [1.0, 0.5], rng="seed")
