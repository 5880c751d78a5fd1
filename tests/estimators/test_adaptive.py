"""Bandwidth rules (power law, nearest neighbours) and the held-out choice of rule and time.

Routes: dense per-pair sums (scipy Gaussians, the manifolds' pairwise heat kernels) against the
grouped reductions; finite differences of the log-density against the score; quadrature on S^2 and
T^2 for the normalisation; brute-force neighbour distances; samples against the mixture by MMD
(the reference drawn from the density on a quadrature grid); held-out likelihoods on multi-scale
data with repeated points.
"""
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from opdiff.datasets import GaussianMixture, VonMisesFisherMixture
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.estimators.adaptive import (FACTOR_STEP, MAX_FACTOR, candidate_rules, neighbour_factors,
                                        parse_adaptive, power_factors)
from opdiff.linalg.fourier import radial_frequency
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.metrics import mmd_squared
from opdiff.operators.kme import KernelMixture
from opdiff.processes import (BrownianMotion, FractionalDiffusion, ManifoldBrownianMotion, SpectralAnisotropic,
                              StationaryLinearSDE, VPSDE)

HALF_STEP = 0.5 * math.log(FACTOR_STEP)


def _manifold_data(manifold, n, rng, spread=0.5):
    centre = np.repeat(manifold.random_uniform(1, rng), n, 0)
    return manifold.exp(centre, spread * manifold.random_tangent_normal(centre, rng))


def _two_scale_data(rng, n, d):
    return rng.normal(size=(n, d)) * np.where(np.arange(n) < n // 2, 0.2, 1.5)[:, None]


def _structured_cases():
    sagd = SpectralAnisotropic((1, 4, 4), 0.5 + radial_frequency(4, 4))
    return [(StationaryLinearSDE.cld(), 2), (sagd, 16), (FractionalDiffusion(0.7, 2), 2)]


# --------------------------------------------------------------------------- rules and their floors
def test_parse_adaptive_validates_every_value():
    assert parse_adaptive(None, 10) == ("global", None)
    assert parse_adaptive(0.5, 10) == ("power", 0.5)
    assert parse_adaptive(0, 10) == ("global", None)
    assert parse_adaptive("power", 10) == ("power", 0.5)
    assert parse_adaptive("knn", 7) == ("knn", 7)
    assert parse_adaptive("auto", 7) == ("auto", None)
    for bad in ("Auto", "yes", True, -0.5, np.nan, [0.5]):
        with pytest.raises(ValueError, match="adaptive: expected"):
            parse_adaptive(bad, 10)
    with pytest.raises(ValueError, match="k: expected an integer"):
        parse_adaptive("knn", 0)
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="adaptive: 'auto' is resolved by select_time"):
        DiffusionKernelSmoother(BrownianMotion(), adaptive="auto").fit(X)
    with pytest.raises(ValueError, match="adaptive: expected"):
        DiffusionKernelSmoother(BrownianMotion(), adaptive="Auto").select_time(X)
    assert [rule for rule, _ in candidate_rules("auto", 10)] == ["global"] + ["power"] * 2 + ["knn"] * 3


def test_power_law_factors_follow_the_leave_one_out_pilot():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    t = 0.2
    mixture = KernelMixture.from_data(BrownianMotion(), X, data_space=True)
    log_f = mixture.leave_one_out(t)
    sq = np.sum((X[:, None] - X[None]) ** 2, axis=-1)
    log_k = -sq / (2 * t) - math.log(2 * math.pi * t)
    np.fill_diagonal(log_k, -np.inf)
    np.testing.assert_allclose(log_f, logsumexp(log_k, axis=1) - math.log(39), rtol=1e-12)
    factors = power_factors(log_f, mixture.log_weights, 0.5)
    # the law, rounded to the grid 2^(j/4) and clipped to |j| <= 13: within half a grid step of it
    target = np.clip(-0.5 * (log_f - log_f.mean()), -math.log(MAX_FACTOR), math.log(MAX_FACTOR))
    assert np.all(np.abs(np.log(factors) - target) <= HALF_STEP + 1e-12)
    steps = np.log(factors) / math.log(FACTOR_STEP)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)


