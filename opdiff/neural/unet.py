"""A small time-conditioned U-Net for images ``(n, C, H, W)`` with a hand-written backward pass."""
import numpy as np

from ..backend import as_generator, check_count, get_namespace
from .conv import AvgPool2, Conv2d, GroupNorm, Upsample2, _check_image
from .layers import Dense, SiLU
from .mlp import fourier_time_features


def _groups(channels, most=8):
    """The largest divisor of ``channels`` that is at most ``most``."""
    return max(g for g in range(1, most + 1) if channels % g == 0)


class ResidualBlock:
    """``skip(x) + Conv(SiLU(GN(Conv(SiLU(GN(x))) + Dense(time_embedding))))``; skip is 1x1 conv if widths differ."""

    def __init__(self, n_in, n_out, time_dim, rng, dtype):
        self.norm1, self.act1 = GroupNorm(n_in, _groups(n_in), dtype), SiLU()
        self.conv1 = Conv2d(n_in, n_out, 3, rng, dtype)
        self.time = Dense(time_dim, n_out, rng, dtype)
        self.norm2, self.act2 = GroupNorm(n_out, _groups(n_out), dtype), SiLU()
        self.conv2 = Conv2d(n_out, n_out, 3, rng, dtype, scale=0.1 * np.sqrt(2.0 / (9 * n_out)))
        self.skip = Conv2d(n_in, n_out, 1, rng, dtype) if n_in != n_out else None
        self.layers = [self.norm1, self.conv1, self.time, self.norm2, self.conv2] + ([self.skip] if self.skip else [])

    def forward(self, x, embedding):
        h = self.conv1.forward(self.act1.forward(self.norm1.forward(x)))
        h = h + self.time.forward(embedding)[:, :, None, None]
        h = self.conv2.forward(self.act2.forward(self.norm2.forward(h)))
        return h + (x if self.skip is None else self.skip.forward(x))

    def backward(self, grad_out):
        """Returns ``(dLoss/dx, dLoss/d time_embedding)``."""
        grad = self.norm2.backward(self.act2.backward(self.conv2.backward(grad_out)))
        grad_embedding = self.time.backward(grad.sum(axis=(2, 3)))
        grad_x = self.norm1.backward(self.act1.backward(self.conv1.backward(grad)))
        return grad_x + (grad_out if self.skip is None else self.skip.backward(grad_out)), grad_embedding


