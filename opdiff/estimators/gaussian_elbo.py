"""Gaussian closed forms of the likelihood bound of stationary linear SDEs (MDM, arXiv 2302.07261).

For data ``N(mean, data_var I)`` and the exact score, ``E[ELBO] = -H(x) - KL(q_T || pi) + O(eps)``; the prior
term ``KL(q_T(. | x) || pi)`` is in closed form with the stationary identity
``Cov(y_T | x) = Sigma_inf + Phi (Sigma_0 - Sigma_inf) Phi^T`` (hybrid start ``Sigma_0 = diag(data_var, aux I)``).
"""
import numpy as np
from scipy.linalg import expm

from ..backend import check_count
from ..processes.base import LOG_2PI


def check_stationary_process(process):
    """Raise a TypeError naming ``process`` unless it is a stationary linear SDE (``F0``, ``Sigma_inf``).

    Parameters
    ----------
    process : object

    Returns
    -------
    StationaryLinearSDE
        ``process`` itself.
    """
    if not hasattr(process, "F0") or not hasattr(process, "Sigma_inf"):
        raise TypeError(f"process: expected a StationaryLinearSDE, got {type(process).__name__}")
    return process


def kron_quadratic(block, z):
    """``sum_{k,l} block_kl <z_k, z_l>`` per row for block vectors ``z (n, K, d)``; ``(n,)``."""
    return np.einsum("kl,nkd,nld->n", block, z, z)


def split_blocks(process, y):
    """The state ``y (n, K d)`` as blocks ``(n, K, d)``."""
    return y.reshape(y.shape[0], process.n_blocks, -1)


def initial_cov(process, data_var):
    """``Sigma_0 = diag(data_var, initial_aux_var I)`` (``(K, K)``): the covariance of the start ``(x, v0)``."""
    S0 = process.initial_cov.copy()
    S0[0, 0] = data_var
    return S0


def gaussian_prior_kl(process, Phi, mean, data_var, dPhi=None):
    """``KL(q_T || pi)`` per coordinate and (optionally) its derivative along ``dPhi`` (``Sigma_inf`` fixed).

    Parameters
    ----------
    process : StationaryLinearSDE
    Phi : (K, K) array
        ``expm(tau(T) F0)``.
    mean : float or (d,) array
    data_var : float
    dPhi : (K, K) array, optional

    Returns
    -------
    kl : float or (d,) array
    dkl : float or (d,) array or None
    """
    S = process.Sigma_inf
    S_inv = np.linalg.inv(S)
    M = initial_cov(process, data_var) - S
    C = S + Phi @ M @ Phi.T
    K = S.shape[0]
    m = np.multiply.outer(mean, Phi[:, 0])
    quad = np.einsum("...k,kl,...l->...", m, S_inv, m)
    kl = 0.5 * (np.trace(S_inv @ C) + quad - K + np.linalg.slogdet(S)[1] - np.linalg.slogdet(C)[1])
    if dPhi is None:
        return kl, None
    dC = dPhi @ M @ Phi.T + Phi @ M @ dPhi.T
    dm = np.multiply.outer(mean, dPhi[:, 0])
    dquad = 2.0 * np.einsum("...k,kl,...l->...", m, S_inv, dm)
    return kl, 0.5 * (np.trace(S_inv @ dC) + dquad - np.trace(np.linalg.inv(C) @ dC))


def prior_kl(process, mean, data_var=0.0):
    """``KL(q_T || pi)`` per data coordinate, for data ``N(mean, data_var)`` (``data_var = 0``: a point).

    Parameters
    ----------
    process : StationaryLinearSDE
    mean : float or (d,) array
    data_var : float
        Variance of each data coordinate (0 for a single data point ``x = mean``).

    Returns
    -------
    float or (d,) array
        Nats per coordinate (hybrid start included).
    """
    check_stationary_process(process)
    data_var = _check_data_var(data_var)
    mean = np.asarray(mean, dtype=np.float64)
    if not np.all(np.isfinite(mean)):
        raise ValueError("mean: expected finite values")
    Phi = expm(process.integrated_beta(process.t_max) * process.F0)
    return gaussian_prior_kl(process, Phi, mean, data_var)[0]


def _check_data_var(data_var, name="data_var"):
    """``data_var`` as a finite float ``>= 0`` (``ValueError`` naming ``name`` otherwise)."""
    try:
        value = float(data_var)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a finite variance >= 0, got {type(data_var).__name__}") from None
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a finite variance >= 0, got {data_var}")
    return value