@pytest.mark.parametrize("manifold", [Hypersphere(2), FlatTorus(2)], ids=repr)
@pytest.mark.parametrize("t", [2e-4, 0.05])
def test_leave_one_out_on_manifolds_against_dense_kernels(manifold, t):
    rng = np.random.default_rng(11)
    process = ManifoldBrownianMotion(manifold)
    X = np.concatenate([_manifold_data(manifold, 150, rng, 0.3), manifold.random_uniform(150, rng)])
    factors = np.exp(np.round(rng.uniform(-1, 1, 300) * 4) / 4)  # a few distinct factors: one table each
    mixture = KernelMixture.from_data(process, X, data_space=True).with_factors(factors)
    log_f = mixture.leave_one_out(t)
    s = float(process.heat_time(t)) * factors[None, :] ** 2
    log_k = manifold.pairwise_log_heat_kernel(X, X, s)
    np.fill_diagonal(log_k, -np.inf)
    exact = np.exp(logsumexp(log_k, axis=1) - math.log(299))
    # at t = 2e-4 most points are isolated (their own kernel is nearly all of the sum): exact halving there;
    # elsewhere the subtraction of the table's own value. Both within the tables' contract: each kernel within
    # 1e-8 of its peak (S^2; 1e-12 per factor on T^2), the narrowest kernel's peak bounding the sum's error
    peak = float(np.exp(manifold.log_heat_kernel(X[:1], X[:1], s.min())[0]))
    assert np.all(np.abs(np.exp(log_f) - exact) <= 2e-8 * peak + 1e-10 * exact)


@pytest.mark.parametrize("geometry", ["euclidean", "sphere", "torus"])
def test_neighbour_distances_are_those_of_distinct_neighbours(geometry):
    rng = np.random.default_rng(3)
    if geometry == "euclidean":
        process, X = BrownianMotion(), rng.normal(size=(60, 3))
        dist = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    else:
        manifold = Hypersphere(2) if geometry == "sphere" else FlatTorus(2)
        process, X = ManifoldBrownianMotion(manifold), manifold.random_uniform(60, rng)
        dist = manifold.dist
    X = np.concatenate([X, X[:10], X[:3]])  # repeated locations
    kernel = process.transition_kernel(None, data_space=True)
    unique = np.unique(X, axis=0)
    brute = np.sort(dist(X[:, None, :], unique[None, :, :]), axis=1)  # column 0: the point's own location
    for k in (1, 4):
        np.testing.assert_allclose(kernel.neighbour_distances(X, k), brute[:, k], rtol=1e-10, atol=1e-12)
    assert np.all(kernel.neighbour_distances(X, 1) > 0)  # duplicates never give a zero distance


def test_duplicates_and_atoms_give_finite_bounded_bandwidths():
    rng = np.random.default_rng(4)
    atoms = np.repeat([[0.0, 0.0], [3.0, 3.0]], 40, axis=0)  # two atoms, 40 copies each
    X = np.concatenate([atoms, rng.normal(size=(60, 2))])
    for adaptive in ("knn", 0.5):
        smoother = DiffusionKernelSmoother(BrownianMotion(T=20.0), adaptive=adaptive, k=5, pilot_time=0.05).fit(X)
        factors = smoother.bandwidth_factors_
        assert np.all(np.isfinite(factors)) and factors.min() >= 1 / MAX_FACTOR * (1 - 1e-12)
        assert factors.max() <= MAX_FACTOR * (1 + 1e-12)
        assert np.all(np.isfinite(smoother.log_density(X, 0.05)))
        assert np.all(np.isfinite(smoother.score(X, 0.05)))
    # all points at one location: factors one, no division by a zero distance
    np.testing.assert_array_equal(neighbour_factors(np.zeros(5), np.full(5, -math.log(5))), np.ones(5))
    with pytest.raises(ValueError, match="X: every training point is at the same location"):
        DiffusionKernelSmoother(VPSDE()).select_time(np.ones((30, 2)))


# --------------------------------------------------------------------------- exact mixtures
@pytest.mark.parametrize("process", [BrownianMotion(0.8), VPSDE(), StationaryLinearSDE.cld(),
                                     ManifoldBrownianMotion(Hypersphere(2)), ManifoldBrownianMotion(FlatTorus(2))],
                         ids=["bm", "vp", "cld", "s2", "t2"])
