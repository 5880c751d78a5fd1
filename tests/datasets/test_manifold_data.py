"""vMF and wrapped-normal mixtures (quadrature, Monte Carlo, finite differences) and load_latlon."""
import math

import numpy as np
import pytest
from scipy.special import roots_legendre

from opdiff.datasets import VonMisesFisherMixture, WrappedNormalMixture, load_latlon, unit_to_latlon
from opdiff.manifolds import FlatTorus, Hypersphere

VMF = VonMisesFisherMixture([[0, 0, 1], [1, 1, 0]], [300.0, 3.0], [0.3, 0.7])
WRAPPED = WrappedNormalMixture([[3.0, -3.0], [0.0, 1.0]], [[0.3, 2.0], [0.5, 0.5]], [0.6, 0.4])


def test_vmf_density_integrates_to_one():
    u, w = roots_legendre(400)  # polar Gauss-Legendre about the first mean: resolves kappa = 300
    for mean_index in (0, 1):
        mu = VMF.means[mean_index]
        basis = np.linalg.svd(mu[None])[2][1:]
        phi = np.linspace(0, 2 * math.pi, 200, endpoint=False)
        U, P = np.meshgrid(u, phi, indexing="ij")
        r = np.sqrt(1 - U**2)
        nodes = (U[..., None] * mu + r[..., None] * (np.cos(P)[..., None] * basis[0] + np.sin(P)[..., None] * basis[1]))
        weights = w[:, None] * np.full(200, 2 * math.pi / 200)
        total = np.sum(weights * np.exp(VMF.log_density(nodes.reshape(-1, 3))).reshape(U.shape))
        assert abs(total - 1.0) < 1e-8


def test_vmf_sampler_matches_the_mean_resultant_length():
    single = VonMisesFisherMixture([[0, 1, 0]], [20.0])
    x = single.sample(20000, 0)
    c = x @ single.means[0]
    expected = 1 / math.tanh(20.0) - 1 / 20.0  # E[mu . x] = coth(kappa) - 1/kappa
    assert abs(c.mean() - expected) < 5 * c.std() / math.sqrt(c.size)
    assert np.max(np.abs(np.linalg.norm(x, axis=1) - 1)) < 1e-14


def test_wrapped_normal_density_and_moments():
    g = np.linspace(-math.pi, math.pi, 301)[:-1]
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    assert abs(np.exp(WRAPPED.log_density(grid)).sum() * (2 * math.pi / 300) ** 2 - 1) < 1e-10
    single = WrappedNormalMixture([[2.5]], [1.2])
    x = single.sample(20000, 1)
    c = np.cos(x[:, 0] - 2.5)  # E cos(X - mu) = exp(-sigma^2 / 2)
    assert abs(c.mean() - math.exp(-0.72)) < 5 * c.std() / math.sqrt(c.size)


@pytest.mark.parametrize("mixture", [VMF, WRAPPED], ids=["vmf", "wrapped"])
def test_scores_are_riemannian_gradients(mixture):
    manifold = mixture.manifold
    rng = np.random.default_rng(2)
    x = mixture.sample(10, rng)
    v = manifold.random_tangent_normal(x, rng)
    eps = 1e-6
    fd = (mixture.log_density(manifold.exp(x, eps * v)) - mixture.log_density(manifold.exp(x, -eps * v))) / (2 * eps)
    np.testing.assert_allclose(fd, np.sum(mixture.score(x) * v, axis=1), rtol=1e-6, atol=1e-5)
    assert isinstance(manifold, (Hypersphere, FlatTorus))


def test_load_latlon(tmp_path):
    with_header = tmp_path / "cities.csv"
    with_header.write_text("name,Latitude,Longitude\nnorth,90,0\nequator,0,90\nsouth,-45,-180\n")
    x = load_latlon(with_header)
    np.testing.assert_allclose(x, [[0, 0, 1], [0, 1, 0], [-math.sqrt(0.5), 0, -math.sqrt(0.5)]], atol=1e-15)
    lat, lon = unit_to_latlon(x)
    np.testing.assert_allclose(lat, [90, 0, -45], atol=1e-12)
    bare = tmp_path / "bare.csv"
    bare.write_text("10.5,20\n-30,200\n")
    # no header: first column latitude, second longitude (unit_to_latlon checked above; 200 wraps to -160)
    np.testing.assert_allclose(np.stack(unit_to_latlon(load_latlon(bare)), axis=1), [[10.5, 20], [-30, -160]],
                               atol=1e-12)
    custom = tmp_path / "custom.csv"
    custom.write_text("y,x\n1,2\n")
    np.testing.assert_allclose(np.stack(unit_to_latlon(load_latlon(custom, latitude="y", longitude="x")), axis=1),
                               [[1.0, 2.0]], atol=1e-12)
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon\n95,0\n")
    with pytest.raises(ValueError, match=r"latitude: expected degrees in \[-90, 90\], got 95"):
        load_latlon(bad)
    bad.write_text("lat,lon\nabc,0\n")
    with pytest.raises(ValueError, match="row 2 .* not numeric"):
        load_latlon(bad)
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="latitude: no column"):
        load_latlon(bad)


def test_bad_parameters():
    with pytest.raises(ValueError, match="kappas"):
        VonMisesFisherMixture([[0, 0, 1]], [-1.0])
    with pytest.raises(ValueError, match="weights"):
        VonMisesFisherMixture([[0, 0, 1]], [1.0], [-1.0])
    with pytest.raises(ValueError, match="means"):
        VonMisesFisherMixture([[0, 0, 0]], [1.0])
    with pytest.raises(ValueError, match="stds"):
        WrappedNormalMixture([[0.0, 0.0]], [[1.0, -1.0]])
    with pytest.raises(ValueError, match=r"x: .*distance"):
        VMF.log_density(np.array([[0.0, 0.0, 2.0]]))
