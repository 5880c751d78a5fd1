"""Base classes of forward Markov processes.

Conventions. A process is the SDE ``dX = b(X, t) dt + G(t) dW`` on ``t in (t_min, t_max]``. Its
generator is ``L_t f = b . grad f + 1/2 tr(G G^T Hess f)`` (the probabilists' convention: Brownian
motion ``dX = sigma dW`` has ``L = sigma^2/2 Laplacian`` and kernel ``N(x, sigma^2 t I)``).

A Gaussian process has linear drift ``b = F(t) x`` and an exact Gaussian transition
``X_t | X_s ~ N(Phi(t, s) X_s, Sigma(t, s))`` whose ``Phi`` and ``Sigma`` are structured operators
(:mod:`opdiff.linalg`). Processes with auxiliary variables (critically damped Langevin, fractional
diffusion) live on a state of dimension ``K d``; data enter through :meth:`GaussianProcess.lift`,
and ``transition(t)`` (with ``s = 0``) already integrates out the auxiliary start, so the law of the
state given the data ``x0`` alone is ``N(Phi lift(x0), Sigma)``.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_generator, check_count, check_finite, check_points, check_time, get_namespace

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class GeneratorCoefficients:
    """The coefficients of ``L_t = b . grad + 1/2 a : Hess``, ``a = G G^T``.

    Parameters
    ----------
    drift : callable
    covariance : callable

    Attributes
    ----------
    drift : callable
        ``drift(x (n, D), t) -> (n, D)``.
    covariance : callable
        ``covariance(t) -> LinearOperator`` for ``a(t) = G(t) G(t)^T``.
    """

    drift: object
    covariance: object


class MarkovProcess:
    """A forward Markov diffusion ``dX = b(X, t) dt + G(t) dW`` on ``(t_min, t_max]``."""

    t_min = 0.0
    t_max = 1.0
    is_manifold = False

    def check_time(self, t, name="t", n=None, include_min=False):
        """Validate ``t`` (a float or ``(n,)`` array) against this process's time range.

        ``include_min=True`` also accepts ``t_min`` (SDE coefficients are defined on ``[t_min, t_max]``).
        """
        return check_time(t, name, self.t_min, self.t_max, n=n, include_min=include_min)

    def drift(self, x, t):
        """Drift ``b(x, t)``; ``x (n, D) -> (n, D)``."""
        raise NotImplementedError

    def diffusion(self, t):
        """Diffusion coefficient ``G(t)`` as a structured operator."""
        raise NotImplementedError

    def sample(self, x0, t, rng=None):
        """Draw ``X_t`` given ``X_0 = x0``."""
        raise NotImplementedError

    def prior(self, dim=None):
        """The terminal law: an object with ``sample(n, dim=None, rng=None)`` and ``log_density(x)``.

        Parameters
        ----------
        dim : int, optional
            Bind the prior to points of this dimension.
        """
        raise NotImplementedError

    @property
    def generator(self):
        """:class:`GeneratorCoefficients` of this process (consumed by ``opdiff.operators.Generator``)."""
        return GeneratorCoefficients(drift=self.drift, covariance=self.diffusion_covariance)

    def diffusion_covariance(self, t):
        """``G(t) G(t)^T`` as a structured operator."""
        G = self.diffusion(t)
        return G @ G.transpose()


class GaussianPrior:
    """``N(0, Sigma)`` with a structured covariance: the terminal law of a Gaussian process.

    Parameters
    ----------
    covariance : callable
        ``covariance(dim) -> LinearOperator`` (the covariance on ``R^dim``).
    dim : int, optional
        The dimension of the points it draws (the state dimension: ``K d`` for processes with
        auxiliary blocks). When bound, :meth:`sample` needs no ``dim``; otherwise pass it there.
    """

    def __init__(self, covariance, dim=None):
        self._covariance = covariance
        self.dim = None if dim is None else check_count(dim, "dim")

    def __repr__(self):
        bound = "" if self.dim is None else f", dim={self.dim}"
        return f"GaussianPrior(N(0, {self._covariance(self.dim or 1)!r}){bound})"

    def covariance(self, dim):
        """The covariance on ``R^dim`` as a structured operator.

        Parameters
        ----------
        dim : int

        Returns
        -------
        LinearOperator
        """
        return self._covariance(dim)

    def sample(self, n, dim=None, rng=None, dtype=np.float64):
        """Draw ``n`` points of ``R^dim``.

        Parameters
        ----------
        n : int
        dim : int, optional
            Dimension of the points (default: the bound ``dim``; it must agree with it when both are given).
        rng : None, int or Generator
        dtype : float dtype

        Returns
        -------
        (n, dim) array
        """
        n = check_count(n, "n")
        dim = self._check_dim(dim)
        rng = as_generator(rng)
        noise = rng.standard_normal((n, dim)).astype(dtype, copy=False)
        return self._covariance(dim).cholesky().apply(noise)

    def _check_dim(self, dim):
        if dim is None:
            if self.dim is None:
                raise ValueError("dim: expected the dimension of the points to draw (this prior is not bound to one: "
                                 "pass sample(n, dim, rng) or build it with process.prior(dim=...)), got None")
            return self.dim
        dim = check_count(dim, "dim")
        if self.dim is not None and dim != self.dim:
            raise ValueError(f"dim: expected {self.dim} (the prior's dimension), got {dim}")
        return dim

    def log_density(self, x):
        """Log-density of the rows of ``x``.

        Parameters
        ----------
        x : (n, dim) array

        Returns
        -------
        (n,) array
        """
        x = check_points(x, "x", dim=self.dim)
        return gaussian_logpdf(x, self._covariance(x.shape[1]).cholesky())

    def score(self, x):
        """Score ``-Sigma^{-1} x``.

        Parameters
        ----------
        x : (n, dim) array

        Returns
        -------
        (n, dim) array
        """
        x = check_points(x, "x", dim=self.dim)
        chol = self._covariance(x.shape[1]).cholesky()
        return -chol.transpose().solve(chol.solve(x))


def gaussian_logpdf(residual, chol):
    """``log N(residual; 0, L L^T)`` row by row, for a structured Cholesky factor ``L``.

    Parameters
    ----------
    residual : (n, D) array
        Finite.
    chol : LinearOperator
        A structured factor acting on ``(n, D)`` rows.

    Returns
    -------
    (n,) array
        In the dtype of ``residual``.
    """
    if not (callable(getattr(chol, "solve", None)) and callable(getattr(chol, "logdet", None))):
        raise TypeError(f"chol: expected a structured operator with solve and logdet, got {type(chol).__name__}")
    if getattr(residual, "ndim", None) != 2:
        raise ValueError(f"residual: expected an (n, D) array, got shape {getattr(residual, 'shape', None)}")
    check_finite(residual, "residual")
    xp = get_namespace(residual)
    white = chol.solve(residual)
    dim = residual.shape[1]
    normaliser = xp.asarray(chol.logdet(dim) + 0.5 * dim * LOG_2PI, dtype=residual.dtype)  # float32 kept
    return -0.5 * xp.sum(white * white, axis=1) - normaliser


class GaussianProcess(MarkovProcess):
    """A process with linear drift and an exact Gaussian transition ``N(Phi x_s, Sigma)``.

    Subclasses implement :meth:`transition`, :meth:`drift_operator`, :meth:`diffusion` and
    :meth:`prior`; sampling, log-densities and scores of the transition follow here once.
    """

    #: Number of coordinate blocks of the state (1, or K for auxiliary-variable processes).
    n_blocks = 1
    #: Dimension the data must have (None: any; SAGD: the number of pixels).
    data_dim = None

    def check_data(self, x0, name="x0"):
        """Validate data points for this process (estimators call it on their training data).

        Parameters
        ----------
        x0 : (n, d) array
            With ``d = data_dim`` when the process fixes it.
        name : str
            Argument name for error messages.

        Returns
        -------
        (n, d) array
            Floating (float32 kept), finite.
        """
        return check_points(x0, name, dim=self.data_dim)

    def state_dim(self, data_dim):
        """Dimension of the state for data of dimension ``data_dim``."""
        return self.n_blocks * int(data_dim)

    def lift(self, x0):
        """Data ``(n, d)`` to the state ``(n, K d)`` with the auxiliary blocks at their mean (zero)."""
        if self.n_blocks == 1:
            return x0
        xp = get_namespace(x0)
        zeros = xp.zeros((x0.shape[0], (self.n_blocks - 1) * x0.shape[1]), dtype=x0.dtype)
        return xp.concatenate([x0, zeros], axis=1)

    def project(self, z):
        """State ``(n, K d)`` to its data block ``(n, d)``."""
        if self.n_blocks == 1:
            return z
        return z[:, : z.shape[1] // self.n_blocks]

    def check_transition_times(self, t, s=0.0):
        """Validate the times of :meth:`transition`: ``t_min <= s <= t <= t_max`` (floats or ``(n,)`` arrays).

        Returns
        -------
        t, s : float64 NumPy arrays (0-D or 1-D)
        """
        t = self.check_time(t, include_min=True)
        s = self.check_time(s, "s", include_min=True)
        if np.any(s > t):
            raise ValueError(f"s: expected s <= t, got s={s} and t={t}")
        return t, s

    def transition(self, t, s=0.0):
        """``(Phi, Sigma)`` of ``X_t | X_s`` (``s = 0``: given the data, auxiliary start integrated out).

        Parameters
        ----------
        t : float or (n,) array, in ``[t_min, t_max]``
        s : float or (n,) array, ``t_min <= s <= t``

        Returns
        -------
        Phi, Sigma : LinearOperator
            Batched (one per row) when ``t`` or ``s`` is an array.

        Raises
        ------
        ValueError
            Times out of range or non-finite (see :meth:`check_transition_times`).
        """
        raise NotImplementedError

    def drift_operator(self, t):
        """``F(t)`` with ``b(x, t) = F(t) x``, as a structured operator."""
        raise NotImplementedError

    def transition_kernel(self, t=None, bandwidth_factors=None, data_space=False):
        """The whitened Gaussian kernel of the transition (:mod:`opdiff.processes.kernels`).

        Parameters
        ----------
        t : float or (m,) array, optional
            Time(s), one per query row for an array (``None``: the time-free kernel).
        bandwidth_factors : (n,) array, optional
            Per-point factors ``lambda_i``: kernel ``N(Phi lift(x_i), lambda_i^2 Sigma)``.
        data_space : bool
            The data-space kernel ``N(x_i, lambda_i^2 C(t))`` (density of ``x_0``).

        Returns
        -------
        GaussianKernel
        """
        from .kernels import KronGaussianKernel

        t = None if t is None else self.check_time(t)
        return KronGaussianKernel(self, t, bandwidth_factors, data_space)

    def drift(self, x, t):
        return self.drift_operator(self.check_time(t, n=x.shape[0], include_min=True)).apply(x)

    def _check_pair(self, xt, x0, t):
        x0 = self.check_data(x0, "x0")
        xt = check_points(xt, "xt", dim=self.state_dim(x0.shape[1]))
        if xt.shape[0] != x0.shape[0]:
            raise ValueError(f"xt: expected {x0.shape[0]} rows to match x0, got {xt.shape[0]}")
        t = self.check_time(t, n=xt.shape[0])
        return xt, x0, t

    def sample(self, x0, t, rng=None, return_noise=False):
        """Draw the state at ``t`` given data ``x0 (n, d)``; returns ``(n, K d)`` (and the noise)."""
        x0 = self.check_data(x0, "x0")
        t = self.check_time(t, n=x0.shape[0])
        rng = as_generator(rng)
        Phi, Sigma = self.transition(t)
        z0 = self.lift(x0)
        noise = rng.standard_normal(z0.shape).astype(z0.dtype, copy=False)
        xt = Phi.apply(z0) + Sigma.cholesky().apply(noise)
        return (xt, noise) if return_noise else xt

    def transition_logpdf(self, xt, x0, t):
        """``log p_t(xt | x0)``; ``xt (n, K d)``, ``x0 (n, d)`` -> ``(n,)``."""
        xt, x0, t = self._check_pair(xt, x0, t)
        Phi, Sigma = self.transition(t)
        return gaussian_logpdf(xt - Phi.apply(self.lift(x0)), Sigma.cholesky())

    def transition_score(self, xt, x0, t):
        """``grad_xt log p_t(xt | x0) = -Sigma^{-1} (xt - Phi x0)``: the DSM target; ``(n, K d)``."""
        xt, x0, t = self._check_pair(xt, x0, t)
        Phi, Sigma = self.transition(t)
        chol = Sigma.cholesky()
        return -chol.transpose().solve(chol.solve(xt - Phi.apply(self.lift(x0))))

    def marginal_moments(self, mean0, cov0, t):
        """Mean ``(D,)`` and covariance ``(D, D)`` at ``t`` of a process started from ``N(mean0, cov0)`` data.

        Dense; for small dimensions (mixture references, tests).
        """
        mean0 = np.asarray(mean0, dtype=np.float64)
        d = mean0.shape[0]
        D = self.state_dim(d)
        Phi, Sigma = self.transition(float(t))
        lift = np.zeros((D, d))
        lift[:d, :d] = np.eye(d)
        P = Phi.dense(D) @ lift
        return P @ mean0, P @ np.asarray(cov0) @ P.T + Sigma.dense(D), P
