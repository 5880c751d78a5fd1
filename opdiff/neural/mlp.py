"""A time-conditioned MLP score network with a hand-written backward pass."""
import numpy as np

from ..backend import as_generator, check_choice, check_count, check_points, get_namespace
from .layers import ACTIVATIONS, Dense


def fourier_time_features(log_noise, n_features):
    """Sinusoidal features of ``log_noise (n,)``: sines then cosines at frequencies ``0.5, 1, ..., n_features / 4``.

    Parameters
    ----------
    log_noise : (n,) array
        Finite floating values (float32 kept).
    n_features : int
        Even number of features, at least 2.

    Returns
    -------
    (n, n_features) array

    Raises
    ------
    ValueError
        If ``log_noise`` is not a finite 1-D array or ``n_features`` is not an even integer >= 2.
    """
    xp = get_namespace(log_noise)
    n_features = check_count(n_features, "n_features", minimum=2)
    if n_features % 2:
        raise ValueError(f"n_features: expected an even integer, got {n_features}")
    log_noise = check_points(log_noise, "log_noise", ndim=1)
    half = n_features // 2
    frequencies = xp.arange(1, half + 1, dtype=log_noise.dtype) * 0.5
    angles = log_noise[:, None] * frequencies[None, :]
    return xp.concatenate([xp.sin(angles), xp.cos(angles)], axis=1)


class MLP:
    """``f(x, c)``: an MLP on the concatenation of ``x (n, d)`` and time features ``c (n, k)``.

    Parameters
    ----------
    dim : int
        Input dimension ``d`` (and output dimension unless ``out_dim`` is given).
    hidden : tuple of int
        Widths of the hidden layers.
    time_features : int
        Number of sinusoidal features of the conditioning scalar (even).
    activation : {"silu", "tanh"}
    rng : None, int or numpy.random.Generator
    dtype : numpy dtype
        float64 (default) or float32.
    out_dim : int, optional
        Output dimension (default ``dim``), e.g. ``d`` outputs from the ``2 d`` features ``(cos, sin)``
        of angles on the torus.
    """

    def __init__(self, dim, hidden=(128, 128), time_features=16, activation="silu", rng=None,
                 dtype=np.float64, out_dim=None):
        if int(dim) < 1:
            raise ValueError(f"dim: expected a positive dimension, got {dim}")
        if int(time_features) < 2 or int(time_features) % 2:
            raise ValueError(f"time_features: expected an even number >= 2, got {time_features}")
        check_choice(activation, "activation", set(ACTIVATIONS))
        if out_dim is not None and int(out_dim) < 1:
            raise ValueError(f"out_dim: expected a positive dimension, got {out_dim}")
        rng = as_generator(rng)
        self.dim, self.time_features, self.dtype = int(dim), int(time_features), np.dtype(dtype)
        self.out_dim = self.dim if out_dim is None else int(out_dim)
        widths = [self.dim + self.time_features, *(check_count(width, "hidden") for width in hidden)]
        self.layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            self.layers += [Dense(n_in, n_out, rng, self.dtype), ACTIVATIONS[activation]()]
        self.layers.append(Dense(widths[-1], self.out_dim, rng, self.dtype, scale=0.1 / np.sqrt(widths[-1])))

    def parameters(self):
        """List of ``(layer_index, name, array)`` for every parameter (the optimiser's view).

        Returns
        -------
        list of tuple
        """
        return [(i, k, layer.params[k]) for i, layer in enumerate(self.layers) for k in layer.params]

    def gradients(self):
        """List of ``(layer_index, name, array)`` gradients, in the order of :meth:`parameters`.

        Returns
        -------
        list of tuple
        """
        return [(i, k, layer.grads[k]) for i, layer in enumerate(self.layers) for k in layer.params]

    def forward(self, x, conditioning):
        """``x (n, d)``, ``conditioning (n,)`` (e.g. log noise level) -> ``(n, out_dim)``.

        Parameters
        ----------
        x : (n, d) array
        conditioning : (n,) array

        Returns
        -------
        (n, out_dim) array
        """
        xp = get_namespace(x)
        h = xp.concatenate([x, fourier_time_features(conditioning.astype(x.dtype), self.time_features)], axis=1)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def backward(self, grad_out, input_grad=True):
        """Back-propagate ``dLoss/dOutput (n, out_dim)``; returns ``dLoss/dx (n, d)`` and fills gradients.

        Parameters
        ----------
        grad_out : (n, out_dim) array
        input_grad : bool
            False skips the gradient with respect to the input (training needs only the parameters');
            None is then returned.

        Returns
        -------
        (n, d) array or None
        """
        grad = grad_out
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        grad = self.layers[0].backward(grad, input_grad=input_grad)
        return None if grad is None else grad[:, : self.dim]

    def to(self, xp):
        """Move the parameters to the array module ``xp`` (``numpy`` or ``cupy``); returns self.

        Parameters
        ----------
        xp : module

        Returns
        -------
        self
        """
        for layer in self.layers:
            for k in layer.params:
                layer.params[k] = xp.asarray(layer.params[k])
        return self
