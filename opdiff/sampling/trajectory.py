"""The result of every sampler: the final samples, the NFE count, the grid and, when asked, the trajectories."""
from dataclasses import dataclass, field

import numpy as np

from ..backend import get_namespace

#: Trajectories a sampler can record (``record=`` of every solver).
RECORDABLE = ("samples", "denoised")


def _describe(array):
    """``(2048, 2) float64``: shape and dtype, never the values."""
    return f"{tuple(array.shape)} {array.dtype}"


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A sampling run: its output, its cost and, when recorded, its path.

    Every solver keeps only the final samples unless it is called with ``record=True`` (or
    ``record=("samples",)``, ``record=("denoised",)``), so that memory does not grow with the number
    of steps.

    Attributes
    ----------
    x : (n, *shape) array
        The output points (for ODE jump, the denoised output of the last point reached).
    nfe : int
        Exact number of denoiser (or score, or velocity) evaluations, one per call on the whole batch.
    method : str
        Name of the solver.
    sigmas : (n_steps + 1,) float64 array or None
        Noise levels of the grid in the VE form (``None`` for a process-time run).
    times : (n_steps + 1,) float64 array or None
        Process times of the grid (``None`` for samplers run directly in the VE form).
    extras : dict
        Solver options and by-products worth keeping (e.g. ``max_order``, ``jump_step``, ``log_det``).
    recorded : dict
        ``name -> array`` of the recorded trajectories (empty unless ``record`` was set); read them
        through :attr:`samples` and :attr:`denoised`.
    """

    x: object
    nfe: int
    method: str
    sigmas: object = None
    times: object = None
    extras: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)

    def _recorded(self, name):
        if name not in self.recorded:
            raise ValueError(f"{name}: this {self.method} run did not record its {name} trajectory; "
                             f"call the sampler with record=True (or record=({name!r},))")
        return self.recorded[name]

    @property
    def samples(self):
        """The sampling trajectory ``x_{t_0}, ..., x_{t_N}``, ``(n_steps + 1, n, *shape)``; needs ``record``.

        ``samples[0]`` is the starting point and ``samples[-1]`` equals :attr:`x`.
        """
        return self._recorded("samples")

    @property
    def denoised(self):
        """The denoising trajectory ``D(x_{t_i}, sigma_i)`` at the start of every step, ``(n_steps, n, *shape)``.

        The by-product every VE-form solver evaluates anyway (for process-time runs, Tweedie's
        ``E[x_0 | x_t]`` of Gaussian processes); needs ``record``.
        """
        return self._recorded("denoised")

    @property
    def grid(self):
        """The grid of the run: :attr:`sigmas` when set, else :attr:`times`."""
        return self.sigmas if self.sigmas is not None else self.times

    @property
    def n_steps(self):
        """Number of steps taken (``len(grid) - 1``)."""
        return len(self.grid) - 1

    @property
    def noise(self):
        """Noise (``eps``) directions ``(x_i - D(x_i)) / sigma_i``, shape ``(n_steps, n, *shape)``.

        Defined for steps whose starting noise level is positive; needs both trajectories recorded.
        """
        if self.sigmas is None:
            raise ValueError("noise: this trajectory has no noise levels (not a VE-form run)")
        samples, denoised = self.samples, self.denoised
        sig = np.asarray(self.sigmas[: denoised.shape[0]])
        if np.any(sig <= 0):
            raise ValueError("noise: undefined at a zero noise level")
        xp = get_namespace(samples)
        shape = (-1,) + (1,) * (samples.ndim - 1)
        xp_sig = xp.asarray(sig.reshape(shape), dtype=samples.dtype)
        return (samples[: denoised.shape[0]] - denoised) / xp_sig

    def __repr__(self):
        parts = [f"method={self.method!r}", f"n_steps={self.n_steps}", f"nfe={self.nfe}", f"x={_describe(self.x)}"]
        parts += [f"{name}={_describe(value)}" for name, value in self.recorded.items()]
        return f"Trajectory({', '.join(parts)})"
