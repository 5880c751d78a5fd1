"""Loaders for the standard image files a user already has: MNIST / Fashion-MNIST IDX files and CIFAR-10.

Nothing is downloaded: every loader takes a path. Images come back as ``(n, C, H, W)`` float64 arrays
scaled to ``[-1, 1]`` (``2 v / 255 - 1``, the DDPM convention of :mod:`opdiff.datasets.images`), or as the
raw ``uint8`` levels with ``scale=False`` (for bits/dim, which needs the integer levels).

Formats
-------
IDX (LeCun's MNIST format, also used by Fashion-MNIST): a big-endian header ``0, 0, type code,
number of dimensions``, one big-endian ``uint32`` size per dimension, then the values in C order.
Files ending in ``.gz`` (or starting with the gzip magic bytes) are decompressed on the fly.

CIFAR-10 "python version": pickled dicts with ``b"data"`` (``(10000, 3072)`` ``uint8``, channel-major
``R, G, B`` planes of 32 x 32) and ``b"labels"``, one file per batch (``data_batch_1`` ... ``data_batch_5``,
``test_batch``). They are read with an unpickler that only rebuilds NumPy arrays, lists, dicts and
strings, so that a file from an untrusted source cannot run code.
"""
import gzip
import io
import pathlib
import pickle
import struct

import numpy as np

from .images import random_subset

#: IDX type codes and their big-endian NumPy dtypes.
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

#: File name stems of the MNIST / Fashion-MNIST distribution, by split.
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

#: CIFAR-10 batch file names, by split.
CIFAR10_FILES = {"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)}


def _read_bytes(path, name="path"):
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no file at {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{name}: {path} is not a valid gzip file ({error})") from None
    return raw


def read_idx(path):
    """Read one IDX file (optionally gzipped) into a NumPy array of its stored type.

    Parameters
    ----------
    path : str or pathlib.Path
        An IDX file such as ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    array
        Shape given by the header (``(n, 28, 28)`` for MNIST images, ``(n,)`` for labels), native byte order.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"path: {path} is not an IDX file (expected the magic bytes 0, 0, type, ndim)")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path: {path} has a truncated IDX header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(f"path: {path} holds {len(raw) - header} data bytes, the header {shape} needs "
                         f"{count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder, stem):
    """``folder/stem``, ``folder/stem.gz``, or the same with ``.idx`` for ``-idx`` (both spellings are in use)."""
    candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for candidate in candidates:
        if (folder / candidate).is_file():
            return folder / candidate
    raise FileNotFoundError(f"path: none of {candidates} in {folder}")


def _scaled(levels, scale, n, rng, labels):
    """Subset (without replacement, order kept), scale to ``[-1, 1]``; the shared tail of the loaders."""
    if n is not None:
        levels, labels = random_subset(n, rng, levels, labels)
    images = levels.astype(np.float64) / 127.5 - 1.0 if scale else levels
    return images, labels


def _check_split(split, files):
    if split not in files:
        raise ValueError(f"split: expected one of {sorted(files)}, got {split!r}")


def load_mnist(path, split="train", n=None, scale=True, return_labels=False, rng=None):
    """MNIST or Fashion-MNIST (same file layout) from a folder of IDX files.

    Parameters
    ----------
    path : str or pathlib.Path
        Folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]`` (and ``t10k-*``
        for the test split).
    split : {"train", "test"}
    n : int, optional
        Number of images (a random subset without replacement, in file order).
    scale : bool
        ``True``: float64 in ``[-1, 1]``; ``False``: the ``uint8`` levels ``0..255``.
    return_labels : bool
        Also return the ``(n,)`` labels.
    rng : None, int or numpy.random.Generator
        Randomness of the subset.

    Returns
    -------
    images : (n, 1, 28, 28) array
    labels : (n,) int array
        Only with ``return_labels=True``.
    """
    _check_split(split, MNIST_FILES)
    folder = pathlib.Path(path)
    images_stem, labels_stem = MNIST_FILES[split]
    levels = read_idx(_find(folder, images_stem))
    labels = read_idx(_find(folder, labels_stem)).astype(np.int64)
    if levels.ndim != 3 or levels.dtype != np.uint8:
        raise ValueError(f"path: expected uint8 images (n, H, W) in the IDX file, got {levels.dtype} {levels.shape}")
    if labels.shape != (levels.shape[0],):
        raise ValueError(f"path: {levels.shape[0]} images but labels of shape {labels.shape}")
    images, labels = _scaled(levels[:, None], scale, n, rng, labels)
    return (images, labels) if return_labels else images


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds only NumPy arrays (and builtin containers): no other global can be loaded."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"path: refusing to load {module}.{name} from a CIFAR-10 pickle")


def read_cifar_batch(path):
    """One CIFAR-10 python batch file: ``(levels (m, 3, 32, 32) uint8, labels (m,) int64)``.

    Parameters
    ----------
    path : str or pathlib.Path
        A pickled batch (``data_batch_1``, ``test_batch``, ...), optionally gzipped.

    Returns
    -------
    levels : (m, 3, 32, 32) uint8 array
    labels : (m,) int64 array
    """
    raw = _read_bytes(path)
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"path: {path} is not a CIFAR-10 python batch ({error})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"path: expected a pickled dict in {path}, got {type(batch).__name__}")
    batch = {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"path: expected the keys 'data' and 'labels' in {path}, got {sorted(batch)}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"path: expected uint8 data of shape (m, 3072) in {path}, got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"path: {data.shape[0]} images but labels of shape {labels.shape} in {path}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(path, split="train", n=None, scale=True, return_labels=False, rng=None):
    """CIFAR-10 from the folder of its python batches (``cifar-10-batches-py``).

    Parameters
    ----------
    path : str or pathlib.Path
        Folder holding ``data_batch_1`` ... ``data_batch_5`` (train) and ``test_batch`` (test).
    split, n, scale, return_labels, rng
        As :func:`load_mnist`.

    Returns
    -------
    images : (n, 3, 32, 32) array
    labels : (n,) int array
        Only with ``return_labels=True``.
    """
    _check_split(split, CIFAR10_FILES)
    folder = pathlib.Path(path)
    parts = []
    for name in CIFAR10_FILES[split]:
        file = folder / name if (folder / name).is_file() else folder / (name + ".gz")
        if not file.is_file():
            raise FileNotFoundError(f"path: no CIFAR-10 batch {name} in {folder}")
        parts.append(read_cifar_batch(file))
    levels = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    images, labels = _scaled(levels, scale, n, rng, labels)
    return (images, labels) if return_labels else images
