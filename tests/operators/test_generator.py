"""Generator: exact test-function derivatives, L_t against finite differences and against d/dt of P_t."""
import numpy as np
import pytest

from opdiff.operators import (GaussianBump, Generator, PlaneWave, Polynomial, Quadratic, Semigroup,
                              finite_difference_derivatives)
from opdiff.processes import BrownianMotion, OrnsteinUhlenbeck

D = 2  # every test function acts on R^2 (data R^2 for scalar processes, R^1 x R^1 for CLD)
FUNCTION_NAMES = ("bump", "exponential", "plane_wave", "polynomial", "quadratic")  # conftest.smooth_functions



@pytest.fixture
def points():
    return np.random.default_rng(0).normal(size=(7, D))


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_exact_derivatives_match_finite_differences(name, points, smooth_functions):
    f = smooth_functions[name]
    value, gradient, hessian = finite_difference_derivatives(f.value, points)
    np.testing.assert_allclose(f.value(points), value, rtol=1e-14)
    # central differences with h = eps^(1/4): O(h^2) ~ 1e-8 truncation, O(eps/h^2) ~ 1e-8 rounding
    np.testing.assert_allclose(f.gradient(points), gradient, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(f.hessian(points), hessian, rtol=1e-5, atol=1e-5)
    assert np.allclose(f.hessian(points), np.swapaxes(f.hessian(points), 1, 2))


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_generator_of_test_function_equals_finite_difference_route(process, name, points, smooth_functions):
    f = smooth_functions[name]
    L = Generator(process)
    t = 0.4 * process.t_max
    exact = L(f, points, t)
    by_fd = L(lambda x: f.value(x), points, t)  # plain callable: central differences
    scale = np.max(np.abs(exact)) + 1.0
    np.testing.assert_allclose(exact, by_fd, atol=1e-5 * scale)


def test_generator_closed_forms():
    x = np.array([[0.5, -1.0], [2.0, 0.3]])
    # Brownian motion sigma: L = sigma^2/2 Laplacian; |x|^2 -> sigma^2 D
    L = Generator(BrownianMotion(sigma=1.5))
    np.testing.assert_allclose(L(Quadratic(np.eye(2)), x, 0.3), 1.5**2 * 2.0)
    # OU theta: L = theta (Laplacian - x . grad); Hermite He_2(x_1) = x_1^2 - 1 has eigenvalue -2 theta
    L = Generator(OrnsteinUhlenbeck(theta=0.7))
    he2 = Polynomial([1.0, -1.0], [[2, 0], [0, 0]])
    np.testing.assert_allclose(L(he2, x, 1.0), -2 * 0.7 * he2(x), rtol=1e-13)
    # plane wave under BM: L e^{ik.x} = -sigma^2 |k|^2 / 2 e^{ik.x}
    L = Generator(BrownianMotion(sigma=1.5))
    wave = PlaneWave([0.3, -2.0])
    np.testing.assert_allclose(L(wave, x, 0.5), -1.5**2 * (0.09 + 4.0) / 2 * wave(x), rtol=1e-13)


def _state_points(process, n=5, seed=1):
    return np.random.default_rng(seed).normal(size=(n, D))


@pytest.mark.parametrize("name", ["plane_wave", "bump", "polynomial"])
def test_generator_is_derivative_of_semigroup_at_t_equals_s(process, name, smooth_functions):
    """(P_{s,s+h} f - f)/h -> L_s f, second-order one-sided difference in t."""
    _check_derivative_at(process, smooth_functions[name], 0.3 * process.t_max)


# at s = 0 auxiliary-variable processes (CLD) start from their hybrid law, not from a state: scalar ones only
@pytest.mark.parametrize("process_name", ["bm", "ou", "ve", "ve_edm", "vp_linear", "vp_cosine"])
def test_generator_is_derivative_of_semigroup_at_zero(process_table, process_name, smooth_functions):
    for name in ("plane_wave", "bump", "polynomial"):
        _check_derivative_at(process_table[process_name](), smooth_functions[name], 0.0)


def _check_derivative_at(process, f, s):
    P, L = Semigroup(process), Generator(process)
    x = _state_points(process)
    h = 1e-5 * process.t_max
    values = [P(f, x, s + k * h, s=s).value for k in range(3)]
    derivative = (-3 * values[0] + 4 * values[1] - values[2]) / (2 * h)
    expected = L(f, x, s)
    # O(h^2) truncation (h ~ 1e-5 t_max) and eps/h ~ 1e-11 rounding, relative to the size of L f
    np.testing.assert_allclose(derivative, expected, atol=2e-5 * (np.max(np.abs(expected)) + 1))


@pytest.mark.parametrize("name", ["plane_wave", "bump", "quadratic"])
def test_time_derivative_of_expectation_equals_expected_generator(process, name, smooth_functions, gauss_hermite):
    """d/dt E[f(X_t) | X_s = x] = E[(L_t f)(X_t) | X_s = x]: central difference of the closed-form
    semigroup against Gauss-Hermite quadrature of the generator under the exact transition law."""
    f = smooth_functions[name]
    P, L = Semigroup(process), Generator(process)
    x = _state_points(process, n=2, seed=2)
    horizon = min(process.t_max, 2.0)  # keeps Sigma(t, s) of order one, so 40 nodes per axis resolve f
    s, t, h = 0.1 * horizon, 0.5 * horizon, 1e-4 * horizon
    derivative = (P(f, x, t + h, s=s).value - P(f, x, t - h, s=s).value) / (2 * h)
    mean, cov = P.moments(x, t, s=s)
    expected = np.array([gauss_hermite(lambda y: L(f, y, t), m, cov) for m in mean])
    # O(h^2) central-difference error ~ 1e-8 times the third t-derivative; quadrature converged
    np.testing.assert_allclose(derivative, expected, atol=1e-5 * (np.max(np.abs(expected)) + 1))


@pytest.mark.parametrize("pair", [("plane_wave", "bump"), ("polynomial", "exponential"), ("bump", "quadratic")])
def test_carre_du_champ_is_the_product_defect(process, pair, smooth_functions):
    """Gamma(f, g) = 1/2 [L(fg) - f Lg - g Lf], with L(fg) by finite differences of the product."""
    f, g = (smooth_functions[name] for name in pair)
    L = Generator(process)
    x, t = _state_points(process), 0.6 * process.t_max
    product = L(lambda y: f(y) * g(y), x, t)
    defect = 0.5 * (product - f(x) * L(g, x, t) - g(x) * L(f, x, t))
    gamma = L.carre_du_champ(f, g, x, t)
    np.testing.assert_allclose(gamma, defect, atol=1e-5 * (np.max(np.abs(product)) + 1))
    np.testing.assert_allclose(L.carre_du_champ(g, f, x, t), gamma, rtol=1e-12)


def test_float32_kept_and_time_as_array(points):
    L = Generator(OrnsteinUhlenbeck())
    f = GaussianBump([0.0, 0.5], 1.2)
    x32 = points.astype(np.float32)
    assert L(f, x32, 0.5).dtype == np.float32
    assert L(lambda y: f(y), x32, 0.5).dtype == np.float32
    assert L(PlaneWave([1.0, 0.0]), x32, 0.5).dtype == np.complex64
    np.testing.assert_allclose(L(f, x32, 0.5), L(f, points, 0.5), rtol=1e-5)
    np.testing.assert_allclose(L(f, points, np.full(len(points), 0.5)), L(f, points, 0.5), rtol=1e-15)
    np.testing.assert_allclose(L(f, points, np.array([0.5])), L(f, points, 0.5), rtol=1e-15)
    times = np.linspace(0.1, 2.0, len(points))
    rowwise = np.array([L(f, points[i:i + 1], times[i])[0] for i in range(len(points))])
    np.testing.assert_allclose(L(f, points, times), rowwise, rtol=1e-14)


def test_bad_input():
    L = Generator(BrownianMotion(T=1.0))
    f = Quadratic(np.eye(2))
    with pytest.raises(ValueError, match="x: expected trailing shape"):
        L(f, np.zeros((3, 3)), 0.5)
    with pytest.raises(ValueError, match="x: expected finite"):
        L(f, np.array([[np.nan, 0.0]]), 0.5)
    with pytest.raises(ValueError, match=r"t: expected times in \[0.0, 1.0\]"):
        L(f, np.zeros((1, 2)), 1.5)
    with pytest.raises(ValueError, match="t: expected a float or an array of shape"):
        L(f, np.zeros((2, 2)), np.ones(3) * 0.5)
    with pytest.raises(TypeError, match="f: expected a SmoothFunction or a callable"):
        L(3.0, np.zeros((1, 2)), 0.5)
    with pytest.raises(ValueError, match=r"f: expected a callable returning shape \(1,\)"):
        L(lambda y: y, np.zeros((1, 2)), 0.5)
    with pytest.raises(ValueError, match="f: returned non-finite"):
        L(lambda y: np.log(y[:, 0] - 10.0 + 0j).real * np.inf, np.zeros((1, 2)), 0.5)
    with pytest.raises(ValueError, match="k: expected a 1-D array"):
        PlaneWave(1.0)
    with pytest.raises(ValueError, match="k: expected a real wave vector"):
        PlaneWave([1j, 0.0])
    with pytest.raises(ValueError, match="width: expected a positive number"):
        GaussianBump([0.0], -1.0)
    with pytest.raises(ValueError, match="width: expected a positive definite"):
        GaussianBump([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="exponents: expected non-negative integers"):
        Polynomial([1.0], [[-1, 0]])
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        Quadratic(np.ones((2, 3)))
    with pytest.raises(ValueError, match="center: expected finite"):
        GaussianBump([np.inf, 0.0])
