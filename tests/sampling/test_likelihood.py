"""PF-ODE log-likelihood against exact log-densities: Gaussian mixtures under VP and CLD (exact divergence from
the mixture's closed-form Hessian, Hutchinson in high dimension), the empirical law smoothed on the torus and
the sphere (RDKS), and a trained network (exact against Hutchinson, bits/dim)."""
import numpy as np
import pytest

from opdiff.datasets import GaussianMixture
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.neural import NeuralScoreModel
from opdiff.processes import ManifoldBrownianMotion, StationaryLinearSDE, VPSDE
from opdiff.sampling import log_likelihood


class MixtureScore:
    """Exact score of a Gaussian mixture pushed through a Gaussian process, and its Hessian-vector products."""

    def __init__(self, mixture, process, with_divergence=False):
        self.mixture, self.process = mixture, process
        if with_divergence:
            self.divergence = self._divergence

    def _parts(self, x, t):
        t = float(np.atleast_1d(t)[0])
        moments = [self.process.marginal_moments(m, c, t) for m, c in zip(self.mixture.means, self.mixture.covs)]
        means, covs = np.array([m for m, _, _ in moments]), np.array([c for _, c, _ in moments])
        precisions = np.linalg.inv(covs)
        residual = x[:, None, :] - means[None]
        grads = -np.einsum("kij,nkj->nki", precisions, residual)  # per-component scores
        log_components = (0.5 * np.einsum("nki,nki->nk", residual, grads) - 0.5 * np.linalg.slogdet(covs)[1]
                          + np.log(self.mixture.weights))
        w = np.exp(log_components - log_components.max(1, keepdims=True))
        return w / w.sum(1, keepdims=True), grads, precisions

    def score(self, x, t):
        w, grads, _ = self._parts(x, t)
        return np.einsum("nk,nki->ni", w, grads)

    def score_vjp(self, x, t, v):
        # Hessian of log sum_k w_k N_k: sum_k r_k (g_k g_k^T - P_k) - s s^T (symmetric, so H^T v = H v)
        w, grads, precisions = self._parts(x, t)
        s = np.einsum("nk,nki->ni", w, grads)
        gv = np.einsum("nki,ni->nk", grads, v)
        return (np.einsum("nk,nki->ni", w * gv, grads) - np.einsum("nk,kij,nj->ni", w, precisions, v)
                - s * np.sum(s * v, 1, keepdims=True))

    def _divergence(self, x, t):
        w, grads, precisions = self._parts(x, t)
        s = np.einsum("nk,nki->ni", w, grads)
        trace = np.einsum("nk,nki,nki->n", w, grads, grads) - w @ np.trace(precisions, axis1=1, axis2=2)
        return trace - np.sum(s * s, 1)


def test_exact_divergence_matches_the_mixture_log_density_in_low_dimension():
    process = VPSDE()
    rng = np.random.default_rng(0)
    mixture = GaussianMixture([0.4, 0.6], rng.normal(size=(2, 2)), [0.3, 0.5])
    t_min = 1e-2
    x = process.sample(mixture.sample(200, 1), t_min, rng=2)
    exact = mixture.log_density(x, t_min, process)
    by_vjp = log_likelihood(MixtureScore(mixture, process), x, process=process, t_min=t_min, n_steps=64)
    by_divergence = log_likelihood(MixtureScore(mixture, process, True), x, process=process, t_min=t_min, n_steps=64)
    assert by_vjp.divergence == "exact" and by_vjp.nfe == 128
    np.testing.assert_allclose(by_divergence.log_likelihood, by_vjp.log_likelihood, rtol=1e-10, atol=1e-10)
    error = by_vjp.log_likelihood - exact
    print(f"mean error {error.mean():.2e}, worst {np.abs(error).max():.2e}")
    # Heun on 64 geometric steps: measured mean 3e-4, worst 8e-3 (the prior mismatch N(0, I) vs p_1 is ~1e-4);
    # bounds 10x above
    assert abs(error.mean()) < 3e-3 and np.abs(error).max() < 0.08
    np.testing.assert_allclose(by_vjp.prior_log_density, process.prior().log_density(by_vjp.end))


def test_hutchinson_matches_the_mixture_log_density_within_its_standard_error_in_high_dimension():
    process = VPSDE()
    rng = np.random.default_rng(3)
    d = 24
    mixture = GaussianMixture([0.5, 0.5], rng.normal(size=(2, d)), [0.3, 0.6])
    t_min = 1e-2
    x = process.sample(mixture.sample(150, 4), t_min, rng=5)
    result = log_likelihood(MixtureScore(mixture, process), x, process=process, t_min=t_min, n_steps=48,
                            n_probes=6, rng=6)
    assert result.divergence == "hutchinson"  # "auto" above 16 dimensions
    error = result.log_likelihood - mixture.log_density(x, t_min, process)
    standard_error = np.sqrt(np.sum(result.standard_error**2)) / len(x)  # of the mean over points
    print(f"mean error {error.mean():.3f}, standard error of the mean {standard_error:.3f}")
    # the discretisation bias (exact-divergence run of the same grid: ~3e-3 in d = 24) is far below the
    # Hutchinson standard error (~0.02); 4 standard errors plus that bias
    assert abs(error.mean()) < 4 * standard_error + 0.01
    assert np.all(result.standard_error > 0)


