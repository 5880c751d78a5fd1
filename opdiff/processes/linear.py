"""Stationary linear SDEs with auxiliary variables: VP, CLD, ALDA, MALDA and learned (Q, D).

The "complete recipe" parameterisation (MDM, arXiv 2302.07261) of every linear SDE whose
stationary law is ``N(0, Sigma_inf (x) I_d)``::

    dz = -beta(t) (Q + D) Sigma_inf^{-1} z dt + sqrt(2 beta(t) D) dW,     Q = -Q^T,  D >= 0,

on the state ``z = (x, v_1, ..., v_{K-1})`` stored flat as ``(n, K d)`` (blocks one after the other).
Formulas (three):

1. drift ``F0 = -(Q + D) Sigma_inf^{-1}``, diffusion ``G0 G0^T = 2 D``;
2. stationarity ``F0 Sigma_inf + Sigma_inf F0^T + 2 D = -(Q + Q^T) = 0``;
3. the hybrid start ``Sigma_0 = blockdiag(0, initial_aux_var I)``: conditioning on the data
   ``x`` alone, ``z_t | x ~ N(Phi [x, 0], Phi Sigma_0 Phi^T + Sigma(t, 0))``.

Transitions: ``Phi = expm(tau F0)`` with ``tau = int_s^t beta`` and, because the process is
stationary, ``Sigma(t, s) = Sigma_inf - Phi Sigma_inf Phi^T`` (the Lyapunov solution; stable for any
``tau``, unlike the Van Loan block whose entries grow like ``exp(tau |Re eig F0|)`` and lose all
digits for fast-mixing processes at large ``tau``). Below ``tau ||F0|| = SERIES_THRESHOLD`` the
covariance is summed as the Taylor series of :mod:`opdiff.linalg.transitions` instead, which keeps
relative precision on entries vanishing like ``tau^3`` (the CLD position block).
"""
import numpy as np

from ..backend import check_choice, check_count, check_positive
from scipy.linalg import expm

from ..linalg import Kron
from ..linalg.transitions import SERIES_THRESHOLD, series_covariance
from .base import GaussianPrior, GaussianProcess

#: Relative tolerance of the structural checks on (Q, D, Sigma_inf).
STRUCTURE_RTOL = 1e-10


def _square(matrix, name):
    arr = np.asarray(matrix, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name}: expected a square (K, K) matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite entries, got {arr.tolist()}")
    return arr


