"""Image layers and the U-Net: forward against independent routes, backward against finite differences,
DSM training on the 8 x 8 digits against the exact score of their empirical law (DKS)."""
import numpy as np
import pytest
from scipy.signal import correlate

from opdiff.datasets.images import load_digits_images
from opdiff.estimators.kernel_smoother import DiffusionKernelSmoother
from opdiff.neural import MLP, NeuralScoreModel
from opdiff.neural.conv import AvgPool2, Conv2d, GroupNorm, Upsample2
from opdiff.neural.unet import ResidualBlock, UNet
from opdiff.processes import VPSDE, StationaryLinearSDE

# Central differences with h = 1e-5 on float64: truncation h^2 |f'''| / 6 ~ 1e-10 (|f'''| = O(10) for the
# GroupNorm / SiLU nonlinearities at these sizes; zero for the linear layers), round-off
# ~ 1e-16 |loss| / h ~ 1e-10 for |loss| = O(10). ATOL = 1e-7 leaves a margin of ~1000 over both.
H, ATOL, RTOL = 1e-5, 1e-7, 1e-6


def _numerical_gradient(loss, array, index=None):
    """Central differences of ``loss()`` with respect to ``array`` (modified in place and restored)."""
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array)
    index = range(flat.size) if index is None else index
    out = []
    for i in index:
        saved = flat[i]
        flat[i] = saved + H
        up = loss()
        flat[i] = saved - H
        down = loss()
        flat[i] = saved
        out.append((up - down) / (2 * H))
    return np.array(out)


def _check_layer(layer, x, *extra):
    """Loss ``<layer(x), R>`` for a random ``R``: its gradient is ``backward(R)``; compare every entry."""
    rng = np.random.default_rng(1)
    weights = rng.normal(size=layer.forward(x, *extra).shape)

    def loss():
        return float(np.sum(layer.forward(x, *extra) * weights))

    loss()
    grads = layer.backward(weights)
    grad_x = grads[0] if isinstance(grads, tuple) else grads
    errors = {"x": np.max(np.abs(grad_x.reshape(-1) - _numerical_gradient(loss, x)))}
    np.testing.assert_allclose(grad_x.reshape(-1), _numerical_gradient(loss, x), rtol=RTOL, atol=ATOL)
    for extra_array, extra_grad in zip(extra, grads[1:] if isinstance(grads, tuple) else ()):
        np.testing.assert_allclose(extra_grad.reshape(-1), _numerical_gradient(loss, extra_array),
                                   rtol=RTOL, atol=ATOL)
    for sub in getattr(layer, "layers", [layer]):
        for name, param in sub.params.items():
            numerical = _numerical_gradient(loss, param)
            np.testing.assert_allclose(np.asarray(sub.grads[name]).reshape(-1), numerical, rtol=RTOL, atol=ATOL)
            errors[name] = max(errors.get(name, 0.0), np.max(np.abs(sub.grads[name].reshape(-1) - numerical)))
    return errors


# ---------------------------------------------------------------------------------------------- layers
@pytest.mark.parametrize("kernel_size", [1, 3])
def test_conv_forward_matches_scipy_correlation(kernel_size):
    rng = np.random.default_rng(0)
    conv = Conv2d(3, 2, kernel_size, rng)
    conv.params["b"][:] = rng.normal(size=2)
    x = rng.normal(size=(2, 3, 5, 6))
    out = conv.forward(x)
    for n in range(2):
        for o in range(2):
            # zero-padded 'same' cross-correlation summed over input channels
            expected = sum(correlate(x[n, c], conv.params["W"][o, c], mode="same") for c in range(3))
            np.testing.assert_allclose(out[n, o], expected + conv.params["b"][o], rtol=1e-12, atol=1e-12)


def test_pool_upsample_and_groupnorm_forward():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 6))
    pooled = AvgPool2().forward(x)
    np.testing.assert_allclose(pooled[1, 2, 1, 2], x[1, 2, 2:4, 4:6].mean(), rtol=1e-14)
    np.testing.assert_array_equal(Upsample2().forward(pooled)[0, 3], np.kron(pooled[0, 3], np.ones((2, 2))))
    normalised = GroupNorm(4, 2).forward(3.0 + 2.0 * x).reshape(2, 2, -1)
    np.testing.assert_allclose(normalised.mean(axis=2), 0.0, atol=1e-12)
    np.testing.assert_allclose(normalised.var(axis=2), 1.0, rtol=1e-4)  # eps = 1e-5 against var ~ 4


@pytest.mark.parametrize("layer", ["conv3", "conv1", "pool", "upsample", "groupnorm"])
def test_layer_backward_matches_finite_differences(layer):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 6))
    layers = {"conv3": lambda: Conv2d(4, 3, 3, rng), "conv1": lambda: Conv2d(4, 3, 1, rng),
              "pool": AvgPool2, "upsample": Upsample2, "groupnorm": lambda: GroupNorm(4, 2)}
    built = layers[layer]()
    for name in built.params:  # non-trivial biases, scales and shifts
        built.params[name][:] = rng.normal(size=built.params[name].shape)
    errors = _check_layer(built, x)
    print(layer, {k: f"{v:.1e}" for k, v in errors.items()})


