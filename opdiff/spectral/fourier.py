"""Fourier eigenbasis of Brownian motion on the flat torus (the periodic, "truncated" Brownian motion).

Process convention (as :class:`opdiff.processes.BrownianMotion`): ``dX = sigma dW`` with every
coordinate wrapped to ``[-pi, pi)``; generator ``L = (sigma^2 / 2) Delta``, carre du champ
``Gamma(f, g) = (sigma^2 / 2) <grad f, grad g>``, invariant law uniform (``mu = (2 pi)^-d``).
Eigenfunctions, orthonormal in ``L^2(mu)``: ``sqrt(2) cos(k . x)`` and ``sqrt(2) sin(k . x)`` for
frequencies ``k in Z^d \\ {0}`` (one of each pair ``+-k``), eigenvalue ``-(sigma^2 / 2) |k|^2``.
The basis holds all ``k`` with ``max_j |k_j| <= K``; products (``2 cos a cos b = cos(a - b) + cos(a + b)``
etc.) land on frequencies ``max_j |k_j| <= 2K``, the moment functions.
"""
import itertools

import numpy as np
import scipy.sparse as sp

from ..backend import as_generator, check_count, check_points, check_positive
from ..manifolds import FlatTorus

_SQRT2 = np.sqrt(2.0)


def canonical_frequencies(dim, max_frequency):
    """Frequencies ``k != 0`` with ``max|k_j| <= max_frequency`` whose first non-zero entry is positive,
    ordered by ``|k|^2``; ``(m, dim)`` int array."""
    K = int(max_frequency)
    grid = np.array(list(itertools.product(range(-K, K + 1), repeat=dim)), dtype=np.int64)
    nz = grid != 0
    first = np.argmax(nz, axis=1)
    keep = nz.any(1) & (grid[np.arange(len(grid)), first] > 0)
    freqs = grid[keep]
    order = np.lexsort(tuple(freqs.T[::-1]) + ((freqs**2).sum(1),))
    return freqs[order]


from .base import EigenBasis, check_brownian_process  # noqa: E402


