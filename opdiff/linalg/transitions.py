"""Exact transitions of time-rescaled linear SDEs ``dz = beta(t) F0 z dt + sqrt(beta(t)) G0 dW``.

With ``tau = int_s^t beta``, the transition is ``z_t | z_s ~ N(Phi z_s, Phi Sigma_s Phi^T + Q)`` with
``Phi = expm(tau F0)`` and ``Q = int_0^tau e^{u F0} G0 G0^T e^{u F0^T} du``.

``Q`` is computed by scaling and squaring: the Taylor series at ``tau / 2^k`` (where
``tau ||F0|| / 2^k`` is small, so every entry, including those vanishing like ``tau^3`` in the
position block of critically damped Langevin, keeps relative precision), then ``k`` doublings
``Q(2u) = Q(u) + Phi(u) Q(u) Phi(u)^T``, which only add positive semi-definite terms. The Van Loan
block exponential (:func:`van_loan_covariance`) is kept as an independent route: its absolute error
grows like ``eps ||expm(-tau F0)||`` and loses digits for fast-mixing drifts at large ``tau``.
"""
import numpy as np
from scipy.linalg import expm

#: Below this value of ``tau * ||F0||`` the covariance is summed as a series.
SERIES_THRESHOLD = 0.25
_SERIES_TERMS = 40


def _check_system(F0, GGT0, tau):
    """float64 ``(F0, GGT0, taus (m,))``: square matrices of one size and finite non-negative times."""
    F0 = np.asarray(F0, dtype=np.float64)
    GGT0 = np.asarray(GGT0, dtype=np.float64)
    if F0.ndim != 2 or F0.shape[0] != F0.shape[1] or not np.all(np.isfinite(F0)):
        raise ValueError(f"F0: expected a finite square (K, K) matrix, got shape {F0.shape}")
    if GGT0.shape != F0.shape or not np.all(np.isfinite(GGT0)):
        raise ValueError(f"GGT0: expected a finite {F0.shape} matrix matching F0, got shape {GGT0.shape}")
    taus = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    if taus.ndim != 1 or np.any(taus < 0) or not np.all(np.isfinite(taus)):
        raise ValueError(f"tau: expected finite non-negative integrated times, got {tau}")
    return F0, GGT0, taus


def van_loan_covariance(F0, GGT0, tau):
    """``(Phi, Q)`` for one ``tau`` by the Van Loan block exponential.

    Parameters
    ----------
    F0, GGT0 : (K, K) arrays
        Drift matrix and diffusion covariance ``G0 G0^T``.
    tau : float
        Integrated rate ``int beta``.

    Returns
    -------
    Phi, Q : (K, K) arrays
    """
    F0, GGT0, taus = _check_system(F0, GGT0, tau)
    if taus.shape != (1,):
        raise ValueError(f"tau: expected a single integrated time, got shape {np.shape(tau)}")
    tau = float(taus[0])
    K = F0.shape[0]
    block = np.zeros((2 * K, 2 * K))
    block[:K, :K] = -F0 * tau
    block[:K, K:] = GGT0 * tau
    block[K:, K:] = F0.T * tau
    exp_block = expm(block)
    Phi = exp_block[K:, K:].T
    Q = Phi @ exp_block[:K, K:]
    return Phi, 0.5 * (Q + Q.T)


def series_covariance(F0, GGT0, tau):
    """``Q(tau) = sum_k tau^{k+1}/(k+1)! C_k`` with ``C_0 = G G^T``, ``C_k = F C_{k-1} + C_{k-1} F^T``.

    Accurate to relative machine precision entry by entry for small ``tau ||F0||``.
    """
    term = GGT0.astype(np.float64)
    total = np.zeros_like(term)
    coefficient = 1.0
    for k in range(_SERIES_TERMS):
        coefficient *= tau / (k + 1)
        total = total + coefficient * term
        term = F0 @ term + term @ F0.T
        if coefficient * np.max(np.abs(term)) <= 1e-18 * np.max(np.abs(total)):
            break
    return 0.5 * (total + total.T)


def squaring_covariance(F0, GGT0, tau):
    """``(Phi, Q)`` by the series at ``tau / 2^k`` and ``k`` doublings ``Q(2u) = Q(u) + Phi(u) Q(u) Phi(u)^T``."""
    norm = np.linalg.norm(F0, 2)
    doublings = 0 if tau * norm < SERIES_THRESHOLD else int(np.ceil(np.log2(tau * norm / SERIES_THRESHOLD)))
    step = tau / 2.0**doublings
    Phi, Q = expm(step * F0), series_covariance(F0, GGT0, step)
    for _ in range(doublings):
        Q = Q + Phi @ Q @ Phi.T
        Phi = Phi @ Phi
    return Phi, 0.5 * (Q + Q.T)


def linear_sde_transition(F0, GGT0, tau, initial_cov=None):
    """Exact ``(Phi, Sigma)`` of ``dz = F0 z du + G0 dW`` run for time ``tau`` from ``N(z_0, initial_cov)``.

    Parameters
    ----------
    F0 : (K, K) array
    GGT0 : (K, K) array
        ``G0 G0^T`` (positive semi-definite).
    tau : float or (n,) array
        Integrated time(s), non-negative.
    initial_cov : (K, K) array, optional
        Covariance of the starting state given the conditioning variables (the "hybrid" start).

    Returns
    -------
    Phi : (K, K) or (n, K, K) array
    Sigma : (K, K) or (n, K, K) array
    """
    F0, GGT0, taus = _check_system(F0, GGT0, tau)
    Phis, Sigmas = [], []
    for value in taus:
        Phi, Q = squaring_covariance(F0, GGT0, value)
        if initial_cov is not None:
            Q = Q + Phi @ initial_cov @ Phi.T
        Phis.append(Phi)
        Sigmas.append(0.5 * (Q + Q.T))
    if np.ndim(tau) == 0:
        return Phis[0], Sigmas[0]
    return np.stack(Phis), np.stack(Sigmas)
