"""Any forward process seen by the samplers: reverse dynamics in its own time, and the VE form.

- :class:`ProcessDynamics`: the reverse drift ``f - w g g^T score`` (``w = 1`` SDE, ``w = 1/2`` ODE),
  the noise ``g z`` and Tweedie's denoised output, for any process (scalar, diagonal or ``Kron``
  diffusion, e.g. CLD) through ``drift(x, t)``, ``diffusion(t)`` and ``transition(t)``.
- :class:`VEDenoiser`: a scalar Gaussian process ``x_t = a(t) (x_0 + s(t) eps)`` plus a score callable
  or an estimator with ``denoise`` becomes a denoiser ``D(y, sigma)`` of ``y = x_t / a(t)`` at
  ``sigma = s(t)``, the input of every VE-form solver.
- :func:`sample_probability_flow`: Euler or Heun on ``dx = [f - 1/2 g g^T score] dt`` for any process.
"""
import dataclasses
import warnings

import numpy as np

from ..backend import check_choice
from ._common import CountedModel, Recorder, check_start, check_times, steps
from .trajectory import RECORDABLE

#: Growth factor of a perturbation through the explicit steps above which a grid is reported as unstable.
GROWTH_WARNING = 1e3


class StiffGridWarning(UserWarning):
    """The explicit reverse steps on this grid amplify perturbations (the samples may diverge)."""


class ProcessDynamics:
    """Reverse-time coefficients of a forward process ``dX = f(X, t) dt + G(t) dW``.

    Parameters
    ----------
    process : MarkovProcess
        Needs ``drift(x, t)`` and ``diffusion(t)`` (an object with ``apply`` and ``transpose``);
        ``transition(t)`` (Gaussian processes) enables :meth:`tweedie`.
    times : (m,) array, optional
        Checked against the process's time range.
    last_evaluated : bool
        Whether the model is evaluated at ``times[-1]`` (Heun); if not, the last time may be the
        process's ``t_min`` (e.g. 0: the last step ends at the data).
    weight : float, optional
        ``1`` (reverse SDE) or ``1/2`` (probability flow): with ``times``, a process that reports
        ``reverse_euler_growth(times, weight)`` (the worst-case amplification of explicit Euler steps
        on the grid) gets a :class:`StiffGridWarning` above :data:`GROWTH_WARNING`.
    """

    def __init__(self, process, times=None, weight=None, last_evaluated=True):
        for attribute in ("drift", "diffusion"):
            if not callable(getattr(process, attribute, None)):
                raise TypeError(f"process: expected an object with drift(x, t) and diffusion(t), "
                                f"got {type(process).__name__}")
        if times is not None and hasattr(process, "check_time"):
            process.check_time(times if last_evaluated else times[:-1], name="times")
            if not last_evaluated:
                process.check_time(times[-1:], name="times", include_min=True)
        self.process = process
        #: The trajectories a run can record (Tweedie's denoised output needs a Gaussian transition).
        self.recordable = RECORDABLE if hasattr(process, "transition") else ("samples",)
        if times is not None and weight is not None and callable(getattr(process, "reverse_euler_growth", None)):
            growth = float(process.reverse_euler_growth(times, weight))
            if growth > GROWTH_WARNING:
                warnings.warn(f"times: explicit reverse steps on this grid can amplify errors by {growth:.3g} "
                              f"(above {GROWTH_WARNING:g}); use more steps near t = 0 or a larger regulariser "
                              f"(e.g. pd_eps)", StiffGridWarning, stacklevel=3)

    def diffusion_covariance(self, t):
        """``G G^T`` at ``t`` as an operator."""
        if hasattr(self.process, "diffusion_covariance"):
            return self.process.diffusion_covariance(t)
        G = self.process.diffusion(t)
        return G @ G.transpose()

    def reverse_drift(self, x, score, t, weight):
        """``f(x, t) - weight * G G^T score``; ``(n, D)``."""
        return self.process.drift(x, t) - weight * self.diffusion_covariance(t).apply(score)

    def apply_diffusion(self, z, t):
        """``G(t) z``; ``(n, D)``."""
        return self.process.diffusion(t).apply(z)

    def tweedie(self, x, score, t):
        """Denoised data ``E[x_0 | x_t]`` from the score, or ``None`` without a Gaussian transition.

        ``x_t | x_0 ~ N(Phi lift(x_0), Sigma)`` gives ``E[Phi lift(x_0) | x_t] = x_t + Sigma score``;
        the data block of ``Phi^{-1}`` of that is returned, ``(n, d)``.
        """
        if not hasattr(self.process, "transition"):
            return None
        Phi, Sigma = self.process.transition(t)
        lifted = Phi.solve(x + Sigma.apply(score))
        return self.process.project(lifted) if hasattr(self.process, "project") else lifted


