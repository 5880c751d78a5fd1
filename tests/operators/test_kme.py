"""KernelMeanEmbedding: forward marginals of weighted empirical measures against a dense mixture route."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from opdiff.operators import KernelMeanEmbedding
from opdiff.processes import VPSDE, VESDE
from opdiff.processes.linear import StationaryLinearSDE

PROCESSES = {"vp": lambda: VPSDE(), "ve": lambda: VESDE(sigma_min=0.01, sigma_max=5.0),
             "cld": lambda: StationaryLinearSDE.cld()}


def _setup(name, n=30, m=6, d=2, seed=0):
    process = PROCESSES[name]()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    weights = rng.uniform(0.1, 1.0, size=n)
    z = rng.normal(size=(m, process.state_dim(d)))
    return process, X, weights, z


def _dense_mixture(process, X, weights, z, t):
    """log sum_i w_i N(z; Phi lift(x_i), Sigma), posterior weights, by scipy."""
    Phi, Sigma = process.transition(t)
    D = z.shape[1]
    centres = Phi.apply(process.lift(X))
    cov = Sigma.dense(D)
    log_k = np.stack([multivariate_normal(c, cov).logpdf(z) for c in centres], axis=1).reshape(len(z), len(X))
    log_joint = log_k + np.log(weights / weights.sum())
    log_density = logsumexp(log_joint, axis=1)
    posterior = np.exp(log_joint - log_density[:, None])
    return log_density, posterior @ X


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_log_density_and_denoise_against_dense_mixture(name):
    process, X, weights, z = _setup(name)
    kme = KernelMeanEmbedding(process).fit(X, sample_weight=weights)
    t = 0.3
    log_density, posterior_mean = _dense_mixture(process, X, weights, z, t)
    np.testing.assert_allclose(kme.log_density(z, t), log_density, rtol=1e-10)
    np.testing.assert_allclose(kme.denoise(z, t), posterior_mean, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_score_is_gradient_of_log_density(name):
    process, X, weights, z = _setup(name)
    kme = KernelMeanEmbedding(process).fit(X, sample_weight=weights)
    t, h = 0.3, 1e-5
    score = kme.score(z, t)
    fd = np.stack([(kme.log_density(z + h * e, t) - kme.log_density(z - h * e, t)) / (2 * h)
                   for e in np.eye(z.shape[1])], axis=1)
    # central differences: O(h^2) ~ 1e-10 times third derivatives, rounding eps/h ~ 1e-11
    np.testing.assert_allclose(score, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(score)))


def test_weights_are_multiplicities():
    process, X, _, z = _setup("vp", n=5)
    weighted = KernelMeanEmbedding(process).fit(X, sample_weight=[1, 2, 0, 1, 3])
    repeated = KernelMeanEmbedding(process).fit(X[[0, 1, 1, 3, 4, 4, 4]])
    for method in ("log_density", "denoise", "score"):
        np.testing.assert_allclose(getattr(weighted, method)(z, 0.5), getattr(repeated, method)(z, 0.5), rtol=1e-12)


@pytest.mark.parametrize("name", ["vp", "cld"])
def test_times_as_arrays_and_float32(name):
    process, X, _, z = _setup(name)
    kme = KernelMeanEmbedding(process).fit(X)
    times = np.array([0.1, 0.4, 0.4, 0.9, 0.1, 0.7])
    # per-row times: one reduction with per-row precisions, against one shared-time reduction per row
    # (a different route: whitened scaled points through gaussian_reduction); round-off of O(10) values
    for method in ("log_density", "denoise", "score"):
        rowwise = np.concatenate([getattr(kme, method)(z[i:i + 1], times[i]) for i in range(len(z))])
        np.testing.assert_allclose(getattr(kme, method)(z, times), rowwise, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(kme.log_density(z, np.full(len(z), 0.4)), kme.log_density(z, 0.4), rtol=1e-14)
    kme32 = KernelMeanEmbedding(process).fit(X.astype(np.float32))
    for method in ("log_density", "denoise", "score"):
        out = getattr(kme32, method)(z.astype(np.float32), 0.4)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, getattr(kme, method)(z, 0.4), rtol=1e-4, atol=1e-4)


def test_sample_follows_the_marginal():
    process, X, weights, _ = _setup("vp", n=4)
    kme = KernelMeanEmbedding(process).fit(X, sample_weight=weights)
    t, n = 0.3, 40000
    sample = kme.sample(n, t, rng=0)
    Phi, Sigma = process.transition(t)
    w = weights / weights.sum()
    centres = Phi.apply(X)
    mean = w @ centres
    var = float(Sigma.c) + w @ (centres - mean) ** 2
    # 5 standard errors of the sample mean
    assert np.all(np.abs(sample.mean(axis=0) - mean) < 5 * np.sqrt(var / n))
    # and of the sample variance (its standard error from the sample's own fourth central moment)
    squared = (sample - mean) ** 2
    assert np.all(np.abs(squared.mean(axis=0) - var) < 5 * np.sqrt(squared.var(axis=0) / n))
    np.testing.assert_array_equal(kme.sample(5, t, rng=1), kme.sample(5, t, rng=1))


def test_bad_input():
    process, X, _, z = _setup("vp")
    kme = KernelMeanEmbedding(process)
    with pytest.raises(ValueError, match="KernelMeanEmbedding is not fitted yet"):
        kme.score(z, 0.5)
    with pytest.raises(ValueError, match="X: expected finite values"):
        kme.fit(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(30,\)"):
        kme.fit(X, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight: expected finite non-negative"):
        kme.fit(X, sample_weight=-np.ones(30))
    assert not hasattr(kme, "data_")  # no half-fitted object after an error
    kme.fit(X)
    with pytest.raises(ValueError, match="x: expected trailing shape"):
        kme.score(np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError, match="x: expected finite values"):
        kme.log_density(np.full((1, 2), np.inf), 0.5)
    with pytest.raises(ValueError, match=r"t: expected times in \(0.0, 1.0\]"):
        kme.denoise(z, 1.5)
    with pytest.raises(ValueError, match=r"t: expected a float or an array of shape \(6,\)"):
        kme.denoise(z, np.full(4, 0.5))
    with pytest.raises(ValueError, match="t: expected a single time"):
        kme.sample(3, np.array([0.5, 0.6]))
