"""Sample quality and diversity for images: a Frechet distance on the features of a fixed digits
classifier, pixel-wise diversity and the Vendi score.

The papers behind opdiff's image experiments (SAGD, arXiv 2510.09660; GFDM, arXiv 2310.17638) report FID:
the Frechet distance between Gaussians fitted to Inception-v3 features (Heusel et al., arXiv 1706.08500).
Inception is a deep network trained on ImageNet, not an 8 x 8 digit model; here the same distance is taken on
the penultimate layer of a small classifier of the built-in scikit-learn digits (:class:`DigitsClassifier`),
trained once, deterministically (fixed seed, full-batch Adam, float64), and cached. Its values are on their
own scale: comparable between models of these digits, not with any published FID.
"""
import hashlib
import os
import pathlib

import numpy as np

from ..backend import as_generator, check_count, check_points
from ..backend.optim import Adam
from ..backend.threads import single_threaded_blas

#: Hidden widths of the digits classifier (the last one is the feature dimension).
CLASSIFIER_WIDTHS = (96, 48)
#: Full-batch Adam steps of its training.
CLASSIFIER_STEPS = 250
#: Number of digits it is trained on (the rest, in a fixed permutation, measure its accuracy).
CLASSIFIER_TRAIN = 1500


def gaussian_frechet(mean1, cov1, mean2, cov2):
    """Frechet (2-Wasserstein squared) distance between ``N(mean1, cov1)`` and ``N(mean2, cov2)``.

    ``|m1 - m2|^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})``, the inner root through a symmetric
    eigendecomposition (no complex round-off as with a general ``sqrtm``).

    Parameters
    ----------
    mean1, mean2 : (k,) arrays
    cov1, cov2 : (k, k) symmetric positive semi-definite arrays

    Returns
    -------
    float
        Non-negative (negative round-off clipped to 0).
    """
    mean1, mean2 = np.asarray(mean1, dtype=np.float64), np.asarray(mean2, dtype=np.float64)
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
    k = mean1.shape[0]
    for name, value, shape in (("mean2", mean2, (k,)), ("cov1", cov1, (k, k)), ("cov2", cov2, (k, k))):
        if value.shape != shape or not np.all(np.isfinite(value)):
            raise ValueError(f"{name}: expected a finite array of shape {shape}, got {value.shape}")
    values, vectors = np.linalg.eigh(0.5 * (cov1 + cov1.T))
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root1 @ (0.5 * (cov2 + cov2.T)) @ root1
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0, None)))
    value = float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)
    return max(value, 0.0)


def _check_feature_sets(features1, features2):
    """Two float64 feature sets with the same number of columns and at least two rows each."""
    features1, features2 = check_points(features1, "features1"), check_points(features2, "features2")
    if features1.shape[1] != features2.shape[1]:
        raise ValueError(f"features2: expected {features1.shape[1]} features to match features1, "
                         f"got {features2.shape[1]}")
    if features1.shape[0] < 2 or features2.shape[0] < 2:
        raise ValueError("features1, features2: expected at least two rows each (a covariance is fitted)")
    return features1.astype(np.float64), features2.astype(np.float64)


