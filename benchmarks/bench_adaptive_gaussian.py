"""Adaptive DKS for structured Gaussian processes against the global DKS on the same inputs.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_adaptive_gaussian.py --benchmark-enable``.

Adaptive smoothing (Abramson exponent 1/2, pilot at ``t = 0.2``) evaluates per-point kernels
``N(Phi lift(x_i), lambda_i^2 Sigma)`` through ``pairwise_reduction``; the global smoother is one
``gaussian_reduction`` (``backend="numpy"``, the same array path, and ``"auto"``). Groups:
``adaptive-cld`` (CLD, d = 2, 5000 training points, 1000 queries), ``adaptive-sagd`` (SAGD on
3 x 16 x 16 images, 1000 training points, 256 queries), and ``adaptive-pilot`` (the chunked
leave-one-out pilot fit, all training points as queries).
"""
import numpy as np
import pytest

from opdiff.estimators import DiffusionKernelSmoother
from opdiff.processes import SpectralAnisotropic, StationaryLinearSDE

T = 0.3
CASES = {
    "cld": (lambda: StationaryLinearSDE.cld(), 5000, 2, 1000),
    "sagd": (lambda: SpectralAnisotropic.power_law((3, 16, 16), -0.5), 1000, 768, 256),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def problem(request):
    make, n, d, m = CASES[request.param]
    process = make()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)) * np.where(np.arange(n) < n // 2, 0.3, 1.0)[:, None]
    z = process.sample(X[:m], T, rng)
    return request.param, process, X, z


@pytest.mark.parametrize("estimator", ["adaptive", "global-numpy", "global-auto"])
def test_score(benchmark, problem, estimator):
    name, process, X, z = problem
    benchmark.group = f"adaptive-{name}"
    if estimator == "adaptive":
        smoother = DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.2).fit(X)
    else:
        smoother = DiffusionKernelSmoother(process, backend=estimator.split("-")[1]).fit(X)
    score = benchmark(smoother.score, z, T)
    benchmark.extra_info["pairs_per_s"] = z.shape[0] * X.shape[0] / benchmark.stats.stats.mean \
        if benchmark.stats else None
    assert score.shape == z.shape and np.all(np.isfinite(score))


def test_pilot_fit(benchmark, problem):
    name, process, X, _ = problem
    benchmark.group = "adaptive-pilot"
    smoother = benchmark(DiffusionKernelSmoother(process, adaptive=0.5, pilot_time=0.2).fit, X)
    assert np.all(np.isfinite(smoother.bandwidth_factors_))
