"""Exactly zero-mean control variates for the Monte Carlo ELBO of stationary linear SDEs.

Two integrands have closed-form means under ``y_s | x ~ N(m, Sigma)`` (hybrid start): that of the prior
score ``-Sigma_inf^{-1} y`` and (DSM form) the squared target ``1/2 ||g||^2_{GG^T}``. Their centred values,
one coefficient per time bin (:data:`N_TIME_BINS` equal-probability bins of the importance density), remove
the chi-square noise at large ``s`` and in the auxiliary block at small ``s``; they go to
:func:`opdiff.estimators.control_variates.apply_control_variates`.
"""
import numpy as np

from .elbo_times import time_quantile
from .gaussian_elbo import kron_quadratic, split_blocks

#: Number of time bins of the control variates (one coefficient per bin).
N_TIME_BINS = 8


def prior_score_control(process, GG, y, Phi, Sigma, x, form, target):
    """``E[c] - c`` for the integrand ``c`` of the prior score ``-Sigma_inf^{-1} y``, per unit beta; ``(n,)``.

    ``E[c] = -1/2 sum_j (tr(A GG A Sigma) + m_j^T A GG A m_j) + d tr(A GG)`` with ``A = Sigma_inf^{-1}`` under
    ``y | x ~ N(m, Sigma)``: zero mean given ``(x, t)``, strongly correlated with the model's integrand at large ``t``.

    Parameters
    ----------
    process : StationaryLinearSDE
    GG : (K, K) array
        ``2 D``.
    y : (n, K, d) array
        The sampled states, as blocks.
    Phi, Sigma : Kron
        The transition at the rows' times (batched blocks ``(n, K, K)``).
    x : (n, d) array
    form : {"dsm", "ism"}
    target : (n, K, d) array or None
        The DSM target ``grad log q(y | x)`` (``form="dsm"``).

    Returns
    -------
    (n,) array
    """
    A = np.linalg.inv(process.Sigma_inf)
    AGGA = A @ GG @ A
    d = x.shape[1]
    m = split_blocks(process, Phi.apply(process.lift(x)))
    expected = -0.5 * (d * np.einsum("ij,nji->n", AGGA, Sigma.block) + kron_quadratic(AGGA, m)) \
        + d * np.trace(A @ GG)
    prior_score = np.einsum("kl,nld->nkd", -A, y)
    if form == "dsm":
        sample = -0.5 * kron_quadratic(GG, prior_score) + np.einsum("kl,nkd,nld->n", GG, prior_score, target)
    else:
        sample = -0.5 * kron_quadratic(GG, prior_score) + d * np.trace(GG @ A)
    return expected - sample


def binned_controls(process, t, t_min, weight, beta, GG, y, Phi, Sigma, x, form, target):
    """Both controls of one time draw, placed in their time bins; ``(n, 2 N_TIME_BINS)``.

    Parameters
    ----------
    process : StationaryLinearSDE
    t, weight, beta : (n,) arrays
        Times, their importance weights and ``beta(t)``.
    t_min : float
    GG, y, Phi, Sigma, x, form, target
        As :func:`prior_score_control`.

    Returns
    -------
    (n, 2 N_TIME_BINS) array
        Columns ``[prior-score control per bin, squared-target control per bin]`` (the second half zero
        for the ISM form).
    """
    n, d = x.shape
    z_prior = weight * beta * prior_score_control(process, GG, y, Phi, Sigma, x, form, target)
    z_target = np.zeros(n)
    if form == "dsm":
        expected = 0.5 * d * np.einsum("nij,ji->n", np.linalg.inv(Sigma.block), GG)
        z_target = weight * beta * (0.5 * kron_quadratic(GG, target) - expected)
    bins = np.minimum(time_quantile(process, t, t_min) * N_TIME_BINS, N_TIME_BINS - 1)
    onehot = np.eye(N_TIME_BINS)[bins.astype(int)]
    return np.concatenate([onehot * z_prior[:, None], onehot * z_target[:, None]], axis=1)
