"""Second-order samplers as finite differences of the denoising trajectory.

Along the VE probability-flow ODE ``x' = (x - r) / t`` (``r = D(x, t)``, ``t = sigma``) one has
``x'' = -(1/t) r'``, so a second-order Taylor step with ``h = t_next - t`` reads

    x_next = x + h eps - h^2 / (2 t*) * D_n,     eps = (x - r) / t,   D_n ~ dr/dt,

and the practical solvers are this formula with different differences ``D_n`` and reference times
``t*`` (Chen et al., "A geometric perspective on diffusion models"; notes B.3):

========================  ===============================================  ===========================
solver                    difference ``D_n``                               ``t*``
========================  ===============================================  ===========================
Euler                     0                                                 (any)
Heun (EDM)                forward: ``(r(x~, t_next) - r_n) / h``            ``t_next``
DPM-Solver-2(r)           ``(r(x_m, t_m) - r_n) / (r h)``                   ``t_m = t^(1-r) t_next^r``
DPM-Solver++(2M)          backward: ``(r_n - r_{n-1}) / (t - t_prev)``      ``rho t h / (t - t_prev)``
========================  ===============================================  ===========================

where ``x~`` and ``x_m`` are Euler predictions and ``rho = (lambda - lambda_prev)/(lambda_next - lambda)``,
``lambda = -log t``.
"""
import math
from typing import NamedTuple

import numpy as np

from ..backend import check_choice, check_points, check_positive
from ._common import CountedModel, check_start


class FiniteDifferenceStep(NamedTuple):
    """One solver step in finite-difference form.

    Attributes
    ----------
    x_next : (n, *shape) array
    slope : (n, *shape) array
        ``eps = (x - r) / t`` at the start.
    difference : (n, *shape) array
        ``D_n``, the finite difference of the denoising trajectory.
    t_star : float
        Reference time of the curvature term.
    """

    x_next: object
    slope: object
    difference: object
    t_star: float


def _check_like(a, name, x, scalar=False):
    """``a`` validated as finite and of ``x``'s shape (with ``scalar``, a finite number is accepted too)."""
    if scalar and np.ndim(a) == 0:
        return _finite_number(a, name)
    arr = check_points(a, name, ndim=None)
    if arr.shape != x.shape:
        raise ValueError(f"{name}: expected shape {tuple(x.shape)} (that of x), got {tuple(arr.shape)}")
    return arr


