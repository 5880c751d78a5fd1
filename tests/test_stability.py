"""Stability sweep: every estimator's score, denoiser and log-density, for every process, stay finite.

Times on a log grid from 1e-6 to the horizon T (OU with T = 400 included), data and queries with
norms up to 1e4 (Euclidean processes; manifold points have their own scale), float32 and float64.
A NaN or an inf anywhere is a failure; so is a float32 input coming back as float64. Values are
not compared here (each module's tests do that against independent routes): this file guards the
log-domain and expm1 forms against overflow, underflow and ``0 * inf`` at the extremes.
"""
import warnings

import numpy as np
import pytest

from opdiff.estimators import OISM, DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.operators import KernelMeanEmbedding
from opdiff.processes import (VESDE, VPSDE, BrownianMotion, FractionalDiffusion, ManifoldBrownianMotion,
                              OrnsteinUhlenbeck, SpectralAnisotropic, StationaryLinearSDE)
from opdiff.spectral import Fourier, Hermite, SphericalHarmonics

SPHERE, TORUS = Hypersphere(2), FlatTorus(2)
# name -> (process factory, data dimension or manifold)
PROCESSES = {
    "bm": (lambda: BrownianMotion(T=2.0), 2),
    "ou": (lambda: OrnsteinUhlenbeck(), 2),
    "ou_T400": (lambda: OrnsteinUhlenbeck(T=400.0), 2),
    "vp_T10": (lambda: VPSDE(T=10.0), 2),
    "ve": (lambda: VESDE(), 2),
    "ve_edm": (lambda: VESDE.edm(), 2),
    "vp_linear": (lambda: VPSDE(), 2),
    "vp_cosine": (lambda: VPSDE(schedule="cosine"), 2),
    "cld": (lambda: StationaryLinearSDE.cld(), 2),
    "sagd": (lambda: SpectralAnisotropic.power_law((1, 2, 2), 1.0), 4),
    "fractional": (lambda: FractionalDiffusion(0.6, 2), 2),
    "sphere": (lambda: ManifoldBrownianMotion(SPHERE), SPHERE),
    "torus": (lambda: ManifoldBrownianMotion(TORUS, T=2.0), TORUS),
}
NORMS = (1.0, 1e2, 1e4)
DTYPES = (np.float64, np.float32)


def times(process, n=5):
    """Log grid from 1e-6 to the horizon T (both ends included)."""
    return np.geomspace(max(1e-6, process.t_min), process.t_max, n)


def data_and_queries(space, norm, dtype, rng, n_data=12):
    """Training data and 4 queries at the given scale, on the manifold or in R^d."""
    if isinstance(space, int):
        data = norm * rng.normal(size=(n_data, space)) / np.sqrt(space)
        queries = norm * rng.normal(size=(4, space)) / np.sqrt(space)
    else:
        data, queries = space.random_uniform(n_data, rng=rng), space.random_uniform(4, rng=rng)
    return data.astype(dtype), queries.astype(dtype)


def state_queries(process, queries):
    """Queries in the state space (auxiliary blocks, at the data's scale, for CLD and fractional)."""
    if not hasattr(process, "state_dim") or process.state_dim(queries.shape[1]) == queries.shape[1]:
        return queries
    extra = process.state_dim(queries.shape[1]) - queries.shape[1]
    return np.concatenate([queries, np.tile(queries[:, :1], (1, extra))], axis=1)


def assert_finite(value, dtype, what):
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), f"{what}: {int(np.sum(~np.isfinite(value)))} non-finite entries"
    assert value.dtype == dtype, f"{what}: dtype {value.dtype}, expected {dtype.__name__}"


