"""The library-wide input contract (docs/architecture.md, "Conventions"), table-driven over the public API.

Bad input gets a ``ValueError`` (``TypeError`` for a wrong kind of object) whose message starts with the
argument's name, in the house style ``"<argument>: expected <what>, got <what>"``: wrong shapes,
non-finite values, times out of range, points off the manifold (the message gives the distance),
unfitted estimators (the message says to call fit), unknown backends and option strings. Never a
silent NaN; a failed fit leaves a fitted estimator unchanged; float64 by default, float32 kept.

Every case is tiny (a few points, a few training steps): the whole file runs in seconds.
"""
import warnings

import numpy as np
import pytest

from opdiff import metrics, sampling
from opdiff.estimators import OISM, DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.neural import NeuralScoreModel, ScoreAdapter
from opdiff.operators import KernelMeanEmbedding
from opdiff.processes import (VESDE, VPSDE, BrownianMotion, FractionalDiffusion, ManifoldBrownianMotion,
                              OrnsteinUhlenbeck, SpectralAnisotropic, StationaryLinearSDE)
from opdiff.reductions import gaussian_reduction, kernel_reduction
from opdiff.spectral import Fourier, Hermite, SphericalHarmonics

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 2))
SPHERE = Hypersphere(2)
TORUS = FlatTorus(2)
XS = SPHERE.random_uniform(16, rng=1)


def arg(name):
    """Regex for a message that starts with the argument's name (house style ``"name: expected ..."``)."""
    return rf"^{name}:"


def with_nan(a, where=(0, 0), value=np.nan):
    a = np.array(a, dtype=np.float64)
    a[where] = value
    return a


# ---------------------------------------------------------------------------------------------- processes
# name -> (factory, data dimension); manifold processes take points on their manifold
GAUSSIAN = {
    "brownian": (lambda: BrownianMotion(), 2),
    "ou": (lambda: OrnsteinUhlenbeck(), 2),
    "vesde": (lambda: VESDE(), 2),
    "vesde_edm": (lambda: VESDE.edm(), 2),
    "vpsde": (lambda: VPSDE(), 2),
    "vpsde_cosine": (lambda: VPSDE(schedule="cosine"), 2),
    "cld": (lambda: StationaryLinearSDE.cld(), 2),
    "malda": (lambda: StationaryLinearSDE.malda(), 2),
    "fractional": (lambda: FractionalDiffusion(0.6, 2), 2),
    "sagd": (lambda: SpectralAnisotropic.power_law((1, 2, 2), 1.0), 4),
}
MANIFOLD = {
    "sphere_bm": (lambda: ManifoldBrownianMotion(SPHERE), SPHERE),
    "torus_bm": (lambda: ManifoldBrownianMotion(TORUS, T=1.0), TORUS),
}


def gaussian_pair(name, n=4, dtype=np.float64):
    factory, d = GAUSSIAN[name]
    process = factory()
    x0 = RNG.normal(size=(n, d)).astype(dtype)
    xt = RNG.normal(size=(n, process.state_dim(d))).astype(dtype)
    return process, x0, xt


def manifold_pair(name, n=4, dtype=np.float64):
    factory, manifold = MANIFOLD[name]
    process = factory()
    x0 = manifold.random_uniform(n, rng=2).astype(dtype)
    xt = manifold.random_uniform(n, rng=3).astype(dtype)
    return process, x0, xt


def process_pair(name, **kwargs):
    return gaussian_pair(name, **kwargs) if name in GAUSSIAN else manifold_pair(name, **kwargs)


def call(process, method, x0, xt, t):
    if method == "transition":
        return process.transition(t)
    if method == "sample":
        return process.sample(x0, t, rng=0)
    return getattr(process, method)(xt, x0, t)


PROCESS_METHODS = [(name, method) for name in GAUSSIAN
                   for method in ("transition", "sample", "transition_logpdf", "transition_score")]
PROCESS_METHODS += [(name, method) for name in MANIFOLD
                    for method in ("sample", "transition_logpdf", "transition_score")]


@pytest.mark.parametrize("name, method", PROCESS_METHODS)
@pytest.mark.parametrize("bad", ["negative", "after_t_max", "nan", "inf"])
def test_process_times_out_of_range_name_t(name, method, bad):
    process, x0, xt = process_pair(name)
    t = {"negative": -0.1, "after_t_max": 2.0 * process.t_max, "nan": np.nan, "inf": np.inf}[bad]
    with pytest.raises(ValueError, match=arg("t")):
        call(process, method, x0, xt, t)
    if method != "transition":  # one time per row: a wrong length is a shape error on t
        with pytest.raises(ValueError, match=arg("t")):
            call(process, method, x0, xt, np.full(x0.shape[0] + 1, 0.5 * process.t_max))


@pytest.mark.parametrize("name", sorted(GAUSSIAN))
def test_transition_start_time_after_t_names_s(name):
    process = GAUSSIAN[name][0]()
    t = 0.5 * process.t_max
    with pytest.raises(ValueError, match=arg("s")):
        process.transition(t, 0.9 * process.t_max)
    with pytest.raises(ValueError, match=arg("s")):
        process.transition(t, -0.1)
    # inside the range the transition is finite (never a NaN operator)
    Phi, Sigma = process.transition(t, 0.5 * t)
    assert np.all(np.isfinite(Sigma.dense(process.state_dim(GAUSSIAN[name][1]))))


@pytest.mark.parametrize("name", sorted(GAUSSIAN) + sorted(MANIFOLD))
def test_sde_coefficients_reject_times_out_of_range(name):
    process, _, xt = process_pair(name)
    for t in (-1.0, 2.0 * process.t_max, np.nan):
        with pytest.raises(ValueError, match=arg("t")):
            process.diffusion(t)
        if name in GAUSSIAN:
            with pytest.raises(ValueError, match=arg("t")):
                process.drift(xt, t)
    # defined on the closed range [t_min, t_max]
    for t in (process.t_min, process.t_max):
        assert np.all(np.isfinite(process.drift(xt, t)))
        assert np.all(np.isfinite(process.diffusion_covariance(t).dense(xt.shape[1])))


@pytest.mark.parametrize("name", sorted(GAUSSIAN) + sorted(MANIFOLD))
@pytest.mark.parametrize("bad", ["nan", "inf", "vector", "3d", "empty"])
def test_process_bad_start_points_name_x0(name, bad):
    process, x0, xt = process_pair(name)
    x0 = {"nan": with_nan(x0), "inf": with_nan(x0, value=np.inf), "vector": x0[0, :1],
          "3d": x0[None], "empty": x0[:0]}[bad]
    t = 0.5 * process.t_max
    with pytest.raises(ValueError, match=arg("x0")):
        process.sample(x0, t, rng=0)


@pytest.mark.parametrize("name", sorted(GAUSSIAN) + sorted(MANIFOLD))
@pytest.mark.parametrize("method", ["transition_logpdf", "transition_score"])
def test_process_bad_states_name_xt(name, method):
    process, x0, xt = process_pair(name)
    t = 0.5 * process.t_max
    for bad in (with_nan(xt), np.zeros((xt.shape[0], xt.shape[1] + 1)), xt[:-1]):
        with pytest.raises(ValueError, match=arg("xt")):
            getattr(process, method)(bad, x0, t)


@pytest.mark.parametrize("name", sorted(GAUSSIAN) + sorted(MANIFOLD))
def test_prior_rejects_bad_counts_and_points(name):
    process, _, xt = process_pair(name)
    prior = process.prior()
    dim = xt.shape[1]
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match=arg("n")):
            prior.sample(n, dim, rng=0)
    with pytest.raises(ValueError, match=arg("x")):
        prior.log_density(with_nan(xt))
    assert prior.sample(3, dim, rng=0).shape == (3, dim)


# ---------------------------------------------------------------------------------------------- manifolds
OFF_SPHERE = 1.5 * XS[:4]  # at distance 0.5 from the sphere
OFF_TORUS = TORUS.random_uniform(4, rng=0) + 10.0  # outside the fundamental domain


@pytest.mark.parametrize("name, off", [("sphere_bm", OFF_SPHERE), ("torus_bm", OFF_TORUS)])
def test_points_off_the_manifold_name_the_argument_and_the_distance(name, off):
    process, x0, _ = manifold_pair(name)
    t = 0.5 * process.t_max
    with pytest.raises(ValueError, match=r"^x0:.*distance"):
        process.sample(off, t, rng=0)
    with pytest.raises(ValueError, match=r"^xt:.*distance"):
        process.transition_score(off, x0, t)
    with pytest.raises(ValueError, match=r"^x:.*distance"):
        process.prior().log_density(off)
    smoother = DiffusionKernelSmoother(process)
    with pytest.raises(ValueError, match=r"^X:.*distance"):
        smoother.fit(off)
    smoother.fit(x0)
    with pytest.raises(ValueError, match=r"^x:.*distance"):
        smoother.score(off, t)
    with pytest.raises(ValueError, match=r"^x:.*distance"):
        sampling.sample_manifold_reverse_sde(lambda x, s: 0 * x, off, [t, 0.5 * t], process=process)


