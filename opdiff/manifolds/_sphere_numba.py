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
def _short_time(theta, sin_theta, cos_theta, s, n, rho, beta, a2):
    t2 = theta * theta
    if theta < _SMALL_ANGLE:
        B = 1.0 / 3.0 + t2 * (1.0 / 45.0 + t2 * (2.0 / 945.0 + t2 * (1.0 / 4725.0 + t2 * 2.0 / 93555.0)))
        dB = 2.0 / 45.0 + t2 * (8.0 / 945.0 + t2 * (6.0 / 4725.0 + t2 * 16.0 / 93555.0))
    else:
        sn = max(sin_theta, _SIN_FLOOR)
        cot = cos_theta / sn
        B = 1.0 / t2 - cot / theta
        dB = (-2.0 / (t2 * theta) + cot / t2 + 1.0 / (theta * sn * sn)) / theta
    if theta < 1e-4:
        ts = 1.0 + t2 / 6.0
    else:
        ts = theta / max(sin_theta, _SIN_FLOOR)
    correction = 1.0 + s * (rho * rho + beta * B) + s * s * a2
    log_p = -0.5 * n * math.log(4.0 * math.pi * s) - t2 / (4.0 * s) + rho * math.log(ts)
    g = ts / (2.0 * s) - rho * B * ts
    if correction > 0.5:
        log_p += math.log(correction)
        g -= s * beta * dB * ts / correction
    return log_p, g


@njit(cache=True, inline="always")
def _series(theta, sin_theta, c, s, n, coefficients, norm, floor_rel, rho, beta, a2):
    """Gegenbauer series; ``coefficients[l - 1]`` = (amplitude, C-recurrence a, b, D-recurrence a, b, slope)."""
    total = norm
    absolute = norm
    slope = 0.0
    lam2c = coefficients[0, 5] * c  # 2 lambda c = C_1
    c_prev, c_cur = 1.0, lam2c
    d_prev, d_cur = 0.0, 1.0
    decay = 1.0
    ratio = math.exp(-n * s)
    step = math.exp(-2.0 * s)
    for k in range(coefficients.shape[0]):
        decay *= ratio
        ratio *= step
        a = decay * coefficients[k, 0]
        term = a * c_cur
        total += term
        absolute += abs(term)
        slope += a * coefficients[k, 5] * d_cur
        c_prev, c_cur = c_cur, coefficients[k, 1] * c * c_cur - coefficients[k, 2] * c_prev
        d_prev, d_cur = d_cur, coefficients[k, 3] * c * d_cur - coefficients[k, 4] * d_prev
    floor = floor_rel * absolute
    if total > floor:
        return math.log(total), slope / total
    log_p, g = _short_time(theta, sin_theta, c, s, n, rho, beta, a2)
    if log_p > math.log(floor):
        return math.log(floor), 0.0
    return log_p, g


def series_coefficients(n, n_terms, norm):
    """Per-term constants of the series (divisions hoisted out of the pair loop); ``(n_terms, 6)``.

    Columns: amplitude ``(2l + n - 1)/(n - 1) / |S^n|``; the Gegenbauer recurrences
    ``C_{l+1} = A c C_l - B C_{l-1}`` (``A = 2(l + lam)/(l + 1)``, ``B = (l + 2 lam - 1)/(l + 1)``) and
    ``C^{lam+1}_l = A' c C^{lam+1}_{l-1} - B' C^{lam+1}_{l-2}`` (``A' = 2(l + lam)/l``, ``B' = (l + 2 lam)/l``);
    ``2 lam`` (``d C_l^lam / dc = 2 lam C_{l-1}^{lam+1}``).
    """
    lam = 0.5 * (n - 1)
    l = np.arange(1, max(int(n_terms), 1) + 1, dtype=np.float64)
    table = np.stack([(2 * l + n - 1) / (n - 1) * norm, 2 * (l + lam) / (l + 1), (l + 2 * lam - 1) / (l + 1),
                      2 * (l + lam) / l, (l + 2 * lam) / l, np.full_like(l, 2 * lam)], axis=1)
    return np.ascontiguousarray(table[: int(n_terms)] if n_terms else table[:0])


@njit(parallel=True, cache=True)
def _pairwise(x, y, s, n, coefficients, switch, norm, floor_rel, want_gradient, log_out, grad_out):
    b, m = log_out.shape
    dim = x.shape[1]
    rho = 0.5 * (n - 1)
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
            half_chord, half_sum = 0.5 * math.sqrt(minus), 0.5 * math.sqrt(plus)
            theta = 2.0 * math.atan2(half_chord, half_sum)
            # sin(theta) = 2 sin(theta/2) cos(theta/2), both from the chords (unit vectors), no trigonometry
            sin_theta = 2.0 * half_chord * half_sum
            cos_theta = half_sum * half_sum - half_chord * half_chord
            sij = s[i, j]
            if sij < switch:
                log_p, g = _short_time(theta, sin_theta, cos_theta, sij, n, rho, beta, a2)
            else:
                log_p, g = _series(theta, sin_theta, cos_theta, sij, n, coefficients, norm, floor_rel, rho, beta, a2)
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
    coefficients = series_coefficients(n, n_terms, norm)
    _pairwise(x, y, s, int(n), coefficients, float(switch), float(norm), float(floor_rel), bool(gradient),
              log_out, grad_out)
    return log_out, (grad_out if gradient else None)
