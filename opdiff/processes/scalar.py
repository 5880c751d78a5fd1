"""Scalar Gaussian processes: Brownian motion, Ornstein-Uhlenbeck, VE and VP SDEs.

Each is ``dX = f(t) X dt + g(t) dW`` and has the EDM form ``X_t = a(t) (X_0 + s(t) eps)`` with
``a = scale(t)`` and ``s = noise_level(t)``; then ``f = d log a / dt`` and ``g^2 = a^2 d(s^2)/dt``.
Transitions between any two times follow from ``(a, s)``:
``Phi(t, s) = a_t / a_s`` and ``Sigma(t, s) = a_t^2 (s_t^2 - s_s^2) I``.
"""
import numpy as np

from ..backend import check_choice, check_positive
from ..linalg import Scalar
from .base import GaussianPrior, GaussianProcess


class ScalarGaussianProcess(GaussianProcess):
    """Base of processes with ``Phi = a I`` and ``Sigma = sigma^2 I`` (scalar operators)."""

    def scale(self, t):
        """``a(t)``: the signal scale, ``E[X_t | X_0] = a(t) X_0``."""
        raise NotImplementedError

    def noise_level(self, t):
        """``s(t)``: the VE-form noise level, ``X_t / a(t) = X_0 + s(t) eps``."""
        raise NotImplementedError

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
        a_t = self.scale(t)
        a_s = self.scale(s) if np.any(s > 0) else np.ones_like(s)
        s_s2 = np.where(s > 0, self.noise_level(np.where(s > 0, s, t)) ** 2, 0.0)
        variance = a_t**2 * (self.noise_level(t) ** 2 - s_s2)
        return Scalar(a_t / a_s), Scalar(variance)

    def drift_operator(self, t):
        return Scalar(self.log_scale_rate(np.asarray(t, dtype=np.float64)))

    def diffusion(self, t):
        t = self.check_time(t, include_min=True)
        return Scalar(self.scale(t) * np.sqrt(self.noise_rate(t)))

    def prior(self):
        """``N(0, a(T)^2 s(T)^2 I)``: the law at ``t_max`` of the process started at the origin
        (the stationary ``N(0, I)`` for OU and VP up to the unconverged part)."""
        variance = float((self.scale(self.t_max) * self.noise_level(self.t_max)) ** 2)
        return GaussianPrior(lambda dim: Scalar(variance))


