"""Image data shipped by scikit-learn: the 8 x 8 digits and natural-image patches.

Both come as ``(n, C, H, W)`` float arrays scaled to ``[-1, 1]`` (the DDPM convention); scikit-learn is an
optional dependency, imported lazily (``pip install opdiff[test]``).
"""
import numpy as np

from ..backend import as_generator, require_extra

#: Number of grey levels of the digits (pixel values 0..16).
DIGITS_LEVELS = 17


def random_subset(n, rng, *arrays):
    """The same ``n`` random rows (without replacement, in their original order) of each array.

    Parameters
    ----------
    n : int
        Between 1 and the number of rows.
    rng : None, int or numpy.random.Generator
    arrays : arrays with the same number of rows

    Returns
    -------
    list of arrays
    """
    total = arrays[0].shape[0]
    count = int(n)
    if count != n or not 1 <= count <= total:
        raise ValueError(f"n: expected an integer with 1 <= n <= {total}, got {n}")
    index = np.sort(as_generator(rng).choice(total, size=count, replace=False))
    return [array[index] for array in arrays]


def load_digits_images(n=None, digits=None, return_labels=False, rng=None):
    """The 1797 scikit-learn digits as ``(n, 1, 8, 8)`` images in ``[-1, 1]`` (``2 v / 16 - 1``).

    Parameters
    ----------
    n : int, optional
        Number of images (a random subset without replacement when smaller than the data set).
    digits : sequence of int, optional
        Keep only these classes.
    return_labels : bool
        Also return the ``(n,)`` labels.
    rng : None, int or Generator
        Randomness of the subset.

    Returns
    -------
    images : (n, 1, 8, 8) array
    labels : (n,) int array
        Only with ``return_labels=True``.
    """
    datasets = require_extra("sklearn.datasets")
    bunch = datasets.load_digits()
    images = bunch.images.astype(np.float64) / 8.0 - 1.0
    labels = bunch.target
    if digits is not None:
        keep = np.isin(labels, np.asarray(digits))
        if not np.any(keep):
            raise ValueError(f"digits: expected classes among 0..9, got {digits}")
        images, labels = images[keep], labels[keep]
    if n is not None:
        images, labels = random_subset(n, rng, images, labels)
    images = images[:, None]
    return (images, labels) if return_labels else images


def load_natural_patches(n=1000, size=8, grayscale=True, rng=None):
    """Random ``size x size`` patches of scikit-learn's two sample photographs, in ``[-1, 1]``.

    Parameters
    ----------
    n : int
        Number of patches.
    size : int
        Side of a patch in pixels.
    grayscale : bool
        Grey (ITU-R 601 luma) instead of RGB.
    rng : None, int or numpy.random.Generator
        Which photograph and where.

    Returns
    -------
    (n, 1, size, size) or (n, 3, size, size) array
    """
    datasets = require_extra("sklearn.datasets")
    n, size = int(n), int(size)
    if n < 1 or size < 1:
        raise ValueError(f"n, size: expected positive integers, got n={n}, size={size}")
    photos = [np.asarray(p, dtype=np.float64) / 127.5 - 1.0 for p in datasets.load_sample_images().images]
    rng = as_generator(rng)
    which = rng.integers(len(photos), size=n)
    out = np.empty((n, 3, size, size))
    for k, p in enumerate(which):
        photo = photos[p]
        if size > min(photo.shape[:2]):
            raise ValueError(f"size: expected at most {min(photo.shape[:2])}, got {size}")
        i = rng.integers(photo.shape[0] - size + 1)
        j = rng.integers(photo.shape[1] - size + 1)
        out[k] = photo[i:i + size, j:j + size].transpose(2, 0, 1)
    if grayscale:
        out = np.tensordot(np.array([0.299, 0.587, 0.114]), out, axes=([0], [1]))[:, None]
    return out


def band_noise(shape, band, n, rng=None):
    """White noise restricted to a band of radial frequencies, ``eps_[a, b]`` of SAGD (arXiv 2510.09660).

    The projection of ``N(0, I)`` onto the Fourier bins with ``a <= |f| <= b`` (``np.fft.fftfreq`` grid, cycles
    per pixel, both ends inclusive), rescaled to unit variance per pixel (divided by ``sqrt(m)``, ``m`` the
    fraction of bins in the band).

    Parameters
    ----------
    shape : (C, H, W) tuple
    band : (float, float)
        ``(a, b)`` with ``0 <= a <= b``.
    n : int
        Number of draws.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    (n, C, H, W) array
    """
    from ..linalg.fourier import FourierDiagonal, band_pass_weights

    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape: expected (C, H, W) with positive sizes, got {shape}")
    low, high = (float(v) for v in band)
    if not 0.0 <= low <= high:
        raise ValueError(f"band: expected 0 <= a <= b, got {band}")
    mask = band_pass_weights(shape[1], shape[2], low, high)
    if not np.any(mask):
        raise ValueError(f"band: no frequency of the {shape[1]} x {shape[2]} grid lies in {band}")
    projector = FourierDiagonal(shape, mask)
    white = as_generator(rng).standard_normal((int(n), int(np.prod(shape))))
    return (projector.apply(white) / np.sqrt(np.mean(projector.eigenvalues))).reshape((int(n),) + shape)


def corrupt_band(images, band, gamma=1.0, rng=None):
    """``x' = x + gamma eps_[a, b]``: images corrupted inside a frequency band (the selective-omission data of SAGD).

    Parameters
    ----------
    images : (n, C, H, W) array
    band : (float, float)
        ``(a, b)`` in cycles per pixel (see :func:`band_noise`).
    gamma : float
        Noise amplitude (per-pixel standard deviation of the added noise).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    (n, C, H, W) array
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or not np.all(np.isfinite(images)):
        raise ValueError(f"images: expected a finite (n, C, H, W) array, got shape {images.shape}")
    gamma = float(gamma)
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma: expected a finite amplitude >= 0, got {gamma}")
    return images + gamma * band_noise(images.shape[1:], band, images.shape[0], rng)
