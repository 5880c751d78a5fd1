"""The exact forward marginals of Gaussian data under stationary linear SDEs (GaussianData): the score against
the dense ``K d x K d`` Gaussian, its Jacobian and its derivative along a change of the process against
central differences, the exact-score ELBO identity with a full covariance, and the base inside the ELBO."""
import numpy as np
import pytest

from opdiff.estimators.elbo import dsm_elbo, gaussian_data_score
from opdiff.estimators.elbo import GaussianData
from opdiff.estimators.learned_sde import dsm_elbo_with_gradients
from opdiff.processes import StationaryLinearSDE

D_DATA = 3


def _law(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((D_DATA, D_DATA))
    return rng.standard_normal(D_DATA), A @ A.T + 0.1 * np.eye(D_DATA)


def _dense_score(process, mean, cov, y, t):
    """``-C^{-1} (y - m)`` with the full ``K d x K d`` covariance built from Kronecker products."""
    Phi, Sigma = process.transition(t)
    P, S = Phi.block, Sigma.block
    p = P[:, 0]
    full = np.kron(S, np.eye(D_DATA)) + np.kron(np.outer(p, p), cov)
    m = np.kron(p, mean)
    return -np.linalg.solve(full, y - m)


PROCESSES = {"vp": StationaryLinearSDE.vp, "cld": StationaryLinearSDE.cld, "malda": StationaryLinearSDE.malda}


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_score_equals_the_dense_gaussian(name):
    process = PROCESSES[name]()
    mean, cov = _law()
    law = GaussianData(mean, cov)
    score = law.marginal_score(process)
    rng = np.random.default_rng(1)
    y = rng.standard_normal((4, process.n_blocks * D_DATA))
    t = np.array([1e-3, 0.1, 0.5, 1.0])
    got = score(y, t)
    for i in range(4):
        # two routes (d rotated K x K solves vs one dense solve): round-off of condition number ~1e6 at t=1e-3
        np.testing.assert_allclose(got[i], _dense_score(process, mean, cov, y[i], t[i]), rtol=1e-8, atol=1e-8)


def test_isotropic_and_diagonal_laws_agree_with_the_scalar_score():
    process = StationaryLinearSDE.cld()
    y = np.random.default_rng(2).standard_normal((5, 2 * D_DATA))
    t = np.linspace(0.01, 1.0, 5)
    reference = gaussian_data_score(process, 0.3, 0.7)(y, t)
    for cov in (0.7, np.full(D_DATA, 0.7), 0.7 * np.eye(D_DATA)):
        np.testing.assert_allclose(GaussianData(np.full(D_DATA, 0.3), cov).marginal_score(process)(y, t),
                                   reference, rtol=1e-12, atol=1e-12)


def test_jacobian_and_process_derivative_against_central_differences():
    rng = np.random.default_rng(3)
    G, Bm = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    dQ = np.array([[0.0, 1.0], [-1.0, 0.0]])
    dD = np.array([[0.3, 0.1], [0.1, 0.2]])
    Q, D = G - G.T, Bm @ Bm.T + 0.1 * np.eye(2)
    mean, cov = _law(4)
    law = GaussianData(mean, cov)
    y = rng.standard_normal((3, 2 * D_DATA))
    t = np.array([0.05, 0.4, 0.9])

    def blocks(h):
        Phi, Sigma = StationaryLinearSDE(Q + h * dQ, D + h * dD, np.eye(2)).transition(t)
        return Phi.block, Sigma.block

    P, S = blocks(0.0)
    yb = y.reshape(3, 2, D_DATA)
    score, precision = law.block_score(P, S, yb)
    h = 1e-5
    (Pp, Sp), (Pm, Sm) = blocks(h), blocks(-h)
    dP, dS = (Pp - Pm) / (2 * h), (Sp - Sm) / (2 * h)
    fd = (law.block_score(Pp, Sp, yb)[0] - law.block_score(Pm, Sm, yb)[0]) / (2 * h)
    # central differences: O(h^2) = 1e-10 truncation; round-off 1e-16 |s| / h ~ 1e-11
    np.testing.assert_allclose(law.score_derivative(precision, P, dP, dS, yb), fd, rtol=1e-6, atol=1e-7)
    v = rng.standard_normal(yb.shape)
    E = np.zeros_like(yb)
    E[1, 0, 2] = h
    fd_y = (law.block_score(P, S, yb + E)[0] - law.block_score(P, S, yb - E)[0]) / (2 * h)
    np.testing.assert_allclose(np.sum(law.score_vjp(precision, v)[1] * E[1]) / h, np.sum(v[1] * fd_y[1]),
                               rtol=1e-7)


def test_base_enters_the_values():
    """With a base and a zero model the ELBO is the base's own (its (Q, D) gradient is checked against central
    differences in test_elbo.py)."""
    rng = np.random.default_rng(5)
    x = _law(6)[0] + rng.standard_normal((40, D_DATA)) @ np.diag([1.0, 0.5, 0.2])
    law = GaussianData.fit(x)
    process = StationaryLinearSDE.cld()
    zero = lambda y, t: np.zeros_like(y)  # noqa: E731
    reference = dsm_elbo(process, x, law.marginal_score(process), rng=7, boundary=False)
    # two routes to Phi and Sigma (expm + hybrid identity vs the process's series at small t): ~1e-12 relative
    np.testing.assert_allclose(dsm_elbo_with_gradients(process, x, zero, rng=7, base=law).values, reference,
                               rtol=1e-8, atol=1e-8)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="mean"):
        GaussianData(np.array([np.nan, 0.0]), 1.0)
    with pytest.raises(ValueError, match="cov"):
        GaussianData(np.zeros(2), np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov"):
        GaussianData(np.zeros(2), -np.eye(2))
    with pytest.raises(ValueError, match="cov"):
        GaussianData(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="X"):
        GaussianData.fit(np.zeros((1, 2)))
    with pytest.raises(TypeError, match="base"):
        dsm_elbo_with_gradients(StationaryLinearSDE.cld(), np.zeros((4, 2)), lambda y, t: y, base=(0.0, 1.0))


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_exact_score_elbo_identity_with_a_full_covariance(name):
    """Data N(mu, C), correlated: E[ELBO] with GaussianData's score equals -H(x) - KL(q_T || pi), the
    prior term summed over the eigen-directions of C (each an isotropic problem of prior_kl)."""
    from opdiff.estimators.elbo import gaussian_entropy, mean_elbo, prior_kl

    process = PROCESSES[name]()
    mean, cov = _law(10)
    x = np.random.default_rng(11).multivariate_normal(mean, cov, size=4000)
    law = GaussianData(mean, cov)
    result = mean_elbo(process, x, law.marginal_score(process), rng=12, time_quadrature=24)
    lam, U = np.linalg.eigh(cov)
    rotated = mean @ U
    expected = -sum(gaussian_entropy(v) + prior_kl(process, m, v) for m, v in zip(rotated, lam))
    # as the isotropic identity in test_elbo.py: 5 standard errors plus the O(t_min) gap (<= 0.05 nats)
    assert abs(result.estimate - expected) < 5 * result.standard_error + 0.05, (result, expected)
    assert result.standard_error < 0.1
