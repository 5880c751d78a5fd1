"""Hermite eigenbasis: each table and derivative against an independent route."""
import math

import numpy as np
import pytest
from scipy.special import eval_hermitenorm

from opdiff.processes import BrownianMotion, OrnsteinUhlenbeck
from opdiff.spectral import Hermite, hermite_functions, hermite_linearisation, multi_indices

RNG = np.random.default_rng(0)


def fd_gradient(f, x, h=1e-5):
    """Central differences, error O(h^2) ~ 1e-10 relative to the third derivative."""
    out = []
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        out.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(out, axis=-1)


def fd_laplacian(f, x, h=1e-4):
    """Second central differences: O(h^2) truncation plus O(eps / h^2) ~ 1e-8 rounding."""
    total = -2 * x.shape[1] * f(x)
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        total = total + f(x + e) + f(x - e)
    return total / h**2


def test_values_match_scipy_hermitenorm():
    y = RNG.normal(size=50) * 2
    H = hermite_functions(y, 12)
    for n in range(13):
        np.testing.assert_allclose(H[:, n], eval_hermitenorm(n, y) / math.sqrt(math.factorial(n)),
                                   rtol=1e-10, atol=1e-10)


def test_linearisation_against_gauss_hermite_quadrature():
    K = 10
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)  # exact for degree <= 79 >= 3K
    weights = weights / weights.sum()
    H = hermite_functions(nodes, 2 * K)
    quad = np.einsum("q,qa,qb,qk->abk", weights, H[:, : K + 1], H[:, : K + 1], H)
    np.testing.assert_allclose(hermite_linearisation(K), quad, atol=1e-9)
    # orthonormality in L^2(N(0, 1))
    np.testing.assert_allclose(np.einsum("q,qa,qb->ab", weights, H, H), np.eye(2 * K + 1), atol=1e-9)


def test_linearisation_is_stable_at_high_degree():
    T = hermite_linearisation(60)
    assert np.all(np.isfinite(T))
    a, b, j = 30, 25, 11  # exact integer arithmetic as the independent route
    exact = math.sqrt(math.factorial(a) * math.factorial(b) * math.factorial(a + b - 2 * j)) / (
        math.factorial(j) * math.factorial(a - j) * math.factorial(b - j))
    assert T[a, b, a + b - 2 * j] == pytest.approx(exact, rel=1e-11)


@pytest.mark.parametrize("kind,dim,K", [("tensor", 1, 6), ("tensor", 2, 4), ("tensor", 3, 3), ("product", 3, 5)])
def test_products_and_gradient_expansion_pointwise(kind, dim, K):
    basis = Hermite(dim, K, theta=0.7, kind=kind)
    x = RNG.normal(size=(9, dim))
    B, nb = basis.block_size, basis.n_blocks
    v = basis.values(x).reshape(9, nb, B)
    psi = basis.moment_values(x)
    prod = np.einsum("nga,ngb->ngab", v, v).reshape(9, nb, B * B)
    np.testing.assert_allclose(prod, np.einsum("qk,ngk->ngq", basis.product_coefficients.toarray(), psi), atol=1e-10)
    grads = basis.gradients(x).reshape(9, nb, B, dim)
    gg = np.einsum("ngad,ngbd->ngab", grads, grads).reshape(9, nb, B * B)
    np.testing.assert_allclose(gg, np.einsum("qk,ngk->ngq", basis.gradient_coefficients.toarray(), psi), atol=1e-9)
    # basis functions are moment functions
    np.testing.assert_allclose(v, psi[:, :, basis.basis_moment_index], atol=1e-12)
    assert basis.n_basis == (math.comb(dim + K, K) - 1 if kind == "tensor" else dim * K)


@pytest.mark.parametrize("kind", ["tensor", "product"])
def test_gradients_laplacians_and_eigen_relation_by_finite_differences(kind):
    theta = 1.3
    R = np.linalg.qr(RNG.normal(size=(2, 2)))[0]
    basis = Hermite(2, 4, theta=theta, kind=kind, rotation=R)
    x = RNG.normal(size=(6, 2))
    grad_fd = fd_gradient(basis.values, x)
    np.testing.assert_allclose(basis.gradients(x), grad_fd, atol=1e-7)
    lap_fd = fd_laplacian(basis.values, x)
    np.testing.assert_allclose(basis.laplacians(x), lap_fd, atol=2e-5)
    # L phi = theta (Delta phi - x . grad phi) = lambda phi
    L_phi = theta * (lap_fd - np.einsum("nbd,nd->nb", grad_fd, x))
    np.testing.assert_allclose(L_phi, np.tile(basis.eigenvalues, basis.n_blocks) * basis.values(x), atol=5e-5)
    coef = RNG.normal(size=basis.n_basis)
    np.testing.assert_allclose(basis.gradient_combination(x, coef), np.einsum("nbd,b->nd", grad_fd, coef), atol=1e-6)
    # same FD rounding as the Laplacians above (worst measured over 20 seeds 2.2e-6)
    np.testing.assert_allclose(basis.laplacian_combination(x, coef), lap_fd @ coef, atol=2e-5)


def test_invariant_term_expansion():
    for kind in ("tensor", "product"):
        basis = Hermite(3, 2, kind=kind)
        x = RNG.normal(size=(5, 3))
        coef, const = basis.invariant_term()
        direct = np.sum(x * x, 1) - 2 * 3  # |g|^2 + 2 div g for g = -x
        np.testing.assert_allclose(const + np.einsum("ngk,gk->n", basis.moment_values(x), coef), direct, atol=1e-12)


def test_pca_rotation_diagonalises_second_moment():
    X = RNG.normal(size=(500, 3)) @ np.array([[2.0, 0.5, 0], [0, 1.0, 0.3], [0, 0, 0.2]])
    basis = Hermite.pca(X, 3)
    Y = X @ basis.rotation
    second = Y.T @ Y / len(Y)
    assert np.allclose(second, np.diag(np.diag(second)), atol=1e-10)
    assert np.all(np.diff(np.diag(second)) <= 0)


def test_multi_indices_counts_and_order():
    idx = multi_indices(3, 4, min_degree=1)
    assert len(idx) == math.comb(7, 4) - 1 and np.all(np.diff(idx.sum(1)) >= 0)
    assert len({tuple(i) for i in idx}) == len(idx)


def test_float32_kept():
    x = RNG.normal(size=(4, 2)).astype(np.float32)
    assert Hermite(2, 3).values(x).dtype == np.float32


def test_bad_inputs():
    with pytest.raises(ValueError, match="degree"):
        Hermite(2, 0)
    with pytest.raises(ValueError, match="dim"):
        Hermite(0, 2)
    with pytest.raises(ValueError, match="kind"):
        Hermite(2, 2, kind="full")
    with pytest.raises(ValueError, match="rotation"):
        Hermite(2, 2, rotation=np.ones((2, 2)))
    with pytest.raises(ValueError, match="theta"):
        Hermite(2, 2, theta=-1)
    basis = Hermite(2, 2)
    with pytest.raises(ValueError, match="x"):
        basis.values(np.ones((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        basis.values(np.array([[np.nan, 0.0]]))
    basis.check_process(OrnsteinUhlenbeck(1.0))
    with pytest.raises(ValueError, match="process"):
        basis.check_process(OrnsteinUhlenbeck(2.0))
    with pytest.raises(ValueError, match="process"):
        basis.check_process(BrownianMotion(1.0))
