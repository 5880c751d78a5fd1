"""Heat kernel of the circle (the 1-torus), in the log domain, with its derivative.

Heat time convention: ``s`` is the time of ``d/ds p = d^2/dx^2 p`` (kernel ``exp(s Laplacian)``,
``N(0, 2 s)`` on the line). Processes map their own time to ``s`` (``ManifoldBrownianMotion``:
``s = sigma^2 t / 2``). With ``delta`` the signed angle between the points,

    image (wrapped Gaussian):  p_s(delta) = sum_k (4 pi s)^{-1/2} exp(-(delta + 2 pi k)^2 / (4 s))
    theta (Fourier) series:    p_s(delta) = (1 / 2 pi) [1 + 2 sum_{k>=1} exp(-k^2 s) cos(k delta)]

Both are truncated so that the dropped terms are below ``tol`` times the kept sum (every image
term is positive, so the image sum is accurate in *relative* terms for every ``delta``; the theta
series is used only for ``s >= THETA_MIN_TIME`` where ``p_s`` is bounded below by
``(1 - 2 e^{-s}) / 2 pi > 0`` and its terms cannot cancel catastrophically).
"""
import math

import numpy as np

from ..backend import get_namespace

#: Heat time from which ``method="auto"`` uses the theta series (both need about 7 terms there).
THETA_MIN_TIME = 1.5
DEFAULT_TOL = 1e-14
_TWO_PI = 2.0 * math.pi


def check_heat_time(s, xp, name="s"):
    """Raise ``ValueError`` naming ``name`` unless every heat time is finite and positive; returns float64 ``s``.

    Parameters
    ----------
    s : float or array
    xp : array namespace
    name : str

    Returns
    -------
    float64 array
    """
    s = xp.asarray(s, dtype=np.float64)
    if not bool(xp.all(xp.isfinite(s) & (s > 0))):
        bad = s[~(xp.isfinite(s) & (s > 0))].ravel()[0] if s.ndim else s
        raise ValueError(f"{name}: expected finite positive heat times, got {float(bad)}")
    return s


def check_tolerance(tol, name="tol"):
    """Validate a relative series tolerance in ``(0, 1)`` and return it as float.

    Parameters
    ----------
    tol : float
    name : str

    Returns
    -------
    float
    """
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a float in (0, 1), got {type(tol).__name__}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}: expected a relative tolerance in (0, 1), got {tol!r}")
    return value


def wrap_angle(angle, xp=None):
    """Wrap angles to ``[-pi, pi)`` (elementwise).

    Parameters
    ----------
    angle : array
        Any shape.
    xp : array namespace, optional
        Default: that of ``angle``.

    Returns
    -------
    array
        The same shape.
    """
    xp = xp or get_namespace(angle)
    return xp.remainder(angle + math.pi, _TWO_PI) - math.pi


def _image_terms(s_max, tol):
    """Number ``K`` of images on each side: ``exp(-(2 pi K - pi)^2 / 4 s) < tol``."""
    return int(math.ceil((math.pi + math.sqrt(4.0 * s_max * math.log(1.0 / tol))) / _TWO_PI))


def _theta_terms(s_min, tol):
    """Number ``K`` of Fourier modes: ``exp(-K^2 s) < tol``."""
    return max(1, int(math.ceil(math.sqrt(math.log(1.0 / tol) / s_min))))


def _image(delta, s, tol, xp):
    K = _image_terms(float(xp.max(s)), tol)
    shifts = xp.asarray(_TWO_PI * np.arange(-K, K + 1), dtype=delta.dtype)
    shifted = delta[..., None] + shifts  # (..., 2K+1): K is at most a handful of images
    log_terms = -(shifted * shifted) / (4.0 * s[..., None])
    top = xp.max(log_terms, axis=-1)
    weights = xp.exp(log_terms - top[..., None])
    total = xp.sum(weights, axis=-1)
    log_p = top + xp.log(total) - 0.5 * xp.log(4.0 * math.pi * s)
    dlog = -xp.sum(weights * shifted, axis=-1) / (total * 2.0 * s)
    return log_p, dlog


def _theta(delta, s, tol, xp):
    K = _theta_terms(float(xp.min(s)), tol)
    total = xp.ones_like(delta)
    slope = xp.zeros_like(delta)
    for k in range(1, K + 1):
        decay = 2.0 * xp.exp(-(k * k) * s)
        total += decay * xp.cos(k * delta)
        slope -= (k * decay) * xp.sin(k * delta)
    if not bool(xp.all(total > 0)):
        raise ValueError(f"method: the theta series cancels below zero at heat time {float(xp.min(s)):.3g}; "
                         f"use method='auto' (theta only for s >= {THETA_MIN_TIME})")
    return xp.log(total) - math.log(_TWO_PI), slope / total


def circle_log_heat_kernel(delta, s, method="auto", tol=DEFAULT_TOL):
    """Log heat kernel of the unit circle and its derivative in the angle.

    Parameters
    ----------
    delta : array
        Signed angles ``y - x`` (any real value; wrapped to ``[-pi, pi)``).
    s : float or array
        Heat times (``> 0``), broadcastable against ``delta``.
    method : {"auto", "image", "theta"}
        ``"auto"``: image sum for ``s < THETA_MIN_TIME``, theta series above.
    tol : float
        Relative truncation tolerance of the series.

    Returns
    -------
    log_p : array
        ``log p_s(delta)`` (density with respect to arc length; integrates to one over the circle).
    dlog_p : array
        ``d log p_s / d delta``.
    """
    xp = get_namespace(delta)
    tol = check_tolerance(tol)
    delta = wrap_angle(xp.asarray(delta), xp)
    s = check_heat_time(s, xp).astype(delta.dtype, copy=False)
    delta, s = xp.broadcast_arrays(delta, s)
    if method == "image":
        return _image(delta, s, tol, xp)
    if method == "theta":
        return _theta(delta, s, tol, xp)
    if method != "auto":
        raise ValueError(f"method: expected 'auto', 'image' or 'theta', got {method!r}")
    use_theta = s >= THETA_MIN_TIME
    if not bool(xp.any(use_theta)):
        return _image(delta, s, tol, xp)
    if bool(xp.all(use_theta)):
        return _theta(delta, s, tol, xp)
    log_p, dlog = xp.empty_like(delta), xp.empty_like(delta)
    for mask, function in ((use_theta, _theta), (~use_theta, _image)):
        log_p[mask], dlog[mask] = function(delta[mask], s[mask], tol, xp)
    return log_p, dlog
