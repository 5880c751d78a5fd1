"""Torch-free neural score models trained by denoising score matching, and the adapter protocol.

The network predicts the standardised noise ``eps`` of the transition ``z = Phi lift(x0) + L eps``
(``L L^T = Sigma``), and the score follows as ``-L^{-T} eps_hat``: one parameterisation for every
Gaussian process. For scalar processes the input is preconditioned by ``1 / (a sqrt(1 + s^2))``
(unit-variance data stay unit variance) and the network is conditioned on ``log s(t)``.

Images ``(n, C, H, W)`` are flattened to ``(n, C H W)`` states for the process; a U-Net sees each state
reshaped back to ``(n, K C, H, W)`` (the ``K`` blocks of an auxiliary-variable process become channels).
"""
import copy

import numpy as np
from tqdm.auto import tqdm

from ..backend import (as_generator, check_choice, check_count, check_fitted, check_points, check_positive,
                       get_namespace)
from .mlp import MLP
from .optim import Adam
from .unet import UNet


class NeuralScoreModel:
    """A score network ``s_theta(x, t)`` trained by DSM, with a hand-written backward pass.

    Parameters
    ----------
    process : GaussianProcess
    hidden : tuple of int
        Hidden widths of the MLP.
    architecture : {"mlp", "unet"} or network object
        ``"unet"`` (default widths, see :class:`UNet`) needs image data ``(n, C, H, W)``. A network
        object (``forward(x, conditioning)``, ``backward(grad)``, ``parameters()``, ``gradients()``, e.g. a
        ``UNet`` of another size) is copied and the copy trained; it receives ``(n, K C, H, W)`` images
        when the data are images, ``(n, D)`` states otherwise.
    n_steps : int
        Adam steps.
    batch_size : int
    lr : float
    t_min : float
        Smallest training time (``t ~ U(t_min, T)``).
    rng : None, int or Generator
    progress : bool
        Show a tqdm bar during training.

    Attributes
    ----------
    network_ : MLP, UNet or the trained copy of the given network
    image_shape_ : tuple or None
        ``(K C, H, W)`` when trained on images (``score`` then also takes and returns that shape).
    losses_ : (n_steps,) array
        DSM loss (noise-prediction form) at each step.
    """

    def __init__(self, process, hidden=(128, 128), n_steps=2000, batch_size=256, lr=2e-3, t_min=1e-3,
                 rng=None, progress=False, architecture="mlp"):
        self.process, self.hidden, self.architecture = process, tuple(hidden), architecture
        self.n_steps, self.batch_size = int(n_steps), int(batch_size)
        self.lr, self.t_min, self.rng, self.progress = lr, t_min, rng, progress

    # -- parameterisation ------------------------------------------------------------------------
    def _is_scalar(self):
        return hasattr(self.process, "noise_level") and self.process.n_blocks == 1

    def _conditioning(self, t):
        if self._is_scalar():
            return np.log(self.process.noise_level(t))
        return np.log(t)

    def _preconditioning(self, t):
        if self._is_scalar():
            a, s = self.process.scale(t), self.process.noise_level(t)
            return 1.0 / (a * np.sqrt(1.0 + s**2))
        return np.ones_like(t)

    def _predict_noise(self, z, t, network=None, input_shape=None):
        """``eps_hat (m, D)`` for states ``z (m, D)``; the network sees ``(m, *input_shape)``."""
        xp = get_namespace(z)
        if network is None:
            network, input_shape = self.network_, self._input_shape(self.network_, self.data_dim_, self.image_shape_)
        c_in = xp.asarray(self._preconditioning(t), dtype=z.dtype)[:, None]
        inputs = (z * c_in).reshape((z.shape[0],) + input_shape)
        return network.forward(inputs, xp.asarray(self._conditioning(t), dtype=z.dtype)).reshape(z.shape), c_in

    def _input_shape(self, network, data_dim, image_shape):
        if image_shape is None or isinstance(network, MLP):
            return (self.process.state_dim(data_dim),)
        return image_shape

    def _network(self, dim, image_shape, rng, dtype):
        """A fresh network for states of dimension ``dim`` (state images ``image_shape`` or None)."""
        if not isinstance(self.architecture, str):
            return copy.deepcopy(self.architecture)
        check_choice(self.architecture, "architecture", {"mlp", "unet"})
        if self.architecture == "mlp":
            return MLP(dim, self.hidden, rng=rng, dtype=dtype)
        if image_shape is None:
            raise ValueError("X: architecture='unet' expects images (n, C, H, W), got flat points")
        return UNet(image_shape[0], rng=rng, dtype=dtype)

    # -- training ---------------------------------------------------------------------------------
    def fit(self, X):
        """Train on points ``X (n, d)`` or images ``X (n, C, H, W)``; returns self."""
        image_shape = None
        if getattr(X, "ndim", None) == 4:
            X = check_points(X, "X", ndim=4)
            image_shape, X = X.shape[1:], X.reshape(X.shape[0], -1)
        X = check_points(X, "X")
        check_positive(self.lr, "lr")
        t_min = float(self.process.check_time(self.t_min, "t_min"))
        if t_min >= self.process.t_max:
            raise ValueError(f"t_min: expected a time below the process's t_max={self.process.t_max}, got {t_min}")
        n_steps, batch_size = check_count(self.n_steps, "n_steps"), check_count(self.batch_size, "batch_size")
        rng = as_generator(self.rng)
        dim = self.process.state_dim(X.shape[1])
        if image_shape is not None:  # the K blocks of the state become channels
            image_shape = (dim // X.shape[1] * image_shape[0],) + tuple(image_shape[1:])
        # trained in a local network: a failed fit leaves a previously fitted model unchanged
        network = self._network(dim, image_shape, rng, X.dtype)
        input_shape = self._input_shape(network, X.shape[1], image_shape)
        optimiser = Adam(network, lr=self.lr)
        losses = np.empty(n_steps)
        for step in tqdm(range(n_steps), disable=not self.progress, desc="DSM training"):
            batch = X[rng.integers(0, X.shape[0], size=batch_size)]
            t = rng.uniform(t_min, self.process.t_max, size=batch_size)
            z, noise = self.process.sample(batch, t, rng=rng, return_noise=True)
            predicted, _ = self._predict_noise(z, t, network, input_shape)
            residual = predicted - noise
            losses[step] = float(np.mean(np.sum(residual**2, axis=1)))
            network.backward((2.0 * residual / batch_size).reshape((batch_size,) + input_shape))
            optimiser.step()
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError("DSM training diverged (non-finite loss); lower lr")
        self.network_, self.losses_, self.data_dim_ = network, losses, X.shape[1]
        self.image_shape_ = image_shape
        return self

    # -- evaluation -------------------------------------------------------------------------------
    def _check(self, x, t):
        """Flat states ``(m, D)``, times ``(m,)`` and the shape to return (``(m, *image_shape_)`` for images)."""
        check_fitted(self, "network_")
        if self.image_shape_ is not None and getattr(x, "ndim", None) == 4:
            x = check_points(x, "x", dim=self.image_shape_, ndim=4)
            shape, x = x.shape, x.reshape(x.shape[0], -1)
        else:
            x = check_points(x, "x", dim=self.process.state_dim(self.data_dim_), allow_1d=True)
            shape = x.shape
        t = self.process.check_time(t, n=x.shape[0])
        return x, np.broadcast_to(t, (x.shape[0],)).astype(np.float64), shape

    def score(self, x, t):
        """``s_theta(x, t) = -L^{-T} eps_theta(x, t)``; ``x (m, D)`` -> ``(m, D)`` (images: ``(m, C, H, W)``)."""
        x, t, shape = self._check(x, t)
        predicted, _ = self._predict_noise(x, t)
        _, Sigma = self.process.transition(t)
        return -Sigma.cholesky().transpose().solve(predicted).reshape(shape)

    def denoise(self, x, t):
        """Tweedie's posterior mean ``(x + Sigma s) / a`` (scalar processes); ``(m, d)`` (images: ``(m, C, H, W)``)."""
        if not self._is_scalar():
            raise NotImplementedError("denoise: defined through Tweedie's formula for scalar processes only")
        x, t, shape = self._check(x, t)
        Phi, Sigma = self.process.transition(t)
        return Phi.solve(x + Sigma.apply(self.score(x, t))).reshape(shape)


class ScoreAdapter:
    """Wrap any outside network so that it speaks opdiff's score / denoiser protocol.

    Parameters
    ----------
    function : callable
        ``function(x (m, D), t (m,)) -> (m, D)``, e.g. a PyTorch or JAX model wrapped to NumPy.
    process : GaussianProcess
    output : {"score", "noise", "denoiser"}
        What ``function`` returns: the score, the standardised noise ``eps`` (so that
        ``x = Phi x0 + L eps``), or the posterior mean ``E[x_0 | x]`` (scalar processes).
    """

    def __init__(self, function, process, output="score"):
        if not callable(function):
            raise TypeError(f"function: expected a callable, got {type(function).__name__}")
        self.function, self.process = function, process
        self.output = check_choice(output, "output", {"score", "noise", "denoiser"})

    def _call(self, x, t):
        x = check_points(x, "x", allow_1d=True)
        t = np.broadcast_to(self.process.check_time(t, n=x.shape[0]), (x.shape[0],)).astype(np.float64)
        out = self.function(x, t)
        if getattr(out, "shape", None) != x.shape and not (self.output == "denoiser"):
            raise ValueError(f"function: expected an output of shape {x.shape}, got {getattr(out, 'shape', None)}")
        if not bool(get_namespace(out).all(get_namespace(out).isfinite(out))):
            raise ValueError("function: returned non-finite values")
        return x, t, out

    def score(self, x, t):
        """Score ``(m, D)`` from whatever the wrapped function returns."""
        x, t, out = self._call(x, t)
        Phi, Sigma = self.process.transition(t)
        if self.output == "score":
            return out
        if self.output == "noise":
            return -Sigma.cholesky().transpose().solve(out)
        return -Sigma.solve(x - Phi.apply(self.process.lift(out)))

    def denoise(self, x, t):
        """Posterior mean ``(m, d)`` from whatever the wrapped function returns (scalar processes)."""
        x, t, out = self._call(x, t)
        if self.output == "denoiser":
            return out
        Phi, Sigma = self.process.transition(t)
        if self.process.n_blocks != 1:
            raise NotImplementedError("denoise: Tweedie inversion needs a scalar process")
        return Phi.solve(x + Sigma.apply(self.score(x, t)))
