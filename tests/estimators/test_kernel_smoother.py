"""DiffusionKernelSmoother: score vs log-density gradient, Tweedie, consistency on mixtures, normalisation."""
import numpy as np
import pytest

from opdiff.datasets import GaussianMixture
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.processes import VESDE, VPSDE, BrownianMotion, OrnsteinUhlenbeck
from opdiff.processes.linear import StationaryLinearSDE

PROCESSES = {"vp": lambda: VPSDE(), "ve": lambda: VESDE(sigma_min=0.01, sigma_max=5.0),
             "cld": lambda: StationaryLinearSDE.cld()}
MIXTURE = GaussianMixture([0.5, 0.3, 0.2], [[-1.5, 0.0], [1.0, 1.0], [0.5, -1.5]],
                          [[[0.3, 0.1], [0.1, 0.2]], [[0.2, 0.0], [0.0, 0.4]], [[0.1, -0.05], [-0.05, 0.3]]])


def _fit(name, n=50, seed=0):
    process = PROCESSES[name]()
    X = MIXTURE.sample(n, rng=seed)
    return process, DiffusionKernelSmoother(process).fit(X), X


def _queries(process, X, t, m=8, seed=1):
    return process.sample(X[:m], t, rng=seed)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_score_is_gradient_of_log_density(name):
    process, dks, X = _fit(name)
    t, h = 0.3, 1e-5
    z = _queries(process, X, t)
    score = dks.score(z, t)
    fd = np.stack([(dks.log_density(z + h * e, t) - dks.log_density(z - h * e, t)) / (2 * h)
                   for e in np.eye(z.shape[1])], axis=1)
    # central differences: O(h^2 |d^3 log rho|) + O(eps |log rho| / h), far below 1e-5
    np.testing.assert_allclose(score, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(score)))


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_denoise_satisfies_tweedie(name):
    """Phi lift(E[x0 | z]) = z + Sigma grad log rho_t(z), the score taken by finite differences of log rho_t."""
    process, dks, X = _fit(name)
    t, h = 0.4, 1e-5
    z = _queries(process, X, t)
    fd_score = np.stack([(dks.log_density(z + h * e, t) - dks.log_density(z - h * e, t)) / (2 * h)
                         for e in np.eye(z.shape[1])], axis=1)
    Phi, Sigma = process.transition(t)
    lhs = Phi.apply(process.lift(dks.denoise(z, t)))
    rhs = z + Sigma.apply(fd_score)
    np.testing.assert_allclose(lhs, rhs, atol=1e-6 * (1 + np.max(np.abs(z))))


def test_score_converges_to_exact_mixture_score():
    """Fisher divergence E_{rho_t} |s_DKS - s_exact|^2 falls as the number of data points grows."""
    process, t = VPSDE(), 0.2
    queries = process.sample(MIXTURE.sample(400, rng=10), t, rng=11)
    exact = MIXTURE.score(queries, t, process)
    divergences = []
    for n in (30, 300, 3000):
        # average over three data sets to tame the variance of the smallest n
        values = [np.mean(np.sum((DiffusionKernelSmoother(process).fit(MIXTURE.sample(n, rng=seed))
                                  .score(queries, t) - exact) ** 2, axis=1)) for seed in range(3)]
        divergences.append(float(np.mean(values)))
    print(f"\nDKS Fisher divergence to the exact mixture score (VPSDE, t={t}):",
          ", ".join(f"n={n}: {v:.4f}" for n, v in zip((30, 300, 3000), divergences)))
    assert divergences[0] > divergences[1] > divergences[2]
    assert divergences[2] < 0.2 * divergences[0]
    # denoiser converges too
    dks = DiffusionKernelSmoother(process).fit(MIXTURE.sample(3000, rng=5))
    error = np.mean(np.sum((dks.denoise(queries, t) - MIXTURE.denoise(queries, t, process)) ** 2, axis=1))
    assert error < 0.05


@pytest.mark.parametrize("process", [BrownianMotion(sigma=1.0), VPSDE()], ids=["bm", "vp"])
def test_log_density_integrates_to_one(process):
    """Trapezoidal quadrature on a 2-D grid covering the support (Gaussian tails beyond 8 sd are < 1e-14)."""
    X = MIXTURE.sample(20, rng=2)
    dks = DiffusionKernelSmoother(process).fit(X)
    t = 0.3
    grid = np.linspace(-8.0, 8.0, 241)
    xx, yy = np.meshgrid(grid, grid, indexing="ij")
    density = np.exp(dks.log_density(np.stack([xx.ravel(), yy.ravel()], axis=1), t)).reshape(xx.shape)
    total = np.trapezoid(np.trapezoid(density, grid, axis=1), grid)
    # trapezoid rule on a smooth, rapidly decaying integrand: spectrally accurate for spacing << bandwidth
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)


def test_float32_kept_and_time_as_float_or_array():
    process, dks, X = _fit("vp")
    z = _queries(process, X, 0.5)
    dks32 = DiffusionKernelSmoother(process).fit(X.astype(np.float32))
    for method in ("score", "denoise", "log_density"):
        out64 = getattr(dks, method)(z, 0.5)
        out32 = getattr(dks32, method)(z.astype(np.float32), 0.5)
        assert out64.dtype == np.float64 and out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4 * np.max(np.abs(out64)))
        np.testing.assert_allclose(getattr(dks, method)(z, np.full(len(z), 0.5)), out64, rtol=1e-13)
        np.testing.assert_allclose(getattr(dks, method)(z, np.array([0.5])), out64, rtol=1e-13)
    assert dks32.sample(5, 0.5, rng=0).dtype == np.float32


