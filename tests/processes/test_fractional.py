"""FractionalDiffusion and MA-fBM: weights, covariance convergence, transitions vs ODE / closed forms /
Monte Carlo, score structure vs finite differences, reverse sampling, validation."""
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gamma as gamma_function

from opdiff.datasets import GaussianMixture
from opdiff.processes import VESDE, VPSDE
from opdiff.processes.fractional import (FractionalDiffusion, fbm_covariance, fbm_variance_constant,
                                         mafbm_covariance, mafbm_speeds, mafbm_weights)

GRID = np.linspace(0.05, 1.0, 10)


@pytest.mark.parametrize("K, H, omega, error", [
    (1, 0.9, [0.8042], 0.272), (2, 0.7, [0.9058, -0.7018], 0.012), (2, 0.9, [0.7695, -0.9204], 0.048),
    (3, 0.7, [1.4605, -0.7911, -0.3084], 1e-4), (5, 0.3, [28.17, -38.35, 13.26, -2.29, 1.77], 0.008)])
def test_optimal_weights_match_notes_table(K, H, omega, error):
    w, rel = mafbm_weights(mafbm_speeds(K), H, return_error=True)
    # the notes print 4 significant digits
    np.testing.assert_allclose(w, omega, rtol=2e-3, atol=6e-3)
    assert abs(rel - error) < max(0.06 * error, 6e-4)


def test_weights_are_the_l2_optimum_by_quadrature():
    """b_k = int_0^T E[B^H_t Y^k_t] dt (type II) by quadrature of the Volterra kernels."""
    H, g = 0.7, mafbm_speeds(3)
    a = H + 0.5

    def cross(t, gk):  # E[B^H_t Y_t] = int_0^t (t-u)^{a-1}/Gamma(a) e^{-gk (t-u)} du
        return quad(lambda v: v ** (a - 1) * np.exp(-gk * v), 0, t)[0] / gamma_function(a)

    b = np.array([quad(lambda t: cross(t, gk), 0, 1, limit=100)[0] for gk in g])
    # A_ij = int_0^1 E[Y^i_t Y^j_t] dt with E[Y^i_t Y^j_t] = (1 - e^{-(g_i + g_j) t}) / (g_i + g_j)
    A = np.array([[quad(lambda t: -np.expm1(-(g[i] + g[j]) * t) / (g[i] + g[j]), 0, 1)[0] for j in range(3)]
                  for i in range(3)])
    np.testing.assert_allclose(mafbm_weights(g, H), np.linalg.solve(A, b), rtol=1e-6)


def test_mafbm_covariance_approaches_fbm_as_K_grows():
    """Error table: type I (stationary start) vs the standard fBM covariance, type II vs Riemann-Liouville."""
    T, S = np.meshgrid(GRID, GRID)
    H = 0.7
    errors_I = []
    for K in (1, 2, 4, 6, 8):
        g = mafbm_speeds(K, 10.0 ** (K / 2) if K > 1 else 1.0)
        w = mafbm_weights(g, H, kind="I")
        cov = mafbm_covariance(T, S, g, w, kind="I") / fbm_variance_constant(H)
        errors_I.append(np.abs(cov - fbm_covariance(T, S, H)).max())
    assert np.all(np.diff(errors_I) < 0) and errors_I[-1] < 0.01, errors_I

    def riemann_liouville(t, s):
        return quad(lambda u: ((t - u) * (s - u)) ** (H - 0.5), 0, min(t, s))[0] / gamma_function(H + 0.5) ** 2

    reference = np.vectorize(riemann_liouville)(T[::3, ::3], S[::3, ::3])
    errors_II = []
    for K in (1, 2, 3, 4):
        g = mafbm_speeds(K)
        errors_II.append(np.abs(mafbm_covariance(T[::3, ::3], S[::3, ::3], g, mafbm_weights(g, H)) - reference).max())
    assert np.all(np.diff(errors_II) < 0) and errors_II[-1] < 5e-3, errors_II
    # V_H = 1 and standard BM covariance min(t, s) at H = 1/2
    np.testing.assert_allclose(fbm_variance_constant(0.5), 1.0)
    np.testing.assert_allclose(fbm_covariance(T, S, 0.5), np.minimum(T, S), atol=1e-15)


def test_normalised_transition_matches_notes():
    process = FractionalDiffusion(0.9, 2, pd_eps=0.0)  # the exact law (no sampling regulariser)
    np.testing.assert_allclose(process.omega, [1.220, -1.459], atol=1e-3)
    _, Sigma = process.transition(1.0)
    expected = [[1.0, 0.5506, 0.0722], [0.5506, 0.9516, 0.0499], [0.0722, 0.0499, 0.0250]]
    np.testing.assert_allclose(Sigma.block, expected, atol=1e-4)
    eta, variance = process.conditional_moments(0.1)
    assert 6.4e-4 < variance < 6.6e-4