def test_spherical_harmonics_off_the_sphere_names_the_distance():
    with pytest.raises(ValueError, match=r"^x:.*distance 0\.5"):
        SphericalHarmonics(2).values(OFF_SPHERE)


# ---------------------------------------------------------------------------------------------- estimators
def _oism():
    return OISM(OrnsteinUhlenbeck(), Hermite(2, 2), n_grid=8)


def _neural(process=None):
    return NeuralScoreModel(process or VPSDE(), hidden=(8,), n_steps=4, batch_size=8, rng=0)


# name -> (factory, training data, methods evaluated at (x, t))
ESTIMATORS = {
    "dks_vp": (lambda: DiffusionKernelSmoother(VPSDE()), X, ("score", "denoise", "log_density")),
    "dks_cld": (lambda: DiffusionKernelSmoother(StationaryLinearSDE.cld()), X, ("score", "denoise", "log_density")),
    "dks_adaptive": (lambda: DiffusionKernelSmoother(OrnsteinUhlenbeck(), adaptive=0.5, pilot_time=0.2), X,
                     ("score", "denoise", "log_density")),
    "rdks_sphere": (lambda: DiffusionKernelSmoother(ManifoldBrownianMotion(SPHERE)), XS,
                    ("score", "denoise", "log_density")),
    "kme": (lambda: KernelMeanEmbedding(VPSDE()), X, ("score", "denoise", "log_density")),
    "oism": (_oism, X, ("score", "denoise", "divergence", "log_density")),
    "neural": (_neural, X, ("score", "denoise")),
}


def evaluate(estimator, method, x, t):
    if method == "log_density" and isinstance(estimator, OISM):
        return estimator.log_density(x, t, n_steps=4)
    return getattr(estimator, method)(x, t)


def query(estimator, data, n=3):
    """Valid query states (auxiliary blocks appended for CLD)."""
    x = data[:n]
    process = estimator.process
    if hasattr(process, "state_dim") and process.state_dim(x.shape[1]) != x.shape[1]:
        x = process.lift(x) + 0.1
    return x


ESTIMATOR_METHODS = [(name, method) for name, (_, _, methods) in ESTIMATORS.items() for method in methods]


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: factory().fit(data) for name, (factory, data, _) in ESTIMATORS.items()}


@pytest.mark.parametrize("name, method", ESTIMATOR_METHODS)
def test_unfitted_estimator_says_to_call_fit(name, method):
    factory, data, _ = ESTIMATORS[name]
    with pytest.raises(ValueError, match="fit"):
        evaluate(factory(), method, data[:3], 0.5)


@pytest.mark.parametrize("name, method", ESTIMATOR_METHODS)
def test_estimator_bad_queries_name_x(name, method, fitted):
    estimator, data = fitted[name], ESTIMATORS[name][1]
    x = query(estimator, data)
    for bad in (with_nan(x), with_nan(x, value=-np.inf), np.zeros((3, x.shape[1] + 1)), x[None]):
        with pytest.raises(ValueError, match=arg("x")):
            evaluate(estimator, method, bad, 0.5)


@pytest.mark.parametrize("name, method", ESTIMATOR_METHODS)
def test_estimator_times_out_of_range_name_t(name, method, fitted):
    estimator, data = fitted[name], ESTIMATORS[name][1]
    x = query(estimator, data)
    t_max = getattr(estimator, "t_max", None) or estimator.process.t_max
    for t in (-0.5, 10.0 * t_max, np.nan, np.full(x.shape[0] + 2, 0.5)):
        with pytest.raises(ValueError, match=arg("t")):
            evaluate(estimator, method, x, t)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_fit_rejects_bad_data_naming_X(name):
    factory, data, _ = ESTIMATORS[name]
    for bad in (with_nan(data), with_nan(data, value=np.inf), data[:, 0], data[None], data[:0]):
        with pytest.raises(ValueError, match=arg("X")):
            factory().fit(bad)


@pytest.mark.parametrize("name", ["dks_vp", "dks_adaptive", "rdks_sphere", "kme"])
def test_estimator_sample_checks_n_and_t(name, fitted):
    estimator = fitted[name]
    with pytest.raises(ValueError, match=arg("n")):
        estimator.sample(0, 0.5, rng=0)
    with pytest.raises(ValueError, match=arg("n")):
        estimator.sample(2.5, 0.5, rng=0)
    with pytest.raises(ValueError, match=arg("t")):
        estimator.sample(3, -1.0, rng=0)


def test_estimator_hyper_parameters_are_named():
    with pytest.raises(ValueError, match=arg("adaptive")):
        DiffusionKernelSmoother(OrnsteinUhlenbeck(), adaptive=-1.0, pilot_time=0.2).fit(X)
    with pytest.raises(ValueError, match=arg("pilot_time")):
        DiffusionKernelSmoother(OrnsteinUhlenbeck(), adaptive=0.5, pilot_time=-0.2).fit(X)
    with pytest.raises(ValueError, match=arg("t_min")):
        NeuralScoreModel(VPSDE(), t_min=2.0, n_steps=2).fit(X)
    with pytest.raises(ValueError, match=arg("n_steps")):
        NeuralScoreModel(VPSDE(), n_steps=0).fit(X)
    with pytest.raises(ValueError, match=arg("lr")):
        NeuralScoreModel(VPSDE(), lr=-1.0, n_steps=2).fit(X)
    with pytest.raises(ValueError, match=arg("hidden")):
        NeuralScoreModel(VPSDE(), hidden=(0,), n_steps=2).fit(X)
    with pytest.raises(ValueError, match=arg("process")):
        OISM(VPSDE(), Hermite(2, 2)).fit(X)
    with pytest.raises(ValueError, match=arg("chunk_bytes")):
        OISM(OrnsteinUhlenbeck(), Hermite(2, 2), chunk_bytes=-1).fit(X)
    with pytest.raises(TypeError, match=arg("process")):
        DiffusionKernelSmoother("vp").fit(X)
    with pytest.raises(ValueError, match=arg("n")):
        _oism().fit(X).sample(0)


# ---------------------------------------------------------------------------------------------- option strings
UNKNOWN_OPTIONS = {
    "dks_backend": ("backend", lambda: DiffusionKernelSmoother(VPSDE(), backend="nope").fit(X)),
    "rdks_backend": ("backend", lambda: DiffusionKernelSmoother(ManifoldBrownianMotion(SPHERE),
                                                                backend="nope").fit(XS)),
    "kme_backend": ("backend", lambda: KernelMeanEmbedding(VPSDE(), backend="nope").fit(X)),
    "reduction_backend": ("backend", lambda: gaussian_reduction(X, X, backend="nope")),
    "mmd_backend": ("backend", lambda: metrics.mmd_squared(X, X, backend="nope")),
    "oism_shrinkage": ("shrinkage", lambda: OISM(OrnsteinUhlenbeck(), Hermite(2, 2), shrinkage="nope").fit(X)),
    "vpsde_schedule": ("schedule", lambda: VPSDE(schedule="nope")),
    "vesde_schedule": ("schedule", lambda: VESDE(schedule="nope")),
    "linear_schedule": ("schedule", lambda: StationaryLinearSDE.cld(schedule="nope")),
    "fractional_kind": ("kind", lambda: FractionalDiffusion(0.6, 2, kind="nope")),
    "manifold_schedule": ("schedule", lambda: ManifoldBrownianMotion(SPHERE, schedule="nope")),
    "hermite_kind": ("kind", lambda: Hermite(2, 2, kind="nope")),
    "sphere_method": ("method", lambda: Hypersphere(2, method="nope")),
    "torus_method": ("method", lambda: FlatTorus(2, method="nope")),
    "adapter_output": ("output", lambda: ScoreAdapter(lambda x, t: x, VPSDE(), output="nope")),
    "grid_kind": ("kind", lambda: sampling.get_grid("nope", 4, 0.1, 1.0)),
    "flow_method": ("method", lambda: sampling.sample_probability_flow(
        lambda x, t: -x, X, [1.0, 0.5], process=VPSDE(), method="nope")),
    "manifold_flow_method": ("method", lambda: sampling.sample_manifold_probability_flow(
        lambda x, t: 0 * x, XS, [1.0, 0.5], process=ManifoldBrownianMotion(SPHERE), method="nope")),
    "trajectory_attribute": ("attribute", lambda: sampling.chord_deviation(
        sampling.sample_euler(lambda x, s: 0 * x, X, [1.0, 0.5, 0.0]), attribute="nope")),
    "ipndm_warmup": ("warmup", lambda: sampling.sample_ipndm(lambda x, s: 0 * x, X, [1.0, 0.5, 0.0], warmup="nope")),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_OPTIONS))