def test_sample_is_the_smoothed_data_law():
    process, dks, X = _fit("vp", n=5)
    n, t = 30000, 0.5
    sample = dks.sample(n, t, rng=0)
    Phi, Sigma = process.transition(t)
    mean = Phi.apply(X).mean(axis=0)
    var = float(Sigma.c) + np.var(Phi.apply(X), axis=0)
    # 5 standard errors of the sample mean and variance
    assert np.all(np.abs(sample.mean(axis=0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(sample.var(axis=0) - var) < 5 * var * np.sqrt(2 / n) * 1.5)
    np.testing.assert_array_equal(dks.sample(4, t, rng=3), dks.sample(4, t, rng=3))


def test_bad_input():
    dks = DiffusionKernelSmoother(VPSDE())
    z = np.zeros((3, 2))
    for method in ("score", "denoise", "log_density"):
        with pytest.raises(ValueError, match="is not fitted yet: call fit"):
            getattr(dks, method)(z, 0.5)
    with pytest.raises(ValueError, match="is not fitted yet"):
        dks.sample(3, 0.5)
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        dks.fit(np.zeros(5))
    with pytest.raises(ValueError, match="X: expected finite values"):
        dks.fit(np.array([[0.0, np.nan]]))
    dks.fit(MIXTURE.sample(10, rng=0))
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(2,\)"):
        dks.score(np.zeros((3, 5)), 0.5)
    with pytest.raises(ValueError, match="x: expected finite values"):
        dks.denoise(np.array([[np.inf, 0.0]]), 0.5)
    with pytest.raises(ValueError, match=r"t: expected times in \(0.0, 1.0\]"):
        dks.log_density(z, 0.0)
    with pytest.raises(ValueError, match=r"t: expected times in \(0.0, 1.0\]"):
        dks.score(z, [0.5, 0.5, 2.0])
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        dks.sample(0, 0.5)
    with pytest.raises(ValueError, match="backend: expected one of"):
        DiffusionKernelSmoother(VPSDE(), backend="fortran").fit(z).score(z, 0.5)


def test_failed_refit_leaves_the_fitted_state_unchanged():
    from opdiff.estimators import DiffusionKernelSmoother
    from opdiff.processes import VPSDE

    X = np.random.default_rng(0).normal(size=(20, 2))
    dks = DiffusionKernelSmoother(VPSDE()).fit(X)
    before = dks.score(X[:3], 0.3)
    with pytest.raises(ValueError, match="X"):
        dks.fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="sample_weight"):
        dks.fit(X[:5], sample_weight=[1.0, -1.0, 1.0, 1.0, 1.0])
    assert dks.data_ is not None and dks.data_.shape == (20, 2)
    np.testing.assert_array_equal(dks.score(X[:3], 0.3), before)


def test_the_backend_is_resolved_in_fit_on_every_path():
    import importlib.util

    X = np.random.default_rng(1).normal(size=(20, 2))
    for adaptive, pilot in ((None, None), (0.5, 0.1), ("knn", None)):
        smoother = DiffusionKernelSmoother(VPSDE(), backend="cupy", adaptive=adaptive, pilot_time=pilot)
        if importlib.util.find_spec("cupy") is None:  # the extra is named in fit, before any query
            with pytest.raises(ImportError, match=r"opdiff\[gpu\]"):
                smoother.fit(X)
            assert not hasattr(smoother, "mixture_")
        else:
            assert smoother.fit(X).backend == "cupy"


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_per_row_times_are_one_reduction_matching_row_by_row_calls(name):
    """An (m,) array of distinct times: per-query precisions and offsets in one reduction, against one
    single-time call per row (whitened, scaled points through the shared-time path): round-off apart."""
    process, dks, X = _fit(name)
    z = _queries(process, X, 0.3, m=6)
    t = np.array([0.05, 0.2, 0.3, 0.45, 0.7, 1.0])
    for method in ("score", "denoise", "log_density"):
        rows = np.concatenate([getattr(dks, method)(z[i:i + 1], t[i]) for i in range(6)])
        np.testing.assert_allclose(getattr(dks, method)(z, t), rows, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("process", [OrnsteinUhlenbeck(T=400.0), VPSDE(T=10.0)], ids=["ou_T400", "vp_T10"])
def test_long_horizons_reach_the_prior(process):
    """Phi^2 / Sigma underflows (a(T)^2 < 1e-308): the floored precision leaves the limit law, N(0, Sigma),
    with the posterior the prior weights (every kernel equal to within exp(-1e-22))."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 2)) * 3.0
    weights = rng.uniform(0.5, 2.0, 30)
    dks = DiffusionKernelSmoother(process).fit(X, sample_weight=weights)
    z = rng.normal(size=(5, 2)) * 2.0
    t = process.t_max
    Phi, Sigma = process.transition(t)
    expected = -0.5 * np.sum(z * z, axis=1) / float(Sigma.c) - np.log(2 * np.pi * float(Sigma.c))
    np.testing.assert_allclose(dks.log_density(z, t), expected, rtol=1e-12)
    np.testing.assert_allclose(dks.denoise(z, t), np.tile(weights @ X / weights.sum(), (5, 1)), rtol=1e-12)
    np.testing.assert_allclose(dks.score(z, t), -z / float(Sigma.c), rtol=1e-12)
