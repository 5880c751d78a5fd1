"""Brownian motion on a Riemannian manifold: the heat semigroup as a forward noising process.

Convention (the same as :class:`opdiff.processes.BrownianMotion`): ``dX = g(t) dW`` on the manifold,
generator ``L_t = g(t)^2 / 2 Laplace-Beltrami``. The transition from ``0`` to ``t`` is the heat
kernel ``exp(s(t) Laplace-Beltrami)`` at heat time

    s(t) = (1/2) integral_0^t g(u)^2 du     (constant g = sigma:  s = sigma^2 t / 2),

so on ``R^d`` the transition is ``N(x, 2 s I) = N(x, sigma^2 t I)``, and ``FlatTorus(1)`` and
``Hypersphere(1)`` give the same process on the circle.
"""
import math

import numpy as np

from ..backend import as_generator, check_choice, check_count, check_positive, get_namespace
from ..linalg import Scalar
from .base import MarkovProcess


class UniformPrior:
    """The normalised Riemannian volume of a compact manifold: the terminal law of manifold BM.

    Parameters
    ----------
    manifold : Manifold
        Compact (sphere, torus).
    """

    def __init__(self, manifold):
        if not manifold.is_compact:
            raise ValueError(f"manifold: the uniform prior needs a compact manifold, got {manifold!r}")
        self.manifold = manifold
        self.dim = manifold.ambient_dim  # bound, like GaussianPrior(dim=...)

    def __repr__(self):
        return f"UniformPrior({self.manifold!r})"

    def sample(self, n, dim=None, rng=None, dtype=np.float64):
        """``n`` uniform points.

        Parameters
        ----------
        n : int
        dim : int, optional
            If given, it must be the ambient dimension ``D`` (the same signature as ``GaussianPrior.sample``).
        rng : None, int or Generator
        dtype : float dtype

        Returns
        -------
        (n, D) array
        """
        n = check_count(n, "n")
        if dim is not None and check_count(dim, "dim") != self.manifold.ambient_dim:
            raise ValueError(f"dim: expected the ambient dimension {self.manifold.ambient_dim}, got {dim}")
        return self.manifold.random_uniform(n, rng=rng, dtype=dtype)

    def log_density(self, x):
        """``-log volume`` for every row of ``x (n, D)``."""
        x = self.manifold.check_points(x, "x")
        return self.manifold.uniform_log_density(x)

    def score(self, x):
        """Zero tangent vectors ``(n, D)``."""
        x = self.manifold.check_points(x, "x")
        return get_namespace(x).zeros_like(x)


