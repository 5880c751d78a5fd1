"""Time and noise-level grids: uniform, EDM rho-polynomial, log-SNR uniform, quadratic, and GITS.

Every grid is returned in sampling order (decreasing, from ``high`` to ``low``) with ``n_steps + 1``
entries; the same functions make process-time grids (``low = t_min``, ``high = t_max``) and
VE noise-level grids (``low = sigma_min``, ``high = sigma_max``). With ``append_zero=True`` the last
of the ``n_steps`` steps goes to 0 (``n_steps`` points from ``high`` to ``low``, then 0).
"""
import numbers

import numpy as np

from ..backend import check_choice, check_positive, get_namespace, to_numpy
from .ipndm import sample_ipndm


def _check_grid_args(n_steps, low, high, append_zero, names=("low", "high")):
    if not isinstance(n_steps, numbers.Integral) or isinstance(n_steps, bool) or n_steps < 1:
        raise ValueError(f"n_steps: expected a positive integer, got {n_steps!r}")
    if append_zero and n_steps < 2:
        raise ValueError(f"n_steps: append_zero needs at least 2 steps, got {n_steps}")
    low = check_positive(low, names[0])
    high = check_positive(high, names[1])
    if high <= low:
        raise ValueError(f"{names[1]}: expected a value above {names[0]}={low}, got {high}")
    return int(n_steps) - (1 if append_zero else 0), low, high


def _finish(grid, append_zero):
    grid = np.asarray(grid, dtype=np.float64)
    return np.append(grid, 0.0) if append_zero else grid


def uniform_grid(n_steps, low, high, append_zero=False):
    """Equally spaced values from ``high`` down to ``low``.

    Parameters
    ----------
    n_steps : int
        Number of steps (the grid has ``n_steps + 1`` entries).
    low, high : float
        ``0 < low < high``: the last and the first level (time or noise level).
    append_zero : bool
        Make the last of the ``n_steps`` steps go from ``low`` to 0.

    Returns
    -------
    (n_steps + 1,) float64 array
        Decreasing, from ``high`` to ``low`` (then 0 with ``append_zero``).
    """
    m, low, high = _check_grid_args(n_steps, low, high, append_zero)
    return _finish(np.linspace(high, low, m + 1), append_zero)


def polynomial_grid(n_steps, low, high, rho=7.0, append_zero=False):
    """EDM grid (Karras et al. 2022): ``(high^(1/rho) + i/m (low^(1/rho) - high^(1/rho)))^rho``.

    ``rho = 1`` is uniform; large ``rho`` concentrates the steps near ``low``.

    Parameters
    ----------
    n_steps, low, high, append_zero
        As in :func:`uniform_grid`.
    rho : float
        Positive exponent.

    Returns
    -------
    (n_steps + 1,) float64 array
    """
    return _polynomial_grid(n_steps, low, high, rho, append_zero, ("low", "high"))


def _polynomial_grid(n_steps, low, high, rho, append_zero, names):
    rho = check_positive(rho, "rho")
    m, low, high = _check_grid_args(n_steps, low, high, append_zero, names)
    ramp = np.linspace(0.0, 1.0, m + 1)
    grid = (high ** (1 / rho) + ramp * (low ** (1 / rho) - high ** (1 / rho))) ** rho
    grid[0], grid[-1] = high, low
    return _finish(grid, append_zero)


def edm_sigmas(n_steps, sigma_min=0.002, sigma_max=80.0, rho=7.0, append_zero=True):
    """The EDM noise-level grid with the EDM defaults (``sigma_min = 0.002``, ``sigma_max = 80``, ``rho = 7``).

    Parameters
    ----------
    n_steps : int
        Number of steps (the grid has ``n_steps + 1`` entries).
    sigma_min, sigma_max : float
        ``0 < sigma_min < sigma_max``.
    rho : float
        Positive exponent of :func:`polynomial_grid`.
    append_zero : bool
        Make the last of the ``n_steps`` steps go from ``sigma_min`` to 0 (default True, as in EDM).

    Returns
    -------
    (n_steps + 1,) float64 array
    """
    return _polynomial_grid(n_steps, sigma_min, sigma_max, rho, append_zero, ("sigma_min", "sigma_max"))


def log_snr_grid(n_steps, low, high, append_zero=False):
    """Uniform in log-SNR: for VE noise levels ``log SNR = -2 log sigma``, i.e. geometric spacing.

    Parameters
    ----------
    n_steps, low, high, append_zero
        As in :func:`uniform_grid`.

    Returns
    -------
    (n_steps + 1,) float64 array
    """
    m, low, high = _check_grid_args(n_steps, low, high, append_zero)
    return _finish(np.geomspace(high, low, m + 1), append_zero)


def quadratic_grid(n_steps, low, high, append_zero=False):
    """``low + (high - low) (1 - i/m)^2``: quadratic in the step index, dense near ``low`` (MDM, DDIM).

    Parameters
    ----------
    n_steps, low, high, append_zero
        As in :func:`uniform_grid`.

    Returns
    -------
    (n_steps + 1,) float64 array
    """
    m, low, high = _check_grid_args(n_steps, low, high, append_zero)
    ramp = 1.0 - np.linspace(0.0, 1.0, m + 1)
    return _finish(low + (high - low) * ramp**2, append_zero)


