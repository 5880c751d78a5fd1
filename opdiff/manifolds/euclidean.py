"""Euclidean space ``R^d`` with the manifold interface, so that manifold code is written once."""
import math

import numpy as np

from ..backend import as_generator, get_namespace
from .base import Manifold
from .heat_circle import check_heat_time


class Euclidean(Manifold):
    """``R^d``: ``exp_x(v) = x + v``, ``log_x(y) = y - x``, heat kernel ``N(y; x, 2 s I)``.

    Parameters
    ----------
    d : int
        Dimension.
    """

    is_compact = False

    def __init__(self, d):
        if int(d) != d or d < 1:
            raise ValueError(f"d: expected a positive integer, got {d}")
        self.dim = self.ambient_dim = int(d)

    @property
    def spectral_gap(self):
        """Smallest non-zero eigenvalue of minus the Laplace-Beltrami operator (continuous spectrum)."""
        return float(0.0)

    def distance_to_manifold(self, x):
        xp = get_namespace(x)
        return xp.zeros(x.shape[0], dtype=x.dtype)

    def proj(self, x):
        return x.copy()

    def to_tangent(self, x, v):
        return v

    def exp(self, x, v):
        return x + v

    def log(self, x, y):
        return y - x

    def dist(self, x, y):
        xp = get_namespace(x, y)
        diff = y - x
        return xp.sqrt(xp.sum(diff * diff, axis=-1))

    def volume(self):
        return math.inf

    def random_uniform(self, n, rng=None, dtype=np.float64):
        raise ValueError("Euclidean: R^d has infinite volume, there is no uniform law on it")

    def log_heat_kernel_and_gradient(self, x, y, s):
        xp = get_namespace(x, y)
        s = check_heat_time(s, xp)
        diff = x - y
        log_p = -xp.sum(diff * diff, axis=-1) / (4.0 * s) - 0.5 * self.dim * xp.log(4.0 * math.pi * s)
        grad = -diff / (2.0 * s[..., None]) if s.ndim else -diff / (2.0 * s)
        return log_p.astype(x.dtype, copy=False), grad.astype(x.dtype, copy=False)

    def sample_heat_kernel(self, x, s, rng=None):
        rng = as_generator(rng)
        xp = get_namespace(x)
        s = check_heat_time(s, xp).astype(x.dtype, copy=False)
        scale = xp.sqrt(2.0 * s)[:, None] if s.ndim else math.sqrt(2.0 * float(s))
        return x + scale * xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype)
