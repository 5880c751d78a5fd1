"""Bandwidth rules of the diffusion kernel smoother, and the choice of rule, parameter and time.

Point ``x_i`` gets a bandwidth factor ``lambda_i``; its kernel is the transition kernel with the
noise scaled by ``lambda_i`` (Gaussian: ``N(Phi lift(x_i), lambda_i^2 Sigma)``; manifold: heat time
``s(t) lambda_i^2``; :mod:`opdiff.processes.kernels`). The mixture is still a mixture of exact
transition kernels, so score, denoiser, log-density and sampling stay exact. Rules:

``"global"``
    ``lambda_i = 1``.
``"power"`` (exponent ``alpha``; Abramson's square-root law is ``alpha = 1/2``)
    ``lambda_i = (f_i / g)^{-alpha}`` with ``f_i`` the leave-one-out density of the data-space
    smoother at the pilot time and ``log g = sum_i w_i log f_i``.
``"knn"`` (``k``)
    ``lambda_i = d_k(i) / g`` with ``d_k(i)`` the distance from ``x_i`` to its ``k``-th nearest
    *distinct* neighbour (geodesic on manifolds, Euclidean in data space for Gaussian processes) and
    ``log g = sum_i w_i log d_k(i)``.

Floor and grid (both rules): ``log lambda_i`` is rounded to the grid ``log lambda = j log(2) / 4``
(neighbouring factors 19% apart) and clipped to ``|j| <= 13`` (``lambda`` in ``[0.105, 9.51]``). Repeated points count as one
location for the neighbour distances, so duplicates never give a zero bandwidth, and a point whose
pilot density vanishes (isolated) or is huge (an atom) gets the clipped factor, never a zero or an
infinite bandwidth. The grid leaves at most 27 distinct factors, so the tabulated heat kernels need
one table per factor (shared across the candidate times of :func:`select_time`, whose grid of times
is aligned with it).

:func:`select_time` scores every candidate (rule, parameter, time) by K-fold held-out
log-likelihood of the data-space density: per fold the neighbour distances are computed once and the
leave-one-out pilot once per candidate time, reused for every exponent.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from ..backend import as_generator, check_count
from ..operators.kme import KernelMixture, normalised_log_weights

#: Factors are rounded to the geometric grid ``FACTOR_STEP ** j``, ``|j| <= MAX_STEPS``.
FACTOR_STEP = 2.0 ** (1.0 / 4.0)
MAX_STEPS = 13
#: The largest factor (its inverse is the smallest).
MAX_FACTOR = FACTOR_STEP**MAX_STEPS
#: Exponents and neighbour counts tried by :func:`select_time` by default.
DEFAULT_EXPONENTS = (0.5, 1.0)
DEFAULT_NEIGHBOURS = (10, 30, 100)
#: Adaptive candidates are first scored at the grid times within this many steps of the global optimum.
WINDOW = 1
#: Rules of the ``adaptive`` parameter.
RULES = ("global", "power", "knn")


def parse_adaptive(adaptive, k):
    """``(rule, parameter)`` of the smoother's ``adaptive`` parameter (``"auto"``: ``("auto", None)``).

    Parameters
    ----------
    adaptive : None, "power", "knn", "auto" or float
        A number is a power-law exponent (0: the global smoother).
    k : int
        Neighbour count of the ``"knn"`` rule.

    Returns
    -------
    rule : str
    parameter : float, int or None
    """
    if adaptive is None:
        return "global", None
    if isinstance(adaptive, str):
        if adaptive not in ("power", "knn", "auto"):
            raise ValueError(f"adaptive: expected None, 'power', 'knn', 'auto' or an exponent >= 0, got {adaptive!r}")
        if adaptive == "knn":
            return "knn", check_count(k, "k")
        return adaptive, (0.5 if adaptive == "power" else None)
    if isinstance(adaptive, (bool, np.bool_)) or not np.isscalar(adaptive) or not np.isreal(adaptive):
        raise ValueError(f"adaptive: expected None, 'power', 'knn', 'auto' or an exponent >= 0, got {adaptive!r}")
    exponent = float(adaptive)
    if not math.isfinite(exponent) or exponent < 0:
        raise ValueError(f"adaptive: expected a finite exponent >= 0, got {adaptive!r}")
    return ("global", None) if exponent == 0 else ("power", exponent)


def _grid_factors(log_factor):
    """Round ``log lambda`` to the grid and clip it to ``MAX_STEPS`` steps; returns the factors ``(n,)``."""
    step = math.log(FACTOR_STEP)
    steps = np.round(np.nan_to_num(np.asarray(log_factor) / step, nan=0.0, posinf=MAX_STEPS, neginf=-MAX_STEPS))
    return FACTOR_STEP ** np.clip(steps, -MAX_STEPS, MAX_STEPS)


def power_factors(log_pilot, log_weights, exponent):
    """``lambda_i = (f_i / g)^{-exponent}`` on the grid, from leave-one-out log-densities ``log_pilot (n,)``.

    Parameters
    ----------
    log_pilot : (n,) array
        ``log f_i`` (``-inf``: an isolated point; it gets the largest factor).
    log_weights : (n,) array
    exponent : float

    Returns
    -------
    (n,) array
    """
    weights = np.exp(log_weights)
    finite = np.isfinite(log_pilot)
    if not np.any(finite):
        return np.ones(log_pilot.shape[0])
    log_g = np.sum(weights[finite] * log_pilot[finite]) / np.sum(weights[finite])
    with np.errstate(invalid="ignore"):
        return _grid_factors(-exponent * (log_pilot - log_g))


def neighbour_factors(distances, log_weights):
    """``lambda_i = d_k(i) / g`` on the grid, from neighbour distances ``(n,)`` (zeros: one location, ones)."""
    positive = distances > 0
    if not np.any(positive):
        return np.ones(distances.shape[0])
    weights = np.exp(log_weights)
    log_g = np.sum(weights[positive] * np.log(distances[positive])) / np.sum(weights[positive])
    with np.errstate(divide="ignore"):
        return _grid_factors(np.log(distances) - log_g)


def neighbour_distances(mixture, k):
    """Distances of the data of ``mixture`` to their ``k``-th nearest distinct neighbours: ``(n,)``."""
    kernel = mixture.process.transition_kernel(None, data_space=True)
    return kernel.neighbour_distances(mixture.data, k)


def fit_factors(mixture, rule, parameter, pilot_time=None, pilot=None, kernel=None):
    """Bandwidth factors of ``rule`` for the data of ``mixture`` (None for the global rule).

    Parameters
    ----------
    mixture : KernelMixture
        The global mixture of the data.
    rule : {"global", "power", "knn"}
    parameter : float or int
        Exponent (power) or neighbour count (knn).
    pilot_time : float, optional
        Time of the leave-one-out pilot (power rule).
    pilot : (n,) array, optional
        A pilot already computed at ``pilot_time`` (reused across exponents).
    kernel : TransitionKernel, optional
        The data-space kernel at ``pilot_time``, already built.

    Returns
    -------
    (n,) array or None
    """
    if rule == "global":
        return None
    if rule == "knn":
        return neighbour_factors(neighbour_distances(mixture, parameter), mixture.log_weights)
    if pilot is None:
        if pilot_time is None:
            raise ValueError("pilot_time: required by the power rule (or pass time=..., or call select_time(X))")
        pilot = mixture.with_factors(None, data_space=True).leave_one_out(pilot_time, kernel)
    return power_factors(pilot, mixture.log_weights, parameter)


@dataclass
class TimeSelection:
    """Result of :func:`select_time`.

    Attributes
    ----------
    time : float
        The selected time.
    rule : str
        The selected rule (``"global"``, ``"power"``, ``"knn"``).
    parameter : float, int or None
        Its exponent or neighbour count.
    times : (k,) array
        Candidate times.
    candidates : list of (rule, parameter)
    scores : (k, c) array
        Mean held-out log-likelihood per held-out point (``-inf`` where a candidate underflowed, NaN
        where it was not scored: adaptive candidates are scored at the times around the global
        optimum, the window widened while a candidate's best time lies on its edge).
    stderr : (k, c) array
        Standard errors of the scores.
    """

    time: float
    rule: str
    parameter: object
    times: np.ndarray
    candidates: list = field(default_factory=list)
    scores: np.ndarray = None
    stderr: np.ndarray = None


def candidate_rules(adaptive, k, exponents=None, neighbours=None):
    """The (rule, parameter) candidates of a smoother's ``adaptive`` setting.

    ``None`` (or 0): the global rule; an exponent: that power law; ``"power"``: global and
    ``exponents``; ``"knn"``: global and ``neighbours`` (default: :data:`DEFAULT_NEIGHBOURS` and
    ``k``); ``"auto"``: all of them.

    Parameters
    ----------
    adaptive : None, str or float
    k : int
        The smoother's neighbour count.
    exponents, neighbours : sequence, optional
        Override the defaults :data:`DEFAULT_EXPONENTS`, :data:`DEFAULT_NEIGHBOURS`.

    Returns
    -------
    list of (str, float or int or None)
    """
    rule, parameter = parse_adaptive(adaptive, k)
    if rule == "global":
        return [("global", None)]
    if rule == "power" and not isinstance(adaptive, str):
        return [("power", parameter)]
    exponents = DEFAULT_EXPONENTS if exponents is None else tuple(np.atleast_1d(exponents))
    for value in exponents:
        if not (np.isreal(value) and math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"exponents: expected finite exponents > 0, got {exponents}")
    if neighbours is None:
        neighbours = sorted(set(DEFAULT_NEIGHBOURS) | {check_count(k, "k")})
    neighbours = [check_count(value, "neighbours") for value in np.atleast_1d(neighbours)]
    out = [("global", None)]
    if rule in ("power", "auto"):
        out += [("power", float(a)) for a in exponents]
    if rule in ("knn", "auto"):
        out += [("knn", int(value)) for value in neighbours]
    return out


def default_times(mixture, n_times=12, rng=0):
    """Geometric grid of times whose data-space bandwidths span ``[d_nn / 4, 2 d_median]``.

    The bandwidths are powers of :data:`FACTOR_STEP` (ratio ``FACTOR_STEP^q`` between neighbours).

    ``d_nn``: median distance to the nearest distinct neighbour; ``d_median``: median distance to
    the ``n/2``-th neighbour (about the median pairwise distance), both on a subsample of at most
    400 points. Clipped into the process's range.

    Parameters
    ----------
    mixture : KernelMixture
    n_times : int
    rng : None, int or Generator

    Returns
    -------
    (k,) array
    """
    rng = as_generator(rng)
    data = mixture.data
    sub = data[rng.permutation(data.shape[0])[:400]]
    kernel = mixture.process.transition_kernel(None, data_space=True)
    d_nn = float(np.median(kernel.neighbour_distances(sub, 1)))
    d_med = float(np.median(kernel.neighbour_distances(sub, max(1, sub.shape[0] // 2))))
    if not d_med > 0:
        raise ValueError("X: every training point is at the same location; the held-out selection of a "
                         "bandwidth needs at least two distinct points")
    # bandwidths on the grid FACTOR_STEP^(k0 + q j), aligned with the factors' grid: heat times
    # s(t) lambda^2 of different (time, factor) pairs coincide and share their tables
    step = math.log(FACTOR_STEP)
    n_times = check_count(n_times, "n_times", minimum=2)
    first = math.floor(math.log(max(d_nn / 4, 1e-6 * d_med)) / step)
    q = max(1, math.ceil((math.log(2 * d_med) / step - first) / (n_times - 1)))
    h = FACTOR_STEP ** (first + q * np.arange(n_times))
    times = np.asarray(kernel.time_at_bandwidth(h, data.shape[1]), dtype=np.float64)
    process = mixture.process
    low = process.t_min if process.t_min > 0 else 1e-12
    return np.unique(np.clip(times, low, process.t_max))


def select_time(mixture, candidates, times=None, n_folds=5, rng=0):
    """K-fold held-out log-likelihood of the candidates (rule, parameter) over a grid of times.

    The global rule is scored at every time; the adaptive candidates at the :data:`WINDOW` grid
    times on each side of its optimum (their geometric-mean bandwidth is near the global one), the
    window widened one time at a time while some candidate's best time lies on its edge. Per fold
    the neighbour factors are computed once, the leave-one-out pilot once per time.

    Parameters
    ----------
    mixture : KernelMixture
        The global mixture of all the data.
    candidates : list of (rule, parameter)
        See :func:`candidate_rules`.
    times : (k,) array, optional
        Candidate times (default :func:`default_times`).
    n_folds : int
    rng : None, int or Generator
        Fold assignment (and the subsample of the default grid).

    Returns
    -------
    TimeSelection
    """
    process, data = mixture.process, mixture.data
    n = data.shape[0]
    if int(n_folds) != n_folds or not 2 <= n_folds <= n:
        raise ValueError(f"n_folds: expected an integer in [2, {n}], got {n_folds}")
    rng = as_generator(rng)
    if times is None:
        times = default_times(mixture, rng=rng)
    else:
        times = np.atleast_1d(process.check_time(np.atleast_1d(np.asarray(times, dtype=np.float64)), "times"))
    folds = np.array_split(rng.permutation(n), int(n_folds))
    kernels = [process.transition_kernel(float(t), data_space=True) for t in times]  # shared by folds
    weights = np.exp(mixture.log_weights)
    held_out = np.full((times.size, len(candidates), n), np.nan)
    parts = []
    for fold in folds:
        train = np.setdiff1d(np.arange(n), fold)
        part = KernelMixture(process, data[train], normalised_log_weights(weights[train], train.size, "X"),
                             backend=mixture.backend, data_space=True)
        knn = {k: neighbour_factors(neighbour_distances(part, k), part.log_weights)
               for rule, k in candidates if rule == "knn"}
        parts.append((fold, part, knn, {}))

    def evaluate(i, columns):
        """Held-out log-densities of the candidates ``columns`` at time ``times[i]``, every fold."""
        t, kernel = float(times[i]), kernels[i]
        for fold, part, knn, pilots in parts:
            for j in columns:
                rule, parameter = candidates[j]
                if rule == "power" and i not in pilots:  # once per time, reused for every exponent
                    pilots[i] = part.leave_one_out(t, kernel)
                factors = knn[parameter] if rule == "knn" else fit_factors(part, rule, parameter, t, pilots.get(i))
                held_out[i, j, fold] = part.with_factors(factors).evaluate(data[fold], t, "log_density", kernel)

    def mean_scores():
        with np.errstate(invalid="ignore"):
            return np.sum(held_out * weights, axis=2) / np.sum(weights)

    glob = [j for j, (rule, _) in enumerate(candidates) if rule == "global"]
    rest = [j for j in range(len(candidates)) if j not in glob]
    if not glob or not rest:
        for i in range(times.size):
            evaluate(i, range(len(candidates)))
    else:
        for i in range(times.size):
            evaluate(i, glob)
        global_scores = mean_scores()[:, glob[0]]
        best = int(np.argmax(np.where(np.isfinite(global_scores), global_scores, -np.inf)))
        window = list(range(max(0, best - WINDOW), min(times.size, best + WINDOW + 1)))
        for i in window:
            evaluate(i, rest)
        while True:  # widen the window while a candidate's best time sits on an edge that is not the grid's
            scores = np.where(np.isfinite(mean_scores()), mean_scores(), -np.inf)[:, rest]
            tops = {int(np.argmax(scores[:, c])) for c in range(len(rest))}
            grow = [i for i, edge in ((window[0] - 1, window[0]), (window[-1] + 1, window[-1]))
                    if 0 <= i < times.size and edge in tops]
            if not grow:
                break
            for i in grow:
                evaluate(i, rest)
            window = sorted(window + grow)
    with np.errstate(invalid="ignore"):
        scores = mean_scores()
        spread = np.sqrt(np.sum(weights * (held_out - scores[..., None]) ** 2, axis=2) / np.sum(weights))
    evaluated = ~np.isnan(scores)
    scores = np.where(evaluated & ~np.isfinite(scores), -np.inf, scores)
    i, j = np.unravel_index(np.argmax(np.where(evaluated, scores, -np.inf)), scores.shape)
    rule, parameter = candidates[j]
    return TimeSelection(float(times[i]), rule, parameter, times, list(candidates), scores, spread / math.sqrt(n))
