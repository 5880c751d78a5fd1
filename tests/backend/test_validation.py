"""Validation helpers: every error names the argument, the expectation and what was given."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opdiff.backend import (check_choice, check_finite, check_fitted, check_points, check_positive, check_time,
                            require_extra)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), d=st.integers(1, 4), dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_check_points_shapes_and_dtypes(n, d, dtype):
    x = np.ones((n, d), dtype=dtype)
    out = check_points(x, "x", dim=d)
    assert out.shape == (n, d)
    assert out.dtype == (np.float32 if dtype == np.float32 else np.float64)
    if dtype != np.int64:
        assert out is x or np.shares_memory(out, x)  # no copy of a valid float array


def test_check_points_errors():
    with pytest.raises(ValueError, match="x: expected an array, got None"):
        check_points(None, "x")
    with pytest.raises(TypeError, match="x: expected a real numeric array, got dtype"):
        check_points(np.array([["a"]]), "x")
    with pytest.raises(ValueError, match=r"x: expected a 2-D array, got shape \(3,\)"):
        check_points(np.zeros(3), "x")
    with pytest.raises(ValueError, match="x: expected at least one point"):
        check_points(np.zeros((0, 2)), "x")
    with pytest.raises(ValueError, match=r"X: expected trailing shape \(3,\), got shape \(2, 2\)"):
        check_points(np.zeros((2, 2)), "X", dim=3)
    with pytest.raises(ValueError, match="x: expected finite values, found 2 non-finite"):
        check_points(np.array([[np.nan, np.inf]]), "x")
    assert check_points(np.zeros(3), "x", allow_1d=True).shape == (1, 3)


def test_check_time():
    assert check_time(0.5, "t", 0.0, 1.0).shape == ()
    assert check_time([0.5, 1.0], "t", 0.0, 1.0, n=2).shape == (2,)
    assert check_time(0.0, "t", 0.0, 1.0, include_min=True) == 0.0
    with pytest.raises(ValueError, match=r"t: expected times in \(0.0, 1.0\], got 0.0"):
        check_time(0.0, "t", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"t: expected times in \[0.0, 1.0\], got 1.5"):
        check_time([0.5, 1.5], "t", 0.0, 1.0, include_min=True)
    with pytest.raises(ValueError, match="t: expected finite times"):
        check_time(np.nan, "t")
    with pytest.raises(ValueError, match=r"t: expected a float or a 1-D array, got shape \(1, 1\)"):
        check_time([[0.5]], "t")
    with pytest.raises(ValueError, match=r"t: expected a float or an array of shape \(3,\), got shape \(2,\)"):
        check_time([0.5, 0.5], "t", n=3)


def test_scalar_checks():
    assert check_positive(2, "sigma") == 2.0
    assert check_positive(0, "rate", strict=False) == 0.0
    with pytest.raises(ValueError, match="sigma: expected a positive finite number, got 0"):
        check_positive(0, "sigma")
    with pytest.raises(ValueError, match="rate: expected a non-negative finite number"):
        check_positive(-1, "rate", strict=False)
    with pytest.raises(TypeError, match="sigma: expected a real number, got str"):
        check_positive("a", "sigma")
    assert check_choice("a", "mode", {"a", "b"}) == "a"
    with pytest.raises(ValueError, match=r"mode: expected one of \['a', 'b'\], got 'c'"):
        check_choice("c", "mode", {"a", "b"})
    with pytest.raises(ValueError, match="x: expected finite values, found 1"):
        check_finite(np.array([1.0, np.nan]), "x")


def test_check_fitted_and_require_extra():
    class Estimator:
        data_ = None

    with pytest.raises(ValueError, match="Estimator is not fitted yet: call fit"):
        check_fitted(Estimator(), "data_")
    fitted = Estimator()
    fitted.data_ = np.zeros(1)
    check_fitted(fitted, ["data_"])
    assert require_extra("numpy") is np
    with pytest.raises(ImportError, match=r"pip install opdiff\[gpu\]"):
        require_extra("cupy.__definitely_missing__")


def test_missing_data_extra_is_named(monkeypatch):
    """The built-in image data need scikit-learn: without it the error names the [data] extra."""
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # a None entry makes the import fail
    with pytest.raises(ImportError, match=r"opdiff\[data\]"):
        require_extra("sklearn.datasets")
