"""Samplers on a manifold: geodesic Euler-Maruyama for the reverse SDE and the probability-flow ODE.

Forward process: manifold Brownian motion ``dX = g(t) dW`` (:class:`~opdiff.processes.ManifoldBrownianMotion`),
whose marginals ``p_t`` have Riemannian score ``s(x, t)``. In reverse time ``u = T - t``:

    reverse SDE:          dY = g^2 s(Y, t) du + g dW_M
    probability flow:     dY/du = (g^2 / 2) s(Y, t)

Every step moves along a geodesic, ``y <- exp_y(v)`` with ``v`` a tangent vector, so the points
stay on the manifold (to rounding, ~1e-15, on the sphere ``exp`` renormalises). The Brownian
increment is a standard normal tangent vector scaled by ``g sqrt(dt)`` (the geodesic random walk).
Both functions share the signature of :func:`opdiff.sampling.sample_reverse_sde`.
"""
import numpy as np

from ..backend import as_generator, check_choice, check_count, check_time
from ._common import CountedModel, Recorder, check_times, steps


def _setup(score, x, times, process):
    if not getattr(process, "is_manifold", False):
        raise TypeError(f"process: expected a manifold process (ManifoldBrownianMotion), got {type(process).__name__}")
    x = process.manifold.check_points(x, "x")
    times = check_times(times)
    if times[0] > process.t_max or times[-1] < 0:
        raise ValueError(f"times: expected times in [0, {process.t_max}], got [{times[-1]}, {times[0]}]")
    return CountedModel(score, "score", x.shape, x.dtype), x, times


def sample_manifold_reverse_sde(score, x, times, *, process, rng=None, callback=None, progress=False,
                                record=False, noise_last=False):
    """Geodesic Euler-Maruyama for the reverse SDE of manifold Brownian motion.

    ``y_next = exp_y(g(t)^2 s(y, t) dt + g(t) sqrt(dt) z)``, ``z`` a standard normal tangent vector.

    Parameters
    ----------
    score : callable
        ``score(x (n, D), t float) -> (n, D)`` Riemannian score (tangent vectors; projected here).
    x : (n, D) array
        Starting points on the manifold at ``times[0]`` (e.g. ``process.prior().sample(n)``).
    times : (n_steps + 1,) array
        Strictly decreasing times in ``[0, t_max]``; the score is never evaluated at ``times[-1]``.
    process : ManifoldBrownianMotion
    rng : None, int or Generator
    callback : callable, optional
        Called after each step with ``{"x", "i", "sigma", "sigma_hat", "denoised", "sigma_next", "x_next"}``
        (times as levels; ``denoised`` is ``None``).
    progress : bool
        tqdm progress bar (off by default).
    record : bool or "samples"
        Keep the sampling trajectory (there is no denoising trajectory on a manifold).
    noise_last : bool
        Add noise on the last step too (default False).

    Returns
    -------
    Trajectory
        ``x (n, D)``, ``times``, ``nfe = n_steps``; recorded ``samples (n_steps + 1, n, D)``.
    """
    model, x, times = _setup(score, x, times, process)
    manifold = process.manifold
    rng = as_generator(rng)
    n_steps = len(times) - 1
    run = Recorder(x, n_steps, callback, record, ("samples",))
    for i in steps(n_steps, progress, "manifold_reverse_sde"):
        t, t_next = float(times[i]), float(times[i + 1])
        dt = t - t_next
        g = float(process.diffusion_coefficient(t))
        velocity = manifold.to_tangent(x, model(x, t)) * (g * g * dt)
        if noise_last or i < n_steps - 1:
            velocity = velocity + manifold.random_tangent_normal(x, rng) * (g * dt**0.5)
        x_next = manifold.exp(x, velocity)
        run.step(i, x, x_next, None, t, t_next)
        x = x_next
    return run.result(x, "manifold_reverse_sde", model.nfe, times=times)


def sample_manifold_probability_flow(score, x, times, *, process, method="heun", rng=None, callback=None,
                                     progress=False, record=False):
    """Probability-flow ODE on the manifold, integrated through the exponential map.

    Euler: ``y_next = exp_y(dt g(t)^2 / 2 s(y, t))``. Heun: the predictor's velocity at ``t_next``
    is carried back to ``y`` by tangent projection (exact on flat manifolds, a first-order
    transport on the sphere; the step stays second-order accurate) and the two are averaged; the
    last step falls back to Euler when ``t_next = 0``.

    Parameters
    ----------
    score, x, times, process, callback, progress, record
        As in :func:`sample_manifold_reverse_sde`.
    method : {"euler", "heun"}
    rng : None, int or Generator
        Unused (deterministic); accepted for the shared signature.

    Returns
    -------
    Trajectory
        ``nfe`` counts every score evaluation (two per Heun step).
    """
    check_choice(method, "method", {"euler", "heun"})
    model, x, times = _setup(score, x, times, process)
    manifold = process.manifold
    n_steps = len(times) - 1
    run = Recorder(x, n_steps, callback, record, ("samples",))

    def velocity(y, t):
        g = float(process.diffusion_coefficient(t))
        return manifold.to_tangent(y, model(y, t)) * (0.5 * g * g)

    for i in steps(n_steps, progress, f"manifold_pf_ode_{method}"):
        t, t_next = float(times[i]), float(times[i + 1])
        dt = t - t_next
        v = velocity(x, t)
        if method == "heun" and t_next > 0:
            predicted = manifold.exp(x, dt * v)
            v = 0.5 * (v + manifold.to_tangent(x, velocity(predicted, t_next)))
        x_next = manifold.exp(x, dt * v)
        run.step(i, x, x_next, None, t, t_next)
        x = x_next
    return run.result(x, f"manifold_pf_ode_{method}", model.nfe, times=times)


def uniform_time_grid(process, n_steps, t_min):
    """``n_steps + 1`` times from ``process.t_max`` down to ``t_min``, uniform in heat time.

    Parameters
    ----------
    process : ManifoldBrownianMotion
        Supplies ``t_max``, ``heat_time`` and ``time_at_heat_time``.
    n_steps : int
        Number of steps.
    t_min : float
        Last time, in ``[0, t_max)``.

    Returns
    -------
    (n_steps + 1,) float64 array
    """
    n_steps = check_count(n_steps, "n_steps")
    t_min = float(check_time(t_min, "t_min", 0.0, process.t_max, include_min=True))
    if t_min >= process.t_max:
        raise ValueError(f"t_min: expected a time below t_max={process.t_max}, got {t_min}")
    s = np.linspace(float(process.heat_time(process.t_max)), float(process.heat_time(t_min)), n_steps + 1)
    return process.time_at_heat_time(s)
