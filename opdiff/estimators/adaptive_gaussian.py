"""Adaptive smoothing for every Gaussian process (CLD, MALDA, SAGD, fractional, ...): the per-point kernels.

Training point ``x_i`` with bandwidth factor ``lambda_i`` gets the kernel

    k_i(z) = N(z; Phi(t) lift(x_i), lambda_i^2 Sigma(t)),

the semantics of the scalar case (``N(a x_i, lambda_i^2 a^2 sigma^2 I)``) carried over unchanged:
the noise of the transition is scaled by ``lambda_i``, the mean is not. It is exactly the
transition kernel at time ``t`` of the same linear SDE with diffusion ``lambda_i G(t)`` (and, for
auxiliary-variable processes, auxiliary start variance ``lambda_i^2 Sigma_0``): ``Sigma(t)`` solves
``dSigma/dt = F Sigma + Sigma F^T + G G^T``, ``Sigma(0) = Sigma_0``, which is linear in
``(G G^T, Sigma_0)``, while ``Phi(t)`` does not depend on ``G``. For BM and VE it is also the
original process at the time whose noise level is ``lambda_i sigma(t)``. So ``rho_t`` is still a
mixture of (Gaussian) transition kernels and its ``score`` and ``log_density`` below are exact.

Why not the transition at a per-point time ``t lambda_i^2``: clipping into ``(t_min, t_max]``
flattens the factors near both ends, and for auxiliary-variable processes the data-block variance
is not linear in ``t`` (CLD: ``~ t^3`` at small ``t``), so the power law in the pilot density
would no longer be a power law in the bandwidth.

Evaluation: whiten once with the Cholesky factor ``L`` of ``Sigma(t)`` (``w = L^{-1} z``,
``c_i = L^{-1} Phi lift(x_i)``); then the log-kernel of a pair is ``-|w - c_i|^2 / (2 lambda_i^2)``
with per-point log-normaliser ``-1/2 log det(lambda_i^2 Sigma)`` (a pseudo-determinant for
rank-deficient SAGD), and one :func:`opdiff.reductions.pairwise_reduction` (chunked, log-domain)
returns the softmax means of ``(1 / lambda_i^2, x_i / lambda_i^2, x_i)``, from which (``c_i`` is
linear in ``x_i``)

    score(z) = -Sigma^{-1} (E[1/lambda^2] z - Phi lift(E[x_0 / lambda^2])),     denoise(z) = E[x_0].

The data-space view (density of ``x_0``, used by the leave-one-out pilot and by the held-out
selection) is the data block of the transition divided by its mean scale:
``N(x; x_i, lambda_i^2 C(t))`` with ``C = Sigma_00 / Phi_00^2`` (auxiliary-variable processes:
``Phi lift(x) = Phi_00 x`` on the data block) or ``Sigma / a^2`` (SAGD).
"""
import numpy as np

from ..backend import get_namespace
from ..linalg import Kron, Scalar
from ..processes.base import LOG_2PI
from ..reductions import pairwise_reduction
from ..reductions._numpy import squared_distances


def data_space_covariance(process, t):
    """Covariance ``C(t)`` of the data-space kernel ``N(x_i, C(t))`` on ``R^d``.

    Parameters
    ----------
    process : GaussianProcess
    t : float or (m,) array
        Times (an array gives a batched operator, one per time).

    Returns
    -------
    LinearOperator
        ``Scalar(Sigma_00 / Phi_00^2)`` for :class:`~opdiff.linalg.Kron` transitions, ``Sigma / a^2``
        for a scalar ``Phi = a I`` (e.g. SAGD).
    """
    Phi, Sigma = process.transition(t)
    if isinstance(Sigma, Kron):
        Phi_block = Phi.block if isinstance(Phi, Kron) else None
        if Phi_block is None:
            raise TypeError(f"process: expected a Kron transition matrix with a Kron covariance, "
                            f"got {type(Phi).__name__}")
        scale = Phi_block[..., 0, 0]
        variance = Sigma.block[..., 0, 0]
    elif isinstance(Phi, Scalar):
        scale, variance = Phi.c, None
    else:
        raise TypeError(f"process: adaptive smoothing needs a Kron or scalar transition matrix, "
                        f"got {type(Phi).__name__}")
    if np.any(np.asarray(scale) == 0):
        raise ValueError(f"t: the data block of the transition vanishes at t={t} (Phi_00 = 0)")
    inverse_square = Scalar(1.0 / np.asarray(scale, dtype=np.float64) ** 2)
    return Scalar(variance / scale**2) if variance is not None else Sigma @ inverse_square


def data_space_noise_level(process, t, data_dim):
    """Geometric-mean standard deviation ``det(C(t))^{1/(2d)}`` of the data-space kernel; ``t (m,)`` -> ``(m,)``."""
    covariance = data_space_covariance(process, np.asarray(t, dtype=np.float64))
    dim = getattr(covariance, "dim", data_dim)
    return np.exp(np.asarray(covariance.logdet(dim), dtype=np.float64) / (2.0 * dim))


