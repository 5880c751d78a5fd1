"""Image layers ``(n, C, H, W)`` with hand-written backward passes (NumPy or CuPy arrays).

Same protocol as :mod:`opdiff.neural.layers`: ``forward(x)`` keeps what the backward pass needs,
``backward(grad_out)`` returns the gradient with respect to the input and stores parameter gradients
in ``grads`` (same keys as ``params``).
"""
import numpy as np

from ..backend import get_namespace


def _check_image(x, name, channels=None, even=False):
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"{name}: expected an (n, C, H, W) array, got shape {getattr(x, 'shape', None)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channels, got shape {tuple(x.shape)}")
    if even and (x.shape[2] % 2 or x.shape[3] % 2):
        raise ValueError(f"{name}: expected even height and width, got shape {tuple(x.shape)}")


class Conv2d:
    """Stride-1 ``'same'`` convolution (cross-correlation) by im2col: ``y = W * x + b``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output channels.
    kernel_size : {1, 3}
    rng : numpy.random.Generator
    dtype : numpy dtype
    scale : float, optional
        Standard deviation of the weights (He initialisation ``sqrt(2 / (n_in k^2))`` by default).

    ``params``: ``W (n_out, n_in, k, k)``, ``b (n_out,)``.
    """

    def __init__(self, n_in, n_out, kernel_size, rng, dtype=np.float64, scale=None):
        if kernel_size not in (1, 3):
            raise ValueError(f"kernel_size: expected 1 or 3, got {kernel_size}")
        fan_in = n_in * kernel_size**2
        scale = np.sqrt(2.0 / fan_in) if scale is None else scale
        self.kernel_size, self.n_in, self.n_out = kernel_size, n_in, n_out
        self.params = {"W": (scale * rng.standard_normal((n_out, n_in, kernel_size, kernel_size))).astype(dtype),
                       "b": np.zeros(n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _buffer(self, role, shape, dtype, xp, zero=False):
        """A work array kept between calls (fresh large allocations cost page faults on every step)."""
        buffers = self.__dict__.setdefault("_buffers", {})
        key = (role, tuple(shape), np.dtype(dtype).str, xp.__name__)
        if key not in buffers:
            buffers[key] = (xp.zeros if zero else xp.empty)(shape, dtype=dtype)
        return buffers[key]

    def __deepcopy__(self, memo):
        import copy

        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            if name != "_buffers":  # work arrays are not state
                setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def _columns(self, x, role):
        """``(n H W, k k C)`` patches of ``x (n, C, H, W)`` read channels-last, zero padded: one strided copy.

        The padded input and the patch matrix live in buffers of this layer (per ``role``): the patches
        of the last forward pass (kept for the backward pass) are overwritten by the next one.
        """
        xp = get_namespace(x)
        n, c, h, w = x.shape
        k, pad = self.kernel_size, self.kernel_size // 2
        if k == 1:
            columns = self._buffer(role, (n * h * w, c), x.dtype, xp)
            columns.reshape(n, h, w, c)[...] = x.transpose(0, 2, 3, 1)
            return columns
        # the border stays zero: only the interior is ever written
        padded = self._buffer(role + "_padded", (n, h + 2 * pad, w + 2 * pad, c), x.dtype, xp, zero=True)
        padded[:, pad:pad + h, pad:pad + w] = x.transpose(0, 2, 3, 1)
        sn, sh, sw, sc = padded.strides
        windows = xp.lib.stride_tricks.as_strided(padded, shape=(n, h, w, k, k, c),
                                                  strides=(sn, sh, sw, sh, sw, sc))
        columns = self._buffer(role, (n * h * w, k * k * c), x.dtype, xp)
        columns.reshape(n, h, w, k, k, c)[...] = windows
        return columns

    def forward(self, x):
        """``x (n, n_in, H, W)`` -> ``(n, n_out, H, W)``.

        Parameters
        ----------
        x : (n, n_in, H, W) array

        Returns
        -------
        (n, n_out, H, W) array
        """
        _check_image(x, "x", self.n_in)
        n, _, h, w = x.shape
        self._columns_cache = self._columns(x, "input")
        weights = self.params["W"].transpose(0, 2, 3, 1).reshape(self.n_out, -1)  # (out, k k in)
        out = self._columns_cache @ weights.T
        out += self.params["b"]
        return out.reshape(n, h, w, self.n_out).transpose(0, 3, 1, 2)

    def backward(self, grad_out, input_grad=True):
        """Parameter gradients (stored) and, unless ``input_grad`` is False, ``dLoss/dx (n, n_in, H, W)``.

        Parameters
        ----------
        grad_out : (n, n_out, H, W) array
        input_grad : bool
            False skips the input gradient (the first layer of a network in training); returns None.

        Returns
        -------
        (n, n_in, H, W) array or None
        """
        xp = get_namespace(grad_out)
        n, _, h, w = grad_out.shape
        k = self.kernel_size
        flat = self._buffer("output_gradient", (n * h * w, self.n_out), grad_out.dtype, xp)
        flat.reshape(n, h, w, self.n_out)[...] = grad_out.transpose(0, 2, 3, 1)
        self.grads["W"] = (flat.T @ self._columns_cache).reshape(self.n_out, k, k, self.n_in).transpose(0, 3, 1, 2)
        self.grads["b"] = xp.sum(flat, axis=0)
        if not input_grad:
            return None
        # the input gradient is the 'same' correlation of grad_out with the flipped, transposed kernel
        flipped = self.params["W"][:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(k * k * self.n_out, self.n_in)
        grad_x = self._columns(grad_out, "gradient") @ flipped
        return grad_x.reshape(n, h, w, self.n_in).transpose(0, 3, 1, 2)


class AvgPool2:
    """2 x 2 average pooling: ``(n, C, H, W)`` -> ``(n, C, H/2, W/2)`` (H, W even)."""

    params, grads = {}, {}

    def forward(self, x):
        _check_image(x, "x", even=True)
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))

    def backward(self, grad_out):
        xp = get_namespace(grad_out)
        return 0.25 * xp.repeat(xp.repeat(grad_out, 2, axis=2), 2, axis=3)


class Upsample2:
    """Nearest-neighbour 2x upsampling: ``(n, C, H, W)`` -> ``(n, C, 2H, 2W)``."""

    params, grads = {}, {}

    def forward(self, x):
        _check_image(x, "x")
        xp = get_namespace(x)
        return xp.repeat(xp.repeat(x, 2, axis=2), 2, axis=3)

    def backward(self, grad_out):
        n, c, h, w = grad_out.shape
        return grad_out.reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5))


