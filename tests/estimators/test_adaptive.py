"""Adaptive smoothing and held-out time selection, Euclidean and Riemannian.

Routes: the global smoother (factors one) against the lead's Gaussian DKS and the RDKS functions;
finite differences of the adaptive log-density against its score; a dense leave-one-out sum;
held-out log-likelihoods on mixtures with very different spreads (adaptive must beat the best
global time).
"""
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from opdiff.datasets import GaussianMixture, VonMisesFisherMixture
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.estimators.adaptive import (adaptive_denoise, adaptive_log_density, adaptive_score, kernel_view,
                                        leave_one_out_log_density, pilot_bandwidth_factors, select_time)
from opdiff.linalg.fourier import radial_frequency
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.processes import (BrownianMotion, FractionalDiffusion, ManifoldBrownianMotion, SpectralAnisotropic,
                              StationaryLinearSDE, VPSDE)


@pytest.mark.parametrize("process", [BrownianMotion(0.8), VPSDE()], ids=["bm", "vp"])
def test_unit_factors_reproduce_the_gaussian_dks(process):
    rng = np.random.default_rng(0)
    X, x = rng.normal(size=(80, 2)), rng.normal(size=(6, 2))
    dks = DiffusionKernelSmoother(process).fit(X)
    ones = np.ones(80)
    for t in (0.05, 0.6):
        np.testing.assert_allclose(adaptive_log_density(process, X, None, x, t, ones), dks.log_density(x, t), rtol=1e-12)
        np.testing.assert_allclose(adaptive_score(process, X, None, x, t, ones), dks.score(x, t), atol=1e-10)
        np.testing.assert_allclose(adaptive_denoise(process, X, None, x, t, ones), dks.denoise(x, t), atol=1e-12)


@pytest.mark.parametrize("process", [BrownianMotion(), VPSDE(), ManifoldBrownianMotion(Hypersphere(2)),
                                     ManifoldBrownianMotion(FlatTorus(2))], ids=["bm", "vp", "s2", "t2"])
def test_adaptive_score_is_the_gradient_of_the_adaptive_log_density(process):
    rng = np.random.default_rng(1)
    if process.is_manifold:
        manifold = process.manifold
        X = manifold.exp(np.repeat(manifold.random_uniform(1, rng), 50, 0),
                         0.5 * manifold.random_tangent_normal(np.repeat(manifold.random_uniform(1, rng), 50, 0), rng))
    else:
        X = rng.normal(size=(50, 2)) * np.where(np.arange(50) < 25, 0.1, 1.5)[:, None]
    smoother = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.05).fit(X)
    assert np.ptp(smoother.bandwidth_factors_) > 0.5  # the factors actually vary
    t = 0.1
    x = smoother.sample(7, t, rng)
    step = (lambda y, v, e: process.manifold.exp(y, e * v)) if process.is_manifold else (lambda y, v, e: y + e * v)
    v = process.manifold.random_tangent_normal(x, rng) if process.is_manifold else rng.normal(size=x.shape)
    eps = 1e-5
    fd = (smoother.log_density(step(x, v, eps), t) - smoother.log_density(step(x, v, -eps), t)) / (2 * eps)
    # central differences, O(eps^2) ~ 1e-10 relative
    np.testing.assert_allclose(fd, np.sum(smoother.score(x, t) * v, axis=1), rtol=1e-6, atol=1e-6)


def test_leave_one_out_matches_a_dense_sum_and_factors_follow_the_power_law():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    process = BrownianMotion()
    t = 0.2
    log_f = leave_one_out_log_density(process, X, t)
    sq = np.sum((X[:, None] - X[None]) ** 2, axis=-1)
    log_k = -sq / (2 * t) - math.log(2 * math.pi * t)
    np.fill_diagonal(log_k, -np.inf)
    np.testing.assert_allclose(log_f, logsumexp(log_k, axis=1) - math.log(39), rtol=1e-12)
    factors = pilot_bandwidth_factors(process, X, t, exponent=0.5)
    np.testing.assert_allclose(np.log(factors), -0.5 * (log_f - log_f.mean()), atol=1e-12)
    np.testing.assert_allclose(pilot_bandwidth_factors(process, X, t, exponent=0.0), 1.0)


