"""Shared pieces of the image experiments on the 8 x 8 digits (MDM, SAGD, GFDM figure modules).

Networks are opdiff's torch-free MLPs, trained by :class:`opdiff.neural.TrainingLoop` (Adam, a weight average,
``.npz`` checkpoints that double as the weight cache under ``paper_figures.cache_dir``: a second run only
plots).
"""
import pathlib

import numpy as np

from opdiff.backend.threads import single_threaded_blas
from opdiff.datasets import load_digits_images
from opdiff.metrics import frechet_distance, frechet_standard_error
from opdiff.neural import TrainingLoop
from opdiff.neural.training import data_checksum, read_checkpoint
from paper_figures import check_size

#: Run sizes shared by the three modules: training steps, MLP widths, batch, samples drawn, sampler steps.
SIZES = {
    "test": dict(n_steps=300, hidden=(128, 128), batch_size=64, n_samples=60, n_sampler=12, n_train=300, n_test=60),
    "quick": dict(n_steps=700, hidden=(256, 256), batch_size=128, n_samples=400, n_sampler=60, n_train=1500,
                  n_test=297),
    "full": dict(n_steps=20000, hidden=(512, 512, 512), batch_size=256, n_samples=2000, n_sampler=200,
                 n_train=1500, n_test=297),
}
#: Adam step size and weight-average decay of every network here.
LR, EMA_DECAY = 2e-3, 0.995


def digits_split(n_train, n_test, seed=0):
    """Training and held-out digits ``(n, 1, 8, 8)`` in ``[-1, 1]`` from one fixed permutation.

    Parameters
    ----------
    n_train, n_test : int
    seed : int

    Returns
    -------
    train : (n_train, 1, 8, 8) array
    test : (n_test, 1, 8, 8) array
    """
    images = load_digits_images()
    order = np.random.default_rng(seed).permutation(images.shape[0])
    return images[order[:n_train]], images[order[n_train:n_train + n_test]]


def train(network, step_function, n_steps, cache_file, fingerprint, seed):
    """Train ``network`` with ``step_function`` (or read the finished run from ``cache_file``).

    Parameters
    ----------
    network : object
        ``parameters()``, ``gradients()`` (an MLP or a wrapper holding more arrays).
    step_function : callable
        ``step_function(network, step, rng) -> loss``, filling the network's gradients.
    n_steps : int
    cache_file : pathlib.Path
        Checkpoint of the run (resumed when its settings match ``fingerprint``).
    fingerprint : dict
    seed : int

    Returns
    -------
    TrainingLoop
        ``average`` is the weight-averaged network, ``losses`` the loss of every step.
    """
    rng = np.random.default_rng(seed)
    loop = TrainingLoop(network, LR, EMA_DECAY, fingerprint, rng.bit_generator.state)
    if cache_file.exists():
        try:
            rng = loop.restore(read_checkpoint(cache_file, fingerprint))
        except ValueError:  # written with other settings: train afresh
            loop = TrainingLoop(network, LR, EMA_DECAY, fingerprint, rng.bit_generator.state)
    with single_threaded_blas():  # small matrices: BLAS threads only add contention on two cores
        loop.run(n_steps, step_function, rng, checkpoint=cache_file, checkpoint_every=max(n_steps // 4, 1))
    return loop


def sample_distance(samples, reference, classifier, seed=0):
    """Frechet distance of ``samples`` to ``reference`` on the digits classifier's features, with its bootstrap
    standard error (:func:`opdiff.metrics.frechet_standard_error`).

    Parameters
    ----------
    samples, reference : (n, 64) or (n, 1, 8, 8) arrays
    classifier : DigitsClassifier
    seed : int

    Returns
    -------
    dict
        ``{"distance": float, "distance_standard_error": float}``.
    """
    features, reference_features = classifier.features(samples), classifier.features(reference)
    return {"distance": frechet_distance(features, reference_features),
            "distance_standard_error": frechet_standard_error(features, reference_features, rng=seed)}


def differ(value, other, error, other_error):
    """Whether two independent estimates differ by more than twice their combined standard error.

    Parameters
    ----------
    value, other, error, other_error : float

    Returns
    -------
    bool
    """
    return abs(value - other) > 2.0 * np.hypot(error, other_error)


def fingerprint_of(label, process, X, size, **extra):
    """The settings a cached run must match: label, process repr, data checksum, run size, extras.

    Parameters
    ----------
    label : str
    process : object
    X : array
    size : dict
        The entry of :data:`SIZES`.
    extra
        JSON-serialisable settings.

    Returns
    -------
    dict
    """
    return dict(label=label, process=repr(process), data=data_checksum(X), n_steps=size["n_steps"],
                hidden=list(size["hidden"]), batch_size=size["batch_size"], lr=LR, ema=EMA_DECAY, **extra)


def image_rows(rows, labels, ax, clip=(-1.0, 1.0), per_row=10):
    """Draw rows of 8 x 8 images on ``ax`` with a label at the left of each row.

    Parameters
    ----------
    rows : list of (m, 64) or (m, 1, 8, 8) arrays
        One entry per row (the first ``per_row`` images are shown).
    labels : list of str
    ax : matplotlib Axes
    clip : (float, float)
        Grey range (``[-1, 1]``: the scale of the digits).
    per_row : int
    """
    gap = np.full((8, 1), np.nan)
    lines = []
    for images in rows:
        images = np.asarray(images).reshape(-1, 8, 8)[:per_row]
        line = np.concatenate(sum(([im, gap] for im in images), [])[:-1], axis=1)
        lines += [line, np.full((1, line.shape[1]), np.nan)]
    grid = np.concatenate(lines[:-1])
    ax.imshow(np.clip(grid, *clip), cmap="gray_r", vmin=clip[0], vmax=clip[1], interpolation="nearest")
    ax.set_yticks([4 + 9 * k for k in range(len(labels))], labels, fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def output_folder(out_dir, size):
    """The validated run size and the (created) output folder.

    Parameters
    ----------
    out_dir : str or pathlib.Path
    size : {"test", "quick", "full"}

    Returns
    -------
    size : str
    out : pathlib.Path
    """
    size = check_size(size)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return size, out


def merged_legend(ax, twin, **options):
    """One legend for an axes and its twin, below the axes (off the data).

    Parameters
    ----------
    ax, twin : matplotlib Axes
    options
        Keyword arguments of ``Axes.legend`` (``bbox_to_anchor``, ``ncol``, ...).
    """
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = twin.get_legend_handles_labels()
    settings = dict(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.14), frameon=False)
    settings.update(options)
    ax.legend(handles + more_handles, labels + more_labels, **settings)


def note(ax, text):
    """A boxed note in the top-left corner of ``ax`` (what agrees or disagrees with the paper).

    Parameters
    ----------
    ax : matplotlib Axes
    text : str
    """
    ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=8,
            bbox=dict(facecolor="white", alpha=0.85, edgecolor="0.7"))
