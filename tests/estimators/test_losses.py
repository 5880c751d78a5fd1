"""Score-matching losses: DSM - ISM is model-free, operator ISM = Monte Carlo ISM, gradients, Hutchinson."""
import numpy as np
import pytest

from opdiff.datasets import GaussianMixture
from opdiff.estimators.losses import (LinearScoreModel, dsm_loss, hutchinson_variance, ism_loss, operator_ism_loss,
                                      sliced_loss)
from opdiff.estimators.oism import OISM
from opdiff.manifolds import FlatTorus
from opdiff.processes.manifold import ManifoldBrownianMotion
from opdiff.processes import BrownianMotion, OrnsteinUhlenbeck
from opdiff.spectral import Fourier, Hermite

OU = OrnsteinUhlenbeck(1.0, T=8.0)
GM = GaussianMixture([0.5, 0.5], [[-1.0, 0.5], [1.0, -0.5]], [0.2, 0.3])


def WrappedBrownianMotion(d, sigma=1.0):
    """Periodic BM on [-pi, pi)^d: wrapped samples, DSM target = gradient of the wrapped heat kernel."""
    return ManifoldBrownianMotion(FlatTorus(d), sigma, T=5.0)


def quadratic_model():
    """A second model, not spectral: s = theta_0 * (-x) + theta_1 * tanh(x) (linear in theta)."""
    feats = lambda x, t: np.stack([-x, np.tanh(x)], axis=1)
    div = lambda x, t: np.stack([-np.full(len(x), x.shape[1] * 1.0), np.sum(1 - np.tanh(x) ** 2, 1)], axis=1)
    return LinearScoreModel(feats, feature_divergence=div)


def paired_ism_dsm(model, params, x0, t, process, rng):
    """Per-sample DSM and ISM on the same forward pairs."""
    dsm, (xt, _) = dsm_loss(model, x0, t, process, params=params, rng=rng, return_samples=True)
    ism = ism_loss(model, xt, t, params=params)
    return dsm.per_sample - ism.per_sample


@pytest.mark.parametrize("setting", ["ou", "torus"])
def test_dsm_minus_ism_is_the_same_constant_for_two_models(setting):
    rng = np.random.default_rng(0)
    if setting == "ou":
        process, x0, t = OU, GM.sample(40000, rng), 0.3
        oism = OISM(OU, Hermite(2, 3), n_grid=8).fit(GM.sample(1000, rng))
        other, other_params = quadratic_model(), np.array([0.7, -0.4])
    else:
        process, t = WrappedBrownianMotion(2), 0.3
        x0 = np.mod(GM.sample(40000, rng) * 1.5 + np.pi, 2 * np.pi) - np.pi
        oism = OISM(BrownianMotion(1.0, T=5.0), Fourier(2, 3), n_grid=8).fit(x0[:1000])
        other = OISM(BrownianMotion(1.0, T=5.0), Fourier(2, 2), n_grid=8).fit(x0[1000:2000]).linear_model()
        other_params = OISM(BrownianMotion(1.0, T=5.0), Fourier(2, 2), n_grid=8).fit(x0[:500]).coefficients(t)
    d1 = paired_ism_dsm(oism.linear_model(), oism.coefficients(t), x0, t, process, 1)
    d2 = paired_ism_dsm(other, other_params, x0, t, process, 1)  # same seed: same forward pairs
    diff = d1 - d2
    # the difference of the two constants is zero: |mean| within 5 standard errors
    assert abs(diff.mean()) < 5 * diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"\n[{setting}] DSM - ISM: model 1 {d1.mean():.4f} +- {d1.std() / np.sqrt(len(d1)):.4f}, "
          f"model 2 {d2.mean():.4f} +- {d2.std() / np.sqrt(len(d2)):.4f}")