def test_unknown_option_strings_name_the_argument(case):
    name, function = UNKNOWN_OPTIONS[case]
    with pytest.raises(ValueError, match=rf"^{name}:.*'nope'"):
        function()


# ------------------------------------------------------------------------ reductions, metrics, samplers, bases
def _log_kernel(a, b):
    return -0.5 * ((a[:, None] - b[None]) ** 2).sum(-1)


FUNCTION_CASES = {
    "reduction_nan_queries": ("queries", lambda: gaussian_reduction(with_nan(X), X)),
    "reduction_vector_queries": ("queries", lambda: gaussian_reduction(X[:, 0], X)),
    "reduction_points_dim": ("points", lambda: gaussian_reduction(X, np.zeros((3, 3)))),
    "reduction_inf_points": ("points", lambda: gaussian_reduction(X, with_nan(X, value=np.inf))),
    "reduction_values_rows": ("values", lambda: gaussian_reduction(X, X, values=np.zeros((3, 1)))),
    "reduction_nan_values": ("values", lambda: gaussian_reduction(X, X, values=with_nan(X))),
    "reduction_log_weights_shape": ("log_weights", lambda: gaussian_reduction(X, X, log_weights=np.zeros(3))),
    "reduction_log_weights_nan": ("log_weights", lambda: gaussian_reduction(X, X, log_weights=np.full(16, np.nan))),
    "reduction_chunk_bytes": ("chunk_bytes", lambda: gaussian_reduction(X, X, chunk_bytes=-5)),
    "kernel_reduction_nan": ("queries", lambda: kernel_reduction(with_nan(X), X, _log_kernel)),
    "kernel_reduction_kernel": ("log_kernel", lambda: kernel_reduction(X, X, None)),
    "mmd_nan": ("x", lambda: metrics.mmd_squared(with_nan(X), X)),
    "mmd_dims": ("y", lambda: metrics.mmd_squared(X, np.zeros((4, 3)))),
    "mmd_bandwidth": ("bandwidth", lambda: metrics.mmd_squared(X, X, bandwidth=-1.0)),
    "median_bandwidth_nan": ("x", lambda: metrics.median_bandwidth(with_nan(X), X)),
    "median_bandwidth_dims": ("y", lambda: metrics.median_bandwidth(X, np.zeros((4, 3)))),
    "sliced_nan": ("y", lambda: metrics.sliced_wasserstein(X, with_nan(X))),
    "sliced_projections": ("n_projections", lambda: metrics.sliced_wasserstein(X, X, n_projections=0)),
    "sliced_order": ("p", lambda: metrics.sliced_wasserstein(X, X, p=0.5)),
    "fisher_nan": ("score", lambda: metrics.fisher_divergence(with_nan(X), X)),
    "fisher_shape": ("reference_score", lambda: metrics.fisher_divergence(X, X[:3])),
    "held_out_nan": ("log_density_values", lambda: metrics.held_out_log_likelihood([0.0, np.nan])),
    "euler_sigmas_increasing": ("sigmas", lambda: sampling.sample_euler(lambda x, s: 0 * x, X, [1.0, 2.0])),
    "euler_sigmas_nan": ("sigmas", lambda: sampling.sample_euler(lambda x, s: 0 * x, X, [np.nan, 0.0])),
    "euler_nan_start": ("x", lambda: sampling.sample_euler(lambda x, s: 0 * x, with_nan(X), [1.0, 0.0])),
    "heun_vector_start": ("x", lambda: sampling.sample_heun(lambda x, s: 0 * x, X[:, 0], [1.0, 0.5, 0.0])),
    "dpm_nan_denoiser": ("denoiser", lambda: sampling.sample_dpm_solver_pp_2m(
        lambda x, s: np.nan * x, X, [1.0, 0.5, 0.0])),
    "euler_maruyama_nan": ("x", lambda: sampling.sample_euler_maruyama(lambda x, s: 0 * x, with_nan(X), [1.0, 0.0])),
    "reverse_sde_times": ("times", lambda: sampling.sample_reverse_sde(lambda x, t: -x, X, [5.0, 0.5],
                                                                       process=VPSDE())),
    "flow_times": ("times", lambda: sampling.sample_probability_flow(lambda x, t: -x, X, [0.5, -0.5], process=VPSDE())),
    "flow_nan_start": ("x", lambda: sampling.sample_probability_flow(lambda x, t: -x, with_nan(X), [1.0, 0.5],
                                                                    process=VPSDE())),
    "manifold_sde_times": ("times", lambda: sampling.sample_manifold_reverse_sde(
        lambda x, t: 0 * x, XS, [100.0, 0.5], process=ManifoldBrownianMotion(SPHERE))),
    "time_not_a_number": ("t", lambda: VPSDE().sample(X, "soon", rng=0)),
    "oism_fit_overflow": ("X", lambda: _oism().fit(1e200 * X)),
    "edm_sigma_min": ("sigma_min", lambda: sampling.edm_sigmas(5, sigma_min=-1.0)),
    "edm_sigma_max": ("sigma_max", lambda: sampling.edm_sigmas(5, sigma_min=1.0, sigma_max=0.5)),
    "grid_steps": ("n_steps", lambda: sampling.uniform_grid(0, 0.1, 1.0)),
    "time_grid_steps": ("n_steps", lambda: sampling.uniform_time_grid(ManifoldBrownianMotion(SPHERE), 0, 0.01)),
    "time_grid_t_min": ("t_min", lambda: sampling.uniform_time_grid(ManifoldBrownianMotion(SPHERE), 4, -0.01)),
}
BASES = {"hermite": (lambda: Hermite(2, 2), X), "fourier": (lambda: Fourier(2, 2), np.clip(X, -3, 3)),
         "spherical": (lambda: SphericalHarmonics(2), XS)}
BASIS_METHODS = ("values", "gradients", "laplacians", "moment_values", "invariant_score", "invariant_logpdf")
for _basis, (_factory, _good) in BASES.items():
    for _method in BASIS_METHODS:
        FUNCTION_CASES[f"{_basis}_{_method}_nan"] = (
            "x", lambda f=_factory, m=_method, g=_good: getattr(f(), m)(with_nan(g)))
        FUNCTION_CASES[f"{_basis}_{_method}_dim"] = (
            "x", lambda f=_factory, m=_method, g=_good: getattr(f(), m)(np.zeros((3, g.shape[1] + 2))))
    FUNCTION_CASES[f"{_basis}_sample_invariant_n"] = ("n", lambda f=_factory: f().sample_invariant(0, rng=0))


@pytest.mark.parametrize("case", sorted(FUNCTION_CASES))
def test_functions_reject_bad_input_naming_the_argument(case):
    name, function = FUNCTION_CASES[case]
    with pytest.raises((ValueError, TypeError), match=arg(name)):
        function()


# ---------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("name", sorted(GAUSSIAN) + sorted(MANIFOLD))
def test_process_keeps_float32(name):
    process, x0, xt = process_pair(name, dtype=np.float32)
    t = 0.5 * process.t_max
    assert process.sample(x0, t, rng=0).dtype == np.float32
    assert process.sample(x0, np.full(x0.shape[0], t), rng=0).dtype == np.float32
    assert process.transition_score(xt, x0, t).dtype == np.float32
    assert process.transition_logpdf(xt, x0, t).dtype == np.float32
    assert process.prior().log_density(xt).dtype == np.float32
    # float64 by default (integer data too, where integers are valid points)
    assert process.sample(x0.astype(np.float64), t, rng=0).dtype == np.float64
    assert process.transition_score(xt.astype(np.float64), x0.astype(np.float64), t).dtype == np.float64
    if name in GAUSSIAN:
        assert process.sample(np.ones(x0.shape, dtype=np.int64), t, rng=0).dtype == np.float64


@pytest.mark.parametrize("name, method", ESTIMATOR_METHODS)
def test_estimator_keeps_float32(name, method):
    factory, data, _ = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = factory().fit(data.astype(np.float32))
    x = query(estimator, data.astype(np.float32))
    out = evaluate(estimator, method, x, 0.5)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", ["dks_vp", "dks_adaptive", "rdks_sphere", "kme"])
def test_estimator_samples_keep_float32(name):
    factory, data, _ = ESTIMATORS[name]
    estimator = factory().fit(data.astype(np.float32))
    assert estimator.sample(3, 0.5, rng=0).dtype == np.float32


