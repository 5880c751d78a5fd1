"""Throughput of the torch-free U-Net on the 8 x 8 digits, and of its im2col convolution against SciPy.

``OMP_NUM_THREADS=1 python -m pytest benchmarks/bench_unet.py --benchmark-enable -s`` (pytest-benchmark).
One training step = forward + backward of a batch of 64 digits (no Adam update). The convolution peer is
``scipy.signal.correlate`` summed over input channels (what a user without a deep-learning framework would
write); with ``--benchmark-disable`` every case still runs once and both convolutions are checked to agree.
"""
import numpy as np
import pytest
from scipy.signal import correlate

from opdiff.datasets.images import load_digits_images
from opdiff.neural.conv import Conv2d
from opdiff.neural.unet import UNet

BATCH = 64


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("width", [16, 32])
def test_unet_forward_backward(benchmark, width, dtype):
    images = load_digits_images(BATCH, rng=0).astype(dtype)
    conditioning = np.linspace(-3, 3, BATCH).astype(dtype)
    net = UNet(1, base_width=width, rng=0, dtype=dtype)
    benchmark.group = "UNet forward + backward, 64 digits"

    def step():
        return net.backward(net.forward(images, conditioning))

    grad = benchmark(step)
    assert grad.shape == images.shape and grad.dtype == dtype
    if benchmark.stats:
        print(f"\nwidth {width} {np.dtype(dtype).name}: {BATCH / benchmark.stats.stats.mean:.0f} images/s")


def scipy_conv(x, weights):
    n, c = x.shape[:2]
    return np.stack([np.stack([sum(correlate(x[i, k], weights[o, k], mode="same") for k in range(c))
                               for o in range(weights.shape[0])]) for i in range(n)])


@pytest.mark.parametrize("implementation", ["opdiff im2col", "scipy correlate"])
def test_conv3x3_forward(benchmark, implementation):
    x = np.random.default_rng(0).normal(size=(8, 32, 8, 8))
    conv = Conv2d(32, 32, 3, np.random.default_rng(1))
    benchmark.group = "3x3 conv 32 -> 32 channels, 8 images 8 x 8"
    function = conv.forward if implementation == "opdiff im2col" else (lambda x: scipy_conv(x, conv.params["W"]))
    out = benchmark(function, x)
    reference = out if implementation == "scipy correlate" else scipy_conv(x, conv.params["W"])
    np.testing.assert_allclose(out, reference, rtol=1e-10, atol=1e-10)
