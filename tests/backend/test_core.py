"""Namespace dispatch, dtype policy, random generators and the chunk budget."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opdiff.backend import (DEFAULT_DTYPE, as_float_array, as_generator, chunk_budget, chunk_rows, get_chunk_bytes,
                            get_namespace, is_cupy_array, result_dtype, set_chunk_bytes, to_numpy)


def test_namespace_is_numpy_for_numpy_and_scalars():
    assert get_namespace(np.zeros(2), 1.0, None) is np
    assert get_namespace() is np
    assert not is_cupy_array(np.zeros(2))
    x = np.arange(3.0)
    assert to_numpy(x) is x
    assert to_numpy(2.0).shape == ()


def test_mixed_namespaces_are_rejected():
    class FakeCupy:  # an object whose type lives in a module called "cupy"
        shape = (1,)

    FakeCupy.__module__ = "cupy._core"
    assert is_cupy_array(FakeCupy())
    with pytest.raises(TypeError, match="arrays: mixed NumPy and CuPy arrays"):
        get_namespace(np.zeros(1), FakeCupy())


def test_result_dtype_policy():
    f32, f64 = np.zeros(2, np.float32), np.zeros(2)
    assert result_dtype(f32) == np.float32
    assert result_dtype(f32, 0.5) == np.float32  # a Python float does not upcast float32
    assert result_dtype(f32, f64) == np.float64
    assert result_dtype(np.arange(3)) == DEFAULT_DTYPE
    assert as_float_array(f32).dtype == np.float32
    assert as_float_array(np.arange(3)).dtype == np.float64
    assert as_float_array(f32, dtype=np.float64).dtype == np.float64


def test_as_generator():
    a, b = as_generator(3), as_generator(3)
    assert a.normal() == b.normal()
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    assert isinstance(as_generator(None), np.random.Generator)
    with pytest.raises(ValueError, match="rng: a seed must be non-negative, got -1"):
        as_generator(-1)
    with pytest.raises(TypeError, match="rng: expected None, an int seed or numpy.random.Generator, got bool"):
        as_generator(True)
    with pytest.raises(TypeError, match="got RandomState"):
        as_generator(np.random.RandomState(0))


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 500), row_bytes=st.integers(1, 5000), budget=st.integers(1024, 100000))
def test_chunk_rows_cover_each_row_once_within_budget(n_rows, row_bytes, budget):
    slices = list(chunk_rows(n_rows, row_bytes, budget))
    covered = np.concatenate([np.arange(n_rows)[s] for s in slices])
    np.testing.assert_array_equal(covered, np.arange(n_rows))
    for s in slices:
        assert (s.stop - s.start) == 1 or (s.stop - s.start) * row_bytes <= budget


def test_chunk_budget_context_and_errors():
    before = get_chunk_bytes()
    with chunk_budget(4096):
        assert get_chunk_bytes() == 4096
    assert get_chunk_bytes() == before
    with pytest.raises(ValueError, match="n_bytes: the chunk budget must be at least 1024 bytes, got 10"):
        set_chunk_bytes(10)
    assert get_chunk_bytes() == before
