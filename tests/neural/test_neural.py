"""Torch-free networks: backward passes against finite differences, training, adapters."""
import numpy as np
import pytest

from opdiff.datasets import GaussianMixture
from opdiff.neural import MLP, Adam, NeuralScoreModel, ScoreAdapter
from opdiff.processes import OrnsteinUhlenbeck, VPSDE


def _loss(net, x, c, target):
    return 0.5 * np.sum((net.forward(x, c) - target) ** 2)


@pytest.mark.parametrize("activation", ["silu", "tanh"])
def test_backward_matches_finite_differences(activation):
    rng = np.random.default_rng(0)
    net = MLP(3, hidden=(7, 5), time_features=4, activation=activation, rng=1)
    x, c, target = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=(6, 3))
    out = net.forward(x, c)
    grad_x = net.backward(out - target)
    h = 1e-6
    # central differences: truncation O(h^2) ~ 1e-12, round-off ~ 1e-16 * |loss| / h ~ 1e-10
    for (layer, name, param), (_, _, grad) in zip(net.parameters(), net.gradients()):
        flat = param.reshape(-1)
        for index in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + h
            up = _loss(net, x, c, target)
            flat[index] = saved - h
            down = _loss(net, x, c, target)
            flat[index] = saved
            assert grad.reshape(-1)[index] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8)
    for i, j in [(0, 0), (3, 2), (5, 1)]:
        e = np.zeros_like(x)
        e[i, j] = h
        fd = (_loss(net, x + e, c, target) - _loss(net, x - e, c, target)) / (2 * h)
        assert grad_x[i, j] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_adam_minimises_a_quadratic():
    class Quadratic:
        def __init__(self):
            self.w = np.array([3.0, -2.0])

        def parameters(self):
            return [(0, "w", self.w)]

        def gradients(self):
            return [(0, "w", 2.0 * (self.w - np.array([1.0, 1.0])))]

    model = Quadratic()
    optimiser = Adam(model, lr=0.05)
    for _ in range(2000):
        optimiser.step()
    np.testing.assert_allclose(model.w, [1.0, 1.0], atol=1e-3)


def test_dsm_training_learns_the_mixture_score():
    mixture = GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.0]], 0.1)
    process = VPSDE()
    model = NeuralScoreModel(process, hidden=(32, 32), n_steps=600, batch_size=128, rng=0).fit(mixture.sample(4000, 0))
    xt = process.sample(mixture.sample(2000, 1), 0.3, rng=2)
    exact = mixture.score(xt, 0.3, process)
    relative_fisher = np.mean(np.sum((model.score(xt, 0.3) - exact) ** 2, 1)) / np.mean(np.sum(exact**2, 1))
    print(f"relative Fisher divergence after 600 steps: {relative_fisher:.4f}")
    # an untrained network (eps_hat ~ 0, score ~ 0) has relative Fisher divergence ~ 1
    assert relative_fisher < 0.2
    assert model.losses_[-100:].mean() < model.losses_[:50].mean()
    # Tweedie: D = (x + Sigma s) / a for both the network and the exact mixture (its own closed-form
    # posterior mean), so their gap is Sigma / a times the score gap, row by row, to round-off
    Phi, Sigma = process.transition(0.3)
    gap = model.denoise(xt[:5], 0.3) - mixture.denoise(xt[:5], 0.3, process)
    np.testing.assert_allclose(gap, Sigma.c / Phi.c * (model.score(xt[:5], 0.3) - exact[:5]), rtol=1e-8, atol=1e-12)


def test_float32_is_kept():
    X = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    model = NeuralScoreModel(OrnsteinUhlenbeck(), hidden=(8,), n_steps=5, batch_size=16, rng=0).fit(X)
    assert model.score(X[:3], 0.5).dtype == np.float32


@pytest.mark.parametrize("output", ["score", "noise", "denoiser"])
def test_adapter_recovers_the_exact_score(output):
    mixture = GaussianMixture([0.3, 0.7], [[-1.0], [2.0]], [0.2, 0.4])
    process = VPSDE()
    x = np.linspace(-3, 3, 7)[:, None]
    t = np.full(7, 0.4)
    Phi, Sigma = process.transition(t)
    exact = mixture.score(x, 0.4, process)
    functions = {
        "score": lambda x, t: mixture.score(x, float(t[0]), process),
        "noise": lambda x, t: -Sigma.cholesky().transpose().apply(mixture.score(x, float(t[0]), process)),
        "denoiser": lambda x, t: mixture.denoise(x, float(t[0]), process),
    }
    adapter = ScoreAdapter(functions[output], process, output=output)
    np.testing.assert_allclose(adapter.score(x, t), exact, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(adapter.denoise(x, t), mixture.denoise(x, 0.4, process), rtol=1e-10, atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="dim"):
        MLP(0)
    with pytest.raises(ValueError, match="time_features"):
        MLP(2, time_features=3)
    with pytest.raises(ValueError, match="activation"):
        MLP(2, activation="relu6")
    model = NeuralScoreModel(VPSDE())
    with pytest.raises(ValueError, match="not fitted"):
        model.score(np.zeros((2, 2)), 0.5)
    with pytest.raises(ValueError, match="X"):
        model.fit(np.full((10, 2), np.inf))
    with pytest.raises(ValueError, match="output"):
        ScoreAdapter(lambda x, t: x, VPSDE(), output="velocity")
    with pytest.raises(TypeError, match="function"):
        ScoreAdapter(3, VPSDE())
    adapter = ScoreAdapter(lambda x, t: np.full_like(x, np.nan), VPSDE())
    with pytest.raises(ValueError, match="non-finite"):
        adapter.score(np.zeros((2, 2)), 0.5)