def sample_probability_flow(score, x, times, *, process, method="heun", rng=None, callback=None, progress=False,
                            record=False):
    """Integrate the probability-flow ODE ``dx = [f(x, t) - 1/2 G G^T score(x, t)] dt`` backwards.

    Parameters
    ----------
    score : callable
        ``score(x (n, D), t float) -> (n, D)``.
    x : (n, D) array
        Starting states at ``times[0]``.
    times : (n_steps + 1,) array
        Strictly decreasing times inside the process's range (:mod:`opdiff.sampling.schedules`); with
        Euler the last one may be the process's ``t_min`` (0), where the score is not evaluated.
    process : MarkovProcess
    method : {"euler", "heun"}
    rng : None, int or Generator
        Unused (deterministic); accepted for the shared signature.
    callback, progress, record
        As in :func:`opdiff.sampling.sample_reverse_sde`.

    Returns
    -------
    Trajectory
        ``times`` set; the recorded ``denoised`` is Tweedie's for Gaussian processes;
        ``nfe = n_steps`` (Euler) or ``2 n_steps`` (Heun).
    """
    check_choice(method, "method", ("euler", "heun"))
    x = check_start(x)
    times = check_times(times)
    euler = method == "euler"
    dynamics = ProcessDynamics(process, times, weight=0.5 if euler else None, last_evaluated=not euler)
    model = CountedModel(score, "score", x.shape, x.dtype)
    n_steps = len(times) - 1
    run = Recorder(x, n_steps, callback, record, dynamics.recordable)
    for i in steps(n_steps, progress, f"probability_flow[{method}]"):
        t, t_next = float(times[i]), float(times[i + 1])
        s = model(x, t)
        velocity = dynamics.reverse_drift(x, s, t, weight=0.5)
        x_next = x + (t_next - t) * velocity
        if method == "heun":
            velocity_next = dynamics.reverse_drift(x_next, model(x_next, t_next), t_next, weight=0.5)
            x_next = x + (t_next - t) * (0.5 * velocity + 0.5 * velocity_next)
        run.step(i, x, x_next, dynamics.tweedie(x, s, t) if run.wants_denoised else None, t, t_next)
        x = x_next
    return run.result(x, f"probability_flow_{method}", model.nfe, times=times)


