"""Heat kernel of the unit sphere ``S^n`` (``n >= 2``), in the log domain, with its derivative.

Heat time convention: ``s`` is the time of ``d/ds p = Laplace-Beltrami p`` (see
:mod:`opdiff.manifolds.heat_circle`). The kernel depends on the geodesic angle ``theta`` only and
is a density with respect to the Riemannian volume (it integrates to one over ``S^n``).

Eigen-series (Gegenbauer; Legendre for ``n = 2``), with ``lambda = (n - 1) / 2``:

    p_s(theta) = sum_l exp(-l (l + n - 1) s) (2 l + n - 1) / (n - 1) C_l^lambda(cos theta) / |S^n|

truncated at the first ``L`` whose tail, bounded with ``|C_l(c)| <= C_l(1)``, is below
``tol * p_s(0)``. Short-time form (Varadhan / Minakshisundaram-Pleijel with its corrections),
``rho = (n - 1) / 2``, ``beta = rho - rho^2``:

    p_s(theta) ~ (4 pi s)^{-n/2} exp(-theta^2 / 4 s) (theta / sin theta)^rho (1 + s v1(theta) + s^2 a2)
    v1(theta) = rho^2 + beta (1 / theta^2 - cot(theta) / theta)      (solves the first transport equation)
    a2 = (5 R^2 - 2 |Ric|^2 + 2 |Rm|^2) / 360 = n (n - 1) (5 n^2 - 7 n + 6) / 360   (on-diagonal coefficient)

Its error is ``O(s^3)`` relative to the peak ``p_s(0)`` (``4 s^3 / 315`` for ``n = 2``).

Accuracy contract (``tol``, default ``1e-8``): with ``method="auto"`` every value satisfies
``|p_hat - p| <= tol * p_s(0)`` (error relative to the kernel's peak), and the log-kernel is
finite everywhere. The short-time form is used for ``s < switch_time(n, tol)``, where its
``O(s^3)`` error is below ``tol``; above, the series. Where the series value falls below its own
rounding floor (``max(tol, 1e4 eps)`` times the sum of its absolute terms: far tails, ``s`` small),
the short-time value is used, capped at that floor, so log-densities of far-away points stay
finite and within the peak-relative contract. The derivative is returned as
``g = d log p / d cos(theta)``, so that the Riemannian gradient in ``y`` of ``log p_s(x, y)`` is
``g * (x - (x . y) y)``.
"""
import math

import numpy as np
from scipy.special import gammaln

from ..backend import check_count, get_namespace
from .heat_circle import check_heat_time, check_tolerance

DEFAULT_TOL = 1e-8
_SMALL_ANGLE = 0.1  # below: Taylor series of the cot-differences (direct forms lose digits)
# sin(theta) is floored here: within 1e-8 of the antipode (the cut locus, where the short-time form
# has its caustic and the kernel is below exp(-pi^2 / 4 s)) the gradient stays bounded by pi / (2 s).
_SIN_FLOOR = 1e-8


def sphere_area(n):
    """Riemannian volume ``|S^n| = 2 pi^{(n+1)/2} / Gamma((n+1)/2)``.

    Parameters
    ----------
    n : int
        Intrinsic dimension, ``>= 1``.

    Returns
    -------
    float
    """
    n = check_count(n, "n")
    return float(np.exp(math.log(2.0) + 0.5 * (n + 1) * math.log(math.pi) - gammaln(0.5 * (n + 1))))


def short_time_error_coefficient(n):
    """``c_n`` with short-time error ``~ c_n s^3`` relative to the peak (exact for ``n = 2, 3``)."""
    if n == 2:
        return 4.0 / 315.0
    return max(4.0 / 315.0, (n * (n - 1) / 6.0) ** 3 / 6.0)


def switch_time(n, tol=DEFAULT_TOL):
    """Heat time below which ``method="auto"`` uses the short-time form: ``(tol / c_n)^{1/3}``.

    Parameters
    ----------
    n : int
        Intrinsic dimension, ``>= 2``.
    tol : float
        Accuracy relative to the peak, in ``(0, 1)``.

    Returns
    -------
    float
    """
    n = check_count(n, "n", minimum=2)
    tol = check_tolerance(tol)
    return (tol / short_time_error_coefficient(n)) ** (1.0 / 3.0)


