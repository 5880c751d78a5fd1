"""Toy data sets: shapes, reproducibility, support."""
import numpy as np
import pytest

from opdiff.datasets import TOYS, checkerboard, make_toy


@pytest.mark.parametrize("name", sorted(TOYS))
def test_shapes_and_seeds(name):
    a, b = make_toy(name, 500, rng=3), make_toy(name, 500, rng=3)
    assert a.shape == (500, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, make_toy(name, 500, rng=4))


def test_checkerboard_occupies_alternate_squares():
    x = checkerboard(20_000, rng=0)
    assert np.all(np.abs(x) <= 4)
    cells = (np.floor(x[:, 0] / 2) + np.floor(x[:, 1] / 2)) % 2
    assert np.all(cells == cells[0])  # every point on squares of one colour


def test_bad_input():
    with pytest.raises(ValueError, match="name"):
        make_toy("unknown", 10)
    with pytest.raises(ValueError, match="n"):
        make_toy("moons", 0)
