"""Neural score models on the torus and the sphere: DSM targets against finite differences of the log heat
kernel, input features, Riemannian vector-Jacobian products and divergences against finite differences of
the model's own score, and training against the exact score of the empirical law (RDKS)."""
import numpy as np
import pytest

from opdiff.estimators import DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.neural import NeuralScoreModel
from opdiff.neural.forms import process_form
from opdiff.processes import ManifoldBrownianMotion

TORUS, SPHERE = ManifoldBrownianMotion(FlatTorus(2)), ManifoldBrownianMotion(Hypersphere(2))


def _torus_data(n, seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, 1.0], [1.5, -1.0]])
    return np.mod(centres[rng.integers(0, 2, n)] + 0.3 * rng.normal(size=(n, 2)) + np.pi, 2 * np.pi) - np.pi


def _sphere_data(n, seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    x = centres[rng.integers(0, 2, n)] + 0.25 * rng.normal(size=(n, 3))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _tangent_basis(x):
    """An orthonormal basis ``(n, 2, 3)`` of the tangent planes of ``S^2`` at ``x (n, 3)``."""
    helper = np.where(np.abs(x[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    e1 = helper - np.sum(helper * x, 1, keepdims=True) * x
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return np.stack([e1, np.cross(x, e1)], axis=1)


@pytest.mark.parametrize("t", [0.02, 0.3, 3.0])  # wrapped-Gaussian and theta-series regimes
def test_torus_dsm_target_is_the_scaled_gradient_of_the_log_heat_kernel(t):
    form = process_form(TORUS)
    x0 = _torus_data(6, 0)
    z, target = form.dsm_draw(x0, np.full(6, t), np.random.default_rng(1))
    s = float(TORUS.heat_time(t))
    h = 1e-5
    # central differences of the log heat kernel in each angle: truncation h^2 |f'''| / 6 <= 1e-10 / s^1.5
    # (f''' ~ s^-1.5 for the Gaussian), round-off 1e-16 |log p| / h ~ 1e-11; 1e-6 leaves a wide margin
    fd = np.empty_like(z)
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        up = TORUS.manifold.log_heat_kernel(z + e, x0, s)
        down = TORUS.manifold.log_heat_kernel(z - e, x0, s)
        fd[:, j] = (up - down) / (2 * h)
    np.testing.assert_allclose(target, -np.sqrt(2 * s) * fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("t", [0.02, 0.3, 3.0])
def test_sphere_dsm_target_is_tangent_and_the_scaled_gradient_of_the_log_heat_kernel(t):
    form = process_form(SPHERE)
    x0 = _sphere_data(5, 2)
    z, target = form.dsm_draw(x0, np.full(5, t), np.random.default_rng(3))
    s = float(SPHERE.heat_time(t))
    np.testing.assert_allclose(np.sum(target * z, 1), 0.0, atol=1e-12)
    basis = _tangent_basis(z)
    h = 1e-5
    for k in range(2):  # directional derivatives along geodesics, same error budget as on the torus
        u = basis[:, k]
        up = SPHERE.manifold.log_heat_kernel(SPHERE.manifold.exp(z, h * u), x0, s)
        down = SPHERE.manifold.log_heat_kernel(SPHERE.manifold.exp(z, -h * u), x0, s)
        np.testing.assert_allclose(np.sum(target * u, 1), -np.sqrt(2 * s) * (up - down) / (2 * h), rtol=1e-6,
                                   atol=1e-6)


def test_torus_features_are_periodic_and_their_vjp_matches_finite_differences():
    form = process_form(TORUS)
    z = _torus_data(4, 4)
    t = np.full(4, 0.5)
    np.testing.assert_allclose(form.features(z + 2 * np.pi, t), form.features(z, t), atol=1e-12)
    g = np.random.default_rng(5).normal(size=(4, 4))
    h = 1e-6
    fd = np.stack([(np.sum(form.features(z + h * np.eye(2)[j], t) * g, 1)
                    - np.sum(form.features(z - h * np.eye(2)[j], t) * g, 1)) / (2 * h) for j in range(2)], 1)
    np.testing.assert_allclose(form.features_vjp(g, z, t), fd, rtol=1e-7, atol=1e-9)


@pytest.fixture(scope="module")
def torus_model():
    return NeuralScoreModel(TORUS, hidden=(32, 32), n_steps=400, batch_size=128, rng=0).fit(_torus_data(1500, 6))


@pytest.fixture(scope="module")
def sphere_model():
    # 4 distinct times per batch: the exact sphere sampler builds one inverse-CDF table per time
    return NeuralScoreModel(SPHERE, hidden=(32, 32), n_steps=200, batch_size=256, lr=5e-3, time_groups=4,
                            rng=0).fit(_sphere_data(1500, 7))


def test_torus_divergence_and_vjp_match_finite_differences(torus_model):
    x, t = _torus_data(5, 8), 0.4
    v = np.random.default_rng(9).normal(size=x.shape)
    h = 1e-5
    # the model is smooth (SiLU MLP of cos/sin), O(1) curvature: central-difference error ~ h^2 ~ 1e-10
    jac = np.stack([(torus_model.score(x + h * np.eye(2)[j], t) - torus_model.score(x - h * np.eye(2)[j], t))
                    / (2 * h) for j in range(2)], axis=2)  # (n, out, in)
    np.testing.assert_allclose(torus_model.score_vjp(x, t, v), np.einsum("noi,no->ni", jac, v), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(torus_model.divergence(x, t), np.trace(jac, axis1=1, axis2=2), rtol=1e-6, atol=1e-8)
    # Hutchinson with every sign pattern of the two coordinates averages to the exact trace
    probes = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], float)[:, None, :].repeat(5, 1)
    np.testing.assert_allclose(torus_model.divergence(x, t, probes=probes).mean(0), torus_model.divergence(x, t),
                               rtol=1e-10, atol=1e-10)


def test_sphere_outputs_are_tangent_and_the_riemannian_divergence_matches_finite_differences(sphere_model):
    x, t = _sphere_data(5, 10), 0.3
    score = sphere_model.score(x, t)
    np.testing.assert_allclose(np.sum(score * x, 1), 0.0, atol=1e-12)
    basis = _tangent_basis(x)
    h = 1e-5

    def extended(y):  # the score of the nearest sphere point: its ambient Jacobian is J P
        return sphere_model.score(y / np.linalg.norm(y, axis=1, keepdims=True), t)

    # tr(P J P) = sum over an orthonormal tangent basis of u . dS/du; central differences, error ~ h^2
    fd = sum(np.sum(basis[:, k] * (extended(x + h * basis[:, k]) - extended(x - h * basis[:, k])), 1) / (2 * h)
             for k in range(2))
    np.testing.assert_allclose(sphere_model.divergence(x, t), fd, rtol=1e-5, atol=1e-6)
    u = basis[:, 0]
    vjp = sphere_model.score_vjp(x, t, u)
    np.testing.assert_allclose(np.sum(vjp * x, 1), 0.0, atol=1e-12)
    for k in range(2):  # w . (J^T u) = u . (J w) for tangent w
        w = basis[:, k]
        jw = (extended(x + h * w) - extended(x - h * w)) / (2 * h)
        np.testing.assert_allclose(np.sum(vjp * w, 1), np.sum(u * jw, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("which", ["torus", "sphere"])
def test_trained_manifold_models_beat_an_untrained_one(which, torus_model, sphere_model):
    process, model, data = {"torus": (TORUS, torus_model, _torus_data(1500, 6)),
                            "sphere": (SPHERE, sphere_model, _sphere_data(1500, 7))}[which]
    # the exact score of the empirical training law (NumPy backend: no JIT compilation in this test)
    exact = DiffusionKernelSmoother(process, backend="numpy").fit(data)
    untrained = NeuralScoreModel(process, hidden=(32, 32), n_steps=1, lr=1e-12, rng=1).fit(data)
    errors = {}
    for t in (0.1, 0.5):
        xt = process.sample(data[:600], t, rng=11)
        reference = exact.score(xt, t)
        norm = np.mean(np.sum(reference**2, 1))
        errors[t] = [np.mean(np.sum((m.score(xt, t) - reference) ** 2, 1)) / norm for m in (model, untrained)]
    print(which, errors)
    for trained, initial in errors.values():
        # the untrained network outputs ~0 (small last layer): relative Fisher divergence ~1; after training
        # it is measured at 0.05-0.14 (torus 0.08 / 0.14, sphere 0.09 / 0.05 at t = 0.1 / 0.5); 0.3 leaves 2x
        assert initial > 0.8 and trained < 0.3


def test_sphere_hutchinson_probes_average_to_the_riemannian_divergence(sphere_model):
    x, t = _sphere_data(5, 12), 0.3
    probes = 2.0 * np.random.default_rng(13).integers(0, 2, size=(400, 5, 3)) - 1.0  # projected inside
    estimates = sphere_model.divergence(x, t, probes=probes)
    exact = sphere_model.divergence(x, t)
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(probes))
    # E[(P z)^T J (P z)] = tr(P J P) for Rademacher z: the mean of 400 estimates within 4 standard errors
    assert np.all(np.abs(estimates.mean(axis=0) - exact) < 4 * standard_error + 1e-12)