def test_integer_input_gives_float64():
    estimator = DiffusionKernelSmoother(VPSDE()).fit(np.round(3 * X).astype(np.int64))
    assert estimator.score(np.zeros((2, 2), dtype=np.int64), 0.5).dtype == np.float64


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_reductions_keep_float32(backend):
    x = X.astype(np.float32)
    reduction = gaussian_reduction(x, x, backend=backend)
    assert reduction.log_sum.dtype == np.float32 and reduction.mean.dtype == np.float32
    reduction = kernel_reduction(x, x, _log_kernel)
    assert reduction.log_sum.dtype == np.float32 and reduction.mean.dtype == np.float32


@pytest.mark.parametrize("basis", sorted(BASES))
@pytest.mark.parametrize("method", BASIS_METHODS)
def test_bases_keep_float32(basis, method):
    factory, good = BASES[basis]
    assert getattr(factory(), method)(good.astype(np.float32)).dtype == np.float32


# ---------------------------------------------------------------------------------------------- failed refits
def _state(estimator):
    return {key: value for key, value in vars(estimator).items() if key.endswith("_")}


REFITS = {
    # name -> (estimator, good data, bad fits (X, kwargs), probe (x, t))
    "kme": (lambda: KernelMeanEmbedding(VPSDE()), X, [(with_nan(X), {}), (X[:4], {"sample_weight": [1.0, -1.0, 1.0, 1.0]})]),
    "dks_adaptive": (lambda: DiffusionKernelSmoother(OrnsteinUhlenbeck(), adaptive=0.5, pilot_time=0.2), X,
                     [(with_nan(X), {}), (X[:1], {}), (X[:4], {"sample_weight": [1.0, -1.0, 1.0, 1.0]})]),
    "oism": (_oism, X, [(with_nan(X), {}), (np.zeros((4, 3)), {}), (1e200 * X, {})]),
    "neural": (_neural, X, [(with_nan(X), {}), (X[:, 0], {}), (1e200 * X, {})]),
    "neural_cld": (lambda: _neural(StationaryLinearSDE.cld()), X, [(1e200 * X, {})]),
}


@pytest.mark.parametrize("name", sorted(REFITS))
def test_failed_refit_leaves_the_fitted_estimator_unchanged(name):
    factory, good, bad_fits = REFITS[name]
    estimator = factory().fit(good)
    x = query(estimator, good)
    before, state = estimator.score(x, 0.5), _state(estimator)
    for bad, kwargs in bad_fits:
        # a diverging DSM training raises FloatingPointError; overflow warnings on the way are expected
        with np.errstate(all="ignore"), pytest.raises((ValueError, FloatingPointError)):
            estimator.fit(bad, **kwargs)
        after = _state(estimator)
        assert after.keys() == state.keys()
        for key, value in state.items():
            assert after[key] is value, f"{name}.{key} changed by a failed fit"
        np.testing.assert_array_equal(estimator.score(x, 0.5), before)


# ---------------------------------------------------------------------------------------------- the whole public API
# Every public function and class of every subpackage (its __all__, the public classes and functions it
# exposes, and the public names of the submodules listed in __all__) has a bad-input case here, or
# another test of this file that feeds it bad input, or a line in NO_ARRAY_INPUT saying why it takes
# none. test_every_public_name_is_covered fails naming any public name added without one.
from opdiff import datasets, linalg, manifolds, operators, reductions, spectral  # noqa: E402
from opdiff.backend import (as_float_array, check_choice, check_count, check_finite, check_fitted,  # noqa: E402
                            check_points, check_positive, check_time, chunk_budget, chunk_rows, require_extra,
                            set_chunk_bytes)
from opdiff.estimators import ResidualScore, control_variates, elbo, losses  # noqa: E402
from opdiff.linalg import Scalar  # noqa: E402

Scalar1 = Scalar(1.0)

OU = OrnsteinUhlenbeck()
H22 = Hermite(2, 2)
CLD = StationaryLinearSDE.cld()


def _fitted_oism():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _oism().fit(X)


