"""RDKS on S^2 against scikit-learn's KernelDensity with the haversine metric, same data.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_rdks.py --benchmark-enable``.

Data: a 4-component von Mises-Fisher mixture (concentrations 5 to 300), 1000 training, 1000
validation and 2000 test points. Each estimator gets its best bandwidth on the validation points
(grid search); the table reports the test log-likelihood per point at that bandwidth.

- opdiff: ``DiffusionKernelSmoother(ManifoldBrownianMotion(Hypersphere(2)))``, global time and adaptive
  (Abramson exponent 1/2); the density is the heat-kernel mixture, normalised on the sphere.
- scikit-learn: ``KernelDensity(metric="haversine", kernel="gaussian")`` on (latitude, longitude) in
  radians. Its Gaussian kernel ``exp(-d^2 / 2h^2)`` is normalised by the *planar* constant
  ``2 pi h^2``; we also report it renormalised on the sphere (``2 pi int_0^pi exp(-u^2/2h^2) sin u du``,
  a constant per bandwidth), which is the fair comparison.

Throughput groups ``rdks-log-density``, ``rdks-score`` and ``rdks-torus``: 2000 queries x 1000 training points
per call; ``backend="auto"`` (tabulated kernel, fused Numba sums) and ``"numpy"`` (exact per-pair reference path).
"""
import math

import numpy as np
import pytest
from scipy.integrate import quad

from opdiff.datasets import VonMisesFisherMixture, latlon_to_unit, unit_to_latlon
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.processes import ManifoldBrownianMotion

N_TRAIN, N_VALID, N_TEST = 1000, 1000, 2000
PAIRS = N_TEST * N_TRAIN
BANDWIDTHS = np.geomspace(0.02, 0.6, 16)  # radians; RDKS uses heat time h^2 / 2 (same local variance)


def mixture():
    means = latlon_to_unit([60.0, 10.0, -35.0, -20.0], [-30.0, 40.0, 120.0, -120.0])
    return VonMisesFisherMixture(means, [40.0, 300.0, 5.0, 80.0], [0.3, 0.2, 0.3, 0.2])


@pytest.fixture(scope="module")
def problem():
    mix = mixture()
    return mix, mix.sample(N_TRAIN, 0), mix.sample(N_VALID, 1), mix.sample(N_TEST, 2)


def _latlon_radians(x):
    lat, lon = unit_to_latlon(x)
    return np.radians(np.stack([lat, lon], axis=1))


def sphere_log_normaliser(h):
    """``log`` of ``int_{S^2} exp(-d(x, y)^2 / 2 h^2) dy`` (sklearn uses ``log 2 pi h^2``)."""
    value = quad(lambda u: math.exp(-u * u / (2 * h * h)) * math.sin(u), 0, math.pi, points=[h], limit=200)[0]
    return math.log(2 * math.pi * value)


def rdks_fits(X, valid):
    """Best global and adaptive RDKS on the validation points; returns ``{name: (smoother, t)}``."""
    process = ManifoldBrownianMotion(Hypersphere(2))
    times = process.time_at_heat_time(BANDWIDTHS**2 / 2)
    fits = {}
    for name, exponent in (("global", None), ("adaptive", 0.5)):
        best = None
        for t in times:
            smoother = DiffusionKernelSmoother(process, adaptive=exponent, pilot_time=t if exponent else None).fit(X)
            score = smoother.log_density(valid, t).mean()
            if best is None or score > best[0]:
                best = (score, smoother, t)
        fits[name] = best[1:]
    return fits


def sklearn_fit(X, valid):
    """Best haversine KernelDensity on the validation points; returns ``(kde, h)``."""
    neighbors = pytest.importorskip("sklearn.neighbors")
    best = None
    for h in BANDWIDTHS:
        kde = neighbors.KernelDensity(kernel="gaussian", metric="haversine", bandwidth=h).fit(_latlon_radians(X))
        score = kde.score_samples(_latlon_radians(valid)).mean() + math.log(2 * math.pi * h * h) - sphere_log_normaliser(h)
        if best is None or score > best[0]:
            best = (score, kde, h)
    return best[1:]


def test_heldout_log_likelihood_at_best_bandwidths(problem):
    mix, X, valid, test = problem
    fits = rdks_fits(X, valid)
    kde, h = sklearn_fit(X, valid)
    sk_raw = kde.score_samples(_latlon_radians(test)).mean()
    sk_sphere = sk_raw + math.log(2 * math.pi * h * h) - sphere_log_normaliser(h)
    results = {name: smoother.log_density(test, t).mean() for name, (smoother, t) in fits.items()}
    truth = mix.log_density(test).mean()
    print(f"\ntest log-likelihood per point (true mixture {truth:.4f}):")
    for name, (smoother, t) in fits.items():
        print(f"  RDKS {name:8s} t = {t:.4g} (h = {math.sqrt(2 * float(smoother.process.heat_time(t))):.4f}): "
              f"{results[name]:.4f}")
    print(f"  sklearn haversine h = {h:.4f}: {sk_raw:.4f} (planar normaliser), {sk_sphere:.4f} (renormalised)")
    # the heat kernel and the haversine Gaussian agree to O(h^2) at these bandwidths: same quality, and
    # adaptive smoothing is better on this mixture of very different spreads
    assert results["global"] > sk_sphere - 0.05
    assert results["adaptive"] > results["global"]
    assert truth > results["adaptive"]