@pytest.mark.parametrize("n_in, n_out", [(4, 4), (2, 4)])
def test_residual_block_backward_matches_finite_differences(n_in, n_out):
    rng = np.random.default_rng(0)
    block = ResidualBlock(n_in, n_out, 3, rng, np.float64)
    block.conv2.params["W"] *= 10.0  # undo the small initialisation so every path matters
    x, embedding = rng.normal(size=(2, n_in, 4, 4)), rng.normal(size=(2, 3))
    errors = _check_layer(block, x, embedding)
    print(f"residual block {n_in}->{n_out}: max |backward - FD| = {max(errors.values()):.1e}")


# ---------------------------------------------------------------------------------------------- U-Net
def _tiny_unet(levels=2, dtype=np.float64):
    net = UNet(2, base_width=4, levels=levels, time_features=4, rng=1, dtype=dtype)
    net.conv_out.params["W"] *= 30.0  # undo the near-zero output initialisation
    return net


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_unet_gradients_match_finite_differences(levels):
    rng = np.random.default_rng(0)
    net = _tiny_unet(levels)
    x, c = rng.normal(size=(2, 2, 4, 4)), rng.normal(size=2)
    weights = rng.normal(size=x.shape)

    def loss():
        return float(np.sum(net.forward(x, c) * weights))

    loss()
    grad_x = net.backward(weights)
    assert grad_x.shape == x.shape
    worst = np.max(np.abs(grad_x.reshape(-1) - _numerical_gradient(loss, x)))
    np.testing.assert_allclose(grad_x.reshape(-1), _numerical_gradient(loss, x), rtol=RTOL, atol=ATOL)
    for (_, _, param), (_, _, grad) in zip(net.parameters(), net.gradients()):
        index = rng.choice(param.size, size=min(3, param.size), replace=False)
        numerical = _numerical_gradient(loss, param, index)
        np.testing.assert_allclose(np.asarray(grad).reshape(-1)[index], numerical, rtol=RTOL, atol=ATOL)
        worst = max(worst, np.max(np.abs(np.asarray(grad).reshape(-1)[index] - numerical)))
    # every parameter at once: the derivative along a random unit direction (same FD error bounds)
    directions = [rng.normal(size=param.shape) for _, _, param in net.parameters()]
    norm = np.sqrt(sum(np.sum(d**2) for d in directions))
    directions = [d / norm for d in directions]
    predicted = sum(np.sum(np.asarray(g) * d) for (_, _, g), d in zip(net.gradients(), directions))

    def shifted(step):
        for (_, _, param), d in zip(net.parameters(), directions):
            param += step * d
        value = loss()
        for (_, _, param), d in zip(net.parameters(), directions):
            param -= step * d
        return value

    numerical = (shifted(H) - shifted(-H)) / (2 * H)
    assert predicted == pytest.approx(numerical, rel=RTOL, abs=ATOL)
    print(f"UNet levels={levels} ({sum(p.size for _, _, p in net.parameters())} parameters): "
          f"max |backward - FD| = {worst:.1e} (entries), {abs(predicted - numerical):.1e} (directional, "
          f"derivative {predicted:.2f})")


def test_unet_keeps_float32_and_shapes():
    net = _tiny_unet(levels=2, dtype=np.float32)
    x = np.random.default_rng(0).normal(size=(3, 2, 8, 4)).astype(np.float32)
    out = net.forward(x, np.zeros(3, np.float32))
    assert out.shape == x.shape and out.dtype == np.float32
    assert net.backward(out).dtype == np.float32
    assert all(np.asarray(g).dtype == np.float32 for _, _, g in net.gradients())
    assert len(net.parameters()) == len(net.gradients()) == len({(i, k) for i, k, _ in net.parameters()})