PUBLIC_CASES = [
    # backend
    ("opdiff.backend.check_choice", "opt", lambda: check_choice("nope", "opt", ("a", "b"))),
    ("opdiff.backend.check_count", "n", lambda: check_count(2.5, "n")),
    ("opdiff.backend.check_finite", "x", lambda: check_finite(with_nan(X), "x")),
    ("opdiff.backend.check_fitted", "", lambda: check_fitted(_oism(), "moment_means_")),
    ("opdiff.backend.check_points", "x", lambda: check_points(X[:, 0], "x")),
    ("opdiff.backend.check_positive", "h", lambda: check_positive(-1.0, "h")),
    ("opdiff.backend.check_time", "t", lambda: check_time(np.nan)),
    ("opdiff.backend.chunk_budget", "n_bytes", lambda: chunk_budget(-1).__enter__()),
    ("opdiff.backend.set_chunk_bytes", "n_bytes", lambda: set_chunk_bytes(0)),
    ("opdiff.backend.require_extra", "", lambda: require_extra("a_module_that_is_not_installed")),
    ("opdiff.backend.as_float_array", "x", lambda: as_float_array(np.array(["a"]))),
    ("opdiff.backend.as_float_array", "x", lambda: as_float_array(np.ones(2, dtype=complex))),
    ("opdiff.backend.chunk_rows", "n_rows", lambda: list(chunk_rows(-3, 8))),
    ("opdiff.backend.chunk_rows", "row_bytes", lambda: list(chunk_rows(3, 2.5))),
    # datasets
    ("opdiff.datasets.GaussianMixture", "means", lambda: datasets.GaussianMixture([1.0], [[np.nan, 0.0]], 1.0)),
    ("opdiff.datasets.GaussianMixture", "covs", lambda: datasets.GaussianMixture([1.0], [[0.0, 0.0]], -1.0)),
    ("opdiff.datasets.GaussianMixture", "n", lambda: datasets.GaussianMixture([1.0], [[0.0, 0.0]], 1.0).sample(2.5)),
    ("opdiff.datasets.VonMisesFisherMixture", "n",
     lambda: datasets.VonMisesFisherMixture([[0, 0, 1.0]], [2.0]).sample(2.5, rng=0)),
    ("opdiff.datasets.VonMisesFisherMixture", "kappas", lambda: datasets.VonMisesFisherMixture([[0, 0, 1.0]], [-2.0])),
    ("opdiff.datasets.WrappedNormalMixture", "n",
     lambda: datasets.WrappedNormalMixture([[0.0, 0.0]], [0.5]).sample(2.5, rng=0)),
    ("opdiff.datasets.WrappedNormalMixture", "stds", lambda: datasets.WrappedNormalMixture([[0.0, 0.0]], [np.nan])),
    ("opdiff.datasets.latlon_to_unit", "latitude", lambda: datasets.latlon_to_unit([100.0], [0.0])),
    ("opdiff.datasets.latlon_to_unit", "longitude", lambda: datasets.latlon_to_unit([10.0], [np.nan])),
    ("opdiff.datasets.unit_to_latlon", "x", lambda: datasets.unit_to_latlon(2.0 * XS)),
    ("opdiff.datasets.make_toy", "n", lambda: datasets.make_toy("moons", 2.5)),
    ("opdiff.datasets.make_toy", "name", lambda: datasets.make_toy("nope", 10)),
    ("opdiff.datasets.random_mixture", "n_components", lambda: datasets.random_mixture(0, 2, rng=0)),
    ("opdiff.datasets.load_latlon", "path", lambda: datasets.load_latlon("/nonexistent/file.csv")),
    ("opdiff.datasets.load_digits_images", "n", lambda: datasets.load_digits_images(n=-1)),
    ("opdiff.datasets.load_natural_patches", "n, size", lambda: datasets.load_natural_patches(n=4, size=0)),
    ("opdiff.datasets.load_mnist", "path", lambda: datasets.load_mnist("/nonexistent")),
    ("opdiff.datasets.load_cifar10", "path", lambda: datasets.load_cifar10("/nonexistent")),
    ("opdiff.datasets.read_idx", "path", lambda: datasets.read_idx("/nonexistent.idx")),
    # estimators: losses, control variates, ELBO, residual scores
    ("opdiff.estimators.losses.ism_loss", "n_probes",
     lambda: losses.ism_loss(lambda x, t: -x, X, 0.5, divergence="hutchinson", n_probes=0, rng=0)),
    ("opdiff.estimators.losses.ism_loss", "x", lambda: losses.ism_loss(lambda x, t: -x, with_nan(X), 0.5)),
    ("opdiff.estimators.losses.sliced_loss", "n_projections",
     lambda: losses.sliced_loss(lambda x, t: -x, X, 0.5, n_projections=0)),
    ("opdiff.estimators.losses.sliced_loss", "model", lambda: losses.sliced_loss(lambda x, t: np.nan * x, X, 0.5)),
    ("opdiff.estimators.losses.dsm_loss", "process", lambda: losses.dsm_loss(lambda x, t: -x, X, 0.5, process=None)),
    ("opdiff.estimators.losses.dsm_loss", "x0", lambda: losses.dsm_loss(lambda x, t: -x, with_nan(X), 0.5, OU)),
    ("opdiff.estimators.losses.operator_ism_loss", "params", lambda: losses.operator_ism_loss(H22, np.zeros(3), X, 0.5)),
    ("opdiff.estimators.losses.operator_ism_loss", "t", lambda: losses.operator_ism_loss(H22, np.zeros(8), X, -0.5)),
    ("opdiff.estimators.losses.hutchinson_variance", "probe", lambda: losses.hutchinson_variance(np.eye(2), "nope")),
    ("opdiff.estimators.losses.directional_derivative", "step",
     lambda: losses.directional_derivative(lambda x, t: x, X, 0.5, X, step=0.0)),
    ("opdiff.estimators.losses.LinearScoreModel", "params",
     lambda: losses.ism_loss(_fitted_oism().linear_model(), X, 0.5, params=None)),
    ("opdiff.estimators.losses.LossEstimate", "model", lambda: losses.ism_loss(lambda x, t: np.inf * x, X, 0.5,
                                                                              divergence="hutchinson", rng=0)),
    ("opdiff.estimators.control_variates.apply_control_variates", "samples",
     lambda: control_variates.apply_control_variates(np.r_[np.nan, np.ones(15)], X)),
    ("opdiff.estimators.control_variates.apply_control_variates", "controls",
     lambda: control_variates.apply_control_variates(np.ones(16), with_nan(X))),
    ("opdiff.estimators.control_variates.optimal_coefficients", "controls",
     lambda: control_variates.optimal_coefficients(np.ones(16), X[:3])),
    ("opdiff.estimators.control_variates.OperatorControlVariates", "t",
     lambda: control_variates.OperatorControlVariates(H22).values(X, X, -1.0)),
    ("opdiff.estimators.control_variates.OperatorControlVariates", "xt",
     lambda: control_variates.OperatorControlVariates(H22).values(X, with_nan(X), 0.5)),
    ("opdiff.estimators.control_variates.OperatorControlVariates", "basis",
     lambda: control_variates.OperatorControlVariates("hermite").values(X, X, 0.5)),
    ("opdiff.estimators.control_variates.ControlVariateResult", "samples",
     lambda: control_variates.apply_control_variates(np.ones(2), X[:2])),
    ("opdiff.estimators.control_variates.ControlVariateLoss", "t",
     lambda: losses.dsm_loss(lambda x, t: -x, X, -0.5, OU, control_variates=control_variates.OperatorControlVariates(H22))),
    ("opdiff.estimators.ResidualScore", "", lambda: ResidualScore(_oism(), lambda x, t: 0 * x).score(X, 0.5)),
    ("opdiff.estimators.IllConditionedWarning", "ridge", lambda: OISM(OU, H22, ridge=-1.0).fit(X)),
    ("opdiff.estimators.OISM", "basis", lambda: OISM(OU, "hermite").fit(X)),
    ("opdiff.estimators.OISM", "sample_weight", lambda: OISM(OU, H22).fit(X, sample_weight=-np.ones(16))),
    ("opdiff.estimators.OISM", "X", lambda: OISM(BrownianMotion(T=5.0), Fourier(2, 2)).fit(np.full((4, 2), 210.0))),
    ("opdiff.estimators.elbo.dsm_elbo", "x", lambda: elbo.dsm_elbo(CLD, with_nan(X), lambda x, t: -x, rng=0)),
    ("opdiff.estimators.elbo.dsm_elbo", "process", lambda: elbo.dsm_elbo(VPSDE(), X, lambda x, t: -x, rng=0)),
    ("opdiff.estimators.elbo.ism_elbo", "n_probes", lambda: elbo.ism_elbo(CLD, X, lambda x, t: -x, rng=0, n_probes=0)),
    ("opdiff.estimators.elbo.mean_elbo", "form", lambda: elbo.mean_elbo(CLD, X, lambda x, t: -x, form="nope")),
    ("opdiff.estimators.elbo.sample_times", "n", lambda: elbo.sample_times(CLD, 0)),
    ("opdiff.estimators.elbo.prior_kl", "mean", lambda: elbo.prior_kl(CLD, np.nan)),
    ("opdiff.estimators.elbo.prior_kl", "data_var", lambda: elbo.prior_kl(CLD, 0.0, -1.0)),
    ("opdiff.estimators.elbo.exact_score_elbo", "data_var", lambda: elbo.exact_score_elbo(CLD, 0.0, -1.0)),
    ("opdiff.estimators.elbo.gaussian_entropy", "variance", lambda: elbo.gaussian_entropy(-1.0)),
    ("opdiff.estimators.elbo.gaussian_entropy", "d", lambda: elbo.gaussian_entropy(1.0, 0)),
    ("opdiff.estimators.elbo.gaussian_data_score", "data_var", lambda: elbo.gaussian_data_score(CLD, 0.0, -1.0)),
    ("opdiff.estimators.elbo.gaussian_data_score", "mean", lambda: elbo.gaussian_data_score(CLD, np.nan, 1.0)),
    ("opdiff.estimators.elbo.GaussianData", "mean", lambda: elbo.GaussianData([np.nan, 0.0], 1.0)),
    ("opdiff.estimators.elbo.GaussianData", "cov", lambda: elbo.GaussianData(np.zeros(2), -np.eye(2))),
    ("opdiff.estimators.elbo.GaussianData", "X", lambda: elbo.GaussianData.fit(with_nan(X))),
    ("opdiff.estimators.elbo.learned_elbo_gradient", "base",
     lambda: elbo.learned_elbo_gradient(np.eye(2), np.eye(2), X, lambda y, t: y, lambda y, t, c: c, base=1.0)),
    # linalg
    ("opdiff.linalg.Scalar", "c", lambda: linalg.Scalar(np.nan)),
    ("opdiff.linalg.Diagonal", "v", lambda: linalg.Diagonal([1.0, np.inf])),
    ("opdiff.linalg.Kron", "block", lambda: linalg.Kron(np.full((2, 2), np.nan))),
    ("opdiff.linalg.Kron", "block", lambda: linalg.Kron(np.ones((2, 3)))),
    ("opdiff.linalg.FourierDiagonal", "eigenvalues", lambda: linalg.FourierDiagonal((1, 2, 2), -np.ones((2, 2)))),
    ("opdiff.linalg.LinearOperator", "dim", lambda: linalg.Diagonal([1.0, 2.0]).logdet(3)),
    ("opdiff.linalg.as_operator", "c", lambda: linalg.as_operator(np.nan)),
    ("opdiff.linalg.linear_sde_transition", "F0", lambda: linalg.linear_sde_transition(np.ones((2, 3)), np.eye(2), 0.5)),
    ("opdiff.linalg.van_loan_covariance", "tau", lambda: linalg.van_loan_covariance(-np.eye(2), np.eye(2), np.nan)),
    # manifolds
    ("opdiff.manifolds.FlatTorus", "tol", lambda: FlatTorus(2, tol=0)),
    ("opdiff.manifolds.FlatTorus", "s", lambda: FlatTorus(2).sample_heat_kernel(np.zeros((1, 2)), -1.0, rng=0)),
    ("opdiff.manifolds.FlatTorus", "n", lambda: FlatTorus(2).random_uniform(2.5, rng=0)),
    ("opdiff.manifolds.Hypersphere", "n", lambda: Hypersphere(2).random_uniform(2.5, rng=0)),
    ("opdiff.manifolds.Hypersphere", "tol", lambda: Hypersphere(2, tol=-1.0)),
    ("opdiff.manifolds.Euclidean", "x", lambda: manifolds.Euclidean(2).check_points(with_nan(X))),
    ("opdiff.manifolds.Euclidean", "s", lambda: manifolds.Euclidean(2).log_heat_kernel_and_gradient(X, X, 0.0)),
    ("opdiff.manifolds.Hypersphere", "s", lambda: SPHERE.log_heat_kernel_and_gradient(XS, XS, -1.0)),
    ("opdiff.manifolds.Manifold", "x", lambda: SPHERE.belongs(np.zeros((2, 4)))),
    ("opdiff.manifolds.sphere_log_heat_kernel", "s", lambda: manifolds.sphere_log_heat_kernel(np.array([0.1]), 0.0, 2)),
    ("opdiff.manifolds.sphere_log_heat_kernel", "theta",
     lambda: manifolds.sphere_log_heat_kernel(np.array([np.nan]), 0.1, 2)),
    ("opdiff.manifolds.sphere_log_heat_kernel", "tol", lambda: manifolds.sphere_log_heat_kernel(np.array([0.1]), 0.1, 2, tol=0)),
    ("opdiff.manifolds.circle_log_heat_kernel", "s", lambda: manifolds.circle_log_heat_kernel(np.array([0.1]), -1.0)),
    ("opdiff.manifolds.sphere_area", "n", lambda: manifolds.sphere_area(0)),
    ("opdiff.manifolds.switch_time", "n", lambda: manifolds.switch_time(1)),
    # metrics
    ("opdiff.metrics.mmd_squared", "x", lambda: metrics.mmd_squared(X[:1], X)),
    ("opdiff.metrics.frechet_distance", "features1", lambda: metrics.frechet_distance(with_nan(X), X)),
    ("opdiff.metrics.frechet_standard_error", "n_bootstrap", lambda: metrics.frechet_standard_error(X, X, 1)),
    ("opdiff.metrics.frechet_standard_error", "features2", lambda: metrics.frechet_standard_error(X, X[:, :1])),
    ("opdiff.metrics.frechet_digits_distance", "images1",
     lambda: metrics.frechet_digits_distance(np.full((4, 1, 8, 8), np.nan), np.zeros((4, 1, 8, 8)))),
    ("opdiff.metrics.vendi_score", "samples", lambda: metrics.vendi_score(with_nan(X))),
    ("opdiff.metrics.pixel_diversity", "samples", lambda: metrics.pixel_diversity(with_nan(X))),
    ("opdiff.metrics.bits_per_dim", "dim", lambda: metrics.bits_per_dim(-1.0, 0)),
    ("opdiff.metrics.dequantize", "n_levels", lambda: metrics.dequantize(np.zeros((2, 2)), 0, rng=0)),
    ("opdiff.metrics.LogitTransform", "alpha", lambda: metrics.LogitTransform(alpha=2.0)),
    ("opdiff.metrics.DigitsClassifier", "images",
     lambda: metrics.DigitsClassifier([np.zeros((64, 4)), np.zeros(4)], 0.9).features(np.full((2, 1, 8, 8), np.nan))),
    # operators
    ("opdiff.operators.Generator", "g", lambda: operators.Generator(OU).carre_du_champ(
        operators.Quadratic(np.eye(2)), "g", X, 0.5)),
    ("opdiff.operators.Generator", "t", lambda: operators.Generator(OU).apply(operators.Quadratic(np.eye(2)), X, -1.0)),
    ("opdiff.operators.Semigroup", "t", lambda: operators.Semigroup(OU).apply(operators.Quadratic(np.eye(2)), X, -1.0)),
    ("opdiff.operators.Semigroup", "n_samples", lambda: operators.Semigroup(OU, n_samples=0)),
    ("opdiff.operators.Expectation", "x", lambda: operators.Semigroup(OU).apply(operators.Quadratic(np.eye(2)),
                                                                               with_nan(X), 0.5)),
    ("opdiff.operators.Polynomial", "exponents", lambda: operators.Polynomial([1.0], [[-1, 0]])),
    ("opdiff.operators.Polynomial", "x", lambda: operators.Polynomial([1.0], [[1, 0]]).value(with_nan(X))),
    ("opdiff.operators.Quadratic", "A", lambda: operators.Quadratic(np.full((2, 2), np.nan))),
    ("opdiff.operators.Exponential", "k", lambda: operators.Exponential([np.nan, 0.0])),
    ("opdiff.operators.PlaneWave", "k", lambda: operators.PlaneWave([np.inf, 0.0])),
    ("opdiff.operators.GaussianBump", "width", lambda: operators.GaussianBump([0.0, 0.0], width=-1.0)),
    ("opdiff.operators.SmoothFunction", "x", lambda: operators.GaussianBump([0.0, 0.0]).value(np.zeros((2, 3)))),
    ("opdiff.operators.finite_difference_derivatives", "x",
     lambda: operators.finite_difference_derivatives(lambda x: x[:, 0], with_nan(X))),
    ("opdiff.operators.KernelMixture", "data", lambda: operators.KernelMixture(VPSDE(), with_nan(X), np.zeros(16))),
    ("opdiff.operators.KernelMixture", "log_weights", lambda: operators.KernelMixture(VPSDE(), X, np.zeros(16))),
    ("opdiff.operators.KernelMixture", "process", lambda: operators.KernelMixture(None, X, np.full(16, -np.log(16)))),
    ("opdiff.operators.normalised_log_weights", "sample_weight", lambda: operators.normalised_log_weights(-np.ones(3), 3)),
    # processes (bad times, points and counts of every process are the parametrised tests above)
    ("opdiff.processes.GaussianPrior", "dim", lambda: VPSDE().prior().sample(5, rng=0)),
    ("opdiff.processes.UniformPrior", "dim", lambda: ManifoldBrownianMotion(SPHERE).prior().sample(5, 4, rng=0)),
    ("opdiff.processes.gaussian_logpdf", "residual",
     lambda: __import__("opdiff.processes", fromlist=["gaussian_logpdf"]).gaussian_logpdf(with_nan(X), Scalar1)),
    ("opdiff.processes.gaussian_logpdf", "chol",
     lambda: __import__("opdiff.processes", fromlist=["gaussian_logpdf"]).gaussian_logpdf(X, np.eye(2))),
    ("opdiff.processes.SpectralAnisotropic", "X",
     lambda: DiffusionKernelSmoother(SpectralAnisotropic.power_law((1, 4, 4), 1.0)).fit(np.ones((10, 17)))),
    ("opdiff.processes.SpectralAnisotropic", "x0",
     lambda: SpectralAnisotropic.power_law((1, 4, 4), 1.0).sample(np.ones((2, 1, 4, 5)), 0.5, rng=0)),
    ("opdiff.processes.StationaryLinearSDE", "dim", lambda: StationaryLinearSDE.cld().prior(dim=3)),
    ("opdiff.processes.StationaryLinearSDE", "Q", lambda: StationaryLinearSDE(np.ones((2, 2)), np.eye(2), np.eye(2))),
    # reductions
    ("opdiff.reductions.pairwise_reduction", "queries",
     lambda: reductions.pairwise_reduction(with_nan(X), X, lambda q, p: (np.zeros((len(q), len(p))),))),
    ("opdiff.reductions.check_backend", "backend", lambda: reductions.check_backend("nope")),
    ("opdiff.reductions.register_backend", "name", lambda: reductions.register_backend("mine", None)),
    ("opdiff.reductions.set_dask_client", "n_partitions", lambda: reductions.set_dask_client(None, n_partitions=0)),
    ("opdiff.reductions.reduce", "queries", lambda: reductions.reduce(reductions.SquaredDistance(), with_nan(X), X)),
    ("opdiff.reductions.merge", "partials", lambda: reductions.merge([])),
    ("opdiff.reductions.Reduction", "queries", lambda: kernel_reduction(X[:, 0], X, _log_kernel)),
    ("opdiff.reductions.SquaredDistance", "precision", lambda: reductions.SquaredDistance(precision=-1.0)),
    ("opdiff.reductions.LogKernel", "log_kernel", lambda: reductions.LogKernel(None)),
    ("opdiff.reductions.DotProductTable", "tables", lambda: reductions.DotProductTable(None)),
    ("opdiff.reductions.CoordinateTable", "tables", lambda: reductions.CoordinateTable(None)),
    # sampling (the solvers' times, starts and denoisers: FUNCTION_CASES above)
    ("opdiff.sampling.ancestral_step", "sigma_next", lambda: sampling.ancestral_step(1.0, -1.0)),
    ("opdiff.sampling.sample_euler_ancestral", "x",
     lambda: sampling.sample_euler_ancestral(lambda x, s: 0 * x, with_nan(X), [1.0, 0.0], rng=0)),
    ("opdiff.sampling.sample_edm_stochastic", "s_churn",
     lambda: sampling.sample_edm_stochastic(lambda x, s: 0 * x, X, [1.0, 0.0], rng=0, s_churn=-1.0)),
    ("opdiff.sampling.sample_dpm_solver_pp_2m_sde", "x",
     lambda: sampling.sample_dpm_solver_pp_2m_sde(lambda x, s: 0 * x, with_nan(X), [1.0, 0.5, 0.0], rng=0)),
    ("opdiff.sampling.sample_dpm_solver_2", "sigmas",
     lambda: sampling.sample_dpm_solver_2(lambda x, s: 0 * x, X, [1.0, 2.0])),
    ("opdiff.sampling.sample_predictor_corrector", "x",
     lambda: sampling.sample_predictor_corrector(lambda x, s: 0 * x, with_nan(X), [1.0, 0.0], rng=0)),
    ("opdiff.sampling.sample_ode_jump", "x", lambda: sampling.sample_ode_jump(lambda x, s: 0 * x, with_nan(X), [1.0, 0.0])),
    ("opdiff.sampling.sample_ddim", "x",
     lambda: sampling.sample_ddim(lambda x, t: -x, np.full((3, 4), np.nan), [1.0, 0.5],
                                  process=SpectralAnisotropic.power_law((1, 2, 2), 1.0))),
    ("opdiff.sampling.sample_manifold_probability_flow", "x", lambda: sampling.sample_manifold_probability_flow(
        lambda x, t: 0 * x, 2.0 * XS, [1.0, 0.5], process=ManifoldBrownianMotion(SPHERE))),
    ("opdiff.sampling.integrate_flow", "x", lambda: sampling.integrate_flow(lambda x, t: -x, with_nan(X), [1.0, 0.5])),
    ("opdiff.sampling.log_likelihood", "x", lambda: sampling.log_likelihood(lambda x, t: -x, with_nan(X), process=VPSDE())),
    ("opdiff.sampling.LogLikelihood", "n_steps", lambda: sampling.log_likelihood(lambda x, t: -x, X, process=VPSDE(),
                                                                                 n_steps=0)),
    ("opdiff.sampling.Trajectory", "attribute", lambda: sampling.chord_deviation(
        sampling.sample_euler(lambda x, s: 0 * x, X, [1.0, 0.5, 0.0]), attribute="nope")),
    ("opdiff.sampling.VEDenoiser", "output", lambda: sampling.VEDenoiser(VPSDE(), lambda x, t: x, output="nope")),
    ("opdiff.sampling.ProcessDynamics", "process", lambda: sampling.ProcessDynamics("vp")),
    ("opdiff.sampling.finite_difference_form", "method",
     lambda: sampling.finite_difference_form("nope", lambda x, s: 0 * x, X, 1.0, 0.5)),
    ("opdiff.sampling.adams_bashforth_coefficients", "past", lambda: sampling.adams_bashforth_coefficients([], 1.0, 0.5)),
    ("opdiff.sampling.adams_bashforth_coefficients", "past",
     lambda: sampling.adams_bashforth_coefficients([1.0, 1.0], 1.0, 0.5)),
    ("opdiff.sampling.adams_bashforth_coefficients", "end",
     lambda: sampling.adams_bashforth_coefficients([1.0, 1.5], 1.0, np.nan)),
    ("opdiff.sampling.euler_convex_combination", "x",
     lambda: sampling.euler_convex_combination(with_nan(X), X, 1.0, 0.5)),
    ("opdiff.sampling.euler_convex_combination", "denoised",
     lambda: sampling.euler_convex_combination(X, X[:3], 1.0, 0.5)),
    ("opdiff.sampling.taylor_step", "x", lambda: sampling.taylor_step(with_nan(X), X, 1.0, 0.5, X, 0.7)),
    ("opdiff.sampling.taylor_step", "difference", lambda: sampling.taylor_step(X, X, 1.0, 0.5, with_nan(X), 0.7)),
    ("opdiff.sampling.taylor_step", "t_star", lambda: sampling.taylor_step(X, X, 1.0, 0.5, X, -0.7)),
    ("opdiff.sampling.FiniteDifferenceStep", "x",
     lambda: sampling.finite_difference_form("euler", lambda x, s: 0 * x, with_nan(X), 1.0, 0.5)),
    ("opdiff.sampling.FiniteDifferenceStep", "denoiser",
     lambda: sampling.finite_difference_form("heun", lambda x, s: np.nan * x, X, 1.0, 0.5)),
    ("opdiff.sampling.nearest_neighbour", "x", lambda: sampling.nearest_neighbour(with_nan(X), X)),
    ("opdiff.sampling.NearestNeighbour", "data", lambda: sampling.nearest_neighbour(X, np.zeros((3, 3)))),
    ("opdiff.sampling.polynomial_grid", "n_steps", lambda: sampling.polynomial_grid(0, 0.1, 1.0)),
    ("opdiff.sampling.quadratic_grid", "n_steps", lambda: sampling.quadratic_grid(0, 0.1, 1.0)),
    ("opdiff.sampling.log_snr_grid", "n_steps", lambda: sampling.log_snr_grid(0, 0.1, 1.0)),
    ("opdiff.sampling.gits_schedule", "n_steps", lambda: sampling.gits_schedule(lambda x, s: 0 * x, X, 0)),
    ("opdiff.sampling.convergence_study", "x",
     lambda: sampling.convergence_study(lambda x, s: 0 * x, with_nan(X), [2, 4], sigma_min=0.1, sigma_max=1.0)),
    ("opdiff.sampling.reference_solution", "x", lambda: sampling.reference_solution(lambda x, s: 0 * x, with_nan(X), 1.0, 0.1)),
    ("opdiff.sampling.discrete_curvature", "attribute", lambda: sampling.discrete_curvature(
        sampling.sample_euler(lambda x, s: 0 * x, X, [1.0, 0.5, 0.0]), attribute="nope")),
    ("opdiff.sampling.distance_to_end", "attribute", lambda: sampling.distance_to_end(
        sampling.sample_euler(lambda x, s: 0 * x, X, [1.0, 0.5, 0.0]), attribute="nope")),
    ("opdiff.sampling.projection_error", "n_components", lambda: sampling.projection_error(
        sampling.sample_euler(lambda x, s: 0 * x, X, [1.0, 0.5, 0.0], record=True), n_components=0)),
    ("opdiff.sampling.log_density_along", "trajectory", lambda: sampling.log_density_along(lambda x: x[:, 0], None)),
    ("opdiff.sampling.mean_shift_increments", "trajectory", lambda: sampling.mean_shift_increments(lambda x: x, None)),
    ("opdiff.sampling.noise_end_cosine", "trajectory", lambda: sampling.noise_end_cosine(None)),
    ("opdiff.sampling.trajectory_statistics", "trajectory", lambda: sampling.trajectory_statistics(None)),
    # spectral
    ("opdiff.spectral.multi_indices", "dim", lambda: spectral.multi_indices(0, 2)),
    ("opdiff.spectral.hermite_functions", "max_degree", lambda: spectral.hermite_functions(np.zeros(3), -1)),
    ("opdiff.spectral.hermite_linearisation", "max_degree", lambda: spectral.hermite_linearisation(-2)),
    ("opdiff.spectral.Hermite", "degree", lambda: Hermite(2, 0)),
    ("opdiff.spectral.Fourier", "max_frequency", lambda: Fourier(2, 0)),
    ("opdiff.spectral.SphericalHarmonics", "degree", lambda: SphericalHarmonics(-1)),
    ("opdiff.spectral.EigenBasis", "process", lambda: Hermite(2, 2).check_process(VPSDE())),
    # neural
    ("opdiff.neural.MLP", "dim", lambda: __import__("opdiff.neural", fromlist=["MLP"]).MLP(0)),
    ("opdiff.neural.UNet", "channels", lambda: __import__("opdiff.neural", fromlist=["UNet"]).UNet(0)),
    ("opdiff.neural.Adam", "lr", lambda: __import__("opdiff.neural", fromlist=["Adam"]).Adam(
        __import__("opdiff.neural", fromlist=["MLP"]).MLP(2, hidden=(4,), rng=0), lr=-1.0)),
    ("opdiff.neural.NetworkAdapter", "apply", lambda: __import__("opdiff.neural", fromlist=["NetworkAdapter"]).NetworkAdapter(
        None, None, None)),
    ("opdiff.neural.ScoreAdapter", "function", lambda: ScoreAdapter("f", VPSDE())),
    ("opdiff.neural.Dense", "n_in", lambda: __import__("opdiff.neural", fromlist=["Dense"]).Dense(0, 2, rng=RNG)),
    ("opdiff.neural.Dense", "rng", lambda: __import__("opdiff.neural", fromlist=["Dense"]).Dense(2, 2, rng=0)),
    ("opdiff.neural.fourier_time_features", "n_features",
     lambda: __import__("opdiff.neural", fromlist=["fourier_time_features"]).fourier_time_features(np.zeros(3), 3)),
    ("opdiff.neural.fourier_time_features", "log_noise",
     lambda: __import__("opdiff.neural", fromlist=["fourier_time_features"]).fourier_time_features(np.full(3, np.nan), 4)),
    ("opdiff.neural.ema_decay_at", "decay",
     lambda: __import__("opdiff.neural", fromlist=["ema_decay_at"]).ema_decay_at(2.0, 1)),
    ("opdiff.neural.ema_decay_at", "step",
     lambda: __import__("opdiff.neural", fromlist=["ema_decay_at"]).ema_decay_at(0.9, -1)),
]

