"""Manifold samplers with an exact score: the forward marginal of a wrapped normal on the torus
(again a wrapped normal) and of a point mass on the sphere (the heat kernel)."""
import math

import numpy as np
import pytest

from opdiff.datasets import WrappedNormalMixture
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.processes import ManifoldBrownianMotion
from opdiff.sampling import sample_manifold_probability_flow, sample_manifold_reverse_sde, uniform_time_grid

SIGMA0, MU = 0.4, 1.0


def _torus_setup():
    process = ManifoldBrownianMotion(FlatTorus(1), sigma=1.0, T=2.0)

    def marginal(t):  # wrap(N(MU, SIGMA0^2)) pushed by BM: variance SIGMA0^2 + t
        return WrappedNormalMixture([[MU]], [math.sqrt(SIGMA0**2 + t)])

    def score(x, t):
        return marginal(t).score(x)

    return process, marginal, score


@pytest.mark.parametrize("sampler", ["sde", "ode_euler", "ode_heun"])
def test_samplers_reach_the_marginal_at_t_min_on_the_torus(sampler):
    process, marginal, score = _torus_setup()
    t_min = 0.05
    start = marginal(2.0).sample(4000, 0)  # exact law at T
    times = uniform_time_grid(process, 200, t_min)
    if sampler == "sde":
        run = sample_manifold_reverse_sde(score, start, times, process=process, rng=1, noise_last=True, record=True)
    else:
        run = sample_manifold_probability_flow(score, start, times, process=process, method=sampler[4:],
                                               record=True)
    x = run.x[:, 0]
    assert np.all((run.samples >= -math.pi) & (run.samples < math.pi))
    c = np.cos(x - MU)  # E cos(X - MU) = exp(-(SIGMA0^2 + t_min) / 2)
    expected = math.exp(-(SIGMA0**2 + t_min) / 2)
    # Monte Carlo (5 SE) plus the O(dt) discretisation bias of 200 steps (dt = 0.01)
    assert abs(c.mean() - expected) < 5 * c.std() / math.sqrt(c.size) + 0.01
    assert run.nfe == (400 if sampler == "ode_heun" else 200)


def test_points_stay_on_the_sphere_and_the_sde_concentrates_on_the_source():
    sphere = Hypersphere(2)
    process = ManifoldBrownianMotion(sphere, sigma=1.0, T=2.0)
    source = np.array([[0.0, 0.6, 0.8]])

    def score(x, t):  # exact score of the heat kernel started at the source
        return sphere.log_heat_kernel_and_gradient(x, np.repeat(source, x.shape[0], 0), process.heat_time(t))[1]

    times = uniform_time_grid(process, 150, 0.02)
    run = sample_manifold_reverse_sde(score, process.prior().sample(2000, rng=2), times, process=process, rng=3,
                                      noise_last=True, record=True)
    assert np.max(np.abs(np.linalg.norm(run.samples, axis=-1) - 1.0)) < 1e-12
    c = run.x @ source[0]
    expected = math.exp(-2 * float(process.heat_time(0.02)))  # E[x . source] at t_min
    # the prior at T = 2 is uniform to exp(-2 s(T)) = 0.14: that much mass of the start is misplaced,
    # and the reverse dynamics inherits it only through the score, which pulls everything in
    assert abs(c.mean() - expected) < 0.02


def test_bad_inputs():
    process, marginal, score = _torus_setup()
    x = marginal(2.0).sample(3, 0)
    with pytest.raises(ValueError, match="times"):
        sample_manifold_reverse_sde(score, x, [0.1, 0.5], process=process)
    with pytest.raises(ValueError, match="times"):
        sample_manifold_reverse_sde(score, x, [5.0, 0.5], process=process)
    with pytest.raises(ValueError, match=r"x: .*distance"):
        sample_manifold_probability_flow(score, x + 10.0, [1.0, 0.5], process=process)
    with pytest.raises(ValueError, match="method"):
        sample_manifold_probability_flow(score, x, [1.0, 0.5], process=process, method="rk4")
    with pytest.raises(TypeError, match="manifold process"):
        sample_manifold_reverse_sde(score, x, [1.0, 0.5], process=object())
    with pytest.raises(ValueError, match="score: expected an output of shape"):
        sample_manifold_reverse_sde(lambda y, t: y[:1], x, [1.0, 0.5], process=process)
