"""Training steps per second of opdiff's torch-free networks against the same networks in PyTorch (CPU).

``NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_neural.py --benchmark-enable -p no:cacheprovider -s``

One training step = forward, the DSM-style squared loss against a fixed target, backward, one Adam update,
on the same batch, for:

- the MLP of ``NeuralScoreModel`` on 2-D points: ``MLP(2, (128, 128))`` (16 time features, SiLU), batch 256;
- the small U-Net on the 8 x 8 digits: ``UNet(1, base_width=32, levels=2)``, batch 64, float32.

The PyTorch twins are built layer for layer and receive opdiff's initial weights; each case first checks
that both give the same output (so the same network is timed). Both sides run on one BLAS / intra-op thread
(``threadpoolctl`` for NumPy, ``torch.set_num_threads(1)``): the machine is shared, and one thread is what a
2-core box gives each of two jobs. torch is not a dependency of opdiff: without it the torch rows are
skipped with the reason, the opdiff rows still run.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from opdiff.datasets.images import load_digits_images
from opdiff.neural import MLP, Adam, UNet
from opdiff.neural.mlp import fourier_time_features

MLP_BATCH, UNET_BATCH, LR = 256, 64, 1e-3


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed (it is the peer of this benchmark, "
                                               "never an opdiff dependency): pip install torch")


# ---------------------------------------------------------------------------------------------- problems
def mlp_problem(dtype=np.float64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(MLP_BATCH, 2)).astype(dtype)
    c = rng.normal(size=MLP_BATCH).astype(dtype)
    target = rng.normal(size=(MLP_BATCH, 2)).astype(dtype)
    return MLP(2, (128, 128), rng=1, dtype=dtype), x, c, target


def unet_problem(dtype=np.float32):
    x = load_digits_images(UNET_BATCH, rng=0).astype(dtype)
    c = np.linspace(-3, 3, UNET_BATCH).astype(dtype)
    target = np.random.default_rng(2).normal(size=x.shape).astype(dtype)
    return UNet(1, base_width=32, levels=2, rng=1, dtype=dtype), x, c, target


def opdiff_step(net, optimiser, x, c, target):
    out = net.forward(x, c)
    residual = out - target
    net.backward((2.0 / x.shape[0]) * residual, input_grad=False)  # as torch: no gradient for the data
    optimiser.step()
    return float(np.sum(residual * residual)) / x.shape[0]


# ---------------------------------------------------------------------------------------------- torch twins
def torch_mlp(net):
    torch = _torch()
    dense = [layer for layer in net.layers if "W" in layer.params]
    modules = []
    for k, layer in enumerate(dense):
        modules += [_copy_dense(torch, layer)] + ([torch.nn.SiLU()] if k < len(dense) - 1 else [])
    body = torch.nn.Sequential(*modules)
    half = net.time_features // 2
    frequencies = torch.arange(1, half + 1, dtype=body[0].weight.dtype) * 0.5

    def forward(x, c):
        angles = c[:, None] * frequencies[None, :]
        return body(torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1))

    return forward, list(body.parameters())


def _copied(torch, module, weight, bias):
    """``module`` with opdiff's ``weight`` and ``bias`` arrays copied in."""
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        module.bias.copy_(torch.from_numpy(bias))
    return module


def _copy_conv(torch, conv):
    W = conv.params["W"]
    module = torch.nn.Conv2d(conv.n_in, conv.n_out, conv.kernel_size, padding=conv.kernel_size // 2,
                             dtype=getattr(torch, W.dtype.name))
    return _copied(torch, module, W, conv.params["b"])


def _copy_norm(torch, norm):
    gamma = norm.params["gamma"]
    module = torch.nn.GroupNorm(norm.groups, norm.channels, eps=norm.eps, dtype=getattr(torch, gamma.dtype.name))
    return _copied(torch, module, gamma, norm.params["beta"])


def _copy_dense(torch, dense):
    W = dense.params["W"]
    return _copied(torch, torch.nn.Linear(*W.shape, dtype=getattr(torch, W.dtype.name)), W.T, dense.params["b"])


