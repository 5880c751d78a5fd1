"""Heun's second-order method for the VE probability-flow ODE and EDM's stochastic sampler.

Karras et al. 2022 (EDM, arXiv 2206.00364): Algorithm 1 (deterministic Heun) and Algorithm 2
(Heun with "churn": noise added to raise ``sigma_i`` to ``sigma_hat = (1 + gamma_i) sigma_i`` before each step).
"""
import math

from ..backend import as_generator, check_positive
from ._common import begin, derivative, normal, steps

#: EDM's Table 5 settings for ImageNet-64 (the defaults of :func:`sample_edm_stochastic`).
EDM_CHURN = {"s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003}


def _check_churn(s_churn, s_tmin, s_tmax, s_noise):
    s_churn = check_positive(s_churn, "s_churn", strict=False)
    s_tmin = check_positive(s_tmin, "s_tmin", strict=False)
    try:
        s_tmax = float(s_tmax)
    except (TypeError, ValueError):
        raise TypeError(f"s_tmax: expected a real number, got {type(s_tmax).__name__}") from None
    if not s_tmax >= s_tmin:  # also rejects NaN; inf is allowed
        raise ValueError(f"s_tmax: expected a level >= s_tmin={s_tmin}, got {s_tmax}")
    return s_churn, s_tmin, s_tmax, check_positive(s_noise, "s_noise", strict=False)


def _heun(method, denoiser, x, sigmas, rng, callback, progress, record, s_churn, s_tmin, s_tmax, s_noise):
    """EDM Algorithm 2; ``s_churn = 0`` is Algorithm 1 (no noise is drawn then)."""
    s_churn, s_tmin, s_tmax, s_noise = _check_churn(s_churn, s_tmin, s_tmax, s_noise)
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    rng = as_generator(rng) if s_churn > 0 else None
    n_steps = len(sigmas) - 1
    gamma_max = min(s_churn / n_steps, math.sqrt(2.0) - 1.0)
    for i in steps(n_steps, progress, method):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        gamma = gamma_max if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (1.0 + gamma)
        if gamma > 0:
            x = x + (s_noise * math.sqrt(sigma_hat * sigma_hat - sigma * sigma)) * normal(rng, x)
        denoised = model(x, sigma_hat)
        d = derivative(x, denoised, sigma_hat)
        x_next = x + (sigma_next - sigma_hat) * d
        if sigma_next > 0:
            d_next = derivative(x_next, model(x_next, sigma_next), sigma_next)
            x_next = x + (sigma_next - sigma_hat) * (0.5 * d + 0.5 * d_next)
        run.step(i, x, x_next, denoised, sigma, sigma_next, sigma_hat)
        x = x_next
    extras = {"s_churn": s_churn, "s_tmin": s_tmin, "s_tmax": s_tmax, "s_noise": s_noise} if s_churn > 0 else {}
    return run.result(x, method, model.nfe, sigmas=sigmas, **extras)


def sample_heun(denoiser, x, sigmas, *, rng=None, callback=None, progress=False, record=False,
                s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    """Integrate the VE probability-flow ODE with Heun's method (EDM Algorithm 1; trapezoidal corrector).

    Each step takes an Euler predictor to ``sigma_next`` and averages the two slopes; a step to
    ``sigma_next = 0`` is a plain Euler step (the slope is undefined at 0). With ``s_churn > 0`` it is
    EDM's stochastic sampler (:func:`sample_edm_stochastic`), as in k-diffusion.

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler` (``rng`` is used only when ``s_churn > 0``).
    s_churn, s_tmin, s_tmax, s_noise : float
        EDM's churn (Algorithm 2); default 0: the deterministic Algorithm 1.

    Returns
    -------
    Trajectory
        ``nfe = 2 n_steps - (1 if sigmas[-1] == 0 else 0)``.
    """
    return _heun("heun" if s_churn == 0 else "edm_stochastic", denoiser, x, sigmas, rng, callback, progress, record,
                 s_churn, s_tmin, s_tmax, s_noise)


def sample_edm_stochastic(denoiser, x, sigmas, *, rng=None, callback=None, progress=False, record=False,
                          s_churn=EDM_CHURN["s_churn"], s_tmin=EDM_CHURN["s_tmin"], s_tmax=EDM_CHURN["s_tmax"],
                          s_noise=EDM_CHURN["s_noise"]):
    """EDM's stochastic sampler (Karras et al. 2022, arXiv 2206.00364, Algorithm 2).

    At every step with ``s_tmin <= sigma_i <= s_tmax``, with ``gamma = min(s_churn / n_steps, sqrt(2) - 1)``:

        sigma_hat = (1 + gamma) sigma_i,    x_hat = x_i + s_noise sqrt(sigma_hat^2 - sigma_i^2) z,   z ~ N(0, I)

    then a Heun step of the probability-flow ODE from ``(x_hat, sigma_hat)`` to ``sigma_{i+1}`` (Euler
    into ``sigma_{i+1} = 0``). Outside ``[s_tmin, s_tmax]`` the step is deterministic.

    Parameters
    ----------
    denoiser, x, sigmas, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`; the callback's ``sigma_hat`` is the churned level.
    rng : None, int or Generator
        Source of the churn noise (one standard normal draw of ``x``'s shape per churned step).
    s_churn : float
        Total churn; default 40 (EDM's ImageNet-64 setting, Table 5, with its ``s_tmin = 0.05``,
        ``s_tmax = 50``, ``s_noise = 1.003``; these levels assume data of unit scale and ``sigma_max = 80``).
    s_tmin, s_tmax : float
        Noise levels between which churn is applied.
    s_noise : float
        Inflation of the added noise (slightly above 1 offsets a denoiser's over-smoothing).

    Returns
    -------
    Trajectory
        ``nfe = 2 n_steps - (1 if sigmas[-1] == 0 else 0)``; the recorded ``denoised[i]`` is
        ``D(x_hat_i, sigma_hat_i)``.
    """
    return _heun("edm_stochastic", denoiser, x, sigmas, rng, callback, progress, record, s_churn, s_tmin, s_tmax,
                 s_noise)
