"""Second-order steps = finite differences of the denoising trajectory; Euler = convex combination.

The solvers compute their steps from slopes (``x + h (d + d')/2`` etc.); the finite-difference
forms use ``x + h eps - h^2/(2 t*) D_n`` with differences of denoiser outputs. The two routes agree
to round-off: the tolerance 1e-12 bounds a few ulps of |x| ~ 10 times the number of operations.
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import opdiff.sampling as S


@pytest.fixture
def start():
    return 4.0 * np.random.default_rng(0).standard_normal((32, 2))


@pytest.mark.parametrize("sigma,sigma_next", [(4.0, 2.5), (1.0, 0.3), (0.2, 0.19)])
def test_heun_step_equals_forward_difference(mixture, start, sigma, sigma_next):
    solver = S.sample_heun(mixture, start, [sigma, sigma_next]).x
    fd = S.finite_difference_form("heun", mixture, start, sigma, sigma_next)
    np.testing.assert_allclose(fd.x_next, solver, rtol=0, atol=1e-12)
    assert fd.t_star == sigma_next


@pytest.mark.parametrize("r", [0.5, 0.25, 0.8, 1.0])
def test_dpm_solver_2_step_equals_intermediate_difference(mixture, start, r):
    sigma, sigma_next = 3.0, 1.2
    solver = S.sample_dpm_solver_2(mixture, start, [sigma, sigma_next], r=r).x
    fd = S.finite_difference_form("dpm_solver_2", mixture, start, sigma, sigma_next, r=r)
    np.testing.assert_allclose(fd.x_next, solver, rtol=0, atol=1e-12)
    assert np.isclose(fd.t_star, sigma ** (1 - r) * sigma_next ** r)


def test_dpm_solver_2_with_r_one_is_heun(mixture, start):
    np.testing.assert_allclose(S.sample_dpm_solver_2(mixture, start, [3.0, 1.0], r=1.0).x,
                               S.sample_heun(mixture, start, [3.0, 1.0]).x, rtol=0, atol=1e-12)


def test_dpm_solver_pp_2m_step_equals_backward_difference(mixture, start):
    sigmas = [5.0, 2.0, 0.7]
    trajectory = S.sample_dpm_solver_pp_2m(mixture, start, sigmas, record=True)
    fd = S.finite_difference_form("dpm_solver_pp_2m", mixture, trajectory.samples[1], sigmas[1], sigmas[2],
                                  denoised_prev=trajectory.denoised[0], sigma_prev=sigmas[0])
    np.testing.assert_allclose(fd.x_next, trajectory.x, rtol=0, atol=1e-12)


def test_euler_step_is_the_convex_combination(mixture, start):
    for sigma, sigma_next in [(4.0, 3.0), (1.0, 0.1), (0.5, 0.0)]:
        trajectory = S.sample_euler(mixture, start, [sigma, sigma_next])
        denoised = mixture(start, sigma)
        combination = S.euler_convex_combination(start, denoised, sigma, sigma_next)
        np.testing.assert_allclose(trajectory.x, combination, rtol=0, atol=1e-12)
        # convex: every output lies on the segment [x, D(x)] at fraction 1 - sigma_next / sigma
        lam = 1 - sigma_next / sigma
        np.testing.assert_allclose(trajectory.x - start, lam * (denoised - start), atol=1e-12)
    fd = S.finite_difference_form("euler", mixture, start, 2.0, 1.0)
    np.testing.assert_allclose(fd.x_next, S.sample_euler(mixture, start, [2.0, 1.0]).x, atol=1e-12)
    assert np.all(fd.difference == 0)


def test_curvature_is_driven_by_the_denoiser_velocity(mixture):
    """x'' = -(1/t) r' along the exact ODE (notes B.3): both sides by central differences of a DOP853
    solution. Central differences have O(dt^2) error: dt = 1e-3 at t ~ 1 bounds it to ~1e-5 relative."""
    x0 = np.array([[1.5, -0.7], [0.3, 2.0]])

    def rhs(t, y):
        x = y.reshape(x0.shape)
        return ((x - mixture(x, t)) / t).ravel()

    t0, dt = 1.0, 1e-3
    grid = np.array([t0 + dt, t0, t0 - dt])
    sol = solve_ivp(rhs, (3.0, t0 - 2 * dt), np.zeros(4) + x0.ravel() * 3, method="DOP853", rtol=1e-13,
                    atol=1e-13, dense_output=True)
    points = [sol.sol(t).reshape(x0.shape) for t in grid]
    second = (points[0] - 2 * points[1] + points[2]) / dt**2
    r = [mixture(p, t) for p, t in zip(points, grid)]
    velocity = (r[0] - r[2]) / (2 * dt)
    np.testing.assert_allclose(second, -velocity / t0, rtol=1e-4, atol=1e-6)


def test_bad_inputs(mixture, start):
    with pytest.raises(ValueError, match="method"):
        S.finite_difference_form("rk4", mixture, start, 1.0, 0.5)
    with pytest.raises(ValueError, match="sigma_next"):
        S.finite_difference_form("heun", mixture, start, 1.0, 2.0)
    with pytest.raises(ValueError, match="sigma_next"):
        S.finite_difference_form("heun", mixture, start, 1.0, 0.0)
    with pytest.raises(ValueError, match="denoised_prev"):
        S.finite_difference_form("dpm_solver_pp_2m", mixture, start, 1.0, 0.5)