def series_terms(s_min, n, tol=DEFAULT_TOL):
    """Number of series terms ``L`` such that the tail is below ``tol * p_s(0)`` for all ``s >= s_min``."""
    lam = 0.5 * (n - 1)
    l_max = int(math.ceil(math.sqrt(80.0 / s_min))) + 2 * n + 10
    ls = np.arange(l_max + 1, dtype=np.float64)
    # log of a_l C_l(1): exp(-l(l+n-1)s) (2l+n-1)/(n-1) Gamma(l+2 lam) / (Gamma(2 lam) l!)
    log_b = (-ls * (ls + n - 1) * s_min + np.log((2 * ls + n - 1) / (n - 1))
             + gammaln(ls + 2 * lam) - gammaln(2 * lam) - gammaln(ls + 1))
    b = np.exp(log_b - log_b.max())
    tail = np.cumsum(b[::-1])[::-1]  # tail[l] = sum_{k >= l} b_k
    below = np.flatnonzero(tail <= tol * b.sum())
    # two extra terms: the derivative series decays one power of l slower
    return int(below[0]) + 2 if below.size else l_max


def series_floor(tol=DEFAULT_TOL):
    """Relative rounding floor of the series: ``max(tol, 1e4 eps)`` times the sum of absolute terms."""
    return max(tol, 1e4 * np.finfo(np.float64).eps)


def _cot_differences(theta, xp):
    """``B = 1/theta^2 - cot(theta)/theta`` and ``B'/theta``, stable at small angles."""
    t2 = theta * theta
    small = theta < _SMALL_ANGLE
    series_B = 1.0 / 3.0 + t2 * (1.0 / 45.0 + t2 * (2.0 / 945.0 + t2 * (1.0 / 4725.0 + t2 * 2.0 / 93555.0)))
    series_dB = 2.0 / 45.0 + t2 * (8.0 / 945.0 + t2 * (6.0 / 4725.0 + t2 * 16.0 / 93555.0))
    safe = xp.where(small, 1.0, theta)
    sin_safe = xp.maximum(xp.sin(safe), _SIN_FLOOR)
    cot = xp.cos(safe) / sin_safe
    direct_B = 1.0 / (safe * safe) - cot / safe
    direct_dB = (-2.0 / safe**3 + cot / safe**2 + 1.0 / (safe * sin_safe * sin_safe)) / safe
    return xp.where(small, series_B, direct_B), xp.where(small, series_dB, direct_dB)


def _theta_over_sin(theta, xp):
    """``theta / sin(theta)``, with ``1 + theta^2/6`` near zero and the sine floored near ``pi``."""
    small = theta < 1e-4
    safe = xp.where(small, 1.0, theta)
    ratio = safe / xp.maximum(xp.sin(safe), _SIN_FLOOR)
    return xp.where(small, 1.0 + theta * theta / 6.0, ratio)


def _short_time(theta, s, n, xp):
    rho = 0.5 * (n - 1)
    beta = rho - rho * rho
    a2 = n * (n - 1) * (5 * n * n - 7 * n + 6) / 360.0
    B, dB_over_theta = _cot_differences(theta, xp)
    ts = _theta_over_sin(theta, xp)
    v1 = rho * rho + beta * B
    correction = 1.0 + s * v1 + s * s * a2
    # For n >= 4 (beta < 0) the correction turns negative at the caustic near the antipode, where
    # the form is invalid and the kernel negligible: keep the leading Varadhan term there.
    valid = correction > 0.5
    correction = xp.where(valid, correction, 1.0)
    log_p = (-0.5 * n * xp.log(4.0 * math.pi * s) - theta * theta / (4.0 * s)
             + rho * xp.log(ts) + xp.log(correction))
    g = ts / (2.0 * s) - rho * B * ts - xp.where(valid, s * beta * dB_over_theta * ts / correction, 0.0)
    return log_p, g


