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


# ---------------------------------------------------------------------------------------------- stable forms
LONG = {
    "ou_T400": (lambda: OrnsteinUhlenbeck(T=400.0), lambda t: np.exp(-t), lambda t: 1.0 - np.exp(-2.0 * t)),
    "ou_theta10_T50": (lambda: OrnsteinUhlenbeck(theta=10.0, T=50.0), lambda t: np.exp(-10 * t),
                       lambda t: 1.0 - np.exp(-20.0 * t)),
    "vp_T10": (lambda: VPSDE(T=10.0), lambda t: np.exp(-0.5 * (0.1 * t + 9.95 * t**2)),
               lambda t: 1.0 - np.exp(-(0.1 * t + 9.95 * t**2))),
}


@pytest.mark.parametrize("name", sorted(LONG))
def test_long_horizons_are_finite_and_exact(name):
    """OU T=400, OU theta=10 T=50, VP T=10: Phi underflows to 0 and Sigma reaches 1, never 0 * inf = NaN.

    The closed forms exp(-theta t) and 1 - exp(-2 theta t) are evaluated directly in the test; they
    agree with the expm1 forms to rounding (rtol 1e-12: the expm1 form is the more accurate one).
    """
    factory, scale, variance = LONG[name]
    process = factory()
    for t in (1e-3, 0.5, 0.5 * process.t_max, process.t_max):
        Phi, Sigma = process.transition(t)
        np.testing.assert_allclose(Phi.c, scale(t), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(Sigma.c, variance(t), rtol=1e-12)
        # the VE-form noise level s = sqrt(Sigma) / a stays finite while 1 / a is (e^400 here)
        np.testing.assert_allclose(process.noise_level(t), np.sqrt(variance(t)) / scale(t), rtol=1e-12)
        assert np.isfinite(float(process.diffusion(t).c)) and float(process.diffusion(t).c) > 0
    x = process.sample(np.full((3, 2), 5.0), process.t_max, rng=0)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(process.transition_score(x, np.zeros((3, 2)), process.t_max), -x, rtol=1e-12)
    # the composition law survives the underflow: Sigma(T, 0) = Phi(T, s)^2 Sigma(s, 0) + Sigma(T, s)
    s = 0.5 * process.t_max
    Phi_ts, Sigma_ts = process.transition(process.t_max, s)
    total = float(Phi_ts.c) ** 2 * float(process.transition(s)[1].c) + float(Sigma_ts.c)
    np.testing.assert_allclose(total, float(process.transition(process.t_max)[1].c), rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_times_keep_a_positive_variance(name):
    """At t = 1e-18 the variance is positive and equals its first-order Taylor term ``g(0)^2 t``
    (``d Sigma / dt = g^2`` at 0; the relative error is O(t) = 1e-18, the bound 1e-6 leaves room for
    the rounding of ``g(0)``); the EDM schedule ``sigma(t) = t`` has ``g(0) = 0`` and ``Sigma = t^2``."""
    process = PROCESSES[name]()
    t = 1e-18
    Sigma = float(process.transition(t)[1].c)
    assert Sigma > 0
    if name == "ve_edm":  # sigma(t) = t: Sigma = t^2, g(0) = 0
        np.testing.assert_allclose(Sigma, t * t, rtol=1e-12)
    else:
        g2 = float(process.diffusion(0.0).c) ** 2
        np.testing.assert_allclose(Sigma, g2 * t, rtol=1e-6)
    assert np.all(np.isfinite(process.sample(np.zeros((2, 3)), t, rng=0)))
    assert np.all(np.isfinite(process.transition_score(np.zeros((2, 3)), np.zeros((2, 3)), t)))


@pytest.mark.parametrize("name", NAMES)
def test_time_at_noise_level_inverts_noise_level_down_to_1e_8(name):
    """Round trip over sigma in [1e-8, 10] (inside the range) to 1e-9 relative: the expm1 / rationalised
    inverses lose no digits at small sigma (the cosine schedule was 49% off at 1e-8)."""
    process = PROCESSES[name]()
    sigma = np.geomspace(1e-8, 10.0, 25)
    t = process.time_at_noise_level(sigma)
    inside = (t > 0) & (t <= process.t_max)
    assert inside[:5].all()
    np.testing.assert_allclose(process.noise_level(t[inside]), sigma[inside], rtol=1e-9)


def test_cosine_noise_level_at_small_times_against_its_taylor_form():
    """VP cosine: 1 / alpha_bar - 1 = 2 tan(a0) d + O(d^2) with d = pi t / (2 (1 + s)), a0 = pi s / (2 (1 + s)),
    so sigma(t)^2 = 2 tan(a0) d to relative O(d) (< 1e-9 for t <= 1e-10): an independent route to both
    the forward map and its inverse."""
    process = VPSDE(schedule="cosine")
    s = process.COSINE_OFFSET
    a0 = 0.5 * np.pi * s / (1.0 + s)
    t = np.geomspace(1e-16, 1e-10, 7)
    taylor = np.sqrt(2.0 * np.tan(a0) * 0.5 * np.pi * t / (1.0 + s))
    np.testing.assert_allclose(process.noise_level(t), taylor, rtol=1e-8)
    np.testing.assert_allclose(process.time_at_noise_level(taylor), t, rtol=1e-8)


def test_priors_draw_given_the_dimension_and_say_so_otherwise():
    """One prior signature, sample(n, dim=None, rng=None): bound by prior(dim=...) or given per call."""
    with pytest.raises(ValueError, match="^dim:"):
        VPSDE().prior().sample(500, rng=1)
    bound = VPSDE().prior(dim=2)
    x = bound.sample(500, rng=1)
    assert x.shape == (500, 2) and repr(bound) == "GaussianPrior(N(0, Scalar(1.0)), dim=2)"
    np.testing.assert_array_equal(x, VPSDE().prior().sample(500, 2, rng=1))
    # the sample variance of N(0, 1) within 5 standard errors
    assert abs(x.var() - 1.0) < 5 * np.sqrt(2 / x.size)
    with pytest.raises(ValueError, match="^dim:"):
        bound.sample(3, 4, rng=0)
    with pytest.raises(ValueError, match="^x:"):
        bound.log_density(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="^dim:"):
        VPSDE().prior(dim=0)


def test_process_reprs_round_trip():
    for process in (BrownianMotion(sigma=1.3, T=2.0), OrnsteinUhlenbeck(T=400.0), VESDE(sigma_max=20.0),
                    VESDE.edm(sigma_max=80.0), VPSDE(beta_max=10.0), VPSDE(schedule="cosine", T=0.9)):
        text = repr(process)
        rebuilt = eval(text, {"BrownianMotion": BrownianMotion, "OrnsteinUhlenbeck": OrnsteinUhlenbeck,
                              "VESDE": VESDE, "VPSDE": VPSDE})
        assert repr(rebuilt) == text and len(text) < 80
        np.testing.assert_array_equal(rebuilt.transition(0.5 * process.t_max)[1].c,
                                      process.transition(0.5 * process.t_max)[1].c)
