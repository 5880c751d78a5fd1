"""RDKS: the diffusion kernel smoother with manifold Brownian motion.

Independent routes: finite differences along geodesics (score = Riemannian gradient of the
log-density), quadrature (normalisation), a dense softmax (denoiser, weights), the chunk budget,
and the exact vMF mixture for reverse sampling (held-out log-likelihood and MMD).
"""
import math

import numpy as np
import pytest
from scipy.special import logsumexp

from opdiff.backend import chunk_budget
from opdiff.datasets import VonMisesFisherMixture
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.metrics import mmd_squared
from opdiff.processes import ManifoldBrownianMotion
from opdiff.sampling import sample_manifold_probability_flow, sample_manifold_reverse_sde, uniform_time_grid

MIXTURE = VonMisesFisherMixture([[0, 0, 1], [1, 0, 0], [0, -1, 0.3]], [40.0, 15.0, 80.0], [0.4, 0.35, 0.25])


def _fitted(process, X, weights=None, backend="auto"):
    return DiffusionKernelSmoother(process, backend=backend).fit(X, sample_weight=weights)


def _functions(process, X, weights, x, t, backend="auto"):
    """log-density, score and posterior mean of the RDKS of ``X`` (weights ``weights``) at ``x``."""
    rdks = _fitted(process, X, weights, backend)
    return {"ld": rdks.log_density(x, t), "score": rdks.score(x, t), "mean": rdks.denoise(x, t)}


def _data(manifold, n, seed):
    if isinstance(manifold, Hypersphere) and manifold.dim == 2:
        return MIXTURE.sample(n, seed)
    rng = np.random.default_rng(seed)
    centre = manifold.random_uniform(1, rng)
    return manifold.exp(np.repeat(centre, n, 0), 0.4 * manifold.random_tangent_normal(np.repeat(centre, n, 0), rng))


@pytest.mark.parametrize("manifold", [Hypersphere(2), Hypersphere(1), Hypersphere(3), FlatTorus(2)], ids=repr)
@pytest.mark.parametrize("t", [0.004, 0.05, 1.0])
def test_score_is_the_riemannian_gradient_of_log_density(manifold, t):
    process = ManifoldBrownianMotion(manifold, sigma=1.3)
    rdks = DiffusionKernelSmoother(process).fit(_data(manifold, 60, 0))
    rng = np.random.default_rng(1)
    x = rdks.sample(8, t, rng)  # queries where the density is not negligible
    v = manifold.random_tangent_normal(x, rng)
    score = rdks.score(x, t)
    if isinstance(manifold, Hypersphere):
        np.testing.assert_allclose(np.sum(score * x, axis=1), 0.0, atol=1e-10)  # tangent
    eps = 1e-5
    fd = (rdks.log_density(manifold.exp(x, eps * v), t) - rdks.log_density(manifold.exp(x, -eps * v), t)) / (2 * eps)
    # central differences: O(eps^2 |d^3 log rho|) with |d^3| <~ (1 / s)^{3/2} scale, plus rounding 1e-16/eps
    s = float(process.heat_time(t))
    np.testing.assert_allclose(fd, np.sum(score * v, axis=1), rtol=1e-6, atol=1e-9 / s**1.5)


@pytest.mark.parametrize("t", [0.06, 0.5])
def test_log_density_is_normalised_on_s2(t):
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(Hypersphere(2))).fit(MIXTURE.sample(50, 2))
    nodes, weights = Hypersphere(2).product_quadrature(120, 240)
    # kernels of heat time >= 0.03 have negligible spectrum beyond degree 240 (exp(-240^2 0.03))
    assert abs(np.sum(weights * np.exp(rdks.log_density(nodes, t))) - 1.0) < 1e-8


