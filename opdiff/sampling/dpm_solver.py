"""DPM-Solver-2 (single-step, intermediate point), DPM-Solver++(2M) and its SDE variant, in the VE form."""
import math

from ..backend import check_choice, check_positive
from ._common import begin, check_noise_options, derivative, noise_source, steps


def sample_dpm_solver_2(denoiser, x, sigmas, *, r=0.5, rng=None, callback=None, progress=False, record=False):
    """DPM-Solver-2 (Lu et al. 2022, arXiv 2206.00927) in the VE noise-prediction form, generalised intermediate point.

    With ``eps = (x - D) / sigma`` and ``h = sigma_next - sigma`` a step is

        sigma_m = sigma^(1 - r) sigma_next^r,   x_m = x + (sigma_m - sigma) eps
        x_next  = x + h [ eps_m / (2 r) + (1 - 1 / (2 r)) eps ]

    ``r = 1/2`` (default) is the geometric midpoint of the original DPM-Solver-2; ``r = 1`` is Heun.
    A step to ``sigma_next = 0`` is an Euler step.

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress, record
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
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    n_steps = len(sigmas) - 1
    weight_mid = 1.0 / (2.0 * r)
    for i in steps(n_steps, progress, "dpm_solver_2"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        d = derivative(x, denoised, sigma)
        if sigma_next == 0:
            x_next = x + (sigma_next - sigma) * d
        else:
            sigma_mid = math.exp((1.0 - r) * math.log(sigma) + r * math.log(sigma_next))
            x_mid = x + (sigma_mid - sigma) * d
            d_mid = derivative(x_mid, model(x_mid, sigma_mid), sigma_mid)
            x_next = x + (sigma_next - sigma) * (weight_mid * d_mid + (1.0 - weight_mid) * d)
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        x = x_next
    return run.result(x, "dpm_solver_2", model.nfe, sigmas=sigmas, r=r)


def sample_dpm_solver_pp_2m(denoiser, x, sigmas, *, rng=None, callback=None, progress=False, record=False):
    """DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095), data-prediction multistep, in the VE form.

    With ``lambda = -log sigma``, ``h_i = lambda_{i+1} - lambda_i`` and ``rho_i = h_{i-1} / h_i``:

        x_{i+1} = (sigma_{i+1} / sigma_i) x_i - expm1(-h_i) [ (1 + 1/(2 rho_i)) D_i - D_{i-1} / (2 rho_i) ]

    The first step, and a step to ``sigma = 0``, use ``D_i`` alone (first order).

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.

    Returns
    -------
    Trajectory
        ``nfe = n_steps``.
    """
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    n_steps = len(sigmas) - 1
    denoised_prev = None
    for i in steps(n_steps, progress, "dpm_solver_pp_2m"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        if sigma_next == 0:
            x_next = denoised
        else:
            h = math.log(sigma) - math.log(sigma_next)
            if denoised_prev is None:
                data = denoised
            else:
                rho = (math.log(float(sigmas[i - 1])) - math.log(sigma)) / h
                data = (1.0 + 0.5 / rho) * denoised - (0.5 / rho) * denoised_prev
            x_next = (sigma_next / sigma) * x - math.expm1(-h) * data
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        denoised_prev, x = denoised, x_next
    return run.result(x, "dpm_solver_pp_2m", model.nfe, sigmas=sigmas)


def sample_dpm_solver_pp_2m_sde(denoiser, x, sigmas, *, eta=1.0, s_noise=1.0, solver_type="midpoint",
                                noise_sampler=None, rng=None, callback=None, progress=False, record=False):
    """DPM-Solver++(2M) SDE (Lu et al. 2022, arXiv 2211.01095; k-diffusion's ``sample_dpmpp_2m_sde``), VE form.

    With ``h = log(sigma_i / sigma_{i+1})``, ``r = h_{i-1} / h`` and ``E = -expm1(-(1 + eta) h)``:

        x_{i+1} = (sigma_{i+1} / sigma_i) e^{-eta h} x_i + E D_i + c (D_i - D_{i-1}) / r
                  + s_noise sigma_{i+1} sqrt(-expm1(-2 eta h)) z,           z ~ N(0, I)

    with ``c = E / 2`` ("midpoint") or ``c = 1 - E / ((1 + eta) h)`` ("heun"). The first step has no
    correction; a step to ``sigma = 0`` returns ``D_i``. With ``eta = 0`` the midpoint variant is
    :func:`sample_dpm_solver_pp_2m` exactly.

    Parameters
    ----------
    denoiser, x, sigmas, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.
    eta : float
        Stochasticity (``>= 0``; 1, the default, follows the reverse SDE).
    s_noise : float
        Scale of the added noise.
    solver_type : {"midpoint", "heun"}
        The second-order correction of k-diffusion's two variants.
    noise_sampler : callable, optional
        ``noise_sampler(sigma, sigma_next) -> array like x`` of standard normal noise (k-diffusion's
        convention); default: draws from ``rng``.
    rng : None, int or Generator

    Returns
    -------
    Trajectory
        ``nfe = n_steps``.
    """
    eta, s_noise = check_noise_options(eta, s_noise)
    check_choice(solver_type, "solver_type", ("midpoint", "heun"))
    noise = noise_source(noise_sampler, rng)
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    n_steps = len(sigmas) - 1
    denoised_prev = h_prev = None
    for i in steps(n_steps, progress, "dpm_solver_pp_2m_sde"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma)
        if sigma_next == 0:
            x_next = denoised
        else:
            h = math.log(sigma) - math.log(sigma_next)
            eta_h = eta * h
            decay = -math.expm1(-h - eta_h)
            x_next = (sigma_next / sigma * math.exp(-eta_h)) * x + decay * denoised
            if denoised_prev is not None:
                if solver_type == "heun":
                    weight = decay / (-h - eta_h) + 1.0
                else:
                    weight = 0.5 * decay
                x_next = x_next + (weight * h / h_prev) * (denoised - denoised_prev)
            if eta > 0 and s_noise > 0:
                x_next = x_next + (sigma_next * math.sqrt(-math.expm1(-2.0 * eta_h)) * s_noise) * noise(
                    x, sigma, sigma_next)
            h_prev = h
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        denoised_prev, x = denoised, x_next
    return run.result(x, "dpm_solver_pp_2m_sde", model.nfe, sigmas=sigmas, eta=eta, s_noise=s_noise,
                      solver_type=solver_type)

