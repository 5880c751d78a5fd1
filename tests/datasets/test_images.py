"""Image data sets from scikit-learn."""
import numpy as np
import pytest

from opdiff.datasets import load_digits_images, load_natural_patches


def test_digits_shape_range_and_subsets():
    images, labels = load_digits_images(return_labels=True)
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() == -1.0 and images.max() == 1.0
    # grey levels 0..16 map to the 17 values -1 + k/8
    np.testing.assert_allclose(np.unique(images), -1 + np.arange(17) / 8)
    sub, lab = load_digits_images(n=50, digits=[0, 1], return_labels=True, rng=0)
    assert sub.shape == (50, 1, 8, 8) and set(lab) <= {0, 1}
    # each drawn image is a row of the full set carrying the same label
    flat, sub_flat = images.reshape(1797, -1), sub.reshape(50, -1)
    for row, label in zip(sub_flat, lab):
        assert label in labels[np.all(flat == row, axis=1)]
    np.testing.assert_array_equal(sub, load_digits_images(n=50, digits=[0, 1], rng=0))


def test_natural_patches():
    grey = load_natural_patches(20, size=8, rng=1)
    colour = load_natural_patches(20, size=8, grayscale=False, rng=1)
    assert grey.shape == (20, 1, 8, 8) and colour.shape == (20, 3, 8, 8)
    assert -1 <= colour.min() and colour.max() <= 1
    np.testing.assert_allclose(grey[:, 0], np.tensordot([0.299, 0.587, 0.114], colour, axes=([0], [1])))
    # natural images: neighbouring pixels are strongly correlated
    corr = np.corrcoef(grey[:, 0, :, :-1].ravel(), grey[:, 0, :, 1:].ravel())[0, 1]
    assert corr > 0.5


def test_bad_inputs():
    with pytest.raises(ValueError, match="n: expected"):
        load_digits_images(n=0)
    with pytest.raises(ValueError, match="digits"):
        load_digits_images(digits=[12])
    with pytest.raises(ValueError, match="size"):
        load_natural_patches(2, size=1000)


def test_band_noise_lives_in_its_band_with_unit_variance():
    from opdiff.datasets.images import band_noise, corrupt_band
    from opdiff.linalg.fourier import radial_frequency

    noise = band_noise((1, 8, 8), (0.4, 0.5), 4000, rng=0)
    r = radial_frequency(8, 8)
    inside = (r >= 0.4) & (r <= 0.5)
    power = np.abs(np.fft.fft2(noise[:, 0])) ** 2
    # outside the band only FFT round-off is left (relative 1e-30 of the in-band power)
    assert power[:, ~inside].max() < 1e-24 * power[:, inside].mean()
    # per-pixel variance 1: Monte Carlo over 4000 x 64 values with correlated pixels (10 bins): 5 s.e. ~ 0.03
    assert abs(noise.var() - 1.0) < 0.04
    images = load_digits_images(n=5, rng=0)
    np.testing.assert_allclose(corrupt_band(images, (0.4, 0.5), 0.5, rng=3),
                               images + 0.5 * band_noise((1, 8, 8), (0.4, 0.5), 5, rng=3), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="band: no frequency"):
        band_noise((1, 8, 8), (0.01, 0.1), 2)
    with pytest.raises(ValueError, match="band"):
        band_noise((1, 8, 8), (0.5, 0.4), 2)
    with pytest.raises(ValueError, match="gamma"):
        corrupt_band(images, (0.4, 0.5), -1.0)
    with pytest.raises(ValueError, match="images"):
        corrupt_band(images[:, 0], (0.4, 0.5))