# Public names whose bad input is not yet rejected (each a one-line repro, for the owner of the file): they
# count as listed so that this file stays green, and each line goes once the function names its argument.
UNVALIDATED = {
}

# Public names fed bad input by the parametrised tests earlier in this file.
ELSEWHERE = {
    "opdiff.estimators.DiffusionKernelSmoother": "test_estimator_bad_queries_name_x",
    "opdiff.operators.KernelMeanEmbedding": "test_estimator_bad_queries_name_x",
    "opdiff.neural.NeuralScoreModel": "test_estimator_bad_queries_name_x",
    "opdiff.processes.BrownianMotion": "test_process_times_out_of_range_name_t",
    "opdiff.processes.OrnsteinUhlenbeck": "test_process_times_out_of_range_name_t",
    "opdiff.processes.VESDE": "test_process_times_out_of_range_name_t",
    "opdiff.processes.VPSDE": "test_process_times_out_of_range_name_t",
    "opdiff.processes.FractionalDiffusion": "test_process_times_out_of_range_name_t",
    "opdiff.processes.ManifoldBrownianMotion": "test_process_times_out_of_range_name_t",
    "opdiff.processes.GaussianProcess": "test_process_bad_start_points_name_x0",
    "opdiff.processes.ScalarGaussianProcess": "test_transition_start_time_after_t_names_s",
    "opdiff.processes.MarkovProcess": "test_sde_coefficients_reject_times_out_of_range",
    "opdiff.reductions.gaussian_reduction": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.reductions.kernel_reduction": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.metrics.median_bandwidth": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.metrics.sliced_wasserstein": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.metrics.fisher_divergence": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.metrics.held_out_log_likelihood": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_euler": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_heun": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_dpm_solver_pp_2m": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_euler_maruyama": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_reverse_sde": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_probability_flow": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_manifold_reverse_sde": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.sample_ipndm": "test_unknown_option_strings_name_the_argument",
    "opdiff.sampling.chord_deviation": "test_unknown_option_strings_name_the_argument",
    "opdiff.sampling.get_grid": "test_unknown_option_strings_name_the_argument",
    "opdiff.sampling.edm_sigmas": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.uniform_grid": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.sampling.uniform_time_grid": "test_functions_reject_bad_input_naming_the_argument",
    "opdiff.manifolds.wrap_angle": "test_points_off_the_manifold_name_the_argument_and_the_distance",
}

