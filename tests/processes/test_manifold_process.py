"""ManifoldBrownianMotion: convention, transitions, DSM target, exact sampling, prior, validation."""
import math

import numpy as np
import pytest

from opdiff.manifolds import Euclidean, FlatTorus, Hypersphere
from opdiff.processes import BrownianMotion, ManifoldBrownianMotion


def test_convention_matches_the_euclidean_brownian_motion():
    # dX = sigma dW on R^d: transition N(x, sigma^2 t I), as opdiff.processes.BrownianMotion(sigma)
    rng = np.random.default_rng(0)
    x0, xt = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    for sigma in (0.5, 2.0):
        ours = ManifoldBrownianMotion(Euclidean(3), sigma=sigma, T=4.0)
        theirs = BrownianMotion(sigma=sigma, T=4.0)
        np.testing.assert_allclose(ours.transition_logpdf(xt, x0, 0.7), theirs.transition_logpdf(xt, x0, 0.7), rtol=1e-12)
        np.testing.assert_allclose(ours.transition_score(xt, x0, 0.7), theirs.transition_score(xt, x0, 0.7), rtol=1e-12)


def test_circle_and_one_torus_give_the_same_process():
    a, b = np.array([[0.3], [-2.0]]), np.array([[3.0], [1.0]])
    circle = lambda angle: np.concatenate([np.cos(angle), np.sin(angle)], axis=1)  # noqa: E731
    on_circle = ManifoldBrownianMotion(Hypersphere(1), sigma=0.7)
    on_torus = ManifoldBrownianMotion(FlatTorus(1), sigma=0.7)
    assert on_circle.t_max == pytest.approx(on_torus.t_max)
    np.testing.assert_allclose(on_circle.transition_logpdf(circle(a), circle(b), 0.9),
                               on_torus.transition_logpdf(a, b, 0.9), atol=1e-12)


@pytest.mark.parametrize("manifold", [Hypersphere(2), FlatTorus(2)], ids=repr)
def test_transition_score_is_the_gradient_of_transition_logpdf(manifold):
    process = ManifoldBrownianMotion(manifold, sigma=1.5)
    rng = np.random.default_rng(1)
    x0 = manifold.random_uniform(6, rng)
    t = 0.05
    xt = process.sample(x0, t, rng)
    v = manifold.random_tangent_normal(xt, rng)
    eps = 1e-6
    fd = (process.transition_logpdf(manifold.exp(xt, eps * v), x0, t)
          - process.transition_logpdf(manifold.exp(xt, -eps * v), x0, t)) / (2 * eps)
    np.testing.assert_allclose(fd, np.sum(process.transition_score(xt, x0, t) * v, axis=1), rtol=1e-6, atol=1e-6)


def test_samples_follow_the_transition_per_row_times():
    # E[x0 . X_t] = exp(-2 s(t)) on S^2 (degree-1 harmonic), one time per row; 5 standard errors
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere, sigma=1.0)
    x0 = np.repeat(sphere.random_uniform(1, 2), 6000, axis=0)
    t = np.repeat([0.02, 0.4], 3000)
    xt = process.sample(x0, t, 3)
    c = np.sum(xt * x0, axis=1)
    for value in (0.02, 0.4):
        rows = t == value
        expected = math.exp(-2 * float(process.heat_time(value)))
        assert abs(c[rows].mean() - expected) < 5 * c[rows].std() / math.sqrt(rows.sum())


def test_geometric_schedule_heat_time_and_diffusion():
    process = ManifoldBrownianMotion(FlatTorus(2), sigma=0.05, schedule="geometric", sigma_max=3.0)
    t = np.array([0.1, 0.5, 0.9])
    h = 1e-6
    # d s / dt = g(t)^2 / 2 (finite differences, O(h^2))
    ds = (process.heat_time(t + h) - process.heat_time(t - h)) / (2 * h)
    np.testing.assert_allclose(ds, 0.5 * process.diffusion_coefficient(t) ** 2, rtol=1e-7)
    np.testing.assert_allclose(process.time_at_heat_time(process.heat_time(t)), t, rtol=1e-12)
    assert float(process.heat_time(1.0)) == pytest.approx((3.0**2 - 0.05**2) / 2)


def test_prior_is_uniform_and_default_horizon_mixes():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere, sigma=2.0)
    # exp(-gap * s(T)) = 1e-3 with gap = 2 on S^2
    assert math.exp(-2 * float(process.heat_time(process.t_max))) == pytest.approx(1e-3)
    prior = process.prior()
    x = prior.sample(5, rng=0)
    np.testing.assert_allclose(prior.log_density(x), -math.log(4 * math.pi))
    np.testing.assert_array_equal(prior.score(x), 0.0)
    np.testing.assert_array_equal(process.drift(x, 0.3), 0.0)
    assert float(process.diffusion(0.3).apply(np.ones((1, 3)))[0, 0]) == pytest.approx(2.0)


def test_bad_inputs():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere)
    x = sphere.random_uniform(3, 0)
    with pytest.raises(ValueError, match=r"x0: .*distance"):
        process.sample(2 * x, 0.1)
    with pytest.raises(ValueError, match=r"xt: .*distance"):
        process.transition_logpdf(2 * x, x, 0.1)
    with pytest.raises(ValueError, match="t: expected times"):
        process.sample(x, 0.0)
    with pytest.raises(ValueError, match="xt: expected 3 rows"):
        process.transition_score(x[:2], x, 0.1)
    with pytest.raises(ValueError, match="sigma_max"):
        ManifoldBrownianMotion(sphere, sigma=1.0, schedule="geometric")
    with pytest.raises(ValueError, match="T: required"):
        ManifoldBrownianMotion(Euclidean(2))
    with pytest.raises(ValueError, match="uniform prior needs a compact"):
        ManifoldBrownianMotion(Euclidean(2), T=1.0).prior()
    with pytest.raises(ValueError, match="schedule"):
        ManifoldBrownianMotion(sphere, schedule="cosine")