def test_standard_processes_recovered():
    t = np.array([0.1, 0.5, 1.0])
    # K = 0: plain VP / VE
    for process, reference in ((FractionalDiffusion(0.7, 0), VPSDE()),
                               (FractionalDiffusion(0.7, 0, kind="ve"), VESDE())):
        Phi, Sigma = process.transition(t)
        ref_phi, ref_sigma = reference.transition(t)
        np.testing.assert_allclose(Phi.block[:, 0, 0], ref_phi.c, rtol=1e-12)
        np.testing.assert_allclose(Sigma.block[:, 0, 0], ref_sigma.c, rtol=1e-9)
    # H = 1/2, K = 1 with gamma = 0, omega = 1: the OU process is the Brownian motion itself
    process = FractionalDiffusion(0.5, 1, speeds=[0.0], omega=[1.0], normalize=False, pd_eps=0.0)
    Phi, Sigma = process.transition(t)
    ref_phi, ref_sigma = VPSDE().transition(t)
    np.testing.assert_allclose(Sigma.block[:, 0, 0], ref_sigma.c, rtol=1e-9)
    np.testing.assert_allclose(Sigma.block[:, 1, 1], t, rtol=1e-12)
    np.testing.assert_allclose(mafbm_weights([1e-8], 0.5), [1.0], rtol=1e-6)


def test_ve_closed_form_matches_ode():
    """FVE Var X_t in closed form (notes B.3, without the sigma_min^2 offset) vs the ODE."""
    process = FractionalDiffusion(0.7, 2, kind="ve")
    r = process.sigma_max / process.sigma_min
    L, a = np.log(r), process.sigma_min * np.sqrt(2 * np.log(r))
    g, w = process.speeds, process.omega
    for t in (0.2, 0.6, 1.0):
        R2, R1 = r ** (2 * t), r**t
        Ik = a**2 * g / (L - g) * ((R2 - R1 * np.exp(-g * t)) / (L + g) - (R2 - 1) / (2 * L))
        gi, gj = g[:, None], g[None, :]
        Iij = a**2 * gi * gj / ((L - gi) * (L - gj)) * (
            R2 * (1 - np.exp(-(gi + gj) * t)) / (gi + gj) - (R2 - R1 * np.exp(-gi * t)) / (L + gi)
            - (R2 - R1 * np.exp(-gj * t)) / (L + gj) + (R2 - 1) / (2 * L))
        var = np.sum(np.outer(w, w) * (process.sigma_min**2 * (R2 - 1) + Iij - Ik[:, None] - Ik[None, :]))
        _, Sigma = process.transition(t)
        np.testing.assert_allclose(Sigma.block[0, 0], var, rtol=1e-8)


def test_covariance_composition_and_semigroup():
    process = FractionalDiffusion(0.8, 3, pd_eps=0.0)  # the exact law composes; the regulariser does not
    r, s, t = 0.1, 0.4, 0.9
    Phi_ts, Q_ts = process.transition(t, s)
    Phi_sr, _ = process.transition(s, r)
    Phi_tr, _ = process.transition(t, r)
    _, Sigma_s = process.transition(s)
    _, Sigma_t = process.transition(t)
    # ODE at rtol 1e-11
    np.testing.assert_allclose(Phi_ts.block @ Phi_sr.block, Phi_tr.block, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(Phi_ts.block @ Sigma_s.block @ Phi_ts.block.T + Q_ts.block, Sigma_t.block,
                               rtol=1e-8, atol=1e-10)
    P, Q = process.transition(np.array([0.5, 0.9]), np.array([0.1, 0.4]))
    np.testing.assert_allclose(P.block[1], Phi_ts.block, rtol=1e-12)


def test_augmented_transition_matches_monte_carlo():
    process = FractionalDiffusion(0.9, 2)
    rng = np.random.default_rng(0)
    n, s, t = 10000, 0.3, 0.7
    z_s = np.tile(np.array([0.8, -0.5, 0.2]), (n, 1))
    z_t = process.euler_maruyama(z_s, s, t, steps=400, rng=rng)
    Phi, Q = process.transition(t, s)
    mean = Phi.block @ z_s[0]
    se = np.sqrt(np.diag(Q.block) / n)
    # 5 standard errors; Euler bias O(dt ||F||) ~ 1e-3 relative (absorbed by the slack)
    assert np.all(np.abs(z_t.mean(0) - mean) < 5 * se + 1e-3)
    cov = Q.block
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(z_t.T) - cov) < 5 * se_cov + 2e-3 * np.abs(cov).max())


