"""Torch-free neural score models trained by denoising score matching on every forward process.

The network predicts a standardised quantity ``e`` from which the score follows by a fixed map
(:mod:`opdiff.neural.forms`): the noise ``eps`` of the transition ``z = Phi lift(x0) + L eps`` for Gaussian
processes (score ``-L^{-T} e``), ``-sqrt(2 s)`` times the Riemannian score for Brownian motion on the torus
and the sphere (heat time ``s``). DSM regresses ``e`` onto the drawn ``eps``, or onto the standardised
heat-kernel score on a manifold.

Modes (arXiv 2406.09084, section 5):

- residual: ``s = s_base + s_theta`` with ``s_base`` a fitted OISM or any score callable; the network
  is trained by DSM on the residual target ``to_noise(s_target - s_base)``;
- warm start: the first ``pretrain_steps`` steps regress the model onto a given score (``"NN
  (pre-trained)"``: toward OISM (L)), the remaining steps are DSM.

Images ``(n, C, H, W)`` are flattened to ``(n, C H W)`` states for the process; a U-Net sees each state
reshaped back to ``(n, K C, H, W)`` (the ``K`` blocks of an auxiliary-variable process become channels).
"""
import contextlib
import copy
import inspect
import json
import math
import os

import numpy as np

from ..backend import (ParamsMixin, as_generator, check_choice, check_count, check_fitted, check_points,
                       check_positive, get_namespace)
from ..backend.threads import single_threaded_blas
from .forms import process_form
from .mlp import MLP
from .training import TrainingLoop, data_checksum, generator_from_state, read_checkpoint
from .unet import UNet

#: Rows per network pass in evaluation (divergence directions, held-out losses): bounds memory.
EVALUATION_ROWS = 4096


def as_score_function(model, name):
    """A callable ``f(x, t)`` from a score callable or an object with ``score(x, t)``.

    Parameters
    ----------
    model : callable or object with ``score``
    name : str
        Argument name for the error message.

    Returns
    -------
    callable or None
        None when ``model`` is None.
    """
    if model is None:
        return None
    if callable(getattr(model, "score", None)):
        return model.score
    if callable(model):
        return model
    raise TypeError(f"{name}: expected a score callable f(x, t) or an object with score(x, t) (e.g. a fitted "
                    f"OISM), got {type(model).__name__}")


