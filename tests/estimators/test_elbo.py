"""Likelihood bounds: the exact-score identity E[ELBO] = -H(x) - KL(q_T || pi) + O(eps), the prior
mismatch table, time sampling, bits/dim transforms and learning (Q, D) with exact gradients."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from opdiff.estimators.elbo import (GaussianData, dsm_elbo, exact_score_elbo, fixed_score_elbo, gaussian_data_score,
                                    gaussian_entropy, ism_elbo, learn_stationary_sde, learned_prior_kl, mean_elbo,
                                    prior_kl, sample_times)
from opdiff.estimators.learned_sde import dsm_elbo_with_gradients, learned_elbo_gradient
from opdiff.metrics.likelihood import LogitTransform, bits_per_dim, dequantize
from opdiff.linalg import Kron
from opdiff.processes import StationaryLinearSDE

MEAN, VAR = np.array([0.5, -0.3]), 0.4


def _learned():
    rng = np.random.default_rng(5)
    return StationaryLinearSDE.learned(rng.normal(size=(2, 2)), rng.normal(size=(2, 2)))


PROCESSES = {"vp": StationaryLinearSDE.vp, "cld": StationaryLinearSDE.cld, "alda": StationaryLinearSDE.alda,
             "malda": StationaryLinearSDE.malda, "learned": _learned}


def _fd_gradient(function, G, B, h=1e-6):
    """Central-difference gradients of ``function(G, B)`` with respect to ``G`` and ``B``."""
    grads = []
    for which, param in enumerate((G, B)):
        grad = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            E = np.zeros_like(param)
            E[index] = h
            args = [[G + E, B], [G - E, B]] if which == 0 else [[G, B + E], [G, B - E]]
            grad[index] = (function(*args[0]) - function(*args[1])) / (2 * h)
        grads.append(grad)
    return grads


def _data(n, seed=0):
    return MEAN + np.sqrt(VAR) * np.random.default_rng(seed).standard_normal((n, 2))


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_exact_score_elbo_identity_dsm(name):
    """E[ELBO] with the exact score of Gaussian data equals -H(x) - KL(q_T || pi) up to O(eps)."""
    process = PROCESSES[name]()
    x = _data(4000)
    result = mean_elbo(process, x, gaussian_data_score(process, MEAN, VAR), rng=1, time_quadrature=24)
    expected = exact_score_elbo(process, MEAN, VAR)
    # 5 standard errors (controls fitted on the same samples: bias O(k/n) ~ 4e-3 of an s.e.) plus the
    # O(eps) truncation/decoder gap: measured <= 2.5 nats at eps = 0.05 (MALDA), i.e. <= 0.05 at 1e-3
    assert abs(result.estimate - expected) < 5 * result.standard_error + 0.05, (result, expected)
    assert result.standard_error < 0.1 and result.variance_reduction > 1.5


@pytest.mark.parametrize("name", ["vp", "cld"])
def test_exact_score_elbo_identity_ism_and_random_time(name):
    process = PROCESSES[name]()
    x = _data(3000, seed=2)
    score = gaussian_data_score(process, MEAN, VAR)
    expected = exact_score_elbo(process, MEAN, VAR)
    ism = mean_elbo(process, x, score, form="ism", rng=3, time_quadrature=16)
    assert abs(ism.estimate - expected) < 5 * ism.standard_error + 0.05
    # importance-sampled random time (the training estimator), unbiased per point
    x = x[:1000] if name == "cld" else x
    mc = mean_elbo(process, x, score, rng=4)
    assert abs(mc.estimate - expected) < 5 * mc.standard_error + 0.05
    plain = dsm_elbo(process, x, score, rng=4, boundary=False)
    assert plain.shape == (x.shape[0],)
    # without controls or decoder, still unbiased for the bound on y_eps: 5 standard errors of the plain
    # per-point mean plus the same O(eps) truncation/decoder gap (measured gaps: 0.24 vp, 1.2 cld, < 1 s.e.)
    assert abs(plain.mean() - expected) < 5 * plain.std(ddof=1) / np.sqrt(plain.size) + 0.05


@pytest.mark.parametrize("name", ["cld", "alda", "malda"])
def test_training_estimator_with_exact_score_is_unbiased_for_auxiliary_processes(name):
    """The training estimator (importance-sampled time, shared time groups, no decoder) with the exact score of
    Gaussian data has mean -H(x) - KL(q_T || pi) (up to the O(eps) piece on [0, t_min]) for the three-variable
    processes too; its per-point spread is several times VP's, which is what slows their training."""
    process = PROCESSES[name]()
    x = _data(4000, seed=6)
    score = gaussian_data_score(process, MEAN, VAR)
    values = np.concatenate([dsm_elbo_with_gradients(process, x, score, rng=seed, output="score",
                                                     time_groups=64).values for seed in range(4)])
    expected = exact_score_elbo(process, MEAN, VAR)
    assert abs(values.mean() - expected) < 5 * values.std(ddof=1) / np.sqrt(values.size) + 0.05


