"""The manifold contract shared by :class:`Euclidean`, :class:`Hypersphere` and :class:`FlatTorus`.

Points are stored in ambient coordinates ``(n, D)`` (``D = n + 1`` on ``S^n``, ``D = d`` on the flat
torus, whose coordinates are angles in ``[-pi, pi)``). Tangent vectors live in the same ambient
coordinates. Heat kernels use the *heat time* ``s`` of ``d/ds p = Laplace-Beltrami p`` (``N(x, 2 s I)``
on ``R^d``); processes map their own time to ``s``.
"""
import numpy as np

from ..backend import as_generator, check_points, get_namespace

#: Default tolerance of :meth:`Manifold.belongs` and of input validation.
DEFAULT_ATOL = 1e-6


class Manifold:
    """Abstract Riemannian manifold embedded in ``R^D`` (geomstats-style interface).

    Attributes
    ----------
    dim : int
        Intrinsic dimension.
    ambient_dim : int
        Number of coordinates ``D`` of a point.
    is_compact : bool
    """

    dim = None
    ambient_dim = None
    is_compact = True

    # ---- geometry ---------------------------------------------------------------------------
    def distance_to_manifold(self, x):
        """Distance ``(n,)`` of ambient points ``x (n, D)`` to the manifold (0 on it)."""
        raise NotImplementedError

    def belongs(self, x, atol=DEFAULT_ATOL):
        """``(n,)`` booleans: whether each row of ``x (n, D)`` lies on the manifold within ``atol``."""
        x = check_points(x, "x", dim=self.ambient_dim, allow_1d=True)
        return self.distance_to_manifold(x) <= atol

    def check_points(self, x, name="x", atol=DEFAULT_ATOL):
        """Validate points and snap them onto the manifold.

        Parameters
        ----------
        x : (n, D) array (a ``(D,)`` vector is promoted)
        name : str
            Argument name for error messages.
        atol : float
            Largest accepted distance to the manifold.

        Returns
        -------
        (n, D) array
            :meth:`proj` of ``x`` (a new array; float32 kept).

        Raises
        ------
        ValueError
            Wrong shape, non-finite values, or a point farther than ``atol`` from the manifold
            (the message names ``name`` and the distance).
        """
        x = check_points(x, name, dim=self.ambient_dim, allow_1d=True)
        distance = self.distance_to_manifold(x)
        worst = int(np.argmax(np.asarray(distance)))
        if float(distance[worst]) > atol:
            raise ValueError(
                f"{name}: expected points on {self!r} (tolerance {atol:g}); row {worst} is at "
                f"distance {float(distance[worst]):.3g} from it")
        return self.proj(x)

    def proj(self, x):
        """Closest point of the manifold to each ambient point ``x (n, D)``."""
        raise NotImplementedError

    def to_tangent(self, x, v):
        """Project ambient vectors ``v (n, D)`` onto the tangent spaces at ``x (n, D)``."""
        raise NotImplementedError

    def riemannian_gradient(self, x, ambient_gradient):
        """Riemannian gradient at ``x`` of a function whose ambient (Euclidean) gradient is given.

        For an embedded submanifold with the induced metric this is the tangent projection.
        """
        return self.to_tangent(x, ambient_gradient)

    def exp(self, x, v):
        """Exponential map: ``exp_x(v)`` for ``x (n, D)`` and tangent ``v (n, D)``.

        Like :meth:`log`, :meth:`dist` and the heat kernels, a sampler's inner-loop primitive: points are
        not validated here; public entry points validate them with :meth:`check_points`.
        """
        raise NotImplementedError

    def log(self, x, y):
        """Logarithm map: the tangent vector at ``x`` with ``exp_x(log_x(y)) = y`` and ``|v| = dist``."""
        raise NotImplementedError

    def dist(self, x, y):
        """Geodesic distance ``(n,)`` between rows of ``x`` and ``y`` (broadcast)."""
        raise NotImplementedError

    def norm(self, x, v):
        """Riemannian norm ``(n,)`` of tangent vectors (the Euclidean norm for these embeddings)."""
        xp = get_namespace(v)
        return xp.sqrt(xp.sum(v * v, axis=-1))

    def volume(self):
        """Riemannian volume of the manifold (``inf`` when not compact)."""
        raise NotImplementedError

    def random_uniform(self, n, rng=None, dtype=np.float64):
        """``n`` points from the normalised Riemannian volume; returns ``(n, D)``."""
        raise NotImplementedError

    def random_tangent_normal(self, x, rng=None):
        """Standard normal tangent vectors at ``x (n, D)`` (covariance: identity on the tangent space)."""
        rng = as_generator(rng)
        xp = get_namespace(x)
        noise = xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype)
        return self.to_tangent(x, noise)

    def uniform_log_density(self, x):
        """Log-density ``(n,)`` of the uniform law (``-log volume``)."""
        xp = get_namespace(x)
        return xp.full(x.shape[0], -np.log(self.volume()), dtype=x.dtype)

    # ---- heat kernel ------------------------------------------------------------------------
    def log_heat_kernel(self, x, y, s):
        """``log p_s(x, y)`` row by row (broadcast over leading axes); ``(..., D) -> (...)``.

        Parameters
        ----------
        x, y : (..., D) arrays
            Points on the manifold (not validated here; use :meth:`check_points`).
        s : float or array
            Heat time(s), broadcastable against the leading axes.
        """
        return self.log_heat_kernel_and_gradient(x, y, s)[0]

    def log_heat_kernel_and_gradient(self, x, y, s):
        """``log p_s(x, y)`` ``(...)`` and its Riemannian gradient in ``x`` ``(..., D)`` (broadcast)."""
        raise NotImplementedError

    def pairwise_log_heat_kernel(self, x, y, s, gradient=False):
        """All pairs: ``log p_s(x_j, y_i)`` ``(m, n)`` and optionally the gradients in ``x_j`` ``(m, n, D)``.

        ``s`` is a float, an ``(m, 1)`` column (one time per query) or an ``(1, n)`` row (one per point).
        """
        log_p, grad = self.log_heat_kernel_and_gradient(x[:, None, :], y[None, :, :], s)
        return (log_p, grad) if gradient else log_p

    def heat_kernel(self, x, y, s):
        """``p_s(x, y)`` (exponential of :meth:`log_heat_kernel`)."""
        xp = get_namespace(x, y)
        return xp.exp(self.log_heat_kernel(x, y, s))

    def sample_heat_kernel(self, x, s, rng=None):
        """Exact draws of Brownian motion at heat time ``s`` started at ``x (n, D)``."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.dim})"
