"""Convergence studies of the VE-form solvers: a tight reference solve and error-versus-NFE tables."""
import numpy as np

from ..backend import check_positive, to_numpy
from ._common import check_start
from .dpm_solver import sample_dpm_solver_2, sample_dpm_solver_pp_2m
from .euler import sample_euler
from .heun import sample_heun
from .ipndm import sample_ipndm
from .schedules import polynomial_grid

#: Solvers compared by default: label -> (solver, options).
DEFAULT_SOLVERS = {
    "Euler": (sample_euler, {}),
    "Heun": (sample_heun, {}),
    "DPM-Solver-2": (sample_dpm_solver_2, {}),
    "DPM-Solver++(2M)": (sample_dpm_solver_pp_2m, {}),
    "iPNDM": (sample_ipndm, {}),
    "iPNDM-v (RK start)": (sample_ipndm, {"variable_step": True, "warmup": "runge_kutta"}),
}


def reference_solution(denoiser, x, sigma_max, sigma_min, rtol=1e-12):
    """Solve ``dy/du = y - D(y, e^u)`` (``u = log sigma``) from ``sigma_max`` to ``sigma_min`` with SciPy's DOP853.

    Parameters
    ----------
    denoiser : callable
    x : (n, *shape) array
        Points at ``sigma_max``.
    sigma_max, sigma_min : float
    rtol : float
        Relative and absolute tolerance of the adaptive solver.

    Returns
    -------
    (n, *shape) float64 array
    """
    from scipy.integrate import solve_ivp

    x = to_numpy(check_start(x)).astype(np.float64)
    sigma_max, sigma_min = check_positive(sigma_max, "sigma_max"), check_positive(sigma_min, "sigma_min")
    if sigma_min >= sigma_max:
        raise ValueError(f"sigma_min: expected a value below sigma_max={sigma_max}, got {sigma_min}")

    def rhs(u, flat):
        y = flat.reshape(x.shape)
        return (y - to_numpy(denoiser(y, float(np.exp(u))))).ravel()

    solution = solve_ivp(rhs, (np.log(sigma_max), np.log(sigma_min)), x.ravel(), method="DOP853", rtol=rtol, atol=rtol)
    if not solution.success:
        raise RuntimeError(f"reference_solution: DOP853 failed: {solution.message}")
    return solution.y[:, -1].reshape(x.shape)


def convergence_study(denoiser, x, steps, *, sigma_min, sigma_max, rho=7.0, solvers=None, reference=None):
    """Max error at ``sigma_min`` of each solver on rho-polynomial grids with the given step counts.

    Parameters
    ----------
    denoiser : callable
        Exact (or reference) VE-form denoiser.
    x : (n, *shape) array
        Starting points at ``sigma_max``.
    steps : sequence of int
    sigma_min, sigma_max, rho : float
        Grid ``polynomial_grid(n, sigma_min, sigma_max, rho)``.
    solvers : dict, optional
        ``label -> (solver, options)``; default :data:`DEFAULT_SOLVERS`.
    reference : (n, *shape) array, optional
        The exact end point; default :func:`reference_solution`.

    Returns
    -------
    dict
        ``label -> {"nfe": [...], "error": [...], "slope": float}``; the slope is the least-squares order
        of ``log error`` against ``log steps`` over all step counts but the first.
    """
    steps = [int(n) for n in steps]
    if len(steps) < 2:
        raise ValueError(f"steps: expected at least two step counts, got {steps}")
    if reference is None:
        reference = reference_solution(denoiser, x, sigma_max, sigma_min)
    results = {}
    for label, (solver, options) in (solvers or DEFAULT_SOLVERS).items():
        nfe, errors = [], []
        for n in steps:
            trajectory = solver(denoiser, x, polynomial_grid(n, sigma_min, sigma_max, rho=rho), **options)
            nfe.append(trajectory.nfe)
            errors.append(float(np.max(np.abs(to_numpy(trajectory.x) - reference))))
        tail = slice(1, None) if len(steps) > 2 else slice(None)
        slope = -np.polyfit(np.log(steps[tail]), np.log(errors[tail]), 1)[0]
        results[label] = {"nfe": nfe, "error": errors, "slope": float(slope)}
    return results
