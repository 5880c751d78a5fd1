"""The result of every sampler: sampling and denoising trajectories, the time grid and the NFE count."""
from dataclasses import dataclass, field

import numpy as np

from ..backend import get_namespace


@dataclass(frozen=True)
class Trajectory:
    """A sampling run, stored step by step.

    Attributes
    ----------
    samples : (n_steps + 1, n, *shape) array
        The sampling trajectory ``x_{t_0}, ..., x_{t_N}``; ``samples[0]`` is the starting point and
        ``samples[-1]`` the output (for ODE jump, the denoised output of the last point reached).
    denoised : (n_steps, n, *shape) array or None
        The denoising trajectory ``D(x_{t_i}, sigma_i)`` at the start of every step, the
        by-product every solver evaluates anyway (``None`` when the process has no denoiser form).
    sigmas : (n_steps + 1,) float64 array or None
        Noise levels of ``samples`` in the VE form (``None`` for a process without one).
    times : (n_steps + 1,) float64 array or None
        Process times of ``samples`` (``None`` for samplers run directly in the VE form).
    nfe : int
        Exact number of denoiser (or score) evaluations made, one per call on the whole batch.
    method : str
        Name of the solver.
    extras : dict
        Solver options worth keeping (e.g. ``max_order``, ``jump_step``).
    """

    samples: object
    denoised: object
    sigmas: object
    times: object
    nfe: int
    method: str
    extras: dict = field(default_factory=dict)

    @property
    def x(self):
        """The output points, ``samples[-1]`` of shape ``(n, *shape)``."""
        return self.samples[-1]

    @property
    def n_steps(self):
        """Number of steps taken (``len(samples) - 1``)."""
        return self.samples.shape[0] - 1

    @property
    def noise(self):
        """Noise (``eps``) directions ``(x_i - D(x_i)) / sigma_i``, shape ``(n_steps, n, *shape)``.

        Defined for steps whose starting noise level is positive.
        """
        if self.denoised is None or self.sigmas is None:
            raise ValueError("noise: this trajectory has no denoising trajectory in the VE form")
        sig = np.asarray(self.sigmas[: self.denoised.shape[0]])
        if np.any(sig <= 0):
            raise ValueError("noise: undefined at a zero noise level")
        xp = get_namespace(self.samples)
        shape = (-1,) + (1,) * (self.samples.ndim - 1)
        xp_sig = xp.asarray(sig.reshape(shape), dtype=self.samples.dtype)
        return (self.samples[: self.denoised.shape[0]] - self.denoised) / xp_sig