def frechet_distance(features1, features2):
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    Parameters
    ----------
    features1 : (n, k) array
    features2 : (m, k) array
        At least two rows each (sample covariances, ``ddof=1``).

    Returns
    -------
    float
    """
    f1, f2 = _check_feature_sets(features1, features2)
    return gaussian_frechet(f1.mean(axis=0), np.atleast_2d(np.cov(f1, rowvar=False)),
                            f2.mean(axis=0), np.atleast_2d(np.cov(f2, rowvar=False)))


def frechet_standard_error(features1, features2, n_bootstrap=200, rng=None):
    """Bootstrap standard error of :func:`frechet_distance`: the spread of the distance over resamplings.

    Both sets are resampled with replacement (rows drawn independently), ``n_bootstrap`` times; the
    standard deviation of the resampled distances estimates the sampling noise of the distance between
    two finite sets, which is what decides whether two models' distances differ. (The resampled distances
    are biased upwards by ties; their spread is the estimate, not their mean.)

    Parameters
    ----------
    features1 : (n, k) array
    features2 : (m, k) array
        At least two rows each.
    n_bootstrap : int
        Number of resamplings (at least 2).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    float
    """
    features1, features2 = _check_feature_sets(features1, features2)
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap", minimum=2)
    rng = as_generator(rng)
    values = [frechet_distance(features1[rng.integers(features1.shape[0], size=features1.shape[0])],
                               features2[rng.integers(features2.shape[0], size=features2.shape[0])])
              for _ in range(n_bootstrap)]
    return float(np.std(values, ddof=1))


def default_cache_folder():
    """``$OPDIFF_CACHE`` when set, else ``~/.cache/opdiff`` (the folder of the cached classifier).

    Returns
    -------
    pathlib.Path
    """
    return pathlib.Path(os.environ.get("OPDIFF_CACHE", pathlib.Path.home() / ".cache" / "opdiff"))


def _flat_images(images, name="images"):
    arr = np.asarray(images)
    if arr.ndim == 4:
        arr = arr.reshape(arr.shape[0], -1)
    return check_points(arr, name, dim=64).astype(np.float64)


class DigitsClassifier:
    """A fixed MLP classifier of the scikit-learn 8 x 8 digits, whose last hidden layer gives features.

    ``tanh`` layers of widths :data:`CLASSIFIER_WIDTHS` and a softmax output, trained by full-batch Adam
    (:data:`CLASSIFIER_STEPS` steps, lr 1e-2, seed 0, float64) on :data:`CLASSIFIER_TRAIN` digits of a fixed
    permutation; the other 297 give :attr:`test_accuracy`. Use :meth:`load` (trains once, then reads the
    cache).

    Parameters
    ----------
    weights : list of arrays
        ``[W1 (64, 96), b1, W2 (96, 48), b2, W3 (48, 10), b3]``.
    test_accuracy : float
        Accuracy on the held-out digits.
    """

    def __init__(self, weights, test_accuracy):
        self.weights = [np.asarray(w, dtype=np.float64) for w in weights]
        self.test_accuracy = float(test_accuracy)

    @staticmethod
    def _forward(weights, x):
        """Hidden activations (list) and logits."""
        hidden = []
        h = x
        for k in range(0, len(weights) - 2, 2):
            h = np.tanh(h @ weights[k] + weights[k + 1])
            hidden.append(h)
        return hidden, h @ weights[-2] + weights[-1]

    @classmethod
    def train(cls):
        """Train the classifier from scratch (deterministic, about a second on one core).

        Returns
        -------
        DigitsClassifier
        """
        from ..datasets.images import load_digits_images

        images, labels = load_digits_images(return_labels=True)
        x = images.reshape(images.shape[0], -1)
        order = np.random.default_rng(0).permutation(x.shape[0])
        train, test = order[:CLASSIFIER_TRAIN], order[CLASSIFIER_TRAIN:]
        rng = np.random.default_rng(0)
        widths = (64,) + CLASSIFIER_WIDTHS + (10,)
        weights = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            weights += [rng.standard_normal((n_in, n_out)) / np.sqrt(n_in), np.zeros(n_out)]
        optimiser = Adam(weights, lr=1e-2)
        onehot = np.eye(10)[labels[train]]
        xt = x[train]
        with single_threaded_blas():  # small matrices: BLAS threads only add contention
            cls._fit(weights, optimiser, xt, onehot)
        accuracy = float(np.mean(np.argmax(cls._forward(weights, x[test])[1], axis=1) == labels[test]))
        return cls(weights, accuracy)

    @classmethod
    def _fit(cls, weights, optimiser, xt, onehot):
        """Full-batch Adam on the mean cross-entropy (hand-written backward pass), in place."""
        for _ in range(CLASSIFIER_STEPS):
            hidden, logits = cls._forward(weights, xt)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            grad = (probs - onehot) / xt.shape[0]  # d(mean cross-entropy)/d logits
            grads = [None] * len(weights)
            inputs = [xt] + hidden
            for k in range(len(weights) // 2 - 1, -1, -1):
                grads[2 * k], grads[2 * k + 1] = inputs[k].T @ grad, grad.sum(axis=0)
                if k:
                    grad = (grad @ weights[2 * k].T) * (1.0 - inputs[k] ** 2)
            optimiser.step(grads)

    @staticmethod
    def _cache_name():
        key = f"{CLASSIFIER_WIDTHS}-{CLASSIFIER_STEPS}-{CLASSIFIER_TRAIN}-tanh-adam1e-2-seed0".encode()
        return f"digits_classifier_{hashlib.sha1(key).hexdigest()[:12]}.npz"

    @classmethod
    def load(cls, cache=None):
        """The cached classifier, trained and written on first use.

        Parameters
        ----------
        cache : str or pathlib.Path, optional
            Folder of the cached weights (default :func:`default_cache_folder`); ``False`` trains without caching.

        Returns
        -------
        DigitsClassifier
        """
        if cache is False:
            return cls.train()
        folder = default_cache_folder() if cache is None else pathlib.Path(cache)
        path = folder / cls._cache_name()
        if path.is_file():
            with np.load(path) as stored:
                return cls([stored[f"w{k}"] for k in range(len(stored.files) - 1)], float(stored["test_accuracy"]))
        model = cls.train()
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(temporary, test_accuracy=model.test_accuracy, **{f"w{k}": w for k, w in enumerate(model.weights)})
        temporary.replace(path)
        return model

    def features(self, images):
        """Penultimate-layer features.

        Parameters
        ----------
        images : (n, 1, 8, 8) or (n, 64) array
            Digits in ``[-1, 1]``.

        Returns
        -------
        (n, 48) array
        """
        return self._forward(self.weights, _flat_images(images))[0][-1]

    def predict(self, images):
        """Predicted classes.

        Parameters
        ----------
        images : (n, 1, 8, 8) or (n, 64) array

        Returns
        -------
        (n,) int array
        """
        return np.argmax(self._forward(self.weights, _flat_images(images))[1], axis=1)


def frechet_digits_distance(images1, images2, classifier=None, cache=None):
    """Frechet distance between two sets of 8 x 8 digits on the features of :class:`DigitsClassifier`.

    Parameters
    ----------
    images1 : (n, 1, 8, 8) or (n, 64) array
    images2 : (m, 1, 8, 8) or (m, 64) array
        Values in ``[-1, 1]`` (the scale of :func:`opdiff.datasets.load_digits_images`).
    classifier : DigitsClassifier, optional
        Default: ``DigitsClassifier.load(cache)``.
    cache : str or pathlib.Path, optional
        Folder of the cached classifier.

    Returns
    -------
    float
    """
    images1, images2 = _flat_images(images1, "images1"), _flat_images(images2, "images2")
    classifier = DigitsClassifier.load(cache) if classifier is None else classifier
    return frechet_distance(classifier.features(images1), classifier.features(images2))


def pixel_diversity(samples):
    """Mean over pixels of the standard deviation across samples (0 when all samples are equal).

    Parameters
    ----------
    samples : (n, ...) array
        At least two samples.

    Returns
    -------
    float
    """
    arr = np.asarray(samples)
    flat = check_points(arr.reshape(arr.shape[0], -1) if arr.ndim > 2 else arr, "samples")
    if flat.shape[0] < 2:
        raise ValueError("samples: expected at least two samples")
    return float(np.mean(np.std(flat.astype(np.float64), axis=0)))


def vendi_score(samples, kernel="cosine", bandwidth=None):
    """Vendi score (Friedman and Dieng, arXiv 2210.02410): ``exp(-sum_i lambda_i log lambda_i)``.

    ``lambda_i`` are the eigenvalues of ``K / n`` for a similarity ``K`` with unit diagonal: the effective
    number of distinct samples, between 1 (all equal) and ``n`` (all orthogonal). On raw pixels it is the
    pixel Vendi score ``VS_p`` of GFDM.

    Parameters
    ----------
    samples : (n, ...) array
    kernel : {"cosine", "gaussian"}
        ``cosine``: ``<x_i, x_j> / (|x_i| |x_j|)`` (rows of norm 0 are rejected); ``gaussian``:
        ``exp(-|x_i - x_j|^2 / (2 h^2))``.
    bandwidth : float, optional
        ``h`` of the Gaussian kernel (default: the median pairwise distance).

    Returns
    -------
    float
    """
    arr = np.asarray(samples)
    x = check_points(arr.reshape(arr.shape[0], -1) if arr.ndim > 2 else arr, "samples").astype(np.float64)
    check_count(x.shape[0], "samples")
    if kernel == "cosine":
        norms = np.linalg.norm(x, axis=1)
        if np.any(norms == 0):
            raise ValueError("samples: the cosine kernel needs non-zero rows")
        unit = x / norms[:, None]
        similarity = unit @ unit.T
    elif kernel == "gaussian":
        squared = np.maximum(np.sum(x**2, 1)[:, None] + np.sum(x**2, 1)[None] - 2 * x @ x.T, 0.0)
        if bandwidth is None:
            off = squared[np.triu_indices(x.shape[0], 1)]
            bandwidth = float(np.sqrt(np.median(off))) if off.size and np.median(off) > 0 else 1.0
        elif not (np.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"bandwidth: expected a positive number, got {bandwidth}")
        similarity = np.exp(-squared / (2.0 * bandwidth**2))
    else:
        raise ValueError(f"kernel: expected 'cosine' or 'gaussian', got {kernel!r}")
    values = np.clip(np.linalg.eigvalsh(similarity / x.shape[0]), 0.0, None)
    values = values[values > 0]
    return float(np.exp(-np.sum(values * np.log(values))))
