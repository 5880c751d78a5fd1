"""VE-form ODE solvers with the exact score of a Gaussian mixture: convergence order, NFE, dtype, inputs.

Reference: ``scipy.integrate.solve_ivp`` (DOP853, rtol = atol = 1e-13) on ``dx/du = x - D(x, e^u)``,
``u = log sigma``: an independent integrator in an independent variable, whose own error (< 1e-11)
is far below the smallest solver error measured here (> 1e-8).
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import opdiff.sampling as S

SIGMA_MAX, SIGMA_MIN = 10.0, 0.05
STEPS = [64, 128, 256, 512]

# (label, solver, options, order)
CASES = [
    ("euler", S.sample_euler, {}, 1),
    ("heun", S.sample_heun, {}, 2),
    ("dpm_solver_2", S.sample_dpm_solver_2, {}, 2),
    ("dpm_solver_2(r=1/3)", S.sample_dpm_solver_2, {"r": 1 / 3}, 2),
    ("dpm_solver_pp_2m", S.sample_dpm_solver_pp_2m, {}, 2),
] + [(f"ipndm_v{k} (RK warm-up)", S.sample_ipndm, {"max_order": k, "variable_step": True,
                                                   "warmup": "runge_kutta"}, k) for k in (1, 2, 3, 4)]


@pytest.fixture(scope="module")
def problem(mixture):
    x0 = SIGMA_MAX * np.random.default_rng(0).standard_normal((16, 2))

    def rhs(u, y):
        x = y.reshape(x0.shape)
        return (x - mixture(x, np.exp(u))).ravel()

    sol = solve_ivp(rhs, (np.log(SIGMA_MAX), np.log(SIGMA_MIN)), x0.ravel(), method="DOP853", rtol=1e-13, atol=1e-13)
    return mixture, x0, sol.y[:, -1].reshape(x0.shape)


def _slope(solver, options, problem):
    mixture, x0, reference = problem
    errors = []
    for n in STEPS:
        sigmas = S.polynomial_grid(n, SIGMA_MIN, SIGMA_MAX, rho=7.0)
        errors.append(np.abs(solver(mixture, x0, sigmas, **options).x - reference).max())
    slope = -np.polyfit(np.log(STEPS[1:]), np.log(errors[1:]), 1)[0]
    return slope, errors


@pytest.mark.parametrize("label,solver,options,order", CASES, ids=[c[0] for c in CASES])
def test_convergence_order(label, solver, options, order, problem):
    slope, errors = _slope(solver, options, problem)
    print(f"{label}: order {order}, measured slope {slope:.3f}, errors {['%.2e' % e for e in errors]}")
    # Asymptotic error C N^-p (1 + O(1/N)): at N = 128..512 the pre-asymptotic bias of the slope is
    # below 0.15 for every method (it shrinks as 1/N; measured 0.01 - 0.12).
    assert abs(slope - order) < 0.15, (label, slope, errors)


def test_published_ipndm_is_second_order(problem):
    """iPNDM with the fixed coefficients and lower-order warm start (Zhang & Chen): its first
    (Euler) step has local error O(h^2), so globally it is second order for every max_order >= 2,
    and it is at least as accurate as AB2 at equal NFE."""
    slopes = {}
    for k in (2, 3, 4):
        slopes[k], errors = _slope(S.sample_ipndm, {"max_order": k}, problem)
        print(f"ipndm (published) max_order={k}: slope {slopes[k]:.3f}, errors {['%.2e' % e for e in errors]}")
        assert abs(slopes[k] - 2.0) < 0.15


def test_fixed_and_variable_coefficients_agree_on_a_uniform_grid(mixture):
    x0 = 3.0 * np.random.default_rng(1).standard_normal((5, 2))
    sigmas = S.uniform_grid(12, 0.1, 3.0)  # equal steps: the fixed Adams-Bashforth weights are exact
    for k in (1, 2, 3, 4):
        fixed = S.sample_ipndm(mixture, x0, sigmas, max_order=k).x
        variable = S.sample_ipndm(mixture, x0, sigmas, max_order=k, variable_step=True).x
        np.testing.assert_allclose(variable, fixed, rtol=1e-12, atol=1e-12)


def test_adams_bashforth_coefficients_integrate_polynomials_exactly():
    past = np.array([1.0, 1.3, 1.9, 2.2])
    start, end = 1.0, 0.6
    for degree in range(4):  # interpolation through 4 points is exact up to degree 3
        c = S.adams_bashforth_coefficients(past, start, end)
        exact = (end ** (degree + 1) - start ** (degree + 1)) / (degree + 1)
        assert np.isclose((end - start) * np.dot(c, past**degree), exact, rtol=1e-13)


class CountingDenoiser:
    def __init__(self, denoiser):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, x, sigma):
        self.calls += 1
        return self.denoiser(x, sigma)


@pytest.mark.parametrize("zero", [False, True])
def test_nfe_counts_are_exact(mixture, zero):
    n = 7
    sigmas = S.polynomial_grid(n, 0.05, 10.0, append_zero=zero)
    x0 = 10.0 * np.random.default_rng(2).standard_normal((4, 2))
    expected = {  # hand-counted evaluations per method
        "euler": (S.sample_euler, {}, n),
        "heun": (S.sample_heun, {}, 2 * n - zero),
        "dpm_solver_2": (S.sample_dpm_solver_2, {}, 2 * n - zero),
        "dpm_solver_pp_2m": (S.sample_dpm_solver_pp_2m, {}, n),
        "ipndm": (S.sample_ipndm, {}, n),
        "ipndm_rk4": (S.sample_ipndm, {"warmup": "runge_kutta"}, n + 3 * 3),
        "ipndm_rk3": (S.sample_ipndm, {"warmup": "runge_kutta", "max_order": 3}, n + 2 * 2),
        "ode_jump": (S.sample_ode_jump, {"jump_step": 3, "solver": S.sample_heun}, 2 * 3 + 1),
        "euler_maruyama": (S.sample_euler_maruyama, {"rng": 0}, n),
        "predictor_corrector": (S.sample_predictor_corrector, {"rng": 0, "n_corrector": 2}, 3 * n),
    }
    for name, (solver, options, count) in expected.items():
        counter = CountingDenoiser(mixture)
        trajectory = solver(counter, x0, sigmas, **options)
        assert counter.calls == count == trajectory.nfe, (name, counter.calls, trajectory.nfe, count)


@pytest.mark.parametrize("name", sorted(S.ODE_SOLVERS))
def test_shapes_dtype_callback_and_progress(mixture, name):
    solver = S.ODE_SOLVERS[name]
    x0 = (5.0 * np.random.default_rng(3).standard_normal((6, 2))).astype(np.float32)
    sigmas = S.edm_sigmas(5, 0.05, 5.0)
    seen = []
    trajectory = solver(mixture, x0, sigmas, callback=lambda info: seen.append(info["i"]), progress=True,
                        record=True)
    assert trajectory.samples.shape == (6, 6, 2) and trajectory.denoised.shape == (5, 6, 2)
    assert trajectory.samples.dtype == np.float32 and trajectory.x.dtype == np.float32
    assert seen == list(range(5)) and trajectory.n_steps == 5
    np.testing.assert_array_equal(trajectory.samples[0], x0)
    reference = solver(mixture, x0.astype(np.float64), sigmas).x
    np.testing.assert_allclose(trajectory.x, reference, rtol=1e-4, atol=1e-4)  # float32 round-off


def test_image_shaped_points(mixture):
    flat = lambda x, s: mixture(x.reshape(x.shape[0], 2), s).reshape(x.shape)  # noqa: E731
    x0 = np.random.default_rng(4).standard_normal((3, 1, 1, 2)) * 4.0
    sigmas = S.edm_sigmas(4, 0.05, 4.0)
    image = S.sample_heun(flat, x0, sigmas)
    plain = S.sample_heun(mixture, x0.reshape(3, 2), sigmas)
    np.testing.assert_allclose(image.x.reshape(3, 2), plain.x, rtol=1e-13)


def test_bad_inputs(mixture):
    x0 = np.zeros((3, 2))
    with pytest.raises(ValueError, match="sigmas"):
        S.sample_euler(mixture, x0, [1.0, 2.0])
    with pytest.raises(ValueError, match="sigmas"):
        S.sample_euler(mixture, x0, [1.0])
    with pytest.raises(ValueError, match="sigmas"):
        S.sample_heun(mixture, x0, [1.0, -0.5])
    with pytest.raises(ValueError, match="x"):
        S.sample_euler(mixture, np.array([0.0, np.nan])[None], [1.0, 0.5])
    with pytest.raises(ValueError, match="x"):
        S.sample_euler(mixture, np.zeros(3), [1.0, 0.5])
    with pytest.raises(TypeError, match="denoiser"):
        S.sample_euler("not callable", x0, [1.0, 0.5])
    with pytest.raises(ValueError, match="denoiser: expected an output of shape"):
        S.sample_euler(lambda x, s: x[:, :1], x0, [1.0, 0.5])
    with pytest.raises(ValueError, match="non-finite"):
        S.sample_heun(lambda x, s: x * np.nan, x0, [1.0, 0.5])
    with pytest.raises(ValueError, match="max_order"):
        S.sample_ipndm(mixture, x0, [1.0, 0.5], max_order=5)
    with pytest.raises(ValueError, match="warmup"):
        S.sample_ipndm(mixture, x0, [1.0, 0.5], warmup="rk")
    with pytest.raises(ValueError, match="r"):
        S.sample_dpm_solver_2(mixture, x0, [1.0, 0.5], r=1.5)
    with pytest.raises(TypeError, match="callback"):
        S.sample_euler(mixture, x0, [1.0, 0.5], callback=3)
