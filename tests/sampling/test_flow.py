"""integrate_flow: explicit Runge-Kutta for dx/dt = v(x, t) with the divergence integral and stopped paths."""
import numpy as np
import pytest
from scipy.linalg import expm

import opdiff.sampling as S

A = np.array([[-0.3, 1.2], [-0.8, 0.1]])  # a spiral: exp(A t) in closed form by scipy's expm


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_linear_flow_matches_the_matrix_exponential_at_the_method_order(method, order):
    x0 = np.random.default_rng(0).standard_normal((5, 2))
    exact = x0 @ expm(A * -1.5).T  # backwards from t = 2 to t = 0.5
    errors = []
    for n in (20, 40):
        run = S.integrate_flow(lambda x, t: x @ A.T, x0, np.linspace(2.0, 0.5, n + 1), method=method,
                               divergence=lambda x, t: np.full(x.shape[0], np.trace(A)))
        errors.append(np.abs(run.x - exact).max())
        assert run.nfe == n * {"euler": 1, "heun": 2, "rk4": 4}[method]
        # the divergence is constant: every method integrates it exactly, trace(A) (t_end - t_start)
        np.testing.assert_allclose(run.extras["divergence_integral"], np.trace(A) * -1.5, rtol=1e-12)
    measured = np.log2(errors[0] / errors[1])
    assert abs(measured - order) < 0.3, (method, measured)


def test_log_time_steps_integrate_a_scale_free_flow():
    """dx/dt = -x / t has x(t) = x0 t0 / t; in u = log t it is dx/du = -x, so RK4 on a geometric grid has
    the error of RK4 on exp(-u): a relative (h^4 / 120) per unit u, (log 1000) h^4 / 120 = 1.3e-4 over
    32 steps of h = 0.216 (measured 1.5e-4; bound 3e-4). Steps uniform in t would need far more points."""
    x0 = np.ones((3, 2))
    times = np.geomspace(1e-3, 1.0, 33)
    run = S.integrate_flow(lambda x, t: -x / t, x0, times, log_time=True, record=True)
    np.testing.assert_allclose(run.x, x0 * 1e-3, rtol=3e-4)
    assert run.samples.shape == (33, 3, 2) and run.method == "flow_rk4"
    np.testing.assert_allclose(run.samples[16], x0 * 1e-3 / times[16], rtol=3e-4)


def test_bounded_mode_stops_diverging_paths_and_keeps_the_rest():
    """dx/dt = x^2 blows up at t = 1 / x0: the paths from 2 and 5 leave every bound before t = 1, the one from
    0.1 does not (x(1) = 0.1 / 0.9); the input is not modified and the stopped paths stay finite."""
    x0 = np.array([[0.1], [2.0], [5.0]])
    keep = x0.copy()
    run = S.integrate_flow(lambda x, t: x * x, x0, np.linspace(0.0, 1.0, 201), bound=1e6,
                           divergence=lambda x, t: 2 * x[:, 0])
    np.testing.assert_array_equal(x0, keep)
    np.testing.assert_array_equal(run.extras["diverged"], [False, True, True])
    np.testing.assert_allclose(run.x[0, 0], 0.1 / 0.9, rtol=1e-8)
    assert np.all(np.isfinite(run.x)) and np.all(np.isfinite(run.extras["divergence_integral"]))
    # log of the Jacobian of the flow map x0 -> x0 / (1 - x0 t): -2 log(1 - x0) = int 2 x dt
    np.testing.assert_allclose(run.extras["divergence_integral"][0], -2 * np.log(0.9), rtol=1e-7)
    with pytest.raises(ValueError, match="velocity"), np.errstate(over="ignore"):  # no bound: refused
        S.integrate_flow(lambda x, t: x * x, x0, np.linspace(0.0, 1.0, 201))


def test_bad_inputs():
    x0 = np.ones((2, 2))
    v = lambda x, t: -x  # noqa: E731
    with pytest.raises(ValueError, match="method"):
        S.integrate_flow(v, x0, [1.0, 0.5], method="rk45")
    with pytest.raises(ValueError, match="times"):
        S.integrate_flow(v, x0, [1.0, 0.5, 0.7])
    with pytest.raises(ValueError, match="times"):
        S.integrate_flow(v, x0, [1.0, 0.0], log_time=True)
    with pytest.raises(ValueError, match="bound"):
        S.integrate_flow(v, x0, [1.0, 0.5], bound=-1.0)
    with pytest.raises(TypeError, match="divergence"):
        S.integrate_flow(v, x0, [1.0, 0.5], divergence=3)
    with pytest.raises(ValueError, match="divergence"):
        S.integrate_flow(v, x0, [1.0, 0.5], divergence=lambda x, t: np.zeros(3))
    with pytest.raises(ValueError, match="record"):
        S.integrate_flow(v, x0, [1.0, 0.5], record="denoised")