def time_at_noise_level(process, h, data_dim, n_grid=256):
    """Times whose data-space noise level (:func:`data_space_noise_level`) is ``h``, by interpolation.

    The level is tabulated on a geometric grid of ``n_grid`` times spanning the process's range
    and inverted on its increasing part (log-log interpolation, clipped at the ends).
    """
    low = process.t_min if process.t_min > 0 else process.t_max * 1e-6
    grid = np.geomspace(low, process.t_max, int(n_grid))
    level = data_space_noise_level(process, grid, data_dim)
    keep = np.concatenate([[True], np.diff(np.maximum.accumulate(level)) > 0])
    return np.exp(np.interp(np.log(np.asarray(h, dtype=np.float64)), np.log(level[keep]), np.log(grid[keep])))


class AdaptiveGaussianKernels:
    """The adaptive mixture of a Gaussian process at one time ``t`` (see the module notes).

    Parameters
    ----------
    process : GaussianProcess
    data : (n, d) array
    log_weights : (n,) array or None
        Normalised log-weights (``None``: uniform).
    t : float
    factors : (n,) array or None
        Bandwidth factors ``lambda_i`` (``None``: all one).
    data_space : bool
        The density of ``x_0`` (kernels ``N(x_i, lambda_i^2 C(t))`` on ``R^d``) instead of the
        forward marginal of the state.
    """

    def __init__(self, process, data, log_weights, t, factors=None, data_space=False):
        n = data.shape[0]
        if data_space:
            self.mean_map = lambda x: x
            covariance = data_space_covariance(process, float(t))
        else:
            Phi, covariance = process.transition(float(t))
            self.mean_map = lambda x: Phi.apply(process.lift(x))
        centres = self.mean_map(data)
        self.dim = centres.shape[1]
        self.chol = covariance.cholesky()
        squared = np.ones(n) if factors is None else np.asarray(factors, dtype=np.float64) ** 2
        log_weights = np.full(n, -np.log(n)) if log_weights is None else np.asarray(log_weights, dtype=np.float64)
        # per-point normaliser -1/2 log det(lambda_i^2 Sigma) (pseudo-determinant on the retained band)
        log_normaliser = -0.5 * np.asarray((covariance @ Scalar(squared)).logdet(self.dim), dtype=np.float64)
        self.log_weights = log_weights + np.broadcast_to(log_normaliser, (n,))
        white = self.chol.solve(centres)
        self.origin = white.mean(axis=0)  # distances by matrix products lose less on centred points
        self.white = white - self.origin
        xp = get_namespace(white)
        inverse = xp.asarray(1.0 / squared, dtype=white.dtype)
        self.inverse_squared = inverse
        # softmax means of (1 / lambda^2, x / lambda^2, x): the score needs no per-pair state vectors
        self.values = xp.concatenate([inverse[:, None], data * inverse[:, None].astype(data.dtype), data], axis=1)
        self.data_dim = data.shape[1]

    def reduce(self, z, exclude_self=False):
        """``(log rho(z) (m,), score (m, D), posterior mean of x_0 (m, d))`` at validated ``z (m, D)``.

        ``score = -Sigma^{-1} (E[1/lambda^2] z - Phi lift(E[x_0 / lambda^2]))``.
        """
        w = self.chol.solve(z) - self.origin
        inverse = self.inverse_squared
        n, p = self.white.shape[0], self.values.shape[1]

        def block(queries, points, rows):
            return -0.5 * squared_distances(queries, points, get_namespace(queries)) * inverse[None, :], None

        # live per query row: distances, scaled copy, the reduction's copy and weights (b, n), and the mean (b, p)
        reduction = pairwise_reduction(w, self.white, block, values=self.values, log_weights=self.log_weights,
                                       exclude_self=exclude_self, row_bytes=8 * (5 * n + p))
        mean = reduction.mean
        d = self.data_dim
        log_density = reduction.log_sum - 0.5 * self.dim * LOG_2PI
        residual = mean[:, :1].astype(z.dtype, copy=False) * z - self.mean_map(mean[:, 1:1 + d])
        score = -self.chol.transpose().solve(self.chol.solve(residual))
        return log_density, score, mean[:, 1 + d:]

    def log_density(self, z):
        return self.reduce(z)[0]

    def score(self, z):
        return self.reduce(z)[1]

    def denoise(self, z):
        return self.reduce(z)[2]


def adaptive_gaussian_sample(process, points, t, factors, rng):
    """``Phi lift(x) + lambda L eps``: exact draws of the per-point kernels at time ``t``; ``(k, D)``."""
    Phi, Sigma = process.transition(float(t))
    state = Phi.apply(process.lift(points))
    noise = rng.standard_normal(state.shape).astype(state.dtype, copy=False)
    scaled = Sigma.cholesky().apply(noise) * np.asarray(factors, dtype=np.float64)[:, None].astype(state.dtype)
    return state + scaled
