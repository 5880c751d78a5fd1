"""Manifold data: von Mises-Fisher mixtures on ``S^2``, wrapped normal mixtures on ``T^d``, lat/lon CSV files.

Both mixtures have exact log-densities (with respect to the Riemannian volume) and exact
Riemannian scores, for held-out likelihoods and score errors of estimators.
"""
import csv
import math

import numpy as np
from scipy.special import logsumexp

from ..backend import as_generator, check_count, check_points
from ..manifolds import FlatTorus, Hypersphere, circle_log_heat_kernel, wrap_angle


def _mixture_weights(weights, k):
    if weights is None:
        return np.full(k, 1.0 / k)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (k,) or np.any(~np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"weights: expected {k} finite non-negative numbers with a positive sum, got {weights}")
    return weights / weights.sum()


class VonMisesFisherMixture:
    """Mixture of von Mises-Fisher laws on the unit sphere ``S^2``.

    ``f(x) = sum_k w_k C(kappa_k) exp(kappa_k mu_k . x)``, ``C(kappa) = kappa / (4 pi sinh kappa)``
    (a density with respect to the area measure of ``S^2``).

    Parameters
    ----------
    means : (K, 3) array
        Mean directions (normalised here).
    kappas : (K,) array
        Concentrations (``> 0``).
    weights : (K,) array, optional
        Mixture weights (default uniform).
    """

    def __init__(self, means, kappas, weights=None):
        self.manifold = Hypersphere(2)
        means = check_points(means, "means", dim=3)
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("means: mean directions must be non-zero vectors")
        self.means = means / norms
        self.kappas = np.asarray(kappas, dtype=np.float64).reshape(-1)
        if self.kappas.shape != (self.means.shape[0],) or np.any(~(self.kappas > 0)) or np.any(~np.isfinite(self.kappas)):
            raise ValueError(f"kappas: expected {self.means.shape[0]} positive finite numbers, got {kappas}")
        self.weights = _mixture_weights(weights, self.means.shape[0])

    @property
    def log_normalisers(self):
        """``log C(kappa_k) - kappa_k``, stable for large ``kappa`` (``(K,)``)."""
        k = self.kappas
        return np.log(k) - math.log(2 * math.pi) - np.log(-np.expm1(-2 * k)) - k

    def sample(self, n, rng=None):
        """``n`` points ``(n, 3)``: component by weight, then Wood's exact inverse CDF of ``mu . x``."""
        rng = as_generator(rng)
        n = check_count(n, "n")
        component = rng.choice(self.weights.size, size=n, p=self.weights)
        mu, kappa = self.means[component], self.kappas[component]
        u = rng.uniform(size=n)
        # w = mu . x has density proportional to exp(kappa w) on [-1, 1]
        w = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa
        w = np.clip(w, -1.0, 1.0)
        direction = self.manifold.random_tangent_normal(mu, rng)
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        x = w[:, None] * mu + np.sqrt(1.0 - w * w)[:, None] * direction
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def _component_log_densities(self, x):
        return self.log_normalisers[None, :] + self.kappas[None, :] * (x @ self.means.T) + np.log(self.weights)[None, :]

    def log_density(self, x):
        """Exact log-density ``(n,)`` of points ``x (n, 3)`` on the sphere."""
        x = self.manifold.check_points(x, "x")
        return logsumexp(self._component_log_densities(x), axis=1)

    def score(self, x):
        """Exact Riemannian score ``(n, 3)``: ``sum_k pi_k(x) kappa_k (mu_k - (mu_k . x) x)``."""
        x = self.manifold.check_points(x, "x")
        parts = self._component_log_densities(x)
        posterior = np.exp(parts - logsumexp(parts, axis=1, keepdims=True))
        ambient = (posterior * self.kappas[None, :]) @ self.means
        return self.manifold.to_tangent(x, ambient)


