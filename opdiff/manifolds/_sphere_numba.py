"""Fused Numba kernel for all pairs of the ``S^n`` heat kernel (``n >= 2``) and its gradient.

The same formulas as :mod:`opdiff.manifolds.heat_sphere` (which stays the array-generic reference,
used for CuPy arrays and tested against this one), evaluated pair by pair in one pass: geodesic
angle, short-time form or Gegenbauer series (with the rounding-floor fallback), and the Riemannian
gradient ``g(c) (y - c x)``, with no ``(b, n, D)`` temporaries. The series' exponentials
``exp(-l (l + n - 1) s)`` are built by two-multiplication recurrences (two ``exp`` calls per pair).
"""
import math

import numpy as np
from numba import njit, prange

_SMALL_ANGLE = 0.1
_SIN_FLOOR = 1e-8


@njit(cache=True, inline="always")
def _short_time(theta, s, n, rho, beta, a2):
    t2 = theta * theta
    if theta < _SMALL_ANGLE:
        B = 1.0 / 3.0 + t2 * (1.0 / 45.0 + t2 * (2.0 / 945.0 + t2 * (1.0 / 4725.0 + t2 * 2.0 / 93555.0)))
        dB = 2.0 / 45.0 + t2 * (8.0 / 945.0 + t2 * (6.0 / 4725.0 + t2 * 16.0 / 93555.0))
    else:
        sn = max(math.sin(theta), _SIN_FLOOR)
        cot = math.cos(theta) / sn
        B = 1.0 / t2 - cot / theta
        dB = (-2.0 / (t2 * theta) + cot / t2 + 1.0 / (theta * sn * sn)) / theta
    if theta < 1e-4:
        ts = 1.0 + t2 / 6.0
    else:
        ts = theta / max(math.sin(theta), _SIN_FLOOR)
    correction = 1.0 + s * (rho * rho + beta * B) + s * s * a2
    log_p = -0.5 * n * math.log(4.0 * math.pi * s) - t2 / (4.0 * s) + rho * math.log(ts)
    g = ts / (2.0 * s) - rho * B * ts
    if correction > 0.5:
        log_p += math.log(correction)
        g -= s * beta * dB * ts / correction
    return log_p, g


@njit(cache=True, inline="always")
def _series(theta, s, n, lam, n_terms, norm, floor_rel, rho, beta, a2):
    c = math.cos(theta)
    total = norm
    absolute = norm
    slope = 0.0
    c_prev, c_cur = 1.0, 2.0 * lam * c
    d_prev, d_cur = 0.0, 1.0
    decay = 1.0
    ratio = math.exp(-n * s)
    step = math.exp(-2.0 * s)
    for l in range(1, n_terms + 1):
        decay *= ratio
        ratio *= step
        a = decay * (2.0 * l + n - 1.0) / (n - 1.0) * norm
        term = a * c_cur
        total += term
        absolute += abs(term)
        slope += a * 2.0 * lam * d_cur
        c_prev, c_cur = c_cur, (2.0 * (l + lam) * c * c_cur - (l + 2.0 * lam - 1.0) * c_prev) / (l + 1.0)
        d_prev, d_cur = d_cur, (2.0 * (l + lam) * c * d_cur - (l + 2.0 * lam) * d_prev) / l
    floor = floor_rel * absolute
    if total > floor:
        return math.log(total), slope / total
    log_p, g = _short_time(theta, s, n, rho, beta, a2)
    if log_p > math.log(floor):
        return math.log(floor), 0.0
    return log_p, g


@njit(parallel=True, cache=True)
def _pairwise(x, y, s, n, n_terms, switch, norm, floor_rel, want_gradient, log_out, grad_out):
    b, m = log_out.shape
    dim = x.shape[1]
    lam = 0.5 * (n - 1)
    rho = lam
    beta = rho - rho * rho
    a2 = n * (n - 1) * (5.0 * n * n - 7.0 * n + 6.0) / 360.0
    for i in prange(b):
        for j in range(m):
            minus = 0.0
            plus = 0.0
            c = 0.0
            for k in range(dim):
                u = x[i, k]
                v = y[j, k]
                minus += (u - v) * (u - v)
                plus += (u + v) * (u + v)
                c += u * v
            theta = 2.0 * math.atan2(math.sqrt(minus), math.sqrt(plus))
            sij = s[i, j]
            if sij < switch:
                log_p, g = _short_time(theta, sij, n, rho, beta, a2)
            else:
                log_p, g = _series(theta, sij, n, lam, n_terms, norm, floor_rel, rho, beta, a2)
            log_out[i, j] = log_p
            if want_gradient:
                for k in range(dim):
                    grad_out[i, j, k] = g * (y[j, k] - c * x[i, k])


def pairwise_sphere_kernel(x, y, s, n, n_terms, switch, norm, floor_rel, gradient):
    """All-pairs log-kernel ``(b, m)`` and, if ``gradient``, Riemannian gradients in ``x`` ``(b, m, D)``.

    ``x (b, D)``, ``y (m, D)`` float64 unit vectors; ``s`` broadcastable to ``(b, m)``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    b, m = x.shape[0], y.shape[0]
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), (b, m))
    log_out = np.empty((b, m))
    grad_out = np.empty((b, m, x.shape[1]) if gradient else (1, 1, 1))
    _pairwise(x, y, s, int(n), int(n_terms), float(switch), float(norm), float(floor_rel), bool(gradient),
              log_out, grad_out)
    return log_out, (grad_out if gradient else None)
