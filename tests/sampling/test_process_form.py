"""Any process through its VE form, and the probability-flow ODE in a process's own time.

Independent routes: the VE form of every scalar process must reproduce the closed-form VE mixture
denoiser of conftest (no process involved); the library's PF-ODE in process time and the VE-form
Heun solver must land on the same point; sampled laws are compared to exact forward marginals by
MMD at the level of two independent samples.
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import opdiff.sampling as S
from opdiff.datasets import GaussianMixture
from opdiff.metrics import mmd_squared
from opdiff.processes import VESDE, VPSDE, BrownianMotion, OrnsteinUhlenbeck
from opdiff.processes.linear import StationaryLinearSDE

N_SAMPLES = 600
BANDWIDTH = 1.0


@pytest.fixture(scope="module")
def library_mixture():
    return GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]], np.array([0.5, 0.4, 0.6]) ** 2)


@pytest.fixture(scope="module")
def null_level(library_mixture):
    """Upper level of the unbiased MMD^2 between two independent samples of size N_SAMPLES: mean + 6 sd
    over 40 replicate pairs. The null law is right-skewed (a weighted chi-square): over 300 replicates
    its sd was 1.6e-3 and its 99.9th percentile 8.3e-3 ~ mean + 5.5 sd, so 6 sd is a ~1e-3 false alarm."""
    rng = np.random.default_rng(123)
    values = [mmd_squared(library_mixture.sample(N_SAMPLES, rng), library_mixture.sample(N_SAMPLES, rng),
                          bandwidth=BANDWIDTH) for _ in range(40)]
    return float(np.mean(values) + 6.0 * np.std(values))


PROCESSES = [VPSDE(), VPSDE(schedule="cosine"), OrnsteinUhlenbeck(), BrownianMotion(sigma=2.0), VESDE(),
             VESDE.edm()]


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: type(p).__name__ + getattr(p, "schedule", ""))
def test_ve_form_matches_the_closed_form_ve_mixture(process, mixture, library_mixture):
    rng = np.random.default_rng(0)
    y = 3.0 * rng.standard_normal((20, 2))
    for t in (0.05 * process.t_max, 0.5 * process.t_max):
        sigma = float(process.noise_level(t))
        expected = mixture.denoise(y, sigma)
        from_score = S.VEDenoiser(process, lambda x, s: library_mixture.score(x, s, process))
        from_denoiser = S.VEDenoiser(process, lambda x, s: library_mixture.denoise(x, s, process), output="denoiser")
        # the time is recovered by time_at_noise_level: round-off ~1e-15 relative, amplified by the
        # denoiser's Lipschitz constant (< 1e3 at these noise levels) -> 1e-10
        np.testing.assert_allclose(from_score(y, sigma), expected, atol=1e-10)
        np.testing.assert_allclose(from_denoiser(y, sigma), expected, atol=1e-10)
        np.testing.assert_allclose(from_score.score(y, sigma), (expected - y) / sigma**2, atol=1e-8)


def test_pf_ode_in_process_time_and_ve_form_agree(library_mixture, mixture):
    """VP: ``sample_probability_flow`` (dx = [f - g^2 s / 2] dt) and ``sample_heun`` in the VE form solve
    the same flow; both match a DOP853 solve of the VE ODE to their O(h^2) error (400 steps uniform in t,
    whose first steps span large sigma ranges: measured < 1e-4; the bound 3e-4 leaves a factor 3)."""
    process = VPSDE()
    rng = np.random.default_rng(1)
    times = S.uniform_grid(400, 1e-3, 1.0)
    x_T = process.sample(library_mixture.sample(8, rng), 1.0, rng=rng)
    score = lambda x, t: library_mixture.score(x, t, process)  # noqa: E731
    ode = S.sample_probability_flow(score, x_T, times, process=process, method="heun", record=True)
    ve = S.VEDenoiser(process, score)
    trajectory = ve.sample(S.sample_heun, x_T, times)
    sigmas = ve.sigmas(times)
    y0 = ve.to_ve(x_T, 1.0)
    sol = solve_ivp(lambda u, y: (y.reshape(8, 2) - mixture(y.reshape(8, 2), np.exp(u))).ravel(),
                    (np.log(sigmas[0]), np.log(sigmas[-1])), y0.ravel(), method="DOP853", rtol=1e-12, atol=1e-12)
    reference = sol.y[:, -1].reshape(8, 2)
    print("VE-form Heun error", np.abs(trajectory.x - reference).max(),
          "process-time Heun error", np.abs(ve.to_ve(ode.x, times[-1]) - reference).max())
    np.testing.assert_allclose(trajectory.x, reference, atol=3e-4)
    np.testing.assert_allclose(ve.to_ve(ode.x, times[-1]), reference, atol=3e-4)
    assert ode.nfe == 800 and trajectory.nfe == 800
    np.testing.assert_array_equal(trajectory.times, times)
    assert ode.denoised.shape == (400, 8, 2)
    # Tweedie in process time equals the exact posterior mean
    np.testing.assert_allclose(ode.denoised[10], library_mixture.denoise(ode.samples[10], times[10], process),
                               atol=1e-10)


@pytest.mark.parametrize("grid", ["uniform", "edm"])
def test_pf_ode_samples_match_the_mixture_in_mmd(library_mixture, null_level, grid):
    process = VPSDE()
    rng = np.random.default_rng(2)
    t_min = 1e-3
    times = S.get_grid(grid, 60, t_min, 1.0, **({"rho": 3.0} if grid == "edm" else {}))
    start = process.sample(library_mixture.sample(N_SAMPLES, rng), 1.0, rng=rng)
    result = S.sample_probability_flow(lambda x, t: library_mixture.score(x, t, process), start, times,
                                       process=process, method="heun")
    target = process.sample(library_mixture.sample(N_SAMPLES, rng), t_min, rng=rng)
    value = mmd_squared(result.x, target, bandwidth=BANDWIDTH)
    print(f"PF-ODE ({grid}) MMD^2 = {value:.2e}, null level = {null_level:.2e}")
    assert value < null_level


def test_cld_probability_flow_and_reverse_sde(library_mixture, null_level):
    """CLD (state = (x, v), Kron drift and diffusion): both reverse dynamics with the exact state score
    return the data block of the forward marginal at t_min (MMD at the two-sample level)."""
    process = StationaryLinearSDE.cld()
    rng = np.random.default_rng(3)
    t_min = 1e-3
    times = S.polynomial_grid(100, t_min, 1.0, rho=2.0)
    score = lambda x, t: library_mixture.score(x, t, process)  # noqa: E731
    start = process.sample(library_mixture.sample(N_SAMPLES, rng), 1.0, rng=rng)
    target = process.project(process.sample(library_mixture.sample(N_SAMPLES, rng), t_min, rng=rng))
    ode = S.sample_probability_flow(score, start, times, process=process, method="heun", record=True)
    sde = S.sample_reverse_sde(score, start, times, process=process, rng=4)
    assert ode.samples.shape == (101, N_SAMPLES, 4) and ode.denoised.shape == (100, N_SAMPLES, 2)
    # Tweedie through Phi^{-1}(z + Sigma score) equals the mixture's exact posterior mean of the data
    np.testing.assert_allclose(ode.denoised[50], library_mixture.denoise(ode.samples[50], times[50], process),
                               atol=1e-8)
    for name, result in (("ode", ode), ("sde", sde)):
        value = mmd_squared(process.project(result.x), target, bandwidth=BANDWIDTH)
        print(f"CLD {name}: MMD^2 = {value:.2e}, null level = {null_level:.2e}")
        assert value < null_level, name


def test_bad_inputs(library_mixture):
    process = VPSDE()
    score = lambda x, t: library_mixture.score(x, t, process)  # noqa: E731
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="times"):
        S.sample_probability_flow(score, x, [0.1, 0.5], process=process)
    with pytest.raises(ValueError, match="times"):
        S.sample_probability_flow(score, x, [2.0, 0.5], process=process)
    with pytest.raises(ValueError, match="method"):
        S.sample_probability_flow(score, x, [0.5, 0.1], process=process, method="rk4")
    with pytest.raises(TypeError, match="process"):
        S.sample_probability_flow(score, x, [0.5, 0.1], process=object())
    with pytest.raises(TypeError, match="process"):
        S.VEDenoiser(StationaryLinearSDE.cld(), score)
    with pytest.raises(TypeError, match="model"):
        S.VEDenoiser(process, 3.0)
    with pytest.raises(ValueError, match="sigma"):
        S.VEDenoiser(process, score)(x, 1e6)
    with pytest.raises(ValueError, match="output"):
        S.VEDenoiser(process, score, output="eps")


def test_ve_denoiser_sample_log_density_and_trajectory_fields(library_mixture, mixture):
    process = VPSDE()
    ve = S.VEDenoiser(process, lambda x, t: library_mixture.score(x, t, process))
    rng = np.random.default_rng(5)
    x_T = process.sample(library_mixture.sample(5, rng), 1.0, rng=rng)
    times = S.uniform_grid(6, 1e-3, 1.0)
    run = ve.sample(S.sample_euler, x_T, times, append_zero=True, callback=lambda info: None, progress=True,
                    record=True)
    assert run.times.shape == (8,) and run.times[-1] == 0 and run.sigmas[-1] == 0 and run.nfe == 7
    np.testing.assert_allclose(run.sigmas[:-1], process.noise_level(times))
    np.testing.assert_allclose(run.samples[0], x_T / process.scale(1.0))
    np.testing.assert_allclose(run.noise, (run.samples[:-1] - run.denoised) / run.sigmas[:-1, None, None])
    jump = ve.sample(S.sample_ode_jump, x_T, times, jump_step=3)
    np.testing.assert_allclose(jump.times[:4], times[:4], rtol=1e-10)
    # log-density in the VE form = the closed-form VE mixture (the Jacobian d log a is included)
    with pytest.raises(TypeError, match="log_density"):
        ve.log_density(x_T, 1.0)
    class Model:  # the mixture as an estimator: denoise / log_density in process coordinates
        def denoise(self, x, t):
            return library_mixture.denoise(x, t, process)

        def log_density(self, x, t):
            return library_mixture.log_density(x, t, process)

    estimator = S.VEDenoiser(process, Model())
    y = rng.standard_normal((7, 2))
    np.testing.assert_allclose(estimator.log_density(y, 0.7), mixture.log_density(y, 0.7), atol=1e-10)
    np.testing.assert_allclose(estimator(y, 0.7), mixture.denoise(y, 0.7), atol=1e-10)
    # float32 is kept through the whole pipeline
    out32 = S.sample_heun(estimator, (3 * y).astype(np.float32), S.edm_sigmas(4, 0.05, 3.0))
    assert out32.x.dtype == np.float32


def test_trajectory_noise_needs_positive_levels(mixture):
    run = S.sample_euler(mixture, np.ones((2, 2)), [1.0, 0.0], record=True)
    np.testing.assert_allclose(run.noise[0], (np.ones((2, 2)) - mixture(np.ones((2, 2)), 1.0)))
    reverse = S.sample_probability_flow(lambda x, t: -x, np.ones((2, 2)), [0.5, 0.1], process=VPSDE(), record=True)
    with pytest.raises(ValueError, match="noise"):
        reverse.noise


def test_log_snr_grid_in_process_time(library_mixture):
    """A VP time grid uniform in log-SNR: ve.times inverts the noise level exactly (closed-form inverse
    of the linear schedule), and the PF-ODE runs on it."""
    process = VPSDE()
    ve = S.VEDenoiser(process, lambda x, t: library_mixture.score(x, t, process))
    sigmas = S.log_snr_grid(10, float(process.noise_level(1e-3)), float(process.noise_level(1.0)))
    times = ve.times(sigmas)
    np.testing.assert_allclose(process.noise_level(times), sigmas, rtol=1e-10)
    assert np.isclose(times[0], 1.0) and np.isclose(times[-1], 1e-3)
    out = S.sample_probability_flow(lambda x, t: library_mixture.score(x, t, process), np.zeros((3, 2)),
                                    np.clip(times, 1e-3, 1.0), process=process, method="euler")
    assert out.nfe == 10 and np.all(np.isfinite(out.x))


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2)])
def test_process_time_pf_ode_orders(library_mixture, mixture, method, order):
    """VP in its own time: error at t_min against the VE-form DOP853 solve (mapped back by a(t)) decays at
    the method's order. CLD (no VE form): successive differences |x_N - x_2N| decay at the same order."""
    process = VPSDE()
    rng = np.random.default_rng(6)
    x_T = process.sample(library_mixture.sample(6, rng), 1.0, rng=rng)
    t_min = 0.05
    ve = S.VEDenoiser(process, lambda x, t: library_mixture.score(x, t, process))
    reference = S.reference_solution(mixture, ve.to_ve(x_T, 1.0), float(ve.sigmas(1.0)), float(ve.sigmas(t_min)))
    steps = [40, 80, 160]
    errors = []
    for n in steps:
        out = S.sample_probability_flow(ve.model, x_T, S.uniform_grid(n, t_min, 1.0), process=process, method=method)
        errors.append(np.abs(ve.to_ve(out.x, t_min) - reference).max())
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    cld = StationaryLinearSDE.cld()
    z_T = cld.sample(library_mixture.sample(6, rng), 1.0, rng=rng)
    score = lambda x, t: library_mixture.score(x, t, cld)  # noqa: E731
    ends = [S.sample_probability_flow(score, z_T, S.uniform_grid(n, t_min, 1.0), process=cld, method=method).x
            for n in (40, 80, 160)]
    cld_slope = np.log2(np.abs(ends[1] - ends[0]).max() / np.abs(ends[2] - ends[1]).max())
    print(f"{method}: VP slope {slope:.2f}, CLD slope {cld_slope:.2f}")
    assert abs(slope - order) < 0.2 and abs(cld_slope - order) < 0.2  # pre-asymptotic bias O(1/N)
