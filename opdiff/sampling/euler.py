"""Euler's method for the probability-flow ODE in the VE form (DDIM)."""
from ._common import begin, steps


def sample_euler(denoiser, x, sigmas, *, rng=None, callback=None, progress=False, record=False):
    """Integrate ``dx/dsigma = (x - D(x, sigma)) / sigma`` with Euler steps.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x (n, *shape), sigma float) -> (n, *shape)``, the posterior mean ``E[x_0 | x]`` in the VE form.
    x : (n, *shape) array
        Starting points at noise level ``sigmas[0]`` (e.g. ``sigmas[0] * N(0, I)``).
    sigmas : (n_steps + 1,) array
        Strictly decreasing noise levels; the last one may be 0.
    rng : None, int or Generator
        Unused (deterministic solver); accepted for the shared signature.
    callback : callable, optional
        Called after every step with a dict ``{"x", "i", "sigma", "sigma_hat", "denoised", "sigma_next",
        "x_next"}`` (k-diffusion's keys: ``x`` is the point the denoiser saw at ``sigma_hat``).
    progress : bool
        Show a tqdm progress bar (off by default).
    record : bool, str or tuple of str
        Keep the sampling (``"samples"``) and denoising (``"denoised"``) trajectories; ``True`` keeps
        both. Default ``False``: only the final samples, memory independent of the number of steps.

    Returns
    -------
    Trajectory
        ``x`` the final samples; ``nfe = n_steps``.
    """
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    n_steps = len(sigmas) - 1
    for i in steps(n_steps, progress, "euler"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        # x + (sigma_next - sigma) (x - D) / sigma as the convex combination: three array passes, not four
        ratio = sigma_next / sigma
        x_next = ratio * x
        x_next += (1.0 - ratio) * denoised
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        x = x_next
    return run.result(x, "euler", model.nfe, sigmas=sigmas)
