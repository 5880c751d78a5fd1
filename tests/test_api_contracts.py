"""The library-wide input contract (DESIGN.md, "Conventions"), table-driven over the public API.

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
