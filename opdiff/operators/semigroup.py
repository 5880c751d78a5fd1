"""The Markov semigroup ``P_{s,t} f(x) = E[f(X_t) | X_s = x]`` of a forward process.

For a Gaussian process ``X_t | X_s = x ~ N(Phi(t, s) x, Sigma(t, s))``, so ``P_{s,t} f`` is a Gaussian
expectation: in closed form for the test functions of :mod:`opdiff.operators.generator` (plane
waves and exponentials, Gaussian bumps, quadratics, polynomials), by Monte Carlo (with its standard
error) for any other callable.
"""
from typing import NamedTuple

import numpy as np

from ..backend import as_generator, check_points, check_time, chunk_rows
from .generator import SmoothFunction, gaussian_factor


class Expectation(NamedTuple):
    """Result of :meth:`Semigroup.apply`.

    Attributes
    ----------
    value : (n,) array
        ``P_{s,t} f(x)`` (complex for complex-valued ``f``).
    stderr : (n,) array
        Monte Carlo standard error (zeros when ``exact``).
    exact : bool
        True for the closed form.
    """

    value: object
    stderr: object
    exact: bool


class Semigroup:
    """``P_{s,t} f(x) = E[f(X_t) | X_s = x]`` for a forward process.

    Parameters
    ----------
    process : MarkovProcess
        Gaussian processes (with ``transition``) get closed forms; other processes are sampled with
        ``process.sample`` (``s = 0`` only).
    n_samples : int
        Monte Carlo samples per point when no closed form applies.

    Notes
    -----
    With ``s = 0`` the points ``x`` are data ``(n, d)`` and are lifted to the state
    (``process.lift``; auxiliary blocks integrated out by ``transition(t)``); with ``s > 0`` they are
    states ``(n, D)``.

    Examples
    --------
    >>> from opdiff.processes import OrnsteinUhlenbeck
    >>> from opdiff.operators.generator import PlaneWave
    >>> P = Semigroup(OrnsteinUhlenbeck())
    >>> result = P.apply(PlaneWave([1.0]), np.zeros((1, 1)), t=1.0)
    >>> bool(np.isclose(result.value[0].real, np.exp(-0.5 * (1 - np.exp(-2.0)))))
    True
    """

    def __init__(self, process, n_samples=4096):
        if getattr(process, "is_manifold", False):
            raise ValueError("process: Semigroup acts on Euclidean processes; got a manifold process")
        self.process = process
        if int(n_samples) < 2:
            raise ValueError(f"n_samples: expected at least 2 Monte Carlo samples, got {n_samples}")
        self.n_samples = int(n_samples)

    @property
    def is_gaussian(self):
        return hasattr(self.process, "transition")

    def _check(self, f, x, t, s):
        if not callable(f):
            raise TypeError(f"f: expected a SmoothFunction or a callable, got {type(f).__name__}")
        x = check_points(x, "x", allow_1d=True)
        process = self.process
        t = check_time(t, "t", process.t_min, process.t_max, n=x.shape[0], include_min=True)
        s = check_time(s, "s", process.t_min, process.t_max, n=x.shape[0], include_min=True)
        t, s = (t.reshape(()) if t.shape == (1,) else t), (s.reshape(()) if s.shape == (1,) else s)
        if np.any(s > t):
            raise ValueError(f"s: expected s <= t, got s={s} and t={t}")
        if np.any(s > 0) and not self.is_gaussian:
            raise ValueError(f"s: a non-Gaussian process is only sampled from s = 0, got s={s}")
        return x, t, s

    def moments(self, x, t, s=0.0):
        """Mean ``(n, D)`` and dense covariance ``(D, D)`` or ``(n, D, D)`` of ``X_t | X_s = x``.

        Dense covariances are for the small dimensions of test functions.
        """
        x, t, s = self._check(np.asarray, x, t, s)
        return self._moments(x, t, s)

    def _moments(self, x, t, s):
        if not self.is_gaussian:
            raise ValueError("process: moments need a Gaussian process (with transition)")
        Phi, Sigma = self.process.transition(t, s) if np.any(s > 0) else self.process.transition(t)
        state = self.process.lift(x) if not np.any(s > 0) else x
        mean = Phi.apply(state.astype(np.float64))
        return mean, Sigma.dense(mean.shape[1])

    def apply(self, f, x, t, s=0.0, rng=None, n_samples=None):
        """``P_{s,t} f(x)``.

        Parameters
        ----------
        f : SmoothFunction or callable ``(m, D) -> (m,)``
        x : (n, d) data (``s = 0``) or (n, D) states
        t, s : float or (n,) array, ``t_min <= s <= t <= t_max``
        rng : None, int or numpy.random.Generator
            Used only by the Monte Carlo route.
        n_samples : int, optional
            Monte Carlo samples per point (default ``self.n_samples``).

        Returns
        -------
        Expectation
            ``value (n,)`` and ``stderr (n,)`` in the dtype of ``x`` (complex when ``f`` is).
        """
        x, t, s = self._check(f, x, t, s)
        if isinstance(f, SmoothFunction) and self.is_gaussian:
            mean, cov = self._moments(x, t, s)
            if mean.shape[1] != f.dim:
                raise ValueError(f"x: the state has dimension {mean.shape[1]} but f takes dimension {f.dim}")
            value = f.gaussian_expectation(mean, cov)
            if value is not None:
                value = _as_dtype(np.asarray(value), x.dtype)
                return Expectation(value, np.zeros(value.shape, dtype=value.real.dtype), True)
        return self._monte_carlo(f, x, t, s, as_generator(rng), int(n_samples or self.n_samples))

    __call__ = apply

    def _monte_carlo(self, f, x, t, s, rng, n_samples):
        if n_samples < 2:
            raise ValueError(f"n_samples: expected at least 2 Monte Carlo samples, got {n_samples}")
        n = x.shape[0]
        if self.is_gaussian:
            mean, cov = self._moments(x, t, s)
            factor = gaussian_factor(cov)
        D = mean.shape[1] if self.is_gaussian else x.shape[1]
        t_rows = np.broadcast_to(t, (n,))
        value, stderr = None, np.empty(n)
        for rows in chunk_rows(n, n_samples * D * 8 * 3):
            m = rows.stop - rows.start
            if self.is_gaussian:
                noise = rng.standard_normal((m, n_samples, D))
                rows_factor = factor if factor.ndim == 2 else factor[rows][:, None]
                points = mean[rows][:, None, :] + np.einsum("...ij,...j->...i", rows_factor, noise)
            else:
                starts = np.repeat(x[rows], n_samples, axis=0)
                points = self.process.sample(starts, np.repeat(t_rows[rows], n_samples), rng=rng)
            draws = np.asarray(f(points.reshape(m * n_samples, -1).astype(x.dtype)))
            if draws.shape != (m * n_samples,):
                raise ValueError(f"f: expected a callable returning shape ({m * n_samples},), got {draws.shape}")
            draws = draws.reshape(m, n_samples)
            if value is None:
                value = np.empty(n, dtype=np.result_type(draws.dtype, np.float64))
            value[rows] = draws.mean(axis=1)
            stderr[rows] = np.sqrt(np.sum(np.abs(draws - value[rows, None]) ** 2, axis=1) / (n_samples - 1) / n_samples)
        if not np.all(np.isfinite(value)):
            raise ValueError("f: returned non-finite values on Monte Carlo samples")
        return Expectation(_as_dtype(value, x.dtype), _as_dtype(stderr, x.dtype), False)


def _as_dtype(values, dtype):
    """Cast float64/complex128 results to the precision of the input points."""
    if dtype == np.float32:
        return values.astype(np.complex64 if np.iscomplexobj(values) else np.float32)
    return values
