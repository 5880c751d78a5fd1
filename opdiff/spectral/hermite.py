"""Hermite eigenbasis of the Ornstein-Uhlenbeck generator.

Process convention (as :class:`opdiff.processes.OrnsteinUhlenbeck`): ``dX = -theta X dt + sqrt(2 theta) dW``,
stationary ``mu = N(0, I)``, generator ``L = theta (Delta - x . grad)``, carre du champ
``Gamma(f, g) = theta <grad f, grad g>``. The orthonormal Hermite functions
``h_n = He_n / sqrt(n!)`` satisfy ``L h_alpha = -theta |alpha| h_alpha`` with
``h_alpha(x) = prod_j h_{alpha_j}(x_j)``.

Two bases:

- ``kind="tensor"``: all ``h_alpha`` with ``1 <= |alpha| <= K`` (``C(d+K, K) - 1`` functions, one block);
- ``kind="product"``: ``h_k(x_j)``, ``j = 1..d``, ``k = 1..K`` (``d K`` functions in ``d`` blocks of ``K``;
  Gram matrices are block-diagonal, cost linear in ``d``).

An optional orthogonal ``rotation`` ``R`` (e.g. :meth:`Hermite.pca`) evaluates the basis at ``y = x R``;
OU is rotation invariant, so the rotated functions are eigenfunctions with the same eigenvalues.
"""
import numpy as np
from scipy.special import gammaln

from ..backend import as_generator, check_choice, check_count, check_points, check_positive
from .base import EigenBasis, sparse_from_dense


def hermite_functions(y, max_degree):
    """Orthonormal Hermite polynomials ``h_0 .. h_max_degree`` at ``y``.

    Three-term recurrence ``h_{n+1} = (y h_n - sqrt(n) h_{n-1}) / sqrt(n + 1)`` (stable: no factorials).

    Parameters
    ----------
    y : (...) array
    max_degree : int
        ``>= 0``.

    Returns
    -------
    (..., max_degree + 1) array
    """
    max_degree = check_count(max_degree, "max_degree", minimum=0)
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise TypeError(f"y: expected a real numeric array, got dtype {y.dtype}")
    out = np.empty(y.shape + (max_degree + 1,), dtype=y.dtype if y.dtype == np.float32 else np.float64)
    out[..., 0] = 1.0
    if max_degree >= 1:
        out[..., 1] = y
    for n in range(1, max_degree):
        out[..., n + 1] = (y * out[..., n] - np.sqrt(n) * out[..., n - 1]) / np.sqrt(n + 1.0)
    return out


def hermite_linearisation(max_degree):
    """Linearisation table of orthonormal Hermite products, computed in log space.

    ``h_a h_b = sum_k T[a, b, k] h_k`` with, for ``k = a + b - 2j``, ``0 <= j <= min(a, b)``::

        T[a, b, k] = sqrt(a! b! k!) / (j! (a - j)! (b - j)!)

    (from ``He_a He_b = sum_j C(a,j) C(b,j) j! He_{a+b-2j}``), evaluated through ``gammaln`` so that no
    factorial overflows.

    Parameters
    ----------
    max_degree : int
        ``>= 0``.

    Returns
    -------
    (max_degree + 1, max_degree + 1, 2 max_degree + 1) array
    """
    K = check_count(max_degree, "max_degree", minimum=0)
    table = np.zeros((K + 1, K + 1, 2 * K + 1))
    a, b = np.meshgrid(np.arange(K + 1), np.arange(K + 1), indexing="ij")
    for j in range(K + 1):
        ok = (j <= a) & (j <= b)
        k = a + b - 2 * j
        log_c = (0.5 * (gammaln(a + 1) + gammaln(b + 1) + gammaln(k + 1))
                 - gammaln(j + 1) - gammaln(np.maximum(a - j, 0) + 1) - gammaln(np.maximum(b - j, 0) + 1))
        table[a[ok], b[ok], k[ok]] = np.exp(log_c[ok])
    return table


def multi_indices(dim, max_degree, min_degree=0):
    """All multi-indices ``alpha`` of ``N^dim`` with ``min_degree <= |alpha| <= max_degree``, graded order.

    Parameters
    ----------
    dim : int
        ``>= 1``.
    max_degree : int
        ``>= 0``.
    min_degree : int
        ``0 <= min_degree``; none are returned when it exceeds ``max_degree``.

    Returns
    -------
    (m, dim) int array
    """
    dim = check_count(dim, "dim")
    max_degree = check_count(max_degree, "max_degree", minimum=0)
    min_degree = check_count(min_degree, "min_degree", minimum=0)
    out = []

    def rec(prefix, remaining, slots):
        if slots == 1:
            out.append(prefix + [remaining])
            return
        for first in range(remaining, -1, -1):
            rec(prefix + [first], remaining - first, slots - 1)

    for total in range(min_degree, max_degree + 1):
        rec([], total, dim)
    return np.array(out, dtype=np.int64).reshape(-1, dim)