def test_prior_mismatch_alda_versus_malda():
    """notes A.6: KL(q_T(. | x) || pi) at x = 2.94, in bits per dimension."""
    table = {"vp": 0.040, "cld": 0.016, "alda": 0.486, "malda": 0.0005}
    for name, bits in table.items():
        value = prior_kl(getattr(StationaryLinearSDE, name)(), 2.94) / np.log(2)
        assert abs(value - bits) < 0.0006 + 0.01 * bits, (name, value)
    assert prior_kl(StationaryLinearSDE.alda(), 2.94) > 100 * prior_kl(StationaryLinearSDE.malda(), 2.94)


def test_prior_kl_against_monte_carlo():
    process = StationaryLinearSDE.malda()
    x = np.full((40000, 1), 1.3)
    z = process.sample(x, 1.0, rng=6)
    Phi, Sigma = process.transition(1.0)
    log_q = multivariate_normal(Phi.block[:, 0] * 1.3, Sigma.block).logpdf(z)
    log_pi = process.prior().log_density(z)
    samples = log_q - log_pi
    # Monte Carlo: 5 standard errors
    assert abs(samples.mean() - prior_kl(process, 1.3)) < 5 * samples.std() / np.sqrt(z.shape[0])


def test_importance_time_sampler():
    process = StationaryLinearSDE.cld()
    t, w = sample_times(process, 200000, rng=7)
    assert t.min() >= 1e-3 and t.max() <= 1.0
    # E[w f(t)] = int f: f = 1 and f = t, within 5 standard errors
    for f, exact in ((np.ones_like(t), 0.999), (t, 0.5 * (1 - 1e-6))):
        values = w * f
        assert abs(values.mean() - exact) < 5 * values.std() / np.sqrt(t.size)
    t_u, w_u = sample_times(process, 10, rng=7, importance=False)
    np.testing.assert_allclose(w_u, 0.999)
    constant = StationaryLinearSDE.vp(schedule="constant", beta_min=3.0)
    t_c, w_c = sample_times(constant, 100000, rng=8)
    assert abs(np.mean(w_c) - 0.999) < 5 * np.std(w_c) / np.sqrt(t_c.size)


def test_logit_transform_dequantisation_and_bits_per_dim():
    logit = LogitTransform(0.05)
    x = np.random.default_rng(9).uniform(size=(5, 3))
    y, ldj = logit.forward(x)
    np.testing.assert_allclose(logit.inverse(y), x, rtol=1e-12)
    h = 1e-6
    fd = (logit.forward(np.clip(x + h, 0, 1))[0] - logit.forward(np.clip(x - h, 0, 1))[0]) / (2 * h)
    np.testing.assert_allclose(ldj, np.sum(np.log(fd), axis=1), rtol=1e-6)  # central differences, O(h^2)
    levels = np.random.default_rng(10).integers(0, 17, size=(100, 4))
    u = dequantize(levels, 17, rng=11)
    assert np.all((u >= levels / 17) & (u < (levels + 1) / 17))
    # a uniform density on [0, 1]^d has log p = 0: log2(n_levels) bits per dimension
    np.testing.assert_allclose(bits_per_dim(0.0, 4, n_levels=256), 8.0)
    np.testing.assert_allclose(bits_per_dim(-4 * np.log(2), 4, n_levels=2), 2.0)
    np.testing.assert_allclose(gaussian_entropy(1.0, 2), np.log(2 * np.pi * np.e))


