"""The eigenbasis contract shared by :class:`Hermite`, :class:`Fourier` and :class:`SphericalHarmonics`.

A basis holds eigenfunctions ``phi_1 .. phi_B`` (the constant excluded) of a symmetric diffusion
generator ``L = c (Delta + grad log mu . grad)`` with invariant law ``mu``, so that
``L phi_n = lambda_n phi_n`` and the carre du champ is ``Gamma(f, g) = c <grad f, grad g>``.
Products of two basis functions expand exactly over a larger set of eigenfunctions, the *moment
functions* ``psi_0 = 1, psi_1, ..., psi_{M-1}`` with eigenvalues ``mu_k``::

    phi_a phi_b = sum_k P[a b, k] psi_k                        (product expansion)
    <grad phi_a, grad phi_b> = sum_k G[a b, k] psi_k ,  G[ab, k] = (mu_k - lambda_a - lambda_b) / (2 c) P[ab, k]

(the second line is ``L(fg) = f Lg + g Lf + 2 Gamma(f, g)``). Under the forward law
``E_{rho_t}[psi_k] = exp(mu_k t) E_{rho_0}[psi_k]``, so every expectation the operator-informed
score matching needs is a sample mean of ``psi_k`` over the data.

Blocks. A basis is ``n_blocks`` independent copies of one block of ``block_size`` functions
(a tensor basis: one block; a per-coordinate basis: one block per coordinate) whose
products never mix blocks, so ``<grad phi_a, grad phi_b> = 0`` across blocks and the Gram matrices
are block-diagonal. The tables ``eigenvalues``, ``moment_eigenvalues``, ``product_coefficients`` and
``basis_moment_index`` describe one block and are shared by all blocks; flat basis index
``= block * block_size + i``.
"""
import numpy as np
import scipy.sparse as sp

from ..backend import check_points, get_namespace