@pytest.mark.parametrize("basis,process,data", [
    (Hermite(2, 4), OU, lambda rng: GM.sample(30000, rng)),
    (Hermite(2, 3, kind="product"), OU, lambda rng: GM.sample(30000, rng)),
    (Fourier(2, 3), WrappedBrownianMotion(2), lambda rng: np.mod(GM.sample(30000, rng) * 1.5 + np.pi, 2 * np.pi) - np.pi),
], ids=["hermite", "hermite-product", "fourier"])
def test_operator_ism_equals_monte_carlo_ism(basis, process, data):
    rng = np.random.default_rng(1)
    x0 = data(rng)
    t = 0.2
    proc = OU if isinstance(basis, Hermite) else BrownianMotion(1.0, T=5.0)
    oism = OISM(proc, basis, n_grid=8).fit(x0[:500])
    params = oism.coefficients(t) + 0.1 * rng.normal(size=basis.n_basis)
    operator = operator_ism_loss(basis, params, x0, t)
    xt = process.sample(x0, t, rng=rng)
    mc = ism_loss(oism.linear_model(), xt, t, params=params)
    se = np.hypot(operator.standard_error, mc.standard_error)
    assert abs(operator.value - mc.value) < 5 * se  # 5 combined standard errors
    assert operator.standard_error < mc.standard_error  # Rao-Blackwellised: no forward noise
    # gradients agree too (each component within 5 combined standard errors)
    g_se = np.hypot(operator.per_sample_gradient.std(0), mc.per_sample_gradient.std(0)) / np.sqrt(len(x0))
    assert np.all(np.abs(operator.gradient - mc.gradient) < 5 * g_se + 1e-12)


def test_operator_ism_gradient_and_value_against_finite_differences():
    rng = np.random.default_rng(2)
    basis = Hermite(2, 3)
    x0 = GM.sample(300, rng)
    params = rng.normal(size=basis.n_basis) * 0.3
    loss = operator_ism_loss(basis, params, x0, 0.4)
    h = 1e-6
    fd = np.array([(operator_ism_loss(basis, params + h * e, x0, 0.4).value
                    - operator_ism_loss(basis, params - h * e, x0, 0.4).value) / (2 * h) for e in np.eye(len(params))])
    np.testing.assert_allclose(loss.gradient, fd, atol=1e-6)  # quadratic: FD exact up to rounding / h


def test_linear_model_gradients_against_finite_differences():
    rng = np.random.default_rng(3)
    model, params = quadratic_model(), np.array([0.8, 0.2])
    x0 = GM.sample(200, rng)
    xt = OU.sample(x0, 0.5, rng)
    h = 1e-6
    for fn in (lambda p: ism_loss(model, xt, 0.5, params=p),
               lambda p: dsm_loss(model, x0, 0.5, OU, params=p, rng=4),
               lambda p: sliced_loss(model, xt, 0.5, params=p, rng=5)):
        grad = fn(params).gradient
        fd = np.array([(fn(params + h * e).value - fn(params - h * e).value) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


def test_hutchinson_and_sliced_match_exact_ism():
    rng = np.random.default_rng(6)
    oism = OISM(OU, Hermite(2, 3), n_grid=8).fit(GM.sample(1000, rng))
    xt = OU.sample(GM.sample(20000, rng), 0.3, rng)
    exact = ism_loss(oism, xt, 0.3)
    for est in (ism_loss(oism, xt, 0.3, divergence="hutchinson", rng=7),
                ism_loss(oism, xt, 0.3, divergence="hutchinson", probe="gaussian", n_probes=2, rng=7),
                sliced_loss(oism, xt, 0.3, rng=8)):
        assert abs(est.value - exact.value) < 5 * est.standard_error
        assert est.standard_error >= exact.standard_error * 0.99  # probes add variance


def test_hutchinson_variance_formula_by_monte_carlo():
    rng = np.random.default_rng(9)
    J = rng.normal(size=(3, 3))
    for probe in ("rademacher", "gaussian"):
        v = rng.choice([-1.0, 1.0], size=(200000, 3)) if probe == "rademacher" else rng.normal(size=(200000, 3))
        est = np.einsum("ni,ij,nj->n", v, J, v)
        var = hutchinson_variance(J, probe)
        # sample variance of 2e5 draws: relative standard error sqrt(2 / n) * kurtosis factor < 1 %
        assert est.var() == pytest.approx(var, rel=0.03)
        assert est.mean() == pytest.approx(np.trace(J), abs=5 * np.sqrt(var / len(est)))


def test_loss_bad_inputs():
    model = quadratic_model()
    x = GM.sample(10, 0)
    with pytest.raises(ValueError, match="params"):
        ism_loss(model, x, 0.1)
    with pytest.raises(ValueError, match="divergence"):
        ism_loss(lambda x, t: -x, x, 0.1)
    with pytest.raises(ValueError, match="divergence"):
        ism_loss(model, x, 0.1, params=[1.0, 0.0], divergence="trace")
    with pytest.raises(TypeError, match="model"):
        ism_loss(3, x, 0.1)
    with pytest.raises(ValueError, match="params"):
        operator_ism_loss(Hermite(2, 2), np.zeros(3), x, 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        ism_loss(lambda x, t: np.full_like(x, np.nan), x, 0.1, divergence="hutchinson", rng=0)