def test_adaptive_beats_the_best_global_time_on_s2():
    # one very tight and one broad component: no single bandwidth suits both
    mixture = VonMisesFisherMixture([[0, 0, 1], [1, 0, 0]], [400.0, 4.0], [0.5, 0.5])
    X = mixture.sample(300, 3)
    process = ManifoldBrownianMotion(Hypersphere(2))
    selection = select_time(process, X, exponents=(0.0, 0.5), n_folds=4, rng=4)
    best_global = selection.scores[:, 0].max()
    best_adaptive = selection.scores[:, 1].max()
    # reported in benchmarks/README.md; the gain (~0.3 nats per point) is far above the CV standard error
    assert best_adaptive > best_global + 3 * selection.stderr[:, 1].max() / 4
    assert selection.exponent == 0.5
    # and on fresh data from the mixture
    test = mixture.sample(2000, 5)
    global_fit = DiffusionKernelSmoother(process).fit(X)
    t_global = selection.times[np.argmax(selection.scores[:, 0])]
    adaptive_fit = DiffusionKernelSmoother(process).select_time(X, exponents=(0.0, 0.5), n_folds=4, rng=4)
    assert adaptive_fit.exponent_ == 0.5 and adaptive_fit.bandwidth_factors_ is not None
    gain = adaptive_fit.log_density(test, adaptive_fit.time_).mean() - global_fit.log_density(test, t_global).mean()
    assert gain > 0.1


def test_adaptive_beats_the_best_global_time_in_r2():
    mixture = GaussianMixture([0.5, 0.5], np.array([[0.0, 0.0], [4.0, 0.0]]),
                              np.array([0.05**2, 1.5**2])[:, None, None] * np.eye(2))
    X = mixture.sample(300, 6)
    selection = select_time(BrownianMotion(T=20.0), X, exponents=(0.0, 0.5), n_folds=4, rng=7)
    assert selection.scores[:, 1].max() > selection.scores[:, 0].max() + 0.1


def test_bad_inputs():
    X = np.random.default_rng(8).normal(size=(20, 2))
    with pytest.raises(ValueError, match="pilot_time: required"):
        DiffusionKernelSmoother(BrownianMotion(), adaptive=0.5).fit(X)
    with pytest.raises(TypeError, match="process: adaptive smoothing needs"):
        DiffusionKernelSmoother(object(), adaptive=0.5, pilot_time=0.1).fit(X)
    with pytest.raises(TypeError, match="process: adaptive smoothing needs"):
        select_time("cld", X)
    with pytest.raises(TypeError, match="process: kernel_view covers"):
        kernel_view(StationaryLinearSDE.cld(), X, 0.1)
    with pytest.raises(ValueError, match="exponent"):
        pilot_bandwidth_factors(BrownianMotion(), X, 0.1, exponent=-1.0)
    with pytest.raises(ValueError, match="n_folds"):
        select_time(BrownianMotion(), X, n_folds=1)
    with pytest.raises(ValueError, match="exponents"):
        select_time(BrownianMotion(), X, exponents=(np.nan,))
    with pytest.raises(ValueError, match="times"):
        select_time(BrownianMotion(), X, times=[-1.0])
    smoother = DiffusionKernelSmoother(BrownianMotion(), adaptive=0.5)
    with pytest.raises(ValueError, match="n_folds"):
        smoother.select_time(X, n_folds=0)
    assert smoother.adaptive == 0.5 and smoother.pilot_time is None  # unchanged after the error


def test_query_dimension_is_checked():
    X = np.random.default_rng(9).normal(size=(20, 2))
    smoother = DiffusionKernelSmoother(BrownianMotion(), adaptive=0.5, pilot_time=0.1).fit(X)
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(2,\)"):
        smoother.score(np.zeros((3, 3)), 0.1)
    with pytest.raises(ValueError, match="t: expected times"):
        smoother.log_density(np.zeros((3, 2)), 0.0)


# --------------------------------------------------------------------- structured Gaussian processes
# Per-point kernels N(Phi lift(x_i), lambda_i^2 Sigma) (opdiff.estimators.adaptive_gaussian) for CLD,
# SAGD on 1 x 4 x 4 images (well-conditioned spectrum 0.5 + r) and a fractional process (K = 2).

def _structured_cases():
    sagd = SpectralAnisotropic((1, 4, 4), 0.5 + radial_frequency(4, 4))
    return [(StationaryLinearSDE.cld(), 2), (sagd, 16), (FractionalDiffusion(0.7, 2), 2)]