def test_bad_input():
    net = _tiny_unet(levels=3)
    with pytest.raises(ValueError, match="channels"):
        UNet(0)
    with pytest.raises(ValueError, match="time_features"):
        UNet(1, time_features=5)
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2d(1, 1, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="groups"):
        GroupNorm(6, 4)
    with pytest.raises(ValueError, match="x"):
        AvgPool2().forward(np.zeros((1, 1, 3, 4)))
    with pytest.raises(ValueError, match="x"):
        net.forward(np.zeros((2, 32)), np.zeros(2))
    with pytest.raises(ValueError, match="channels"):
        net.forward(np.zeros((2, 3, 8, 8)), np.zeros(2))
    with pytest.raises(ValueError, match="divisible"):
        net.forward(np.zeros((2, 2, 6, 6)), np.zeros(2))
    with pytest.raises(ValueError, match="conditioning"):
        net.forward(np.zeros((2, 2, 8, 8)), np.zeros(3))
    images = np.zeros((10, 1, 4, 4))
    with pytest.raises(ValueError, match="architecture"):
        NeuralScoreModel(VPSDE(), architecture="resnet", n_steps=2).fit(images)
    with pytest.raises(ValueError, match="X"):
        NeuralScoreModel(VPSDE(), architecture="unet", n_steps=2).fit(images.reshape(10, 16))
    with pytest.raises(ValueError, match="X"):
        NeuralScoreModel(VPSDE(), architecture="unet", n_steps=2).fit(np.full((10, 1, 4, 4), np.nan))
    model = NeuralScoreModel(VPSDE(), architecture="unet", n_steps=2, batch_size=4, rng=0).fit(images)
    with pytest.raises(ValueError, match="x"):
        model.score(np.zeros((2, 1, 4, 6)), 0.5)


# ---------------------------------------------------------------------------------------------- score model
def test_score_model_reshapes_images_for_every_architecture():
    images = load_digits_images(40, rng=0)[:, :, :4, :4]
    flat = images.reshape(40, 16)
    template = UNet(1, base_width=4, time_features=4, rng=0)
    saved = [p.copy() for _, _, p in template.parameters()]
    model = NeuralScoreModel(VPSDE(), architecture=template, n_steps=3, batch_size=8, rng=0).fit(images)
    assert model.network_ is not template  # the given network is copied, not trained in place
    assert all(np.array_equal(p, q) for (_, _, p), q in zip(template.parameters(), saved))
    score = model.score(images, 0.5)
    assert score.shape == images.shape and model.denoise(images, 0.5).shape == images.shape
    np.testing.assert_allclose(model.score(flat, 0.5), score.reshape(40, 16), rtol=1e-12)
    mlp = NeuralScoreModel(VPSDE(), hidden=(8,), n_steps=3, batch_size=8, rng=0).fit(images)
    assert isinstance(mlp.network_, MLP) and mlp.score(images, 0.5).shape == images.shape
    # CLD: position and velocity blocks become two channels of one (n, 2, 4, 4) network input
    cld = NeuralScoreModel(StationaryLinearSDE.cld(), architecture="unet", n_steps=2, batch_size=4, rng=0)
    cld.fit(images)
    assert cld.image_shape_ == (2, 4, 4) and cld.network_.channels == 2
    states = np.random.default_rng(1).normal(size=(3, 32))
    assert cld.score(states, 0.5).shape == (3, 32)


def test_dsm_training_on_digits_approaches_the_exact_empirical_score():
    digits = load_digits_images().astype(np.float32)  # 1797 images (n, 1, 8, 8) in [-1, 1]
    process = VPSDE()
    flat = digits.reshape(len(digits), -1).astype(np.float64)
    xt = process.sample(flat[:500], 0.5, rng=1)
    exact = DiffusionKernelSmoother(process).fit(flat).score(xt, 0.5)  # the exact score of the empirical law

    def relative_fisher(model):
        score = model.score(xt.astype(np.float32), 0.5)
        assert score.dtype == np.float32
        return np.mean(np.sum((score - exact) ** 2, 1)) / np.mean(np.sum(exact**2, 1))

    def model(n_steps, lr):
        return NeuralScoreModel(process, architecture=UNet(1, base_width=16, rng=0, dtype=np.float32),
                                n_steps=n_steps, batch_size=32, lr=lr, rng=0).fit(digits)

    trained = model(300, 2e-3)
    untrained = model(1, 1e-12)  # one step of negligible size: the initial network
    first, last = trained.losses_[:50].mean(), trained.losses_[-50:].mean()
    fisher_trained, fisher_untrained = relative_fisher(trained), relative_fisher(untrained)
    print(f"DSM loss {first:.2f} -> {last:.2f}; relative Fisher divergence to DKS at t = 0.5: "
          f"trained {fisher_trained:.4f}, untrained {fisher_untrained:.4f}")
    # the per-step loss has a standard error of ~0.3 over 50 steps (sd ~ 2 per batch); the drop is ~17
    assert last < 0.5 * first
    # the untrained network predicts eps ~ 0, i.e. a score ~ 0: relative Fisher divergence ~ 1
    assert fisher_untrained > 0.9
    assert fisher_trained < 0.05


@pytest.mark.gpu
def test_unet_on_cupy_matches_numpy():
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():
        pytest.skip("no CUDA GPU")
    x, c = np.random.default_rng(0).normal(size=(2, 2, 8, 8)), np.array([0.1, -0.3])
    cpu, gpu = _tiny_unet(), _tiny_unet().to(cupy)
    out = cpu.forward(x, c)
    np.testing.assert_allclose(cupy.asnumpy(gpu.forward(cupy.asarray(x), cupy.asarray(c))), out, rtol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(gpu.backward(cupy.asarray(out))), cpu.backward(out), rtol=1e-10)
