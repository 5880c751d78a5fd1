"""Gaussian mixtures: the reference data law with exact forward marginals.

A Gaussian mixture pushed through a Gaussian transition ``N(Phi lift(x0), Sigma)`` is again a
Gaussian mixture, component ``k`` becoming ``N(P mu_k, P C_k P^T + Sigma)`` with ``P = Phi lift``.
Its log-density, score and posterior mean ``E[x_0 | x_t]`` are therefore exact for every Gaussian
process, which makes it the ground truth of the tests (dense ``D x D`` algebra: for small ``D``).
"""
import numpy as np
from scipy.special import logsumexp

from ..backend import as_generator, check_count, check_points, check_positive


class GaussianMixture:
    """A mixture of ``k`` Gaussians on ``R^d``.

    Parameters
    ----------
    weights : (k,) array
        Non-negative mixture weights (normalised here).
    means : (k, d) array
    covs : (k, d, d) array, (k,) array or float
        Full covariances, or isotropic variances per component, or one shared variance.
    """

    def __init__(self, weights, means, covs):
        means = check_points(np.atleast_2d(np.asarray(means, dtype=np.float64)), "means")
        k, d = means.shape
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (k,) or np.any(weights < 0) or not np.isfinite(weights).all() or weights.sum() <= 0:
            raise ValueError(f"weights: expected {k} non-negative finite weights with a positive sum, got {weights}")
        covs = np.asarray(covs, dtype=np.float64)
        if covs.ndim == 0:
            covs = np.full(k, float(covs))
        if covs.ndim == 1:
            if covs.shape != (k,):
                raise ValueError(f"covs: expected shape ({k},) of variances, got {covs.shape}")
            covs = covs[:, None, None] * np.eye(d)
        if covs.shape != (k, d, d):
            raise ValueError(f"covs: expected shape ({k}, {d}, {d}), got {covs.shape}")
        if not np.all(np.isfinite(covs)):
            raise ValueError("covs: expected finite covariances")
        for j, cov in enumerate(covs):
            if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
                raise ValueError(f"covs: component {j} is not symmetric positive definite")
        self.weights = weights / weights.sum()
        self.means, self.covs = means, covs
        self.n_components, self.dim = k, d

    def sample(self, n, rng=None):
        """Draw ``n`` points; returns ``(n, d)``."""
        rng = as_generator(rng)
        n = check_count(n, "n")
        component = rng.choice(self.n_components, size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covs)
        noise = rng.standard_normal((n, self.dim))
        return self.means[component] + np.einsum("nij,nj->ni", chol[component], noise)

    # -- forward marginal under a Gaussian process -------------------------------------------
    def _components(self, process, t):
        """Means ``(k, D)``, covariances ``(k, D, D)`` and the map ``P (D, d)`` at time ``t``."""
        if process is None:
            return self.means, self.covs, np.eye(self.dim)
        D = process.state_dim(self.dim)
        Phi, Sigma = process.transition(float(t))
        lift = np.zeros((D, self.dim))
        lift[: self.dim] = np.eye(self.dim)
        P = Phi.dense(D) @ lift
        means = self.means @ P.T
        covs = np.einsum("ij,kjl,ml->kim", P, self.covs, P) + Sigma.dense(D)
        return means, covs, P

    def _responsibilities(self, x, means, covs):
        """Per-component log-densities ``(n, k)`` and the precision-weighted residuals ``(n, k, D)``."""
        chol = np.linalg.cholesky(covs)
        residual = x[:, None, :] - means[None]
        white = np.linalg.solve(chol[None], residual[..., None])[..., 0]
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        log_comp = -0.5 * (white**2).sum(-1) - 0.5 * logdet - 0.5 * x.shape[1] * np.log(2 * np.pi)
        precision_residual = np.linalg.solve(covs[None], residual[..., None])[..., 0]
        return log_comp + np.log(self.weights), precision_residual

    def _check(self, x, process, t):
        D = self.dim if process is None else process.state_dim(self.dim)
        x = check_points(x, "x", dim=D, allow_1d=True).astype(np.float64)
        if process is not None:
            t = process.check_time(t)
            if t.ndim:
                raise ValueError(f"t: expected a single time, got shape {t.shape}")
        return x, t

    def log_density(self, x, t=None, process=None):
        """``log rho_t(x)`` (``process=None``: the data law itself); ``x (n, D) -> (n,)``."""
        x, t = self._check(x, process, t)
        log_joint, _ = self._responsibilities(x, *self._components(process, t)[:2])
        return logsumexp(log_joint, axis=1)

    def score(self, x, t=None, process=None):
        """Exact score ``grad log rho_t(x)``; ``(n, D)``."""
        x, t = self._check(x, process, t)
        log_joint, precision_residual = self._responsibilities(x, *self._components(process, t)[:2])
        posterior = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        return -np.einsum("nk,nkd->nd", posterior, precision_residual)

    def denoise(self, x, t, process):
        """Exact posterior mean ``E[x_0 | x_t = x]``; ``(n, d)``.

        Per component ``E[x_0 | x_t, k] = mu_k + C_k P^T S_k^{-1} (x - P mu_k)``.
        """
        x, t = self._check(x, process, t)
        means, covs, P = self._components(process, t)
        log_joint, precision_residual = self._responsibilities(x, means, covs)
        posterior = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        gain = np.einsum("kij,dj->kid", self.covs, P)  # C_k P^T, (k, d, D)
        component_means = self.means[None] + np.einsum("kid,nkd->nki", gain, precision_residual)
        return np.einsum("nk,nki->ni", posterior, component_means)


def random_mixture(n_components, dim, rng=None, spread=3.0, scale=(0.2, 0.8)):
    """A random well-conditioned mixture (means ~ N(0, spread^2), random full covariances).

    Parameters
    ----------
    n_components : int
    dim : int
    rng : None, int or Generator
    spread : float
        Standard deviation of the means.
    scale : (float, float)
        Range of the covariances' standard deviations.

    Returns
    -------
    GaussianMixture
    """
    n_components, dim = check_count(n_components, "n_components"), check_count(dim, "dim")
    spread = check_positive(spread, "spread", strict=False)
    rng = as_generator(rng)
    means = spread * rng.standard_normal((n_components, dim))
    covs = []
    for _ in range(n_components):
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        covs.append(q @ np.diag(rng.uniform(*scale, size=dim) ** 2) @ q.T)
    return GaussianMixture(rng.dirichlet(np.full(n_components, 5.0)), means, np.stack(covs))
