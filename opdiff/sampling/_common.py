"""Machinery shared by every solver: input checks, NFE counting, recording and progress bars."""
import math

import numpy as np

from ..backend import as_generator, check_points, check_positive, get_namespace
from .trajectory import RECORDABLE, Trajectory


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

    A call on the whole batch counts as one function evaluation (NFE). The output must have the
    shape of the input ``x`` (so a masked sub-batch is accepted), or ``(len(x),)`` with ``per_point``,
    and be finite unless ``check_finite`` is false (the caller then handles non-finite values).
    """

    def __init__(self, model, name, shape, dtype, check_finite=True, per_point=False):
        if not callable(model):
            raise TypeError(f"{name}: expected a callable f(x, level), got {type(model).__name__}")
        self.model, self.name, self.shape, self.dtype = model, name, tuple(shape), dtype
        self.check_finite, self.per_point = check_finite, per_point
        self.nfe = 0

    def __call__(self, x, level):
        out = self.model(x, level)
        self.nfe += 1
        xp = get_namespace(x)
        out = xp.asarray(out)
        expected = x.shape[:1] if self.per_point else x.shape
        if out.shape != expected:
            raise ValueError(f"{self.name}: expected an output of shape {tuple(expected)}, got {tuple(out.shape)}")
        if self.check_finite:
            check_output_finite(out, xp, self.name, level)
        return out.astype(self.dtype, copy=False)


def check_output_finite(out, xp, name, level):
    """Raise a ValueError naming ``name`` if ``out`` holds a NaN or an infinity.

    One reduction instead of an elementwise mask: the sum of finite values is finite unless it
    overflows, and only then is the exact (elementwise) check needed.
    """
    if not math.isfinite(float(out.sum())) and not bool(xp.all(xp.isfinite(out))):
        raise ValueError(f"{name}: returned non-finite values at level {float(level):.6g}")


def steps(n_steps, progress, desc):
    """``range(n_steps)`` wrapped in a tqdm bar when ``progress`` is true."""
    if not progress:
        return range(n_steps)
    from tqdm.auto import tqdm

    return tqdm(range(n_steps), desc=desc, leave=False)


def normal(rng, x):
    """Standard normal noise shaped and typed like ``x`` (in its namespace)."""
    xp = get_namespace(x)
    return xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype)


def noise_source(noise_sampler, rng):
    """``noise(x, sigma, sigma_next)``: standard normal noise like ``x``, from ``noise_sampler`` or ``rng``.

    ``noise_sampler(sigma, sigma_next) -> array`` is k-diffusion's convention (e.g. coloured noise).
    """
    if noise_sampler is None:
        rng = as_generator(rng)
        return lambda x, sigma, sigma_next: normal(rng, x)
    if not callable(noise_sampler):
        raise TypeError(f"noise_sampler: expected a callable noise_sampler(sigma, sigma_next), "
                        f"got {type(noise_sampler).__name__}")

    def draw(x, sigma, sigma_next):
        xp = get_namespace(x)
        z = xp.asarray(noise_sampler(sigma, sigma_next))
        if z.shape != x.shape:
            raise ValueError(f"noise_sampler: expected noise of shape {tuple(x.shape)}, got {tuple(z.shape)}")
        check_output_finite(z, xp, "noise_sampler", sigma)
        return z.astype(x.dtype, copy=False)

    return draw


def check_record(record, available=RECORDABLE):
    """The trajectories to keep: ``False``/``None`` nothing, ``True`` all ``available``, or a name / tuple of names.

    Returns
    -------
    tuple of str
        A subset of ``available``.
    """
    if record is None or record is False:
        return ()
    if record is True:
        return tuple(available)
    names = (record,) if isinstance(record, str) else record
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"record: expected a bool, a name or a tuple of names from {RECORDABLE}, "
                        f"got {type(record).__name__}") from None
    for name in names:
        if name not in RECORDABLE:
            raise ValueError(f"record: expected names from {RECORDABLE}, got {name!r}")
        if name not in available:
            raise ValueError(f"record: this sampler has no {name} trajectory (it records {tuple(available)})")
    return tuple(dict.fromkeys(names))


class Recorder:
    """Keep what a run was asked to keep and call the user callback (k-diffusion style).

    Parameters
    ----------
    x : (n, *shape) array
        The starting point.
    n_steps : int
        Number of steps of the run (the size of the recording buffers).
    callback : callable or None
        Called after every step with ``{"x", "i", "sigma", "sigma_hat", "denoised", "sigma_next", "x_next"}``:
        ``x`` is the point where the step's denoiser was evaluated, at level ``sigma_hat`` (``sigma``
        but for EDM churn), ``x_next`` the point reached at ``sigma_next``.
    record : bool, str or tuple of str
        As in :func:`check_record`.
    available : tuple of str
        The trajectories this sampler can produce.
    """

    def __init__(self, x, n_steps, callback, record, available=RECORDABLE):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable or None, got {type(callback).__name__}")
        names = check_record(record, available)
        self.callback = callback
        self.xp, self.n_steps = get_namespace(x), n_steps
        self.samples = self.denoised = None
        if "samples" in names:  # preallocated: one copy per step, no stacking at the end
            self.samples = self.xp.empty((n_steps + 1,) + tuple(x.shape), dtype=x.dtype)
            self.samples[0] = x
        self.keep_denoised = "denoised" in names
        #: Whether anyone will look at the denoised output (process-form samplers skip Tweedie otherwise).
        self.wants_denoised = self.keep_denoised or callback is not None

    def step(self, i, x, x_next, denoised, sigma, sigma_next, sigma_hat=None):
        """Record step ``i`` from ``x`` (denoised output ``denoised``) to ``x_next``."""
        if self.samples is not None:
            self.samples[i + 1] = x_next
        if self.keep_denoised:
            if self.denoised is None:  # allocated at the first step: the data block may be smaller than x
                self.denoised = self.xp.empty((self.n_steps,) + tuple(denoised.shape), dtype=denoised.dtype)
            self.denoised[i] = denoised
        if self.callback is not None:
            self.callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma if sigma_hat is None else sigma_hat,
                           "denoised": denoised, "sigma_next": sigma_next, "x_next": x_next})

    def result(self, x, method, nfe, sigmas=None, times=None, **extras):
        """Build the :class:`Trajectory` ending at ``x``."""
        recorded = {name: value for name, value in (("samples", self.samples), ("denoised", self.denoised))
                    if value is not None}
        return Trajectory(x, int(nfe), method, sigmas, times, extras, recorded)


def prepare(denoiser, x, sigmas, name="denoiser"):
    """Common entry of the VE-form solvers: checked start, grid and a counted denoiser."""
    x = check_start(x)
    sigmas = check_sigmas(sigmas)
    return CountedModel(denoiser, name, x.shape, x.dtype), x, sigmas


def begin(denoiser, x, sigmas, callback, record):
    """:func:`prepare` and the run's :class:`Recorder`: ``(model, x, sigmas, run)``."""
    model, x, sigmas = prepare(denoiser, x, sigmas)
    return model, x, sigmas, Recorder(x, len(sigmas) - 1, callback, record)


def check_noise_options(eta, s_noise):
    """``(eta, s_noise)`` of the ancestral and SDE samplers, both non-negative finite floats."""
    return check_positive(eta, "eta", strict=False), check_positive(s_noise, "s_noise", strict=False)


def derivative(x, denoised, sigma):
    """Right-hand side of the VE probability-flow ODE, ``dx/dsigma = (x - D(x, sigma)) / sigma``."""
    return (x - denoised) / sigma