def test_score_structure_against_finite_differences():
    """Formula 8: the y-part of the score from the x-part, vs FD of an exact mixture log-density."""
    process = FractionalDiffusion(0.9, 2)
    mixture = GaussianMixture([0.4, 0.6], [[1.0, -0.5], [-1.0, 0.5]], [0.1 * np.eye(2), 0.3 * np.eye(2)])
    t = 0.4
    z = mixture.sample(5, rng=1)
    z = process.sample(z, t, rng=2)
    h = 1e-5
    fd = np.empty_like(z)
    for j in range(z.shape[1]):
        e = np.zeros(z.shape[1])
        e[j] = h
        fd[:, j] = (mixture.log_density(z + e, t, process) - mixture.log_density(z - e, t, process)) / (2 * h)
    full = process.augmented_score(z, t, fd[:, :2])
    # central differences: O(h^2) plus round-off ~1e-10 / h
    np.testing.assert_allclose(full, fd, rtol=1e-5, atol=2e-5)
    u = process.residual(z, t)
    eta, _ = process.conditional_moments(t)
    np.testing.assert_allclose(u, z[:, :2] - eta[0] * z[:, 2:4] - eta[1] * z[:, 4:], rtol=1e-12)


@pytest.mark.parametrize("mode", ["sde", "ode"])
def test_reverse_sampling_with_exact_score_hits_training_points(mode):
    from opdiff.estimators.kernel_smoother import DiffusionKernelSmoother

    # GFDM's regulariser pd_eps = 1e-4 keeps the explicit 400-step grid stable near t = 0 (notes B.3, B.5)
    process = FractionalDiffusion(0.9, 2, pd_eps=1e-4)
    data = np.array([[-1.0], [0.2], [1.5]])
    dks = DiffusionKernelSmoother(process).fit(data)
    samples = process.reverse_sample(dks.score, 300, 1, steps=400, mode=mode, rng=3)
    distance = np.abs(samples - data.T).min(axis=1)
    nearest = np.abs(samples - data.T).argmin(axis=1)
    # notes B.5: median distances 0.018 (SDE) and 0.004 (ODE)
    assert np.median(distance) < (0.03 if mode == "sde" else 0.01)
    counts = np.bincount(nearest, minlength=3) / 300
    # multinomial(300, 1/3): s.e. 0.027; 5 s.e.
    assert np.all(np.abs(counts - 1 / 3) < 0.14)


def test_bad_inputs():
    with pytest.raises(ValueError, match="hurst"):
        FractionalDiffusion(1.2, 2)
    with pytest.raises(ValueError, match="n_processes"):
        FractionalDiffusion(0.7, -1)
    with pytest.raises(ValueError, match="kind"):
        FractionalDiffusion(0.7, 2, kind="sub-vp")
    with pytest.raises(ValueError, match="speeds"):
        mafbm_weights([-1.0, 2.0], 0.7)
    with pytest.raises(ValueError, match="omega"):
        FractionalDiffusion(0.7, 2, omega=[1.0])
    with pytest.raises(ValueError, match="s: expected s <= t"):
        FractionalDiffusion(0.7, 1).transition(0.2, 0.5)
    with pytest.raises(ValueError, match="residual_score"):
        FractionalDiffusion(0.7, 1).augmented_score(np.zeros((2, 4)), 0.5, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="mode"):
        FractionalDiffusion(0.7, 1).reverse_sample(lambda z, t: z, 2, 1, mode="heun")


def test_prior_binds_dim_like_the_other_processes():
    process = FractionalDiffusion(0.6, 2)  # K = 2: states of dimension 3 d
    D = process.state_dim(2)
    bound = process.prior(dim=D)
    assert bound.dim == D and process.prior().dim is None
    np.testing.assert_array_equal(bound.sample(5, rng=0), process.prior().sample(5, D, rng=0))
    z = bound.sample(4, rng=1)
    np.testing.assert_array_equal(bound.log_density(z), process.prior().log_density(z))
    with pytest.raises(ValueError, match="^dim: expected a state dimension"):
        process.prior(dim=D + 1)
    with pytest.raises(ValueError, match="^dim:"):
        bound.sample(5, D + 3, rng=0)
    with pytest.raises(ValueError, match="^dim:"):
        process.prior().sample(5, rng=0)
