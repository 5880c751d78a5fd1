"""Explicit Runge-Kutta integration of a flow ``dx/dt = v(x, t)``, with the divergence integral.

The shared integrator behind probability-flow sampling and likelihoods of any model that gives a
velocity (e.g. :class:`~opdiff.estimators.OISM`): ``log rho_t(x) = log rho_T(x_T) + int_t^T div v``
along the flow (the instantaneous change of variables), integrated with the same stages as ``x``.
"""
import contextlib

import numpy as np

from ..backend import check_choice, get_namespace
from ._common import CountedModel, Recorder, check_start, steps

#: Butcher tableaux ``(c, a, b)`` of the explicit methods (rows of ``a`` list the nonzero ``(l, a_jl)``).
TABLEAUX = {
    "euler": ((0.0,), ((),), (1.0,)),
    "heun": ((0.0, 1.0), ((), ((0, 1.0),)), (0.5, 0.5)),
    "rk4": ((0.0, 0.5, 0.5, 1.0), ((), ((0, 0.5),), ((1, 0.5),), ((2, 1.0),)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}


def _check_grid(times, log_time):
    arr = np.asarray(times.get() if hasattr(times, "get") else times, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"times: expected a 1-D grid with at least 2 entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"times: expected finite times, got {arr}")
    step = np.diff(arr)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError(f"times: expected a strictly monotone grid, got {arr}")
    if log_time and np.any(arr <= 0):
        raise ValueError(f"times: steps uniform in log t need positive times, got {arr}")
    return arr


def integrate_flow(velocity, x, times, *, divergence=None, project=None, method="rk4", log_time=False, bound=None,
                   rng=None, callback=None, progress=False, record=False):
    """Integrate ``dx/dt = velocity(x, t)`` over ``times`` (either direction) with an explicit Runge-Kutta method.

    With ``log_time`` the steps are taken in ``u = log t`` (``dx/du = t velocity``; stage times
    ``exp(u_i + c_j h)``), which suits grids geometric in ``t``. With ``divergence`` the integral
    ``int div velocity dt`` along each path is integrated with the same stages.

    Parameters
    ----------
    velocity : callable
        ``velocity(x (m, *shape), t float) -> (m, *shape)``.
    x : (n, *shape) array
        Starting points at ``times[0]`` (not modified).
    times : (n_steps + 1,) array
        Strictly monotone times (decreasing: backwards in time).
    divergence : callable, optional
        ``divergence(x (m, *shape), t float) -> (m,)``, the divergence of ``velocity``.
    project : callable, optional
        Applied to every stage point (e.g. wrapping angles to ``[-pi, pi)`` on a torus).
    method : {"euler", "heun", "rk4"}
    log_time : bool
        Steps uniform in ``log t`` (needs positive times).
    bound : float, optional
        Default ``None``: a non-finite velocity raises. With a bound, a path whose state leaves
        ``max |x| < bound`` or turns non-finite is stopped at its last good point and flagged in
        ``extras["diverged"]``; the others carry on.
    rng : None, int or Generator
        Unused (deterministic); accepted for the shared signature.
    callback : callable, optional
        Called after every step with ``{"x", "i", "sigma", "sigma_hat", "denoised", "sigma_next", "x_next"}``
        (levels are times, ``denoised`` is ``None``).
    progress : bool
        Show a tqdm progress bar (off by default).
    record : bool or "samples"
        Keep the path (``Trajectory.samples``).

    Returns
    -------
    Trajectory
        ``x`` the end points, ``times``; ``nfe`` the velocity evaluations (calls on the live batch);
        ``extras["divergence_integral"]`` ``(n,)`` when ``divergence`` is given, ``extras["diverged"]``
        ``(n,)`` bool when ``bound`` is.
    """
    check_choice(method, "method", tuple(TABLEAUX))
    if divergence is not None and not callable(divergence):
        raise TypeError(f"divergence: expected a callable or None, got {type(divergence).__name__}")
    if project is not None and not callable(project):
        raise TypeError(f"project: expected a callable or None, got {type(project).__name__}")
    if bound is not None:
        bound = float(bound)
        if not bound > 0:
            raise ValueError(f"bound: expected a positive number or None, got {bound}")
    x = check_start(x)
    times = _check_grid(times, log_time)
    xp = get_namespace(x)
    field = CountedModel(velocity, "velocity", x.shape, x.dtype, check_finite=bound is None)
    rate = None if divergence is None else CountedModel(divergence, "divergence", x.shape[:1], x.dtype,
                                                        check_finite=bound is None, per_point=True)
    project = project or (lambda y: y)
    c, a, b = TABLEAUX[method]
    u = np.log(times) if log_time else times
    n_steps = len(times) - 1
    run = Recorder(x, n_steps, callback, record, ("samples",))
    x = xp.array(x, copy=True)
    ell = xp.zeros(x.shape[0], dtype=x.dtype)
    alive = np.ones(x.shape[0], dtype=bool)
    axes = tuple(range(1, x.ndim))

    def rhs(points, j, i, h):
        if c[j] == 0:
            t = times[i]
        elif c[j] == 1:
            t = times[i + 1]
        else:
            t = float(np.exp(u[i] + c[j] * h)) if log_time else times[i] + c[j] * h
        t = float(t)
        scale = t if log_time else 1.0
        v = field(points, t) * scale
        return v, (rate(points, t) * scale if rate is not None else None)

    with np.errstate(over="ignore", invalid="ignore") if bound is not None else contextlib.nullcontext():
        for i in steps(n_steps, progress, f"flow[{method}]"):
            if not alive.any():  # every path stopped: the remaining steps keep the points
                run.step(i, x, x, None, float(times[i]), float(times[i + 1]))
                continue
            h = float(u[i + 1] - u[i])
            rows = np.flatnonzero(alive) if bound is not None else slice(None)
            start = x[rows] if bound is not None else x
            slopes, rates = [], []
            failed = None  # rows whose stage point left the finite range (bounded mode only)
            for j in range(len(c)):
                point = start
                for l, weight in a[j]:
                    point = point + (weight * h) * slopes[l]
                point = project(point) if a[j] else point
                if bound is not None and a[j]:
                    finite = xp.all(xp.isfinite(point), axis=axes)
                    failed = ~finite if failed is None else failed | ~finite
                    point = xp.where(finite.reshape((-1,) + (1,) * len(axes)), point, 0.0)
                k, r = rhs(point, j, i, h)
                slopes.append(k)
                rates.append(r)
            increment = b[0] * slopes[0]
            for weight, k in zip(b[1:], slopes[1:]):
                increment = increment + weight * k
            x_new = project(start + h * increment)
            ell_new = None
            if rate is not None:
                total = b[0] * rates[0]
                for weight, r in zip(b[1:], rates[1:]):
                    total = total + weight * r
                ell_new = (ell[rows] if bound is not None else ell) + h * total
            if bound is None:
                x_next = x_new
                if ell_new is not None:
                    ell = ell_new
            else:
                ok = xp.all(xp.isfinite(x_new), axis=axes) & (xp.max(xp.abs(x_new), axis=axes) < bound)
                if ell_new is not None:
                    ok = ok & xp.isfinite(ell_new)
                if failed is not None:
                    ok = ok & ~failed
                ok = np.asarray(ok.get() if hasattr(ok, "get") else ok, dtype=bool)
                x_next = xp.array(x, copy=True)
                x_next[rows[ok]] = x_new[ok]
                if ell_new is not None:
                    ell[rows[ok]] = ell_new[ok]
                alive[rows[~ok]] = False
            run.step(i, x, x_next, None, float(times[i]), float(times[i + 1]))
            x = x_next
    extras = {"log_time": bool(log_time)}
    if rate is not None:
        extras["divergence_integral"] = ell
    if bound is not None:
        extras["diverged"] = ~alive
    return run.result(x, f"flow_{method}", field.nfe, times=times, **extras)