def check_sample_weight(sample_weight, n):
    """Normalised sampling probabilities ``(n,)`` from non-negative weights, or None (uniform).

    Parameters
    ----------
    sample_weight : None or (n,) array
    n : int

    Returns
    -------
    None or (n,) array
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"sample_weight: expected {n} finite non-negative weights with a positive sum, "
                         f"got shape {w.shape}")
    return w / w.sum()


class NeuralScoreModel(ParamsMixin):
    """A score network ``s_theta(x, t)`` trained by DSM, with a hand-written backward pass.

    Parameters
    ----------
    process : GaussianProcess or ManifoldBrownianMotion
        Any Gaussian process (scalar: VP, VE, OU, BM; auxiliary-variable: CLD, MALDA, ...) or Brownian
        motion on :class:`~opdiff.manifolds.FlatTorus` / :class:`~opdiff.manifolds.Hypersphere`.
    hidden : tuple of int
        Hidden widths of the MLP.
    n_steps : int
        Total number of Adam steps (pre-training steps included).
    batch_size : int
    lr : float
    t_min : float
        Smallest training time (``t ~ U(t_min, T)``).
    rng : None, int or Generator
        Initial weights, batches, times and noise: the same seed gives the same weights.
    progress : bool
        Show a tqdm bar during training (off by default).
    architecture : {"mlp", "unet"} or network object
        ``"unet"`` (default widths, see :class:`UNet`) needs image data ``(n, C, H, W)``. A network
        object (``forward(x, conditioning)``, ``backward(grad)``, ``parameters()``, ``gradients()``: an
        :class:`MLP`, a :class:`UNet` of another size, or an outside network through
        :class:`~opdiff.neural.NetworkAdapter`) is copied and the copy trained; it receives
        ``(n, K C, H, W)`` images when the data are images, ``(n, F)`` features otherwise (``F = 2 d``
        on the torus: ``(cos, sin)``).
    base : None, callable or object with ``score``
        Residual mode: the model is ``s = base(x, t) + s_theta(x, t)`` and the network learns
        ``s_target - base`` (e.g. a fitted OISM).
    pretrain : None, callable or object with ``score``
        Warm start: the first ``pretrain_steps`` steps regress the model onto this score (on the same
        forward-process draws as DSM), the rest are DSM.
    pretrain_steps : int
        Number of pre-training steps (``<= n_steps``; needs ``pretrain``).
    ema_decay : float or None
        Exponential moving average of the weights (with warm-up, see
        :func:`opdiff.neural.training.ema_decay_at`); the averaged network is the one evaluated. None
        or 0: the raw weights.
    validation_fraction : float
        Fraction of ``X`` held out (in ``[0, 1)``); its DSM loss (fixed draws of ``t`` and noise) is
        recorded every ``validation_every`` steps and after the last.
    validation_every : int
    checkpoint : None, str or path
        ``.npz`` file written every ``checkpoint_every`` steps and at the end.
    checkpoint_every : int, optional
    resume : bool
        If ``checkpoint`` exists, continue from it (same settings and data required): the resumed run
        ends with the weights an uninterrupted run would have, bit for bit.
    time_groups : int, optional
        Number of distinct training times per batch (rows share them in groups). Default: one time per
        row, except on ``S^n`` (``n >= 2``), whose exact heat-kernel sampler builds one table per
        distinct time: 8 per batch there.
    time_sampling : {"auto", "uniform", "log_uniform"}
        Law of the training times on ``[t_min, T]``: uniform, or uniform in ``log t``. ``"auto"``: uniform
        for Gaussian processes, log-uniform for manifold Brownian motion (whose default horizon runs
        until the slowest mode has decayed by 1e-3, so that uniform times would mostly fall where the
        law is already nearly uniform).
    blas_threads : int or None
        BLAS threads while training and computing divergences. Default 1: the GEMMs of these networks are
        small, more threads mostly add synchronisation (on a busy machine a 2-thread BLAS ran the
        8 x 8 U-Net 10x slower than one thread); None leaves BLAS's own setting.

    Attributes
    ----------
    network_ : network
        The evaluated network (the weight average when ``ema_decay`` is set).
    raw_network_ : network
        The network with the last Adam weights.
    image_shape_ : tuple or None
        ``(K C, H, W)`` when trained on images (``score`` then also takes and returns that shape).
    data_dim_ : int
    losses_ : (n_steps,) array
        Training loss at each step (pre-training steps: distance to the ``pretrain`` score; then DSM),
        in the network's standardised units.
    validation_steps_, validation_losses_ : (k,) arrays
        Held-out DSM loss of the averaged network (empty without a validation fraction).
    n_steps_trained_ : int
        Steps run by this call of ``fit`` (0 when a complete checkpoint was loaded).
    """

    def __init__(self, process, hidden=(128, 128), n_steps=2000, batch_size=256, lr=2e-3, t_min=1e-3,
                 rng=None, progress=False, architecture="mlp", base=None, pretrain=None, pretrain_steps=0,
                 ema_decay=0.999, validation_fraction=0.0, validation_every=100, checkpoint=None,
                 checkpoint_every=None, resume=True, time_groups=None, time_sampling="auto", blas_threads=1):
        self.process = process
        self.hidden = hidden
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.lr = lr
        self.t_min = t_min
        self.rng = rng
        self.progress = progress
        self.architecture = architecture
        self.base = base
        self.pretrain = pretrain
        self.pretrain_steps = pretrain_steps
        self.ema_decay = ema_decay
        self.validation_fraction = validation_fraction
        self.validation_every = validation_every
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.time_groups = time_groups
        self.time_sampling = time_sampling
        self.blas_threads = blas_threads

    # -- settings ---------------------------------------------------------------------------------
    def _settings(self):
        """Validated hyper-parameters (nothing is stored)."""
        form = process_form(self.process)
        hidden = tuple(check_count(width, "hidden") for width in self.hidden)
        n_steps, batch_size = check_count(self.n_steps, "n_steps"), check_count(self.batch_size, "batch_size")
        lr = check_positive(self.lr, "lr")
        t_min = float(self.process.check_time(self.t_min, "t_min"))
        if t_min >= self.process.t_max:
            raise ValueError(f"t_min: expected a time below the process's t_max={self.process.t_max}, got {t_min}")
        pretrain_steps = int(self.pretrain_steps)
        if pretrain_steps != self.pretrain_steps or not 0 <= pretrain_steps <= n_steps:
            raise ValueError(f"pretrain_steps: expected an integer in [0, n_steps={n_steps}], "
                             f"got {self.pretrain_steps}")
        if pretrain_steps and self.pretrain is None:
            raise ValueError("pretrain: pretrain_steps > 0 needs a score to pre-train toward")
        ema = 0.0 if self.ema_decay is None else float(self.ema_decay)
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema_decay: expected None or a number in [0, 1), got {self.ema_decay}")
        fraction = float(self.validation_fraction)
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"validation_fraction: expected a number in [0, 1), got {self.validation_fraction}")
        every = check_count(self.validation_every, "validation_every")
        checkpoint_every = None if self.checkpoint_every is None else check_count(self.checkpoint_every,
                                                                                 "checkpoint_every")
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint: expected None or a path, got {type(self.checkpoint).__name__}")
        groups = self.time_groups
        if groups is None and form.is_manifold and form.spherical and form.manifold.dim >= 2:
            groups = 8
        groups = None if groups is None else check_count(groups, "time_groups")
        sampling = check_choice(self.time_sampling, "time_sampling", ("auto", "uniform", "log_uniform"))
        if sampling == "auto":
            sampling = "log_uniform" if form.is_manifold else "uniform"
        if not isinstance(self.architecture, str):
            for method in ("forward", "backward", "parameters", "gradients"):
                if not callable(getattr(self.architecture, method, None)):
                    raise TypeError(f"architecture: expected 'mlp', 'unet' or a network with forward, backward, "
                                    f"parameters and gradients, got {type(self.architecture).__name__}")
        else:
            check_choice(self.architecture, "architecture", {"mlp", "unet"})
        if self.blas_threads is not None:
            check_count(self.blas_threads, "blas_threads")
        return {"form": form, "hidden": hidden, "n_steps": n_steps, "batch_size": batch_size, "lr": lr,
                "t_min": t_min, "pretrain_steps": pretrain_steps, "ema_decay": ema or None,
                "validation_fraction": fraction, "validation_every": every, "checkpoint_every": checkpoint_every,
                "time_groups": groups, "time_sampling": sampling, "base": as_score_function(self.base, "base"),
                "pretrain": as_score_function(self.pretrain, "pretrain")}

    def _fingerprint(self, settings, X, image_shape):
        architecture = self.architecture if isinstance(self.architecture, str) else type(self.architecture).__name__
        fingerprint = {"process": repr(self.process), "hidden": settings["hidden"], "architecture": architecture,
                       "batch_size": settings["batch_size"], "lr": settings["lr"], "t_min": settings["t_min"],
                       "pretrain_steps": settings["pretrain_steps"], "ema_decay": settings["ema_decay"],
                       "validation_fraction": settings["validation_fraction"],
                       "time_groups": settings["time_groups"], "time_sampling": settings["time_sampling"],
                       "base": type(self.base).__name__,
                       "pretrain": type(self.pretrain).__name__, "data_shape": list(X.shape),
                       "image_shape": None if image_shape is None else list(image_shape), "dtype": str(X.dtype),
                       "data_crc32": data_checksum(X)}
        return json.loads(json.dumps(fingerprint))  # tuples become lists, as in the file

    # -- networks ---------------------------------------------------------------------------------
    def _new_network(self, settings, dim, image_shape, rng, dtype):
        """A fresh network for states of dimension ``dim`` (state images ``image_shape`` or None)."""
        if not isinstance(self.architecture, str):
            return copy.deepcopy(self.architecture)
        if self.architecture == "mlp":
            return MLP(settings["form"].feature_dim(dim), settings["hidden"], rng=rng, dtype=dtype, out_dim=dim)
        if image_shape is None or settings["form"].is_manifold:
            raise ValueError("X: architecture='unet' expects images (n, C, H, W) under a Gaussian process, "
                             "got flat points")
        return UNet(image_shape[0], rng=rng, dtype=dtype)

    @staticmethod
    def _input_shape(form, network, dim, image_shape):
        if image_shape is None or isinstance(network, MLP):
            return (form.feature_dim(dim),)
        return tuple(image_shape)

    def _network_output(self, form, network, input_shape, z, t, with_shape=False):
        """Network output ``e (m, D)`` at states ``z (m, D)``, times ``t (m,)`` (and its raw shape)."""
        xp = get_namespace(z)
        inputs = form.features(z, t).reshape((z.shape[0],) + input_shape)
        conditioning = xp.asarray(form.conditioning(t), dtype=z.dtype)
        out = network.forward(inputs, conditioning)
        if out.size != z.size:
            raise ValueError(f"architecture: the network returned shape {tuple(out.shape)} for {z.shape[0]} states "
                             f"of dimension {z.shape[1]}")
        return (out.reshape(z.shape), out.shape) if with_shape else out.reshape(z.shape)

    def _draw_times(self, settings, rng, m):
        low, high = settings["t_min"], float(self.process.t_max)
        groups = settings["time_groups"]
        k = m if groups is None or groups >= m else groups
        if settings["time_sampling"] == "log_uniform":
            t = np.exp(rng.uniform(math.log(low), math.log(high), size=k))
            t = np.minimum(t, high)  # exp(log T) may round above T
        else:
            t = rng.uniform(low, high, size=k)
        return t if k == m else np.repeat(t, -(-m // k))[:m]

    def _targets(self, settings, x0, t, rng, pretraining=False):
        """States and network targets for data ``x0`` at times ``t``: DSM, or the pre-training score."""
        form = settings["form"]
        z, target = form.dsm_draw(x0, t, rng)
        if pretraining:
            target = form.to_noise(xp_asarray(settings["pretrain"](z, t), z, "pretrain"), z, t)
        if settings["base"] is not None:
            target = target - form.to_noise(xp_asarray(settings["base"](z, t), z, "base"), z, t)
        return z, target.astype(z.dtype, copy=False)

    @staticmethod
    def _residual(form, e, z, target):
        return form.tangent(z, e) - target

    def _mean_loss(self, form, network, input_shape, z, t, target):
        """Mean over rows of ``|P e - target|^2`` in chunks of :data:`EVALUATION_ROWS`."""
        total = 0.0
        for start in range(0, z.shape[0], EVALUATION_ROWS):
            rows = slice(start, start + EVALUATION_ROWS)
            e = self._network_output(form, network, input_shape, z[rows], t[rows])
            r = self._residual(form, e, z[rows], target[rows])
            total += float(get_namespace(r).sum(r * r))
        return total / z.shape[0]

    # -- training ---------------------------------------------------------------------------------
    def _check_data(self, X, form):
        image_shape = None
        if getattr(X, "ndim", None) == 4:
            if form.is_manifold:
                raise ValueError("X: images (n, C, H, W) need a Gaussian process, got a manifold process")
            X = check_points(X, "X", ndim=4)
            image_shape, X = X.shape[1:], X.reshape(X.shape[0], -1)
        X = form.check_states(X, None, "X") if form.is_manifold else check_points(X, "X")
        return X, image_shape

    def fit(self, X, y=None, sample_weight=None):
        """Train on points ``X (n, d)`` (on the manifold for manifold processes) or images ``(n, C, H, W)``.

        Parameters
        ----------
        X : (n, d) or (n, C, H, W) array
        y : None
            Ignored (scikit-learn convention).
        sample_weight : (n,) array, optional
            Non-negative weights: batches are drawn with probabilities proportional to them.

        Returns
        -------
        self
        """
        settings = self._settings()
        form = settings["form"]
        X, image_shape = self._check_data(X, form)
        dim = form.state_dim(X.shape[1])
        if image_shape is not None:  # the K blocks of the state become channels
            image_shape = (dim // X.shape[1] * image_shape[0],) + tuple(image_shape[1:])
        probabilities = check_sample_weight(sample_weight, X.shape[0])
        fingerprint = self._fingerprint(settings, X, image_shape)
        saved = None
        if self.checkpoint is not None and self.resume and os.path.exists(self.checkpoint):
            saved = read_checkpoint(self.checkpoint, fingerprint)
            if saved["meta"]["step"] > settings["n_steps"]:
                raise ValueError(f"n_steps: the checkpoint already holds {saved['meta']['step']} steps, "
                                 f"more than n_steps={settings['n_steps']}")
            rng = generator_from_state(saved["meta"]["initial_rng_state"])
        else:
            rng = as_generator(self.rng)
        initial_state = copy.deepcopy(rng.bit_generator.state)
        # everything is built in locals: a failed fit leaves a previously fitted model unchanged
        network = self._new_network(settings, dim, image_shape, rng, X.dtype)
        input_shape = self._input_shape(form, network, dim, image_shape)
        channels = getattr(network, "channels", None)
        if image_shape is not None and channels is not None and not isinstance(network, MLP) \
                and channels != image_shape[0]:
            raise ValueError(f"architecture: the network takes {channels} channels, but the states of "
                             f"{type(self.process).__name__} are images of {image_shape[0]} channels (K C, the "
                             f"auxiliary blocks as channels): use UNet({image_shape[0]}, ...) or 'unet'")
        train, validate = X, None
        if settings["validation_fraction"] > 0:
            order = rng.permutation(X.shape[0])
            n_held = max(1, int(round(settings["validation_fraction"] * X.shape[0])))
            if n_held >= X.shape[0]:
                raise ValueError(f"validation_fraction: leaves no training points of {X.shape[0]}")
            held, train = X[order[:n_held]], X[order[n_held:]]
            if probabilities is not None:
                probabilities = check_sample_weight(probabilities[order[n_held:]], train.shape[0])
            t_held = self._draw_times(settings, rng, n_held)
            z_held, target_held = self._targets(settings, held, t_held, rng)

            def validate(average):
                return self._mean_loss(form, average, input_shape, z_held, t_held, target_held)

        loop = TrainingLoop(network, settings["lr"], settings["ema_decay"], fingerprint, initial_state)
        start = 0
        if saved is not None:
            rng = loop.restore(saved)
            start = loop.step
        batch_size, pretrain_steps = settings["batch_size"], settings["pretrain_steps"]
        skip_input_grad = _takes_argument(network.backward, "input_grad")

        def step_function(net, step, rng):
            if probabilities is None:
                rows = rng.integers(0, train.shape[0], size=batch_size)
            else:
                rows = rng.choice(train.shape[0], size=batch_size, p=probabilities)
            t = self._draw_times(settings, rng, batch_size)
            z, target = self._targets(settings, train[rows], t, rng, pretraining=step < pretrain_steps)
            e, e_shape = self._network_output(form, net, input_shape, z, t, with_shape=True)
            r = self._residual(form, e, z, target)
            grad = form.tangent(z, (2.0 / batch_size) * r).reshape(e_shape)
            net.backward(grad, input_grad=False) if skip_input_grad else net.backward(grad)
            return float(get_namespace(r).sum(r * r)) / batch_size

        with blas_context(self.blas_threads):
            losses = loop.run(settings["n_steps"], step_function, rng, validate=validate,
                              validation_every=settings["validation_every"], checkpoint=self.checkpoint,
                              checkpoint_every=settings["checkpoint_every"], progress=self.progress,
                              desc="DSM training")
        validation = np.asarray(loop.validation, dtype=np.float64).reshape(-1, 2)
        self.network_, self.raw_network_, self.losses_ = loop.average, loop.network, losses
        self.validation_steps_, self.validation_losses_ = validation[:, 0].astype(int), validation[:, 1]
        self.data_dim_, self.image_shape_, self.n_steps_trained_ = X.shape[1], image_shape, loop.step - start
        self._form, self._base, self._input = form, settings["base"], input_shape
        return self

    # -- evaluation -------------------------------------------------------------------------------
    def _check(self, x, t):
        """Flat states ``(m, D)``, times ``(m,)`` and the shape to return (``(m, *image_shape_)`` for images)."""
        check_fitted(self, "network_")
        form = self._form
        dim = form.state_dim(self.data_dim_)
        if self.image_shape_ is not None and getattr(x, "ndim", None) == 4:
            x = check_points(x, "x", dim=self.image_shape_, ndim=4)
            shape, x = x.shape, x.reshape(x.shape[0], -1)
        else:
            x = form.check_states(x, dim, "x")
            shape = x.shape
        t = self.process.check_time(t, n=x.shape[0])
        return x, np.broadcast_to(t, (x.shape[0],)).astype(np.float64), shape

    def _evaluate(self, x, t, with_base):
        x, t, shape = self._check(x, t)
        out = self._form.from_noise(self._network_output(self._form, self.network_, self._input, x, t), x, t)
        if with_base and self._base is not None:
            out = out + xp_asarray(self._base(x, t), out, "base")
        return out.reshape(shape)

    def correction(self, x, t):
        """The network's part of the score, ``s_theta(x, t)`` (the whole score without ``base``).

        Parameters
        ----------
        x : (m, D) array (images: ``(m, C, H, W)``)
        t : float or (m,) array

        Returns
        -------
        array of the shape of ``x``
        """
        return self._evaluate(x, t, with_base=False)

    def score(self, x, t):
        """The model's score: ``s_theta(x, t)``, plus ``base(x, t)`` in residual mode.

        Parameters
        ----------
        x : (m, D) array (images: ``(m, C, H, W)``)
        t : float or (m,) array

        Returns
        -------
        array of the shape of ``x``
        """
        return self._evaluate(x, t, with_base=True)

    def __call__(self, x, t):
        return self.score(x, t)

    def denoise(self, x, t):
        """Tweedie's posterior mean ``(x + Sigma s) / a`` (scalar Gaussian processes).

        Parameters
        ----------
        x : (m, d) array (images: ``(m, C, H, W)``)
        t : float or (m,) array

        Returns
        -------
        array of the shape of ``x``
        """
        check_fitted(self, "network_")
        if self._form.is_manifold or not self._form.is_scalar:
            raise NotImplementedError("denoise: defined through Tweedie's formula for scalar Gaussian processes only")
        x, t, shape = self._check(x, t)
        Phi, Sigma = self.process.transition(t)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            out = Phi.solve(x + Sigma.apply(self.score(x, t)))
        if not bool(get_namespace(out).all(get_namespace(out).isfinite(out))):
            raise FloatingPointError(f"denoise: Tweedie's (x + Sigma s) / a(t) leaves the range of {x.dtype} at "
                                     f"t up to {float(np.max(t)):.4g} "
                                     f"(a(t) = {float(np.min(self.process.scale(t))):.3g}); "
                                     "use float64 inputs or a smaller t")
        return out.reshape(shape)

    def _network_vjp(self, x, t, v):
        """``J^T v`` of the network part of the score in ``x`` (tangent ``v`` on the sphere); ``(m, D)``."""
        form = self._form
        v = form.tangent(x, v)
        e, e_shape = self._network_output(form, self.network_, self._input, x, t, with_shape=True)
        grad_e = form.from_noise_vjp(v, x, t)
        grad_u = self.network_.backward(grad_e.reshape(e_shape)).reshape(x.shape[0], -1)
        out = form.features_vjp(grad_u, x, t)
        if form.is_manifold:
            out = form.tangent(x, out + form.tangent_vjp(form.from_noise_vjp(e, x, t), x, v))
        return out

    def score_vjp(self, x, t, v):
        """Vector-Jacobian product ``(d score / d x)^T v`` (Riemannian: tangent ``v``, tangent result).

        Parameters
        ----------
        x : (m, D) array (images: ``(m, C, H, W)``)
        t : float or (m,) array
        v : array of the shape of ``x``

        Returns
        -------
        array of the shape of ``x``
        """
        x, t, shape = self._check(x, t)
        v = check_points(get_namespace(x).asarray(v).reshape(x.shape), "v", dim=x.shape[1])
        out = self._network_vjp(x, t, v)
        if self._base is not None:
            base_vjp = getattr(self.base, "score_vjp", None)
            if not callable(base_vjp):
                raise TypeError(f"base: {type(self.base).__name__} has no score_vjp(x, t, v); use divergence(), "
                                "which takes the base's exact divergence")
            out = out + base_vjp(x, t, v)
        return out.reshape(shape)

    def divergence(self, x, t, probes=None):
        """Divergence of the score in ``x``: exact, or Hutchinson estimates ``v^T J v`` for given probes.

        On the sphere this is the Riemannian divergence ``tr(P J P)``: exact over the projected basis
        vectors ``P e_j``, and the probes are projected to the tangent space. In residual mode the
        base contributes its exact ``divergence(x, t)`` when it has one (e.g. OISM), else its
        ``score_vjp`` against the same directions.

        Parameters
        ----------
        x : (m, D) array (images: ``(m, C, H, W)``)
        t : float or (m,) array
        probes : None or (P, m, D) array
            None: exact (``D`` vector-Jacobian products per point). Otherwise one estimate per probe
            (Rademacher or Gaussian probes give unbiased estimates).

        Returns
        -------
        (m,) array (exact) or (P, m) array (one estimate per probe)
        """
        x, t, _ = self._check(x, t)
        xp = get_namespace(x)
        m, dim = x.shape
        if probes is None:
            eye = xp.eye(dim, dtype=x.dtype)
            directions = xp.broadcast_to(eye[:, None, :], (dim, m, dim))
        else:
            directions = xp.asarray(probes, dtype=x.dtype)
            if directions.ndim < 2 or directions.size != directions.shape[0] * m * dim:
                raise ValueError(f"probes: expected shape (P, {m}, {dim}) (or (P, m, *image_shape)), "
                                 f"got {tuple(getattr(directions, 'shape', ()))}")
            directions = directions.reshape(directions.shape[0], m, dim)
        base_exact = self._base is not None and callable(getattr(self.base, "divergence", None))
        use_base_vjp = self._base is not None and not base_exact
        if use_base_vjp and not callable(getattr(self.base, "score_vjp", None)):
            raise TypeError(f"base: {type(self.base).__name__} has neither divergence(x, t) nor score_vjp(x, t, v)")
        quadratic = xp.empty(directions.shape[:2], dtype=x.dtype)
        per_pass = max(1, EVALUATION_ROWS // m)
        with blas_context(self.blas_threads):
            self._quadratic_forms(x, t, directions, quadratic, per_pass, use_base_vjp)
        out = quadratic.sum(axis=0) if probes is None else quadratic
        if base_exact:
            out = out + xp.asarray(self.base.divergence(x, t), dtype=x.dtype)
        return out

    def _quadratic_forms(self, x, t, directions, quadratic, per_pass, use_base_vjp):
        """``quadratic[k, i] = v_ki . J(x_i)^T v_ki`` for the directions ``(K, m, D)``, ``per_pass`` at a time."""
        xp = get_namespace(x)
        m, dim = x.shape
        for start in range(0, directions.shape[0], per_pass):
            block = directions[start:start + per_pass]
            k = block.shape[0]
            xs, ts = xp.concatenate([x] * k), np.concatenate([t] * k)
            vs = self._form.tangent(xs, block.reshape(k * m, dim))
            jv = self._network_vjp(xs, ts, vs)
            if use_base_vjp:
                jv = jv + self.base.score_vjp(xs, ts, vs)
            quadratic[start:start + k] = xp.sum(vs * jv, axis=1).reshape(k, m)

    def dsm_loss(self, X, rng=None, n_repeats=1):
        """Held-out DSM loss of the fitted (averaged) model on data ``X``, in the training units.

        Parameters
        ----------
        X : (n, d) or (n, C, H, W) array
        rng : None, int or Generator
            Draws of times and noise.
        n_repeats : int
            Draws per data point.

        Returns
        -------
        float
            ``mean |P e_theta - e_target|^2`` (Gaussian processes: the noise-prediction loss).
        """
        check_fitted(self, "network_")
        settings = self._settings()
        X, _ = self._check_data(X, self._form)
        if X.shape[1] != self.data_dim_:
            raise ValueError(f"X: expected data of dimension {self.data_dim_}, got {X.shape[1]}")
        rng = as_generator(rng)
        X = np.concatenate([X] * check_count(n_repeats, "n_repeats"))
        t = self._draw_times(settings, rng, X.shape[0])
        z, target = self._targets(settings, X, t, rng)
        return self._mean_loss(self._form, self.network_, self._input, z, t, target)

    def bits_per_dim(self, images, data_range=(0.0, 1.0), n_levels=256, **options):
        """Bits per dimension of images under the model's probability-flow likelihood.

        ``bpd = -(log p(x) + D log(hi - lo)) / (D ln 2) + log2(n_levels)``: the density of data rescaled
        to ``[0, 1]`` discretised in ``n_levels`` bins (uniformly dequantised data expected).

        Parameters
        ----------
        images : (n, C, H, W) or (n, d) array
            Data in ``data_range`` (dequantised by the caller, e.g. ``x + U(0, (hi - lo) / n_levels)``).
        data_range : (float, float)
            ``(lo, hi)`` of the data.
        n_levels : int
        **options
            Passed to :func:`opdiff.sampling.log_likelihood` (``divergence``, ``n_probes``, ``n_steps``, ``rng``, ...).

        Returns
        -------
        (n,) array
        """
        from ..metrics import bits_per_dim
        from ..sampling.likelihood import log_likelihood

        lo, hi = (float(v) for v in data_range)
        if not hi > lo:
            raise ValueError(f"data_range: expected (lo, hi) with hi > lo, got {data_range}")
        flat, _ = self._check_data(images, self._form)
        dim = flat.shape[1]
        result = log_likelihood(self, images, **options)
        return bits_per_dim(result.log_likelihood, dim, log_jacobian=dim * math.log(hi - lo), n_levels=n_levels)


def _takes_argument(function, name):
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def blas_context(threads):
    """A context limiting BLAS to ``threads`` threads (None: no limit).

    Parameters
    ----------
    threads : int or None

    Returns
    -------
    context manager
    """
    if threads is None:
        return contextlib.nullcontext()
    if int(threads) == 1:
        return single_threaded_blas()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        raise ImportError("blas_threads > 1 needs threadpoolctl (pip install opdiff[data] or threadpoolctl)") from None
    return threadpool_limits(int(threads), user_api="blas")


def xp_asarray(values, like, name):
    """``values`` as an array of ``like``'s namespace, dtype and shape (a given score's output).

    Parameters
    ----------
    values : array
    like : array
    name : str
        Argument name for the error message.

    Returns
    -------
    array
    """
    xp = get_namespace(like)
    out = xp.asarray(values, dtype=like.dtype)
    if out.shape != like.shape:
        raise ValueError(f"{name}: expected a score of shape {tuple(like.shape)}, got {tuple(out.shape)}")
    if not bool(xp.all(xp.isfinite(out))):
        raise ValueError(f"{name}: returned non-finite scores")
    return out