class WrappedNormalMixture:
    """Mixture of wrapped normal laws on the flat torus ``T^d`` (angles in ``[-pi, pi)``).

    Component ``k`` is ``wrap(mu_k + sigma_k * eps)`` with independent coordinates; its density is the
    torus heat kernel at heat time ``sigma_k^2 / 2`` (:func:`~opdiff.manifolds.circle_log_heat_kernel`
    per coordinate).

    Parameters
    ----------
    means : (K, d) array
        Component centres (angles; wrapped here).
    stds : (K,) or (K, d) array
        Standard deviations of the unwrapped normals (``> 0``).
    weights : (K,) array, optional
    """

    def __init__(self, means, stds, weights=None):
        means = check_points(means, "means")
        self.manifold = FlatTorus(means.shape[1])
        self.means = wrap_angle(means)
        stds = np.asarray(stds, dtype=np.float64)
        if stds.ndim == 1 and stds.shape[0] == means.shape[0]:
            stds = np.repeat(stds[:, None], means.shape[1], axis=1)
        if stds.shape != means.shape or np.any(~(stds > 0)) or np.any(~np.isfinite(stds)):
            raise ValueError(f"stds: expected positive finite numbers of shape ({means.shape[0]},) or {means.shape}")
        self.stds = np.array(stds)
        self.weights = _mixture_weights(weights, means.shape[0])

    def sample(self, n, rng=None):
        """``n`` points ``(n, d)`` in ``[-pi, pi)^d``."""
        rng = as_generator(rng)
        n = check_count(n, "n")
        component = rng.choice(self.weights.size, size=n, p=self.weights)
        noise = rng.standard_normal((n, self.means.shape[1]))
        return wrap_angle(self.means[component] + self.stds[component] * noise)

    def _parts(self, x):
        delta = x[:, None, :] - self.means[None, :, :]
        log_p, dlog = circle_log_heat_kernel(delta, 0.5 * self.stds[None, :, :] ** 2)
        return log_p.sum(axis=2) + np.log(self.weights)[None, :], dlog

    def log_density(self, x):
        """Exact log-density ``(n,)`` with respect to the flat volume of ``[-pi, pi)^d``."""
        x = self.manifold.check_points(x, "x")
        return logsumexp(self._parts(x)[0], axis=1)

    def score(self, x):
        """Exact score ``(n, d)``."""
        x = self.manifold.check_points(x, "x")
        parts, dlog = self._parts(x)
        posterior = np.exp(parts - logsumexp(parts, axis=1, keepdims=True))
        return np.einsum("nk,nkd->nd", posterior, dlog)


def latlon_to_unit(latitude, longitude):
    """Degrees to unit vectors: ``(cos lat cos lon, cos lat sin lon, sin lat)``.

    Parameters
    ----------
    latitude : (n,) array
        Degrees in ``[-90, 90]``.
    longitude : (n,) array
        Degrees in ``[-180, 360]``.

    Returns
    -------
    (n, 3) array
    """
    lat, lon = _check_degrees(latitude, "latitude", -90.0, 90.0), _check_degrees(longitude, "longitude", -180.0, 360.0)
    if lat.shape != lon.shape:
        raise ValueError(f"longitude: expected shape {lat.shape} to match latitude, got {lon.shape}")
    lat, lon = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def _check_degrees(values, name, low, high):
    """float64 array of angles in degrees inside ``[low, high]``, or a ValueError naming ``name`` and the first bad row."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected numbers (degrees), got {type(values).__name__}") from None
    bad = np.flatnonzero(~((values >= low) & (values <= high)).ravel())
    if bad.size:
        raise ValueError(f"{name}: expected degrees in [{low:g}, {high:g}], got {values.ravel()[bad[0]]} "
                         f"in data row {bad[0]}")
    return values


def unit_to_latlon(x):
    """Unit vectors to latitude and longitude in degrees.

    Parameters
    ----------
    x : (n, 3) array
        Points of the unit sphere (within its tolerance ``1e-6``).

    Returns
    -------
    latitude : (n,) array
        In ``[-90, 90]``.
    longitude : (n,) array
        In ``(-180, 180]``.
    """
    x = np.asarray(Hypersphere(2).check_points(x, "x"), dtype=np.float64)
    lat = np.degrees(np.arcsin(np.clip(x[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(x[:, 1], x[:, 0]))
    return lat, lon


_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "long", "longitude")


def load_latlon(path, latitude=None, longitude=None):
    """Read a CSV of latitudes and longitudes in degrees and return unit vectors ``(n, 3)``.

    Parameters
    ----------
    path : str or path-like
        CSV file. With a header, the columns named ``lat``/``latitude`` and
        ``lon``/``lng``/``long``/``longitude`` (any case) are used, or those given; without a
        header, the first two columns are latitude and longitude.
    latitude, longitude : str, optional
        Column names to use instead of the defaults.

    Returns
    -------
    (n, 3) array
        Unit vectors.

    Raises
    ------
    ValueError
        Missing columns, non-numeric entries, or latitudes outside ``[-90, 90]`` / longitudes
        outside ``[-180, 360]`` (the message names the row).
    """
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise FileNotFoundError(f"path: cannot read {path!r} ({exc.strerror})") from None
    with handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"path: {path} holds no rows")
    try:
        [float(cell) for cell in rows[0][:2]]
        header, body = None, rows
    except ValueError:
        header, body = [cell.strip().lower() for cell in rows[0]], rows[1:]
    if header is None:
        i_lat, i_lon = 0, 1
    else:
        def find(given, names, what):
            wanted = (given.lower(),) if given else names
            for name in wanted:
                if name in header:
                    return header.index(name)
            raise ValueError(f"{what}: no column named {' or '.join(wanted)} in the header {header}")

        i_lat, i_lon = find(latitude, _LAT_NAMES, "latitude"), find(longitude, _LON_NAMES, "longitude")
    if not body:
        raise ValueError(f"path: {path} has a header but no data rows")
    values = np.empty((len(body), 2))
    for r, row in enumerate(body):
        try:
            values[r] = float(row[i_lat]), float(row[i_lon])
        except (ValueError, IndexError):
            raise ValueError(f"path: row {r + (header is not None) + 1} of {path} is not numeric lat/lon: {row}") from None
    return latlon_to_unit(values[:, 0], values[:, 1])
