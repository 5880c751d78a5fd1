"""Gaussian closed forms of the likelihood bound of stationary linear SDEs (MDM, arXiv 2302.07261).

For data ``N(mean, data_var I)`` and the exact score, ``E[ELBO] = -H(x) - KL(q_T || pi) + O(eps)``; the prior
term ``KL(q_T(. | x) || pi)`` is in closed form with the stationary identity
``Cov(y_T | x) = Sigma_inf + Phi (Sigma_0 - Sigma_inf) Phi^T`` (hybrid start ``Sigma_0 = diag(data_var, aux I)``).
"""
import numpy as np
from scipy.linalg import expm

from ..backend import check_count, check_points
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


class GaussianData:
    """A Gaussian data law ``N(mean, cov)`` and its exact forward marginals under stationary linear SDEs.

    Under ``B (x) I_d`` dynamics (hybrid start) the state of data ``x ~ N(mu, C)`` is Gaussian at every time:
    ``y_t ~ N((Phi e_0) (x) mu, Sigma(t) (x) I_d + (Phi e_0)(Phi e_0)^T (x) C)``. In the eigenbasis
    ``C = U diag(lam) U^T`` this splits into ``d`` independent ``K x K`` problems with covariances
    ``C_j(t) = Sigma(t) + lam_j p p^T`` (``p = Phi e_0``), so the score, its Jacobian and its derivative
    along a change of the process cost ``O(n d K^3)`` plus two rotations.

    The exact score of a Gaussian fitted to the data is the natural base of a score network (the network
    learns only the correction; EDM's ``c_skip``, arXiv 2206.00364, is the isotropic scalar case): see
    ``base`` of :func:`opdiff.estimators.learned_sde.dsm_elbo_with_gradients`.

    Parameters
    ----------
    mean : float or (d,) array
        Finite data mean (a float: the same mean in every coordinate; ``d`` is then read from the states).
    cov : float, (d,) array or (d, d) array
        A variance ``>= 0`` for every coordinate, one variance per coordinate, or a symmetric positive
        semi-definite covariance.

    Attributes
    ----------
    mean : float or (d,) array
    variances : float or (d,) array
        Eigenvalues ``lam`` of the covariance.
    rotation : (d, d) array or None
        Eigenvectors ``U`` (None for a diagonal covariance: the identity).
    """

    def __init__(self, mean, cov):
        mean = np.asarray(mean, dtype=np.float64)
        if mean.ndim > 1 or not np.all(np.isfinite(mean)):
            raise ValueError(f"mean: expected a finite float or (d,) array, got shape {mean.shape}")
        cov = np.asarray(cov, dtype=np.float64) if np.ndim(cov) else _check_data_var(cov)
        rotation = None
        if np.ndim(cov) == 2:
            if cov.shape[0] != cov.shape[1] or not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T):
                raise ValueError(f"cov: expected a finite symmetric (d, d) covariance, got shape {cov.shape}")
            cov, rotation = np.linalg.eigh(0.5 * (cov + cov.T))
            if cov[0] < -1e-10 * max(cov[-1], 1.0):
                raise ValueError(f"cov: expected a positive semi-definite covariance, smallest eigenvalue {cov[0]}")
            cov = np.maximum(cov, 0.0)
        elif np.ndim(cov) == 1 and (not np.all(np.isfinite(cov)) or np.any(cov < 0)):
            raise ValueError("cov: expected finite variances >= 0")
        sizes = {np.size(a) for a in (mean, cov) if np.ndim(a)}
        if len(sizes) > 1:
            raise ValueError(f"cov: expected the dimension of mean ({mean.size}), got {np.shape(cov)}")
        self.mean, self.variances, self.rotation = mean, cov, rotation

    @classmethod
    def fit(cls, X):
        """The Gaussian with the sample mean and covariance of ``X (n, d)`` (``n >= 2``).

        Parameters
        ----------
        X : (n, d) array

        Returns
        -------
        GaussianData
        """
        X = check_points(X, "X").astype(np.float64)
        if X.shape[0] < 2:
            raise ValueError(f"X: expected at least 2 points to estimate a covariance, got {X.shape[0]}")
        return cls(X.mean(axis=0), np.atleast_2d(np.cov(X, rowvar=False)))

    # -- the rotated K x K problems ----------------------------------------------------------------------
    def _to_eigenbasis(self, z):
        return z if self.rotation is None else z @ self.rotation

    def _from_eigenbasis(self, z):
        return z if self.rotation is None else z @ self.rotation.T

    def _rotated_mean(self, d):
        return self._to_eigenbasis(np.broadcast_to(self.mean, (d,)))

    def _precisions(self, P, Sigma, d):
        """``C_j(t)^{-1}`` as ``(n, d, K, K)`` from the blocks ``P``, ``Sigma (n, K, K)``."""
        p = P[:, :, 0]
        lam = np.broadcast_to(self.variances, (d,))
        C = Sigma[:, None] + lam[None, :, None, None] * np.einsum("ni,nj->nij", p, p)[:, None]
        return np.linalg.inv(C)

    @staticmethod
    def _apply(precision, z):
        """``C_j^{-1} z_j`` for rotated blocks ``z (n, K, d)``; ``(n, K, d)``."""
        return np.einsum("njkl,nlj->nkj", precision, z)

    def block_score(self, P, Sigma, y):
        """Score and precisions from transition blocks (one per row).

        Parameters
        ----------
        P, Sigma : (n, K, K) arrays
            ``Phi(t)`` and the hybrid-start ``Sigma(t)`` of each row.
        y : (n, K, d) array
            States as blocks.

        Returns
        -------
        score : (n, K, d) array
        precision : (n, d, K, K) array
            ``C_j(t)^{-1}`` in the eigenbasis (for :meth:`score_vjp` and :meth:`score_derivative`).
        """
        d = y.shape[2]
        precision = self._precisions(P, Sigma, d)
        residual = self._to_eigenbasis(y) - P[:, :, :1] * self._rotated_mean(d)
        return self._from_eigenbasis(-self._apply(precision, residual)), precision

    def score_vjp(self, precision, v):
        """``(d score / d y)^T v = -C^{-1} v`` (the Jacobian is symmetric); ``v (n, K, d)`` -> ``(n, K, d)``.

        Parameters
        ----------
        precision : (n, d, K, K) array
            From :meth:`block_score`.
        v : (n, K, d) array

        Returns
        -------
        (n, K, d) array
        """
        return self._from_eigenbasis(-self._apply(precision, self._to_eigenbasis(v)))

    def score_derivative(self, precision, P, dP, dSigma, y):
        """Derivative of the score at fixed ``y`` along a change ``(dP, dSigma)`` of the transition.

        ``s = -C^{-1} (y - p mu)`` gives ``ds = C^{-1} dC C^{-1} (y - p mu) + C^{-1} dp mu`` with
        ``dC_j = dSigma + lam_j (dp p^T + p dp^T)``.

        Parameters
        ----------
        precision : (n, d, K, K) array
            From :meth:`block_score`.
        P, dP, dSigma : (n, K, K) arrays
        y : (n, K, d) array

        Returns
        -------
        (n, K, d) array
        """
        d = y.shape[2]
        mu = self._rotated_mean(d)
        p, dp = P[:, :, 0], dP[:, :, 0]
        lam = np.broadcast_to(self.variances, (d,))
        dC = dSigma[:, None] + lam[None, :, None, None] * (np.einsum("ni,nj->nij", dp, p)
                                                            + np.einsum("ni,nj->nij", p, dp))[:, None]
        weighted = self._apply(precision, self._to_eigenbasis(y) - p[:, :, None] * mu)
        inner = np.einsum("njkl,nlj->nkj", dC, weighted) + dp[:, :, None] * mu
        return self._from_eigenbasis(self._apply(precision, inner))

    def marginal_score(self, process):
        """The exact score ``score(y, t)`` of the forward marginals under ``process``.

        Parameters
        ----------
        process : StationaryLinearSDE

        Returns
        -------
        callable
            ``score(y (m, K d), t) -> (m, K d)`` (one time per row allowed).
        """
        check_stationary_process(process)

        def score(y, t):
            y = np.asarray(y, dtype=np.float64)
            times = np.broadcast_to(np.asarray(t, dtype=np.float64), (y.shape[0],))
            Phi, Sigma = process.transition(times)
            blocks = split_blocks(process, y)
            return self.block_score(Phi.block, Sigma.block, blocks)[0].reshape(y.shape)

        return score


def gaussian_data_score(process, mean, data_var):
    """The exact score ``score(y, t)`` of the forward marginals of data ``N(mean, data_var I_d)``.

    Per coordinate ``j`` the state is ``N(Phi[:, 0] mean_j, Phi S0 Phi^T + Sigma)`` (``Kron`` structure,
    hybrid start, one time per row allowed); :class:`GaussianData` for a general covariance.

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
    check_stationary_process(process)
    return GaussianData(mean, _check_data_var(data_var)).marginal_score(process)


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
