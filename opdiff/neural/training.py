"""The training loop shared by every neural score model: Adam, EMA of the weights, exact checkpoints.

A checkpoint is one ``.npz`` file holding everything the loop's future depends on: the raw and the
averaged weights, Adam's moments and step count, the generator's state, the initial generator state
(to rebuild the initial network and the held-out draws), the loss history and a fingerprint of the
settings. Resuming from it replays the remaining steps bit for bit: a run interrupted at step ``k``
and resumed ends with the same weights as an uninterrupted run.
"""
import copy
import json
import os
import zlib

import numpy as np
from tqdm.auto import tqdm

from ..backend import check_count, get_namespace, to_numpy
from .optim import Adam

CHECKPOINT_VERSION = 1


def generator_from_state(state):
    """A ``numpy.random.Generator`` in the given bit-generator ``state`` (a dict, as ``bit_generator.state``).

    Parameters
    ----------
    state : dict

    Returns
    -------
    numpy.random.Generator
    """
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def data_checksum(X):
    """CRC32 of the bytes of ``X`` (identifies the training data in a checkpoint).

    Parameters
    ----------
    X : array

    Returns
    -------
    int
    """
    return int(zlib.crc32(np.ascontiguousarray(to_numpy(X)).tobytes()))


def ema_decay_at(decay, step):
    """Decay of the weight average after ``step`` updates: ``min(decay, (1 + step) / (10 + step))``.

    The warm-up (as TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) keeps the average from
    remembering the random initial weights in short runs.

    Parameters
    ----------
    decay : float
        The long-run decay, in ``[0, 1)``.
    step : int
        Number of updates so far (non-negative).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``decay`` is not in ``[0, 1)`` or ``step`` is not a non-negative integer.
    """
    try:
        value = float(decay)
    except (TypeError, ValueError):
        raise TypeError(f"decay: expected a number in [0, 1), got {type(decay).__name__}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"decay: expected a number in [0, 1), got {decay!r}")
    step = check_count(step, "step", minimum=0)
    return min(value, (1.0 + step) / (10.0 + step))


def _arrays(network):
    return [param for _, _, param in network.parameters()]


class TrainingLoop:
    """Adam steps on a network with an exponential moving average of its weights and checkpoints.

    Parameters
    ----------
    network : object
        ``parameters()`` / ``gradients()`` lists of ``(index, name, array)`` (an MLP, UNet or adapter).
    lr : float
        Adam step size.
    ema_decay : float or None
        Decay of the weight average (None: no average; :attr:`average` is then the network itself).
    fingerprint : dict
        JSON-serialisable settings a checkpoint must match to be resumed.
    initial_rng_state : dict
        The generator's state before the network was built (stored in checkpoints).
    """

    def __init__(self, network, lr, ema_decay, fingerprint, initial_rng_state):
        self.network, self.ema_decay = network, ema_decay
        self.optimiser = Adam(network, lr=lr)
        self.average = copy.deepcopy(network) if ema_decay else network
        self.fingerprint, self.initial_rng_state = fingerprint, initial_rng_state
        self.step, self.losses, self.validation = 0, [], []

    # -- one update ---------------------------------------------------------------------------------
    def update(self):
        """Adam on the gradients stored in the network, then the weight average."""
        self.optimiser.step()
        self.step += 1
        if self.ema_decay:
            decay = ema_decay_at(self.ema_decay, self.step)
            for average, param in zip(_arrays(self.average), _arrays(self.network)):
                average *= decay
                average += (1.0 - decay) * param

    def run(self, n_steps, step_function, rng, *, validate=None, validation_every=None, checkpoint=None,
            checkpoint_every=None, progress=False, desc="training"):
        """Steps ``self.step .. n_steps - 1``; returns the losses of all steps ``(n_steps,)``.

        Parameters
        ----------
        n_steps : int
            Total number of steps (including those already taken).
        step_function : callable
            ``step_function(network, step, rng) -> loss``: forward and backward on one batch (fills the
            network's gradients).
        rng : numpy.random.Generator
        validate : callable, optional
            ``validate(average_network) -> float``: the held-out loss, every ``validation_every`` steps
            and after the last.
        validation_every : int, optional
        checkpoint : str or path, optional
            Written every ``checkpoint_every`` steps and after the last.
        checkpoint_every : int, optional
        progress : bool
            tqdm bar.
        desc : str
            Bar label.

        Returns
        -------
        (n_steps,) array
        """
        # a resumed run keeps the regular held-out evaluations, not the extra one at the end of the earlier run
        self.validation = [(s, v) for s, v in self.validation if validation_every and s % validation_every == 0]
        for step in tqdm(range(self.step, n_steps), disable=not progress, desc=desc, initial=self.step,
                         total=n_steps):
            loss = float(step_function(self.network, step, rng))
            if not np.isfinite(loss):
                raise FloatingPointError(f"training diverged at step {step} (non-finite loss {loss}); lower lr")
            self.losses.append(loss)
            self.update()
            done = self.step == n_steps
            if validate is not None and (done or (validation_every and self.step % validation_every == 0)):
                self.validation.append((self.step, float(validate(self.average))))
            if checkpoint is not None and (done or (checkpoint_every and self.step % checkpoint_every == 0)):
                self.save(checkpoint, rng)
        return np.asarray(self.losses, dtype=np.float64)

    # -- checkpoints --------------------------------------------------------------------------------
    def save(self, path, rng):
        """Write the checkpoint ``path`` (``.npz``; written to a temporary file, then renamed).

        Parameters
        ----------
        path : str or path
        rng : numpy.random.Generator
            The training generator (its state is saved).
        """
        adam = self.optimiser.state()
        first, second = adam["first_moments"], adam["second_moments"]
        arrays = {"losses": np.asarray(self.losses, dtype=np.float64),
                  "validation": np.asarray(self.validation, dtype=np.float64).reshape(-1, 2)}
        for k, (param, average) in enumerate(zip(_arrays(self.network), _arrays(self.average))):
            arrays[f"param_{k}"], arrays[f"average_{k}"] = to_numpy(param), to_numpy(average)
            arrays[f"adam_m_{k}"], arrays[f"adam_v_{k}"] = first[k], second[k]
        meta = {"version": CHECKPOINT_VERSION, "step": self.step, "adam_step": adam["step_count"],
                "rng_state": rng.bit_generator.state, "initial_rng_state": self.initial_rng_state,
                "fingerprint": self.fingerprint}
        arrays["meta"] = np.array(json.dumps(meta))
        path = os.fspath(path)
        temporary = path + ".partial.npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, path)

    def restore(self, checkpoint):
        """Load a checkpoint (from :func:`read_checkpoint`) into the network, average and Adam.

        Parameters
        ----------
        checkpoint : dict

        Returns
        -------
        numpy.random.Generator
            The training generator in its saved state.
        """
        params = _arrays(self.network)
        if checkpoint["n_params"] != len(params):
            raise ValueError(f"checkpoint: holds {checkpoint['n_params']} parameter arrays, the network has "
                             f"{len(params)}")
        for k, (param, average) in enumerate(zip(params, _arrays(self.average))):
            saved = checkpoint[f"param_{k}"]
            if saved.shape != param.shape or saved.dtype != param.dtype:
                raise ValueError(f"checkpoint: parameter {k} has shape {saved.shape} and dtype {saved.dtype}, "
                                 f"the network's is {param.shape} {param.dtype}")
            xp = get_namespace(param)
            param[...] = xp.asarray(saved)
            if average is not param:
                average[...] = xp.asarray(checkpoint[f"average_{k}"])
        n = len(params)
        self.optimiser.load_state({"step_count": checkpoint["meta"]["adam_step"],
                                   "first_moments": [checkpoint[f"adam_m_{k}"] for k in range(n)],
                                   "second_moments": [checkpoint[f"adam_v_{k}"] for k in range(n)]})
        self.step = int(checkpoint["meta"]["step"])
        self.losses = [float(v) for v in checkpoint["losses"]]
        self.validation = [(int(s), float(v)) for s, v in checkpoint["validation"]]
        return generator_from_state(checkpoint["meta"]["rng_state"])


def read_checkpoint(path, fingerprint):
    """Read a checkpoint written by :meth:`TrainingLoop.save` and check its settings.

    Parameters
    ----------
    path : str or path
    fingerprint : dict
        The current settings; every key must match the checkpoint's.

    Returns
    -------
    dict
        Arrays by name, ``meta`` (a dict) and ``n_params``.

    Raises
    ------
    ValueError
        The file is not an opdiff checkpoint, or was written with other settings (the message names them).
    """
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "meta" not in data:
            raise ValueError(f"checkpoint: {os.fspath(path)} is not an opdiff training checkpoint")
        out = {name: data[name] for name in data.files if name != "meta"}
        meta = json.loads(str(data["meta"]))
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint: expected version {CHECKPOINT_VERSION}, got {meta.get('version')}")
    saved = meta["fingerprint"]
    different = sorted(key for key in set(saved) | set(fingerprint) if saved.get(key) != fingerprint.get(key))
    if different:
        details = ", ".join(f"{key}: {saved.get(key)!r} there, {fingerprint.get(key)!r} now" for key in different)
        raise ValueError(f"checkpoint: {os.fspath(path)} was written with other settings ({details}); "
                         "remove it or pass resume=False")
    out["meta"] = meta
    out["n_params"] = sum(1 for name in out if name.startswith("param_"))
    return out
