"""Adaptive smoothing: a bandwidth per training point, and the choice of time by held-out likelihood.

Adaptive (variable-bandwidth) kernel smoother. Training point ``x_i`` gets a bandwidth factor
``lambda_i`` from a leave-one-out pilot estimate ``f_i = rho_{t0, -i}(x_i)`` by the power law

    lambda_i = (f_i / g)^{-alpha},     log g = sum_i w_i log f_i   (weighted geometric mean),

(Abramson's square-root law is ``alpha = 1/2``; ``alpha = 0`` is the global smoother), so that
dense regions are smoothed less than sparse ones. At time ``t`` the kernel of point ``i`` is the
transition kernel with its noise scaled by ``lambda_i``:

- manifold Brownian motion: heat time ``s(t) lambda_i^2`` (exactly the transition kernel at time
  ``s^{-1}(s(t) lambda_i^2)``);
- scalar Gaussian processes ``x_t = a(t) (x_0 + sigma(t) eps)``: ``N(a(t) x_i, a(t)^2 sigma(t)^2 lambda_i^2 I)``
  (for BM / VE exactly the transition kernel at the time with noise level ``sigma(t) lambda_i``);
- every other Gaussian process (CLD, MALDA, SAGD, fractional, ...): the same rule,
  ``N(Phi(t) lift(x_i), lambda_i^2 Sigma(t))``, exactly the transition kernel of the process with its
  noise scaled by ``lambda_i`` (see :mod:`opdiff.estimators.adaptive_gaussian`).

It is still a mixture of (heat / Gaussian) kernels, so ``score`` and ``log_density`` are exact for
it. Every sum goes through the heat-kernel mixture of :mod:`opdiff.estimators.riemannian` (a
Gaussian kernel is the heat kernel of :class:`~opdiff.manifolds.Euclidean` at heat time
``variance / 2``), so Euclidean and manifold processes share one code path; processes with
structured ``(Phi, Sigma)`` are whitened first (:class:`~opdiff.estimators.adaptive_gaussian.AdaptiveGaussianKernels`).

:func:`select_time` picks the global time ``t`` and the exponent ``alpha`` together by K-fold
held-out log-likelihood of the data-space density (the smoother as a density estimator of
``x_0``: ``rho_t`` itself on a manifold, ``N(x_i, sigma(t)^2 lambda_i^2 I)`` for scalar Gaussian
processes, ``N(x_i, lambda_i^2 C(t))`` with the data block ``C(t)`` of the transition otherwise).
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_generator, check_points
from ..manifolds import Euclidean
from ..operators.kme import by_time
from ..processes.base import GaussianProcess
from ..processes.scalar import ScalarGaussianProcess
from ..reductions import pairwise_reduction
from .adaptive_gaussian import AdaptiveGaussianKernels, adaptive_gaussian_sample, time_at_noise_level
from .riemannian import heat_kernel_mixture

#: Default clip of the bandwidth factors: ``[1/10, 10]``.
MAX_FACTOR = 10.0


def _is_manifold(process):
    return bool(getattr(process, "is_manifold", False))


def _is_structured(process):
    """A Gaussian process other than the scalar ones: handled by :mod:`.adaptive_gaussian`."""
    return isinstance(process, GaussianProcess) and not isinstance(process, ScalarGaussianProcess)


def check_adaptive_process(process):
    """Raise ``TypeError`` unless adaptive smoothing supports ``process`` (manifold or Gaussian process)."""
    if not (_is_manifold(process) or isinstance(process, GaussianProcess)):
        raise TypeError("process: adaptive smoothing needs a manifold process or a Gaussian process "
                        f"(BrownianMotion, VPSDE, StationaryLinearSDE, SpectralAnisotropic, ...), "
                        f"got {type(process).__name__}")


def kernel_view(process, data, t, data_space=False):
    """The mixture at one time as a heat-kernel mixture: ``(manifold, centres, heat_time)``.

    Parameters
    ----------
    process : ManifoldBrownianMotion or ScalarGaussianProcess
        (other Gaussian processes go through :class:`AdaptiveGaussianKernels`)
    data : (n, d) array
    t : float
    data_space : bool
        Gaussian processes: the density of ``x_0`` (centres ``x_i``, variance ``sigma(t)^2``) instead
        of the forward marginal of ``x_t`` (centres ``a(t) x_i``, variance ``a(t)^2 sigma(t)^2``).
        No effect on manifolds (the two coincide).
    """
    check_adaptive_process(process)
    if _is_structured(process):
        raise TypeError(f"process: kernel_view covers manifold and scalar Gaussian processes; "
                        f"{type(process).__name__} goes through AdaptiveGaussianKernels")
    if _is_manifold(process):
        return process.manifold, data, float(process.heat_time(t))
    scale = 1.0 if data_space else float(process.scale(t))
    sigma = float(process.noise_level(t))
    return Euclidean(data.shape[1]), scale * data, 0.5 * (scale * sigma) ** 2


def _check_queries(process, x, name="x", dim=None):
    if _is_manifold(process):
        return process.manifold.check_points(x, name)
    return check_points(x, name, dim=dim, allow_1d=True)


def _query_dim(process, data, data_space=False):
    """Width of the queries: the data's, or the state's (``K d``) for auxiliary-variable processes."""
    d = data.shape[1]
    return d if data_space or _is_manifold(process) else process.state_dim(d)


def _structured(process, data, log_weights, t, factors, data_space=False):
    return AdaptiveGaussianKernels(process, data, log_weights, t, factors, data_space)


def _mixture(process, data, log_weights, x, t, factors, gradient, data_space=False):
    """Reduction of the adaptive mixture at validated ``x`` and a single time ``t``."""
    manifold, centres, s = kernel_view(process, data, t, data_space)
    squared = None if factors is None else np.asarray(factors, dtype=np.float64)[None, :] ** 2
    heat = (lambda rows: s) if squared is None else (lambda rows: s * squared)
    return heat_kernel_mixture(manifold, centres, log_weights, x, heat, gradient, values=data)


def _by_time(process, x, t, evaluate):
    """Apply ``evaluate(rows_x, t_float)`` to the query rows sharing each distinct time."""
    return by_time(x, process.check_time(t, n=x.shape[0]), evaluate)


def adaptive_log_density(process, data, log_weights, x, t, bandwidth_factors, data_space=False):
    """``log rho_t(x)`` of the adaptive mixture; ``x (m, D)``, ``t`` float or ``(m,)`` -> ``(m,)``.

    ``data_space=True`` (Gaussian processes): the density of ``x_0`` instead of ``x_t``.
    """
    x = _check_queries(process, x, dim=_query_dim(process, data, data_space))
    if _is_structured(process):
        return _by_time(process, x, t, lambda rows, tt: _structured(
            process, data, log_weights, tt, bandwidth_factors, data_space).log_density(rows))
    return _by_time(process, x, t, lambda rows, tt: _mixture(
        process, data, log_weights, rows, tt, bandwidth_factors, False, data_space).log_sum)


def adaptive_score(process, data, log_weights, x, t, bandwidth_factors):
    """Exact score of the adaptive mixture (tangent vectors on a manifold); ``(m, D)``."""
    x = _check_queries(process, x, dim=_query_dim(process, data))
    if _is_structured(process):
        return _by_time(process, x, t, lambda rows, tt: _structured(
            process, data, log_weights, tt, bandwidth_factors).score(rows))

    def evaluate(rows, tt):
        score = _mixture(process, data, log_weights, rows, tt, bandwidth_factors, True).mean
        return process.manifold.to_tangent(rows, score) if _is_manifold(process) else score

    return _by_time(process, x, t, evaluate)


def adaptive_denoise(process, data, log_weights, x, t, bandwidth_factors):
    """Posterior mean ``E[x_0 | x_t = x]`` of the adaptive mixture (ambient on manifolds); ``(m, d)``."""
    x = _check_queries(process, x, dim=_query_dim(process, data))
    if _is_structured(process):
        return _by_time(process, x, t, lambda rows, tt: _structured(
            process, data, log_weights, tt, bandwidth_factors).denoise(rows))
    return _by_time(process, x, t, lambda rows, tt: _mixture(
        process, data, log_weights, rows, tt, bandwidth_factors, False).mean)


def adaptive_sample(process, points, t, factors, rng=None):
    """Exact draws of the adaptive kernels at time ``t`` centred at ``points (k, d)`` with ``factors (k,)``.

    Manifolds: heat-kernel samples at heat time ``s(t) lambda^2``; scalar Gaussian processes:
    ``a(t) (x + sigma(t) lambda eps)``; other Gaussian processes ``Phi lift(x) + lambda L eps``.
    """
    check_adaptive_process(process)
    rng = as_generator(rng)
    t = float(process.check_time(t))
    factors = np.asarray(factors, dtype=np.float64)
    if _is_manifold(process):
        return process.manifold.sample_heat_kernel(points, float(process.heat_time(t)) * factors**2, rng=rng)
    if _is_structured(process):
        return adaptive_gaussian_sample(process, points, t, factors, rng)
    noise = rng.standard_normal(points.shape).astype(points.dtype, copy=False)
    sigma = (float(process.noise_level(t)) * factors[:, None]).astype(points.dtype, copy=False)  # float32 kept
    return float(process.scale(t)) * (points + sigma * noise)


def leave_one_out_log_density(process, data, t, log_weights=None, bandwidth_factors=None):
    """Leave-one-out data-space log-density ``log rho_{t,-i}(x_i)``, ``(n,)``, renormalised.

    The mixture without point ``i`` has weights ``w_j / (1 - w_i)``.
    """
    n = data.shape[0]
    if n < 2:
        raise ValueError(f"data: leave-one-out needs at least 2 points, got {n}")
    if log_weights is None:
        log_weights = np.full(n, -np.log(n))
    if _is_structured(process):
        kernels = _structured(process, data, log_weights, float(t), bandwidth_factors, data_space=True)
        with np.errstate(divide="ignore"):
            return kernels.reduce(data, exclude_self=True)[0] - np.log1p(-np.exp(log_weights))
    manifold, centres, s = kernel_view(process, data, float(t), data_space=True)
    squared = 1.0 if bandwidth_factors is None else np.asarray(bandwidth_factors, dtype=np.float64)[None, :] ** 2

    def block(queries, points, rows):
        return manifold.pairwise_log_heat_kernel(queries, points, s * squared), None

    reduction = pairwise_reduction(centres, centres, block, log_weights=log_weights, exclude_self=True,
                                   pair_arrays=8 + 3 * data.shape[1])
    with np.errstate(divide="ignore"):  # a point holding all the weight leaves nothing: -inf
        return reduction.log_sum - np.log1p(-np.exp(log_weights))


def pilot_bandwidth_factors(process, data, pilot_time, exponent=0.5, log_weights=None, max_factor=MAX_FACTOR):
    """Bandwidth factors ``lambda_i = (f_i / g)^{-exponent}`` from a leave-one-out pilot at ``pilot_time``.

    Parameters
    ----------
    process : ManifoldBrownianMotion or GaussianProcess
    data : (n, d) array
    pilot_time : float
        Time of the (global) pilot smoother.
    exponent : float
        ``alpha >= 0`` (Abramson: 0.5; 0: all factors one).
    log_weights : (n,) array, optional
    max_factor : float
        Factors are clipped to ``[1 / max_factor, max_factor]`` (isolated points of a small pilot
        have a vanishing leave-one-out density; the clip keeps their kernels finite).

    Returns
    -------
    (n,) array
        Positive factors (weighted geometric mean one before clipping).
    """
    exponent = float(exponent)
    if not np.isfinite(exponent) or exponent < 0:
        raise ValueError(f"exponent: expected a finite number >= 0, got {exponent}")
    n = data.shape[0]
    if exponent == 0:
        return np.ones(n)
    pilot_time = float(process.check_time(pilot_time, "pilot_time"))
    log_f = leave_one_out_log_density(process, data, pilot_time, log_weights)
    if not np.all(np.isfinite(log_f)):
        raise ValueError("data: the pilot density underflowed at some points; choose a larger pilot_time")
    weights = np.full(n, 1.0 / n) if log_weights is None else np.exp(log_weights)
    log_g = np.sum(weights * log_f) / np.sum(weights)
    log_factor = np.clip(-exponent * (log_f - log_g), -np.log(max_factor), np.log(max_factor))
    return np.exp(log_factor)


@dataclass
class TimeSelection:
    """Result of :func:`select_time`.

    Attributes
    ----------
    time, exponent : float
        The maximiser of the held-out log-likelihood.
    times : (k,) array
    exponents : (e,) array
    scores : (k, e) array
        Mean held-out log-likelihood per held-out point.
    stderr : (k, e) array
        Standard errors of the scores (over held-out points).
    """

    time: float
    exponent: float
    times: np.ndarray
    exponents: np.ndarray
    scores: np.ndarray
    stderr: np.ndarray


def default_times(process, X, n_times=12, rng=0):
    """Geometric grid of times whose bandwidths span ``[d_nn / 4, 2 d_median]`` of the data.

    ``d_nn``: median nearest-neighbour distance, ``d_median``: median pairwise distance (both on a
    subsample of at most 400 points); bandwidth ``h`` means heat time ``h^2 / 2`` on a manifold and
    noise level ``h`` for Gaussian processes (other than the scalar ones: the geometric-mean standard
    deviation of the data-space kernel, inverted numerically). Times are clipped into the process's range.
    """
    rng = as_generator(rng)
    sub = X[rng.permutation(X.shape[0])[:400]]
    geometry = process.manifold if _is_manifold(process) else Euclidean(X.shape[1])
    distances = geometry.dist(sub[:, None, :], sub[None, :, :])
    off = distances[~np.eye(sub.shape[0], dtype=bool)].reshape(sub.shape[0], -1)
    d_nn = float(np.median(off.min(axis=1)))
    d_med = float(np.median(off))
    h = np.geomspace(max(d_nn / 4, 1e-6 * d_med), 2 * d_med, n_times)
    if _is_manifold(process):
        times = process.time_at_heat_time(h**2 / 2)
    elif _is_structured(process):
        times = time_at_noise_level(process, h, X.shape[1])
    else:
        times = process.time_at_noise_level(h)
    low = process.t_min if process.t_min > 0 else 1e-12
    return np.unique(np.clip(np.asarray(times, dtype=np.float64), low, process.t_max))


def select_time(process, X, times=None, exponents=(0.0,), n_folds=5, rng=0):
    """Choose the global time and the adaptive exponent by K-fold held-out log-likelihood.

    Parameters
    ----------
    process : ManifoldBrownianMotion or GaussianProcess
    X : (n, d) array
    times : (k,) array, optional
        Candidate times (default :func:`default_times`).
    exponents : sequence of float
        Candidate exponents ``alpha`` (``(0,)``: global smoother only). For ``alpha > 0`` the pilot
        is the global smoother at the same time, fitted on the training folds.
    n_folds : int
    rng : None, int or Generator
        Fold assignment.

    Returns
    -------
    TimeSelection
    """
    check_adaptive_process(process)
    X = _check_queries(process, X, "X")
    n = X.shape[0]
    if int(n_folds) != n_folds or not 2 <= n_folds <= n:
        raise ValueError(f"n_folds: expected an integer in [2, {n}], got {n_folds}")
    rng = as_generator(rng)
    times = default_times(process, X, rng=rng) if times is None else np.asarray(
        process.check_time(np.atleast_1d(np.asarray(times, dtype=np.float64)), "times"))
    exponents = np.atleast_1d(np.asarray(exponents, dtype=np.float64))
    if exponents.size == 0 or np.any(~np.isfinite(exponents)) or np.any(exponents < 0):
        raise ValueError(f"exponents: expected finite numbers >= 0, got {exponents}")
    folds = np.array_split(rng.permutation(n), int(n_folds))
    held_out = np.empty((times.size, exponents.size, n))
    for fold in folds:
        train = np.setdiff1d(np.arange(n), fold)
        for i, t in enumerate(times):
            for j, alpha in enumerate(exponents):
                factors = pilot_bandwidth_factors(process, X[train], t, alpha) if alpha > 0 else None
                held_out[i, j, fold] = adaptive_log_density(process, X[train], None, X[fold], float(t),
                                                            factors, data_space=True)
    scores = held_out.mean(axis=2)
    stderr = held_out.std(axis=2) / np.sqrt(n)
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    i, j = np.unravel_index(np.argmax(scores), scores.shape)
    return TimeSelection(float(times[i]), float(exponents[j]), times, exponents, scores, stderr)