class BrownianMotion(ScalarGaussianProcess):
    """``dX = sigma dW``: transition ``N(x, sigma^2 t I)``, generator ``sigma^2/2 Laplacian``.

    Parameters
    ----------
    sigma : float
        Diffusion coefficient.
    T : float
        Terminal time (the prior is ``N(0, sigma^2 T I)``).
    """

    def __init__(self, sigma=1.0, T=1.0):
        self.sigma = check_positive(sigma, "sigma")
        self.t_max = check_positive(T, "T")

    def scale(self, t):
        return np.ones_like(np.asarray(t, dtype=np.float64))

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
    """

    def __init__(self, theta=1.0, T=5.0):
        self.theta = check_positive(theta, "theta")
        self.t_max = check_positive(T, "T")

    def scale(self, t):
        return np.exp(-self.theta * np.asarray(t, dtype=np.float64))

    def noise_level(self, t):
        return np.sqrt(np.expm1(2.0 * self.theta * np.asarray(t, dtype=np.float64)))

    def log_scale_rate(self, t):
        return -self.theta * np.ones_like(np.asarray(t, dtype=np.float64))

    def noise_rate(self, t):
        return 2.0 * self.theta * np.exp(2.0 * self.theta * np.asarray(t, dtype=np.float64))

    def time_at_noise_level(self, sigma):
        return np.log1p(np.asarray(sigma) ** 2) / (2.0 * self.theta)

    def prior(self):
        return GaussianPrior(lambda dim: Scalar(1.0))


class VESDE(ScalarGaussianProcess):
    """Variance-exploding SDE ``dX = sqrt(d sigma^2/dt) dW``.

    ``schedule="geometric"``: ``sigma(t) = sigma_min (sigma_max/sigma_min)^t`` on ``(0, 1]``, and the
    exact perturbation variance ``sigma(t)^2 - sigma_min^2``.
    ``schedule="edm"``: ``sigma(t) = t`` on ``(0, sigma_max]`` (Karras et al.), see :meth:`edm`.
    """

    def __init__(self, sigma_min=0.01, sigma_max=50.0, schedule="geometric"):
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max: expected > sigma_min={sigma_min}, got {sigma_max}")
        self.schedule = check_choice(schedule, "schedule", {"geometric", "edm"})
        self.t_max = self.sigma_max if schedule == "edm" else 1.0

    @classmethod
    def edm(cls, sigma_max=80.0):
        """The EDM process ``sigma(t) = t``, ``t in (0, sigma_max]``."""
        return cls(sigma_min=1e-12, sigma_max=sigma_max, schedule="edm")

    def sigma(self, t):
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "edm":
            return t
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def scale(self, t):
        return np.ones_like(np.asarray(t, dtype=np.float64))

    def noise_level(self, t):
        if self.schedule == "edm":
            return np.asarray(t, dtype=np.float64)
        return np.sqrt(self.sigma(t) ** 2 - self.sigma_min**2)

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
        return np.log(np.sqrt(sigma**2 + self.sigma_min**2) / self.sigma_min) / np.log(self.sigma_max / self.sigma_min)


class VPSDE(ScalarGaussianProcess):
    """Variance-preserving SDE ``dX = -1/2 beta(t) X dt + sqrt(beta(t)) dW``.

    ``schedule="linear"``: ``beta(t) = beta_min + t (beta_max - beta_min)`` on ``(0, 1]``.
    ``schedule="cosine"``: ``alpha_bar(t) = cos^2(pi/2 (t + s)/(1 + s)) / cos^2(pi/2 s/(1 + s))``,
    ``s = 0.008`` (Nichol and Dhariwal), on ``(0, T]`` with ``T = 0.995`` by default (``alpha_bar``
    vanishes at 1).
    The scale is ``a = sqrt(alpha_bar)`` and the noise level ``s = sqrt(1 - alpha_bar) / a``.
    """

    COSINE_OFFSET = 0.008

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
        return 2.0 * (np.log(np.cos(self._cosine_angle(t))) - np.log(np.cos(self._cosine_angle(0.0))))

    def beta(self, t):
        """``beta(t) = -d log alpha_bar / dt``."""
        t = np.asarray(t, dtype=np.float64)
        if self.schedule == "linear":
            return self.beta_min + t * (self.beta_max - self.beta_min)
        return 2.0 * np.tan(self._cosine_angle(t)) * 0.5 * np.pi / (1.0 + self.COSINE_OFFSET)

    def scale(self, t):
        return np.exp(0.5 * self.log_alpha_bar(t))

    def noise_level(self, t):
        return np.sqrt(np.expm1(-self.log_alpha_bar(t)))

    def log_scale_rate(self, t):
        return -0.5 * self.beta(t)

    def noise_rate(self, t):
        return self.beta(t) * np.exp(-self.log_alpha_bar(t))

    def time_at_noise_level(self, sigma):
        target = -np.log1p(np.asarray(sigma, dtype=np.float64) ** 2)  # log alpha_bar
        if self.schedule == "linear":
            a, b = 0.5 * (self.beta_max - self.beta_min), self.beta_min
            return (-b + np.sqrt(b * b - 4.0 * a * target)) / (2.0 * a) if a > 0 else -target / b
        angle = np.arccos(np.exp(0.5 * target) * np.cos(self._cosine_angle(0.0)))
        return angle * (1.0 + self.COSINE_OFFSET) / (0.5 * np.pi) - self.COSINE_OFFSET

    def prior(self):
        return GaussianPrior(lambda dim: Scalar(1.0))
