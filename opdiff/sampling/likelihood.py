"""Log-likelihood of a score model by the probability-flow ODE (the instantaneous change of variables).

The probability flow of a forward process ``dX = f(X, t) dt + G(t) dW`` with score ``s`` is
``dx/dt = v(x, t) = f(x, t) - 1/2 A(t) s(x, t)`` (``A = G G^T``); it carries ``p_t`` to ``p_T``, so

    log p_{t_min}(x) = log p_T(x_T) + int_{t_min}^T div v(x_t, t) dt,
    div v = tr F(t) - 1/2 tr(A(t) J_s(x, t))            (f = F x for Gaussian processes)

(Chen et al. 2018, arXiv 1806.07366; Song et al. 2021, arXiv 2011.13456, appendix D.2), with ``p_T`` the
process's prior. On a manifold (Brownian motion, ``f = 0``, ``A = g^2``) ``div`` is the Riemannian
divergence: flat on the torus, ``tr(P J P)`` on the sphere (``P`` the tangent projection), and the
prior is the uniform law.

``tr(A J_s)`` is computed exactly (``D`` vector-Jacobian products, or the model's analytic
``divergence``) or by Hutchinson's estimator ``E[u^T J_s^T A u]`` with fixed Rademacher probes per
point (Grathwohl et al. 2019, arXiv 1810.01367): unbiased, with a standard error from the spread over
probes. The augmented state ``(x, int div v)`` (one integral per probe) is integrated forward in time,
from the data to the prior, by the shared flow integrator :func:`opdiff.sampling.integrate_flow`
(Heun by default), the manifold part projected onto the manifold at every stage.
"""
import inspect
from dataclasses import dataclass

import numpy as np

from ..backend import as_generator, check_choice, check_count, check_points, get_namespace
from ..linalg import Scalar
from .flow import TABLEAUX, integrate_flow
from .process_form import ProcessDynamics

#: Largest dimension for which ``divergence="auto"`` computes the exact divergence.
EXACT_MAX_DIM = 16


@dataclass(frozen=True)
class LogLikelihood:
    """Result of :func:`log_likelihood`.

    Attributes
    ----------
    log_likelihood : (n,) array
        ``log p_{t_min}(x)`` in nats (the mean over probes for Hutchinson).
    standard_error : (n,) array
        Standard error of each value over the Hutchinson probes (zeros for the exact divergence).
    prior_log_density : (n,) array
        ``log p_T(x_T)`` at the end of the flow.
    end : (n, D) array
        ``x_T``.
    nfe : int
        Score evaluations (each with its divergence).
    divergence : str
        ``"exact"`` or ``"hutchinson"``.
    """

    log_likelihood: object
    standard_error: object
    prior_log_density: object
    end: object
    nfe: int
    divergence: str

    def __repr__(self):
        return (f"LogLikelihood(n={np.shape(self.log_likelihood)[0]}, mean={float(np.mean(self.log_likelihood)):.4g}, "
                f"divergence={self.divergence!r}, nfe={self.nfe})")


def _accepts_probes(function):
    try:
        return "probes" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _trace(operator, dim):
    """``tr`` of a structured operator on ``R^dim`` (``Scalar``: ``dim c``; otherwise from its dense form)."""
    if isinstance(operator, Scalar) and not operator.batched:
        return dim * float(operator.c)
    return float(np.trace(operator.dense(dim)))


