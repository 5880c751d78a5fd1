"""Heun's second-order method (EDM, Karras et al. 2022, Algorithm 1) for the VE probability-flow ODE."""
from ._common import Recorder, derivative, prepare, steps


def sample_heun(denoiser, x, sigmas, *, rng=None, callback=None, progress=False):
    """Integrate the VE probability-flow ODE with Heun's method (trapezoidal corrector).

    Each step takes an Euler predictor to ``sigma_next`` and averages the two slopes; a step to
    ``sigma_next = 0`` is a plain Euler step (the slope is undefined at 0).

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress
        As in :func:`opdiff.sampling.sample_euler`.

    Returns
    -------
    Trajectory
        ``nfe = 2 n_steps - (1 if sigmas[-1] == 0 else 0)``.
    """
    model, x, sigmas = prepare(denoiser, x, sigmas)
    record = Recorder(x, callback)
    for i in steps(len(sigmas) - 1, progress, "heun"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        d = derivative(x, denoised, sigma)
        x_pred = x + (sigma_next - sigma) * d
        if sigma_next == 0:
            x = x_pred
        else:
            d_next = derivative(x_pred, model(x_pred, sigma_next), sigma_next)
            x = x + (sigma_next - sigma) * (0.5 * d + 0.5 * d_next)
        record.step(i, x, denoised, sigma, sigma_next)
    return record.result("heun", model.nfe, sigmas=sigmas)