def _series(theta, s, n, tol, xp):
    """Series value, derivative in ``cos theta``, and the sum of absolute terms (rounding scale)."""
    lam = 0.5 * (n - 1)
    c = xp.cos(theta)
    L = series_terms(float(xp.min(s)), n, tol)
    norm = 1.0 / sphere_area(n)
    total = xp.full(theta.shape, norm)
    slope = xp.zeros_like(theta)
    absolute = xp.full(theta.shape, norm)
    C_prev, C = xp.ones_like(c), 2.0 * lam * c  # C_0^lam, C_1^lam
    D_prev, D = xp.zeros_like(c), xp.ones_like(c)  # C_{-1}^{lam+1} := 0, C_0^{lam+1}
    for l in range(1, L + 1):
        a = xp.exp(-(l * (l + n - 1)) * s) * ((2 * l + n - 1) / (n - 1) * norm)
        term = a * C
        total += term
        absolute += xp.abs(term)
        slope += a * (2.0 * lam) * D
        C_prev, C = C, (2.0 * (l + lam) * c * C - (l + 2 * lam - 1) * C_prev) / (l + 1)
        D_prev, D = D, (2.0 * (l + lam) * c * D - (l + 2 * lam) * D_prev) / l
    return total, slope, absolute


def _series_with_floor(theta, s, n, tol, xp):
    total, slope, absolute = _series(theta, s, n, tol, xp)
    floor = series_floor(tol) * absolute
    reliable = total > floor
    log_p = xp.log(xp.where(reliable, total, 1.0))
    g = slope / xp.where(reliable, total, 1.0)
    if not bool(xp.all(reliable)):
        far_log, far_g = _short_time(theta, s, n, xp)
        capped = far_log > xp.log(floor)
        far_log = xp.where(capped, xp.log(floor), far_log)
        far_g = xp.where(capped, 0.0, far_g)
        log_p = xp.where(reliable, log_p, far_log)
        g = xp.where(reliable, g, far_g)
    return log_p, g


def sphere_log_heat_kernel(theta, s, n, method="auto", tol=DEFAULT_TOL):
    """Log heat kernel of ``S^n`` (``n >= 2``) and its derivative in ``cos(theta)``.

    Parameters
    ----------
    theta : array
        Geodesic angles in ``[0, pi]`` (compute them stably, e.g. ``2 atan2(|x - y|, |x + y|)``).
    s : float or array
        Heat times (``> 0``), broadcastable against ``theta``.
    n : int
        Intrinsic dimension (``n >= 2``; the circle is :func:`circle_log_heat_kernel`).
    method : {"auto", "series", "short_time"}
        ``"series"`` forces the eigen-series (with the rounding-floor fallback), ``"short_time"`` the
        asymptotic form; ``"auto"`` switches at :func:`switch_time`.
    tol : float
        Accuracy relative to the peak ``p_s(0)``.

    Returns
    -------
    log_p : array
        ``log p_s(theta)``, float64.
    g : array
        ``d log p_s / d cos(theta)``.
    """
    if int(n) != n or n < 2:
        raise ValueError(f"n: expected an integer >= 2 (use the circle kernel for n = 1), got {n}")
    xp = get_namespace(theta)
    tol = check_tolerance(tol)
    theta = xp.asarray(theta, dtype=np.float64)
    if not bool(xp.all(xp.isfinite(theta))):
        raise ValueError("theta: expected finite geodesic angles in [0, pi]")
    theta = xp.clip(theta, 0.0, math.pi)
    s = check_heat_time(s, xp)
    theta, s = xp.broadcast_arrays(theta, s)
    if method == "series":
        return _series_with_floor(theta, s, n, tol, xp)
    if method == "short_time":
        return _short_time(theta, s, n, xp)
    if method != "auto":
        raise ValueError(f"method: expected 'auto', 'series' or 'short_time', got {method!r}")
    short = s < switch_time(n, tol)
    if bool(xp.all(short)):
        return _short_time(theta, s, n, xp)
    if not bool(xp.any(short)):
        return _series_with_floor(theta, s, n, tol, xp)
    log_p, g = xp.empty_like(theta), xp.empty_like(theta)
    log_p[short], g[short] = _short_time(theta[short], s[short], n, xp)
    log_p[~short], g[~short] = _series_with_floor(theta[~short], s[~short], n, tol, xp)
    return log_p, g
