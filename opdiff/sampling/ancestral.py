"""Euler ancestral sampling (k-diffusion's ``sample_euler_ancestral``; DDPM / stochastic DDIM in the VE form)."""
import math

from ..backend import check_positive
from ._common import begin, check_noise_options, derivative, noise_source, steps


def ancestral_step(sigma, sigma_next, eta=1.0):
    """Split a step ``sigma -> sigma_next`` into a deterministic part and fresh noise (k-diffusion).

    ``sigma_up = min(sigma_next, eta sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2))`` and
    ``sigma_down = sqrt(sigma_next^2 - sigma_up^2)``: the ODE moves to ``sigma_down`` and noise of
    level ``sigma_up`` brings the marginal back to ``sigma_next``. ``eta = 1`` is the DDPM posterior
    step, ``eta = 0`` the ODE (DDIM); ``sigma_up`` is DDIM's ``sigma_t(eta)`` (Song et al. 2021).

    Parameters
    ----------
    sigma, sigma_next : float
        ``sigma > sigma_next >= 0``.
    eta : float
        Stochasticity, ``>= 0``.

    Returns
    -------
    (sigma_down, sigma_up) : tuple of float
    """
    sigma, sigma_next = check_positive(sigma, "sigma"), check_positive(sigma_next, "sigma_next", strict=False)
    if sigma_next >= sigma:
        raise ValueError(f"sigma_next: expected a level below sigma={sigma}, got {sigma_next}")
    if not check_positive(eta, "eta", strict=False):
        return sigma_next, 0.0
    sigma_up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
    return math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0)), sigma_up


def sample_euler_ancestral(denoiser, x, sigmas, *, eta=1.0, s_noise=1.0, noise_sampler=None, rng=None,
                           callback=None, progress=False, record=False):
    """Euler ancestral: an Euler step of the probability-flow ODE to ``sigma_down``, then noise ``sigma_up``.

    With ``(sigma_down, sigma_up) =`` :func:`ancestral_step` ``(sigma_i, sigma_{i+1}, eta)``:

        x_{i+1} = x_i + (sigma_down - sigma_i) (x_i - D(x_i, sigma_i)) / sigma_i + s_noise sigma_up z,   z ~ N(0, I)

    (no noise into ``sigma_{i+1} = 0``, where the step returns ``D``). This is DDPM ancestral sampling
    (``eta = 1``) and stochastic DDIM (``0 < eta < 1``) written in the VE form.

    Parameters
    ----------
    denoiser, x, sigmas, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.
    eta : float
        Stochasticity, ``>= 0`` (0: :func:`sample_euler`).
    s_noise : float
        Scale of the added noise.
    noise_sampler : callable, optional
        ``noise_sampler(sigma, sigma_next) -> array like x``, standard normal noise (k-diffusion's
        convention; e.g. noise coloured by a covariance root for anisotropic processes); default: ``rng``.
    rng : None, int or Generator

    Returns
    -------
    Trajectory
        ``nfe = n_steps``.
    """
    eta, s_noise = check_noise_options(eta, s_noise)
    noise = noise_source(noise_sampler, rng)
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    n_steps = len(sigmas) - 1
    for i in steps(n_steps, progress, "euler_ancestral"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x_next = x + (sigma_down - sigma) * derivative(x, denoised, sigma)
        if sigma_next > 0 and sigma_up > 0 and s_noise > 0:
            x_next = x_next + (s_noise * sigma_up) * noise(x, sigma, sigma_next)
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        x = x_next
    return run.result(x, "euler_ancestral", model.nfe, sigmas=sigmas, eta=eta, s_noise=s_noise)