GRIDS = {"uniform": uniform_grid, "polynomial": polynomial_grid, "edm": polynomial_grid,
         "log_snr": log_snr_grid, "quadratic": quadratic_grid}


def get_grid(kind, n_steps, low, high, append_zero=False, **options):
    """Grid by name: ``"uniform"``, ``"polynomial"`` / ``"edm"`` (``rho=``), ``"log_snr"``, ``"quadratic"``.

    Parameters
    ----------
    kind : str
        A key of :data:`GRIDS`.
    n_steps, low, high, append_zero
        As in :func:`uniform_grid`.
    **options
        Passed to the grid (``rho`` for the polynomial grid).

    Returns
    -------
    (n_steps + 1,) float64 array
    """
    check_choice(kind, "kind", tuple(GRIDS))
    return GRIDS[kind](n_steps, low, high, append_zero=append_zero, **options)


def gits_schedule(denoiser, x, n_steps, *, teacher_sigmas=None, coeff=1.15, cost="l2", teacher=None):
    """GITS (Chen et al., ICML 2024): a coarse grid chosen by dynamic programming on pilot trajectories.

    1. Run a fine teacher on the pilot starts ``x`` (default iPNDM-4 on a 60-step EDM grid).
    2. Cost ``C[i, j]`` of jumping from teacher point ``i`` to level ``j > i`` with one Euler step, i.e. the
       convex combination of ``x_i`` and its (stored, free) denoised output, measured against ``x_j``:
       mean Euclidean distance ("l2"), mean absolute error ("l1").
    3. ``V_k(i) = min_{j > i} C[i, j] + coeff V_{k-1}(j)``, ``V_0(N) = 0``; backtrack from ``V_{n_steps}(0)``.

    Parameters
    ----------
    denoiser : callable
        VE-form denoiser.
    x : (n, *shape) array
        Pilot starting points at ``teacher_sigmas[0]``.
    n_steps : int
        Number of steps of the returned grid (at most the teacher's).
    teacher_sigmas : (N + 1,) array, optional
        Fine grid (default ``edm_sigmas(60, append_zero=False)`` scaled to 0.002 .. 80).
    coeff : float
        Discount of later costs (GITS: 1.15).
    cost : {"l2", "l1"}
    teacher : Trajectory, optional
        A precomputed teacher trajectory on ``teacher_sigmas`` (skips step 1), run with ``record=True``.

    Returns
    -------
    (n_steps + 1,) float64 array
        A subset of the teacher grid, from ``teacher_sigmas[0]`` to ``teacher_sigmas[-1]``.
    """
    check_choice(cost, "cost", ("l2", "l1"))
    coeff = check_positive(coeff, "coeff")
    if teacher is None:
        if teacher_sigmas is None:
            teacher_sigmas = edm_sigmas(60, append_zero=False)
        teacher = sample_ipndm(denoiser, x, teacher_sigmas, record=True)
    if teacher.sigmas is None or not {"samples", "denoised"} <= set(teacher.recorded):
        raise ValueError("teacher: expected a VE-form Trajectory with sigmas and a denoising trajectory")
    sigmas = np.asarray(teacher.sigmas, dtype=np.float64)
    n_teacher = len(sigmas) - 1
    if not isinstance(n_steps, numbers.Integral) or not 1 <= n_steps <= n_teacher:
        raise ValueError(f"n_steps: expected an integer in [1, {n_teacher}], got {n_steps!r}")
    xp = get_namespace(teacher.samples)
    points = teacher.samples  # (N + 1, n, *shape)
    features = tuple(range(2, points.ndim))
    shape = (-1,) + (1,) * (points.ndim - 1)
    cost_matrix = np.full((n_teacher + 1, n_teacher + 1), np.inf)
    for i in range(n_teacher):
        ratio = xp.asarray((sigmas[i + 1:] / sigmas[i]).reshape(shape), dtype=points.dtype)
        error = ratio * points[i][None] + (1.0 - ratio) * teacher.denoised[i][None] - points[i + 1:]
        if cost == "l2":
            per_point = xp.sqrt(xp.sum(error * error, axis=features))
        else:
            per_point = xp.mean(xp.abs(error), axis=features)
        cost_matrix[i, i + 1:] = to_numpy(xp.mean(per_point, axis=1))
    value = np.full((n_steps + 1, n_teacher + 1), np.inf)
    choice = np.zeros((n_steps + 1, n_teacher + 1), dtype=int)
    value[0, n_teacher] = 0.0
    for k in range(1, n_steps + 1):
        totals = cost_matrix + coeff * value[k - 1][None, :]
        choice[k] = np.argmin(totals, axis=1)
        value[k] = totals[np.arange(n_teacher + 1), choice[k]]
    path = [0]
    for k in range(n_steps, 0, -1):
        path.append(int(choice[k, path[-1]]))
    return sigmas[path]
