"""Euler's method for the probability-flow ODE in the VE form (DDIM)."""
from ._common import Recorder, derivative, prepare, steps


def sample_euler(denoiser, x, sigmas, *, rng=None, callback=None, progress=False):
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
        Called after every step with a dict ``{"i", "x", "denoised", "sigma", "sigma_next"}``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Trajectory
        ``nfe = n_steps``.
    """
    model, x, sigmas = prepare(denoiser, x, sigmas)
    record = Recorder(x, callback)
    for i in steps(len(sigmas) - 1, progress, "euler"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        x = x + (sigma_next - sigma) * derivative(x, denoised, sigma)
        record.step(i, x, denoised, sigma, sigma_next)
    return record.result("euler", model.nfe, sigmas=sigmas)
