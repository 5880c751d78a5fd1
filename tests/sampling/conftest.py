"""Exact references for the sampler tests, written independently of the library.

``IsotropicVEMixture``: data ``sum_k w_k N(mu_k, s_k^2 I)``; under the VE noise ``x = x_0 + sigma eps``
the marginal is ``sum_k w_k N(mu_k, (s_k^2 + sigma^2) I)`` and the posterior mean is
``sum_k p(k | x) [mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)]`` (Gaussian conjugacy).
"""
import numpy as np
import pytest
from scipy.special import logsumexp


class IsotropicVEMixture:
    def __init__(self, weights, means, stds):
        self.weights = np.asarray(weights, float) / np.sum(weights)
        self.means = np.asarray(means, float)
        self.stds = np.asarray(stds, float)
        self.dim = self.means.shape[1]

    def _log_joint(self, x, sigma):
        var = self.stds**2 + sigma**2  # (k,)
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)  # (n, k)
        return np.log(self.weights) - 0.5 * sq / var - 0.5 * self.dim * np.log(2 * np.pi * var)

    def log_density(self, x, sigma):
        return logsumexp(self._log_joint(np.asarray(x, float), sigma), axis=1)

    def denoise(self, x, sigma):
        x64 = np.asarray(x, float)
        log_joint = self._log_joint(x64, sigma)
        post = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        gain = self.stds**2 / (self.stds**2 + sigma**2)
        comp = self.means[None] + gain[None, :, None] * (x64[:, None, :] - self.means[None])
        return np.einsum("nk,nkd->nd", post, comp).astype(np.asarray(x).dtype)

    __call__ = denoise

    def sample(self, n, rng):
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[k] + self.stds[k, None] * rng.standard_normal((n, self.dim))


@pytest.fixture(autouse=True, scope="session")
def single_threaded_blas():
    """The sampler tests work on tiny matrices (2 x 2 to 8 x 8 expm, 2-D mixtures); a multi-threaded BLAS
    on a loaded machine makes each such call ~200x slower (scipy expm of a 2 x 2: 25 ms vs 0.1 ms)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # speed only: results do not depend on it
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def mixture():
    return IsotropicVEMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]], [0.5, 0.4, 0.6])