def _finite_number(value, name):
    """``value`` as a finite float (``ValueError`` naming ``name`` otherwise)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number or an array, got {type(value).__name__}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite value, got {value}")
    return v


def _check_levels(sigma, sigma_next):
    """``sigma > 0`` and ``0 <= sigma_next < sigma`` as floats."""
    sigma, sigma_next = check_positive(sigma, "sigma"), check_positive(sigma_next, "sigma_next", strict=False)
    if sigma_next >= sigma:
        raise ValueError(f"sigma_next: expected a value below sigma={sigma}, got {sigma_next}")
    return sigma, sigma_next


def euler_convex_combination(x, denoised, sigma, sigma_next):
    """The Euler step as a convex combination: ``(t_next/t) x + (1 - t_next/t) D(x, t)``.

    Parameters
    ----------
    x, denoised : (n, *shape) arrays
        The point at ``sigma`` and its denoised output ``D(x, sigma)``.
    sigma, sigma_next : float
        The step's noise levels, ``sigma > sigma_next >= 0``.

    Returns
    -------
    (n, *shape) array

    Raises
    ------
    ValueError
        Naming ``x``, ``denoised``, ``sigma`` or ``sigma_next`` when one is malformed or not finite.
    """
    x = check_start(x)
    denoised = _check_like(denoised, "denoised", x)
    sigma, sigma_next = _check_levels(sigma, sigma_next)
    ratio = sigma_next / sigma
    return ratio * x + (1.0 - ratio) * denoised


def taylor_step(x, denoised, sigma, sigma_next, difference, t_star):
    """``x + h eps - h^2 / (2 t*) D_n`` with ``h = sigma_next - sigma`` and ``eps = (x - denoised) / sigma``.

    Parameters
    ----------
    x, denoised : (n, *shape) arrays
        The point at ``sigma`` and its denoised output.
    sigma, sigma_next : float
        The step's noise levels, ``sigma > sigma_next >= 0``.
    difference : (n, *shape) array or float
        ``D_n``, the finite difference of the denoising trajectory.
    t_star : float
        Reference time of the curvature term (positive).

    Returns
    -------
    (n, *shape) array

    Raises
    ------
    ValueError
        Naming the argument that is malformed, not finite or out of range.
    """
    x = check_start(x)
    denoised = _check_like(denoised, "denoised", x)
    difference = _check_like(difference, "difference", x, scalar=True)
    sigma, sigma_next = _check_levels(sigma, sigma_next)
    t_star = check_positive(t_star, "t_star")
    h = sigma_next - sigma
    return x + h * ((x - denoised) / sigma) - (h * h / (2.0 * t_star)) * difference


def finite_difference_form(method, denoiser, x, sigma, sigma_next, *, denoised=None, r=0.5,
                           denoised_prev=None, sigma_prev=None):
    """One step of ``method`` rebuilt from a finite difference of the denoising trajectory.

    Parameters
    ----------
    method : {"euler", "heun", "dpm_solver_2", "dpm_solver_pp_2m"}
    denoiser : callable
        VE-form denoiser ``D(x, sigma)``.
    x : (n, *shape) array
        Current point at ``sigma``.
    sigma, sigma_next : float
        ``sigma > sigma_next > 0`` (a step to 0 is an Euler jump for every solver).
    denoised : (n, *shape) array, optional
        ``D(x, sigma)`` if already known (saves one call).
    r : float
        Intermediate-point parameter of DPM-Solver-2.
    denoised_prev, sigma_prev : array, float
        Previous point of the denoising trajectory (DPM-Solver++(2M) only).

    Returns
    -------
    FiniteDifferenceStep

    Raises
    ------
    ValueError
        Naming the argument that is malformed or not finite (``denoiser`` when it returns a wrong shape
        or non-finite values).
    """
    check_choice(method, "method", ("euler", "heun", "dpm_solver_2", "dpm_solver_pp_2m"))
    sigma, sigma_next = check_positive(sigma, "sigma"), check_positive(sigma_next, "sigma_next")
    if sigma_next >= sigma:
        raise ValueError(f"sigma_next: expected a value below sigma={sigma}, got {sigma_next}")
    x = check_start(x)
    denoiser = CountedModel(denoiser, "denoiser", x.shape, x.dtype)
    denoised = denoiser(x, sigma) if denoised is None else _check_like(denoised, "denoised", x)
    slope = (x - denoised) / sigma
    h = sigma_next - sigma
    if method == "euler":
        difference, t_star = 0.0 * x, sigma
    elif method == "heun":
        predicted = euler_convex_combination(x, denoised, sigma, sigma_next)
        difference, t_star = (denoiser(predicted, sigma_next) - denoised) / h, sigma_next
    elif method == "dpm_solver_2":
        r = check_positive(r, "r")
        t_mid = math.exp((1.0 - r) * math.log(sigma) + r * math.log(sigma_next))
        predicted = euler_convex_combination(x, denoised, sigma, t_mid)
        difference, t_star = (denoiser(predicted, t_mid) - denoised) / (r * h), t_mid
    else:
        if denoised_prev is None or sigma_prev is None:
            raise ValueError("denoised_prev: DPM-Solver++(2M) needs the previous denoised output and sigma_prev")
        denoised_prev = _check_like(denoised_prev, "denoised_prev", x)
        sigma_prev = check_positive(sigma_prev, "sigma_prev")
        if sigma_prev <= sigma:
            raise ValueError(f"sigma_prev: expected a value above sigma={sigma}, got {sigma_prev}")
        rho = (math.log(sigma_prev) - math.log(sigma)) / (math.log(sigma) - math.log(sigma_next))
        difference = (denoised - denoised_prev) / (sigma - sigma_prev)
        t_star = rho * sigma * h / (sigma - sigma_prev)
    x_next = taylor_step(x, denoised, sigma, sigma_next, difference, t_star)
    return FiniteDifferenceStep(x_next, slope, difference, float(t_star))
