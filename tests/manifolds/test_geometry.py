"""Geometry of Euclidean, Hypersphere and FlatTorus: exp/log/dist round trips, projections, validation."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opdiff.manifolds import Euclidean, FlatTorus, Hypersphere

MANIFOLDS = [Hypersphere(1), Hypersphere(2), Hypersphere(5), FlatTorus(1), FlatTorus(3)]


def _points_and_tangents(manifold, seed, n=50, scale=1.0):
    rng = np.random.default_rng(seed)
    x = manifold.random_uniform(n, rng)
    v = manifold.random_tangent_normal(x, rng)
    v *= scale * rng.uniform(0, 1, (n, 1)) / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
    return x, manifold.to_tangent(x, v)  # re-project: rescaling a tiny projection amplifies its rounding


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=repr)
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-9, 3.1))
def test_exp_log_round_trip_and_distance(manifold, seed, scale):
    # tangent vectors shorter than the injectivity radius pi: log inverts exp
    x, v = _points_and_tangents(manifold, seed, scale=scale)
    y = manifold.exp(x, v)
    assert np.all(manifold.belongs(y, atol=1e-12))
    np.testing.assert_allclose(manifold.log(x, y), v, rtol=0, atol=1e-9)
    np.testing.assert_allclose(manifold.dist(x, y), np.linalg.norm(v, axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(manifold.dist(x, y), manifold.dist(y, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=repr)
def test_exp_of_log_returns_the_point(manifold):
    rng = np.random.default_rng(0)
    x, y = manifold.random_uniform(200, rng), manifold.random_uniform(200, rng)
    v = manifold.log(x, y)
    assert np.all(np.linalg.norm(v, axis=1) <= math.pi * math.sqrt(manifold.dim) + 1e-12)
    np.testing.assert_allclose(manifold.dist(manifold.exp(x, v), y), 0.0, atol=1e-7)
    np.testing.assert_allclose(manifold.to_tangent(x, v), v, atol=1e-12)


def test_sphere_log_at_the_antipode():
    sphere = Hypersphere(2)
    x = sphere.random_uniform(10, 1)
    v = sphere.log(x, -x)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), math.pi, atol=1e-12)
    np.testing.assert_allclose(np.sum(v * x, axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(sphere.exp(x, v), -x, atol=1e-12)
    np.testing.assert_allclose(sphere.dist(x, -x), math.pi, atol=1e-12)


def test_torus_log_at_the_cut_locus_is_deterministic():
    torus = FlatTorus(2)
    x = np.array([[0.0, 1.0]])
    y = np.array([[-math.pi, 1.0]])
    np.testing.assert_allclose(torus.log(x, y), [[-math.pi, 0.0]])
    np.testing.assert_allclose(torus.dist(x, y), math.pi)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=repr)
def test_long_walks_stay_on_the_manifold(manifold):
    x, _ = _points_and_tangents(manifold, 3, n=20)
    rng = np.random.default_rng(4)
    for _ in range(500):
        x = manifold.exp(x, 0.7 * manifold.random_tangent_normal(x, rng))
    assert np.all(manifold.belongs(x, atol=1e-12))


def test_projection_tangent_and_riemannian_gradient_on_the_sphere():
    sphere = Hypersphere(2)
    rng = np.random.default_rng(5)
    raw = 3.0 * rng.normal(size=(20, 3))
    x = sphere.proj(raw)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-15)
    g = rng.normal(size=(20, 3))
    grad = sphere.riemannian_gradient(x, g)
    np.testing.assert_allclose(np.sum(grad * x, axis=1), 0.0, atol=1e-14)
    # f(x) = a . x restricted to S^2: finite difference along a geodesic equals <grad, v>
    v = sphere.random_tangent_normal(x, rng)
    eps = 1e-6
    fd = (sphere.exp(x, eps * v) @ g[0] - sphere.exp(x, -eps * v) @ g[0]) / (2 * eps)
    np.testing.assert_allclose(fd, np.sum(sphere.riemannian_gradient(x, np.tile(g[0], (20, 1))) * v, axis=1),
                               atol=1e-8)


def test_volumes_and_uniform_sampling():
    assert Hypersphere(1).volume() == pytest.approx(2 * math.pi)
    assert Hypersphere(2).volume() == pytest.approx(4 * math.pi)
    assert Hypersphere(3).volume() == pytest.approx(2 * math.pi**2)
    assert FlatTorus(2).volume() == pytest.approx(4 * math.pi**2)
    x = Hypersphere(2).random_uniform(40000, 0)
    # uniform on S^2: each coordinate is uniform on [-1, 1] (Archimedes), mean 0, variance 1/3
    assert np.all(np.abs(x.mean(0)) < 5 * math.sqrt(1 / 3 / 40000))
    assert np.all(np.abs((x**2).mean(0) - 1 / 3) < 5 * math.sqrt(4 / 45 / 40000))
    np.testing.assert_allclose(Hypersphere(2).uniform_log_density(x[:3]), -math.log(4 * math.pi))


def test_product_quadrature_integrates_harmonics():
    nodes, weights = Hypersphere(2).product_quadrature(10)
    assert weights.sum() == pytest.approx(4 * math.pi, rel=1e-14)
    np.testing.assert_allclose(np.linalg.norm(nodes, axis=1), 1.0, atol=1e-15)
    # int x_3^2 = 4 pi / 3, int x_1^2 x_2^2 = 4 pi / 15 (degrees 2 and 4 < 2 * 10)
    assert np.sum(weights * nodes[:, 2] ** 2) == pytest.approx(4 * math.pi / 3, rel=1e-13)
    assert np.sum(weights * nodes[:, 0] ** 2 * nodes[:, 1] ** 2) == pytest.approx(4 * math.pi / 15, rel=1e-13)
    with pytest.raises(ValueError, match="S\\^2"):
        Hypersphere(3).product_quadrature(4)


def test_euclidean_is_the_flat_reference():
    space = Euclidean(2)
    rng = np.random.default_rng(6)
    x, v = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    np.testing.assert_allclose(space.log(x, space.exp(x, v)), v)
    assert space.volume() == math.inf
    log_p, grad = space.log_heat_kernel_and_gradient(x, x + v, 0.3)
    np.testing.assert_allclose(log_p, -np.sum(v**2, 1) / 1.2 - math.log(4 * math.pi * 0.3))
    np.testing.assert_allclose(grad, v / 0.6)
    with pytest.raises(ValueError, match="infinite volume"):
        space.random_uniform(3)


def test_off_manifold_points_are_rejected_with_their_distance():
    sphere = Hypersphere(2)
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.5, 0.0]])
    with pytest.raises(ValueError, match=r"queries: .*row 1 is at distance 0\.5"):
        sphere.check_points(x, "queries")
    snapped = sphere.check_points(np.array([[1.0 + 1e-9, 0.0, 0.0]]), "x")
    assert np.linalg.norm(snapped) == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_array_equal(sphere.belongs(x), [True, False])
    with pytest.raises(ValueError, match=r"X: .*distance 1"):
        FlatTorus(2).check_points(np.array([[0.0, math.pi + 1.0]]), "X")
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(3,\)"):
        sphere.check_points(np.ones((2, 2)), "x")
    with pytest.raises(ValueError, match="non-finite"):
        sphere.check_points(np.array([[np.nan, 0, 1.0]]), "x")
    with pytest.raises(ValueError, match="origin"):
        sphere.proj(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        Hypersphere(0)
    with pytest.raises(ValueError, match="d: expected a positive integer"):
        FlatTorus(1.5)


def test_float32_is_kept():
    sphere = Hypersphere(2)
    x = sphere.random_uniform(4, 0, dtype=np.float32)
    assert x.dtype == np.float32
    assert sphere.exp(x, sphere.to_tangent(x, x[::-1])).dtype == np.float32
    log_p, grad = sphere.log_heat_kernel_and_gradient(x, x[::-1], 0.1)
    assert log_p.dtype == np.float32 and grad.dtype == np.float32