# Public names that take no array input (constants, registries, exceptions, warnings, abstract bases,
# result containers, argument-free functions), with the reason.
NO_ARRAY_INPUT = {
    "opdiff.backend.DEFAULT_DTYPE": "a dtype constant",
    "opdiff.backend.NotFittedError": "an exception class",
    "opdiff.backend.ParamsMixin": "a mixin; its set_params is tested in tests/backend",
    "opdiff.backend.as_generator": "accepts any seed; a bad one is numpy's own error",
    "opdiff.backend.get_chunk_bytes": "takes no argument",
    "opdiff.backend.get_namespace": "dispatches on array types; never fails on NumPy input",
    "opdiff.backend.is_cupy_array": "a predicate on any object",
    "opdiff.backend.result_dtype": "a dtype rule on any arrays",
    "opdiff.backend.to_numpy": "a conversion of any array",
    "opdiff.datasets.TOYS": "a registry of generator functions",
    "opdiff.datasets.two_spirals": "a make_toy generator (make_toy's case covers the count check)",
    "opdiff.datasets.eight_gaussians": "a make_toy generator",
    "opdiff.datasets.pinwheel": "a make_toy generator",
    "opdiff.datasets.checkerboard": "a make_toy generator",
    "opdiff.datasets.moons": "a make_toy generator",
    "opdiff.datasets.rings": "a make_toy generator",
    "opdiff.manifolds.DEFAULT_ATOL": "a tolerance constant",
    "opdiff.neural.SiLU": "a parameter-free activation layer",
    "opdiff.neural.Tanh": "a parameter-free activation layer",
    "opdiff.neural.TrainingLoop": "internal state of NeuralScoreModel.fit",
    "opdiff.processes.GeneratorCoefficients": "a result container",
    "opdiff.reductions.KernelForm": "an abstract base of the kernel forms",
    "opdiff.reductions.available_backends": "takes no argument",
    "opdiff.reductions.clear_dask_cache": "takes no argument",
    "opdiff.reductions.get_dask_client": "takes no argument",
    "opdiff.sampling.DEFAULT_SOLVERS": "a registry of solvers",
    "opdiff.sampling.EDM_CHURN": "a table of published constants",
    "opdiff.sampling.GRIDS": "a registry of grids",
    "opdiff.sampling.ODE_SOLVERS": "a registry of solvers",
    "opdiff.sampling.SDE_SOLVERS": "a registry of solvers",
    "opdiff.sampling.SOLVERS": "a registry of solvers",
    "opdiff.sampling.RECORDABLE": "a tuple of attribute names",
    "opdiff.sampling.StiffGridWarning": "a warning class",
}