# the kernel mean embedding is the Gaussian-process embedding; on manifolds the smoother is the estimator
SMOOTHERS = [("dks", name) for name in sorted(PROCESSES)]
SMOOTHERS += [("kme", name) for name in sorted(PROCESSES) if not isinstance(PROCESSES[name][1], (Hypersphere, FlatTorus))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("estimator, name", SMOOTHERS)
def test_smoothers_are_finite_everywhere(estimator, name, dtype):
    factory, space = PROCESSES[name]
    process = factory()
    rng = np.random.default_rng(0)
    norms = NORMS if isinstance(space, int) else (1.0,)
    for norm in norms:
        data, queries = data_and_queries(space, norm, dtype, rng)
        model = (DiffusionKernelSmoother(process) if estimator == "dks" else KernelMeanEmbedding(process)).fit(data)
        x = state_queries(process, queries)
        for t in times(process):
            for method in ("score", "denoise", "log_density"):
                assert_finite(getattr(model, method)(x, t), dtype, f"{estimator}.{method}({name}, |x|~{norm:g}, t={t:.3g})")


OISM_CASES = {
    # name -> (process, basis, data space); 400 training points at unit scale
    "ou": (lambda: OrnsteinUhlenbeck(), lambda: Hermite(2, 4), 2),
    "ou_T400": (lambda: OrnsteinUhlenbeck(T=400.0), lambda: Hermite(2, 4), 2),
    "torus": (lambda: BrownianMotion(T=5.0), lambda: Fourier(2, 3), TORUS),
    "sphere": (lambda: ManifoldBrownianMotion(SPHERE), lambda: SphericalHarmonics(3), SPHERE),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(OISM_CASES))
def test_oism_is_finite_everywhere(name, dtype):
    """Scores, denoisers (Gaussian processes) and divergences over the whole grid and far queries;
    log-densities through the probability flow for queries at the data's scale (far from the data
    the spectral flow may leave every bounded region: that is reported as -inf with a warning)."""
    make_process, make_basis, space = OISM_CASES[name]
    process = make_process()
    rng = np.random.default_rng(1)
    data, _ = data_and_queries(space, 1.0, dtype, rng, n_data=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oism = OISM(process, make_basis(), n_grid=8).fit(data)
    norms = NORMS if isinstance(space, int) else (1.0,)
    methods = ("score", "divergence") + (("denoise",) if isinstance(space, int) else ())
    for norm in norms:
        _, x = data_and_queries(space, norm, dtype, rng)
        for t in np.geomspace(1e-6, oism.t_max_, 5):
            for method in methods:
                assert_finite(getattr(oism, method)(x, t), dtype, f"oism.{method}({name}, |x|~{norm:g}, t={t:.3g})")
    _, x = data_and_queries(space, 1.0, dtype, rng)
    for t in (1e-6, 1e-2, 0.5 * oism.t_max_):
        assert_finite(oism.log_density(x, t, n_steps=8), dtype, f"oism.log_density({name}, t={t:.3g})")


# Known limit of NeuralScoreModel.denoise in float32 at long horizons (OU T=400, VP T=10): Tweedie's
# (x + Sigma s) / a needs 1 / a ~ 1e174, beyond float32. There the denoiser must raise a FloatingPointError
# that names the dtype (never return inf); everywhere else it must be finite.
FLOAT32_DENOISER_LIMIT = ("ou_T400", "vp_T10")
NEURAL_CASES = [(name, norm) for name in sorted(PROCESSES) for norm in (1.0, 1e4)
                if norm == 1.0 or isinstance(PROCESSES[name][1], int)]
NEURAL_CASES = [pytest.param(name, norm, dtype, id=f"{name}-{norm:g}-{dtype.__name__}")
                for name, norm in NEURAL_CASES for dtype in DTYPES]


@pytest.mark.parametrize("name, norm, dtype", NEURAL_CASES)
def test_neural_score_model_is_finite_everywhere(name, norm, dtype):
    """A tiny network (4 training steps: the values are not the point) on every process: its score, and its
    Tweedie denoiser where it has one (scalar processes), over the time grid."""
    from opdiff.neural import NeuralScoreModel
    from opdiff.processes import ScalarGaussianProcess

    factory, space = PROCESSES[name]
    process = factory()
    rng = np.random.default_rng(2)
    data, _ = data_and_queries(space, 1.0, dtype, rng, n_data=32)
    model = NeuralScoreModel(process, hidden=(8,), n_steps=4, batch_size=8, rng=0).fit(data)
    _, queries = data_and_queries(space, norm, dtype, rng)
    x = state_queries(process, queries)
    methods = ("score", "denoise") if isinstance(process, ScalarGaussianProcess) else ("score",)
    overflow_expected = name in FLOAT32_DENOISER_LIMIT and dtype is np.float32
    overflowed = False
    for t in times(process):
        for method in methods:
            if method == "denoise" and overflow_expected:
                try:
                    value = model.denoise(x, t)
                except FloatingPointError as error:
                    assert "float32" in str(error) and "denoise" in str(error)
                    overflowed = True
                    continue
            else:
                value = getattr(model, method)(x, t)
            assert_finite(value, dtype, f"neural.{method}({name}, |x|~{norm:g}, t={t:.3g})")
    assert overflowed == overflow_expected, "the float32 long-horizon denoiser limit moved: update FLOAT32_DENOISER_LIMIT"
