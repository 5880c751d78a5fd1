"""iPNDM: Adams-Bashforth multistep in the noise direction (Zhang & Chen 2023), orders 1 to 4."""
import math

import numpy as np

from ..backend import check_choice, check_points
from ._common import begin, derivative, steps

# Fixed Adams-Bashforth coefficients for equal steps, newest slope first.
_FIXED = {
    1: (1.0,),
    2: (3.0 / 2.0, -1.0 / 2.0),
    3: (23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0),
    4: (55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0),
}
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(4)  # exact for degree <= 7


def adams_bashforth_coefficients(past, start, end):
    """Variable-step Adams-Bashforth weights.

    ``integral_{start}^{end} p(s) ds = (end - start) * sum_j c_j f(past_j)`` for the polynomial ``p``
    interpolating the slopes at the abscissae ``past`` (newest first, ``past[0] = start``).

    Parameters
    ----------
    past : (k,) array
        Distinct finite abscissae, ``1 <= k <= 4``.
    start, end : float
        Finite ends of the integration interval.

    Returns
    -------
    (k,) float64 array
        Weights summing to 1.

    Raises
    ------
    ValueError
        Naming ``past`` (wrong length, non-finite or repeated abscissae), ``start`` or ``end`` (not finite).
    """
    past = check_points(past, "past", ndim=1).astype(np.float64, copy=False)
    if past.shape[0] > 4:
        raise ValueError(f"past: expected 1 to 4 abscissae, got {past.shape[0]}")
    if np.unique(past).size != past.size:
        raise ValueError(f"past: expected distinct abscissae, got {past}")
    for value, name in ((start, "start"), (end, "end")):
        try:
            finite = math.isfinite(float(value))
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected a real number, got {type(value).__name__}") from None
        if not finite:
            raise ValueError(f"{name}: expected a finite number, got {value}")
    start, end = float(start), float(end)
    nodes = 0.5 * (start + end) + 0.5 * (end - start) * _GAUSS_NODES
    weights = np.empty(past.shape[0])
    for j in range(past.shape[0]):
        others = np.delete(past, j)
        lagrange = np.prod((nodes[:, None] - others[None, :]) / (past[j] - others[None, :]), axis=1)
        weights[j] = 0.5 * np.dot(_GAUSS_WEIGHTS, lagrange)
    return weights


def sample_ipndm(denoiser, x, sigmas, *, max_order=4, variable_step=False, warmup="lower_order",
                 rng=None, callback=None, progress=False, record=False):
    """iPNDM: Adams-Bashforth steps on ``dx/dsigma = eps(x, sigma)`` reusing past slopes.

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.
    max_order : {1, 2, 3, 4}
        Number of slopes combined per step.
    variable_step : bool
        False (default, the published iPNDM): the fixed equal-step coefficients. True: coefficients
        integrating the interpolating polynomial on the actual grid (iPNDM_v), so that the order holds
        on any smooth non-uniform grid.
    warmup : {"lower_order", "runge_kutta"}
        "lower_order" (iPNDM): the first steps use the slopes available so far (1 NFE per step).
        "runge_kutta" (PNDM-style): the first ``max_order - 1`` steps use a Runge-Kutta method of order
        ``max_order`` (Heun, Kutta's third order, classical RK4) so that the start does not limit the
        global order; those steps cost ``max_order`` evaluations each.

    Returns
    -------
    Trajectory
        ``nfe = n_steps`` for "lower_order" (+ ``(max_order - 1)`` times ``max_order - 1`` for "runge_kutta").
    """
    check_choice(max_order, "max_order", (1, 2, 3, 4))
    check_choice(warmup, "warmup", ("lower_order", "runge_kutta"))
    model, x, sigmas, run = begin(denoiser, x, sigmas, callback, record)
    n_steps = len(sigmas) - 1
    slopes = []  # newest first
    for i in steps(n_steps, progress, "ipndm"):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        h = sigma_next - sigma
        denoised = model(x, sigma)
        slopes.insert(0, derivative(x, denoised, sigma))
        del slopes[max_order:]
        order = len(slopes)
        if warmup == "runge_kutta" and order < max_order and sigma_next > 0:
            x_next = _runge_kutta_step(model, x, slopes[0], sigma, sigma_next, max_order)
        else:
            if variable_step:
                past = sigmas[i - order + 1: i + 1][::-1]  # sigma_i, sigma_{i-1}, ...
                coefficients = adams_bashforth_coefficients(past, sigma, sigma_next)
            else:
                coefficients = _FIXED[order]
            update = float(coefficients[0]) * slopes[0]
            for c, s in zip(coefficients[1:], slopes[1:]):
                update = update + float(c) * s
            x_next = x + h * update
        run.step(i, x, x_next, denoised, sigma, sigma_next)
        x = x_next
    return run.result(x, "ipndm", model.nfe, sigmas=sigmas, max_order=max_order,
                         variable_step=variable_step, warmup=warmup)


def _runge_kutta_step(model, x, k1, sigma, sigma_next, order):
    """One explicit Runge-Kutta step of the given order (2: Heun, 3: Kutta, 4: classical RK4)."""
    h = sigma_next - sigma

    def slope(point, level):
        return derivative(point, model(point, level), level)

    if order == 2:
        k2 = slope(x + h * k1, sigma_next)
        return x + h * (0.5 * k1 + 0.5 * k2)
    if order == 3:
        k2 = slope(x + 0.5 * h * k1, sigma + 0.5 * h)
        k3 = slope(x + h * (-k1 + 2.0 * k2), sigma_next)
        return x + h * (k1 + 4.0 * k2 + k3) / 6.0
    k2 = slope(x + 0.5 * h * k1, sigma + 0.5 * h)
    k3 = slope(x + 0.5 * h * k2, sigma + 0.5 * h)
    k4 = slope(x + h * k3, sigma_next)
    return x + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