def test_learned_gradient_matches_finite_differences_and_learning_improves():
    rng = np.random.default_rng(12)
    G, B = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    kl, grad_G, grad_B = learned_prior_kl(G, B, MEAN, VAR, 2.0, return_gradient=True)
    fd_G, fd_B = _fd_gradient(lambda g, b: learned_prior_kl(g, b, MEAN, VAR, 2.0), G, B)
    # central differences: O(h^2) truncation plus round-off ~1e-16 kl / h
    np.testing.assert_allclose(grad_G, fd_G, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(grad_B, fd_B, rtol=1e-5, atol=1e-9)
    process, history = learn_stationary_sde(2, MEAN, VAR, noise_budget=2.0, steps=60, rng=0)
    kl = -history  # known score: ELBO = -H(x) - KL(q_T || pi), history holds -KL
    assert kl[-1] < 0.05 * kl[0]
    np.testing.assert_allclose(np.trace(process.D), 2.0 + 2e-3, rtol=1e-12)
    # learned process beats CLD at the same noise budget tr(D) = 2
    assert kl[-1] < np.sum(prior_kl(StationaryLinearSDE.cld(), MEAN, VAR))
    assert process.stationarity_residual() < 1e-14


def test_fixed_score_elbo_closed_form_gradient_and_monte_carlo():
    """A fixed linear score -M y: closed-form ELBO vs the ISM Monte Carlo estimator; exact gradient vs FD."""
    rng = np.random.default_rng(13)
    G, B, M = rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), np.array([[1.0, 0.3], [0.3, 1.2]])
    value, grad_G, grad_B = fixed_score_elbo(G, B, M, MEAN, VAR, 2.0, n_nodes=16, return_gradient=True)
    fd_G, fd_B = _fd_gradient(lambda g, b: fixed_score_elbo(g, b, M, MEAN, VAR, 2.0, n_nodes=16), G, B)
    # central differences on an O(1) value: O(h^2) + round-off 1e-16 / h = 1e-10
    np.testing.assert_allclose(grad_G, fd_G, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(grad_B, fd_B, rtol=1e-4, atol=1e-8)
    Q, D = G - G.T, 1e-3 * np.eye(2) + 2.0 * B @ B.T / np.trace(B @ B.T)
    process = StationaryLinearSDE(Q, D, np.eye(2))
    x = _data(3000, seed=14)
    mc = mean_elbo(process, x, lambda y, t: -Kron(M).apply(y), form="ism", rng=15, time_quadrature=16,
                   boundary=False)
    # Monte Carlo over x, v0 and y (5 standard errors); both use 16 Gauss-Legendre nodes (in log t vs t:
    # quadrature error of a smooth integrand < 1e-3)
    assert abs(mc.estimate - value) < 5 * mc.standard_error + 1e-2


def test_bad_inputs():
    process = StationaryLinearSDE.cld()
    with pytest.raises(TypeError, match="score"):
        dsm_elbo(process, np.zeros((2, 1)), "not callable")
    with pytest.raises(TypeError, match="process"):
        dsm_elbo(object(), np.zeros((2, 1)), lambda y, t: y)
    with pytest.raises(ValueError, match="t_min"):
        sample_times(process, 3, t_min=2.0)
    with pytest.raises(ValueError, match="alpha"):
        LogitTransform(0.7)
    with pytest.raises(ValueError, match="values"):
        dequantize(np.array([0.5]), 17)
    with pytest.raises(ValueError, match="form"):
        mean_elbo(process, np.zeros((4, 1)), lambda y, t: y, form="sliced")
    with pytest.raises(ValueError, match="x: expected values"):
        LogitTransform().forward(np.array([[1.5]]))


def _tanh_noise_model(K, d, seed):
    """A nonlinear noise model ``tanh(y W)`` with its exact vector-Jacobian product."""
    W = 0.4 * np.random.default_rng(seed).standard_normal((K * d, K * d))
    state = {}

    def model(y, t):
        state["h"] = np.tanh(y @ W + 0.1 * np.log(t)[:, None])
        return state["h"]

    def vjp(y, t, cotangent):
        return ((1.0 - state["h"] ** 2) * cotangent) @ W.T

    return model, vjp


def test_elbo_with_gradients_values_equal_dsm_elbo():
    """Same seed, same random numbers in the same order: the values are dsm_elbo's (n_times=1, no decoder)."""
    process = StationaryLinearSDE.cld()
    x = _data(50, seed=20)
    score = gaussian_data_score(process, MEAN, VAR)
    reference = dsm_elbo(process, x, score, rng=21, boundary=False)
    result = dsm_elbo_with_gradients(process, x, lambda y, t: score(y, t), rng=21)
    # two routes to Phi and Sigma (expm + hybrid identity vs the process's series at small t): ~1e-12 relative
    np.testing.assert_allclose(result.values, reference, rtol=1e-8, atol=1e-8)
    # noise form: model = L^T eps_hat with eps_hat = -L^T score gives the same values
    noise = lambda y, t: -process.transition(t)[1].cholesky().transpose().apply(score(y, t))  # noqa: E731
    np.testing.assert_allclose(dsm_elbo_with_gradients(process, x, noise, rng=21, output="noise").values,
                               reference, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("output, time_groups, with_base", [("noise", None, False), ("score", 4, False),
                                                         ("noise", 4, True)])
def test_learned_elbo_gradient_matches_finite_differences(output, time_groups, with_base):
    """The reparameterised (Q, D) gradient of the Monte Carlo ELBO against central differences of the same
    estimate (same seed: common random numbers), with a nonlinear model entering through its VJP, alone or
    as a correction on a Gaussian base whose marginals also move with (Q, D)."""
    rng = np.random.default_rng(22)
    G, B = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    x = _data(40, seed=23)
    model, vjp = _tanh_noise_model(2, 2, 24)
    base = GaussianData.fit(x) if with_base else None

    def mean_value(g, b):  # the value alone, on the process the parameterisation defines
        Q, D = g - g.T, 1e-3 * np.eye(2) + 2.0 * b @ b.T / np.trace(b @ b.T)
        return np.mean(dsm_elbo_with_gradients(StationaryLinearSDE(Q, D, np.eye(2)), x, model, rng=25,
                                               output=output, time_groups=time_groups, base=base).values)

    values, cotangent, grad_G, grad_B, process = learned_elbo_gradient(G, B, x, model, vjp, output=output,
                                                                       noise_budget=2.0, rng=25,
                                                                       time_groups=time_groups, base=base)
    fd_G, fd_B = _fd_gradient(mean_value, G, B, h=1e-5)
    # central differences: O(h^2) = 1e-10 truncation, round-off ~1e-16 |value| / h ~ 1e-9 of values ~ 10
    scale = np.max(np.abs(np.concatenate([fd_G.ravel(), fd_B.ravel()])))
    np.testing.assert_allclose(grad_G, fd_G, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(grad_B, fd_B, rtol=1e-5, atol=1e-6 * scale)
    # the output cotangent against central differences of the ELBO in the model output
    shift = np.zeros_like(cotangent)
    shift[3, 1] = 1e-6
    plus, minus = (dsm_elbo_with_gradients(process, x, lambda y, t: model(y, t) + sign * shift, rng=25,
                                           output=output, time_groups=time_groups, base=base).values[3]
                   for sign in (1.0, -1.0))
    np.testing.assert_allclose((plus - minus) / 2e-6, cotangent[3, 1], rtol=1e-5)
    assert process.stationarity_residual() < 1e-13


def _exact_gg_divergence(process, mean, data_var):
    """``div_y(G G^T s)`` of the exact (linear) Gaussian-data score: ``-d beta tr(2 D C^{-1})``."""
    def divergence(y, t):
        Phi, Sigma = process.transition(t)
        P = Phi.block
        cov = Sigma.block + np.einsum("...i,...j->...ij", P[..., :, 0], P[..., :, 0]) * data_var
        d = y.shape[1] // process.n_blocks
        trace = np.einsum("ij,...ji->...", 2.0 * process.D, np.linalg.inv(cov))
        return np.broadcast_to(-d * process.beta(t) * trace, (y.shape[0],))
    return divergence


def test_ism_elbo_divergence_is_of_gg_score():
    """``divergence`` must return div(G G^T s): with it the ISM ELBO meets the exact-score identity; div(s) misses."""
    process = StationaryLinearSDE.cld()
    x = _data(2000, seed=26)
    score = gaussian_data_score(process, MEAN, VAR)
    expected = exact_score_elbo(process, MEAN, VAR)
    right = mean_elbo(process, x, score, form="ism", rng=27, time_quadrature=16,
                      divergence=_exact_gg_divergence(process, MEAN, VAR))
    # 5 standard errors plus the O(eps) truncation/decoder gap of the identity test above
    assert abs(right.estimate - expected) < 5 * right.standard_error + 0.05

    def divergence_of_score(y, t):  # the wrong quantity: div s = -d tr(C^{-1})
        Phi, Sigma = process.transition(t)
        P = Phi.block
        cov = Sigma.block + np.einsum("...i,...j->...ij", P[..., :, 0], P[..., :, 0]) * VAR
        return np.broadcast_to(-2 * np.trace(np.linalg.inv(cov), axis1=-2, axis2=-1), (y.shape[0],))

    wrong = mean_elbo(process, x, score, form="ism", rng=27, time_quadrature=16, divergence=divergence_of_score)
    assert abs(wrong.estimate - expected) > 100 * right.standard_error + 1.0


def test_fuzz_cases_raise_naming_the_argument():
    process = StationaryLinearSDE.cld()
    x = _data(4, seed=28)
    with pytest.raises(ValueError, match="score: returned non-finite"):
        dsm_elbo(process, x, lambda y, t: y * np.nan, rng=0)
    with pytest.raises(ValueError, match="score: expected an output of shape"):
        dsm_elbo(process, x, lambda y, t: y[:, :1], rng=0)
    with pytest.raises(ValueError, match="n_times"):
        dsm_elbo(process, x, lambda y, t: -y, n_times=0)
    with pytest.raises(ValueError, match="n_probes"):
        ism_elbo(process, x, lambda y, t: -y, n_probes=0)
    with pytest.raises(ValueError, match="time_quadrature"):
        dsm_elbo(process, x, lambda y, t: -y, time_quadrature=0)
    with pytest.raises(ValueError, match="divergence"):
        ism_elbo(process, x, lambda y, t: -y, divergence=lambda y, t: np.full(y.shape[0], np.nan))
    with pytest.raises(TypeError, match="divergence"):
        ism_elbo(process, x, lambda y, t: -y, divergence=3.0)
    from opdiff.processes import VPSDE
    with pytest.raises(TypeError, match="process"):
        prior_kl(VPSDE(), 0)
    with pytest.raises(ValueError, match="data_var"):
        prior_kl(process, 0.0, data_var=-1.0)
    with pytest.raises(TypeError, match="model_vjp"):
        dsm_elbo_with_gradients(process, x, lambda y, t: -y, directions=[(np.zeros((2, 2)), np.eye(2))])
    with pytest.raises(ValueError, match="output"):
        dsm_elbo_with_gradients(process, x, lambda y, t: -y, output="denoiser")


def test_logit_transform_keeps_float32():
    x32 = np.random.default_rng(29).uniform(size=(4, 3)).astype(np.float32)
    y, ldj = LogitTransform(0.05).forward(x32)
    assert y.dtype == np.float32 and ldj.dtype == np.float32
    y64, ldj64 = LogitTransform(0.05).forward(x32.astype(np.float64))
    # float32 round-off of values of size ~3: a few 1e-7 relative
    np.testing.assert_allclose(ldj, ldj64, rtol=1e-5)
