"""Bits per dimension of discrete data from a continuous likelihood (bound), as MDM (arXiv 2302.07261) and
Song et al. (arXiv 2101.09258) report it.

Integer levels ``v in {0, ..., n_levels - 1}`` are dequantised uniformly, ``u = (v + U) / n_levels`` in
``[0, 1)``, then (optionally) mapped by the RealNVP logit ``y = logit(alpha + (1 - 2 alpha) u)``; a bound
``log p(y) >= ELBO`` on ``y`` gives ``log P(v) >= ELBO + log|dy/du| - d log(n_levels)``, so

``bpd = -((ELBO + ldj) / d) / ln 2 + log2(n_levels)``.

The uniform model of the levels has ``bpd = log2(n_levels)``. A bound from the score of a kernel smoother of the
training set is a real bound of a model that memorises the training points; on held-out data it measures the
smoother's bandwidth more than the data (it can exceed ``log2(n_levels)``).
"""
import numpy as np

from ..backend import as_generator, check_count, check_points

LN2 = float(np.log(2.0))


def dequantize(values, n_levels, rng=None):
    """Uniform dequantisation ``(v + U) / n_levels`` of integer levels ``v in {0..n_levels-1}``.

    Parameters
    ----------
    values : array of integer levels
    n_levels : int
    rng : None, int or numpy.random.Generator

    Returns
    -------
    float64 array of the shape of ``values``, in ``[0, 1)``.
    """
    n_levels = check_count(n_levels, "n_levels", minimum=2)
    rng = as_generator(rng)
    values = np.asarray(values, dtype=np.float64)
    if np.any(values < 0) or np.any(values > n_levels - 1) or np.any(values != np.round(values)):
        raise ValueError(f"values: expected integer levels in [0, {n_levels - 1}]")
    return (values + rng.uniform(size=values.shape)) / n_levels


class LogitTransform:
    """``y = logit(alpha + (1 - 2 alpha) x)`` for ``x in [0, 1]`` (RealNVP), with its log-Jacobian.

    Parameters
    ----------
    alpha : float
        Boundary shrinkage in ``(0, 1/2)``.
    """

    def __init__(self, alpha=0.05):
        self.alpha = alpha
        if not 0.0 < float(alpha) < 0.5:
            raise ValueError(f"alpha: expected a value in (0, 0.5), got {alpha}")

    def forward(self, x):
        """The transform and its log-Jacobian (float32 kept).

        Parameters
        ----------
        x : (n, d) array
            Values in ``[0, 1]``.

        Returns
        -------
        y : (n, d) array
        log_jacobian : (n,) array
            ``sum_j log |dy_j / dx_j|``.
        """
        x = check_points(x, "x")
        if np.any(x < 0) or np.any(x > 1):
            raise ValueError("x: expected values in [0, 1]")
        alpha = float(self.alpha)
        p = alpha + (1.0 - 2.0 * alpha) * x
        y = np.log(p) - np.log1p(-p)
        log_scale = x.dtype.type(np.log(1.0 - 2.0 * alpha))
        ldj = np.sum(log_scale - np.log(p) - np.log1p(-p), axis=1)
        return y, ldj

    def inverse(self, y):
        """The inverse map.

        Parameters
        ----------
        y : array

        Returns
        -------
        array
            ``x`` in ``[0, 1]``.
        """
        alpha = float(self.alpha)
        return (1.0 / (1.0 + np.exp(-np.asarray(y))) - alpha) / (1.0 - 2.0 * alpha)


def bits_per_dim(elbo, dim, log_jacobian=0.0, n_levels=256):
    """``-((elbo + ldj) / dim) / ln 2 + log2(n_levels)``.

    Parameters
    ----------
    elbo : float or array
        Log-likelihood (bound) in nats of the transformed data, per data point.
    dim : int
        Dimension ``d`` of a data point.
    log_jacobian : float or array
        ``log |dy/du|`` of the transform from the dequantised data (0 without one).
    n_levels : int
        Number of levels of the discrete data.

    Returns
    -------
    float or array
        Bits per dimension (lower is better).
    """
    dim = check_count(dim, "dim")
    n_levels = check_count(n_levels, "n_levels", minimum=2)
    return -((np.asarray(elbo) + log_jacobian) / dim) / LN2 + np.log2(n_levels)