STRUCTURED_IDS = ["cld", "sagd", "fractional"]


def _two_scale_data(rng, n, d):
    return rng.normal(size=(n, d)) * np.where(np.arange(n) < n // 2, 0.2, 1.5)[:, None]


@pytest.mark.parametrize("case", range(3), ids=STRUCTURED_IDS)
def test_structured_unit_factors_reproduce_the_dks(case):
    process, d = _structured_cases()[case]
    rng = np.random.default_rng(10 + case)
    X = _two_scale_data(rng, 30, d)
    dks = DiffusionKernelSmoother(process).fit(X)
    ones = np.ones(30)
    for t in (0.1, 0.6):
        z = process.sample(X[:5], t, rng)
        # same mixture, two routes (global whitening + gaussian_reduction vs per-point normalisers +
        # pairwise_reduction): agreement to round-off of O(10) log-densities and scores
        np.testing.assert_allclose(adaptive_log_density(process, X, None, z, t, ones), dks.log_density(z, t),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(adaptive_score(process, X, None, z, t, ones), dks.score(z, t),
                                   rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(adaptive_denoise(process, X, None, z, t, ones), dks.denoise(z, t), atol=1e-12)


@pytest.mark.parametrize("case", range(3), ids=STRUCTURED_IDS)
def test_structured_adaptive_mixture_against_dense_per_pair_gaussians(case):
    process, d = _structured_cases()[case]
    rng = np.random.default_rng(20 + case)
    n, t = 30, 0.3
    X = _two_scale_data(rng, n, d)
    smoother = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X)
    factors = smoother.bandwidth_factors_
    assert np.ptp(factors) > 0.5  # the factors actually vary
    z = smoother.sample(6, t, rng)
    D = process.state_dim(d)
    assert z.shape == (6, D)
    # independent route: dense Phi, Sigma and scipy's Gaussian per training point
    Phi, Sigma = process.transition(t)
    lift = np.zeros((D, d))
    lift[:d, :d] = np.eye(d)
    means = X @ (Phi.dense(D) @ lift).T
    log_k = np.stack([multivariate_normal(means[i], factors[i] ** 2 * Sigma.dense(D)).logpdf(z) for i in range(n)])
    expected = logsumexp(log_k, axis=0) - math.log(n)
    # round-off of two O(10)-sized log-density computations
    np.testing.assert_allclose(smoother.log_density(z, t), expected, rtol=1e-10, atol=1e-10)
    softmax = np.exp(log_k - logsumexp(log_k, axis=0))
    np.testing.assert_allclose(smoother.denoise(z, t), softmax.T @ X, atol=1e-10)
    # score against central differences of the log-density: O(eps^2) truncation, plus round-off
    # ~1e-16 |log rho| / eps; relative to the size of the directional derivative
    v = rng.normal(size=z.shape)
    eps = 1e-5
    fd = (smoother.log_density(z + eps * v, t) - smoother.log_density(z - eps * v, t)) / (2 * eps)
    directional = np.sum(smoother.score(z, t) * v, axis=1)
    np.testing.assert_allclose(fd, directional, rtol=1e-6, atol=1e-6 * np.abs(directional).max())


@pytest.mark.parametrize("case", range(3), ids=STRUCTURED_IDS)
def test_structured_leave_one_out_matches_a_dense_sum(case):
    process, d = _structured_cases()[case]
    rng = np.random.default_rng(30 + case)
    n, t = 25, 0.2
    X = _two_scale_data(rng, n, d)
    factors = np.exp(rng.uniform(-0.5, 0.5, n))
    # data-space kernel: the data block of the transition divided by its mean scale
    Phi, Sigma = process.transition(t)
    D = process.state_dim(d)
    scale = Phi.dense(D)[0, 0]
    C = Sigma.dense(D)[:d, :d] / scale**2
    log_k = np.stack([multivariate_normal(X[i], factors[i] ** 2 * C).logpdf(X) for i in range(n)])
    np.fill_diagonal(log_k, -np.inf)
    expected = logsumexp(log_k, axis=0) - math.log(n - 1)
    np.testing.assert_allclose(leave_one_out_log_density(process, X, t, bandwidth_factors=factors), expected,
                               rtol=1e-10, atol=1e-10)


def test_select_time_on_cld_and_the_smoother_it_fits():
    rng = np.random.default_rng(40)
    X = _two_scale_data(rng, 48, 2)
    process = StationaryLinearSDE.cld()
    selection = select_time(process, X, exponents=(0.0, 0.5), n_folds=3, rng=1)
    assert np.isfinite(selection.time) and process.t_min < selection.time <= process.t_max
    assert selection.exponent in (0.0, 0.5)
    assert np.all(np.isfinite(selection.scores)) and selection.scores.shape == (selection.times.size, 2)
    assert selection.scores[np.argmin(np.abs(selection.times - selection.time)), int(selection.exponent == 0.5)] \
        == selection.scores.max()
    # the default grid spans the data's scales: the data-space noise level grows along it
    from opdiff.estimators.adaptive_gaussian import data_space_noise_level
    levels = data_space_noise_level(process, selection.times, 2)
    assert np.all(np.diff(levels) > 0)
    smoother = DiffusionKernelSmoother(process, adaptive=0.5).select_time(X, exponents=(0.0, 0.5), n_folds=3, rng=1)
    assert smoother.time_ == selection.time and smoother.exponent_ == selection.exponent
    assert np.all(np.isfinite(smoother.score(process.sample(X[:4], smoother.time_, rng), smoother.time_)))


def test_structured_times_per_row_and_query_width():
    rng = np.random.default_rng(50)
    process = StationaryLinearSDE.malda()
    X = _two_scale_data(rng, 20, 2)
    smoother = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X)
    z = smoother.sample(4, 0.3, rng)
    t = np.array([0.3, 0.5, 0.3, 0.5])
    per_row = smoother.score(z, t)
    np.testing.assert_allclose(per_row[::2], smoother.score(z[::2], 0.3), atol=1e-12)
    np.testing.assert_allclose(per_row[1::2], smoother.score(z[1::2], 0.5), atol=1e-12)
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(6,\)"):
        smoother.score(X[:3], 0.3)  # data-width queries to a K = 3 state


def test_structured_results_do_not_depend_on_the_chunk_budget_and_float32_is_kept():
    from opdiff.backend.chunking import chunk_budget

    rng = np.random.default_rng(60)
    process = FractionalDiffusion(0.7, 2)
    X = _two_scale_data(rng, 40, 2)
    smoother = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X)
    z = smoother.sample(9, 0.3, rng)
    whole = smoother.log_density(z, 0.3), smoother.score(z, 0.3)
    with chunk_budget(1024):  # one or two query rows per chunk, in the pilot too
        chunked = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X)
        np.testing.assert_allclose(chunked.bandwidth_factors_, smoother.bandwidth_factors_, rtol=1e-13)
        np.testing.assert_allclose(chunked.log_density(z, 0.3), whole[0], rtol=1e-13)
        np.testing.assert_allclose(chunked.score(z, 0.3), whole[1], rtol=1e-11, atol=1e-11)
    single = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X.astype(np.float32))
    z32 = z.astype(np.float32)
    assert single.score(z32, 0.3).dtype == np.float32 and single.log_density(z32, 0.3).dtype == np.float32
    assert single.denoise(z32, 0.3).dtype == np.float32 and single.sample(3, 0.3, rng).dtype == np.float32
    # float32 round-off (~1e-7 relative) of O(10) log-densities
    np.testing.assert_allclose(single.log_density(z32, 0.3), whole[0], rtol=1e-4, atol=1e-4)


def test_adaptive_beats_the_best_global_time_under_cld_as_under_brownian_motion():
    mixture = GaussianMixture([0.5, 0.5], np.array([[0.0, 0.0], [4.0, 0.0]]),
                              np.array([0.05**2, 1.5**2])[:, None, None] * np.eye(2))
    X = mixture.sample(300, 6)
    cld = select_time(StationaryLinearSDE.cld(), X, exponents=(0.0, 0.5), n_folds=4, rng=7)
    brownian = select_time(BrownianMotion(T=20.0), X, exponents=(0.0, 0.5), n_folds=4, rng=7)
    # the data-space kernels of both are isotropic Gaussians on the same grid of noise levels (CLD's
    # times found by log-log interpolation on 256 points, relative level error ~1e-4): same best scores
    assert cld.exponent == 0.5
    assert abs(cld.scores.max() - brownian.scores.max()) < 1e-2
    assert cld.scores[:, 1].max() > cld.scores[:, 0].max() + 1.0  # measured gain: 1.44 nats per point
