"""Image data shipped by scikit-learn: the 8 x 8 digits and natural-image patches.

Both come as ``(n, C, H, W)`` float arrays scaled to ``[-1, 1]`` (the DDPM convention); scikit-learn is an
optional dependency, imported lazily (``pip install opdiff[test]``).
"""
import numpy as np

from ..backend import as_generator, require_extra

#: Number of grey levels of the digits (pixel values 0..16).
DIGITS_LEVELS = 17


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
        n = int(n)
        if not 1 <= n <= images.shape[0]:
            raise ValueError(f"n: expected 1 <= n <= {images.shape[0]}, got {n}")
        index = np.sort(as_generator(rng).choice(images.shape[0], size=n, replace=False))
        images, labels = images[index], labels[index]
    images = images[:, None]
    return (images, labels) if return_labels else images


def load_natural_patches(n=1000, size=8, grayscale=True, rng=None):
    """Random ``size x size`` patches of scikit-learn's two sample photographs, in ``[-1, 1]``.

    Returns ``(n, 1, size, size)`` (grey, ITU-R 601 luma) or ``(n, 3, size, size)`` images.
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
