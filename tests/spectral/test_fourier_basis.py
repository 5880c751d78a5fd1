"""Fourier eigenbasis of periodic Brownian motion: tables and derivatives against independent routes."""
import numpy as np
import pytest

from opdiff.processes import BrownianMotion, OrnsteinUhlenbeck
from opdiff.spectral import Fourier

RNG = np.random.default_rng(1)


def test_orthonormal_on_uniform_grid():
    basis = Fourier(2, 3)
    # the uniform grid with 16 points per axis integrates trigonometric polynomials of degree < 16 exactly
    g = -np.pi + 2 * np.pi * np.arange(16) / 16
    x = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    v = basis.values(x)
    np.testing.assert_allclose(v.T @ v / len(x), np.eye(basis.n_basis), atol=1e-12)
    assert basis.n_basis == 7**2 - 1


@pytest.mark.parametrize("dim,K", [(1, 5), (2, 3), (3, 2)])
def test_products_and_gradient_expansion_pointwise(dim, K):
    basis = Fourier(dim, K, sigma=0.8)
    x = RNG.uniform(-np.pi, np.pi, size=(7, dim))
    v = basis.values(x)
    psi = basis.moment_values(x)[:, 0]
    prod = np.einsum("na,nb->nab", v, v).reshape(7, -1)
    np.testing.assert_allclose(prod, psi @ basis.product_coefficients.toarray().T, atol=1e-12)
    g = basis.gradients(x)
    gg = np.einsum("nad,nbd->nab", g, g).reshape(7, -1)
    np.testing.assert_allclose(gg, psi @ basis.gradient_coefficients.toarray().T, atol=1e-10)


def test_gradients_laplacians_eigenvalues_by_finite_differences():
    sigma = 1.7
    basis = Fourier(2, 2, sigma=sigma)
    x = RNG.uniform(-3, 3, size=(5, 2))
    h = 1e-4
    e = np.eye(2) * h
    grad_fd = np.stack([(basis.values(x + e[j]) - basis.values(x - e[j])) / (2 * h) for j in range(2)], -1)
    np.testing.assert_allclose(basis.gradients(x), grad_fd, atol=1e-7)  # O(h^2 |k|^3)
    lap_fd = sum(basis.values(x + e[j]) + basis.values(x - e[j]) for j in range(2)) - 4 * basis.values(x)
    lap_fd /= h**2
    # round-off 6 eps |v| / h^2 ~ 1.3e-7 dominates the O(h^2 |k|^4 / 12) truncation (measured 1.6e-7): 10x
    np.testing.assert_allclose(basis.laplacians(x), lap_fd, atol=2e-6)
    np.testing.assert_allclose(0.5 * sigma**2 * lap_fd, basis.eigenvalues * basis.values(x), atol=0.5 * sigma**2 * 2e-6)
    coef = RNG.normal(size=basis.n_basis)
    np.testing.assert_allclose(basis.gradient_combination(x, coef), np.einsum("nbd,b->nd", grad_fd, coef), atol=1e-6)


def test_periodicity_and_wrapping():
    basis = Fourier(2, 3)
    x = RNG.uniform(-np.pi, np.pi, size=(4, 2))
    np.testing.assert_allclose(basis.values(x + 2 * np.pi), basis.values(x), atol=1e-12)
    w = basis.project(x + np.array([4 * np.pi, -2 * np.pi]))
    np.testing.assert_allclose(w, x, atol=1e-12)
    assert np.all((w >= -np.pi) & (w < np.pi))


def test_process_check_and_bad_inputs():
    basis = Fourier(1, 4, sigma=0.5)
    basis.check_process(BrownianMotion(0.5))
    from opdiff.manifolds import FlatTorus, Hypersphere
    from opdiff.processes.manifold import ManifoldBrownianMotion

    basis.check_process(ManifoldBrownianMotion(FlatTorus(1), 0.5))
    with pytest.raises(ValueError, match="process"):
        basis.check_process(ManifoldBrownianMotion(FlatTorus(2), 0.5))
    with pytest.raises(ValueError, match="process"):
        basis.check_process(ManifoldBrownianMotion(Hypersphere(1), 0.5))
    with pytest.raises(ValueError, match="process"):
        basis.check_process(BrownianMotion(1.0))
    with pytest.raises(ValueError, match="process"):
        basis.check_process(OrnsteinUhlenbeck(1.0))
    with pytest.raises(ValueError, match="max_frequency"):
        Fourier(1, 0)
    with pytest.raises(ValueError, match="sigma"):
        Fourier(1, 2, sigma=0)
    with pytest.raises(ValueError, match="x"):
        basis.values(np.ones((2, 2)))