def test_log_density_is_normalised_on_the_torus():
    torus = FlatTorus(2)
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(torus)).fit(_data(torus, 40, 3))
    g = np.linspace(-math.pi, math.pi, 161)[:-1]
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    for t in (0.05, 2.0):  # periodic trapezoid rule: spectrally accurate
        assert abs(np.exp(rdks.log_density(grid, t)).sum() * (2 * math.pi / 160) ** 2 - 1.0) < 1e-10


def test_functions_match_a_dense_softmax_and_the_smoother():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere)
    X = MIXTURE.sample(70, 4)
    weights = np.random.default_rng(5).uniform(0.1, 1.0, 70)
    rdks = DiffusionKernelSmoother(process).fit(X, sample_weight=weights)
    x = sphere.random_uniform(9, 6)
    t = np.linspace(0.01, 0.8, 9)  # one time per query
    log_w = np.log(weights / weights.sum())
    log_k, grad = sphere.pairwise_log_heat_kernel(x, X, process.heat_time(t)[:, None], gradient=True)
    logits = log_k + log_w
    posterior = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    # per-query times: one table per distinct time, each kernel within 1e-8 of its peak (the narrowest
    # kernel's peak bounds the mixture's error); the softmax weights move by that over the density
    s = process.heat_time(t)
    peak = _peak(sphere, s.min())
    density = np.exp(logsumexp(logits, axis=1))
    assert np.all(np.abs(np.exp(rdks.log_density(x, t)) - density) <= 2e-8 * peak)
    ratio = 2e-8 * peak / density
    assert np.all(np.abs(rdks.denoise(x, t) - posterior @ X).max(axis=1) <= 2 * ratio * math.pi)
    score_error = np.abs(rdks.score(x, t) - np.einsum("mn,mnd->md", posterior, grad)).max(axis=1)
    assert np.all(score_error <= 2 * ratio * math.pi / s + 1e-7 / s)


def test_integer_weights_equal_repeated_points_and_chunking_is_invisible():
    torus = FlatTorus(2)
    process = ManifoldBrownianMotion(torus)
    X = _data(torus, 30, 7)
    counts = np.arange(1, 31) % 3 + 1
    x = torus.random_uniform(300, 8)
    weighted = DiffusionKernelSmoother(process).fit(X, sample_weight=counts.astype(float))
    repeated = DiffusionKernelSmoother(process).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.log_density(x, 0.1), repeated.log_density(x, 0.1), rtol=1e-12)
    with chunk_budget(4096):  # a few query rows per chunk
        np.testing.assert_allclose(weighted.score(x, 0.1), repeated.score(x, 0.1), atol=1e-10)


def test_reverse_sampling_from_the_uniform_prior_reproduces_a_vmf_mixture():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere, T=3.0)
    X = MIXTURE.sample(300, 10)
    rdks = DiffusionKernelSmoother(process).fit(X)
    t_min = 0.01  # heat time 0.005: kernel width ~0.14 rad, near the held-out optimum for n = 300
    times = uniform_time_grid(process, 40, t_min)
    start = process.prior().sample(300, rng=11)
    reference = MIXTURE.sample(300, 12)
    ll_reference = MIXTURE.log_density(reference).mean()
    mmd_reference = mmd_squared(MIXTURE.sample(300, 13), reference)
    for run in (sample_manifold_reverse_sde(rdks.score, start, times, process=process, rng=14),
                sample_manifold_probability_flow(rdks.score, start, times, process=process)):
        samples = run.x
        assert np.max(np.abs(np.linalg.norm(samples, axis=-1) - 1.0)) < 1e-12
        # mean log-likelihood under the true mixture (reported: about -0.5 vs -0.4 for true samples);
        # a uniform sample scores log(1/4 pi) - E[...] ~ -6, so 0.6 nats is a tight margin
        assert MIXTURE.log_density(samples).mean() > ll_reference - 0.6
        # MMD^2 (median bandwidth) of 300 vs 300 samples: true-vs-true is ~1e-4; uniform is ~0.1
        assert mmd_squared(samples, reference) < mmd_reference + 0.01