class GroupNorm:
    """Group normalisation: per image and group of ``C / groups`` channels, ``gamma x_hat + beta``.

    Parameters
    ----------
    channels, groups : int
        ``groups`` must divide ``channels``.
    dtype : numpy dtype
    eps : float
        Added to the group variance.

    ``params``: ``gamma (C,)`` (ones), ``beta (C,)`` (zeros).
    """

    def __init__(self, channels, groups, dtype=np.float64, eps=1e-5):
        if groups < 1 or channels % groups:
            raise ValueError(f"groups: expected a divisor of channels={channels}, got {groups}")
        self.channels, self.groups, self.eps = channels, groups, eps
        self.params = {"gamma": np.ones(channels, dtype=dtype), "beta": np.zeros(channels, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """``x (n, C, H, W)`` -> ``(n, C, H, W)``."""
        _check_image(x, "x", self.channels)
        xp = get_namespace(x)
        n, c, h, w = x.shape
        # one contiguous (n, groups, C H W / groups) copy: reductions over one contiguous axis are the fast ones
        grouped = x.reshape(n, self.groups, -1)
        centred = grouped - grouped.mean(axis=2, keepdims=True)
        self._inv_std = 1.0 / xp.sqrt((centred * centred).mean(axis=2, keepdims=True) + self.eps)
        self._normalised = (centred * self._inv_std).reshape(x.shape)
        return self._normalised * self.params["gamma"][:, None, None] + self.params["beta"][:, None, None]

    def backward(self, grad_out):
        xp = get_namespace(grad_out)
        n = grad_out.shape[0]
        self.grads["gamma"] = xp.sum(grad_out * self._normalised, axis=(0, 2, 3))
        self.grads["beta"] = xp.sum(grad_out, axis=(0, 2, 3))
        # d/dx of (x - mu) / sd within a group: (g - mean g - x_hat mean(g x_hat)) / sd
        g = (grad_out * self.params["gamma"][:, None, None]).reshape(n, self.groups, -1)
        x_hat = self._normalised.reshape(n, self.groups, -1)
        grad = (g - g.mean(axis=2, keepdims=True)
                - x_hat * (g * x_hat).mean(axis=2, keepdims=True)) * self._inv_std
        return grad.reshape(grad_out.shape)