def gaussian_entropy(variance, d=1):
    """Differential entropy of ``N(mu, variance I_d)`` in nats.

    Parameters
    ----------
    variance : float
        Finite, ``>= 0`` (0: a point mass, entropy ``-inf``).
    d : int
        Dimension (positive).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``variance`` is negative or not finite, or ``d`` is not a positive integer.
    """
    variance = _check_data_var(variance, "variance")
    d = check_count(d, "d")
    if variance == 0.0:
        return -np.inf
    return 0.5 * d * (np.log(2.0 * np.pi * variance) + 1.0)


def gaussian_data_score(process, mean, data_var):
    """The exact score ``score(y, t)`` of the forward marginals of data ``N(mean, data_var I_d)``.

    Per coordinate ``j`` the state is ``N(Phi[:, 0] mean_j, Phi S0 Phi^T + Sigma)`` (``Kron`` structure,
    hybrid start, one time per row allowed).

    Parameters
    ----------
    process : StationaryLinearSDE
    mean : float or (d,) array
        Finite data mean.
    data_var : float
        Variance of each data coordinate, finite and ``>= 0``.

    Returns
    -------
    callable
        ``score(y (m, K d), t) -> (m, K d)``.

    Raises
    ------
    ValueError
        Naming ``mean`` or ``data_var`` when one is not finite (or the variance is negative).
    """
    from ..linalg import Kron

    check_stationary_process(process)
    data_var = _check_data_var(data_var)
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    if not np.all(np.isfinite(mean)):
        raise ValueError("mean: expected finite values")

    def score(y, t):
        Phi, Sigma = process.transition(t)
        P = Phi.block
        cov = Sigma.block + np.einsum("...i,...j->...ij", P[..., :, 0], P[..., :, 0]) * data_var
        m = Phi.apply(process.lift(np.broadcast_to(mean, (y.shape[0], mean.size))))
        return -Kron(np.linalg.inv(cov)).apply(y - m)

    return score


def exact_score_elbo(process, mean, data_var):
    """``E[ELBO] = -H(x) - KL(q_T || pi)`` for data ``N(mean, data_var I)`` and the exact score.

    Parameters
    ----------
    process, mean, data_var
        As :func:`gaussian_data_score`.

    Returns
    -------
    float
        Nats per data point.
    """
    check_stationary_process(process)
    data_var = _check_data_var(data_var)
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    return float(-gaussian_entropy(data_var, mean.size) - np.sum(prior_kl(process, mean, data_var)))


def prior_term(process, x):
    """``E_{y_T | x} log pi(y_T)`` in closed form (hybrid start).

    Parameters
    ----------
    process : StationaryLinearSDE
    x : (n, d) array

    Returns
    -------
    (n,) array
    """
    K, d = process.n_blocks, x.shape[1]
    Phi, Sigma = process.transition(process.t_max)
    S_inv = np.linalg.inv(process.Sigma_inf)
    m = split_blocks(process, Phi.apply(process.lift(x)))
    return -0.5 * (kron_quadratic(S_inv, m) + d * np.trace(S_inv @ Sigma.block)) \
        - 0.5 * d * np.linalg.slogdet(process.Sigma_inf)[1] - 0.5 * K * d * LOG_2PI


def aux_term(process, v0):
    """``-log q(v0 | x)`` with ``q = N(0, initial_aux_var I)``.

    Parameters
    ----------
    process : StationaryLinearSDE
    v0 : (n, (K - 1) d) array

    Returns
    -------
    (n,) array
    """
    if v0.shape[1] == 0:
        return np.zeros(v0.shape[0])
    var = process.initial_aux_var
    return 0.5 * np.sum(v0**2, axis=1) / var + 0.5 * v0.shape[1] * (np.log(var) + LOG_2PI)


def call_model(function, y, t, name="score"):
    """``function(y, t)`` checked to be finite and of the state's shape ``(n, K d)``.

    Parameters
    ----------
    function : callable
    y : (n, D) array
    t : float or (n,) array
    name : str
        The argument name used in errors.

    Returns
    -------
    (n, D) array
    """
    out = np.asarray(function(y, t))
    if out.shape != y.shape:
        raise ValueError(f"{name}: expected an output of shape {y.shape}, got {out.shape}")
    if not np.all(np.isfinite(out)):
        times = np.atleast_1d(t)
        raise ValueError(f"{name}: returned non-finite values (times {times.min():.3g} to {times.max():.3g})")
    return out