def test_bad_inputs():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere)
    rdks = DiffusionKernelSmoother(process).fit(MIXTURE.sample(20, 0))
    with pytest.raises(ValueError, match=r"x: .*distance 1"):
        rdks.score(np.array([[2.0, 0.0, 0.0]]), 0.1)
    with pytest.raises(ValueError, match=r"X: .*distance"):
        DiffusionKernelSmoother(process).fit(np.array([[0.0, 0.0, 0.5]]))
    with pytest.raises(ValueError, match="t: expected times"):
        rdks.log_density(sphere.random_uniform(2, 0), -1.0)
    with pytest.raises(ValueError, match="t: expected times"):
        rdks.log_density(sphere.random_uniform(2, 0), 100.0)
    # KeOps has no table lookup: refused in fit, not at the first query
    with pytest.raises(ValueError, match="backend='keops' cannot reduce DotProductTable"):
        DiffusionKernelSmoother(process, backend="keops").fit(rdks.data_)
    with pytest.raises(ValueError, match="backend"):
        DiffusionKernelSmoother(process, backend="nope").fit(rdks.data_)
    with pytest.raises(ValueError, match="not fitted"):
        DiffusionKernelSmoother(process).score(sphere.random_uniform(2, 0), 0.1)


def test_float32_data_stay_float32():
    sphere = Hypersphere(2)
    X = MIXTURE.sample(30, 20).astype(np.float32)
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(sphere)).fit(X)
    x = sphere.random_uniform(4, 21, dtype=np.float32)
    reference = DiffusionKernelSmoother(ManifoldBrownianMotion(sphere)).fit(X.astype(np.float64))
    for name in ("log_density", "score", "denoise"):
        out = getattr(rdks, name)(x, 0.05)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, getattr(reference, name)(x.astype(np.float64), 0.05), rtol=1e-4, atol=1e-4)


def test_a_length_one_time_array_applies_to_every_query():
    sphere = Hypersphere(2)
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(sphere)).fit(MIXTURE.sample(20, 22))
    x = sphere.random_uniform(5, 23)
    np.testing.assert_allclose(rdks.score(x, np.array([0.1])), rdks.score(x, 0.1))
    np.testing.assert_allclose(rdks.log_density(x, np.full(5, 0.1)), rdks.log_density(x, 0.1))


def _peak(manifold, s):
    """``p_s(x, x)``, the kernel's peak (the accuracy contracts are relative to it)."""
    x = manifold.random_uniform(1, 0)
    return float(np.exp(manifold.log_heat_kernel(x, x, s))[0])


