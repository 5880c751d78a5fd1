"""Scalar Gaussian processes: Brownian motion, Ornstein-Uhlenbeck, VE and VP SDEs.

Each is ``dX = f(t) X dt + g(t) dW`` and has the EDM form ``X_t = a(t) (X_0 + s(t) eps)`` with
``a = scale(t)`` and ``s = noise_level(t)``; then ``f = d log a / dt`` and ``g^2 = a^2 d(s^2)/dt``.
Transitions between any two times follow from ``(a, s)``:
``Phi(t, s) = a_t / a_s`` and ``Sigma(t, s) = a_t^2 (s_t^2 - s_s^2) I``.

Long horizons and tiny times are computed in stable forms: ``log a`` rather than ``a``, and for the
variance-preserving processes (OU, VP: ``a^2 (1 + s^2) = 1``) ``Sigma(t, s) = -expm1(2 (log a_t - log a_s))``,
so that ``OrnsteinUhlenbeck(T=400)`` reaches its prior without ``0 * inf``, and ``expm1`` forms of
``s(t)^2`` so that ``t = 1e-18`` keeps a positive variance.
"""
import numpy as np

from ..backend import check_choice, check_positive
from ..linalg import Scalar
from .base import GaussianPrior, GaussianProcess


class ScalarGaussianProcess(GaussianProcess):
    """Base of processes with ``Phi = a I`` and ``Sigma = sigma^2 I`` (scalar operators)."""

    #: ``(shown name, attribute)`` pairs of the repr.
    _repr_fields = ()
    #: ``a(t)^2 (1 + s(t)^2) = 1`` (OU, VP): the transition variance is ``1 - (a_t / a_s)^2``.
    variance_preserving = False

    def __repr__(self):
        fields = ", ".join(f"{label}={getattr(self, attribute)!r}" for label, attribute in self._repr_fields)
        return f"{type(self).__name__}({fields})"

    def scale(self, t):
        """``a(t)``: the signal scale, ``E[X_t | X_0] = a(t) X_0``."""
        return np.exp(self.log_scale(t))

    def log_scale(self, t):
        """``log a(t)`` (finite where ``a`` underflows)."""
        raise NotImplementedError

    def transition_variance(self, t, s):
        """``a_t^2 (s_t^2 - s_s^2)``: the variance of ``X_t | X_s`` (``s = 0``: given the data).

        Parameters
        ----------
        t, s : float64 arrays (broadcast), ``0 <= s <= t``

        Returns
        -------
        float64 array
            Positive wherever ``t > s``; finite for every ``t`` in range.
        """
        log_ratio = self.log_scale(t) - self.log_scale(s)
        if self.variance_preserving:
            return -np.expm1(2.0 * log_ratio)
        s_s2 = np.where(s > 0, self.noise_level(np.where(s > 0, s, t)) ** 2, 0.0)
        return np.exp(2.0 * self.log_scale(t)) * (self.noise_level(t) ** 2 - s_s2)

    def noise_level(self, t):
        """``s(t)``: the VE-form noise level, ``X_t / a(t) = X_0 + s(t) eps``.

        Variance-preserving processes: ``s = sqrt(1 - a^2) / a``, written ``sqrt(-expm1(2 log a)) exp(-log a)``
        (finite wherever ``1 / a`` is, e.g. ``e^400`` for OU at ``t = 400``, and accurate at tiny ``t``).

        Parameters
        ----------
        t : float or array

        Returns
        -------
        float64 array
        """
        if not self.variance_preserving:
            raise NotImplementedError
        log_a = self.log_scale(t)
        return np.sqrt(-np.expm1(2.0 * log_a)) * np.exp(-log_a)

    def log_scale_rate(self, t):
        """``f(t) = d log a(t) / dt``."""
        raise NotImplementedError

    def noise_rate(self, t):
        """``d s(t)^2 / dt``."""
        raise NotImplementedError

    def time_at_noise_level(self, sigma):
        """Inverse of :meth:`noise_level` (used to map VE-form sigmas back to times)."""
        raise NotImplementedError

    def transition(self, t, s=0.0):
        t, s = self.check_transition_times(t, s)
        return Scalar(np.exp(self.log_scale(t) - self.log_scale(s))), Scalar(self.transition_variance(t, s))

    def drift_operator(self, t):
        return Scalar(self.log_scale_rate(np.asarray(t, dtype=np.float64)))

    def diffusion(self, t):
        t = self.check_time(t, include_min=True)
        return Scalar(np.sqrt(self.diffusion_squared(t)))

    def diffusion_squared(self, t):
        """``g(t)^2 = a(t)^2 d s(t)^2 / dt`` (float64; finite on long horizons)."""
        return np.exp(2.0 * self.log_scale(t)) * self.noise_rate(t)

    def prior(self, dim=None):
        """``N(0, a(T)^2 s(T)^2 I)``: the law at ``t_max`` of the process started at the origin
        (the stationary ``N(0, I)`` for OU and VP up to the unconverged part).

        Parameters
        ----------
        dim : int, optional
            Bind the prior to points of this dimension (then ``prior.sample(n, rng=...)`` needs no ``dim``).

        Returns
        -------
        GaussianPrior
        """
        variance = 1.0 if self.variance_preserving else float(self.transition_variance(self.t_max, 0.0))
        return GaussianPrior(lambda d: Scalar(variance), dim=dim)


