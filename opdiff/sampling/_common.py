"""Machinery shared by every solver: input checks, NFE counting, recording and progress bars."""
import numpy as np

from ..backend import check_points, get_namespace
from .trajectory import Trajectory


def check_sigmas(sigmas, name="sigmas"):
    """Validate a noise-level grid: 1-D, at least two entries, finite, non-negative, strictly decreasing.

    Returns
    -------
    (n_steps + 1,) float64 NumPy array
    """
    arr = np.asarray(sigmas.get() if hasattr(sigmas, "get") else sigmas, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"{name}: expected a 1-D grid with at least 2 entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: expected finite non-negative values, got {arr}")
    if np.any(np.diff(arr) >= 0):
        raise ValueError(f"{name}: expected a strictly decreasing grid, got {arr}")
    return arr


def check_times(times, name="times"):
    """Validate a process time grid: 1-D, at least two entries, finite, strictly decreasing (reverse time)."""
    arr = np.asarray(times.get() if hasattr(times, "get") else times, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"{name}: expected a 1-D grid with at least 2 entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite times, got {arr}")
    if np.any(np.diff(arr) >= 0):
        raise ValueError(f"{name}: expected strictly decreasing times (from t_max down to t_min), got {arr}")
    return arr


def check_start(x, name="x"):
    """Validate starting points ``(n, *shape)`` (finite, float32 kept, everything else float64)."""
    if getattr(x, "ndim", None) is None or x.ndim < 2:
        x = check_points(x, name, ndim=2)  # raises a ValueError naming the expected shape
    x = check_points(x, name, ndim=None)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected points of shape (n, d) or (n, *shape), got shape {tuple(x.shape)}")
    return x


class CountedModel:
    """Wrap a model ``f(x, level) -> array like x`` to count calls and check every output.

    A call on the whole batch counts as one function evaluation (NFE).
    """

    def __init__(self, model, name, shape, dtype):
        if not callable(model):
            raise TypeError(f"{name}: expected a callable f(x, level), got {type(model).__name__}")
        self.model, self.name, self.shape, self.dtype = model, name, tuple(shape), dtype
        self.nfe = 0

    def __call__(self, x, level):
        out = self.model(x, level)
        self.nfe += 1
        xp = get_namespace(x)
        out = xp.asarray(out)
        if tuple(out.shape) != self.shape:
            raise ValueError(f"{self.name}: expected an output of shape {self.shape}, got {tuple(out.shape)}")
        if not bool(xp.all(xp.isfinite(out))):
            raise ValueError(f"{self.name}: returned non-finite values at level {float(level):.6g}")
        return out.astype(self.dtype, copy=False)


def steps(n_steps, progress, desc):
    """``range(n_steps)`` wrapped in a tqdm bar when ``progress`` is true."""
    if not progress:
        return range(n_steps)
    from tqdm.auto import tqdm

    return tqdm(range(n_steps), desc=desc, leave=False)


class Recorder:
    """Collect the sampling and denoising trajectories of a run and call the user callback."""

    def __init__(self, x, callback):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable or None, got {type(callback).__name__}")
        self.samples, self.denoised, self.callback = [x], [], callback

    def step(self, i, x_next, denoised, level, level_next):
        """Record the end of step ``i``: the new point and the denoised output at its start."""
        self.samples.append(x_next)
        if denoised is not None:
            self.denoised.append(denoised)
        if self.callback is not None:
            self.callback({"i": i, "x": x_next, "denoised": denoised, "sigma": level, "sigma_next": level_next})

    def result(self, method, nfe, sigmas=None, times=None, **extras):
        """Build the :class:`Trajectory`."""
        xp = get_namespace(self.samples[0])
        denoised = xp.stack(self.denoised) if self.denoised else None
        return Trajectory(xp.stack(self.samples), denoised, sigmas, times, int(nfe), method, extras)


def prepare(denoiser, x, sigmas, name="denoiser"):
    """Common entry of the VE-form solvers: checked start, grid and a counted denoiser."""
    x = check_start(x)
    sigmas = check_sigmas(sigmas)
    return CountedModel(denoiser, name, x.shape, x.dtype), x, sigmas


def derivative(x, denoised, sigma):
    """Right-hand side of the VE probability-flow ODE, ``dx/dsigma = (x - D(x, sigma)) / sigma``."""
    return (x - denoised) / sigma
