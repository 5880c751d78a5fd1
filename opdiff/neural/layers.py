"""Dense layers and activations with hand-written backward passes (NumPy or CuPy arrays).

Each layer keeps what its backward pass needs from the last forward call; ``backward`` takes the
gradient of the loss with respect to the layer output and returns the gradient with respect to
its input, accumulating parameter gradients in ``grads``.
"""
import numpy as np

from ..backend import check_count, check_positive, get_namespace


class Dense:
    """``y = x W + b`` with ``W (n_in, n_out)``, ``b (n_out,)``; He-style initialisation.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths (positive).
    rng : numpy.random.Generator
        Source of the initial weights.
    dtype : numpy dtype
        Floating dtype of the parameters.
    scale : float, optional
        Standard deviation of the initial weights (default ``sqrt(2 / n_in)``), non-negative.

    Raises
    ------
    ValueError
        If ``n_in`` or ``n_out`` is not a positive integer, or ``scale`` is negative or not finite.
    TypeError
        If ``rng`` is not a ``numpy.random.Generator`` or ``dtype`` is not floating.
    """

    def __init__(self, n_in, n_out, rng, dtype=np.float64, scale=None):
        n_in, n_out = check_count(n_in, "n_in"), check_count(n_out, "n_out")
        if not callable(getattr(rng, "standard_normal", None)):
            raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"dtype: expected a floating dtype, got {np.dtype(dtype)}")
        scale = np.sqrt(2.0 / n_in) if scale is None else check_positive(scale, "scale", strict=False)
        self.params = {"W": (scale * rng.standard_normal((n_in, n_out))).astype(dtype),
                       "b": np.zeros(n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._input = None

    def forward(self, x):
        """``x W + b``.

        Parameters
        ----------
        x : (n, n_in) array

        Returns
        -------
        (n, n_out) array
        """
        self._input = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad_out, input_grad=True):
        """Store ``dW = x^T g``, ``db = sum g``; return ``g W^T`` (None when ``input_grad`` is False).

        Parameters
        ----------
        grad_out : (n, n_out) array
        input_grad : bool

        Returns
        -------
        (n, n_in) array or None
        """
        xp = get_namespace(grad_out)
        self.grads["W"] = self._input.T @ grad_out
        self.grads["b"] = xp.sum(grad_out, axis=0)
        return grad_out @ self.params["W"].T if input_grad else None


class SiLU:
    """``silu(x) = x sigmoid(x)``, derivative ``sigma(x) (1 + x (1 - sigma(x)))``."""

    params, grads = {}, {}

    def forward(self, x):
        """``x sigmoid(x)``, elementwise.

        Parameters
        ----------
        x : array

        Returns
        -------
        array of the shape of ``x``
        """
        xp = get_namespace(x)
        self._input = x
        self._sigmoid = 0.5 * (1.0 + xp.tanh(0.5 * x))  # the logistic function without exp overflow
        return x * self._sigmoid

    def backward(self, grad_out):
        """``grad_out`` times the derivative at the last input.

        Parameters
        ----------
        grad_out : array

        Returns
        -------
        array of the shape of ``grad_out``
        """
        s = self._sigmoid
        return grad_out * s * (1.0 + self._input * (1.0 - s))


class Tanh:
    """``tanh(x)``, derivative ``1 - tanh(x)^2``."""

    params, grads = {}, {}

    def forward(self, x):
        """``tanh(x)``, elementwise.

        Parameters
        ----------
        x : array

        Returns
        -------
        array of the shape of ``x``
        """
        xp = get_namespace(x)
        self._output = xp.tanh(x)
        return self._output

    def backward(self, grad_out):
        """``grad_out`` times the derivative at the last input.

        Parameters
        ----------
        grad_out : array

        Returns
        -------
        array of the shape of ``grad_out``
        """
        return grad_out * (1.0 - self._output**2)


ACTIVATIONS = {"silu": SiLU, "tanh": Tanh}