def _record(benchmark):
    benchmark.extra_info["pairs"] = PAIRS
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["pairs/s"] = PAIRS / stats.stats.mean


H_BENCH = 0.1  # bandwidth of the throughput runs (heat time 0.005: short-time branch; 0.05 below: series)


# "auto": tabulated kernel + fused Numba sums (the `DotProductTable` form of opdiff.reductions); "numpy": the exact per-pair reference path
BACKENDS = ["auto", "numpy"]


@pytest.mark.benchmark(group="rdks-log-density")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("h", [H_BENCH, 0.3])
def test_rdks_log_density_throughput(benchmark, problem, h, backend):
    _, X, _, test = problem
    process = ManifoldBrownianMotion(Hypersphere(2))
    t = float(process.time_at_heat_time(h * h / 2))
    rdks = DiffusionKernelSmoother(process, backend=backend).fit(X)
    log_density = benchmark(rdks.log_density, test, t)
    _record(benchmark)
    assert np.all(np.isfinite(log_density))


@pytest.mark.benchmark(group="rdks-log-density")
def test_sklearn_haversine_throughput(benchmark, problem):
    neighbors = pytest.importorskip("sklearn.neighbors")
    _, X, _, test = problem
    kde = neighbors.KernelDensity(kernel="gaussian", metric="haversine", bandwidth=H_BENCH).fit(_latlon_radians(X))
    queries = _latlon_radians(test)
    log_density = benchmark(kde.score_samples, queries)
    _record(benchmark)
    # same bandwidth: the two log-densities differ by the kernel shape, O(h^2) relative
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(Hypersphere(2))).fit(X)
    ours = rdks.log_density(test, H_BENCH**2)
    corrected = log_density + math.log(2 * math.pi * H_BENCH**2) - sphere_log_normaliser(H_BENCH)
    assert np.median(np.abs(ours - corrected)) < 0.05


@pytest.mark.benchmark(group="rdks-score")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("h", [H_BENCH, 0.3])
def test_rdks_score_throughput(benchmark, problem, h, backend):
    _, X, _, test = problem
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(Hypersphere(2)), backend=backend).fit(X)
    score = benchmark(rdks.score, test, h * h)
    _record(benchmark)
    np.testing.assert_allclose(np.sum(score * test, axis=1), 0.0, atol=1e-9)


@pytest.mark.benchmark(group="rdks-torus")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["log_density", "score"])
def test_rdks_torus_throughput(benchmark, name, backend):
    """Flat 2-torus, same sizes (2000 queries x 1000 points), heat time 0.005 (bandwidth 0.1 rad)."""
    torus = FlatTorus(2)
    rng = np.random.default_rng(3)
    X = torus.proj(rng.normal(0.0, 0.7, (N_TRAIN, 2)))
    test = torus.proj(rng.normal(0.0, 0.7, (N_TEST, 2)))
    rdks = DiffusionKernelSmoother(ManifoldBrownianMotion(torus), backend=backend).fit(X)
    out = benchmark(getattr(rdks, name), test, H_BENCH**2)
    _record(benchmark)
    assert np.all(np.isfinite(out))


def test_reverse_sampling_quality():
    """Reverse SDE / PF-ODE with the RDKS score from the uniform prior, against true samples (printed)."""
    from opdiff.metrics import mmd_squared
    from opdiff.sampling import sample_manifold_probability_flow, sample_manifold_reverse_sde, uniform_time_grid

    mix = VonMisesFisherMixture([[0, 0, 1], [1, 0, 0], [0, -1, 0.3]], [40.0, 15.0, 80.0], [0.4, 0.35, 0.25])
    process = ManifoldBrownianMotion(Hypersphere(2), T=3.0)
    X, test, reference = mix.sample(500, 10), mix.sample(2000, 11), mix.sample(500, 12)
    rdks = DiffusionKernelSmoother(process).select_time(X, n_folds=5, rng=0)
    times = uniform_time_grid(process, 100, rdks.time_)
    start = process.prior().sample(500, rng=1)
    rows = {"true samples": mix.sample(500, 13),
            "reverse SDE": sample_manifold_reverse_sde(rdks.score, start, times, process=process, rng=2).x,
            "PF-ODE (Heun)": sample_manifold_probability_flow(rdks.score, start, times, process=process).x,
            "uniform prior": start}
    print(f"\nselected t = {rdks.time_:.4g}; 100 steps; 500 samples each")
    results = {}
    for name, samples in rows.items():
        on_truth = mix.log_density(samples).mean()
        heldout = DiffusionKernelSmoother(process).fit(samples).log_density(test, rdks.time_).mean()
        results[name] = (on_truth, heldout, mmd_squared(samples, reference))
        print(f"  {name:14s} E[log p_true(sample)] {on_truth:8.3f}  held-out LL of test data under RDKS(samples) "
              f"{heldout:7.3f}  MMD^2 {results[name][2]:.5f}")
    for name in ("reverse SDE", "PF-ODE (Heun)"):
        assert results[name][1] > results["true samples"][1] - 0.15
        assert results[name][2] < results["uniform prior"][2] / 20