class Fourier(EigenBasis):
    """Real Fourier eigenbasis on ``[-pi, pi)^dim`` (see the module docstring).

    Parameters
    ----------
    dim : int
    max_frequency : int
        ``K``: frequencies with ``max_j |k_j| <= K`` (``(2K+1)^d - 1`` functions).
    sigma : float
        Diffusion coefficient of ``dX = sigma dW``.

    Notes
    -----
    Basis order: for each canonical frequency ``k`` (sorted by ``|k|``), ``sqrt2 cos(k.x)`` then
    ``sqrt2 sin(k.x)``. Moment functions: ``1``, then the same pairs for ``max|k_j| <= 2K``.
    """

    def __init__(self, dim, max_frequency, sigma=1.0):
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim}")
        if int(max_frequency) != max_frequency or max_frequency < 1:
            raise ValueError(f"max_frequency: expected a positive integer, got {max_frequency}")
        self.dim, self.max_frequency = int(dim), int(max_frequency)
        self.sigma = check_positive(sigma, "sigma")
        self.generator_scale = 0.5 * self.sigma**2
        c = self.generator_scale
        self.frequencies = canonical_frequencies(self.dim, self.max_frequency)
        self.moment_frequencies = canonical_frequencies(self.dim, 2 * self.max_frequency)
        nf, nq = len(self.frequencies), len(self.moment_frequencies)
        self.n_blocks, self.block_size, self.n_moments = 1, 2 * nf, 1 + 2 * nq
        self.eigenvalues = np.repeat(-c * (self.frequencies**2).sum(1), 2).astype(np.float64)
        self.moment_eigenvalues = np.concatenate([[0.0], np.repeat(-c * (self.moment_frequencies**2).sum(1), 2)])
        self._radix = 4 * self.max_frequency + 1
        codes = self._encode(self.moment_frequencies)
        self._order = np.argsort(codes)
        self._sorted_codes = codes[self._order]
        pos = self._frequency_position(self.frequencies)
        self.basis_moment_index = np.stack([1 + 2 * pos, 2 + 2 * pos], axis=1).ravel()
        self.product_coefficients = self._products()

    # ---------------------------------------------------------------- tables
    def _encode(self, freqs):
        shift = 2 * self.max_frequency
        return (freqs + shift) @ (self._radix ** np.arange(self.dim, dtype=np.int64))

    def _frequency_position(self, freqs):
        codes = self._encode(freqs)
        pos = np.searchsorted(self._sorted_codes, codes)
        return self._order[np.minimum(pos, len(self._order) - 1)]

    def _canonical(self, q):
        """Sign ``s`` and canonical ``k`` with ``q = s k`` (``s = 0`` for ``q = 0``)."""
        nz = q != 0
        first = np.argmax(nz, axis=1)
        lead = q[np.arange(len(q)), first]
        sign = np.where(nz.any(1), np.sign(lead), 0)
        return sign, q * np.where(sign == 0, 1, sign)[:, None]

    def _terms(self, q, kind, weight):
        """Moment index and coefficient of ``weight * trig(q . x)`` with trig = cos (kind 0) or sin (kind 1),
        in the orthonormal moment functions (``sqrt2 cos``, ``sqrt2 sin``, ``1``)."""
        sign, k = self._canonical(q)
        pos = self._frequency_position(k)
        zero = sign == 0
        idx = np.where(zero, 0, 1 + 2 * pos + kind)
        if kind == 0:
            coef = np.where(zero, weight, weight / _SQRT2)
        else:
            coef = np.where(zero, 0.0, sign * weight / _SQRT2)
        return idx, coef

    def _products(self):
        nf = len(self.frequencies)
        B = self.block_size
        ia, ib = np.meshgrid(np.arange(nf), np.arange(nf), indexing="ij")
        ia, ib = ia.ravel(), ib.ravel()
        ka, kb = self.frequencies[ia], self.frequencies[ib]
        rows, cols, vals = [], [], []
        # (sqrt2 f_a)(sqrt2 f_b) = trig(a - b) +- trig(a + b): (kind_a, kind_b) -> [(kind, sign on a-b, sign on a+b)]
        table = {(0, 0): (0, 1.0, 1.0), (1, 1): (0, 1.0, -1.0), (1, 0): (1, 1.0, 1.0), (0, 1): (1, -1.0, 1.0)}
        for (sa, sb), (kind, s_minus, s_plus) in table.items():
            row = (2 * ia + sa) * B + (2 * ib + sb)
            for q, w in ((ka - kb, s_minus), (ka + kb, s_plus)):
                idx, coef = self._terms(q, kind, w)
                rows.append(row)
                cols.append(idx)
                vals.append(coef)
        P = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(B * B, self.n_moments))
        P.sum_duplicates()
        P.eliminate_zeros()
        return P

    # ---------------------------------------------------------------- evaluation
    def check_points(self, x, name="x"):
        return check_points(x, name, dim=self.dim)

    def check_data(self, x, name="X"):
        """Validate data angles: inside ``[-pi, pi]^dim`` (within ``1e-6``, radians, not degrees), then wrapped.

        Parameters
        ----------
        x : (n, dim) array
        name : str
            Argument name for error messages.

        Returns
        -------
        (n, dim) array
        """
        return FlatTorus(self.dim).check_points(self.check_points(x, name), name)

    def project(self, x):
        """Wrap to ``[-pi, pi)``."""
        return np.mod(np.asarray(x) + np.pi, 2.0 * np.pi) - np.pi

    def moment_values(self, x):
        x = self.check_points(x)
        phase = x @ self.moment_frequencies.T.astype(x.dtype)
        out = np.empty((x.shape[0], self.n_moments), dtype=x.dtype)
        out[:, 0] = 1.0
        out[:, 1::2] = _SQRT2 * np.cos(phase)
        out[:, 2::2] = _SQRT2 * np.sin(phase)
        return out[:, None, :]

    def values(self, x):
        x = self.check_points(x)
        phase = x @ self.frequencies.T.astype(x.dtype)
        out = np.empty((x.shape[0], self.block_size), dtype=x.dtype)
        out[:, 0::2] = _SQRT2 * np.cos(phase)
        out[:, 1::2] = _SQRT2 * np.sin(phase)
        return out

    def _derivative_weights(self, x):
        """``w`` with ``grad phi_n = w_n k_n``: ``-sqrt2 sin`` for cosines, ``sqrt2 cos`` for sines; ``(n, B)``."""
        phase = x @ self.frequencies.T.astype(x.dtype)
        w = np.empty((x.shape[0], self.block_size), dtype=x.dtype)
        w[:, 0::2] = -_SQRT2 * np.sin(phase)
        w[:, 1::2] = _SQRT2 * np.cos(phase)
        return w

    def _basis_frequencies(self, dtype):
        return np.repeat(self.frequencies, 2, axis=0).astype(dtype)

    def gradients(self, x):
        x = self.check_points(x)
        return self._derivative_weights(x)[:, :, None] * self._basis_frequencies(x.dtype)[None]

    def laplacians(self, x):
        x = self.check_points(x)
        return -(self._basis_frequencies(x.dtype) ** 2).sum(1) * self.values(x)

    def gradient_combination(self, x, coefficients):
        x = self.check_points(x)
        w = self._derivative_weights(x) * np.asarray(coefficients)
        return w @ self._basis_frequencies(x.dtype)

    def laplacian_combination(self, x, coefficients):
        lap = self.laplacians(x) * np.asarray(coefficients)
        return lap.sum(1)

    # ---------------------------------------------------------------- invariant law: uniform
    def invariant_logpdf(self, x):
        x = self.check_points(x)
        return np.full(x.shape[0], -self.dim * np.log(2.0 * np.pi), dtype=x.dtype)

    def sample_invariant(self, n, rng=None):
        return as_generator(rng).uniform(-np.pi, np.pi, size=(check_count(n, "n"), self.dim))

    def check_process(self, process):
        """Accept ``ManifoldBrownianMotion(FlatTorus(dim), sigma)`` or ``BrownianMotion(sigma)`` read on the torus."""
        check_brownian_process(process, self.sigma, "FlatTorus", self.dim, allow_euclidean=True)

    def __repr__(self):
        return f"Fourier(dim={self.dim}, max_frequency={self.max_frequency}, sigma={self.sigma}, n_basis={self.n_basis})"