class VEDenoiser:
    """VE-form denoiser ``D(y, sigma) = E[x_0 | x_t / a(t) = y]`` of a scalar Gaussian process.

    With ``x_t = a(t) (x_0 + s(t) eps)``, ``y = x_t / a(t)`` is a VE point at ``sigma = s(t)`` and

        D(y, sigma) = y + sigma^2 a(t) score(a(t) y, t),   t = s^{-1}(sigma).

    Parameters
    ----------
    process : ScalarGaussianProcess
        Needs ``scale(t)``, ``noise_level(t)`` and ``time_at_noise_level(sigma)``.
    model : callable or estimator
        A score callable ``score(x, t)``, or an object with ``denoise(x, t)`` (used directly, e.g. a
        fitted :class:`~opdiff.estimators.DiffusionKernelSmoother` or a mixture wrapped by a lambda).
    output : {"auto", "score", "denoiser"}
        How to read ``model``: "auto" uses ``model.denoise`` when present, else treats ``model`` as a score;
        "denoiser" treats a callable ``model(x, t)`` as ``E[x_0 | x_t]``.

    Examples
    --------
    >>> ve = VEDenoiser(VPSDE(), dks)                         # doctest: +SKIP
    >>> sigmas = ve.sigmas(np.linspace(1.0, 1e-3, 51))        # doctest: +SKIP
    >>> traj = sample_heun(ve, ve.to_ve(x_T, 1.0), sigmas)    # doctest: +SKIP
    """

    def __init__(self, process, model, output="auto"):
        for attribute in ("scale", "noise_level", "time_at_noise_level"):
            if not callable(getattr(process, attribute, None)):
                raise TypeError(f"process: expected a scalar Gaussian process with scale, noise_level and "
                                f"time_at_noise_level, got {type(process).__name__}")
        check_choice(output, "output", ("auto", "score", "denoiser"))
        if output == "auto":
            output = "estimator" if callable(getattr(model, "denoise", None)) else "score"
        if output != "estimator" and not callable(model):
            raise TypeError(f"model: expected a callable or an object with denoise(x, t), got {type(model).__name__}")
        self.process, self.model, self.output = process, model, output
        self.sigma_max = float(process.noise_level(process.t_max))

    def time(self, sigma):
        """Process time at VE noise level ``sigma`` (a float)."""
        sigma = float(sigma)
        if not 0 < sigma <= self.sigma_max * (1 + 1e-12):
            raise ValueError(f"sigma: expected a noise level in (0, {self.sigma_max:.6g}], got {sigma}")
        return min(float(self.process.time_at_noise_level(sigma)), float(self.process.t_max))

    def sigmas(self, times):
        """VE noise levels ``s(t)`` of a time grid; ``(m,)`` float64."""
        return np.asarray(self.process.noise_level(np.asarray(times, dtype=np.float64)), dtype=np.float64)

    def times(self, sigmas):
        """Process times of a VE noise-level grid (``sigma = 0`` maps to time 0); ``(m,)`` float64.

        Turns any VE grid (e.g. :func:`~opdiff.sampling.log_snr_grid`, uniform in log-SNR) into a
        process-time grid for :func:`sample_probability_flow` and :func:`sample_reverse_sde`.
        """
        return np.array([self.time(s) if s > 0 else 0.0 for s in np.asarray(sigmas, dtype=np.float64)])

    def to_ve(self, x, t):
        """Process state ``x_t`` to the VE point ``x_t / a(t)``."""
        return x / float(self.process.scale(float(t)))

    def from_ve(self, y, sigma):
        """VE point ``y`` at ``sigma`` back to the process state ``a(t) y`` (``sigma = 0``: data, ``a = 1``)."""
        return y if float(sigma) == 0 else y * float(self.process.scale(self.time(sigma)))

    def __call__(self, y, sigma):
        t = self.time(sigma)
        a = float(self.process.scale(t))
        if self.output == "estimator":
            return self.model.denoise(a * y, t)
        if self.output == "denoiser":
            return self.model(a * y, t)
        return y + (float(sigma) ** 2 * a) * self.model(a * y, t)

    def score(self, y, sigma):
        """VE-form score ``(D(y, sigma) - y) / sigma^2``."""
        return (self(y, sigma) - y) / float(sigma) ** 2

    def log_density(self, y, sigma):
        """``log`` of the VE-form density of ``y``: ``log rho_t(a y) + d log a`` (needs ``model.log_density``)."""
        if not callable(getattr(self.model, "log_density", None)):
            raise TypeError("model: log_density needs a model with log_density(x, t), e.g. a fitted "
                            "DiffusionKernelSmoother")
        t = self.time(sigma)
        a = float(self.process.scale(t))
        return self.model.log_density(a * y, t) + y.shape[1] * np.log(a)

    def sample(self, solver, x, times, *, append_zero=False, **options):
        """Run a VE-form ``solver`` from process states ``x`` at ``times[0]`` over a process time grid.

        Parameters
        ----------
        solver : callable
            Any solver with the shared signature (:func:`opdiff.sampling.sample_heun`, ...).
        x : (n, d) array
            States at ``times[0]`` (e.g. ``process.prior().sample(n, d, rng)``).
        times : (n_steps + 1,) array
            Decreasing process times.
        append_zero : bool
            Append a final jump to ``sigma = 0`` (the data).
        **options
            Passed to ``solver`` (``rng``, ``callback``, ``progress``, solver options).

        Returns
        -------
        Trajectory
            In VE coordinates (``y = x_t / a(t)``; at ``sigma = 0`` data coordinates), with ``times`` set.
        """
        times = check_times(times)
        sigmas = self.sigmas(times)
        if append_zero:
            sigmas, times = np.append(sigmas, 0.0), np.append(times, 0.0)
        trajectory = solver(self, self.to_ve(x, times[0]), sigmas, **options)
        if len(trajectory.sigmas) != len(times):  # e.g. ODE jump: its own shortened grid
            times = self.times(trajectory.sigmas)
        return dataclasses.replace(trajectory, times=times)

