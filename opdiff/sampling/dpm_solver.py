"""DPM-Solver-2 (single-step, intermediate point) and DPM-Solver++(2M) (multistep) in the VE form."""
import math

from ..backend import check_positive
from ._common import Recorder, derivative, prepare, steps


def sample_dpm_solver_2(denoiser, x, sigmas, *, r=0.5, rng=None, callback=None, progress=False):
    """DPM-Solver-2 (Lu et al. 2022) in the VE noise-prediction form, generalised intermediate point.

    With ``eps = (x - D) / sigma`` and ``h = sigma_next - sigma`` a step is

        sigma_m = sigma^(1 - r) sigma_next^r,   x_m = x + (sigma_m - sigma) eps
        x_next  = x + h [ eps_m / (2 r) + (1 - 1 / (2 r)) eps ]

    ``r = 1/2`` (default) is the geometric midpoint of the original DPM-Solver-2; ``r = 1`` is Heun.
    A step to ``sigma_next = 0`` is an Euler step.

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress
        As in :func:`opdiff.sampling.sample_euler`.
    r : float in (0, 1]
        Position of the intermediate point on the log-sigma axis.

    Returns
    -------
    Trajectory
        ``nfe = 2 n_steps - (1 if sigmas[-1] == 0 else 0)``.
    """
    r = check_positive(r, "r")
    if r > 1:
        raise ValueError(f"r: expected a value in (0, 1], got {r}")
    model, x, sigmas = prepare(denoiser, x, sigmas)
    record = Recorder(x, callback)
    weight_mid = 1.0 / (2.0 * r)
    for i in steps(len(sigmas) - 1, progress, "dpm_solver_2"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        d = derivative(x, denoised, sigma)
        if sigma_next == 0:
            x = x + (sigma_next - sigma) * d
        else:
            sigma_mid = math.exp((1.0 - r) * math.log(sigma) + r * math.log(sigma_next))
            x_mid = x + (sigma_mid - sigma) * d
            d_mid = derivative(x_mid, model(x_mid, sigma_mid), sigma_mid)
            x = x + (sigma_next - sigma) * (weight_mid * d_mid + (1.0 - weight_mid) * d)
        record.step(i, x, denoised, sigma, sigma_next)
    return record.result("dpm_solver_2", model.nfe, sigmas=sigmas, r=r)


def sample_dpm_solver_pp_2m(denoiser, x, sigmas, *, rng=None, callback=None, progress=False):
    """DPM-Solver++(2M) (Lu et al. 2022), data-prediction multistep, in the VE form.

    With ``lambda = -log sigma``, ``h_i = lambda_{i+1} - lambda_i`` and ``rho_i = h_{i-1} / h_i``:

        x_{i+1} = (sigma_{i+1} / sigma_i) x_i - expm1(-h_i) [ (1 + 1/(2 rho_i)) D_i - D_{i-1} / (2 rho_i) ]

    The first step, and a step to ``sigma = 0``, use ``D_i`` alone (first order).

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress
        As in :func:`opdiff.sampling.sample_euler`.

    Returns
    -------
    Trajectory
        ``nfe = n_steps``.
    """
    model, x, sigmas = prepare(denoiser, x, sigmas)
    record = Recorder(x, callback)
    denoised_prev = None
    for i in steps(len(sigmas) - 1, progress, "dpm_solver_pp_2m"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = math.log(sigma) - math.log(sigma_next)
            if denoised_prev is None:
                data = denoised
            else:
                rho = (math.log(float(sigmas[i - 1])) - math.log(sigma)) / h
                data = (1.0 + 0.5 / rho) * denoised - (0.5 / rho) * denoised_prev
            x = (sigma_next / sigma) * x - math.expm1(-h) * data
        denoised_prev = denoised
        record.step(i, x, denoised, sigma, sigma_next)
    return record.result("dpm_solver_pp_2m", model.nfe, sigmas=sigmas)