class UNet:
    """``f(x, c)``: a U-Net on images ``x (n, C, H, W)`` conditioned on a scalar ``c (n,)`` per image.

    Layout (``levels = L``, widths ``w_l = base_width 2^l``): a 3x3 input convolution, then one residual
    block per level going down (``w_{l-1} -> w_l``, 2x2 average pooling between levels), a middle block,
    one residual block per level going up on the concatenation ``[h, skip_l]`` (nearest 2x upsampling
    between levels), and GroupNorm, SiLU, 3x3 output convolution (small initial weights, so ``f ~ 0`` at
    initialisation). The time embedding ``SiLU(Dense(sinusoidal features of c))`` is added to every
    block as a per-channel bias.

    Parameters
    ----------
    channels : int
        Input and output channels ``C``.
    base_width : int
        Channels at full resolution.
    levels : int
        Resolutions ``H, H/2, ..., H/2^(L-1)``; ``H`` and ``W`` must be divisible by ``2^(L-1)``.
    time_features : int
        Number of sinusoidal features of the conditioning scalar (even).
    rng : None, int or numpy.random.Generator
    dtype : numpy dtype
        float64 (default) or float32.
    """

    def __init__(self, channels, base_width=32, levels=2, time_features=16, rng=None, dtype=np.float64):
        channels = check_count(channels, "channels")
        base_width, levels = check_count(base_width, "base_width"), check_count(levels, "levels")
        if int(time_features) < 2 or int(time_features) % 2:
            raise ValueError(f"time_features: expected an even number >= 2, got {time_features}")
        rng = as_generator(rng)
        self.channels, self.levels, self.time_features = channels, levels, int(time_features)
        self.dtype = np.dtype(dtype)
        widths = [base_width * 2**level for level in range(levels)]
        time_dim = widths[-1]
        self.time_dense, self.time_act = Dense(self.time_features, time_dim, rng, self.dtype), SiLU()
        self.conv_in = Conv2d(channels, base_width, 3, rng, self.dtype)
        self.down = [ResidualBlock(n_in, n_out, time_dim, rng, self.dtype)
                     for n_in, n_out in zip([base_width] + widths[:-1], widths)]
        self.middle = ResidualBlock(widths[-1], widths[-1], time_dim, rng, self.dtype)
        self.up = [ResidualBlock((widths[level + 1] if level + 1 < levels else widths[-1]) + widths[level],
                                 widths[level], time_dim, rng, self.dtype) for level in range(levels)]
        self.pools = [AvgPool2() for _ in range(levels - 1)]
        self.upsamples = [Upsample2() for _ in range(levels - 1)]
        self.norm_out, self.act_out = GroupNorm(base_width, _groups(base_width), self.dtype), SiLU()
        self.conv_out = Conv2d(base_width, channels, 3, rng, self.dtype, scale=0.1 / np.sqrt(9 * base_width))
        blocks = self.down + [self.middle] + self.up
        self._parametric = ([self.time_dense, self.conv_in] + [layer for b in blocks for layer in b.layers]
                            + [self.norm_out, self.conv_out])

    def parameters(self):
        """List of ``(layer_index, name, array)`` for every parameter (the optimiser's view).

        Returns
        -------
        list of tuple
        """
        return [(i, k, layer.params[k]) for i, layer in enumerate(self._parametric) for k in layer.params]

    def gradients(self):
        """List of ``(layer_index, name, array)`` gradients, in the order of :meth:`parameters`.

        Returns
        -------
        list of tuple
        """
        return [(i, k, layer.grads[k]) for i, layer in enumerate(self._parametric) for k in layer.params]

    def forward(self, x, conditioning):
        """``x (n, C, H, W)``, ``conditioning (n,)`` (e.g. log noise level) -> ``(n, C, H, W)``."""
        _check_image(x, "x", self.channels)
        factor = 2 ** (self.levels - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"x: expected height and width divisible by 2^(levels-1)={factor}, got {x.shape}")
        if getattr(conditioning, "shape", None) != (x.shape[0],):
            given = getattr(conditioning, "shape", None)
            raise ValueError(f"conditioning: expected shape ({x.shape[0]},), got {given}")
        xp = get_namespace(x)
        features = fourier_time_features(xp.asarray(conditioning, dtype=x.dtype), self.time_features)
        embedding = self.time_act.forward(self.time_dense.forward(features))
        h, skips, self._skip_widths = self.conv_in.forward(x), [], []
        for level, block in enumerate(self.down):
            h = block.forward(h, embedding)
            skips.append(h)
            if level < self.levels - 1:
                h = self.pools[level].forward(h)
        h = self.middle.forward(h, embedding)
        for level in reversed(range(self.levels)):
            self._skip_widths.append(h.shape[1])
            h = self.up[level].forward(xp.concatenate([h, skips[level]], axis=1), embedding)
            if level > 0:
                h = self.upsamples[level - 1].forward(h)
        return self.conv_out.forward(self.act_out.forward(self.norm_out.forward(h)))

    def backward(self, grad_out, input_grad=True):
        """Back-propagate ``dLoss/dOutput (n, C, H, W)``; returns ``dLoss/dx`` and fills gradients.

        Parameters
        ----------
        grad_out : (n, C, H, W) array
        input_grad : bool
            False skips the gradient with respect to the input images (training needs only the
            parameters'); None is then returned.

        Returns
        -------
        (n, C, H, W) array or None
        """
        grad = self.norm_out.backward(self.act_out.backward(self.conv_out.backward(grad_out)))
        grad_skips, grad_embedding = [None] * self.levels, 0.0
        for level in range(self.levels):  # the up path in reverse: level 0 ran last
            if level > 0:
                grad = self.upsamples[level - 1].backward(grad)
            grad, grad_time = self.up[level].backward(grad)
            grad_embedding = grad_embedding + grad_time
            width = self._skip_widths[self.levels - 1 - level]  # channels of h in the concatenation [h, skip]
            grad, grad_skips[level] = grad[:, :width], grad[:, width:]
        grad, grad_time = self.middle.backward(grad)
        grad_embedding = grad_embedding + grad_time
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                grad = self.pools[level].backward(grad)
            grad, grad_time = self.down[level].backward(grad + grad_skips[level])
            grad_embedding = grad_embedding + grad_time
        self.time_dense.backward(self.time_act.backward(grad_embedding), input_grad=False)
        return self.conv_in.backward(grad, input_grad=input_grad)

    def to(self, xp):
        """Move the parameters to the array module ``xp`` (``numpy`` or ``cupy``); returns self."""
        for layer in self._parametric:
            for k in layer.params:
                layer.params[k] = xp.asarray(layer.params[k])
        return self