class _Flow:
    """The probability-flow velocity and its divergence for one model, process and set of probes."""

    def __init__(self, model, process, probes, manifold):
        self.model, self.process, self.probes, self.manifold = model, process, probes, manifold
        self.score = model.score if callable(getattr(model, "score", None)) else model
        self.dynamics = None if manifold is not None else ProcessDynamics(process)
        self.vjp = getattr(model, "score_vjp", None)
        self.exact_divergence = getattr(model, "divergence", None)

    def point(self, x):
        """The manifold point of an integrator state (wrapped angles, unit vectors)."""
        if self.manifold is None:
            return x
        return self.manifold.proj(x)

    def _quadratic(self, x, t, directions, covariance):
        """``u . J^T (A u)`` summed (exact basis) or per probe: ``tr(A J)`` terms, ``(K, m)``."""
        xp = get_namespace(x)
        if not callable(self.vjp):
            raise TypeError(f"model: {type(self.model).__name__} needs score_vjp(x, t, v) (or divergence(x, t)) "
                            "for the probability-flow divergence")
        out = []
        for u in directions:
            weighted = u if covariance is None else covariance.apply(u)
            out.append(xp.sum(weighted * self.vjp(x, t, u), axis=1))
        return xp.stack(out)

    def divergence(self, x, t):
        """Estimates of ``div s`` (Riemannian on the sphere) at ``x (m, D)``: ``(K, m)`` (K = 1 exact, or per probe)."""
        xp = get_namespace(x)
        m, dim = x.shape
        tt = np.full(m, t)
        exact = self.exact_divergence
        if self.probes is None:
            if callable(exact):
                return xp.asarray(exact(x, tt))[None]
            eye = xp.eye(dim, dtype=x.dtype)
            basis = [self._tangent(x, xp.broadcast_to(eye[j], (m, dim))) for j in range(dim)]
            return xp.sum(self._quadratic(x, tt, basis, None), axis=0)[None]
        if callable(exact) and _accepts_probes(exact):
            return exact(x, tt, probes=self.probes)
        if callable(self.vjp):
            return self._quadratic(x, tt, [self._tangent(x, p) for p in self.probes], None)
        if callable(exact):  # an exact value is an unbiased estimate with no spread
            return xp.broadcast_to(xp.asarray(exact(x, tt))[None], (self.probes.shape[0], m))
        raise TypeError(f"model: {type(self.model).__name__} needs divergence(x, t) or score_vjp(x, t, v) "
                        "for the probability-flow likelihood")

    def trace_term(self, x, t, covariance):
        """Estimates of ``tr(A J_s)`` at ``x (m, D)``, ``(K, m)``; ``covariance=None`` means ``A = I``."""
        if covariance is None:
            return self.divergence(x, t)
        if isinstance(covariance, Scalar) and not covariance.batched:
            return float(covariance.c) * self.divergence(x, t)
        xp = get_namespace(x)
        m, dim = x.shape
        tt = np.full(m, t)
        if self.probes is None:
            eye = xp.eye(dim, dtype=x.dtype)
            basis = [xp.broadcast_to(eye[j], (m, dim)) for j in range(dim)]
            return xp.sum(self._quadratic(x, tt, basis, covariance), axis=0)[None]
        return self._quadratic(x, tt, list(self.probes), covariance)

    def _tangent(self, x, v):
        return v if self.manifold is None else self.manifold.to_tangent(x, v)

    def velocity(self, x, t):
        """Forward-time ``v (m, D)`` and ``div v`` estimates ``(m, K)``."""
        m, dim = x.shape
        xp = get_namespace(x)
        tt = np.full(m, t)
        score = xp.asarray(self.score(x, tt), dtype=x.dtype).reshape(m, dim)
        if self.manifold is not None:
            g2 = float(self.process.diffusion_coefficient(t)) ** 2
            velocity = self.manifold.to_tangent(x, -0.5 * g2 * score)
            return velocity, (-0.5 * g2) * self.trace_term(x, t, None).T
        covariance = self.dynamics.diffusion_covariance(t)
        velocity = self.dynamics.reverse_drift(x, score, t, weight=0.5)
        drift_trace = _trace(self.process.drift_operator(t), dim)
        return velocity, drift_trace - 0.5 * self.trace_term(x, t, covariance).T


