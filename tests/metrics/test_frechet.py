"""Frechet distances (closed form, on features, on the digits classifier), pixel diversity and Vendi score."""
import numpy as np
import pytest
from scipy.linalg import sqrtm

from opdiff.datasets import load_digits_images
from opdiff.metrics.frechet import (DigitsClassifier, frechet_digits_distance, frechet_distance,
                                    frechet_standard_error, gaussian_frechet, pixel_diversity, vendi_score)


def test_gaussian_frechet_against_closed_forms():
    # commuting (diagonal) covariances: |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    np.testing.assert_allclose(gaussian_frechet(m1, np.diag(a), m2, np.diag(b)), expected, rtol=1e-13)
    # general covariances: against scipy's sqrtm of C1 C2 (a different route to the cross term)
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((4, 4)), rng.standard_normal((4, 6))
    C1, C2 = A @ A.T, B @ B.T / 6
    reference = np.trace(C1 + C2 - 2.0 * np.real(sqrtm(C1 @ C2)))
    # sqrtm of a non-symmetric product is accurate to ~1e-12 relative here (condition number ~1e2)
    np.testing.assert_allclose(gaussian_frechet(np.zeros(4), C1, np.zeros(4), C2), reference, rtol=1e-10)


def test_frechet_distance_zero_for_identical_sets_and_shift_squared():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 5))
    assert frechet_distance(x, x) < 1e-10 * np.trace(np.cov(x, rowvar=False))  # round-off of the cross term
    distances = []
    for size in (0.1, 0.5, 1.0, 2.0):
        delta = size * np.arange(1.0, 6.0)
        # a translated copy has the same covariance: the distance is exactly |delta|^2
        np.testing.assert_allclose(frechet_distance(x, x + delta), np.sum(delta**2), rtol=1e-9)
        distances.append(frechet_distance(x, x + delta))
    assert np.all(np.diff(distances) > 0)


def test_bootstrap_standard_error_matches_the_spread_over_independent_sets():
    """The bootstrap spread from one pair of sets against the standard deviation of the distance over 400
    independent pairs drawn from the same two Gaussians."""
    rng = np.random.default_rng(2)
    scale, shift = np.diag([1.0, 0.5, 0.2]), np.array([0.3, 0.0, 0.0])

    def draw():
        return rng.standard_normal((300, 3)) @ scale, 1.1 * rng.standard_normal((400, 3)) @ scale + shift

    spread = np.std([frechet_distance(*draw()) for _ in range(400)], ddof=1)
    ratios = [frechet_standard_error(*draw(), rng=k) / spread for k in range(10)]
    # one pair's bootstrap ratio varies by ~0.22 (measured 0.64-1.31), so the mean of 10 by ~0.07, the
    # 400-pair spread itself by ~4%: +-0.25 is over 3 of their combined standard errors
    assert abs(np.mean(ratios) - 1.0) < 0.25, ratios
    first, second = draw()
    assert frechet_standard_error(first, second, rng=3) == frechet_standard_error(first, second, rng=3)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return DigitsClassifier.load(tmp_path_factory.mktemp("cache"))


def test_classifier_is_deterministic_cached_and_accurate(classifier, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "cache0"
    cached = DigitsClassifier.load(folder)  # the fixture's cache: read, not retrained
    assert len(list(folder.glob("*.npz"))) == 1
    again = DigitsClassifier.train()
    for w, v, u in zip(classifier.weights, cached.weights, again.weights):
        np.testing.assert_array_equal(w, v)
        np.testing.assert_array_equal(w, u)  # same seed, same arithmetic: bitwise equal
    assert classifier.test_accuracy > 0.95  # held-out digits; measured 0.993
    images, labels = load_digits_images(return_labels=True)
    assert np.mean(classifier.predict(images) == labels) > 0.95


def test_classifier_distance_properties(classifier):
    images = load_digits_images()
    a, b = images[:800], images[800:1600]
    assert frechet_digits_distance(a, a, classifier) < 1e-10
    shifts = [frechet_digits_distance(a, np.clip(a + c, -1, 1), classifier) for c in (0.0, 0.1, 0.2, 0.4, 0.8)]
    assert shifts[0] < 1e-10 and np.all(np.diff(shifts) > 0)  # grows with a known brightness shift
    held_out = frechet_digits_distance(a, b, classifier)
    noisy = frechet_digits_distance(a, b + 0.5 * np.random.default_rng(0).standard_normal(b.shape), classifier)
    assert 0 < held_out < noisy
    # flat (n, 64) and image (n, 1, 8, 8) inputs are the same
    assert frechet_digits_distance(a.reshape(800, 64), b, classifier) == held_out


def test_pixel_diversity_and_vendi_score():
    x = np.tile(np.linspace(-1, 1, 64), (10, 1))
    assert pixel_diversity(x) < 1e-15  # std of equal values: round-off of the mean only
    signs = np.array([[1.0] * 64, [-1.0] * 64])
    assert pixel_diversity(signs) == 1.0  # std of {-1, 1} is 1 at every pixel
    np.testing.assert_allclose(vendi_score(x), 1.0, rtol=1e-12)  # all equal: one effective sample
    np.testing.assert_allclose(vendi_score(np.eye(7)), 7.0, rtol=1e-12)  # orthogonal rows: n
    clusters = np.repeat(np.array([[0.0, 0.0], [50.0, 50.0]]), 5, axis=0)
    np.testing.assert_allclose(vendi_score(clusters, "gaussian", bandwidth=1.0), 2.0, rtol=1e-12)
    images = load_digits_images(n=200, rng=0)
    assert 1.0 < vendi_score(images[:100]) < 100.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="features2"):
        frechet_distance(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least two rows"):
        frechet_distance(np.zeros((1, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="features1"):
        frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="cov2"):
        gaussian_frechet(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="images2"):
        frechet_digits_distance(np.zeros((3, 64)), np.zeros((3, 63)), classifier=DigitsClassifier([np.zeros(1)] * 6, 0))
    with pytest.raises(ValueError, match="kernel"):
        vendi_score(np.ones((3, 2)), kernel="linear")
    with pytest.raises(ValueError, match="non-zero rows"):
        vendi_score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="bandwidth"):
        vendi_score(np.ones((3, 2)), kernel="gaussian", bandwidth=-1.0)
    with pytest.raises(ValueError, match="at least two"):
        pixel_diversity(np.zeros((1, 4)))
