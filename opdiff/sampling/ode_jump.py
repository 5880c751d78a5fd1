"""ODE jump: stop a solver after some steps and return the denoised output of the point reached."""
import numbers

import numpy as np

from ..backend import get_namespace
from ._common import check_record, prepare
from .euler import sample_euler
from .trajectory import Trajectory


def sample_ode_jump(denoiser, x, sigmas, *, jump_step=None, solver=sample_euler, rng=None, callback=None,
                    progress=False, record=False, **solver_options):
    """Run ``solver`` for ``jump_step`` steps of ``sigmas``, then jump to ``D(x_k, sigma_k)``.

    The denoising output is the Euler step straight to ``sigma = 0``; it converges faster than the
    sampling trajectory (Chen et al., "A geometric perspective on diffusion models", arXiv 2305.19947).

    Parameters
    ----------
    denoiser, x, sigmas, rng, callback, progress, record
        As in :func:`opdiff.sampling.sample_euler`.
    jump_step : int, optional
        Number of solver steps before the jump, in ``[0, n_steps - 1]`` for a grid ending at 0 or
        ``[0, n_steps]`` otherwise; default: the last step with a positive noise level.
    solver : callable
        Any solver with the shared signature (default :func:`sample_euler`).
    **solver_options
        Extra keywords for ``solver``.

    Returns
    -------
    Trajectory
        Grid ``sigmas[:jump_step + 1]`` then 0; the recorded ``samples`` are the ``jump_step + 1``
        solver points and the jump output; ``nfe`` = the solver's NFE + 1.
    """
    model, x, sigmas = prepare(denoiser, x, sigmas)
    names = check_record(record)
    last = len(sigmas) - 1 if sigmas[-1] > 0 else len(sigmas) - 2
    if jump_step is None:
        jump_step = last
    if not isinstance(jump_step, numbers.Integral) or not 0 <= jump_step <= last:
        raise ValueError(f"jump_step: expected an integer in [0, {last}] (a step with positive noise level), "
                         f"got {jump_step!r}")
    xp = get_namespace(x)
    if jump_step > 0:
        head = solver(model, x, sigmas[: jump_step + 1], rng=rng, callback=callback, progress=progress,
                      record=names, **solver_options)
        reached, recorded = head.x, dict(head.recorded)
    else:
        reached = x
        recorded = {"samples": x[None], "denoised": x[None][:0]} if names else {}
    sigma = float(sigmas[jump_step])
    jump = model(reached, sigma)
    if callback is not None:
        callback({"x": reached, "i": jump_step, "sigma": sigma, "sigma_hat": sigma, "denoised": jump,
                  "sigma_next": 0.0, "x_next": jump})
    recorded = {name: xp.concatenate([recorded[name], jump[None]]) for name in names}
    grid = np.append(sigmas[: jump_step + 1], 0.0)
    return Trajectory(jump, model.nfe, "ode_jump", grid, None,
                      {"jump_step": jump_step, "solver": getattr(solver, "__name__", str(solver))}, recorded)
