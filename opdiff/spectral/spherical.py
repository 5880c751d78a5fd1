"""Real spherical harmonics: the eigenbasis of Brownian motion on the sphere ``S^2``.

Process convention: Brownian motion ``dX = sigma dW`` on ``S^2`` (points are unit vectors of ``R^3``),
generator ``L = (sigma^2 / 2) Delta_S`` (Laplace-Beltrami), carre du champ
``Gamma(f, g) = (sigma^2 / 2) <grad_S f, grad_S g>``, invariant law uniform (``mu = 1 / (4 pi)``).
Real harmonics of degree ``l``, orthonormal in ``L^2(mu)``::

    Y_l0 = sqrt(2l + 1) P_l(z),
    Y_lm = sqrt(2 (2l+1) (l-m)! / (l+m)!) P_l^(m)(z) Re (x + i y)^m        (m > 0)
    Y_l,-m = same with Im (x + i y)^m

(``P_l^(m)`` the m-th derivative of the Legendre polynomial, no Condon-Shortley sign), with
``Delta_S Y_lm = -l (l+1) Y_lm``. The basis holds degrees ``1..L``; products of two of them expand over
degrees ``0..2L`` (the moment functions), with coefficients (Gaunt numbers) computed by exact
quadrature: Gauss-Legendre in ``z`` times a uniform grid in the azimuth, exact for the degree-``4L``
integrands.
"""
import numpy as np
from scipy.special import gammaln

from ..backend import as_generator, check_count, check_points, check_positive
from .base import EigenBasis, check_brownian_process, sparse_from_dense


def _harmonic_indices(max_degree, min_degree=0):
    """``(l, m)`` pairs, ``m = -l..l``, for ``min_degree <= l <= max_degree``; ``(count, 2)`` int array."""
    return np.array([(l, m) for l in range(min_degree, max_degree + 1) for m in range(-l, l + 1)],
                    dtype=np.int64).reshape(-1, 2)


def _legendre_derivatives(z, max_degree):
    """``Q[..., l, m] = d^m P_l / dz^m (z)`` for ``0 <= m <= l <= max_degree`` (zero for ``m > l``).

    Upward recurrence ``(l - m) Q_l^m = (2l - 1) z Q_{l-1}^m - (l + m - 1) Q_{l-2}^m`` from
    ``Q_m^m = (2m - 1)!!``.
    """
    L = max_degree
    Q = np.zeros(z.shape + (L + 2, L + 2))
    for m in range(L + 1):
        Q[..., m, m] = np.exp(gammaln(2 * m + 1) - m * np.log(2.0) - gammaln(m + 1))  # (2m-1)!!
        if m + 1 <= L:
            Q[..., m + 1, m] = (2 * m + 1) * z * Q[..., m, m]
        for l in range(m + 2, L + 1):
            Q[..., l, m] = ((2 * l - 1) * z * Q[..., l - 1, m] - (l + m - 1) * Q[..., l - 2, m]) / (l - m)
    return Q