class Hermite(EigenBasis):
    """Orthonormal Hermite eigenfunctions of ``OrnsteinUhlenbeck(theta)`` (see the module docstring).

    Parameters
    ----------
    dim : int
        Data dimension ``d``.
    degree : int
        ``K``: maximal total degree (``kind="tensor"``) or per-coordinate degree (``kind="product"``).
    theta : float
        OU rate; eigenvalues are ``-theta |alpha|``.
    kind : {"tensor", "product"}
    rotation : (d, d) orthogonal array, optional
        Evaluate the basis at ``y = x @ rotation`` (see :meth:`pca`).
    """

    def __init__(self, dim, degree, theta=1.0, kind="tensor", rotation=None):
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim}")
        if int(degree) != degree or degree < 1:
            raise ValueError(f"degree: expected a positive integer, got {degree}")
        check_choice(kind, "kind", ("tensor", "product"))
        self.dim, self.degree, self.kind = int(dim), int(degree), kind
        self.theta = check_positive(theta, "theta")
        self.generator_scale = self.theta
        if rotation is not None:
            rotation = np.asarray(rotation, dtype=np.float64)
            if rotation.shape != (self.dim, self.dim):
                raise ValueError(f"rotation: expected shape ({dim}, {dim}), got {rotation.shape}")
            if not np.allclose(rotation.T @ rotation, np.eye(self.dim), atol=1e-8):
                raise ValueError("rotation: expected an orthogonal matrix (R^T R = I)")
        self.rotation = rotation
        K = self.degree
        self._table = hermite_linearisation(K)
        if kind == "product":
            self.n_blocks, self.block_size, self.n_moments = self.dim, K, 2 * K + 1
            self.basis_moment_index = np.arange(1, K + 1)
            self.eigenvalues = -self.theta * np.arange(1, K + 1, dtype=np.float64)
            self.moment_eigenvalues = -self.theta * np.arange(2 * K + 1, dtype=np.float64)
            P = self._table[1:, 1:, :].reshape(K * K, 2 * K + 1)
            self.product_coefficients = sparse_from_dense(P)
        else:
            self.basis_indices = multi_indices(self.dim, K, min_degree=1)
            self.moment_indices = multi_indices(self.dim, 2 * K)
            self.n_blocks, self.block_size = 1, len(self.basis_indices)
            self.n_moments = len(self.moment_indices)
            self._radix = 2 * K + 1
            codes = self._encode(self.moment_indices)
            self._order = np.argsort(codes)
            self._sorted_codes = codes[self._order]
            self.basis_moment_index = self._lookup(self.basis_indices)
            self.eigenvalues = -self.theta * self.basis_indices.sum(1).astype(np.float64)
            self.moment_eigenvalues = -self.theta * self.moment_indices.sum(1).astype(np.float64)
            self.product_coefficients = self._tensor_products()

    @classmethod
    def pca(cls, X, degree, theta=1.0, kind="product"):
        """Basis rotated onto the principal axes of ``X`` (eigenvectors of ``X^T X / n``, no centring:
        OU contracts towards the origin, so only rotations about it keep the generator)."""
        X = check_points(X, "X")
        second = np.asarray(X, dtype=np.float64).T @ np.asarray(X, dtype=np.float64) / X.shape[0]
        w, V = np.linalg.eigh(second)
        return cls(X.shape[1], degree, theta=theta, kind=kind, rotation=V[:, np.argsort(w)[::-1]])

    # ---------------------------------------------------------------- tables
    def _encode(self, indices):
        return indices @ (self._radix ** np.arange(self.dim, dtype=np.int64))

    def _lookup(self, indices):
        codes = self._encode(indices)
        pos = np.searchsorted(self._sorted_codes, codes)
        return self._order[pos]

    def _tensor_products(self):
        B, M = self.block_size, self.n_moments
        a_idx, g_idx = self.basis_indices, self.moment_indices
        rows = []
        chunk = max(1, int(4e6 // max(M * B, 1)))
        for start in range(0, B, chunk):
            a = a_idx[start:start + chunk]  # (c, d)
            block = np.ones((len(a), B, M))
            for j in range(self.dim):
                block *= self._table[a[:, None, None, j], a_idx[None, :, None, j], g_idx[None, None, :, j]]
            rows.append(sparse_from_dense(block.reshape(-1, M)))
        import scipy.sparse as sp

        return sp.vstack(rows).tocsr()

    def invariant_term(self):
        coef = np.zeros((self.n_blocks, self.n_moments))
        if self.kind == "product":
            coef[:, 2] = np.sqrt(2.0)
        else:
            twos = 2 * np.eye(self.dim, dtype=np.int64)
            coef[0, self._lookup(twos)] = np.sqrt(2.0)
        return coef, -float(self.dim)

    # ---------------------------------------------------------------- evaluation
    def _rotate(self, x):
        x = np.asarray(x)
        return x if self.rotation is None else x @ self.rotation.astype(x.dtype, copy=False)

    def _unrotate(self, g):
        return g if self.rotation is None else g @ self.rotation.T.astype(g.dtype, copy=False)

    def moment_values(self, x):
        y = self._rotate(self.check_points(x))
        H = hermite_functions(y, 2 * self.degree)  # (n, d, 2K+1)
        if self.kind == "product":
            return H
        out = np.ones((y.shape[0], self.n_moments), dtype=H.dtype)
        for j in range(self.dim):
            out *= H[:, j, self.moment_indices[:, j]]
        return out[:, None, :]

    def _coordinate_tables(self, y, derivative):
        H = hermite_functions(y, self.degree)  # (n, d, K+1)
        D = np.zeros_like(H)
        k = np.arange(1, self.degree + 1)
        if derivative == 1:
            D[..., 1:] = np.sqrt(k) * H[..., :-1]
        else:
            D[..., 2:] = np.sqrt(k[1:] * (k[1:] - 1.0)) * H[..., :-2]
        return H, D

    def gradients(self, x):
        y = self._rotate(self.check_points(x))
        H, D = self._coordinate_tables(y, 1)
        n, d = y.shape
        if self.kind == "product":
            grads = np.zeros((n, d, self.degree, d), dtype=H.dtype)
            for j in range(d):
                grads[:, j, :, j] = D[:, j, 1:]
            grads = grads.reshape(n, d * self.degree, d)
        else:
            alpha = self.basis_indices
            grads = np.empty((n, self.block_size, d), dtype=H.dtype)
            for j in range(d):
                g = D[:, j, alpha[:, j]]
                for i in range(d):
                    if i != j:
                        g = g * H[:, i, alpha[:, i]]
                grads[:, :, j] = g
        return self._unrotate(grads)

    def laplacians(self, x):
        y = self._rotate(self.check_points(x))
        if self.kind != "product":
            return super().laplacians(x)
        H, D2 = self._coordinate_tables(y, 2)
        return D2[:, :, 1:].reshape(y.shape[0], -1)

    def gradient_combination(self, x, coefficients):
        if self.kind != "product":
            return super().gradient_combination(x, coefficients)
        y = self._rotate(self.check_points(x))
        _, D = self._coordinate_tables(y, 1)
        coef = np.asarray(coefficients).reshape(-1, self.dim, self.degree)
        return self._unrotate(np.sum(D[:, :, 1:] * coef, axis=2))

    def laplacian_combination(self, x, coefficients):
        if self.kind != "product":
            return super().laplacian_combination(x, coefficients)
        y = self._rotate(self.check_points(x))
        _, D2 = self._coordinate_tables(y, 2)
        coef = np.asarray(coefficients).reshape(-1, self.dim, self.degree)
        return np.sum(D2[:, :, 1:] * coef, axis=(1, 2))

    # ---------------------------------------------------------------- invariant law N(0, I)
    def invariant_score(self, x):
        return -self.check_points(x)

    def invariant_score_divergence(self, x):
        x = self.check_points(x)
        return np.full(x.shape[0], -float(self.dim), dtype=x.dtype)

    def invariant_logpdf(self, x):
        x = self.check_points(x)
        return -0.5 * np.sum(x * x, axis=1) - x.dtype.type(0.5 * self.dim * np.log(2.0 * np.pi))

    def sample_invariant(self, n, rng=None):
        return as_generator(rng).standard_normal((check_count(n, "n"), self.dim))

    def check_process(self, process):
        theta = getattr(process, "theta", None)
        if theta is None or not np.isclose(float(theta), self.theta):
            raise ValueError(
                f"process: Hermite(theta={self.theta}) diagonalises OrnsteinUhlenbeck(theta={self.theta}), "
                f"got {type(process).__name__}" + (f"(theta={theta})" if theta is not None else "")
            )

    def __repr__(self):
        return (f"Hermite(dim={self.dim}, degree={self.degree}, theta={self.theta}, kind={self.kind!r}, "
                f"n_basis={self.n_basis})")