class BrownianMotion(ScalarGaussianProcess):
    """``dX = sigma dW``: transition ``N(x, sigma^2 t I)``, generator ``sigma^2/2 Laplacian``.

    Parameters
    ----------
    sigma : float
        Diffusion coefficient.
    T : float
        Terminal time (the prior is ``N(0, sigma^2 T I)``).
    """

    _repr_fields = (("sigma", "sigma"), ("T", "t_max"))

    def __init__(self, sigma=1.0, T=1.0):
        self.sigma = check_positive(sigma, "sigma")
        self.t_max = check_positive(T, "T")

    def log_scale(self, t):
        return np.zeros_like(np.asarray(t, dtype=np.float64))

    def transition_variance(self, t, s):
        return self.sigma**2 * (t - s)

    def noise_level(self, t):
        return self.sigma * np.sqrt(t)

    def log_scale_rate(self, t):
        return np.zeros_like(np.asarray(t, dtype=np.float64))

    def noise_rate(self, t):
        return self.sigma**2 * np.ones_like(np.asarray(t, dtype=np.float64))

    def time_at_noise_level(self, sigma):
        return (np.asarray(sigma) / self.sigma) ** 2


class OrnsteinUhlenbeck(ScalarGaussianProcess):
    """``dX = -theta X dt + sqrt(2 theta) dW``, stationary ``N(0, I)``.

    Transition ``N(e^{-theta t} x, (1 - e^{-2 theta t}) I)``; generator
    ``L = theta (Laplacian - x . grad)``, eigenfunctions Hermite polynomials with eigenvalues
    ``-theta |alpha|``.

    Parameters
    ----------
    theta : float
        Mean-reversion rate.
    T : float
        Terminal time (any length: long horizons are computed in expm1 forms).
    """

    _repr_fields = (("theta", "theta"), ("T", "t_max"))
    variance_preserving = True

    def __init__(self, theta=1.0, T=5.0):
        self.theta = check_positive(theta, "theta")
        self.t_max = check_positive(T, "T")

    def log_scale(self, t):
        return -self.theta * np.asarray(t, dtype=np.float64)

    def diffusion_squared(self, t):
        return np.full_like(np.asarray(t, dtype=np.float64), 2.0 * self.theta)

    def log_scale_rate(self, t):
        return -self.theta * np.ones_like(np.asarray(t, dtype=np.float64))

    def noise_rate(self, t):
        return 2.0 * self.theta * np.exp(2.0 * self.theta * np.asarray(t, dtype=np.float64))

    def time_at_noise_level(self, sigma):
        return np.log1p(np.asarray(sigma) ** 2) / (2.0 * self.theta)


