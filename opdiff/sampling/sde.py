"""Stochastic samplers: reverse-SDE Euler-Maruyama and predictor-corrector (Langevin corrector).

Two entry points per method family:

- VE form (``denoiser(x, sigma)``, noise-level grid), shared signature with the ODE solvers:
  :func:`sample_euler_maruyama`, :func:`sample_predictor_corrector`;
- any forward process in its own time (``score(x, t)``, ``process.drift``, ``process.diffusion``):
  :func:`sample_reverse_sde`.
"""
import numbers

from ..backend import as_generator, check_positive, get_namespace
from ._common import CountedModel, Recorder, begin, check_start, check_times, normal, steps
from .process_form import ProcessDynamics


def _reverse_ve_step(x, denoised, sigma, sigma_next, rng):
    """Euler-Maruyama step of the reverse VE SDE (noise-free into ``sigma_next = 0``)."""
    delta = sigma * sigma - sigma_next * sigma_next
    x = x + (delta / (sigma * sigma)) * (denoised - x)
    if sigma_next > 0:
        x = x + delta**0.5 * normal(rng, x)
    return x


def sample_euler_maruyama(denoiser, x, sigmas, *, rng=None, callback=None, progress=False, record=False):
    """Euler-Maruyama for the reverse VE SDE ``dx = -d(sigma^2) score dt + sqrt(d(sigma^2)) dW``.

    With ``delta = sigma^2 - sigma_next^2`` and ``score = (D - x) / sigma^2`` a step is

        x_next = x + (delta / sigma^2) (D - x) + sqrt(delta) z,   z ~ N(0, I),

    and a step to ``sigma_next = 0`` adds no noise (it returns the denoised mean).

    Parameters
    ----------
    denoiser, x, sigmas, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.
    rng : None, int or Generator
        Source of the Gaussian increments.

    Returns
    -------
    Trajectory
        ``nfe = n_steps``.
    """
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    rng = as_generator(rng)
    n_steps = len(sigmas) - 1
    for i in steps(n_steps, progress, "euler_maruyama"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        x_next = _reverse_ve_step(x, denoised, sigma, sigma_next, rng)
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        x = x_next
    return run.result(x, "euler_maruyama", model.nfe, sigmas=sigmas)


def sample_predictor_corrector(denoiser, x, sigmas, *, snr=0.16, n_corrector=1, rng=None, callback=None,
                               progress=False, record=False):
    """Predictor-corrector sampler (Song et al. 2021): Langevin corrector, reverse-SDE predictor.

    At every grid level ``sigma_i`` the corrector takes ``n_corrector`` Langevin steps
    ``x <- x + a grad + sqrt(2 a) z`` with ``grad = (D(x, sigma_i) - x) / sigma_i^2`` and the step
    ``a = 2 (snr |z| / |grad|)^2`` (norms averaged over the batch, as in Song et al.; per-sample norms
    blow the step up where the score is small), then the predictor takes the Euler-Maruyama step of
    :func:`sample_euler_maruyama` to ``sigma_{i+1}``.

    Parameters
    ----------
    denoiser, x, sigmas, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.
    snr : float
        Signal-to-noise ratio of the Langevin steps.
    n_corrector : int
        Langevin steps per level (0 gives plain Euler-Maruyama).
    rng : None, int or Generator

    Returns
    -------
    Trajectory
        ``nfe = n_steps (1 + n_corrector)``; ``denoised`` holds the predictor's denoiser outputs.
    """
    snr = check_positive(snr, "snr")
    if not isinstance(n_corrector, numbers.Integral) or n_corrector < 0:
        raise ValueError(f"n_corrector: expected a non-negative integer, got {n_corrector!r}")
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    rng = as_generator(rng)
    xp = get_namespace(x)
    n_steps = len(sigmas) - 1
    axes = tuple(range(1, x.ndim))
    for i in steps(n_steps, progress, "predictor_corrector"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        for _ in range(n_corrector):
            grad = (model(x, sigma) - x) / (sigma * sigma)
            z = normal(rng, x)
            grad_norm = float(xp.mean(xp.sqrt(xp.sum(grad * grad, axis=axes))))
            noise_norm = float(xp.mean(xp.sqrt(xp.sum(z * z, axis=axes))))
            size = 2.0 * (snr * noise_norm / max(grad_norm, 1e-300)) ** 2
            x = x + size * grad + (2.0 * size) ** 0.5 * z
        denoised = model(x, sigma)
        x_next = _reverse_ve_step(x, denoised, sigma, sigma_next, rng)
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        x = x_next
    return run.result(x, "predictor_corrector", model.nfe, sigmas=sigmas, snr=snr, n_corrector=n_corrector)


def sample_reverse_sde(score, x, times, *, process, rng=None, callback=None, progress=False, record=False,
                       noise_last=False):
    """Euler-Maruyama for the reverse SDE of any forward process, in the process's own time.

    ``dx = [f(x, t) - g g^T score(x, t)] dt + g dW`` integrated backwards over ``times``:

        x_next = x - [f(x, t) - g g^T s(x, t)] dt + g sqrt(dt) z,   dt = t - t_next > 0.

    Parameters
    ----------
    score : callable
        ``score(x (n, D), t float) -> (n, D)``, an estimate of ``grad log p_t``.
    x : (n, D) array
        Starting points at ``times[0]`` (e.g. ``process.prior()`` samples), in the process's state space.
    times : (n_steps + 1,) array
        Strictly decreasing times inside the process's range; the last one may be the process's
        ``t_min`` (0): the score is not evaluated there.
    process : MarkovProcess
        Supplies ``drift(x, t)`` and ``diffusion(t)`` (a scalar, a diagonal or a structured operator).
    rng, callback, progress
        As in :func:`sample_euler_maruyama` (the callback's levels are times).
    record : bool, str or tuple of str
        As in :func:`opdiff.sampling.sample_euler`; ``"denoised"`` (Tweedie, computed only when
        recorded or seen by a callback) needs a Gaussian transition.
    noise_last : bool
        Add noise on the last step too (default False: the last step returns the drift mean).

    Returns
    -------
    Trajectory
        ``times`` set; the recorded ``denoised`` holds Tweedie's ``E[x_0 | x_t]``; ``nfe = n_steps``
        score evaluations.
    """
    x = check_start(x)
    times = check_times(times)
    dynamics = ProcessDynamics(process, times, weight=1.0, last_evaluated=False)
    model = CountedModel(score, "score", x.shape, x.dtype)
    rng = as_generator(rng)
    n_steps = len(times) - 1
    run = Recorder(x, n_steps, callback, record, dynamics.recordable)
    for i in steps(n_steps, progress, "reverse_sde"):
        t, t_next = float(times[i]), float(times[i + 1])
        dt = t - t_next
        s = model(x, t)
        denoised = dynamics.tweedie(x, s, t) if run.wants_denoised else None
        x_next = x - dt * dynamics.reverse_drift(x, s, t, weight=1.0)
        if noise_last or i < n_steps - 1:
            x_next = x_next + dynamics.apply_diffusion(normal(rng, x), t) * dt ** 0.5
        run.step(i, x, x_next, denoised, t, t_next)
        x = x_next
    return run.result(x, "reverse_sde", model.nfe, times=times)