@pytest.mark.parametrize("manifold", [Hypersphere(2), Hypersphere(3), FlatTorus(2)], ids=repr)
@pytest.mark.parametrize("s", [2e-4, 0.8 * 0.00926, 1.2 * 0.00926, 0.05, 1.0])  # both sides of S^2's switch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tabulated_path_matches_the_reference_path(manifold, s, dtype):
    process = ManifoldBrownianMotion(manifold)
    t = float(process.time_at_heat_time(s))
    X = _data(manifold, 400, 30).astype(dtype)
    weights = np.random.default_rng(31).uniform(0.1, 1.0, 400)
    weights[::3] = 0.0  # zero weights
    x = np.concatenate([X[1:40:2], manifold.random_uniform(20, 32, dtype)])  # near data and anywhere
    fast = _functions(process, X, weights, x, t)
    # reference in float64 on the same (float32-rounded) points: its own float32 path rounds log-kernels to float32
    ref = _functions(process, X.astype(np.float64), weights, x.astype(np.float64), t, backend="numpy")
    with chunk_budget(2048):  # 16-point tiles per thread
        tiny = _fitted(process, X, weights, "numba").score(x, t)
    assert all(v.dtype == dtype for v in fast.values())
    peak = _peak(manifold, s)
    # kernels: each path within its contract of the exact kernel (S^n: 1e-8 of the peak; torus: 1e-12 per
    # factor for the table, 1e-14 relative for the reference), so the mixtures differ by <= 2e-8 (d 1e-12) peak.
    # float32: the inputs are validated (wrapped / normalised) in float32 on one path and in float64 on the
    # other, moving them by ~pi 1e-7: log-density by |score| pi 1e-7, score by (pi / s) pi 1e-7; plus the
    # rounding of float32 outputs
    tol = 1e-8 if isinstance(manifold, Hypersphere) else 1e-12 * manifold.dim
    eps = 0.0 if dtype == np.float64 else 1e-6
    ref_norm = np.abs(ref["score"]).max(axis=1)
    density, ref_density = np.exp(fast["ld"].astype(float)), np.exp(ref["ld"].astype(float))
    assert np.all(np.abs(density - ref_density) <= 2 * tol * peak + eps * (1 + math.pi * ref_norm) * ref_density)
    # score and denoiser: log-kernel errors <= 2 tol peak / rho(x) shift the softmax weights by that relative
    # amount; per-pair gradients are bounded by pi / s, plus the table's slope error (< 1e-5 / s where the
    # kernel is above 1e-6 of its peak: test_heat_tables), weighted by the relative kernel error (tol)
    with np.errstate(divide="ignore"):
        ratio = 2 * tol * peak / ref_density
    score_tol = 2 * ratio * math.pi / s + 10 * tol / s + eps * (ref_norm + 10 / s)
    assert np.all(np.abs(fast["score"] - ref["score"]).max(axis=1) <= score_tol)
    assert np.all(np.abs(tiny - fast["score"]).max(axis=1) <= 1e-9 * np.abs(fast["score"]).max() + eps * ref_norm)
    assert np.all(np.abs(fast["mean"] - ref["mean"]).max(axis=1) <= 2 * ratio * math.pi + eps * (1 + 10 * ref_norm))


@pytest.mark.parametrize("s", [0.003, 0.05])
def test_tabulated_log_density_against_the_exact_series_on_s2(s):
    from opdiff.manifolds import sphere_log_heat_kernel

    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere)
    X = MIXTURE.sample(200, 33)
    x = np.concatenate([X[:30], sphere.random_uniform(30, 34)])
    theta = sphere.dist(x[:, None, :], X[None, :, :])
    exact_log, _ = sphere_log_heat_kernel(theta, s, 2, method="series", tol=1e-14)  # independent of the short-time form
    exact = np.exp(logsumexp(exact_log, axis=1) - math.log(200))
    density = np.exp(_fitted(process, X).log_density(x, float(process.time_at_heat_time(s))))
    # the documented contract, |p_hat - p| <= 1e-8 p_s(0) per kernel, hence for the (weights summing to one) mixture
    assert np.max(np.abs(density - exact)) <= 1e-8 * _peak(sphere, s)


def test_tabulated_path_only_where_it_applies():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere)
    X = MIXTURE.sample(50, 35)
    x = sphere.random_uniform(6, 36)
    t = np.linspace(0.01, 0.5, 6)  # one time per query: the reference path, identical to backend="numpy"
    np.testing.assert_array_equal(_fitted(process, X).score(x, t), _fitted(process, X, backend="numpy").score(x, t))
    same = np.full(6, 0.1)  # equal per-query times: one table
    np.testing.assert_array_equal(_fitted(process, X).log_density(x, same),
                                  _fitted(process, X, backend="numba").log_density(x, 0.1))
    circle = ManifoldBrownianMotion(Hypersphere(1))  # no table on S^1: the reference path
    c = Hypersphere(1).random_uniform(5, 37)
    np.testing.assert_array_equal(_fitted(circle, c).log_density(c, 0.1),
                                  _fitted(circle, c, backend="numpy").log_density(c, 0.1))
