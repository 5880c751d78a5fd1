"""The scikit-learn estimator protocol, without scikit-learn: parameters, cloning, repr, fitted state.

:class:`ParamsMixin` gives any class whose ``__init__`` stores each keyword argument under its own
name the methods ``get_params`` / ``set_params`` and a short repr; scikit-learn's ``clone``,
``GridSearchCV`` and ``cross_val_score`` rely on exactly these. :class:`NotFittedError` is both a
``ValueError`` and an ``AttributeError``, as scikit-learn's is, so either ``except`` catches it; :func:`opdiff.backend.check_fitted`
raises it.
"""
import inspect

import numpy as np

__all__ = ["ParamsMixin", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted estimator is called before ``fit``."""


def _short(value, limit=60):
    """A compact repr of one parameter value (arrays by shape and dtype)."""
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ParamsMixin:
    """``get_params``, ``set_params`` and ``__repr__`` from the signature of ``__init__``.

    The subclass's ``__init__`` must store every argument unchanged under its own name and do
    nothing else (validation belongs in ``fit``), as scikit-learn requires.
    """

    @classmethod
    def _param_names(cls):
        """Names of the constructor's parameters, sorted (no ``*args`` / ``**kwargs``)."""
        signature = inspect.signature(cls.__init__)
        names = []
        for name, parameter in signature.parameters.items():
            if name == "self":
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}: estimators take no *args / **kwargs in __init__")
            names.append(name)
        return sorted(names)

    def get_params(self, deep=True):
        """Constructor parameters of this object.

        Parameters
        ----------
        deep : bool
            Also return the parameters of sub-objects that have ``get_params`` (``name__param``).

        Returns
        -------
        dict
        """
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update({f"{name}__{key}": item for key, item in value.get_params(deep=True).items()})
            params[name] = value
        return params

    def set_params(self, **params):
        """Set constructor parameters (``name`` or nested ``name__param``); returns self.

        Every name is checked before anything is set, so an unknown name leaves the object unchanged.

        Parameters
        ----------
        **params
            New values.

        Returns
        -------
        self
        """
        valid = set(self._param_names())
        nested = {}
        for key in params:
            head = key.split("__", 1)[0]
            if head not in valid:
                raise ValueError(f"{key}: not a parameter of {type(self).__name__}; expected one of {sorted(valid)}")
            if "__" in key and not hasattr(getattr(self, head), "set_params"):
                raise ValueError(f"{key}: {head} has no parameters to set")
        for key, value in params.items():
            head, _, rest = key.partition("__")
            if rest:
                nested.setdefault(head, {})[rest] = value
            else:
                setattr(self, head, value)
        for head, sub in nested.items():
            getattr(self, head).set_params(**sub)
        return self

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags (its model selection reads them; scikit-learn is imported only here).

        Returns
        -------
        sklearn.utils.Tags
        """
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    def __repr__(self):
        """``ClassName(param=value, ...)``, listing only the parameters that differ from their defaults."""
        signature = inspect.signature(type(self).__init__)
        shown = []
        for name in self._param_names():
            value = getattr(self, name, None)
            default = signature.parameters[name].default
            try:
                same = default is not inspect.Parameter.empty and bool(value == default)
            except Exception:  # arrays and objects without a boolean equality
                same = False
            if not same:
                shown.append(f"{name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"