def log_likelihood(model, x, *, process=None, t_min=1e-3, n_steps=64, times=None, divergence="auto", n_probes=4,
                   method="heun", rng=None, progress=False):
    """``log p_{t_min}(x)`` of a score model through the probability-flow ODE.

    Parameters
    ----------
    model : object
        ``score(x (m, D), t (m,)) -> (m, D)``, and for the divergence either ``divergence(x, t)`` (exact;
        optionally ``divergence(x, t, probes=...)`` for Hutchinson estimates, as
        :class:`~opdiff.neural.NeuralScoreModel` and OISM give) or ``score_vjp(x, t, v)`` (``J^T v``).
    x : (n, D) array or (n, C, H, W) images
        Points (on the manifold for a manifold process).
    process : MarkovProcess, optional
        Default ``model.process``. Gaussian processes (drift ``F x``) or ``ManifoldBrownianMotion``.
    t_min : float
        Start of the flow (the likelihood is that of ``p_{t_min}``, the data law smoothed by ``t_min``).
    n_steps : int
        Solver steps on a geometric grid from ``t_min`` to ``T`` (ignored when ``times`` is given).
    times : (k,) array, optional
        Increasing grid from ``t_min`` to ``T``.
    divergence : {"auto", "exact", "hutchinson"}
        ``"auto"``: exact up to ``D = 16``, Hutchinson above.
    n_probes : int
        Rademacher probes per point (Hutchinson); at least 2 give a standard error.
    method : {"euler", "heun", "rk4"}
        Runge-Kutta method of :func:`~opdiff.sampling.integrate_flow`.
    rng : None, int or Generator
        Probes.
    progress : bool
        tqdm bar.

    Returns
    -------
    LogLikelihood
        ``log_likelihood (n,)`` in nats, its ``standard_error (n,)``, ``prior_log_density``, ``end``, ``nfe``.
    """
    process = getattr(model, "process", None) if process is None else process
    if process is None:
        raise TypeError("process: expected a process (the model has no .process)")
    check_choice(divergence, "divergence", ("auto", "exact", "hutchinson"))
    check_choice(method, "method", tuple(TABLEAUX))
    manifold = process.manifold if getattr(process, "is_manifold", False) else None
    if manifold is not None:
        x = manifold.check_points(x, "x")
    else:
        x = check_points(x, "x", ndim=None)
        x = x.reshape(x.shape[0], -1) if x.ndim > 2 else check_points(x, "x", allow_1d=True)
    n, dim = x.shape
    t_max = float(process.t_max)
    if times is None:
        t_min = float(process.check_time(t_min, "t_min"))
        if t_min >= t_max:
            raise ValueError(f"t_min: expected a time below t_max={t_max}, got {t_min}")
        grid = np.geomspace(t_min, t_max, check_count(n_steps, "n_steps") + 1)
    else:
        grid = np.asarray(times, dtype=np.float64)
        if grid.ndim != 1 or grid.shape[0] < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError(f"times: expected an increasing 1-D grid with at least 2 times, got {grid}")
        process.check_time(grid, "times")
    grid[-1] = min(grid[-1], t_max)
    use_probes = divergence == "hutchinson" or (divergence == "auto" and dim > EXACT_MAX_DIM)
    probes = None
    if use_probes:
        k = check_count(n_probes, "n_probes")
        probes = (2.0 * as_generator(rng).integers(0, 2, size=(k, n, dim)) - 1.0).astype(x.dtype)
    flow = _Flow(model, process, probes, manifold)
    n_div = 1 if probes is None else probes.shape[0]

    xp = get_namespace(x)

    def augmented(y, t):
        """``d(x, int div v)/dt``: the velocity and one divergence estimate per probe, ``(m, D + K)``."""
        velocity, div = flow.velocity(y[:, :dim], t)
        return xp.concatenate([velocity, xp.asarray(div, dtype=y.dtype).reshape(y.shape[0], n_div)], axis=1)

    def project(y):
        """The integrator state with its point part on the manifold."""
        return xp.concatenate([flow.point(y[:, :dim]), y[:, dim:]], axis=1)

    start = xp.concatenate([x, xp.zeros((n, n_div), dtype=x.dtype)], axis=1)
    trajectory = integrate_flow(augmented, start, grid, method=method, progress=progress,
                                project=None if manifold is None else project)
    x_end, integral = trajectory.x[:, :dim], trajectory.x[:, dim:]
    prior = process.prior()
    prior_log = xp.asarray(prior.log_density(x_end), dtype=np.float64)
    values = prior_log[:, None] + integral
    mean = values.mean(axis=1)
    spread = values.std(axis=1, ddof=1) / np.sqrt(n_div) if n_div > 1 else xp.zeros(n)
    return LogLikelihood(mean, spread, prior_log, x_end, int(trajectory.nfe),
                         "exact" if probes is None else "hutchinson")
