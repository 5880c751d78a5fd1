"""Real spherical harmonics on S^2 against SciPy's complex harmonics and finite differences."""
import numpy as np
import pytest
import scipy.special as sps

from opdiff.spectral import SphericalHarmonics

RNG = np.random.default_rng(2)


def random_sphere(n):
    g = RNG.normal(size=(n, 3))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def scipy_real_harmonic(l, m, x):
    """Independent route: real harmonics from SciPy's complex ones, normalised for mu = area / (4 pi)."""
    polar = np.arccos(np.clip(x[:, 2], -1, 1))
    azimuth = np.arctan2(x[:, 1], x[:, 0])
    if hasattr(sps, "sph_harm_y"):
        Y = sps.sph_harm_y(l, abs(m), polar, azimuth)
    else:  # pragma: no cover - older SciPy
        Y = sps.sph_harm(abs(m), l, azimuth, polar)
    Y = Y * np.sqrt(4 * np.pi) * (-1) ** abs(m)  # undo the Condon-Shortley phase
    if m == 0:
        return Y.real
    return np.sqrt(2) * (Y.real if m > 0 else Y.imag)


def test_values_match_scipy():
    basis = SphericalHarmonics(4)
    x = random_sphere(20)
    v = basis.values(x)
    for i, (l, m) in enumerate(basis.basis_indices):
        np.testing.assert_allclose(v[:, i], scipy_real_harmonic(l, m, x), atol=1e-10)


def test_riemannian_gradient_by_finite_differences_and_laplace_beltrami():
    basis = SphericalHarmonics(3, sigma=1.2)
    x = random_sphere(5)
    grads = basis.gradients(x)
    assert np.allclose(np.einsum("nbd,nd->nb", grads, x), 0, atol=1e-12)  # tangent
    # f(x/|x|) is 0-homogeneous: its ambient gradient at |x| = 1 is the Riemannian gradient and
    # its ambient Laplacian is the Laplace-Beltrami operator (independent of the extension used above)
    f = lambda y: basis.values(y / np.linalg.norm(y, axis=1, keepdims=True))
    h = 1e-4
    e = np.eye(3) * h
    grad_fd = np.stack([(f(x + e[j]) - f(x - e[j])) / (2 * h) for j in range(3)], -1)
    np.testing.assert_allclose(grads, grad_fd, atol=1e-6)  # O(h^2)
    lap_fd = (sum(f(x + e[j]) + f(x - e[j]) for j in range(3)) - 6 * f(x)) / h**2
    # rounding ~12 eps |Y| / h^2 ~ 5e-7 dominates (worst measured over 20 seeds 1.5e-6): about 10x that
    np.testing.assert_allclose(basis.laplacians(x), lap_fd, atol=2e-5)
    ls = basis.basis_indices[:, 0]
    np.testing.assert_allclose(lap_fd, -(ls * (ls + 1)) * basis.values(x), atol=2e-5)
    np.testing.assert_allclose(basis.eigenvalues, -0.72 * ls * (ls + 1))


def test_products_and_gradient_expansion_pointwise():
    basis = SphericalHarmonics(3)
    x = random_sphere(6)
    v = basis.values(x)
    psi = basis.moment_values(x)[:, 0]
    prod = np.einsum("na,nb->nab", v, v).reshape(6, -1)
    np.testing.assert_allclose(prod, psi @ basis.product_coefficients.toarray().T, atol=1e-11)
    g = basis.gradients(x)
    gg = np.einsum("nad,nbd->nab", g, g).reshape(6, -1)
    np.testing.assert_allclose(gg, psi @ basis.gradient_coefficients.toarray().T, atol=1e-10)


def test_orthonormal_by_monte_carlo():
    basis = SphericalHarmonics(2)
    x = random_sphere(200000)
    v = basis.values(x)
    gram = v.T @ v / len(x)
    # Monte Carlo: each entry has standard error <= sqrt(E[Y^4]) / sqrt(n) < 3 / 447; 5 standard errors
    assert np.max(np.abs(gram - np.eye(basis.n_basis))) < 5 * 3 / np.sqrt(len(x))


def test_process_check():
    from opdiff.manifolds import FlatTorus, Hypersphere
    from opdiff.processes import BrownianMotion
    from opdiff.processes.manifold import ManifoldBrownianMotion

    basis = SphericalHarmonics(2, sigma=0.5)
    basis.check_process(ManifoldBrownianMotion(Hypersphere(2), 0.5))
    for bad in (ManifoldBrownianMotion(Hypersphere(2), 1.0), ManifoldBrownianMotion(FlatTorus(2), 0.5, T=3.0),
                BrownianMotion(0.5)):
        with pytest.raises(ValueError, match="process"):
            basis.check_process(bad)


def test_bad_inputs():
    basis = SphericalHarmonics(2)
    with pytest.raises(ValueError, match="sphere"):
        basis.values(np.array([[1.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="x"):
        basis.values(np.ones((2, 2)))
    with pytest.raises(ValueError, match="degree"):
        SphericalHarmonics(0)
