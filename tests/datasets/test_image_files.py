"""Round trips of the image-file loaders on small files written here in the real formats."""
import gzip
import pickle
import struct

import numpy as np
import pytest

from opdiff.datasets.image_files import load_cifar10, load_mnist, read_cifar_batch, read_idx


def write_idx(path, array, type_code, compress=False):
    """The IDX layout, written independently of the loader: magic, big-endian sizes, big-endian data."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("type_code, values", [(0x08, np.arange(24) % 256), (0x0B, np.arange(-12, 12) * 1000),
                                               (0x0D, np.linspace(-1, 1, 24)), (0x0E, np.linspace(-3, 3, 24))])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, type_code, values, compress):
    array = values.reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array, type_code, compress)
    read = read_idx(path)
    assert read.shape == (2, 3, 4) and read.dtype.isnative
    # float32 storage rounds to 2^-24 relative; the integer and float64 types are exact
    np.testing.assert_allclose(read, array, rtol=6e-8 if type_code == 0x0D else 0, atol=0)


def _mnist_folder(folder, n, compress, rng):
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images, 0x08, compress)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels, 0x08, compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_round_trip_and_scaling(tmp_path, compress):
    images, labels = _mnist_folder(tmp_path, 7, compress, np.random.default_rng(0))
    levels, read_labels = load_mnist(tmp_path, scale=False, return_labels=True)
    assert levels.shape == (7, 1, 28, 28) and levels.dtype == np.uint8
    np.testing.assert_array_equal(levels[:, 0], images)
    np.testing.assert_array_equal(read_labels, labels)
    scaled = load_mnist(tmp_path)
    assert scaled.dtype == np.float64
    np.testing.assert_array_equal(scaled[:, 0], images / 127.5 - 1.0)  # exact: one division, one subtraction
    subset, subset_labels = load_mnist(tmp_path, n=3, return_labels=True, rng=1)
    # a subset is made of rows of the full set, in file order, with their labels
    rows = [int(np.flatnonzero(np.all(scaled == image, axis=(1, 2, 3)))[0]) for image in subset]
    assert rows == sorted(rows) and np.array_equal(subset_labels, labels[rows])


def test_mnist_errors_name_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_mnist(tmp_path)
    _mnist_folder(tmp_path, 4, False, np.random.default_rng(1))
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, split="validation")
    with pytest.raises(ValueError, match="n: expected"):
        load_mnist(tmp_path, n=5)
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    array = np.zeros((2, 2), dtype=np.uint8)
    write_idx(tmp_path / "short.idx", array, 0x08)
    (tmp_path / "short.idx").write_bytes((tmp_path / "short.idx").read_bytes()[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(tmp_path / "short.idx")


def _cifar_batch(path, n, rng):
    """A batch as CIFAR-10 ships it: bytes keys, uint8 (n, 3072) data, labels as a list."""
    data = rng.integers(0, 256, size=(n, 3072)).astype(np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    batch = {b"batch_label": b"testing batch", b"labels": labels, b"data": data,
             b"filenames": [f"img_{k}.png".encode() for k in range(n)]}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    return data, labels


def test_load_cifar10_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    parts = [_cifar_batch(tmp_path / f"data_batch_{k}", 3, rng) for k in range(1, 6)]
    test_data, test_labels = _cifar_batch(tmp_path / "test_batch", 4, rng)
    levels, labels = load_cifar10(tmp_path, scale=False, return_labels=True)
    assert levels.shape == (15, 3, 32, 32) and levels.dtype == np.uint8
    expected = np.concatenate([p[0] for p in parts])
    # channel-major layout: the first 1024 values are the red plane, row by row
    np.testing.assert_array_equal(levels[:, 0].reshape(15, -1), expected[:, :1024])
    np.testing.assert_array_equal(levels[:, 2, 31, 31], expected[:, 3071])
    np.testing.assert_array_equal(labels, sum((p[1] for p in parts), []))
    test = load_cifar10(tmp_path, split="test")
    np.testing.assert_array_equal(test.reshape(4, -1), test_data / 127.5 - 1.0)
    assert read_cifar_batch(tmp_path / "test_batch")[1].tolist() == test_labels


def test_cifar_unpickler_refuses_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))

    with open(tmp_path / "test_batch", "wb") as handle:
        pickle.dump({b"data": Payload(), b"labels": []}, handle)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        read_cifar_batch(tmp_path / "test_batch")
    with open(tmp_path / "wrong", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 10), dtype=np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(ValueError, match="3072"):
        read_cifar_batch(tmp_path / "wrong")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path)
