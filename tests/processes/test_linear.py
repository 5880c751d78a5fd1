"""StationaryLinearSDE: transitions against the Lyapunov ODE and Euler-Maruyama, composition laws,
stationarity, validation."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.stats import multivariate_normal

from opdiff.processes import VPSDE
from opdiff.processes.linear import StationaryLinearSDE


def _learned(seed=0, K=3):
    rng = np.random.default_rng(seed)
    return StationaryLinearSDE.learned(rng.normal(size=(K, K)), rng.normal(size=(K, K)) * 0.7)


PROCESSES = {
    "vp": StationaryLinearSDE.vp(),
    "cld": StationaryLinearSDE.cld(),
    "alda": StationaryLinearSDE.alda(),
    "malda": StationaryLinearSDE.malda(mass=0.5),
    "learned": _learned(),
    "cld_constant": StationaryLinearSDE.cld(schedule="constant", beta_min=2.0),
}


def _lyapunov(process, t, s=0.0, hybrid=True):
    """Mean map and covariance by integrating dPhi = F Phi, dS = F S + S F^T + G G^T (rtol 1e-10)."""
    K = process.n_blocks

    def rhs(u, y):
        F = process.beta(u) * process.F0
        Phi = y[: K * K].reshape(K, K)
        S = y[K * K:].reshape(K, K)
        return np.concatenate([(F @ Phi).ravel(), (F @ S + S @ F.T + process.beta(u) * process.GGT0).ravel()])

    S0 = process.initial_cov if hybrid else np.zeros((K, K))
    y0 = np.concatenate([np.eye(K).ravel(), S0.ravel()])
    sol = solve_ivp(rhs, (s, t), y0, method="DOP853", rtol=1e-10, atol=1e-13)
    return sol.y[: K * K, -1].reshape(K, K), sol.y[K * K:, -1].reshape(K, K)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_stationarity_residual_is_round_off(name):
    process = PROCESSES[name]
    # F Sigma_inf + Sigma_inf F^T + G G^T = -(Q + Q^T) = 0 exactly; round-off only.
    assert process.stationarity_residual() < 1e-14 * max(1.0, np.abs(process.F0).max() * 10)
    F = process.F0
    G = process.G0
    assert np.abs(F @ process.Sigma_inf + process.Sigma_inf @ F.T + G @ G.T).max() < 1e-13


@pytest.mark.parametrize("name", sorted(PROCESSES))
@pytest.mark.parametrize("t", [1e-3, 0.3, 1.0])
def test_transition_matches_lyapunov_ode(name, t):
    process = PROCESSES[name]
    K = process.n_blocks
    Phi, Sigma = process.transition(t)
    Phi_ode, Sigma_ode = _lyapunov(process, t)
    # ODE solved at rtol 1e-10 (global error ~1e-9 of the largest entry, which is O(1));
    # Van Loan / series are exact to round-off.
    np.testing.assert_allclose(Phi.block, Phi_ode, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(Sigma.block, Sigma_ode, rtol=1e-8, atol=1e-9)
    # from s > 0, conditioning on the whole state (both times inside (0, T])
    Phi_s, Sigma_s = process.transition(t, 0.5 * t)
    Phi_ode, Sigma_ode = _lyapunov(process, t, 0.5 * t, hybrid=False)
    np.testing.assert_allclose(Phi_s.block, Phi_ode, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(Sigma_s.block, Sigma_ode, rtol=1e-8, atol=1e-9)
    assert Phi.dense(2 * K).shape == (2 * K, 2 * K)


def test_vp_matches_closed_form_and_scalar_vpsde():
    process = StationaryLinearSDE.vp()
    reference = VPSDE(beta_min=0.1, beta_max=10.0)
    t = np.array([0.01, 0.5, 1.0])
    Phi, Sigma = process.transition(t)
    tau = 0.1 * t + 0.5 * 9.9 * t**2
    np.testing.assert_allclose(Phi.block[:, 0, 0], np.exp(-tau / 2), rtol=1e-13)
    np.testing.assert_allclose(Sigma.block[:, 0, 0], -np.expm1(-tau), rtol=1e-12)
    ref_phi, ref_sigma = reference.transition(t)
    np.testing.assert_allclose(Phi.block[:, 0, 0], ref_phi.c, rtol=1e-13)
    np.testing.assert_allclose(Sigma.block[:, 0, 0], ref_sigma.c, rtol=1e-12)


@pytest.mark.parametrize("name", ["cld", "malda", "learned"])
def test_semigroup_and_covariance_composition(name):
    process = PROCESSES[name]
    r, s, t = 0.1, 0.45, 0.9
    Phi_ts, Sig_ts = process.transition(t, s)
    Phi_sr, Sig_sr = process.transition(s, r)
    Phi_tr, Sig_tr = process.transition(t, r)
    # round-off on O(1) entries
    np.testing.assert_allclose((Phi_ts @ Phi_sr).block, Phi_tr.block, rtol=1e-12, atol=1e-13)
    composed = Phi_ts.block @ Sig_sr.block @ Phi_ts.block.T + Sig_ts.block
    np.testing.assert_allclose(composed, Sig_tr.block, rtol=1e-11, atol=1e-13)
    # the same law from the hybrid start (s = 0 conditions on x only)
    Phi_s0, Sig_s0 = process.transition(s)
    Phi_t0, Sig_t0 = process.transition(t)
    composed = Phi_ts.block @ Sig_s0.block @ Phi_ts.block.T + Sig_ts.block
    np.testing.assert_allclose(composed, Sig_t0.block, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(Phi_ts.block @ Phi_s0.block, Phi_t0.block, rtol=1e-12, atol=1e-13)


def test_batched_transition_equals_rowwise():
    process = PROCESSES["malda"]
    t = np.array([0.05, 0.5, 1.0])
    s = np.array([0.0, 0.2, 0.0])
    Phi, Sigma = process.transition(t, s)
    assert Phi.batched and Sigma.block.shape == (3, 3, 3)
    for i in range(3):
        Phi_i, Sigma_i = process.transition(t[i], s[i])
        np.testing.assert_allclose(Phi.block[i], Phi_i.block, rtol=1e-14)
        np.testing.assert_allclose(Sigma.block[i], Sigma_i.block, rtol=1e-14)


@pytest.mark.parametrize("name", ["cld", "malda", "learned"])
def test_transition_matches_euler_maruyama(name):
    """Fine Euler-Maruyama from the hybrid start; mean and covariance within 5 standard errors."""
    process = PROCESSES[name]
    rng = np.random.default_rng(1)
    K, n, steps, t_end = process.n_blocks, 10000, 400, 0.6
    x0 = 0.8
    z = np.zeros((n, K))
    z[:, 0] = x0
    z[:, 1:] = np.sqrt(process.initial_aux_var) * rng.standard_normal((n, K - 1))
    dt = t_end / steps
    for k in range(steps):
        u = k * dt
        z = z + dt * process.beta(u) * z @ process.F0.T \
            + np.sqrt(process.beta(u) * dt) * rng.standard_normal((n, K)) @ process.G0.T
    Phi, Sigma = process.transition(t_end)
    mean = Phi.block[:, 0] * x0
    cov = Sigma.block
    emp_mean = z.mean(0)
    se_mean = np.sqrt(np.diag(cov) / n)
    # Monte Carlo: 5 standard errors; Euler bias O(dt beta ||F0||) ~ 2e-3 relative (absorbed by the 2e-3 slack).
    assert np.all(np.abs(emp_mean - mean) < 5 * se_mean + 2e-3)
    emp_cov = np.cov(z.T)
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(emp_cov - cov) < 5 * se_cov + 2e-3 * np.abs(cov).max())


def test_sample_logpdf_and_score():
    process = PROCESSES["cld"]
    rng = np.random.default_rng(2)
    x0 = rng.normal(size=(4, 3))
    t = np.array([0.1, 0.3, 0.6, 1.0])
    zt = process.sample(x0, t, rng=rng)
    assert zt.shape == (4, 6)
    logp = process.transition_logpdf(zt, x0, t)
    Phi, Sigma = process.transition(t)
    for i in range(4):
        mean = Phi.dense(6)[i] @ process.lift(x0)[i]
        ref = multivariate_normal(mean, Sigma.dense(6)[i]).logpdf(zt[i])
        np.testing.assert_allclose(logp[i], ref, rtol=1e-10)
    score = process.transition_score(zt, x0, t)
    h = 1e-5
    fd = np.empty_like(zt)
    for j in range(6):
        e = np.zeros(6)
        e[j] = h
        fd[:, j] = (process.transition_logpdf(zt + e, x0, t) - process.transition_logpdf(zt - e, x0, t)) / (2 * h)
    # central differences: O(h^2) truncation plus round-off eps |log p| / h ~ 1e-10
    np.testing.assert_allclose(score, fd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(process.project(zt), zt[:, :3])
    np.testing.assert_allclose(process.lift(x0)[:, 3:], 0.0)
    assert process.state_dim(5) == 10


def test_prior_is_stationary_law():
    process = StationaryLinearSDE.malda(mass=2.0)
    prior = process.prior()
    z = prior.sample(40000, 3 * 2, rng=3)
    cov = np.cov(z.T)
    expected = np.kron(process.Sigma_inf, np.eye(2))
    se = np.sqrt((expected**2 + np.outer(np.diag(expected), np.diag(expected))) / z.shape[0])
    assert np.all(np.abs(cov - expected) < 5 * se)
    ref = multivariate_normal(np.zeros(6), expected).logpdf(z[:5])
    np.testing.assert_allclose(prior.log_density(z[:5]), ref, rtol=1e-12)
    # the law at T from the hybrid start converges to the prior
    Phi, Sigma = process.transition(1.0)
    # Sigma_inf - Sigma(T) = Phi (Sigma_inf - Sigma_0) Phi^T with 0 <= Sigma_0 <= Sigma_inf, so every entry
    # of the gap is at most ||Phi||^2 ||Sigma_inf|| (1.8e-3 here; measured 1.6e-3)
    gap_bound = np.linalg.norm(Phi.block, 2) ** 2 * np.linalg.norm(process.Sigma_inf, 2)
    assert gap_bound < 0.01
    np.testing.assert_allclose(Sigma.block, process.Sigma_inf, rtol=0, atol=gap_bound)


def test_eigenvalues_of_known_processes():
    # notes A.6: real parts of eig(F0) (M = 1)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(StationaryLinearSDE.malda().F0).real), [-1.5, -1.5, -1.0],
                               atol=1e-6)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(StationaryLinearSDE.cld().F0).real), [-1, -1], atol=1e-6)
    alda = np.sort(np.linalg.eigvals(StationaryLinearSDE.alda().F0).real)
    np.testing.assert_allclose(alda, [-0.57, -0.215, -0.215], atol=5e-3)


def test_drift_and_diffusion_operators():
    process = PROCESSES["learned"]
    t = np.array([0.2, 0.7])
    z = np.random.default_rng(4).normal(size=(2, 6))
    drift = process.drift(z, t)
    for i in range(2):
        np.testing.assert_allclose(drift[i], np.kron(process.beta(t[i]) * process.F0, np.eye(2)) @ z[i], rtol=1e-12)
    G = process.diffusion(0.3).block
    np.testing.assert_allclose(G @ G.T, 2 * process.beta(0.3) * process.D, rtol=1e-10, atol=1e-12)


def test_invalid_arguments_rejected():
    eye = np.eye(2)
    with pytest.raises(ValueError, match="Q: expected a skew-symmetric"):
        StationaryLinearSDE(np.array([[0.0, 1.0], [1.0, 0.0]]), eye, eye)
    with pytest.raises(ValueError, match="D: expected a positive semi-definite"):
        StationaryLinearSDE(np.zeros((2, 2)), np.diag([1.0, -0.5]), eye)
    with pytest.raises(ValueError, match="D: expected a symmetric"):
        StationaryLinearSDE(np.zeros((2, 2)), np.array([[1.0, 0.5], [0.0, 1.0]]), eye)
    with pytest.raises(ValueError, match="Sigma_inf: expected a symmetric positive definite"):
        StationaryLinearSDE(np.zeros((2, 2)), eye, np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="D: expected shape"):
        StationaryLinearSDE(np.zeros((2, 2)), np.eye(3), eye)
    with pytest.raises(ValueError, match="Q: expected a square"):
        StationaryLinearSDE(np.zeros((2, 3)), eye, eye)
    with pytest.raises(ValueError, match="Q: expected finite"):
        StationaryLinearSDE(np.array([[0.0, np.nan], [0.0, 0.0]]), eye, eye)
    with pytest.raises(ValueError, match="schedule"):
        StationaryLinearSDE.cld(schedule="cosine")
    with pytest.raises(ValueError, match="mass"):
        StationaryLinearSDE.cld(mass=-1.0)
    with pytest.raises(ValueError, match="s: expected s <= t"):
        PROCESSES["cld"].transition(0.2, 0.5)
    with pytest.raises(ValueError, match="B: expected"):
        StationaryLinearSDE.learned(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="t: expected times"):
        PROCESSES["cld"].sample(np.zeros((2, 1)), 1.5, rng=0)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=20, deadline=None)
@given(K=st.integers(1, 4), seed=st.integers(0, 10_000), times=st.tuples(st.floats(0.01, 0.5), st.floats(0.0, 0.5)))
def test_property_learned_processes_are_stationary_semigroups(K, seed, times):
    rng = np.random.default_rng(seed)
    process = StationaryLinearSDE.learned(rng.normal(size=(K, K)), rng.normal(size=(K, K)))
    assert process.stationarity_residual() < 1e-12 * max(1.0, np.abs(process.F0).max() ** 2)
    s, t = times[0], times[0] + times[1]
    Phi_ts, Sig_ts = process.transition(t, s)
    Phi_s, Sig_s = process.transition_from_state(s)
    Phi_t, Sig_t = process.transition_from_state(t)
    np.testing.assert_allclose(Phi_ts.block @ Phi_s.block, Phi_t.block, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(Phi_ts.block @ Sig_s.block @ Phi_ts.block.T + Sig_ts.block, Sig_t.block,
                               rtol=1e-9, atol=1e-11)
    assert np.linalg.eigvalsh(Sig_t.block).min() > -1e-12
