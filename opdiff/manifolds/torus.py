"""The flat torus ``T^d = R^d / (2 pi Z)^d`` in angle coordinates ``[-pi, pi)^d``."""
import math

import numpy as np

from ..backend import as_generator, check_count, get_namespace
from .base import Manifold
from .heat_circle import DEFAULT_TOL, check_heat_time, check_tolerance, circle_log_heat_kernel, wrap_angle

#: Peak-relative accuracy of each circle factor in the tabulated kernel (:meth:`FlatTorus.heat_table`).
TABLE_TOL = 1e-12


class FlatTorus(Manifold):
    """Flat torus of dimension ``d``: a product of unit circles, each in angle coordinates.

    Geodesics are straight lines wrapped into the box; ``log_x(y)`` is the wrapped difference
    ``wrap(y - x)`` in ``[-pi, pi)^d`` (on the cut locus, a coordinate difference of exactly
    ``pi`` is sent to ``-pi``, deterministically). The heat kernel is the product of circle kernels:
    wrapped Gaussian (image sum) for small heat time, theta series for large
    (:func:`opdiff.manifolds.heat_circle.circle_log_heat_kernel`). ``FlatTorus(1)`` and
    ``Hypersphere(1)`` are the same Riemannian manifold, with the same kernels.

    Parameters
    ----------
    d : int
        Dimension.
    method : {"auto", "image", "theta"}
        Heat-kernel evaluation (``"auto"`` switches by heat time).
    tol : float
        Relative truncation tolerance of the kernel series.
    """

    def __init__(self, d, method="auto", tol=DEFAULT_TOL):
        if int(d) != d or d < 1:
            raise ValueError(f"d: expected a positive integer, got {d}")
        if method not in ("auto", "image", "theta"):
            raise ValueError(f"method: expected 'auto', 'image' or 'theta', got {method!r}")
        self.dim = self.ambient_dim = int(d)
        self.method, self.tol = method, check_tolerance(tol)

    @property
    def spectral_gap(self):
        """Smallest non-zero eigenvalue of minus the Laplace-Beltrami operator (|k|^2 at |k| = 1)."""
        return float(1.0)

    def distance_to_manifold(self, x):
        """Distance of the coordinates to the box ``[-pi, pi]^d`` (angles outside it are rejected)."""
        xp = get_namespace(x)
        excess = xp.maximum(xp.abs(x) - math.pi, 0.0)
        return xp.sqrt(xp.sum(excess * excess, axis=1))

    def proj(self, x):
        """Wrap angles into ``[-pi, pi)``."""
        return wrap_angle(x)

    def to_tangent(self, x, v):
        return v

    def exp(self, x, v):
        return wrap_angle(x + v)

    def log(self, x, y):
        return wrap_angle(y - x)

    def dist(self, x, y):
        xp = get_namespace(x, y)
        diff = wrap_angle(y - x, xp)
        return xp.sqrt(xp.sum(diff * diff, axis=-1))

    def volume(self):
        return (2.0 * math.pi) ** self.dim

    def random_uniform(self, n, rng=None, dtype=np.float64):
        rng = as_generator(rng)
        return rng.uniform(-math.pi, math.pi, size=(check_count(n, "n"), self.dim)).astype(dtype, copy=False)

    def log_heat_kernel_and_gradient(self, x, y, s):
        xp = get_namespace(x, y)
        s = xp.asarray(s, dtype=np.float64)
        delta = xp.asarray(x - y, dtype=np.float64)  # the gradient is taken in x
        log_p, dlog = circle_log_heat_kernel(delta, s[..., None] if s.ndim else s, self.method, self.tol)
        return xp.sum(log_p, axis=-1).astype(x.dtype, copy=False), dlog.astype(x.dtype, copy=False)

    def heat_table(self, s):
        """The circle log-kernel at heat time ``s`` tabulated in ``|x_k - y_k|`` (``kind="difference"``).

        Each factor is within ``max(tol, 1e-12)`` of its peak (:mod:`opdiff.manifolds.heat_tables`);
        None if no table reached it.
        """
        from .heat_tables import circle_heat_table

        return circle_heat_table(float(s), self.method, max(self.tol, TABLE_TOL))

    def sample_heat_kernel(self, x, s, rng=None):
        rng = as_generator(rng)
        xp = get_namespace(x)
        s = check_heat_time(s, xp).astype(x.dtype, copy=False)
        scale = xp.sqrt(2.0 * s)[:, None] if s.ndim else xp.sqrt(2.0 * s)
        return wrap_angle(x + scale * xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype), xp)
