"""Time sampling for the likelihood bounds of stationary linear SDEs (MDM, arXiv 2302.07261).

The VP likelihood importance sampler (Song et al., arXiv 2101.09258), used by MDM for every process: density
``beta(s) / (1 - e^{-tau(s)})`` on ``[t_min, T]`` (``tau`` the integrated ``beta``); its CDF is
``log(e^{tau} - 1)`` up to constants, inverted in closed form for the linear and constant schedules.
"""
import numpy as np

from ..backend import as_generator, check_count, check_positive


def _log_expm1_range(process, t_min):
    """``log(e^{tau} - 1)`` at ``t_min`` and at ``T``: the ends of the importance CDF."""
    return (np.log(np.expm1(process.integrated_beta(t_min))),
            np.log(np.expm1(process.integrated_beta(process.t_max))))


def sample_times(process, n, rng=None, t_min=1e-3, importance=True):
    """Times in ``[t_min, T]`` and their weights ``1 / density``.

    Parameters
    ----------
    process : StationaryLinearSDE
        Supplies ``beta``, ``integrated_beta``, ``t_max`` and the schedule.
    n : int
        Number of times.
    rng : None, int or numpy.random.Generator
    t_min : float
        Lower end of the time range (the truncation of the ELBO's time integral).
    importance : bool
        Draw from the importance density; ``False`` draws uniformly (weight ``T - t_min``).

    Returns
    -------
    t, weight : (n,) arrays
        ``E[weight f(t)] = int_{t_min}^T f``.
    """
    rng = as_generator(rng)
    n = check_count(n, "n")
    t_min = check_positive(t_min, "t_min")
    T = process.t_max
    if t_min >= T:
        raise ValueError(f"t_min: expected a time below T={T}, got {t_min}")
    u = rng.uniform(size=n)
    if not importance:
        return t_min + (T - t_min) * u, np.full(n, T - t_min)
    lo, hi = _log_expm1_range(process, t_min)
    tau = np.log1p(np.exp(lo + u * (hi - lo)))
    if process.schedule == "constant" or process.beta_max == process.beta_min:
        t = tau / process.beta_min
    else:
        slope = process.beta_max - process.beta_min
        t = (-process.beta_min + np.sqrt(process.beta_min**2 + 2.0 * slope * tau)) / slope
    density = process.beta(t) / -np.expm1(-tau) / (hi - lo)
    return np.clip(t, t_min, T), 1.0 / density


def time_quantile(process, t, t_min):
    """CDF of the importance density at ``t`` (used for equal-probability time bins).

    Parameters
    ----------
    process : StationaryLinearSDE
    t : float or (n,) array
    t_min : float

    Returns
    -------
    float or (n,) array
        In ``[0, 1]``.
    """
    lo, hi = _log_expm1_range(process, t_min)
    return np.clip((np.log(np.expm1(process.integrated_beta(t))) - lo) / (hi - lo), 0.0, 1.0)