def test_unit_factors_reproduce_the_global_smoother(process):
    rng = np.random.default_rng(0)
    X = _manifold_data(process.manifold, 80, rng) if process.is_manifold else rng.normal(size=(80, 2))
    glob = DiffusionKernelSmoother(process).fit(X)
    ones = DiffusionKernelSmoother(process).fit(X)
    ones.mixture_ = ones.mixture_.with_factors(np.ones(80))
    x = glob.sample(6, 0.3, rng)
    for t in (0.05, 0.6):
        # same kernels, grouped path with the (s, s x, x) means: agreement to round-off
        np.testing.assert_allclose(ones.log_density(x, t), glob.log_density(x, t), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ones.score(x, t), glob.score(x, t), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ones.denoise(x, t), glob.denoise(x, t), atol=1e-12)


@pytest.mark.parametrize("case", range(3), ids=["cld", "sagd", "fractional"])
@pytest.mark.parametrize("many", [False, True], ids=["grid", "per-point"])
def test_structured_mixture_against_dense_per_pair_gaussians(case, many):
    process, d = _structured_cases()[case]
    rng = np.random.default_rng(20 + case)
    n, t = 80, 0.3
    X = _two_scale_data(rng, n, d)
    if many:  # more distinct factors than groups: the per-pair path
        smoother = DiffusionKernelSmoother(process).fit(X)
        factors = np.exp(rng.uniform(-0.7, 0.7, n))
        smoother.mixture_ = smoother.mixture_.with_factors(factors)
    else:
        smoother = DiffusionKernelSmoother(process, adaptive="knn", k=3).fit(X)
        factors = smoother.bandwidth_factors_
    assert np.ptp(factors) > 0.5  # the factors actually vary
    z = smoother.sample(6, t, rng)
    D = process.state_dim(d)
    Phi, Sigma = process.transition(t)
    lift = np.zeros((D, d))
    lift[:d, :d] = np.eye(d)
    means = X @ (Phi.dense(D) @ lift).T
    log_k = np.stack([multivariate_normal(means[i], factors[i] ** 2 * Sigma.dense(D)).logpdf(z) for i in range(n)])
    # round-off of two O(10)-sized log-density computations
    np.testing.assert_allclose(smoother.log_density(z, t), logsumexp(log_k, axis=0) - math.log(n), rtol=1e-10,
                               atol=1e-10)
    softmax = np.exp(log_k - logsumexp(log_k, axis=0))
    np.testing.assert_allclose(smoother.denoise(z, t), softmax.T @ X, atol=1e-10)
    v = rng.normal(size=z.shape)
    eps = 1e-5
    fd = (smoother.log_density(z + eps * v, t) - smoother.log_density(z - eps * v, t)) / (2 * eps)
    directional = np.sum(smoother.score(z, t) * v, axis=1)
    # central differences: O(eps^2) truncation plus round-off ~1e-16 |log rho| / eps
    np.testing.assert_allclose(fd, directional, rtol=1e-6, atol=1e-6 * np.abs(directional).max())


@pytest.mark.parametrize("process", [BrownianMotion(), VPSDE(), ManifoldBrownianMotion(Hypersphere(2)),
                                     ManifoldBrownianMotion(FlatTorus(2))], ids=["bm", "vp", "s2", "t2"])