def _symmetric_sqrt(matrix):
    """Symmetric PSD square root (negative round-off eigenvalues clipped to zero)."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


class StationaryLinearSDE(GaussianProcess):
    """``dz = -beta(t) (Q + D) Sigma_inf^{-1} z dt + sqrt(2 beta(t) D) dW`` with stationary law ``N(0, Sigma_inf)``.

    Parameters
    ----------
    Q : (K, K) array
        Skew-symmetric mixing matrix.
    D : (K, K) array
        Symmetric positive semi-definite diffusion matrix.
    Sigma_inf : (K, K) array
        Symmetric positive definite stationary covariance (per data coordinate).
    beta_min, beta_max : float
        ``beta(t) = beta_min + t (beta_max - beta_min)`` (``schedule="linear"``) or ``beta_min``
        (``schedule="constant"``).
    schedule : {"linear", "constant"}
    initial_aux_var : float
        Variance of the auxiliary variables at time 0 (the hybrid start ``v_0 ~ N(0, aux I)``).
    T : float
        Terminal time.

    Notes
    -----
    ``transition(t, s)`` returns ``(Phi, Sigma)`` as :class:`opdiff.linalg.Kron` operators on the
    state ``(n, K d)``. With ``s = 0`` the conditioning is on the data block alone and ``Sigma``
    includes ``Phi Sigma_0 Phi^T``; with ``s > 0`` it is on the whole state ``z_s``.
    """

    def __init__(self, Q, D, Sigma_inf, beta_min=0.1, beta_max=10.0, schedule="linear",
                 initial_aux_var=0.01, T=1.0):
        Q = _square(Q, "Q")
        D = _square(D, "D")
        Sigma_inf = _square(Sigma_inf, "Sigma_inf")
        K = Q.shape[0]
        for name, arr in (("D", D), ("Sigma_inf", Sigma_inf)):
            if arr.shape != (K, K):
                raise ValueError(f"{name}: expected shape {(K, K)} to match Q, got {arr.shape}")
        scale_q = max(1.0, float(np.max(np.abs(Q))))
        skew = float(np.max(np.abs(Q + Q.T)))
        if skew > STRUCTURE_RTOL * scale_q:
            raise ValueError(f"Q: expected a skew-symmetric (K, K) matrix, max |Q + Q^T| = {skew:.3e}")
        scale_d = max(1.0, float(np.max(np.abs(D))))
        asym = float(np.max(np.abs(D - D.T)))
        if asym > STRUCTURE_RTOL * scale_d:
            raise ValueError(f"D: expected a symmetric positive semi-definite (K, K) matrix, "
                             f"max |D - D^T| = {asym:.3e}")
        min_d = float(np.min(np.linalg.eigvalsh(D)))
        if min_d < -STRUCTURE_RTOL * scale_d:
            raise ValueError(f"D: expected a positive semi-definite (K, K) matrix, smallest eigenvalue = {min_d:.3e}")
        asym = float(np.max(np.abs(Sigma_inf - Sigma_inf.T)))
        if asym > STRUCTURE_RTOL * max(1.0, float(np.max(np.abs(Sigma_inf)))):
            raise ValueError(f"Sigma_inf: expected a symmetric positive definite (K, K) matrix, "
                             f"max |S - S^T| = {asym:.3e}")
        min_s = float(np.min(np.linalg.eigvalsh(Sigma_inf)))
        if min_s <= 0:
            raise ValueError(f"Sigma_inf: expected a symmetric positive definite (K, K) matrix, "
                             f"smallest eigenvalue = {min_s:.3e}")
        self.schedule = check_choice(schedule, "schedule", {"linear", "constant"})
        self.beta_min = check_positive(beta_min, "beta_min")
        self.beta_max = check_positive(beta_max, "beta_max")
        if self.schedule == "linear" and self.beta_max < self.beta_min:
            raise ValueError(f"beta_max: expected >= beta_min={beta_min}, got {beta_max}")
        self.initial_aux_var = check_positive(initial_aux_var, "initial_aux_var", strict=False)
        self.t_max = check_positive(T, "T")
        self.Q = 0.5 * (Q - Q.T)
        self.D = 0.5 * (D + D.T)
        self.Sigma_inf = 0.5 * (Sigma_inf + Sigma_inf.T)
        self.n_blocks = K
        self.F0 = -(self.Q + self.D) @ np.linalg.inv(self.Sigma_inf)
        self.GGT0 = 2.0 * self.D
        self.G0 = _symmetric_sqrt(self.GGT0)
        self.initial_cov = np.zeros((K, K))
        self.initial_cov[1:, 1:] = self.initial_aux_var * np.eye(K - 1)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def vp(cls, **kwargs):
        """VPSDE: ``K = 1``, ``Q = 0``, ``D = 1/2``, ``Sigma_inf = 1`` (drift ``-beta/2``)."""
        return cls(np.zeros((1, 1)), 0.5 * np.ones((1, 1)), np.ones((1, 1)), **kwargs)

    @classmethod
    def cld(cls, mass=1.0, gamma=None, **kwargs):
        """Critically damped Langevin: ``Q = [[0, -1], [1, 0]]``, ``D = diag(0, Gamma)``, ``Sigma_inf = diag(1, M)``.

        ``gamma=None`` gives critical damping ``Gamma = 2 sqrt(M)``; drift ``dx = v/M``,
        ``dv = -x - (Gamma/M) v``.
        """
        mass = check_positive(mass, "mass")
        gamma = 2.0 * np.sqrt(mass) if gamma is None else check_positive(gamma, "gamma")
        Q = np.array([[0.0, -1.0], [1.0, 0.0]])
        return cls(Q, np.diag([0.0, gamma]), np.diag([1.0, mass]), **kwargs)

    @classmethod
    def alda(cls, mass=1.0, gamma=1.0, psi=1.0, **kwargs):
        """Accelerated Langevin (third order, ``K = 3``), ``L = 1/M``.

        ``Q = [[0, -1/L, 0], [1/L, 0, -gamma], [0, gamma, 0]]``, ``D = diag(0, 0, psi/L)``,
        ``Sigma_inf = diag(1, M, M)``.
        """
        mass = check_positive(mass, "mass")
        gamma = check_positive(gamma, "gamma")
        psi = check_positive(psi, "psi")
        L = 1.0 / mass
        Q = np.array([[0.0, -1.0 / L, 0.0], [1.0 / L, 0.0, -gamma], [0.0, gamma, 0.0]])
        return cls(Q, np.diag([0.0, 0.0, psi / L]), np.diag([1.0, mass, mass]), **kwargs)

    @classmethod
    def malda(cls, mass=1.0, gamma=None, **kwargs):
        """Modified ALDA (``K = 3``): ``Q`` with -1 above / +1 below the diagonal,
        ``D = diag(0, Gamma, Gamma)`` (``Gamma = 2 sqrt(M)`` by default), ``Sigma_inf = diag(1, M, M)``."""
        mass = check_positive(mass, "mass")
        gamma = 2.0 * np.sqrt(mass) if gamma is None else check_positive(gamma, "gamma")
        Q = np.array([[0.0, -1.0, -1.0], [1.0, 0.0, -1.0], [1.0, 1.0, 0.0]])
        return cls(Q, np.diag([0.0, gamma, gamma]), np.diag([1.0, mass, mass]), **kwargs)

    @classmethod
    def learned(cls, G, B, eps=1e-3, Sigma_inf=None, **kwargs):
        """Learned process: ``Q = G - G^T``, ``D = B B^T + eps I`` (``Sigma_inf = I`` by default)."""
        G = _square(G, "G")
        B = np.asarray(B, dtype=np.float64)
        if B.ndim != 2 or B.shape[0] != G.shape[0] or not np.all(np.isfinite(B)):
            raise ValueError(f"B: expected a finite ({G.shape[0]}, r) matrix, got shape {B.shape}")
        eps = check_positive(eps, "eps", strict=False)
        K = G.shape[0]
        Sigma_inf = np.eye(K) if Sigma_inf is None else Sigma_inf
        return cls(G - G.T, B @ B.T + eps * np.eye(K), Sigma_inf, **kwargs)

    # ------------------------------------------------------------------ schedule
    def beta(self, t):
        """``beta(t)``; float or ``(n,)`` array."""
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "constant":
            return self.beta_min * np.ones_like(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t, s=0.0):
        """``tau = int_s^t beta(u) du``."""
        t = np.asarray(t, dtype=np.float64)
        s = np.asarray(s, dtype=np.float64)
        if self.schedule == "constant":
            return self.beta_min * (t - s)
        return self.beta_min * (t - s) + 0.5 * (self.beta_max - self.beta_min) * (t**2 - s**2)

    def stationarity_residual(self):
        """``max |F0 Sigma_inf + Sigma_inf F0^T + 2 D|`` (zero up to round-off)."""
        residual = self.F0 @ self.Sigma_inf + self.Sigma_inf @ self.F0.T + self.GGT0
        return float(np.max(np.abs(residual)))

    # ------------------------------------------------------------------ contract
    def transition(self, t, s=0.0):
        """``(Phi, Sigma)`` as :class:`Kron` operators (batched when ``t`` or ``s`` is an array).

        ``s = 0``: conditioning on the data block only (hybrid start, see the module notes).
        ``s > 0``: conditioning on the whole state ``z_s``.
        """
        t, s = self.check_transition_times(t, s)
        batched = t.ndim > 0 or s.ndim > 0
        t_b, s_b = np.broadcast_arrays(np.atleast_1d(t), np.atleast_1d(s))
        Phi, Sigma = self._transition_blocks(self.integrated_beta(t_b, s_b))
        hybrid = np.einsum("nij,jk,nlk->nil", Phi, self.initial_cov, Phi)
        Sigma = Sigma + np.where((s_b == 0)[:, None, None], hybrid, 0.0)
        Sigma = 0.5 * (Sigma + np.swapaxes(Sigma, 1, 2))
        if not batched:
            return Kron(Phi[0]), Kron(Sigma[0])
        return Kron(Phi), Kron(Sigma)

    def transition_from_state(self, t, s=0.0):
        """``(Phi, Sigma)`` of ``z_t | z_s`` conditioning on the whole state, also at ``s = 0``."""
        t, s = self.check_transition_times(t, s)
        t_b, s_b = np.broadcast_arrays(np.atleast_1d(t), np.atleast_1d(s))
        Phi, Sigma = self._transition_blocks(self.integrated_beta(t_b, s_b))
        if t.ndim == 0 and s.ndim == 0:
            return Kron(Phi[0]), Kron(Sigma[0])
        return Kron(Phi), Kron(Sigma)

    def _transition_blocks(self, taus):
        """``(Phi, Sigma)`` blocks ``(n, K, K)`` for integrated times ``taus (n,)`` (state conditioning).

        Computed once per distinct ``tau``.
        """
        unique, inverse = np.unique(taus, return_inverse=True)
        norm = np.linalg.norm(self.F0, 2)
        Phi = expm(unique[:, None, None] * self.F0)
        Sigma = self.Sigma_inf - np.einsum("nij,jk,nlk->nil", Phi, self.Sigma_inf, Phi)
        for i in np.flatnonzero(unique * norm < SERIES_THRESHOLD):
            Sigma[i] = series_covariance(self.F0, self.GGT0, unique[i])
        return Phi[inverse.ravel()], Sigma[inverse.ravel()]

    def drift_operator(self, t):
        """``F(t) = beta(t) F0`` as a :class:`Kron` operator."""
        beta = self.beta(t)
        return Kron(beta[..., None, None] * self.F0)

    def diffusion(self, t):
        """``G(t) = sqrt(beta(t)) (2 D)^{1/2}`` (symmetric square root) as a :class:`Kron` operator."""
        beta = self.beta(self.check_time(t, include_min=True))
        return Kron(np.sqrt(beta)[..., None, None] * self.G0)

    def diffusion_covariance(self, t):
        """``G G^T = 2 beta(t) D`` as a :class:`Kron` operator."""
        return Kron(self.beta(self.check_time(t, include_min=True))[..., None, None] * self.GGT0)

    def prior(self, dim=None):
        """The stationary law ``N(0, Sigma_inf (x) I_d)`` on the state ``R^{K d}``.

        Parameters
        ----------
        dim : int, optional
            Bind the prior to states of dimension ``dim`` (``K d``; a multiple of ``K``).

        Returns
        -------
        GaussianPrior
        """
        if dim is not None and check_count(dim, "dim") % self.n_blocks:
            raise ValueError(f"dim: expected a state dimension K d, a multiple of K={self.n_blocks}, got {dim}")
        return GaussianPrior(lambda d: Kron(self.Sigma_inf), dim=dim)

    def __repr__(self):
        return (f"StationaryLinearSDE(K={self.n_blocks}, schedule={self.schedule!r}, beta_min={self.beta_min}, "
                f"beta_max={self.beta_max}, initial_aux_var={self.initial_aux_var}, T={self.t_max})")
