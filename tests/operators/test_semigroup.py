"""Semigroup: closed forms against Monte Carlo, Chapman-Kolmogorov, identity at s = t, bad input."""
import numpy as np
import pytest

from opdiff.operators import GaussianBump, PlaneWave, Polynomial, Quadratic, Semigroup
from opdiff.processes import BrownianMotion, MarkovProcess, OrnsteinUhlenbeck, VPSDE
from opdiff.processes.linear import StationaryLinearSDE

D = 2
FUNCTION_NAMES = ("bump", "exponential", "plane_wave", "polynomial", "quadratic")  # conftest.smooth_functions



def _data(process, n=3, seed=0):
    """Data points: R^2 for scalar processes, R^1 for CLD (state R^2)."""
    return np.random.default_rng(seed).normal(size=(n, D // process.n_blocks))


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_closed_form_matches_monte_carlo(process, name, smooth_functions):
    f = smooth_functions[name]
    P = Semigroup(process)
    x, t = _data(process), 0.3 * min(process.t_max, 3.0)
    exact = P(f, x, t)
    assert exact.exact and np.all(exact.stderr == 0)
    mc = P(lambda y: f(y), x, t, rng=1, n_samples=20000)
    assert not mc.exact
    # Monte Carlo: 5 standard errors (plus a floor for functions that are almost constant)
    assert np.all(np.abs(mc.value - exact.value) <= 5 * mc.stderr + 1e-12), (mc, exact)


@pytest.mark.parametrize("name", ["polynomial", "plane_wave", "bump"])
def test_chapman_kolmogorov(process, name, smooth_functions, gauss_hermite):
    """P_{r,t} f = P_{r,s} (P_{s,t} f), the outer expectation by Gauss-Hermite quadrature in the test."""
    f = smooth_functions[name]
    P = Semigroup(process)
    horizon = min(process.t_max, 2.0)
    r, s, t = 0.2 * horizon, 0.5 * horizon, 0.9 * horizon
    x = np.random.default_rng(3).normal(size=(2, D))  # states (s > 0)
    direct = P(f, x, t, s=r).value
    mean, cov = P.moments(x, s, s=r)
    nested = [gauss_hermite(lambda y: P(f, y, t, s=s).value, m, cov) for m in mean]
    # quadrature of a smooth integrand with 40 nodes per axis and Sigma of order one: converged to ~1e-10
    np.testing.assert_allclose(nested, direct, rtol=1e-8, atol=1e-10)


def test_identity_at_equal_times(process, smooth_functions):
    P = Semigroup(process)
    f = smooth_functions["bump"]
    x = np.random.default_rng(4).normal(size=(4, D))
    s = 0.4 * process.t_max
    np.testing.assert_allclose(P(f, x, s, s=s).value, f(x), rtol=1e-12)


class HiddenTransition(MarkovProcess):
    """An OU process seen only through drift, diffusion and sample (no closed-form transition)."""

    def __init__(self):
        self._ou = OrnsteinUhlenbeck(theta=0.7)
        self.t_max = self._ou.t_max

    def drift(self, x, t):
        return self._ou.drift(x, t)

    def diffusion(self, t):
        return self._ou.diffusion(t)

    def sample(self, x0, t, rng=None):
        return self._ou.sample(x0, t, rng=rng)


def test_non_gaussian_route_samples_the_process(smooth_functions):
    """A process without transition goes through process.sample: within 5 standard errors of the closed form."""
    P = Semigroup(HiddenTransition(), n_samples=20000)
    f = smooth_functions["bump"]
    x = np.random.default_rng(8).normal(size=(3, D))
    mc = P(f, x, 0.8, rng=0)
    exact = Semigroup(OrnsteinUhlenbeck(theta=0.7))(f, x, 0.8)
    assert not mc.exact and np.all(np.abs(mc.value - exact.value) < 5 * mc.stderr)
    with pytest.raises(ValueError, match="s: a non-Gaussian process is only sampled from s = 0"):
        P(f, x, 0.8, s=0.2)
    with pytest.raises(ValueError, match="process: moments need a Gaussian process"):
        P.moments(x, 0.8)


def test_polynomial_quadrature_equals_quadratic_closed_form():
    A, b, c = np.array([[1.0, 0.4], [0.4, 2.0]]), np.array([0.3, -0.5]), 1.0
    # x^T A x + b.x + c written as a polynomial
    polynomial = Polynomial([1.0, 0.8, 2.0, 0.3, -0.5, 1.0], [[2, 0], [1, 1], [0, 2], [1, 0], [0, 1], [0, 0]])
    x = np.random.default_rng(5).normal(size=(6, 2))
    np.testing.assert_allclose(polynomial(x), Quadratic(A, b, c)(x), rtol=1e-13)
    P = Semigroup(VPSDE())
    times = np.linspace(0.1, 1.0, 6)
    np.testing.assert_allclose(P(polynomial, x, times).value, P(Quadratic(A, b, c), x, times).value, rtol=1e-12)


def test_closed_forms_by_hand():
    x = np.array([[0.5, -1.0]])
    # OU: P_t He_2(x_1) = e^{-2 theta t} He_2(x_1) (Mehler)
    P = Semigroup(OrnsteinUhlenbeck(theta=0.7))
    he2 = Polynomial([1.0, -1.0], [[2, 0], [0, 0]])
    np.testing.assert_allclose(P(he2, x, 1.3).value, np.exp(-2 * 0.7 * 1.3) * he2(x), rtol=1e-13)
    # BM sigma: characteristic function exp(i k.x - sigma^2 t |k|^2 / 2)
    P = Semigroup(BrownianMotion(sigma=1.5))
    k = np.array([0.3, -2.0])
    expected = np.exp(1j * x @ k - 1.5**2 * 0.4 * k @ k / 2)
    np.testing.assert_allclose(P(PlaneWave(k), x, 0.4).value, expected, rtol=1e-13)


def test_monte_carlo_is_reproducible_and_float32_kept():
    P = Semigroup(VPSDE(), n_samples=500)
    f = lambda y: np.cos(y[:, 0]) * y[:, 1]  # noqa: E731
    x = np.random.default_rng(6).normal(size=(3, 2))
    a, b = P(f, x, 0.5, rng=7), P(f, x, 0.5, rng=7)
    np.testing.assert_array_equal(a.value, b.value)
    x32 = x.astype(np.float32)
    assert P(f, x32, 0.5, rng=7).value.dtype == np.float32
    assert P(GaussianBump([0.0, 0.0]), x32, 0.5).value.dtype == np.float32
    assert P(PlaneWave([1.0, 0.0]), x32, 0.5).value.dtype == np.complex64
    cld_bump = GaussianBump([0.0, 0.0])
    cld = Semigroup(StationaryLinearSDE.cld())
    np.testing.assert_allclose(cld(cld_bump, x, np.array([0.5]), s=np.array([0.2])).value,
                               cld(cld_bump, x, 0.5, s=0.2).value, rtol=1e-15)
    times = np.full(3, 0.5)
    np.testing.assert_allclose(P(GaussianBump([0.0, 0.0]), x, times).value,
                               P(GaussianBump([0.0, 0.0]), x, 0.5).value, rtol=1e-14)


def test_bad_input():
    P = Semigroup(BrownianMotion(T=1.0))
    f = Quadratic(np.eye(2))
    x = np.zeros((2, 2))
    with pytest.raises(ValueError, match="s: expected s <= t"):
        P(f, x, 0.2, s=0.5)
    with pytest.raises(ValueError, match=r"t: expected times in \[0.0, 1.0\]"):
        P(f, x, 2.0)
    with pytest.raises(ValueError, match="x: expected finite"):
        P(f, np.array([[np.inf, 0.0]]), 0.5)
    with pytest.raises(ValueError, match="x: the state has dimension 3 but f takes dimension 2"):
        P(f, np.zeros((1, 3)), 0.5)
    with pytest.raises(ValueError, match="n_samples: expected at least 2"):
        Semigroup(BrownianMotion(), n_samples=1)
    with pytest.raises(ValueError, match=r"f: expected a callable returning shape \(4,\)"):
        P(lambda y: y, x, 0.5, n_samples=2)
    with pytest.raises(TypeError, match="f: expected a SmoothFunction or a callable"):
        P("f", x, 0.5)
    with pytest.raises(TypeError, match="rng: expected None, an int seed"):
        P(lambda y: y[:, 0], x, 0.5, rng="seed")