class VESDE(ScalarGaussianProcess):
    """Variance-exploding SDE ``dX = sqrt(d sigma^2/dt) dW``.

    ``schedule="geometric"``: ``sigma(t) = sigma_min (sigma_max/sigma_min)^t`` on ``(0, 1]``, and the
    exact perturbation variance ``sigma(t)^2 - sigma_min^2``.
    ``schedule="edm"``: ``sigma(t) = t`` on ``(0, sigma_max]`` (Karras et al.), see :meth:`edm`.

    Parameters
    ----------
    sigma_min, sigma_max : float
        Noise levels at the ends, ``0 < sigma_min < sigma_max``.
    schedule : {"geometric", "edm"}
    """

    def __init__(self, sigma_min=0.01, sigma_max=50.0, schedule="geometric"):
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max: expected > sigma_min={sigma_min}, got {sigma_max}")
        self.schedule = check_choice(schedule, "schedule", {"geometric", "edm"})
        self.t_max = self.sigma_max if schedule == "edm" else 1.0

    def __repr__(self):
        if self.schedule == "edm":
            return f"VESDE.edm(sigma_max={self.sigma_max!r})"
        return f"VESDE(sigma_min={self.sigma_min!r}, sigma_max={self.sigma_max!r})"

    @classmethod
    def edm(cls, sigma_max=80.0):
        """The EDM process ``sigma(t) = t``, ``t in (0, sigma_max]``."""
        return cls(sigma_min=1e-12, sigma_max=sigma_max, schedule="edm")

    def sigma(self, t):
        """``sigma(t)``: ``sigma_min (sigma_max / sigma_min)^t`` (geometric) or ``t`` (EDM).

        Parameters
        ----------
        t : float or array

        Returns
        -------
        float64 array
        """
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "edm":
            return t
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def log_scale(self, t):
        return np.zeros_like(np.asarray(t, dtype=np.float64))

    def transition_variance(self, t, s):
        if self.schedule == "edm":
            return (t - s) * (t + s)
        # sigma(t)^2 - sigma(s)^2 = sigma(s)^2 expm1(2 (t - s) log r), r = sigma_max / sigma_min
        return self.sigma(s) ** 2 * np.expm1(2.0 * (t - s) * np.log(self.sigma_max / self.sigma_min))

    def noise_level(self, t):
        if self.schedule == "edm":
            return np.asarray(t, dtype=np.float64)
        return np.sqrt(self.transition_variance(np.asarray(t, dtype=np.float64), 0.0))

    def log_scale_rate(self, t):
        return np.zeros_like(np.asarray(t, dtype=np.float64))

    def noise_rate(self, t):
        if self.schedule == "edm":
            return 2.0 * np.asarray(t, dtype=np.float64)
        return 2.0 * self.sigma(t) ** 2 * np.log(self.sigma_max / self.sigma_min)

    def time_at_noise_level(self, sigma):
        sigma = np.asarray(sigma, dtype=np.float64)
        if self.schedule == "edm":
            return sigma
        return 0.5 * np.log1p((sigma / self.sigma_min) ** 2) / np.log(self.sigma_max / self.sigma_min)


