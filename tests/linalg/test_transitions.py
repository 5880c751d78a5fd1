"""Van Loan covariance against its Taylor series and against the Lyapunov ODE (scipy solve_ivp)."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from opdiff.linalg import linear_sde_transition, van_loan_covariance
from opdiff.linalg.transitions import SERIES_THRESHOLD, series_covariance

# critically damped Langevin (K = 2) and a random stable 3 x 3 drift
CLD_F = np.array([[0.0, 1.0], [-1.0, -2.0]])
CLD_GGT = np.diag([0.0, 4.0])
_A = np.random.default_rng(0).normal(size=(3, 3))
RANDOM_F = _A - 3.0 * np.eye(3)
RANDOM_GGT = _A @ _A.T + 0.1 * np.eye(3)
CASES = {"cld": (CLD_F, CLD_GGT), "random": (RANDOM_F, RANDOM_GGT)}


def lyapunov_ode(F, GGT, tau, initial_cov=None):
    """Phi and Q from dPhi/du = F Phi, dQ/du = F Q + Q F^T + G G^T by an adaptive RK solver."""
    K = F.shape[0]

    def rhs(_, y):
        Phi, Q = y[: K * K].reshape(K, K), y[K * K:].reshape(K, K)
        return np.concatenate([(F @ Phi).ravel(), (F @ Q + Q @ F.T + GGT).ravel()])

    Q0 = np.zeros((K, K)) if initial_cov is None else initial_cov
    y0 = np.concatenate([np.eye(K).ravel(), Q0.ravel()])
    sol = solve_ivp(rhs, (0.0, tau), y0, rtol=1e-11, atol=1e-13, method="DOP853")
    y = sol.y[:, -1]
    return y[: K * K].reshape(K, K), y[K * K:].reshape(K, K)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("tau", [0.05, 0.7, 3.0])
def test_van_loan_against_lyapunov_ode(case, tau):
    F, GGT = CASES[case]
    Phi, Q = van_loan_covariance(F, GGT, tau)
    Phi_ode, Q_ode = lyapunov_ode(F, GGT, tau)
    # ODE solved to rtol 1e-11. Van Loan forms Q = Phi @ (block of expm(-tau F)): its absolute error is
    # about 1e-12 ||expm(-tau F)|| ||G G^T|| (cancellation in the growing block; 8e5 for "random" at tau=3)
    growth = np.linalg.norm(expm(-tau * F), 2) * np.linalg.norm(GGT, 2)
    np.testing.assert_allclose(Phi, Phi_ode, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(Q, Q_ode, rtol=1e-8, atol=1e-10 + 1e-12 * growth)
    np.testing.assert_allclose(Q, Q.T, rtol=0, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_series_against_van_loan_and_ode(case):
    F, GGT = CASES[case]
    for tau in (1e-3, 0.02, SERIES_THRESHOLD / np.linalg.norm(F, 2) * 0.9):
        series = series_covariance(F, GGT, tau)
        _, Q_ode = lyapunov_ode(F, GGT, tau)
        np.testing.assert_allclose(series, Q_ode, rtol=1e-8, atol=1e-14)
        _, Q_vl = van_loan_covariance(F, GGT, tau)
        # Van Loan loses absolute precision ~ eps on entries vanishing like tau^3: absolute comparison
        np.testing.assert_allclose(series, Q_vl, rtol=1e-8, atol=1e-14)


def test_series_keeps_relative_precision_on_tiny_entries():
    """CLD position variance ~ (2/3) * 4 * tau^3 / ... vanishes like tau^3: the series keeps its digits."""
    tau = 1e-5
    Q = series_covariance(CLD_F, CLD_GGT, tau)
    # leading terms of the position block: Q_xx = GGT_vv tau^3 / 3 - ...
    np.testing.assert_allclose(Q[0, 0], 4.0 * tau**3 / 3.0, rtol=1e-4)
    assert Q[0, 0] > 0


def test_linear_sde_transition_batched_and_with_initial_cov():
    taus = np.array([0.01, 0.5, 2.0])
    initial = np.diag([0.0, 0.3])
    Phi, Sigma = linear_sde_transition(CLD_F, CLD_GGT, taus, initial_cov=initial)
    assert Phi.shape == Sigma.shape == (3, 2, 2)
    for i, tau in enumerate(taus):
        Phi_ode, Q_ode = lyapunov_ode(CLD_F, CLD_GGT, tau, initial_cov=initial)
        np.testing.assert_allclose(Phi[i], expm(tau * CLD_F), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(Sigma[i], Q_ode, rtol=1e-8, atol=1e-12)
    Phi0, Sigma0 = linear_sde_transition(CLD_F, CLD_GGT, 0.5)
    assert Phi0.shape == (2, 2)
    np.testing.assert_allclose(Sigma0, linear_sde_transition(CLD_F, CLD_GGT, [0.5])[1][0])


def test_bad_tau():
    with pytest.raises(ValueError, match="tau: expected finite non-negative"):
        linear_sde_transition(CLD_F, CLD_GGT, -0.1)
    with pytest.raises(ValueError, match="tau: expected finite non-negative"):
        linear_sde_transition(CLD_F, CLD_GGT, [0.1, np.nan])


@pytest.mark.parametrize("tau", [0.01, 1.0, 5.0, 20.0])
def test_squaring_is_accurate_for_fast_mixing_drifts_at_large_tau(tau):
    """Against the stationary closed form Q = S - Phi S Phi^T (S solves the Lyapunov equation).

    Van Loan loses every digit here by tau = 20 (its blocks grow like exp(6 tau)); scaling and
    squaring only adds PSD terms, so the relative error stays at a few ulps per doubling.
    """
    from scipy.linalg import expm, solve_continuous_lyapunov

    F = 3.0 * np.array([[0.0, 1.0], [-1.0, -2.0]])
    GGT = np.diag([0.0, 12.0])
    stationary = solve_continuous_lyapunov(F, -GGT)
    Phi, Q = linear_sde_transition(F, GGT, tau)
    reference = stationary - expm(tau * F) @ stationary @ expm(tau * F).T
    assert np.abs(Q - reference).max() <= 1e-13 * np.abs(reference).max()