def torch_unet(net):
    """The U-Net of :class:`opdiff.neural.UNet`, layer for layer, with its weights."""
    torch = _torch()
    F = torch.nn.functional

    class Block(torch.nn.Module):
        def __init__(self, block):
            super().__init__()
            self.norm1, self.conv1 = _copy_norm(torch, block.norm1), _copy_conv(torch, block.conv1)
            self.time = _copy_dense(torch, block.time)
            self.norm2, self.conv2 = _copy_norm(torch, block.norm2), _copy_conv(torch, block.conv2)
            self.skip = _copy_conv(torch, block.skip) if block.skip is not None else None

        def forward(self, x, embedding):
            h = self.conv1(F.silu(self.norm1(x))) + self.time(embedding)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return h + (x if self.skip is None else self.skip(x))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.time_dense, self.conv_in = _copy_dense(torch, net.time_dense), _copy_conv(torch, net.conv_in)
            self.down = torch.nn.ModuleList(Block(b) for b in net.down)
            self.middle = Block(net.middle)
            self.up = torch.nn.ModuleList(Block(b) for b in net.up)
            self.norm_out, self.conv_out = _copy_norm(torch, net.norm_out), _copy_conv(torch, net.conv_out)
            half = net.time_features // 2
            self.register_buffer("frequencies", torch.arange(1, half + 1, dtype=self.conv_in.weight.dtype) * 0.5)

        def forward(self, x, c):
            angles = c[:, None] * self.frequencies[None, :]
            embedding = F.silu(self.time_dense(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)))
            h, skips = self.conv_in(x), []
            for level, block in enumerate(self.down):
                h = block(h, embedding)
                skips.append(h)
                if level < net.levels - 1:
                    h = F.avg_pool2d(h, 2)
            h = self.middle(h, embedding)
            for level in reversed(range(net.levels)):
                h = self.up[level](torch.cat([h, skips[level]], dim=1), embedding)
                if level > 0:
                    h = F.interpolate(h, scale_factor=2, mode="nearest")
            return self.conv_out(F.silu(self.norm_out(h)))

    module = Net()
    return module, list(module.parameters())


def torch_step(forward, optimiser, x, c, target):
    torch = _torch()
    optimiser.zero_grad(set_to_none=True)
    out = forward(x, c)
    loss = ((out - target) ** 2).sum() / x.shape[0]
    loss.backward()
    optimiser.step()
    return loss.item()


# ---------------------------------------------------------------------------------------------- cases
CASES = {"mlp": (mlp_problem, torch_mlp), "unet": (unet_problem, torch_unet)}


@pytest.mark.parametrize("implementation", ["opdiff", "torch"])
@pytest.mark.parametrize("case", ["mlp", "unet"])
def test_training_step(benchmark, case, implementation):
    make_problem, make_twin = CASES[case]
    net, x, c, target = make_problem()
    benchmark.group = f"training step: {case} (one thread)"
    if implementation == "opdiff":
        optimiser = Adam(net, lr=LR)
        with threadpool_limits(1, user_api="blas"):
            loss = benchmark(opdiff_step, net, optimiser, x, c, target)
    else:
        torch = _torch()
        torch.set_num_threads(1)
        forward, params = make_twin(net)
        tx, tc, tt = (torch.from_numpy(a) for a in (x, c, target))
        with torch.no_grad():  # the same network: same output to rounding
            reference = net.forward(x, c)
            np.testing.assert_allclose(forward(tx, tc).numpy(), reference, rtol=1e-4, atol=1e-4)
        optimiser = torch.optim.Adam(params, lr=LR)
        loss = benchmark(torch_step, forward, optimiser, tx, tc, tt)
    assert np.isfinite(loss)
    if benchmark.stats:
        print(f"\n{case} {implementation}: {1.0 / benchmark.stats.stats.median:.0f} steps/s")


def test_time_features_match_the_twin():
    """The twins' sinusoidal features are opdiff's (so the MLP comparison is like for like)."""
    c = np.linspace(-2, 2, 5)
    features = fourier_time_features(c, 16)
    half = np.arange(1, 9) * 0.5
    np.testing.assert_allclose(features, np.concatenate([np.sin(c[:, None] * half), np.cos(c[:, None] * half)], 1))


@pytest.mark.parametrize("case", ["mlp", "unet"])
def test_interleaved_ratio(case):
    """opdiff and PyTorch steps alternated in one loop: both see the same machine load (the shared box's load
    drifts over the seconds that pytest-benchmark spends on one row); prints the median of per-pair ratios."""
    import time

    torch = _torch()
    torch.set_num_threads(1)
    make_problem, make_twin = CASES[case]
    net, x, c, target = make_problem()
    forward, params = make_twin(net)
    optimiser, torch_optimiser = Adam(net, lr=LR), torch.optim.Adam(params, lr=LR)
    tx, tc, tt = (torch.from_numpy(a) for a in (x, c, target))
    pairs = {"mlp": 300, "unet": 20}[case]
    ours, theirs = [], []
    with threadpool_limits(1, user_api="blas"):
        for _ in range(pairs + 2):
            start = time.perf_counter()
            opdiff_step(net, optimiser, x, c, target)
            middle = time.perf_counter()
            torch_step(forward, torch_optimiser, tx, tc, tt)
            ours.append(middle - start)
            theirs.append(time.perf_counter() - middle)
    ours, theirs = np.array(ours[2:]), np.array(theirs[2:])  # the first pairs warm caches and buffers
    print(f"\n{case}: opdiff {1 / np.median(ours):.1f} steps/s, torch {1 / np.median(theirs):.1f} steps/s, "
          f"median per-pair time ratio opdiff/torch {np.median(ours / theirs):.2f}")
    assert np.all(np.isfinite(ours))
