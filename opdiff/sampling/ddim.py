"""DDIM for Gaussian processes ``x_t = a(t) (x_0 + s(t) C^{1/2} eps)``: scalar (``C = I``) or anisotropic (SAGD).

In the VE coordinates ``y = x_t / a(t)`` at level ``sigma = s(t)``, DDIM with stochasticity ``eta``
(Song et al. 2021, arXiv 2010.02502) is exactly :func:`~opdiff.sampling.sample_euler_ancestral`
with noise coloured by ``C^{1/2}``: ``y_next = D + sigma_down eps + sigma_up C^{1/2} z`` with
DDIM's ``sigma_t(eta) = sigma_up``. The spectrally anisotropic processes of SAGD (arXiv 2510.09660)
have this form with ``C = Sigma_w``.
"""
import dataclasses

import numpy as np

from ..backend import as_generator, check_positive, get_namespace
from ._common import CountedModel, check_start, check_times
from .ancestral import sample_euler_ancestral


def _structure(process):
    """``(scale, noise_level, x0_from_score, noise_root)`` of a process ``x_t = a (x_0 + s C^{1/2} eps)``.

    ``x0_from_score(x, t, score)`` is Tweedie's ``x / a + s^2 a C score``; ``noise_root()`` returns
    ``z -> C^{1/2} z``. Processes with a scalar ``schedule``, ``denoise_from_score`` and a noise
    ``covariance`` (SAGD) give their own; scalar Gaussian processes (``scale``, ``noise_level``) have ``C = I``.
    """
    schedule = getattr(process, "schedule", None)
    if all(callable(getattr(schedule, name, None)) for name in ("scale", "noise_level")) \
            and callable(getattr(process, "denoise_from_score", None)) \
            and callable(getattr(getattr(process, "covariance", None), "cholesky", None)):
        return (schedule.scale, schedule.noise_level, lambda x, t, s: process.denoise_from_score(x, t, s)[0],
                lambda: process.covariance.cholesky().apply)
    if all(callable(getattr(process, name, None)) for name in ("scale", "noise_level", "time_at_noise_level")):
        def x0_from_score(x, t, s):
            a, sigma = float(process.scale(t)), float(process.noise_level(t))
            return x / a + (sigma * sigma * a) * s

        return process.scale, process.noise_level, x0_from_score, lambda: (lambda z: z)
    raise TypeError(f"process: expected a process x_t = a(t) (x_0 + s(t) C^(1/2) eps): a scalar Gaussian process "
                    f"(VPSDE, VESDE, ...) or one with a scalar schedule, denoise_from_score and a noise covariance "
                    f"(SpectralAnisotropic), got {type(process).__name__}")


def sample_ddim(score, x, times, *, process, eta=0.0, rng=None, callback=None, progress=False, record=False):
    """DDIM (``eta = 0``) or stochastic DDIM (``0 < eta <= 1``) with the process's noise covariance.

    The score is evaluated at every time of ``times``; the last step returns the denoised
    ``x0_hat`` at ``times[-1]`` (the grid ends with a jump to ``sigma = 0``).

    Parameters
    ----------
    score : callable
        ``score(x (n, D), t float) -> (n, D)``: a score of the forward marginals (e.g.
        ``DiffusionKernelSmoother(process).fit(X).score``).
    x : (n, D) array
        Starting states at ``times[0]`` (e.g. ``process.prior().sample(n, process.dim, rng)``).
    times : (n_steps,) array
        Strictly decreasing times inside the process's range (e.g. ``np.linspace(T, 1e-3, 50)``).
    process : SpectralAnisotropic or ScalarGaussianProcess
        A process with a scalar ``schedule`` (``scale``, ``noise_level``), ``denoise_from_score`` and a
        noise ``covariance`` with ``cholesky()`` (SAGD), or a scalar Gaussian process (VP, VE, OU: ``C = I``).
    eta : float
        Stochasticity in ``[0, 1]``.
    rng : None, int or Generator
        Source of the noise (used when ``eta > 0``).
    callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`; levels, points and the recorded trajectories are
        in the VE coordinates ``y = x_t / a(t)``.

    Returns
    -------
    Trajectory
        ``x`` the final ``x0_hat`` ``(n, D)``; ``sigmas = s(times)`` then 0, ``times`` then 0;
        ``nfe = len(times)`` score evaluations.
    """
    scale, noise_level, x0_from_score, noise_root = _structure(process)
    eta = check_positive(eta, "eta", strict=False)
    if eta > 1:
        raise ValueError(f"eta: expected a value in [0, 1], got {eta}")
    x = check_start(x)
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"times: expected a 1-D grid, got shape {times.shape}")
    times = check_times(np.append(times, 0.0))[:-1]  # decreasing and positive: the score is evaluated at each
    if hasattr(process, "check_time"):
        process.check_time(times, name="times")
    scales = np.array([float(scale(t)) for t in times])
    sigmas = np.array([float(noise_level(t)) for t in times])
    at_level = {sigma: (t, a) for sigma, t, a in zip(sigmas.tolist(), times.tolist(), scales.tolist())}
    counted = CountedModel(score, "score", x.shape, x.dtype)

    def denoiser(y, sigma):
        t, a = at_level[sigma]
        return x0_from_score(a * y, t, counted(a * y, t))

    noise_sampler = None
    if eta > 0:
        rng, root, xp = as_generator(rng), noise_root(), get_namespace(x)

        def noise_sampler(sigma, sigma_next):
            return root(xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype))

    trajectory = sample_euler_ancestral(denoiser, x / scales[0], np.append(sigmas, 0.0), eta=eta,
                                        noise_sampler=noise_sampler, callback=callback, progress=progress,
                                        record=record)
    return dataclasses.replace(trajectory, method="ddim", times=np.append(times, 0.0), extras={"eta": eta})