@pytest.mark.parametrize("adaptive", ["knn", 0.5])
def test_score_is_the_gradient_of_the_log_density(process, adaptive):
    rng = np.random.default_rng(1)
    if process.is_manifold:
        X = _manifold_data(process.manifold, 50, rng)
    else:
        X = rng.normal(size=(50, 2)) * np.where(np.arange(50) < 25, 0.1, 1.5)[:, None]
    smoother = DiffusionKernelSmoother(process, adaptive=adaptive, k=4, pilot_time=0.05).fit(X)
    assert np.ptp(np.log(smoother.bandwidth_factors_)) > 0.5  # the factors actually vary
    t = 0.1
    x = smoother.sample(7, t, rng)
    step = (lambda y, v, e: process.manifold.exp(y, e * v)) if process.is_manifold else (lambda y, v, e: y + e * v)
    v = process.manifold.random_tangent_normal(x, rng) if process.is_manifold else rng.normal(size=x.shape)
    eps = 1e-5
    fd = (smoother.log_density(step(x, v, eps), t) - smoother.log_density(step(x, v, -eps), t)) / (2 * eps)
    # central differences, O(eps^2) ~ 1e-10 relative; tabulated kernels: slopes of the same cubic
    np.testing.assert_allclose(fd, np.sum(smoother.score(x, t) * v, axis=1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("manifold", [Hypersphere(2), FlatTorus(2)], ids=repr)
def test_grouped_tables_match_the_dense_heat_kernel_mixture(manifold):
    process = ManifoldBrownianMotion(manifold)
    rng = np.random.default_rng(5)
    X = _manifold_data(manifold, 120, rng, 0.6)
    smoother = DiffusionKernelSmoother(process, adaptive="knn", k=5).fit(X)
    factors = smoother.bandwidth_factors_
    x = np.concatenate([X[:10], manifold.random_uniform(10, rng)])
    t = 0.05
    s = float(process.heat_time(t)) * factors[None, :] ** 2
    log_k, grad = manifold.pairwise_log_heat_kernel(x, X, s, gradient=True)
    logits = log_k - math.log(120)
    posterior = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    density = np.exp(logsumexp(logits, axis=1))
    # tables: each kernel within 1e-8 of its peak (S^2) or 1e-12 per factor (T^2); the peak of the
    # narrowest kernel bounds the mixture's error
    peak = float(np.exp(manifold.log_heat_kernel(X[:1], X[:1], s.min())[0]))
    assert np.all(np.abs(np.exp(smoother.log_density(x, t)) - density) <= 2e-8 * peak)
    score_tol = 2e-8 * peak / density[:, None] * math.pi / s.min() + 1e-6 / s.min()
    assert np.all(np.abs(smoother.score(x, t) - np.einsum("mn,mnd->md", posterior, grad)) <= score_tol)


def test_normalisation_by_quadrature_on_s2_and_t2():
    rng = np.random.default_rng(6)
    sphere, torus = Hypersphere(2), FlatTorus(2)
    nodes, weights = sphere.product_quadrature(120, 240)
    for adaptive in ("knn", 0.5):
        rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(sphere), adaptive=adaptive, k=3, pilot_time=0.1)
        rdks.fit(_manifold_data(sphere, 50, rng))
        # the narrowest kernel has heat time >= 0.03: negligible spectrum beyond degree 240 (exp(-240^2 0.03))
        assert float(rdks.mixture_.kernel(0.4).heat_time) * rdks.bandwidth_factors_.min() ** 2 >= 0.03
        assert abs(np.sum(weights * np.exp(rdks.log_density(nodes, 0.4))) - 1.0) < 1e-8
        tdks = DiffusionKernelSmoother(ManifoldBrownianMotion(torus), adaptive=adaptive, k=3, pilot_time=0.1)
        tdks.fit(_manifold_data(torus, 40, rng))
        g = np.linspace(-math.pi, math.pi, 161)[:-1]
        grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        # periodic trapezoid rule: spectrally accurate for kernels wider than the grid step
        assert abs(np.exp(tdks.log_density(grid, 0.3)).sum() * (2 * math.pi / 160) ** 2 - 1.0) < 1e-10


def test_samples_follow_the_mixture_by_mmd():
    torus = FlatTorus(2)
    rng = np.random.default_rng(7)
    X = np.concatenate([_manifold_data(torus, 30, rng, 0.05), _manifold_data(torus, 30, rng, 1.0)])
    smoother = DiffusionKernelSmoother(ManifoldBrownianMotion(torus), adaptive="knn", k=3).fit(X)
    t, n = 0.02, 1500
    samples = smoother.sample(n, t, rng=8)
    # independent reference: draws from the density on a 400 x 400 grid (cell by probability, then
    # uniform within the cell; the cell is 0.016 wide, far below the kernels' widths)
    g = np.linspace(-math.pi, math.pi, 401)
    centres = 0.5 * (g[1:] + g[:-1])
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    p = np.exp(smoother.log_density(grid, t))
    p /= p.sum()

    def reference(seed):
        r = np.random.default_rng(seed)
        cells = r.choice(grid.shape[0], size=n, p=p)
        return torus.proj(grid[cells] + r.uniform(-0.5, 0.5, (n, 2)) * (g[1] - g[0]))

    null = mmd_squared(reference(9), reference(10), bandwidth=0.3)
    other = DiffusionKernelSmoother(ManifoldBrownianMotion(torus)).fit(X).sample(n, t, rng=11)
    # the unbiased MMD^2 of two samples of one law is O(1/n) around zero; the global smoother's samples
    # (a different law) must be far off while ours are within that noise
    assert mmd_squared(samples, reference(12), bandwidth=0.3) < abs(null) + 5e-4
    assert mmd_squared(other, reference(12), bandwidth=0.3) > 10 * (abs(null) + 5e-4)


# --------------------------------------------------------------------------- selection
def test_select_time_keeps_the_parameters_and_chooses_a_rule():
    mixture = VonMisesFisherMixture([[0, 0, 1], [1, 0, 0]], [400.0, 4.0], [0.5, 0.5])
    X = mixture.sample(300, 3)
    process = ManifoldBrownianMotion(Hypersphere(2))
    smoother = DiffusionKernelSmoother(process, adaptive="auto")
    smoother.select_time(X, n_folds=4, rng=4)
    assert smoother.adaptive == "auto" and smoother.time is None  # constructor parameters untouched
    selection = smoother.selection_
    rules = [rule for rule, _ in selection.candidates]
    best_global = np.nanmax(selection.scores[:, rules.index("global")])
    assert smoother.rule_ in ("power", "knn") and smoother.time_ == selection.time
    assert (smoother.exponent_ is None) != (smoother.k_ is None)
    # one tight and one broad component: no single bandwidth suits both (gain reported in benchmarks/README.md)
    best = np.unravel_index(np.nanargmax(selection.scores), selection.scores.shape)
    assert selection.scores[best] > best_global + 3 * selection.stderr[best]
    test = mixture.sample(2000, 5)
    t_global = selection.times[np.nanargmax(selection.scores[:, rules.index("global")])]
    gain = smoother.score(test) - DiffusionKernelSmoother(process, time=t_global).fit(X).score(test)
    assert gain > 0.1
    np.testing.assert_allclose(smoother.score_samples(test[:5]), smoother.log_density(test[:5], smoother.time_))


def test_select_time_on_cld_matches_brownian_motion():
    mixture = GaussianMixture([0.5, 0.5], np.array([[0.0, 0.0], [4.0, 0.0]]),
                              np.array([0.05**2, 1.5**2])[:, None, None] * np.eye(2))
    X = mixture.sample(300, 6)
    cld = DiffusionKernelSmoother(StationaryLinearSDE.cld(), adaptive="auto").select_time(X, n_folds=4, rng=7)
    bm = DiffusionKernelSmoother(BrownianMotion(T=20.0), adaptive="auto").select_time(X, n_folds=4, rng=7)
    # the data-space kernels of both are isotropic Gaussians on the same grid of noise levels (CLD's times
    # found by log-log interpolation on 256 points, relative level error ~1e-4): the same best scores
    assert abs(np.nanmax(cld.selection_.scores) - np.nanmax(bm.selection_.scores)) < 1e-2
    glob = np.nanmax(cld.selection_.scores[:, 0])
    assert np.all(np.isfinite(cld.selection_.scores[:, 0]))  # the global rule is scored at every time
    assert cld.rule_ != "global" and np.nanmax(cld.selection_.scores) > glob + 1.0  # measured gain: ~1.4 nats
    z = cld.sample(4, cld.time_, rng=1)
    assert z.shape == (4, 4) and np.all(np.isfinite(cld.score(z, cld.time_)))


def test_bad_selection_inputs_leave_the_smoother_unchanged():
    X = np.random.default_rng(8).normal(size=(20, 2))
    smoother = DiffusionKernelSmoother(BrownianMotion(), adaptive="power")
    with pytest.raises(ValueError, match="n_folds"):
        smoother.select_time(X, n_folds=1)
    with pytest.raises(ValueError, match="exponents"):
        smoother.select_time(X, exponents=(np.nan,))
    with pytest.raises(ValueError, match="times"):
        smoother.select_time(X, times=[-1.0])
    assert not hasattr(smoother, "mixture_") and smoother.adaptive == "power"
    with pytest.raises(ValueError, match="pilot_time: required"):
        DiffusionKernelSmoother(BrownianMotion(), adaptive=0.5).fit(X)
    with pytest.raises(TypeError, match="process: expected a Gaussian or manifold process"):
        DiffusionKernelSmoother(object()).fit(X)


def test_scikit_learn_model_selection_over_the_time():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X = GaussianMixture([0.5, 0.5], np.array([[0.0, 0.0], [3.0, 0.0]]),
                        np.array([0.3**2, 1.0**2])[:, None, None] * np.eye(2)).sample(200, 9)
    smoother = DiffusionKernelSmoother(BrownianMotion(T=10.0), adaptive="knn", k=5, time=0.1)
    copy = clone(smoother)
    assert repr(copy) == repr(smoother) and copy is not smoother and copy.process is not smoother.process
    scores = cross_val_score(smoother, X, cv=4)
    assert scores.shape == (4,) and np.all(np.isfinite(scores))
    times = [0.003, 0.03, 0.3, 3.0]
    search = GridSearchCV(DiffusionKernelSmoother(BrownianMotion(T=10.0)), {"time": times}, cv=4).fit(X)
    # the same folds by hand: mean held-out log-likelihood of the data-space smoother at each time
    from sklearn.model_selection import KFold
    manual = [np.mean([DiffusionKernelSmoother(BrownianMotion(T=10.0), time=t).fit(X[a]).score(X[b])
                       for a, b in KFold(4).split(X)]) for t in times]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], manual, rtol=1e-12)
    assert search.best_params_["time"] == times[int(np.argmax(manual))]
    with pytest.raises(ValueError, match="time: score_samples needs"):
        DiffusionKernelSmoother(BrownianMotion()).fit(X).score(X)