class VPSDE(ScalarGaussianProcess):
    """Variance-preserving SDE ``dX = -1/2 beta(t) X dt + sqrt(beta(t)) dW``.

    ``schedule="linear"``: ``beta(t) = beta_min + t (beta_max - beta_min)`` on ``(0, 1]``.
    ``schedule="cosine"``: ``alpha_bar(t) = cos^2(pi/2 (t + s)/(1 + s)) / cos^2(pi/2 s/(1 + s))``,
    ``s = 0.008`` (Nichol and Dhariwal), on ``(0, T]`` with ``T = 0.995`` by default (``alpha_bar``
    vanishes at 1).
    The scale is ``a = sqrt(alpha_bar)`` and the noise level ``s = sqrt(1 - alpha_bar) / a``.

    Parameters
    ----------
    beta_min, beta_max : float
        Linear schedule's end rates, ``0 < beta_min <= beta_max``.
    schedule : {"linear", "cosine"}
    T : float, optional
        Terminal time (default 1 for linear, 0.995 for cosine; the cosine schedule needs ``T < 1``).
    """

    COSINE_OFFSET = 0.008
    variance_preserving = True

    def __repr__(self):
        if self.schedule == "cosine":
            return f"VPSDE(schedule='cosine', T={self.t_max!r})"
        return f"VPSDE(beta_min={self.beta_min!r}, beta_max={self.beta_max!r}, T={self.t_max!r})"

    def __init__(self, beta_min=0.1, beta_max=20.0, schedule="linear", T=None):
        self.beta_min = check_positive(beta_min, "beta_min")
        self.beta_max = check_positive(beta_max, "beta_max")
        if self.beta_max < self.beta_min:
            raise ValueError(f"beta_max: expected >= beta_min={beta_min}, got {beta_max}")
        self.schedule = check_choice(schedule, "schedule", {"linear", "cosine"})
        default_T = 1.0 if schedule == "linear" else 0.995
        self.t_max = check_positive(default_T if T is None else T, "T")
        if schedule == "cosine" and self.t_max >= 1.0:
            raise ValueError(f"T: the cosine schedule needs T < 1 (alpha_bar(1) = 0), got {T}")

    def _cosine_angle(self, t):
        s = self.COSINE_OFFSET
        return 0.5 * np.pi * (np.asarray(t, dtype=np.float64) + s) / (1.0 + s)

    def log_alpha_bar(self, t):
        """``log alpha_bar(t)``, ``alpha_bar = a(t)^2``."""
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "linear":
            return -(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)
        # log(cos(a0 + d) / cos(a0)) = log1p(-2 sin^2(d / 2) - tan(a0) sin(d)): no cancellation at small t
        a0 = self._cosine_angle(0.0)
        d = 0.5 * np.pi * t / (1.0 + self.COSINE_OFFSET)  # angle(t) - a0, without the subtraction
        return 2.0 * np.log1p(-2.0 * np.sin(0.5 * d) ** 2 - np.tan(a0) * np.sin(d))

    def beta(self, t):
        """``beta(t) = -d log alpha_bar / dt``."""
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "linear":
            return self.beta_min + t * (self.beta_max - self.beta_min)
        return 2.0 * np.tan(self._cosine_angle(t)) * 0.5 * np.pi / (1.0 + self.COSINE_OFFSET)

    def log_scale(self, t):
        return 0.5 * self.log_alpha_bar(t)

    def diffusion_squared(self, t):
        return self.beta(t)

    def log_scale_rate(self, t):
        return -0.5 * self.beta(t)

    def noise_rate(self, t):
        return self.beta(t) * np.exp(-self.log_alpha_bar(t))

    def time_at_noise_level(self, sigma):
        sigma2 = np.asarray(sigma, dtype=np.float64) ** 2
        minus_log_ab = np.log1p(sigma2)  # -log alpha_bar > 0
        if self.schedule == "linear":
            # the positive root of a t^2 + b t = -log alpha_bar, rationalised (no cancellation at small sigma)
            a, b = 0.5 * (self.beta_max - self.beta_min), self.beta_min
            return 2.0 * minus_log_ab / (b + np.sqrt(b * b + 4.0 * a * minus_log_ab))
        # cos(A) = sqrt(1 - u) cos(a0), u = 1 - alpha_bar = sigma^2 / (1 + sigma^2); the angle A - a0 from its
        # sine and cosine, each written as a sum of positive terms
        u = sigma2 / (1.0 + sigma2)
        root = 1.0 / np.sqrt(1.0 + sigma2)  # sqrt(1 - u)
        x = np.cos(self._cosine_angle(0.0))
        y = root * x
        sx, sy = np.sqrt(1.0 - x * x), np.sqrt(1.0 - y * y)
        sin_d = x * (x * x * u / (sy + sx) + u * sx / (1.0 + root))
        cos_d = y * x + sy * sx
        return np.arctan2(sin_d, cos_d) * (1.0 + self.COSINE_OFFSET) / (0.5 * np.pi)
