"""Operator control variates: zero mean (Monte Carlo), optimal coefficients, variance reduction on 2-D toys.

Run with ``-s`` to see the variance-reduction table.
"""
import numpy as np
import pytest

from opdiff.datasets import make_toy
from opdiff.estimators.control_variates import OperatorControlVariates, apply_control_variates, optimal_coefficients
from opdiff.estimators.losses import dsm_loss, ism_loss
from opdiff.estimators.oism import OISM
from opdiff.manifolds.torus import FlatTorus
from opdiff.processes import OrnsteinUhlenbeck
from opdiff.spectral import Fourier, Hermite

OU = OrnsteinUhlenbeck(1.0, T=8.0)


@pytest.mark.parametrize("setting", ["ou", "torus"])
def test_control_variates_have_zero_mean(setting):
    rng = np.random.default_rng(0)
    x0 = make_toy("two_spirals", 100000, rng=rng) / 4.0
    t = np.full(len(x0), 0.25)
    t[::2] = 0.7  # per-sample times
    if setting == "ou":
        cv = OperatorControlVariates(Hermite(2, 3), multiplier_basis=Hermite(2, 1))
        xt = OU.sample(x0, t, rng)
    else:
        cv = OperatorControlVariates(Fourier(2, 2), multiplier_basis=Fourier(2, 1))
        x0 = np.mod(x0 + np.pi, 2 * np.pi) - np.pi
        xt = FlatTorus(2).sample_heat_kernel(x0, 0.5 * t, rng=rng)  # BM sigma = 1: heat time t / 2
    Z = cv.values(x0, xt, t)
    z = Z.mean(0) / (Z.std(0, ddof=1) / np.sqrt(len(Z)))
    # every control within 5 standard errors of 0 (Bonferroni over <= 100 controls: 5 SE is ample)
    assert np.all(np.abs(z) < 5), np.abs(z).max()


def test_optimal_coefficients_recover_a_linear_relation():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(5000, 3))
    Y = 2.0 + Z @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=5000)
    np.testing.assert_allclose(optimal_coefficients(Y, Z), [1.0, -2.0, 0.5], atol=0.01)
    res = apply_control_variates(Y, Z)
    assert res.variance_reduction > 100
    assert abs(res.estimate - 2.0) < 5 * res.standard_error + 1e-3
    split = apply_control_variates(Y, Z, split=True)
    assert abs(split.estimate - 2.0) < 5 * split.standard_error
    with pytest.raises(ValueError, match="controls"):
        apply_control_variates(Y, Z[:10])


def test_control_variates_reduce_dsm_variance_on_the_toys():
    rows = []
    for name in ("two_spirals", "eight_gaussians", "pinwheel", "checkerboard"):
        X = make_toy(name, 12000, rng=2)
        X = X / X.std()
        oism = OISM(OU, Hermite(2, 4), n_grid=16).fit(X[:2000])
        model = oism.linear_model()
        cv = OperatorControlVariates(Hermite(2, 4), multiplier_basis=Hermite(2, 2))
        for t in (0.05, 0.5):
            res = dsm_loss(model, X, t, OU, params=oism.coefficients(t), rng=3, control_variates=cv)
            rows.append((name, t, res.loss_variance_reduction, res.gradient_variance_reduction))
            # same expectation: corrected and plain estimates within 5 plain standard errors
            assert abs(res.value - res.plain.value) < 5 * res.plain.standard_error
            assert res.loss_variance_reduction > 2.0 and res.gradient_variance_reduction > 1.3
    print("\nDSM variance reduction by operator control variates (OU, Hermite K=4 x multipliers K=2, n=12000)")
    print(f"{'toy':16s} {'t':>5s} {'loss':>7s} {'gradient':>9s}")
    for name, t, lr, gr in rows:
        print(f"{name:16s} {t:5.2f} {lr:7.1f} {gr:9.2f}")


def test_control_variates_on_monte_carlo_ism():
    """The same controls apply to ISM estimates from forward pairs (x_t drawn from known x_0)."""
    X = make_toy("eight_gaussians", 12000, rng=4)
    X = X / X.std()
    oism = OISM(OU, Hermite(2, 4), n_grid=16).fit(X[:2000])
    t = 0.2
    xt = OU.sample(X, t, 5)
    ism = ism_loss(oism.linear_model(), xt, t, params=oism.coefficients(t))
    res = OperatorControlVariates(Hermite(2, 4), multiplier_basis=Hermite(2, 2)).correct(ism, X, xt, t)
    assert abs(res.value - ism.value) < 5 * ism.standard_error
    assert res.loss_variance_reduction > 1.5 and res.gradient_variance_reduction > 1.5
    print(f"\nISM (eight_gaussians, t={t}): variance reduction loss {res.loss_variance_reduction:.1f}, "
          f"gradient {res.gradient_variance_reduction:.2f}")


def test_bad_inputs():
    cv = OperatorControlVariates(Hermite(2, 2))
    with pytest.raises(ValueError, match="xt"):
        cv.values(np.zeros((3, 2)), np.zeros((4, 2)), 0.1)
    with pytest.raises(ValueError, match="x0"):
        cv.values(np.zeros((3, 3)), np.zeros((3, 2)), 0.1)
    with pytest.raises(ValueError, match="samples"):
        apply_control_variates(np.zeros(3), np.zeros((3, 5)))