class SphericalHarmonics(EigenBasis):
    """Real spherical harmonics on ``S^2`` up to degree ``L`` (see the module docstring).

    Parameters
    ----------
    degree : int
        ``L``: degrees ``1..L`` (``(L+1)^2 - 1`` functions).
    sigma : float
        Diffusion coefficient of Brownian motion on the sphere.
    tol : float
        Tolerance on ``| |x| - 1 |`` for points.
    """

    dim = 3

    def __init__(self, degree, sigma=1.0, tol=1e-6):
        if int(degree) != degree or degree < 1:
            raise ValueError(f"degree: expected a positive integer, got {degree}")
        self.degree = int(degree)
        self.sigma = check_positive(sigma, "sigma")
        self.tol = check_positive(tol, "tol")
        self.generator_scale = 0.5 * self.sigma**2
        L = self.degree
        self.basis_indices = _harmonic_indices(L, 1)
        self.moment_indices = _harmonic_indices(2 * L, 0)
        self.n_blocks, self.block_size, self.n_moments = 1, len(self.basis_indices), len(self.moment_indices)
        self.basis_moment_index = np.arange(1, 1 + self.block_size)  # graded order: basis = moments 1..B
        l_b, l_m = self.basis_indices[:, 0], self.moment_indices[:, 0]
        self.eigenvalues = -self.generator_scale * (l_b * (l_b + 1)).astype(np.float64)
        self.moment_eigenvalues = -self.generator_scale * (l_m * (l_m + 1)).astype(np.float64)
        self.product_coefficients = self._products()

    def quadrature(self, exact_degree):
        """Nodes ``(q, 3)`` and weights ``(q,)`` exact for polynomials of degree ``<= exact_degree`` on ``S^2``
        against ``mu = sigma_area / (4 pi)`` (weights sum to one)."""
        n_z = exact_degree // 2 + 1
        n_phi = exact_degree + 1
        z, wz = np.polynomial.legendre.leggauss(n_z)
        phi = 2.0 * np.pi * np.arange(n_phi) / n_phi
        zz, pp = np.meshgrid(z, phi, indexing="ij")
        rho = np.sqrt(1.0 - zz**2)
        nodes = np.stack([rho * np.cos(pp), rho * np.sin(pp), zz], axis=-1).reshape(-1, 3)
        weights = np.repeat(wz / 2.0, n_phi) / n_phi
        return nodes, weights

    def _products(self):
        nodes, w = self.quadrature(4 * self.degree)
        Y = self._harmonics(nodes, self.moment_indices)  # (q, M)
        Yb = Y[:, self.basis_moment_index]  # (q, B)
        pairs = (Yb[:, :, None] * Yb[:, None, :]).reshape(len(w), -1)  # (q, B^2)
        return sparse_from_dense(pairs.T @ (w[:, None] * Y), tol=1e-12)

    # ---------------------------------------------------------------- evaluation
    def _harmonics(self, x, indices, gradient=False):
        z = x[:, 2]
        L = int(indices[:, 0].max())
        Q = _legendre_derivatives(z, L + 1)
        w = x[:, 0] + 1j * x[:, 1]
        powers = w[:, None] ** np.arange(L + 1)  # (n, L+1)
        l, m = indices[:, 0], indices[:, 1]
        am = np.abs(m)
        norm = np.where(m == 0, np.sqrt(2 * l + 1.0),
                        np.sqrt(2.0 * (2 * l + 1) * np.exp(gammaln(l - am + 1) - gammaln(l + am + 1))))
        q = Q[:, l, am]
        wm = powers[:, am]
        trig = np.where(m >= 0, wm.real, wm.imag)
        values = (norm * q * trig).astype(x.dtype, copy=False)  # float64 recurrences, float32 kept
        if not gradient:
            return values
        dq = Q[:, l, am + 1]
        wm1 = powers[:, np.maximum(am - 1, 0)] * am  # m w^{m-1}
        # d/dx Re w^m = m Re w^{m-1}, d/dy Re w^m = -m Im w^{m-1}; d/dx Im w^m = m Im w^{m-1}, d/dy Im w^m = m Re w^{m-1}
        tx = np.where(m >= 0, wm1.real, wm1.imag)
        ty = np.where(m >= 0, -wm1.imag, wm1.real)
        grad = norm[:, None] * np.stack([q * tx, q * ty, dq * trig], axis=-1)  # (n, B, 3) ambient gradient of the extension
        radial = np.einsum("nbd,nd->nb", grad, x)
        return values, (grad - radial[:, :, None] * x[:, None, :]).astype(x.dtype, copy=False)

    def check_points(self, x, name="x"):
        x = check_points(x, name, dim=3)
        err = np.abs(np.linalg.norm(x, axis=1) - 1.0)
        if np.any(err > self.tol):
            worst = int(np.argmax(err))
            raise ValueError(f"{name}: expected points on the unit sphere S^2 (tolerance {self.tol:g}); row {worst} "
                             f"is at distance {float(err[worst]):.3g} from it")
        return x

    def project(self, x):
        x = np.asarray(x)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def moment_values(self, x):
        x = self.check_points(x)
        return self._harmonics(x, self.moment_indices)[:, None, :]

    def values(self, x):
        x = self.check_points(x)
        return self._harmonics(x, self.basis_indices)

    def gradients(self, x):
        """Riemannian gradients (tangent vectors in ambient coordinates); ``(n, n_basis, 3)``."""
        x = self.check_points(x)
        return self._harmonics(x, self.basis_indices, gradient=True)[1]

    # ---------------------------------------------------------------- invariant law: uniform
    def invariant_logpdf(self, x):
        x = self.check_points(x)
        return np.full(x.shape[0], -np.log(4.0 * np.pi), dtype=x.dtype)

    def sample_invariant(self, n, rng=None):
        g = as_generator(rng).standard_normal((check_count(n, "n"), 3))
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    def check_process(self, process):
        """Accept ``ManifoldBrownianMotion(Hypersphere(2), sigma)`` (constant schedule)."""
        check_brownian_process(process, self.sigma, "Hypersphere", 2, allow_euclidean=False)

    def __repr__(self):
        return f"SphericalHarmonics(degree={self.degree}, sigma={self.sigma}, n_basis={self.n_basis})"
