"""The estimator protocol of opdiff.backend.params, checked against scikit-learn's own machinery."""
import numpy as np
import pytest

from opdiff.backend import NotFittedError, ParamsMixin, check_fitted


class Inner(ParamsMixin):
    def __init__(self, scale=1.0):
        self.scale = scale


class Outer(ParamsMixin):
    def __init__(self, inner=None, alpha=0.5, grid=None):
        self.inner = inner
        self.alpha = alpha
        self.grid = grid


def test_get_params_lists_constructor_arguments_deep_and_shallow():
    est = Outer(inner=Inner(2.0), alpha=0.1)
    assert set(est.get_params(deep=False)) == {"inner", "alpha", "grid"}
    deep = est.get_params()
    assert deep["inner__scale"] == 2.0 and deep["alpha"] == 0.1


def test_set_params_sets_nested_values_and_rejects_unknown_names_without_change():
    est = Outer(inner=Inner())
    assert est.set_params(alpha=0.3, inner__scale=4.0) is est
    assert est.alpha == 0.3 and est.inner.scale == 4.0
    with pytest.raises(ValueError, match="beta: not a parameter of Outer"):
        est.set_params(alpha=0.9, beta=1)
    assert est.alpha == 0.3  # checked before anything is set
    with pytest.raises(ValueError, match="alpha__x: alpha has no parameters"):
        est.set_params(alpha__x=1)


def test_repr_shows_only_non_default_parameters_and_arrays_by_shape():
    assert repr(Outer()) == "Outer()"
    text = repr(Outer(alpha=0.2, grid=np.zeros((3, 4))))
    assert text == "Outer(alpha=0.2, grid=array(shape=(3, 4), dtype=float64))"


def test_sklearn_clone_gives_an_equal_unfitted_copy():
    from sklearn.base import clone

    est = Outer(inner=Inner(3.0), alpha=0.7)
    est.fitted_ = 1
    copy = clone(est)
    assert copy is not est and copy.inner is not est.inner
    assert copy.get_params()["inner__scale"] == 3.0 and copy.alpha == 0.7
    assert not hasattr(copy, "fitted_")


def test_not_fitted_error_is_a_value_and_attribute_error():
    est = Outer()
    with pytest.raises(NotFittedError, match="Outer is not fitted yet"):
        check_fitted(est, "data_")
    for kind in (ValueError, AttributeError):
        with pytest.raises(kind):
            check_fitted(est, ["data_"])
    est.data_ = np.zeros(2)
    check_fitted(est, "data_")


def test_varargs_constructor_is_refused():
    class Bad(ParamsMixin):
        def __init__(self, *args):
            self.args = args

    with pytest.raises(TypeError, match="no \\*args"):
        Bad().get_params()
