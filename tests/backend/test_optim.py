"""The library's one Adam against the published update (Kingma and Ba, arXiv 1412.6980, Algorithm 1)."""
import numpy as np
import pytest

from opdiff.backend.optim import Adam


def reference_adam(theta, grads, lr, b1, b2, eps):
    """Algorithm 1 written out with its own moment variables."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return theta


def test_matches_algorithm_1_and_keeps_float32():
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 2)), rng.standard_normal(4).astype(np.float32)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in start] for _ in range(5)]
    params = [p.copy() for p in start]
    adam = Adam(params, lr=0.1, betas=(0.8, 0.99), eps=1e-6)
    for g in grads:
        adam.step(g)
    assert adam.step_count == 5 and params[1].dtype == np.float32
    for k in range(2):
        expected = reference_adam(start[k].astype(np.float64), [g[k] for g in grads], 0.1, 0.8, 0.99, 1e-6)
        # float64: the same operations in the same order; float32: a few ulps of values of size ~1
        np.testing.assert_allclose(params[k], expected, rtol=0, atol=1e-15 if k == 0 else 2e-6)


def test_maximize_ascends_and_minimises_a_quadratic():
    x = [np.array([3.0, -2.0])]
    adam = Adam(x, lr=0.05)
    for _ in range(400):
        adam.step([2.0 * x[0]])
    assert np.max(np.abs(x[0])) < 0.05  # Adam's steps are ~lr near the optimum
    y = [np.array([1.0])]
    Adam(y, lr=0.1, maximize=True).step([np.array([1.0])])
    np.testing.assert_allclose(y[0], 1.1, rtol=0, atol=2e-9)  # first step: lr g / (|g| + eps), eps = 1e-8


def test_neural_adam_is_the_same_update():
    from opdiff.neural import MLP
    from opdiff.neural.optim import Adam as NeuralAdam

    net = MLP(2, hidden=(4,), rng=0)
    copy = [p.copy() for _, _, p in net.parameters()]
    optimiser, reference = NeuralAdam(net, lr=0.01), Adam(copy, lr=0.01)
    for layer in net.layers:
        for key in layer.params:
            layer.grads[key] = np.ones_like(layer.params[key])
    optimiser.step()
    reference.step([np.ones_like(p) for p in copy])
    for (_, _, p), q in zip(net.parameters(), copy):
        np.testing.assert_array_equal(p, q)


def test_bad_inputs():
    with pytest.raises(ValueError, match="lr"):
        Adam([np.zeros(2)], lr=0.0)
    with pytest.raises(ValueError, match="betas"):
        Adam([np.zeros(2)], betas=(0.9, 1.0))
    adam = Adam([np.zeros(2)])
    with pytest.raises(ValueError, match="grads: expected 1 arrays"):
        adam.step([])
    with pytest.raises(ValueError, match="grads: expected shape"):
        adam.step([np.zeros(3)])
    assert adam.step_count == 0


def test_state_and_load_state_continue_bit_for_bit():
    rng = np.random.default_rng(1)
    start = [rng.standard_normal((3, 2)), rng.standard_normal(4).astype(np.float32)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in start] for _ in range(6)]
    params = [p.copy() for p in start]
    adam = Adam(params, lr=0.1)
    fresh = adam.state()
    assert fresh["step_count"] == 0 and all(not np.any(m) for m in fresh["first_moments"] + fresh["second_moments"])
    for g in grads[:3]:
        adam.step(g)
    state = adam.state()
    assert state["step_count"] == 3 and state["first_moments"][1].dtype == np.float32
    resumed_params = [p.copy() for p in params]
    resumed = Adam(resumed_params, lr=0.1)
    resumed.load_state(state)
    state["first_moments"][0][...] = np.nan  # a copy: the loaded optimiser does not see later changes
    for g in grads[3:]:
        adam.step(g)
        resumed.step(g)
    assert resumed.step_count == 6
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(p, q)


def test_load_state_names_what_does_not_fit():
    adam = Adam([np.zeros(3)])
    state = adam.state()
    with pytest.raises(TypeError, match="^state:"):
        adam.load_state([1, 2])
    with pytest.raises(ValueError, match="^state:"):
        adam.load_state({"step_count": 0})
    with pytest.raises(ValueError, match="^state:"):
        adam.load_state({**state, "first_moments": [np.zeros(4)]})
    with pytest.raises(ValueError, match="^state:"):
        adam.load_state({**state, "first_moments": [np.zeros(4)], "second_moments": [np.zeros(4)]})
    with pytest.raises(ValueError, match="^step_count:"):
        adam.load_state({**state, "step_count": -1})
