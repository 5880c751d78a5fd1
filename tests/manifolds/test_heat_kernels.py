"""Heat kernels of the sphere and the torus against independent routes.

Routes: quadrature (normalisation, Chapman-Kolmogorov), finite differences (heat equation,
gradients), the Legendre closed form through ``scipy.special.eval_legendre``, eigenfunction
means (Monte Carlo of the exact samplers), and the two evaluation forms against each other.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import eval_legendre

from opdiff.manifolds import (FlatTorus, Hypersphere, circle_log_heat_kernel, sphere_area,
                              sphere_log_heat_kernel, switch_time)

TIMES = (0.001, 0.004, 0.02, 0.1, 0.5, 2.0)


def _sphere_normalisation(n, s):
    area = sphere_area(n - 1)

    def density(theta):
        return area * math.sin(theta) ** (n - 1) * math.exp(float(sphere_log_heat_kernel(np.array(theta), s, n)[0]))

    return quad(density, 0.0, math.pi, points=[min(3.0, math.sqrt(s))], limit=400, epsabs=1e-13)[0]


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("s", TIMES)
def test_sphere_kernel_integrates_to_one(n, s):
    # adaptive quadrature to 1e-13; the kernel's own error is <= tol = 1e-8 of its peak, and the
    # peak region has volume ~ (4 pi s)^{n/2}, so the integral is within ~1e-8 of one
    assert abs(_sphere_normalisation(n, s) - 1.0) < 2e-8


@pytest.mark.parametrize("s", TIMES)
def test_circle_kernel_integrates_to_one(s):
    # trapezoid rule on a periodic analytic integrand: exponentially accurate
    delta = np.linspace(-math.pi, math.pi, 4001)[:-1]
    for method in ("image", "theta", "auto"):
        if method == "theta" and s < 0.1:
            continue  # theta series cancels at small s; "auto" only uses it for s >= 1.5
        log_p, _ = circle_log_heat_kernel(delta, s, method=method)
        assert abs(np.exp(log_p).sum() * (2 * math.pi / delta.size) - 1.0) < 1e-12


def test_torus_kernel_is_a_product_and_normalised():
    torus = FlatTorus(2)
    g = np.linspace(-math.pi, math.pi, 201)[:-1]
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    x = np.array([[0.3, -2.9]])
    for s in (0.05, 3.0):
        log_p = torus.log_heat_kernel(x, grid, s)
        assert abs(np.exp(log_p).sum() * (2 * math.pi / 200) ** 2 - 1.0) < 1e-12
        one_d = circle_log_heat_kernel(grid - x, s)[0].sum(axis=1)
        np.testing.assert_allclose(log_p, one_d, rtol=0, atol=1e-12)


def test_sphere_kernel_is_the_legendre_series_on_s2():
    rng = np.random.default_rng(0)
    sphere = Hypersphere(2)
    x, y = sphere.random_uniform(6, rng), sphere.random_uniform(9, rng)
    cos = np.clip(x @ y.T, -1, 1)
    for s in (0.003, 0.02, 0.3, 2.0):
        ls = np.arange(400)
        reference = sum((2 * l + 1) / (4 * math.pi) * math.exp(-l * (l + 1) * s) * eval_legendre(l, cos) for l in ls)
        value = np.exp(sphere.pairwise_log_heat_kernel(x, y, s))
        # contract: error <= tol (1e-8) times the peak 1/(4 pi s) (+ rounding of the 400-term reference)
        assert np.max(np.abs(value - reference)) <= 1e-8 / (4 * math.pi * s) + 1e-12


@pytest.mark.parametrize("n", [2, 3, 5])
def test_series_and_short_time_agree_where_both_hold(n):
    s_star = switch_time(n)
    theta = np.linspace(0.0, 1.5, 31)
    for s in (0.5 * s_star, s_star, 2.0 * s_star):
        series, g_series = sphere_log_heat_kernel(theta, s, n, method="series")
        short, g_short = sphere_log_heat_kernel(theta, s, n, method="short_time")
        peak = np.exp(series[0])
        # both within ~1e-8 of the peak: the short-time error is c_n s^3 <= 1e-8 * (s / s*)^3
        bound = 1e-8 * max(1.0, (s / s_star) ** 3) * 1.5
        assert np.max(np.abs(np.exp(series) - np.exp(short))) / peak < bound
        near = theta < 4 * math.sqrt(s)  # gradients compared where the kernel is not negligible
        np.testing.assert_allclose(g_series[near], g_short[near], rtol=5e-5, atol=1e-6 / s)


def test_circle_image_and_theta_forms_agree():
    delta = np.linspace(-math.pi, math.pi, 101)
    for s in (0.2, 1.0, 4.0):
        a, da = circle_log_heat_kernel(delta, s, method="image")
        b, db = circle_log_heat_kernel(delta, s, method="theta")
        # the theta series cancels down to p_min / p_max ~ e^-12 at s = 0.2: rounding 1e-16 * e^12
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
        np.testing.assert_allclose(da, db, rtol=0, atol=1e-9)


def test_circle_and_one_torus_agree():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-math.pi, math.pi, (7, 1)), rng.uniform(-math.pi, math.pi, (5, 1))
    on_circle = lambda angle: np.concatenate([np.cos(angle), np.sin(angle)], axis=1)  # noqa: E731
    circle, torus = Hypersphere(1), FlatTorus(1)
    assert circle.volume() == pytest.approx(torus.volume())
    for s in (0.01, 0.7, 5.0):
        lc, gc = circle.pairwise_log_heat_kernel(on_circle(a), on_circle(b), s, gradient=True)
        lt, gt = torus.pairwise_log_heat_kernel(a, b, s, gradient=True)
        np.testing.assert_allclose(lc, lt, rtol=0, atol=1e-12)
        # torus gradient is d/d(angle); the circle's is that times the unit tangent (-sin a, cos a)
        tangent = np.concatenate([-np.sin(a), np.cos(a)], axis=1)[:, None, :]
        np.testing.assert_allclose(gc, gt * tangent, rtol=0, atol=1e-10)


@pytest.mark.parametrize("manifold", [Hypersphere(2), Hypersphere(3), Hypersphere(1), FlatTorus(2)])
def test_kernels_are_symmetric(manifold):
    rng = np.random.default_rng(2)
    x, y = manifold.random_uniform(5, rng), manifold.random_uniform(8, rng)
    for s in (0.002, 0.05, 1.0):
        np.testing.assert_allclose(manifold.pairwise_log_heat_kernel(x, y, s),
                                   manifold.pairwise_log_heat_kernel(y, x, s).T, rtol=0, atol=1e-11)


def test_chapman_kolmogorov_on_s2():
    sphere = Hypersphere(2)
    nodes, weights = sphere.product_quadrature(96, 192)
    rng = np.random.default_rng(3)
    x, z = sphere.random_uniform(3, rng), sphere.random_uniform(4, rng)
    for s1, s2 in ((0.1, 0.15), (0.4, 1.0)):
        left = np.exp(sphere.pairwise_log_heat_kernel(x, nodes, s1))
        right = np.exp(sphere.pairwise_log_heat_kernel(nodes, z, s2))
        composed = (left * weights) @ right
        direct = np.exp(sphere.pairwise_log_heat_kernel(x, z, s1 + s2))
        # the product rule integrates spherical harmonics of degree < 2*96 exactly; the integrand's
        # spectrum beyond that is below exp(-96^2 * 0.1); kernels carry <= 1e-8 of their peak
        np.testing.assert_allclose(composed, direct, rtol=1e-10, atol=3e-8 / (4 * math.pi * min(s1, s2)))


def test_chapman_kolmogorov_on_the_circle():
    # periodic trapezoid rule on 1000 nodes: spectrally accurate for kernels of width >= 0.14
    delta = np.linspace(-math.pi, math.pi, 1001)[:-1]
    h = 2 * math.pi / delta.size
    x, z = delta[::97], delta[::89]
    for s1, s2 in ((0.01, 0.02), (0.3, 2.0)):
        a = np.exp(circle_log_heat_kernel(x[:, None] - delta[None, :], s1)[0])
        b = np.exp(circle_log_heat_kernel(delta[:, None] - z[None, :], s2)[0])
        direct = np.exp(circle_log_heat_kernel(x[:, None] - z[None, :], s1 + s2)[0])
        np.testing.assert_allclose((a @ b) * h, direct, rtol=1e-10)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("s", [0.004, 0.03, 0.3])
def test_sphere_kernel_solves_the_heat_equation(n, s):
    # radial Laplace-Beltrami f'' + (n-1) cot(theta) f', central differences: O(h^2) truncation
    theta = np.linspace(0.3, 2.0, 9) * math.sqrt(s) * 3 if s < 0.1 else np.linspace(0.3, 2.5, 9)
    h, k = 1e-4 * max(math.sqrt(s), 0.05), 1e-5 * s
    p = lambda th, tt: np.exp(sphere_log_heat_kernel(th, tt, n)[0])  # noqa: E731
    d_theta = (p(theta + h, s) - p(theta - h, s)) / (2 * h)
    d2_theta = (p(theta + h, s) - 2 * p(theta, s) + p(theta - h, s)) / h**2
    laplacian = d2_theta + (n - 1) / np.tan(theta) * d_theta
    d_time = (p(theta, s + k) - p(theta, s - k)) / (2 * k)
    peak = p(np.zeros(1), s)[0]
    # both sides are ~1/s relative to the peak; their gap is <= 1.4e-6 / s over this grid (n=3, s=0.004;
    # FD rounding and the kernel's 1e-8-of-peak accuracy), bounded here at about 10x that
    np.testing.assert_allclose(d_time / peak, laplacian / peak, rtol=0, atol=2e-5 / s)


def test_circle_kernel_solves_the_heat_equation():
    delta = np.linspace(-3.0, 3.0, 13)
    for s in (0.05, 2.5):
        h, k = 1e-4, 1e-6
        p = lambda d, tt: np.exp(circle_log_heat_kernel(d, tt)[0])  # noqa: E731
        lap = (p(delta + h, s) - 2 * p(delta, s) + p(delta - h, s)) / h**2
        dt = (p(delta, s + k) - p(delta, s - k)) / (2 * k)
        np.testing.assert_allclose(dt, lap, rtol=0, atol=1e-5 * p(np.zeros(1), s)[0] / s)


@pytest.mark.parametrize("manifold", [Hypersphere(2), Hypersphere(1), Hypersphere(4), FlatTorus(3)])
@pytest.mark.parametrize("s", [0.003, 0.05, 2.0])
def test_kernel_gradient_matches_finite_differences_along_geodesics(manifold, s):
    rng = np.random.default_rng(4)
    x = manifold.random_uniform(6, rng)
    y = manifold.exp(x, 2.0 * math.sqrt(s) * manifold.random_tangent_normal(x, rng))
    v = manifold.random_tangent_normal(x, rng)
    log_p, grad = manifold.log_heat_kernel_and_gradient(x, y, s)
    np.testing.assert_allclose(np.sum(grad * x, axis=1) if isinstance(manifold, Hypersphere) else 0.0, 0.0,
                               atol=1e-10)
    eps = 1e-5
    fd = (manifold.log_heat_kernel(manifold.exp(x, eps * v), y, s)
          - manifold.log_heat_kernel(manifold.exp(x, -eps * v), y, s)) / (2 * eps)
    # central difference: O(eps^2 |third derivative|) ~ 1e-10 / s^1.5, plus rounding 1e-16 / eps
    np.testing.assert_allclose(fd, np.sum(grad * v, axis=1), rtol=1e-6, atol=1e-8 / s**1.5)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_exact_sampler_matches_eigenfunction_means(n):
    # E[x0 . X_s] = exp(-n s): x . x0 is a degree-1 harmonic with eigenvalue -n; 5 standard errors
    sphere = Hypersphere(n)
    rng = np.random.default_rng(5)
    x0 = sphere.random_uniform(1, rng)
    for s in (0.004, 0.2):
        samples = sphere.sample_heat_kernel(np.repeat(x0, 20000, axis=0), s, rng)
        assert np.max(np.abs(np.linalg.norm(samples, axis=1) - 1)) < 1e-12
        c = samples @ x0[0]
        assert abs(c.mean() - math.exp(-n * s)) < 5 * c.std() / math.sqrt(c.size) + 1e-12
        if n == 2:  # degree 2: P_2, eigenvalue -6
            p2 = eval_legendre(2, c)
            assert abs(p2.mean() - math.exp(-6 * s)) < 5 * p2.std() / math.sqrt(c.size)


def test_torus_sampler_matches_fourier_means():
    torus = FlatTorus(2)
    rng = np.random.default_rng(6)
    x0 = np.array([[3.0, -3.0]])
    for s in (0.1, 2.0):
        samples = torus.sample_heat_kernel(np.repeat(x0, 20000, axis=0), s, rng)
        assert np.all((samples >= -math.pi) & (samples < math.pi))
        c = np.cos(samples - x0)  # E cos(k delta) = exp(-k^2 s)
        assert np.all(np.abs(c.mean(0) - math.exp(-s)) < 5 * c.std(0) / math.sqrt(20000))


def test_bad_arguments():
    with pytest.raises(ValueError, match="n: expected an integer >= 2"):
        sphere_log_heat_kernel(np.zeros(2), 0.1, 1)
    with pytest.raises(ValueError, match="method"):
        sphere_log_heat_kernel(np.zeros(2), 0.1, 2, method="magic")
    with pytest.raises(ValueError, match="method"):
        circle_log_heat_kernel(np.zeros(2), 0.1, method="magic")
    with pytest.raises(ValueError, match="method"):
        Hypersphere(2, method="image")


@pytest.mark.parametrize("n", [2, 3, 5])
def test_fused_numba_pairs_match_the_array_generic_formulas(n):
    from opdiff.manifolds import Manifold

    sphere = Hypersphere(n)
    rng = np.random.default_rng(7)
    x, y = sphere.random_uniform(40, rng), sphere.random_uniform(30, rng)
    for s in (0.001, switch_time(n), 0.02, 0.3, np.geomspace(1e-3, 2.0, 30)[None, :]):
        fused, fused_grad = sphere.pairwise_log_heat_kernel(x, y, s, gradient=True)
        generic, generic_grad = Manifold.pairwise_log_heat_kernel(sphere, x, y, s, gradient=True)
        peak = np.exp(sphere_log_heat_kernel(np.zeros(1), np.min(s), n)[0][0])
        # same formulas; they may differ only where the series hits its rounding floor (values
        # below ~1e-8 of the peak), so compare kernels against the peak and gradients where it matters
        assert np.max(np.abs(np.exp(fused) - np.exp(generic))) <= 1e-12 * peak
        big = generic > np.log(1e-6 * peak)
        # cancellation in the series: eps * sum|terms| / value <= 1e-16 * 1e6 where p >= 1e-6 peak
        np.testing.assert_allclose(fused[big], generic[big], rtol=0, atol=1e-9)
        np.testing.assert_allclose(fused_grad[big], generic_grad[big], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("manifold", [Hypersphere(2), Hypersphere(4), FlatTorus(2)], ids=repr)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), log_s=st.floats(math.log(1e-4), math.log(20.0)))
def test_kernel_invariants_property(manifold, seed, log_s):
    # symmetry, finiteness (log domain: no underflow to -inf even for far pairs), tangent gradients
    s = math.exp(log_s)
    rng = np.random.default_rng(seed)
    x, y = manifold.random_uniform(6, rng), manifold.random_uniform(5, rng)
    log_xy, grad = manifold.pairwise_log_heat_kernel(x, y, s, gradient=True)
    assert np.all(np.isfinite(log_xy)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(log_xy, manifold.pairwise_log_heat_kernel(y, x, s).T, rtol=1e-12, atol=1e-9)
    if isinstance(manifold, Hypersphere):
        np.testing.assert_allclose(np.einsum("mnd,md->mn", grad, x), 0.0, atol=1e-8 * max(1.0, np.abs(grad).max()))
    # the kernel peaks on the diagonal: p_s(x, y) <= p_s(y, y)
    diagonal = manifold.log_heat_kernel(y, y, s)
    assert np.all(log_xy <= diagonal[None, :] + 1e-9)