def test_images_keep_their_shape():
    process = SpectralAnisotropic((1, 4, 4), 0.5 + radial_frequency(4, 4))
    rng = np.random.default_rng(10)
    images = rng.normal(size=(30, 1, 4, 4))
    smoother = DiffusionKernelSmoother(process, adaptive="knn", k=3).fit(images)
    flat = DiffusionKernelSmoother(process, adaptive="knn", k=3).fit(images.reshape(30, -1))
    z = smoother.sample(5, 0.3, rng)
    assert z.shape == (5, 1, 4, 4)
    assert smoother.score(z, 0.3).shape == (5, 1, 4, 4) and smoother.denoise(z, 0.3).shape == (5, 1, 4, 4)
    np.testing.assert_allclose(smoother.score(z, 0.3).reshape(5, -1), flat.score(z.reshape(5, -1), 0.3))
    with pytest.raises(ValueError, match=r"X: expected trailing shape \(16,\)"):
        DiffusionKernelSmoother(process).fit(np.ones((10, 17)))


def test_float32_and_chunk_budget():
    from opdiff.backend.chunking import chunk_budget

    rng = np.random.default_rng(60)
    process = FractionalDiffusion(0.7, 2)
    X = _two_scale_data(rng, 40, 2)
    smoother = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X)
    z = smoother.sample(9, 0.3, rng)
    whole = smoother.log_density(z, 0.3), smoother.score(z, 0.3)
    with chunk_budget(1024):  # one or two query rows per chunk, in the pilot too
        chunked = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X)
        np.testing.assert_array_equal(chunked.bandwidth_factors_, smoother.bandwidth_factors_)
        np.testing.assert_allclose(chunked.log_density(z, 0.3), whole[0], rtol=1e-13)
        np.testing.assert_allclose(chunked.score(z, 0.3), whole[1], rtol=1e-11, atol=1e-11)
    single = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.1).fit(X.astype(np.float32))
    z32 = z.astype(np.float32)
    assert single.score(z32, 0.3).dtype == np.float32 and single.log_density(z32, 0.3).dtype == np.float32
    assert single.denoise(z32, 0.3).dtype == np.float32 and single.sample(3, 0.3, rng).dtype == np.float32
    # float32 round-off (~1e-7 relative) of O(10) log-densities
    np.testing.assert_allclose(single.log_density(z32, 0.3), whole[0], rtol=1e-4, atol=1e-4)
