"""Euler ancestral, EDM's stochastic sampler (Algorithm 2) and DPM-Solver++(2M) SDE.

Each sampler is checked against its published update written out here step by step (k-diffusion's
``sample_euler_ancestral`` / ``sample_dpmpp_2m_sde``, Karras et al. 2022 Algorithm 2) with the same
noise draws (a generator with the same seed, drawn in the same order), and against a Gaussian data law
whose exact denoiser is known: every update is linear in the state and the noise there, so the output
is exactly Gaussian and its mean and covariance decide the law.
"""
import math

import numpy as np
import pytest

import opdiff.sampling as S

#: Solvers and options for the distributional test (eta = 1: the reverse SDE).
STOCHASTIC = {
    "euler_ancestral": (S.sample_euler_ancestral, {}),
    "edm_stochastic": (S.sample_edm_stochastic, {"s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.0}),
    "dpm_solver_pp_2m_sde[midpoint]": (S.sample_dpm_solver_pp_2m_sde, {}),
    "dpm_solver_pp_2m_sde[heun]": (S.sample_dpm_solver_pp_2m_sde, {"solver_type": "heun"}),
    "euler_maruyama": (S.sample_euler_maruyama, {}),
}


def test_euler_ancestral_two_steps_by_hand(mixture):
    x0 = 4.0 * np.random.default_rng(0).standard_normal((6, 2))
    sigmas = [4.0, 1.5, 0.5]
    eta, s_noise = 0.7, 1.1
    out = S.sample_euler_ancestral(mixture, x0, sigmas, eta=eta, s_noise=s_noise, rng=11).x
    noise = np.random.default_rng(11)
    x = x0
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        up = min(s_next, eta * math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2))
        down = math.sqrt(s_next**2 - up**2)
        d = (x - mixture(x, s)) / s
        x = x + d * (down - s) + noise.standard_normal(x.shape) * s_noise * up
    np.testing.assert_allclose(out, x, rtol=1e-13, atol=1e-13)
    # into sigma = 0 the step is the denoised output (no noise); eta = 0 is the Euler ODE step
    np.testing.assert_allclose(S.sample_euler_ancestral(mixture, x0, [4.0, 0.0], rng=1).x, mixture(x0, 4.0),
                               atol=1e-14)
    np.testing.assert_allclose(S.sample_euler_ancestral(mixture, x0, sigmas, eta=0.0).x,
                               S.sample_euler(mixture, x0, sigmas).x, atol=1e-14)


def test_edm_algorithm_2_two_steps_by_hand(mixture):
    """Karras et al. 2022, Algorithm 2, lines 3-11, with the churn window covering only the first level."""
    x0 = 5.0 * np.random.default_rng(1).standard_normal((6, 2))
    sigmas = [5.0, 2.0, 0.0]
    s_churn, s_tmin, s_tmax, s_noise = 0.6, 3.0, 10.0, 1.003
    out = S.sample_edm_stochastic(mixture, x0, sigmas, s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax,
                                  s_noise=s_noise, rng=5)
    noise = np.random.default_rng(5)
    x, n = x0, len(sigmas) - 1
    for i in range(n):
        t, t_next = sigmas[i], sigmas[i + 1]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= t <= s_tmax else 0.0
        t_hat = t + gamma * t
        if gamma > 0:
            x = x + math.sqrt(t_hat**2 - t**2) * s_noise * noise.standard_normal(x.shape)
        d = (x - mixture(x, t_hat)) / t_hat
        x_next = x + (t_next - t_hat) * d
        if t_next != 0:
            d_prime = (x_next - mixture(x_next, t_next)) / t_next
            x_next = x + (t_next - t_hat) * (0.5 * d + 0.5 * d_prime)
        x = x_next
    np.testing.assert_allclose(out.x, x, rtol=1e-13, atol=1e-13)
    assert out.nfe == 3 and out.method == "edm_stochastic"
    # no churn: Heun (Algorithm 1), and sample_heun with churn is the same sampler
    np.testing.assert_allclose(S.sample_edm_stochastic(mixture, x0, sigmas, s_churn=0.0).x,
                               S.sample_heun(mixture, x0, sigmas).x, atol=1e-14)
    np.testing.assert_array_equal(S.sample_heun(mixture, x0, sigmas, s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax,
                                                s_noise=s_noise, rng=5).x, out.x)


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
def test_dpm_solver_pp_2m_sde_three_steps_by_hand(mixture, solver_type):
    """k-diffusion's sample_dpmpp_2m_sde, in its own variables (t = -log sigma)."""
    x0 = 5.0 * np.random.default_rng(2).standard_normal((6, 2))
    sigmas = [5.0, 2.0, 0.8, 0.0]
    eta, s_noise = 0.8, 0.9
    out = S.sample_dpm_solver_pp_2m_sde(mixture, x0, sigmas, eta=eta, s_noise=s_noise, solver_type=solver_type,
                                        rng=3)
    noise = np.random.default_rng(3)
    x, old_denoised, h_last = x0, None, None
    for i in range(len(sigmas) - 1):
        denoised = mixture(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            t, s = -np.log(sigmas[i]), -np.log(sigmas[i + 1])
            h = s - t
            eta_h = eta * h
            x = sigmas[i + 1] / sigmas[i] * np.exp(-eta_h) * x + -np.expm1(-h - eta_h) * denoised
            if old_denoised is not None:
                r = h_last / h
                if solver_type == "heun":
                    x = x + (-np.expm1(-h - eta_h) / (-h - eta_h) + 1) * (1 / r) * (denoised - old_denoised)
                else:
                    x = x + 0.5 * -np.expm1(-h - eta_h) * (1 / r) * (denoised - old_denoised)
            x = x + noise.standard_normal(x.shape) * sigmas[i + 1] * np.sqrt(-np.expm1(-2 * eta_h)) * s_noise
            h_last = h
        old_denoised = denoised
    np.testing.assert_allclose(out.x, x, rtol=1e-13, atol=1e-13)


def test_dpm_solver_pp_2m_sde_without_noise_is_dpm_solver_pp_2m(mixture):
    x0 = 5.0 * np.random.default_rng(4).standard_normal((6, 2))
    sigmas = S.edm_sigmas(8, 0.05, 5.0)
    np.testing.assert_allclose(S.sample_dpm_solver_pp_2m_sde(mixture, x0, sigmas, eta=0.0).x,
                               S.sample_dpm_solver_pp_2m(mixture, x0, sigmas).x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_samples_follow_the_gaussian_data_law(name):
    """Data N(m, s0^2 I): D(x, sigma) = m + s0^2 / (s0^2 + sigma^2) (x - m); start at N(m, (s0^2 + sigma_max^2) I).

    The output is Gaussian, so its mean and variance decide its law. Tolerance: 5 Monte Carlo standard
    errors (mean s0 / sqrt(n), variance s0^2 sqrt(2 / n) per coordinate) plus the discretisation bias of
    1000 EDM steps on the variance, measured with n = 4e5 at 1% of s0^2 for the first-order samplers
    (Euler ancestral -0.9%, Euler-Maruyama +1.0%; the exact recursion of Euler ancestral's variance
    agrees) and below 0.3% for the others: bound 2%.
    """
    m, s0, n = np.array([1.0, -2.0]), 0.5, 10000
    denoiser = lambda x, sigma: m + s0**2 / (s0**2 + sigma**2) * (x - m)  # noqa: E731
    sigmas = S.edm_sigmas(1000, 0.002, 20.0)
    rng = np.random.default_rng(6)
    x0 = m + math.sqrt(s0**2 + sigmas[0] ** 2) * rng.standard_normal((n, 2))
    solver, options = STOCHASTIC[name]
    out = solver(denoiser, x0, sigmas, rng=7, **options).x
    se_mean, se_var = s0 / math.sqrt(n), s0**2 * math.sqrt(2.0 / n)
    np.testing.assert_allclose(out.mean(axis=0), m, atol=5 * se_mean)
    np.testing.assert_allclose(out.var(axis=0), s0**2, atol=5 * se_var + 0.02 * s0**2)
    assert abs(np.corrcoef(out.T)[0, 1]) < 5 / math.sqrt(n)


def test_same_seed_same_samples_and_float32_kept(mixture):
    x0 = (5.0 * np.random.default_rng(8).standard_normal((10, 2))).astype(np.float32)
    sigmas = S.edm_sigmas(6, 0.05, 5.0)
    for name, (solver, options) in STOCHASTIC.items():
        a, b = solver(mixture, x0, sigmas, rng=9, **options), solver(mixture, x0, sigmas, rng=9, **options)
        np.testing.assert_array_equal(a.x, b.x)
        assert a.x.dtype == np.float32, name
        assert not np.array_equal(a.x, solver(mixture, x0, sigmas, rng=10, **options).x), name


def test_noise_sampler_colours_the_noise(mixture):
    """A user noise sampler replaces the Gaussian draws (k-diffusion's noise_sampler(sigma, sigma_next))."""
    x0 = 4.0 * np.random.default_rng(12).standard_normal((5, 2))
    zero = lambda sigma, sigma_next: np.zeros((5, 2))  # noqa: E731
    for solver in (S.sample_euler_ancestral, S.sample_dpm_solver_pp_2m_sde):
        no_noise = solver(mixture, x0, [4.0, 1.0, 0.3], noise_sampler=zero).x
        with_eta = solver(mixture, x0, [4.0, 1.0, 0.3], eta=0.0).x
        if solver is S.sample_euler_ancestral:  # zero noise with eta = 1 is Euler to sigma_down, not the ODE
            assert not np.allclose(no_noise, with_eta)
        assert np.all(np.isfinite(no_noise))
        with pytest.raises(ValueError, match="noise_sampler"):
            solver(mixture, x0, [4.0, 1.0], noise_sampler=lambda s, t: np.zeros((5, 3)))
        with pytest.raises(ValueError, match="noise_sampler"):
            solver(mixture, x0, [4.0, 1.0], noise_sampler=lambda s, t: np.full((5, 2), np.nan))
        with pytest.raises(TypeError, match="noise_sampler"):
            solver(mixture, x0, [4.0, 1.0], noise_sampler=3)


def test_bad_inputs(mixture):
    x0 = np.ones((3, 2))
    with pytest.raises(ValueError, match="eta"):
        S.sample_euler_ancestral(mixture, x0, [1.0, 0.5], eta=-1.0)
    with pytest.raises(ValueError, match="s_noise"):
        S.sample_euler_ancestral(mixture, x0, [1.0, 0.5], s_noise=np.nan)
    with pytest.raises(ValueError, match="s_churn"):
        S.sample_edm_stochastic(mixture, x0, [1.0, 0.5], s_churn=-1.0)
    with pytest.raises(ValueError, match="s_tmax"):
        S.sample_edm_stochastic(mixture, x0, [1.0, 0.5], s_tmin=2.0, s_tmax=1.0)
    with pytest.raises(TypeError, match="s_tmax"):
        S.sample_heun(mixture, x0, [1.0, 0.5], s_churn=1.0, s_tmax="big")
    with pytest.raises(ValueError, match="solver_type"):
        S.sample_dpm_solver_pp_2m_sde(mixture, x0, [1.0, 0.5], solver_type="rk4")
    with pytest.raises(ValueError, match="denoiser"):
        S.sample_dpm_solver_pp_2m_sde(lambda x, s: x * np.nan, x0, [1.0, 0.5], rng=0)
    with pytest.raises(ValueError, match="sigma_next"):
        S.ancestral_step(1.0, 2.0)
    assert S.ancestral_step(2.0, 1.0, eta=0.0) == (1.0, 0.0)
    down, up = S.ancestral_step(2.0, 1.0)
    assert math.isclose(down**2 + up**2, 1.0) and math.isclose(up, math.sqrt(3.0) / 2.0)


def test_registry():
    assert set(S.SDE_SOLVERS) >= {"euler_ancestral", "edm_stochastic", "dpm_solver_pp_2m_sde", "euler_maruyama",
                                  "predictor_corrector"}
    assert S.SOLVERS["euler_ancestral"] is S.sample_euler_ancestral and set(S.ODE_SOLVERS) <= set(S.SOLVERS)