def _public_names():
    """Qualified public names: each subpackage's __all__ and exposed opdiff classes and functions, and the
    public names of the submodules its __all__ lists (estimators.losses, .control_variates, .elbo)."""
    import importlib
    import inspect
    import pkgutil
    import types

    import opdiff

    names = set()

    def collect(module, prefix, top):
        listed = set(getattr(module, "__all__", []))
        for name, value in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if getattr(value, "__module__", "").startswith("opdiff") and (top or value.__module__ == module.__name__):
                listed.add(name)
        for name in listed:
            value = getattr(module, name, None)
            if isinstance(value, types.ModuleType):
                if top and value.__name__.startswith("opdiff"):
                    collect(value, f"{prefix}.{name}", False)
            else:
                names.add(f"{prefix}.{name}")

    for info in pkgutil.iter_modules(opdiff.__path__):
        if not info.name.startswith("_"):
            collect(importlib.import_module(f"opdiff.{info.name}"), f"opdiff.{info.name}", True)
    return names


def test_every_public_name_is_covered():
    covered = {name for name, _, _ in PUBLIC_CASES} | set(ELSEWHERE) | set(NO_ARRAY_INPUT) | set(UNVALIDATED)
    missing = sorted(_public_names() - covered)
    assert not missing, (
        f"{len(missing)} public names have no bad-input case in tests/test_api_contracts.py: {missing}. "
        "Add a (name, argument, call) row to PUBLIC_CASES, or a line to NO_ARRAY_INPUT saying why it takes no array.")
    for name, test in ELSEWHERE.items():
        assert callable(globals().get(test)), f"ELSEWHERE[{name!r}] names {test!r}, which is not a test of this file"


@pytest.mark.parametrize("name, argument, call", PUBLIC_CASES, ids=[f"{n}:{a}" for n, a, _ in PUBLIC_CASES])
def test_public_api_rejects_bad_input_naming_the_argument(name, argument, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, TypeError, ImportError, FileNotFoundError),
                           match=arg(argument) if argument else None):
            call()


# ---------------------------------------------------------------------------------------------- reprs, clones, dtypes
@pytest.mark.parametrize("name", sorted(GAUSSIAN) + sorted(MANIFOLD))
def test_processes_and_priors_have_short_reprs(name):
    process = process_pair(name)[0]
    for obj in (process, process.prior()):
        text = repr(obj)
        assert "object at" not in text and len(text) < 200, text
    assert type(process).__name__ in repr(process)


def test_estimators_and_operators_have_useful_reprs_and_clone():
    from sklearn.base import clone

    cv = control_variates.OperatorControlVariates(H22, split=True)
    assert repr(cv).startswith("OperatorControlVariates(") and "split=True" in repr(cv)
    assert clone(cv).get_params()["split"] is True
    oism = OISM(OU, H22, ridge=1e-6)
    assert repr(oism).startswith("OISM(") and "OrnsteinUhlenbeck(theta=1.0, T=5.0)" in repr(oism)
    assert repr(Scalar(2.0)) == "Scalar(2.0)" and repr(linalg.Diagonal([1.0, 2.0])) == "Diagonal([1.0, 2.0])"
    assert repr(linalg.Kron(np.eye(2))) == "Kron(K=2)"


def test_polynomial_keeps_float32():
    """Integer exponents no longer promote float32 points; the values agree with float64 to float32 rounding."""
    poly = operators.Polynomial([1.0, -2.0, 0.5], [[2, 0], [1, 1], [0, 3]])
    x32 = X[:4].astype(np.float32)
    for method in ("value", "gradient", "hessian"):
        out = getattr(poly, method)(x32)
        assert out.dtype == np.float32, method
        np.testing.assert_allclose(out, getattr(poly, method)(X[:4]), rtol=1e-5, atol=1e-5)