class ManifoldBrownianMotion(MarkovProcess):
    """Brownian motion on ``manifold`` with a constant or geometric noise schedule.

    Parameters
    ----------
    manifold : Manifold
        :class:`~opdiff.manifolds.Hypersphere`, :class:`~opdiff.manifolds.FlatTorus` or
        :class:`~opdiff.manifolds.Euclidean`.
    sigma : float
        ``schedule="constant"``: the diffusion coefficient (``dX = sigma dW``).
        ``schedule="geometric"``: ``sigma_min``.
    T : float, optional
        Terminal time. Default (constant schedule): the time at which the slowest mode has decayed
        to ``1e-3`` (``exp(-gap s(T)) = 1e-3``), so the uniform prior is accurate; geometric: 1.
    schedule : {"constant", "geometric"}
        ``"geometric"``: ``sigma(t) = sigma (sigma_max / sigma)^t`` on ``(0, 1]`` (VE-style),
        ``g(t)^2 = d sigma(t)^2 / dt`` and ``s(t) = (sigma(t)^2 - sigma^2) / 2``.
    sigma_max : float, optional
        End of the geometric schedule.

    Attributes
    ----------
    is_manifold : bool
        True: estimators (``DiffusionKernelSmoother``) switch to their Riemannian form.
    """

    is_manifold = True

    def __init__(self, manifold, sigma=1.0, T=None, schedule="constant", sigma_max=None):
        self.manifold = manifold
        self.sigma = check_positive(sigma, "sigma")
        self.schedule = check_choice(schedule, "schedule", {"constant", "geometric"})
        self.t_min = 0.0
        if schedule == "geometric":
            if sigma_max is None or check_positive(sigma_max, "sigma_max") <= self.sigma:
                raise ValueError(f"sigma_max: expected a number > sigma={sigma} for the geometric schedule, "
                                 f"got {sigma_max}")
            self.sigma_max = float(sigma_max)
            self.t_max = 1.0 if T is None else check_positive(T, "T")
        else:
            self.sigma_max = None
            if T is None:
                gap = getattr(manifold, "spectral_gap", 0.0)
                if not gap:
                    raise ValueError(f"T: required for a non-compact manifold ({manifold!r})")
                T = 2.0 * math.log(1e3) / (gap * self.sigma**2)
            self.t_max = check_positive(T, "T")

    def __repr__(self):
        extra = f", sigma_max={self.sigma_max}" if self.sigma_max else ""
        return f"ManifoldBrownianMotion({self.manifold!r}, sigma={self.sigma}{extra}, T={self.t_max:.4g})"

    # ---- schedule -------------------------------------------------------------------------
    def heat_time(self, t):
        """Heat time ``s(t)`` of the transition ``0 -> t`` (float or array, float64)."""
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "constant":
            return 0.5 * self.sigma**2 * t
        return 0.5 * self.sigma**2 * np.expm1(2.0 * t * math.log(self.sigma_max / self.sigma))

    def time_at_heat_time(self, s):
        """Inverse of :meth:`heat_time`."""
        s = np.asarray(s, dtype=np.float64)
        if self.schedule == "constant":
            return 2.0 * s / self.sigma**2
        return np.log1p(2.0 * s / self.sigma**2) / (2.0 * math.log(self.sigma_max / self.sigma))

    def diffusion_coefficient(self, t):
        """``g(t)`` as a float64 scalar or array."""
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "constant":
            return np.full_like(t, self.sigma)
        rate = math.log(self.sigma_max / self.sigma)
        return self.sigma * (self.sigma_max / self.sigma) ** t * math.sqrt(2.0 * rate)

    def diffusion(self, t):
        """``G(t) = g(t) I`` (on the tangent space) as a :class:`~opdiff.linalg.Scalar`."""
        return Scalar(self.diffusion_coefficient(self.check_time(t, include_min=True)))

    def drift(self, x, t):
        """Zero: Brownian motion has no drift."""
        return get_namespace(x).zeros_like(x)

    def prior(self, dim=None):
        """:class:`UniformPrior` on the manifold (bound to the ambient dimension).

        Parameters
        ----------
        dim : int, optional
            If given, it must be the ambient dimension (the same signature as the Gaussian priors).

        Returns
        -------
        UniformPrior
        """
        if dim is not None and check_count(dim, "dim") != self.manifold.ambient_dim:
            raise ValueError(f"dim: expected the ambient dimension {self.manifold.ambient_dim}, got {dim}")
        return UniformPrior(self.manifold)

    def transition_kernel(self, t=None, bandwidth_factors=None, data_space=False):
        """The heat kernel of the transition (:class:`~opdiff.processes.kernels.HeatKernel`).

        Parameters
        ----------
        t : float or (m,) array, optional
            Time(s), one per query row for an array (``None``: the time-free kernel).
        bandwidth_factors : (n,) array, optional
            Per-point factors ``lambda_i``: heat time ``s(t) lambda_i^2``.
        data_space : bool
            No effect (the data and the state live on the same manifold).

        Returns
        -------
        HeatKernel
        """
        from .kernels import HeatKernel

        t = None if t is None else self.check_time(t)
        return HeatKernel(self, t, bandwidth_factors)

    # ---- transitions ----------------------------------------------------------------------
    def _check(self, x, name, t):
        x = self.manifold.check_points(x, name)
        t = self.check_time(t, n=x.shape[0])
        return x, self.heat_time(t)

    def sample(self, x0, t, rng=None):
        """Exact draws of ``X_t`` given ``X_0 = x0 (n, D)`` (``t`` float or ``(n,)``).

        Torus and Euclidean: the (wrapped) Gaussian. Sphere: the geodesic angle from the inverse
        CDF of its exact law, a uniform tangent direction, then the exponential map. (A geodesic
        random walk ``x <- exp_x(sqrt(2 ds) z)`` is the usual approximate alternative; it is
        not needed here.)
        """
        x0, s = self._check(x0, "x0", t)
        return self.manifold.sample_heat_kernel(x0, s, rng=as_generator(rng))

    def _check_pair(self, xt, x0, t):
        x0 = self.manifold.check_points(x0, "x0")
        xt = self.manifold.check_points(xt, "xt")
        if xt.shape[0] != x0.shape[0]:
            raise ValueError(f"xt: expected {x0.shape[0]} rows to match x0, got {xt.shape[0]}")
        return xt, x0, self.heat_time(self.check_time(t, n=xt.shape[0]))

    def transition_logpdf(self, xt, x0, t):
        """``log p_t(xt | x0)`` with respect to the Riemannian volume; ``(n,)``."""
        xt, x0, s = self._check_pair(xt, x0, t)
        return self.manifold.log_heat_kernel(xt, x0, s)

    def transition_score(self, xt, x0, t):
        """Riemannian gradient in ``xt`` of ``log p_t(xt | x0)``: the Riemannian DSM target; ``(n, D)``."""
        xt, x0, s = self._check_pair(xt, x0, t)
        return self.manifold.log_heat_kernel_and_gradient(xt, x0, s)[1]

    def heat_kernel(self, x, y, t):
        """``p_t(x, y)`` row by row (``x, y (n, D)``); the transition density."""
        return np.exp(self.transition_logpdf(x, y, t))

    def pairwise_log_heat_kernel(self, x, y, t, gradient=False):
        """``log p_t(x_j, y_i)`` ``(m, n)`` and optionally its Riemannian gradient in ``x_j`` ``(m, n, D)``.

        ``x`` and ``y`` must already lie on the manifold (not re-validated: hot path).
        """
        return self.manifold.pairwise_log_heat_kernel(x, y, self.heat_time(t), gradient=gradient)

