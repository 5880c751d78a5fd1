"""The unit hypersphere ``S^n`` in ``R^{n+1}``."""
import math

import numpy as np
from scipy.integrate import cumulative_simpson
from scipy.interpolate import PchipInterpolator
from scipy.special import roots_legendre

from ..backend import as_generator, check_count, check_positive, get_namespace
from .base import Manifold
from .heat_circle import DEFAULT_TOL as CIRCLE_TOL
from .heat_circle import check_tolerance, circle_log_heat_kernel, wrap_angle
from .heat_sphere import DEFAULT_TOL, series_floor, series_terms, sphere_area, sphere_log_heat_kernel, switch_time

_SAMPLING_NODES = 2049  # angular grid of the inverse CDF (Simpson + monotone cubic: CDF error < 1e-8)


def _row_norm(v, xp):
    return xp.sqrt(xp.sum(v * v, axis=-1))


class Hypersphere(Manifold):
    """Unit sphere ``S^n = {x in R^{n+1} : |x| = 1}`` with the round metric.

    Parameters
    ----------
    n : int
        Intrinsic dimension (1: the circle, 2: the usual sphere, ...).
    method : {"auto", "series", "short_time"}
        Heat-kernel evaluation for ``n >= 2`` (see :mod:`opdiff.manifolds.heat_sphere`); the circle
        uses the wrapped-Gaussian / theta forms of :mod:`opdiff.manifolds.heat_circle`.
    tol : float
        Heat-kernel accuracy relative to its peak (``n >= 2``).

    Notes
    -----
    ``log_x(y)`` at the antipode ``y = -x`` (the cut locus) is not unique; the returned vector
    has length ``pi`` and the deterministic direction of the coordinate axis least aligned with
    ``x``, projected onto the tangent space.
    """

    def __init__(self, n, method="auto", tol=None):
        if int(n) != n or n < 1:
            raise ValueError(f"n: expected a positive integer, got {n}")
        self.dim = int(n)
        self.ambient_dim = self.dim + 1
        choices = ("auto", "image", "theta") if self.dim == 1 else ("auto", "series", "short_time")
        if method not in choices:
            raise ValueError(f"method: expected one of {choices} for S^{self.dim}, got {method!r}")
        self.method = method
        self.tol = check_tolerance(tol) if tol is not None else (CIRCLE_TOL if self.dim == 1 else DEFAULT_TOL)

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def spectral_gap(self):
        """Smallest non-zero eigenvalue of minus the Laplace-Beltrami operator (l (l + n - 1) at l = 1)."""
        return float(self.dim)

    def distance_to_manifold(self, x):
        xp = get_namespace(x)
        return xp.abs(_row_norm(x, xp) - 1.0)

    def proj(self, x):
        xp = get_namespace(x)
        norms = _row_norm(x, xp)
        if bool(xp.any(norms == 0)):
            raise ValueError("x: the origin has no closest point on the sphere")
        return x / norms[..., None]

    def to_tangent(self, x, v):
        xp = get_namespace(x, v)
        return v - xp.sum(v * x, axis=-1)[..., None] * x

    def exp(self, x, v):
        xp = get_namespace(x, v)
        r = _row_norm(v, xp)[..., None]
        safe = xp.where(r > 0, r, 1.0)
        sinc = xp.where(r > 1e-8, xp.sin(safe) / safe, 1.0 - r * r / 6.0)
        y = xp.cos(r) * x + sinc * v
        return y / _row_norm(y, xp)[..., None]

    def dist(self, x, y):
        xp = get_namespace(x, y)
        return 2.0 * xp.arctan2(_row_norm(x - y, xp), _row_norm(x + y, xp))

    def log(self, x, y):
        xp = get_namespace(x, y)
        x, y = xp.broadcast_arrays(x, y)
        theta = self.dist(x, y)[..., None]
        u = y - xp.sum(x * y, axis=-1)[..., None] * x
        length = _row_norm(u, xp)[..., None]
        # sin(theta) = |u|; theta / sin(theta) -> 1 at theta -> 0
        ratio = xp.where(length > 1e-12, theta / xp.where(length > 0, length, 1.0), 1.0)
        out = ratio * u
        antipodal = (theta[..., 0] > math.pi - 1e-7) & (length[..., 0] <= 1e-12)
        if bool(xp.any(antipodal)):
            xa = x[antipodal]
            axis = xp.argmin(xp.abs(xa), axis=-1)
            e = xp.zeros_like(xa)
            e[xp.arange(xa.shape[0]), axis] = 1.0
            direction = self.to_tangent(xa, e)
            out[antipodal] = math.pi * direction / _row_norm(direction, xp)[..., None]
        return out

    def volume(self):
        return sphere_area(self.dim)

    def product_quadrature(self, n_theta, n_phi=None):
        """Product quadrature on ``S^2``: Gauss-Legendre in ``cos(theta)``, trapezoid in ``phi``.

        Exact for spherical harmonics of degree ``< min(2 n_theta, n_phi)``.

        Returns
        -------
        nodes : (n_theta * n_phi, 3) array
        weights : (n_theta * n_phi,) array
            Summing to ``4 pi``.
        """
        if self.dim != 2:
            raise ValueError(f"product_quadrature: defined on S^2, this is S^{self.dim}")
        n_phi = 2 * int(n_theta) if n_phi is None else int(n_phi)
        u, w = roots_legendre(int(n_theta))
        phi = np.linspace(0.0, 2.0 * math.pi, n_phi, endpoint=False)
        U, P = np.meshgrid(u, phi, indexing="ij")
        r = np.sqrt(1.0 - U**2)
        nodes = np.stack([r * np.cos(P), r * np.sin(P), U], -1).reshape(-1, 3)
        return nodes, (w[:, None] * np.full(n_phi, 2.0 * math.pi / n_phi)[None, :]).ravel()

    def random_uniform(self, n, rng=None, dtype=np.float64):
        rng = as_generator(rng)
        g = rng.standard_normal((check_count(n, "n"), self.ambient_dim))
        return (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(dtype, copy=False)

    # ---- heat kernel ------------------------------------------------------------------------
    def log_heat_kernel_and_gradient(self, x, y, s):
        xp = get_namespace(x, y)
        dtype = x.dtype
        x64, y64 = xp.asarray(x, dtype=np.float64), xp.asarray(y, dtype=np.float64)
        s = xp.asarray(s, dtype=np.float64)
        if self.dim == 1:
            # signed angle from y to x; gradient along the unit tangent e(x) = (-x_2, x_1)
            delta = xp.arctan2(x64[..., 1] * y64[..., 0] - x64[..., 0] * y64[..., 1], xp.sum(x64 * y64, axis=-1))
            log_p, dlog = circle_log_heat_kernel(delta, s, self.method, self.tol)
            tangent = xp.stack([-x64[..., 1], x64[..., 0]], axis=-1)
            tangent, dlog = xp.broadcast_arrays(tangent, dlog[..., None])
            grad = dlog * tangent
        else:
            theta = self.dist(x64, y64)
            log_p, g = sphere_log_heat_kernel(theta, s, self.dim, self.method, self.tol)
            c = xp.sum(x64 * y64, axis=-1)
            grad = g[..., None] * (y64 - c[..., None] * x64)
        return log_p.astype(dtype, copy=False), grad.astype(dtype, copy=False)

    def pairwise_log_heat_kernel(self, x, y, s, gradient=False):
        """All pairs ``log p_s(x_j, y_i)`` ``(m, n)`` (and gradients in ``x_j`` ``(m, n, D)``).

        NumPy inputs on ``S^n``, ``n >= 2``: one fused Numba pass (:mod:`opdiff.manifolds._sphere_numba`);
        otherwise (CuPy, the circle) the array-generic formulas of the base class.
        """
        xp = get_namespace(x, y)
        if self.dim == 1 or xp is not np:
            return super().pairwise_log_heat_kernel(x, y, s, gradient)
        from ._sphere_numba import pairwise_sphere_kernel

        s = np.asarray(s, dtype=np.float64)
        switch = {"auto": switch_time(self.dim, self.tol), "series": 0.0, "short_time": np.inf}[self.method]
        series_times = s[s >= switch]
        n_terms = series_terms(float(series_times.min()), self.dim, self.tol) if series_times.size else 0
        log_p, grad = pairwise_sphere_kernel(x, y, s, self.dim, n_terms, switch, 1.0 / self.volume(),
                                             series_floor(self.tol), gradient)
        if gradient:
            return log_p.astype(x.dtype, copy=False), grad.astype(x.dtype, copy=False)
        return log_p.astype(x.dtype, copy=False)

    def heat_table(self, s):
        """The log-kernel at heat time ``s`` tabulated in ``u = x . y`` (:mod:`opdiff.manifolds.heat_tables`).

        Returns a ``kind="dot"`` :class:`~opdiff.manifolds.heat_tables.HeatTable` within ``tol`` of the
        kernel's peak, or None (the circle, or no table reached the tolerance).
        """
        if self.dim == 1:
            return None
        from .heat_tables import sphere_heat_table

        return sphere_heat_table(self.dim, float(s), self.method, self.tol)

    def angular_inverse_cdf(self, s):
        """Inverse CDF ``u -> theta`` of the geodesic distance travelled in heat time ``s`` (``n >= 2``).

        The angle has density ``|S^{n-1}| sin(theta)^{n-1} p_s(theta)`` on ``[0, pi]``. It is
        tabulated on ``2049`` nodes over its support (``theta`` up to where the density falls below
        ``1e-20`` of its scale), integrated by cumulative Simpson and inverted by a monotone cubic.
        """
        s = check_positive(s, "s")
        n = self.dim
        theta_max = min(math.pi, 2.0 * math.sqrt(s) * (math.sqrt(0.5 * n) + 7.0))
        theta = np.linspace(0.0, theta_max, _SAMPLING_NODES)
        log_p, _ = sphere_log_heat_kernel(theta, s, n, self.method, self.tol)
        with np.errstate(divide="ignore"):
            log_density = log_p + (n - 1) * np.log(np.sin(theta))
        density = np.exp(log_density - np.max(log_density))
        cdf = np.concatenate([[0.0], cumulative_simpson(density, x=theta)])
        cdf /= cdf[-1]
        keep = np.concatenate([[True], np.diff(cdf) > 0])
        return PchipInterpolator(cdf[keep], theta[keep])

    def sample_heat_kernel(self, x, s, rng=None):
        """Exact draws of Brownian motion at heat time ``s`` from ``x (m, D)``.

        Circle: the wrapped Gaussian. ``n >= 2``: the geodesic angle by the inverse CDF of its
        law (:meth:`angular_inverse_cdf`, one table per distinct time), the direction uniform
        in the tangent sphere, then ``y = cos(theta) x + sin(theta) v``.
        """
        rng = as_generator(rng)
        xp = get_namespace(x)
        s = np.broadcast_to(np.asarray(s, dtype=np.float64), (x.shape[0],))
        if self.dim == 1:
            angle = xp.arctan2(x[:, 1], x[:, 0]) + xp.asarray(np.sqrt(2.0 * s) * rng.standard_normal(x.shape[0]))
            angle = wrap_angle(angle, xp)
            return xp.stack([xp.cos(angle), xp.sin(angle)], axis=1).astype(x.dtype, copy=False)
        u = rng.uniform(size=x.shape[0])
        theta = np.empty(x.shape[0])
        for value in np.unique(s):
            rows = s == value
            theta[rows] = self.angular_inverse_cdf(float(value))(u[rows])
        direction = self.random_tangent_normal(xp.asarray(x, dtype=np.float64), rng)
        direction = direction / _row_norm(direction, xp)[:, None]
        theta = xp.asarray(theta)[:, None]
        y = xp.cos(theta) * x + xp.sin(theta) * direction
        return (y / _row_norm(y, xp)[:, None]).astype(x.dtype, copy=False)
