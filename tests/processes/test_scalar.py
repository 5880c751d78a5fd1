"""Scalar Gaussian processes: transitions against the Lyapunov ODE and Euler-Maruyama, composition laws."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from opdiff.processes import VESDE, VPSDE, BrownianMotion, OrnsteinUhlenbeck

PROCESSES = {
    "bm": lambda: BrownianMotion(sigma=1.3, T=2.0),
    "ou": lambda: OrnsteinUhlenbeck(theta=0.7, T=3.0),
    "ve_geometric": lambda: VESDE(sigma_min=0.01, sigma_max=50.0),
    "ve_edm": lambda: VESDE.edm(sigma_max=80.0),
    "vp_linear": lambda: VPSDE(beta_min=0.1, beta_max=20.0),
    "vp_cosine": lambda: VPSDE(schedule="cosine"),
}
NAMES = sorted(PROCESSES)


def _coefficients(process, t):
    """f(t) and g(t)^2 from the drift operator and the diffusion of the process."""
    f = float(process.drift_operator(t).c)
    g = float(process.diffusion(t).c)
    return f, g * g


def _times(process):
    """(s, t) pairs inside the range: from 0, and between two interior times."""
    T = process.t_max
    return [(0.0, 0.5 * T), (0.2 * T, 0.9 * T), (0.0, T)]


@pytest.mark.parametrize("name", NAMES)
def test_transition_against_lyapunov_ode(name):
    """dm/dt = f m, dP/dt = 2 f P + g^2 (scipy solve_ivp) against (Phi, Sigma)."""
    process = PROCESSES[name]()
    for s, t in _times(process):

        def rhs(u, y):
            f, g2 = _coefficients(process, u)
            return [f * y[0], 2 * f * y[1] + g2]

        sol = solve_ivp(rhs, (s, t), [1.0, 0.0], method="DOP853", rtol=1e-11, atol=1e-14)
        Phi, Sigma = process.transition(t, s)
        # ODE tolerance rtol 1e-11; the closed forms are exact
        np.testing.assert_allclose(float(Phi.c), sol.y[0, -1], rtol=1e-8)
        np.testing.assert_allclose(float(Sigma.c), sol.y[1, -1], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_transition_against_euler_maruyama(name):
    """A fine Euler-Maruyama simulation (midpoint coefficients, 400 steps): mean and variance within 5 SE."""
    process = PROCESSES[name]()
    rng = np.random.default_rng(0)
    n_paths, n_steps, x0 = 10000, 400, 1.5
    for s, t in _times(process)[:2]:
        grid = np.linspace(s, t, n_steps + 1)
        x = np.full(n_paths, x0)
        for a, b in zip(grid[:-1], grid[1:]):
            f, g2 = _coefficients(process, 0.5 * (a + b))
            x = x + f * x * (b - a) + np.sqrt(g2 * (b - a)) * rng.standard_normal(n_paths)
        Phi, Sigma = process.transition(t, s)
        mean, var = float(Phi.c) * x0, float(Sigma.c)
        # standard errors of the sample mean and variance; the midpoint scheme's bias is O(dt^2)
        assert abs(x.mean() - mean) < 5 * np.sqrt(var / n_paths), (s, t, x.mean(), mean)
        assert abs(x.var(ddof=1) - var) < 5 * var * np.sqrt(2.0 / (n_paths - 1)), (s, t, x.var(), var)


@pytest.mark.parametrize("name", NAMES)
def test_composition_laws(name):
    """Phi(t,s) Phi(s,r) = Phi(t,r); Sigma(t,r) = Phi(t,s) Sigma(s,r) Phi(t,s)^T + Sigma(t,s)."""
    process = PROCESSES[name]()
    T = process.t_max
    for r in (0.0, 0.1 * T):
        s, t = 0.4 * T, 0.8 * T
        Phi_ts, Sigma_ts = process.transition(t, s)
        Phi_sr, Sigma_sr = process.transition(s, r)
        Phi_tr, Sigma_tr = process.transition(t, r)
        np.testing.assert_allclose((Phi_ts @ Phi_sr).c, Phi_tr.c, rtol=1e-13)
        composed = Phi_ts.c**2 * Sigma_sr.c + Sigma_ts.c
        np.testing.assert_allclose(composed, Sigma_tr.c, rtol=1e-11)


@pytest.mark.parametrize("name", NAMES)
def test_edm_form_and_time_at_noise_level(name):
    process = PROCESSES[name]()
    t = np.linspace(0.05, 1.0, 7) * process.t_max
    a, s = process.scale(t), process.noise_level(t)
    Phi, Sigma = process.transition(t)
    np.testing.assert_allclose(Phi.c, a, rtol=1e-14)
    np.testing.assert_allclose(Sigma.c, a**2 * s**2, rtol=1e-13)
    np.testing.assert_allclose(process.time_at_noise_level(s), t, rtol=1e-9)
    # f = d log a / dt and g^2 = a^2 d s^2 / dt (central differences, O(h^2))
    h = 1e-6 * process.t_max
    inner = t[:-1]
    np.testing.assert_allclose(process.log_scale_rate(inner),
                               (np.log(process.scale(inner + h)) - np.log(process.scale(inner - h))) / (2 * h),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(process.noise_rate(inner),
                               (process.noise_level(inner + h) ** 2 - process.noise_level(inner - h) ** 2) / (2 * h),
                               rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_prior_is_the_terminal_law(name):
    process = PROCESSES[name]()
    x = np.random.default_rng(1).normal(size=(5, 3))
    prior = process.prior()
    variance = float(prior.covariance(3).c)
    terminal = float(process.transition(process.t_max)[1].c)
    if name.startswith(("vp", "ou")):
        # N(0, I) stationary law; the unconverged part of the transition variance is a(T)^2
        assert variance == 1.0
        np.testing.assert_allclose(1.0 - terminal, process.scale(process.t_max) ** 2, rtol=1e-10)
    else:
        np.testing.assert_allclose(variance, terminal, rtol=1e-12)
    expected = -0.5 * np.sum(x**2, axis=1) / variance - 1.5 * np.log(2 * np.pi * variance)
    np.testing.assert_allclose(prior.log_density(x), expected, rtol=1e-12)
    sample = prior.sample(4000, 2, rng=0)
    assert sample.shape == (4000, 2)
    # sample variance within 5 standard errors
    assert abs(sample.var() - variance) < 5 * variance * np.sqrt(2 / sample.size)


def test_batched_transition_matches_scalar_times():
    process = VPSDE()
    t = np.array([0.1, 0.5, 0.9])
    s = np.array([0.0, 0.2, 0.3])
    Phi, Sigma = process.transition(t, s)
    for i in range(3):
        Phi_i, Sigma_i = process.transition(t[i], s[i])
        np.testing.assert_allclose(Phi.c[i], Phi_i.c, rtol=1e-14)
        np.testing.assert_allclose(Sigma.c[i], Sigma_i.c, rtol=1e-14)


def test_bad_parameters():
    with pytest.raises(ValueError, match="sigma: expected a positive"):
        BrownianMotion(sigma=0.0)
    with pytest.raises(ValueError, match="theta: expected a positive"):
        OrnsteinUhlenbeck(theta=-1.0)
    with pytest.raises(ValueError, match="sigma_max: expected > sigma_min"):
        VESDE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="schedule: expected one of"):
        VESDE(schedule="cubic")
    with pytest.raises(ValueError, match="beta_max: expected >= beta_min"):
        VPSDE(beta_min=2.0, beta_max=1.0)
    with pytest.raises(ValueError, match="T: the cosine schedule needs T < 1"):
        VPSDE(schedule="cosine", T=1.0)
    with pytest.raises(ValueError, match="s: expected s <= t"):
        VPSDE().transition(0.2, 0.5)
    with pytest.raises(ValueError, match=r"t: expected times in \(0.0, 1.0\]"):
        VPSDE().check_time(1.5)