def test_auxiliary_variable_process_uses_the_full_diffusion_covariance():
    process = StationaryLinearSDE.cld()  # A = G G^T acts on the velocity block only
    rng = np.random.default_rng(7)
    mixture = GaussianMixture([0.4, 0.6], rng.normal(size=(2, 1)), [0.3, 0.5])
    t_min = 0.1
    x = process.sample(mixture.sample(100, 8), t_min, rng=9)
    result = log_likelihood(MixtureScore(mixture, process), x, process=process, t_min=t_min, n_steps=128)
    error = result.log_likelihood - mixture.log_density(x, t_min, process)
    # measured mean 3e-3 with 128 steps (0.14 with 32: second order); bound 5x above
    assert abs(error.mean()) < 0.015 and np.abs(error).max() < 0.1


class FiniteDifferenceDivergence:
    """A score with its Riemannian divergence by central differences (the independent route on manifolds)."""

    def __init__(self, smoother, manifold):
        self.smoother, self.manifold = smoother, manifold

    def score(self, x, t):
        return self.smoother.score(x, float(np.atleast_1d(t)[0]))

    def divergence(self, x, t):
        h, total = 1e-5, 0.0
        dim = x.shape[1]
        for j in range(dim):
            u = self.manifold.to_tangent(x, np.broadcast_to(np.eye(dim)[j], x.shape))
            up = self.score(self.manifold.exp(x, h * u), t)
            down = self.score(self.manifold.exp(x, -h * u), t)
            # sum_j (P e_j) . d s / d(P e_j) = tr(P J P) on the sphere (geodesic steps, error ~ h^2), flat on T^d
            total = total + np.sum(u * (up - down), 1) / (2 * h)
        return total


@pytest.mark.parametrize("manifold", [FlatTorus(2), Hypersphere(2)], ids=["torus", "sphere"])
def test_manifold_flow_matches_the_smoothed_empirical_log_density(manifold):
    process = ManifoldBrownianMotion(manifold)
    data = manifold.random_uniform(12, rng=10)
    smoother = DiffusionKernelSmoother(process, backend="numpy").fit(data)  # no JIT compilation here
    t_min = 0.1
    x = process.sample(data[np.arange(40) % 12], t_min, rng=11)
    result = log_likelihood(FiniteDifferenceDivergence(smoother, manifold), x, process=process, t_min=t_min,
                            n_steps=32)
    assert np.allclose(manifold.distance_to_manifold(result.end), 0.0, atol=1e-12)
    error = result.log_likelihood - smoother.log_density(x, t_min)
    print(manifold, f"mean error {error.mean():.2e}, worst {np.abs(error).max():.2e}")
    # 32 Heun steps, geometric in t: measured mean 3.5e-3 / 6e-4, worst 1.6e-2 / 1.8e-2 on the torus / sphere
    # (a quarter of that with 64 steps: second order); the terminal law is uniform to 1e-3 by the process's
    # default horizon: bounds of 0.01 in mean and 0.05 pointwise
    assert abs(error.mean()) < 0.01 and np.abs(error).max() < 0.05


def test_trained_network_exact_and_hutchinson_agree_and_bits_per_dim():
    process = VPSDE()
    mixture = GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.0]], 0.1)
    model = NeuralScoreModel(process, hidden=(32, 32), n_steps=200, batch_size=128, rng=0).fit(mixture.sample(2000, 0))
    x = mixture.sample(100, 12)
    exact = log_likelihood(model, x, n_steps=32)
    probed = log_likelihood(model, x, n_steps=32, divergence="hutchinson", n_probes=8, rng=13)
    gap = probed.log_likelihood - exact.log_likelihood
    # the same flow: the gap is the Hutchinson error alone, mean zero with the reported standard errors
    assert np.mean(np.abs(gap) < 4 * probed.standard_error + 1e-9) > 0.95
    untrained = NeuralScoreModel(process, hidden=(32, 32), n_steps=1, lr=1e-12, rng=0).fit(mixture.sample(100, 0))
    reference = mixture.log_density(x, 1e-3, process).mean()
    trained_ll = exact.log_likelihood.mean()
    untrained_ll = log_likelihood(untrained, x, n_steps=32).log_likelihood.mean()
    print(f"held-out log-likelihood: exact {reference:.3f}, trained {trained_ll:.3f}, untrained {untrained_ll:.3f}")
    # the untrained score is ~0 (the flow of the prior): measured -12.0 nats; the trained one -2.5 against the
    # exact -1.2 (a narrow mixture after 200 steps); required: 5 nats above the untrained
    assert trained_ll > untrained_ll + 5.0
    bpd = model.bits_per_dim(x, data_range=(-2.0, 2.0), n_steps=32)
    np.testing.assert_allclose(bpd, -(exact.log_likelihood + 2 * np.log(4.0)) / (2 * np.log(2)) + 8, rtol=1e-12)


def test_bad_input():
    process = VPSDE()
    mixture = GaussianMixture([1.0], [[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="^divergence"):
        log_likelihood(MixtureScore(mixture, process), np.zeros((2, 2)), process=process, divergence="nope")
    with pytest.raises(ValueError, match="^t_min"):
        log_likelihood(MixtureScore(mixture, process), np.zeros((2, 2)), process=process, t_min=2.0)
    with pytest.raises(ValueError, match="^times"):
        log_likelihood(MixtureScore(mixture, process), np.zeros((2, 2)), process=process, times=[0.5, 0.1])
    with pytest.raises(TypeError, match="^process"):
        log_likelihood(lambda x, t: -x, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="^model"):
        log_likelihood(lambda x, t: -x, np.zeros((2, 2)), process=process)
    with pytest.raises(ValueError, match="^x"):
        log_likelihood(MixtureScore(mixture, process), np.full((2, 2), np.nan), process=process)