class EigenBasis:
    """Abstract eigenbasis of a symmetric Markov generator (see the module docstring).

    Attributes
    ----------
    dim : int
        Dimension of the points ``x (n, dim)`` (ambient dimension on the sphere).
    generator_scale : float
        ``c`` in ``Gamma(f, g) = c <grad f, grad g>``.
    n_blocks, block_size, n_moments : int
    eigenvalues : (block_size,) array
        Generator eigenvalues ``lambda_i < 0`` of one block.
    moment_eigenvalues : (n_moments,) array
        Eigenvalues ``mu_k`` of the moment functions (``mu_0 = 0`` for the constant).
    basis_moment_index : (block_size,) int array
        ``phi_i = psi_{basis_moment_index[i]}``.
    product_coefficients : scipy.sparse.csr_matrix, (block_size**2, n_moments)
        The product expansion ``P``.
    """

    dim = None
    generator_scale = 1.0
    n_blocks = 1
    block_size = 0
    n_moments = 0
    eigenvalues = None
    moment_eigenvalues = None
    basis_moment_index = None
    product_coefficients = None

    # ----------------------------------------------------------------- derived tables
    @property
    def n_basis(self):
        """Total number of basis functions ``n_blocks * block_size``."""
        return self.n_blocks * self.block_size

    @property
    def gradient_coefficients(self):
        """Sparse ``G (block_size**2, n_moments)``: ``<grad phi_a, grad phi_b> = sum_k G[ab, k] psi_k``."""
        cached = getattr(self, "_gradient_coefficients", None)
        if cached is None:
            P = sp.coo_matrix(self.product_coefficients)
            a, b = np.divmod(P.row, self.block_size)
            lam = np.asarray(self.eigenvalues)
            factor = (np.asarray(self.moment_eigenvalues)[P.col] - lam[a] - lam[b]) / (2.0 * self.generator_scale)
            cached = sp.csr_matrix((P.data * factor, (P.row, P.col)), shape=P.shape)
            cached.eliminate_zeros()
            self._gradient_coefficients = cached
        return cached

    def invariant_term(self):
        """Expansion of ``|grad log mu|^2 + 2 Delta log mu`` (the score-free part of the ISM integrand).

        Returns
        -------
        coefficients : (n_blocks, n_moments) array
        constant : float
            ``|g|^2 + 2 div g = constant + sum_{blocks, k} coefficients[block, k] psi_k``.
        """
        return np.zeros((self.n_blocks, self.n_moments)), 0.0

    # ----------------------------------------------------------------- expectations
    def forward_moments(self, moment_means, t):
        """``E_{rho_t}[psi_k] = exp(mu_k t) E_{rho_0}[psi_k]``.

        Parameters
        ----------
        moment_means : (n_blocks, n_moments) array
        t : (T,) array

        Returns
        -------
        (T, n_blocks, n_moments) array
        """
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        decay = np.exp(np.outer(t, self.moment_eigenvalues))
        return decay[:, None, :] * np.asarray(moment_means)[None]

    def gram(self, moment_means, t):
        """``A_t[a, b] = E_{rho_t} <grad phi_a, grad phi_b>``, block by block: ``(T, n_blocks, B, B)``."""
        W = self.forward_moments(moment_means, t)
        T, nb, M = W.shape
        flat = self.gradient_coefficients @ W.reshape(T * nb, M).T  # (B^2, T nb)
        B = self.block_size
        A = np.asarray(flat).T.reshape(T, nb, B, B)
        return 0.5 * (A + np.swapaxes(A, -1, -2))

    def linear_term(self, moment_means, t):
        """``b_t[a] = -E_{rho_t}[<grad phi_a, grad log h_t>] ... = -(lambda_a / c) E_{rho_t}[phi_a]``: ``(T, n_blocks, B)``."""
        W = self.forward_moments(moment_means, t)
        lam = np.asarray(self.eigenvalues)
        return -(lam / self.generator_scale) * W[:, :, self.basis_moment_index]

    # ----------------------------------------------------------------- evaluation (abstract)
    def check_points(self, x, name="x"):
        """Validate points ``(n, dim)`` (and that they lie on the domain).

        Parameters
        ----------
        x : (n, dim) array
        name : str
            Argument name for error messages.

        Returns
        -------
        (n, dim) array
        """
        return check_points(x, name, dim=self.dim)

    def check_data(self, x, name="X"):
        """Validate data points: :meth:`check_points`, and inside the fundamental domain where there is one.

        Parameters
        ----------
        x : (n, dim) array
        name : str
            Argument name for error messages.

        Returns
        -------
        (n, dim) array
        """
        return self.check_points(x, name)

    def project(self, x):
        """Map points back onto the domain (wrap on the torus, normalise on the sphere)."""
        return x

    def moment_values(self, x):
        """Moment functions at ``x (n, dim)``: ``(n, n_blocks, n_moments)``."""
        raise NotImplementedError

    def values(self, x):
        """Basis functions at ``x (n, dim)``: ``(n, n_basis)``."""
        x = self.check_points(x)
        psi = self.moment_values(x)
        return psi[:, :, self.basis_moment_index].reshape(x.shape[0], -1)

    def gradients(self, x):
        """(Riemannian) gradients ``(n, n_basis, dim)``."""
        raise NotImplementedError

    def laplacians(self, x):
        """(Laplace-Beltrami) Laplacians ``(n, n_basis)``: ``Delta phi = lambda/c phi - grad log mu . grad phi``."""
        x = self.check_points(x)
        lam = (np.tile(np.asarray(self.eigenvalues), self.n_blocks) / self.generator_scale).astype(x.dtype)
        g = self.invariant_score(x)
        return lam * self.values(x) - np.einsum("nbd,nd->nb", self.gradients(x), g)

    def gradient_combination(self, x, coefficients):
        """``sum_n coefficients_n grad phi_n(x)``.

        Parameters
        ----------
        x : (n, dim) array
        coefficients : (n_basis,) or (n, n_basis) array

        Returns
        -------
        (n, dim) array
        """
        grads = self.gradients(x)
        coefficients = np.asarray(coefficients)
        if coefficients.ndim == 1:
            return np.einsum("nbd,b->nd", grads, coefficients)
        return np.einsum("nbd,nb->nd", grads, coefficients)

    def laplacian_combination(self, x, coefficients):
        """``sum_n coefficients_n Delta phi_n(x)``; ``(n,)``."""
        lap = self.laplacians(x)
        coefficients = np.asarray(coefficients)
        if coefficients.ndim == 1:
            return lap @ coefficients
        return np.sum(lap * coefficients, axis=1)

    # ----------------------------------------------------------------- invariant law
    def invariant_score(self, x):
        """``grad log mu (x)``; ``(n, dim)``."""
        x = self.check_points(x)
        xp = get_namespace(x)
        return xp.zeros_like(x)

    def invariant_score_divergence(self, x):
        """``Delta log mu (x)``; ``(n,)``."""
        x = self.check_points(x)
        return np.zeros(x.shape[0], dtype=x.dtype)

    def invariant_logpdf(self, x):
        """``log mu(x)`` (w.r.t. Lebesgue / Riemannian volume); ``(n,)``."""
        raise NotImplementedError

    def sample_invariant(self, n, rng=None):
        """``n`` draws from ``mu``; ``(n, dim)``."""
        raise NotImplementedError

    def spectral_gap(self):
        """Smallest ``|lambda|`` over the basis (the slowest decay rate)."""
        return float(np.min(np.abs(self.eigenvalues)))

    def check_process(self, process):
        """Raise ``ValueError`` if ``process``'s generator is not the one this basis diagonalises."""
        raise NotImplementedError


def check_brownian_process(process, sigma, manifold_name, dim, allow_euclidean):
    """Shared check of Fourier / spherical-harmonic bases: Brownian motion with constant ``sigma`` on the
    right manifold (``ManifoldBrownianMotion``), or the Euclidean ``BrownianMotion`` read periodically."""
    name = type(process).__name__
    manifold = getattr(process, "manifold", None)
    if manifold is not None:
        ok = (type(manifold).__name__ == manifold_name and getattr(manifold, "dim", None) == dim
              and getattr(process, "schedule", "constant") == "constant")
    else:
        ok = allow_euclidean and name == "BrownianMotion"
    proc_sigma = getattr(process, "sigma", None)
    if not ok or proc_sigma is None or callable(proc_sigma) or not np.isclose(float(proc_sigma), sigma):
        raise ValueError(
            f"process: expected Brownian motion with constant sigma={sigma} on {manifold_name}({dim}), "
            f"got {process!r}")


def sparse_from_dense(dense, tol=1e-14):
    """CSR matrix of ``dense`` with entries below ``tol * max|dense|`` dropped (exact zeros in exact arithmetic)."""
    dense = np.asarray(dense)
    scale = float(np.max(np.abs(dense))) if dense.size else 0.0
    dense = np.where(np.abs(dense) > tol * max(scale, 1e-300), dense, 0.0)
    return sp.csr_matrix(dense)
