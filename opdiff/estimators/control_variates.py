"""Zero-mean operator control variates for score-matching Monte Carlo estimates.

For an eigenfunction ``g`` of the generator, ``L g = lambda g``, the semigroup acts in closed form,
``P_t g = exp(lambda t) g``, and ``E[g(X_t) | X_0] = P_t g(X_0)``. Hence

    Z_g = g(X_t) - exp(lambda t) g(X_0)

has mean zero under every forward pair ``(X_0, X_t)``, whatever the data law, and so has
``f(X_0) Z_g`` for any function ``f`` of the start (condition on ``X_0``); with a ``multiplier_basis``
the controls are ``{Z_g} U {f_j(X_0) Z_g}``, which also capture the cross terms between ``X_0`` and
``X_t`` of the DSM integrand. Subtracting
``beta^T Z`` with the optimal ``beta = Cov(Z)^{-1} Cov(Z, Y)`` from per-sample loss (or gradient)
terms ``Y`` leaves the expectation unchanged and divides the variance by
``1 / (1 - R^2)``, ``R^2`` the squared multiple correlation of ``Y`` on ``Z``.
``beta`` is estimated on the same samples (bias ``O(k / n)`` for ``k`` controls); pass
``split=True`` to estimate it on one half and apply it on the other (unbiased).
"""
from typing import NamedTuple

import numpy as np

from ..backend import ParamsMixin, check_finite, check_points, check_time
from .losses import LossEstimate


class ControlVariateResult(NamedTuple):
    """A control-variate corrected Monte Carlo mean.

    Attributes
    ----------
    estimate : float or (p,) array
    standard_error : float or (p,) array
    coefficients : (k,) or (k, p) array
        The optimal ``beta``.
    variance_reduction : float
        ``Var(Y) / Var(Y - beta^T Z)`` (summed over components for vector ``Y``).
    plain_estimate, plain_standard_error : float or (p,) array
        Without control variates.
    """

    estimate: object
    standard_error: object
    coefficients: object
    variance_reduction: float
    plain_estimate: object
    plain_standard_error: object


def optimal_coefficients(samples, controls, ridge=1e-12):
    """``beta = Cov(Z)^{-1} Cov(Z, Y)`` by least squares on centred data.

    Parameters
    ----------
    samples : (n,) or (n, p) array
    controls : (n, k) array
    ridge : float
        Relative ridge on the diagonal of ``Cov(Z)`` (times its mean diagonal).

    Returns
    -------
    (k,) or (k, p) array
    """
    Y = _finite_array(samples, "samples", (1, 2))
    Z = _finite_array(controls, "controls", (2,))
    if Z.shape[0] != Y.shape[0]:
        raise ValueError(f"controls: expected shape ({Y.shape[0]}, k), got {Z.shape}")
    Zc = Z - Z.mean(0)
    Yc = Y - Y.mean(0)
    C = Zc.T @ Zc
    C[np.diag_indices_from(C)] += ridge * max(np.trace(C) / max(C.shape[0], 1), 1e-300)
    return np.linalg.solve(C, Zc.T @ Yc)


def _finite_array(values, name, ndims):
    """float64 array of ``values`` with ``ndim`` in ``ndims`` and finite entries, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a numeric array, got {type(values).__name__}") from None
    if arr.ndim not in ndims:
        raise ValueError(f"{name}: expected a {' or '.join(f'{k}-D' for k in ndims)} array, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def apply_control_variates(samples, controls, split=False):
    """Mean of ``samples`` corrected by zero-mean ``controls`` with the optimal coefficient.

    Parameters
    ----------
    samples : (n,) or (n, p) array
    controls : (n, k) array
        Exactly zero-mean control variates (e.g. :meth:`OperatorControlVariates.values`).
    split : bool
        Fit ``beta`` on the first half, estimate on the second (unbiased; uses half the samples).

    Returns
    -------
    ControlVariateResult
    """
    Y = _finite_array(samples, "samples", (1, 2))
    Z = _finite_array(controls, "controls", (2,))
    if Z.shape[0] != Y.shape[0]:
        raise ValueError(f"controls: expected shape ({Y.shape[0]}, k), got {Z.shape}")
    if Y.shape[0] < Z.shape[1] + 2:
        raise ValueError(f"samples: need more than k + 1 = {Z.shape[1] + 1} samples, got {Y.shape[0]}")
    n = Y.shape[0]
    if split:
        half = n // 2
        beta = optimal_coefficients(Y[:half], Z[:half])
        Y, Z = Y[half:], Z[half:]
    else:
        beta = optimal_coefficients(Y, Z)
    corrected = Y - Z @ beta
    m = Y.shape[0]
    var_plain = np.var(Y, axis=0, ddof=1)
    var_cv = np.var(corrected, axis=0, ddof=1)
    reduction = float(np.sum(var_plain) / max(np.sum(var_cv), 1e-300))
    return ControlVariateResult(corrected.mean(0), np.sqrt(var_cv / m), beta, reduction,
                                Y.mean(0), np.sqrt(var_plain / m))


class ControlVariateLoss(NamedTuple):
    """A :class:`LossEstimate` corrected by control variates, with the variance reductions achieved.

    Attributes
    ----------
    value : float
        The corrected loss estimate.
    standard_error : float
        Its standard error.
    gradient : (p,) array or None
        The corrected gradient estimate (when the plain estimate had per-sample gradients).
    plain : LossEstimate
        The estimate before correction.
    loss_variance_reduction : float
        Variance of the plain per-sample loss over that of the corrected one.
    gradient_variance_reduction : float or None
        The same ratio for the gradient (variances summed over its coordinates).
    """

    value: float
    standard_error: float
    gradient: object
    plain: LossEstimate
    loss_variance_reduction: float
    gradient_variance_reduction: object


class OperatorControlVariates(ParamsMixin):
    """``Z_g = g(X_t) - exp(lambda_g t) g(X_0)`` for the eigenfunctions ``g`` of an eigenbasis.

    Parameters
    ----------
    basis : opdiff.spectral.EigenBasis
        Eigenfunctions of the forward process's generator (its eigenvalues must match the process:
        e.g. ``Hermite(d, K, theta)`` for ``OrnsteinUhlenbeck(theta)``).
    multiplier_basis : EigenBasis or object with ``values(x0) -> (n, m)``, optional
        Functions ``f_j`` of the start multiplying each ``Z_g`` (the constant is always included).
    split : bool
        See :func:`apply_control_variates`.

    The constructor stores its arguments unchanged (``get_params`` / ``set_params`` / ``clone`` and
    the repr follow scikit-learn); they are validated where they are used. Nothing is learned
    ahead of time: the coefficients are estimated on the samples each estimate corrects.
    """

    def __init__(self, basis, multiplier_basis=None, split=False):
        self.basis = basis
        self.multiplier_basis = multiplier_basis
        self.split = split

    def values(self, x0, xt, t):
        """Control variates for forward pairs ``(x0, xt)`` at time ``t``.

        Parameters
        ----------
        x0 : (n, dim) array
            Start points.
        xt : (n, dim) array
            Their forward states at ``t``.
        t : float or (n,) array
            ``t >= 0``.

        Returns
        -------
        (n, n_basis (1 + m)) array
        """
        if not (callable(getattr(self.basis, "values", None)) and hasattr(self.basis, "eigenvalues")):
            raise TypeError(f"basis: expected an opdiff.spectral.EigenBasis, got {type(self.basis).__name__}")
        if not isinstance(self.split, (bool, np.bool_)):
            raise TypeError(f"split: expected a bool, got {self.split!r}")
        x0 = check_points(x0, "x0", dim=self.basis.dim)
        xt = check_points(xt, "xt", dim=self.basis.dim)
        if xt.shape[0] != x0.shape[0]:
            raise ValueError(f"xt: expected {x0.shape[0]} rows to match x0, got {xt.shape[0]}")
        lam = np.tile(np.asarray(self.basis.eigenvalues), self.basis.n_blocks)
        t = check_time(t, "t", 0.0, np.inf, n=x0.shape[0], include_min=True)
        decay = np.exp(lam * (t[:, None] if t.ndim == 1 else t))
        Z = self.basis.values(xt) - decay * self.basis.values(x0)
        if self.multiplier_basis is None:
            return Z
        if not callable(getattr(self.multiplier_basis, "values", None)):
            raise TypeError(f"multiplier_basis: expected an object with values(x0) -> (n, m), "
                            f"got {type(self.multiplier_basis).__name__}")
        F = _finite_array(self.multiplier_basis.values(x0), "multiplier_basis", (2,))
        return np.concatenate([Z, (F[:, :, None] * Z[:, None, :]).reshape(Z.shape[0], -1)], axis=1)

    def correct(self, estimate, x0, xt, t):
        """Apply the control variates to a per-sample :class:`LossEstimate` of pairs ``(x0, xt)``.

        Parameters
        ----------
        estimate : LossEstimate
            With ``per_sample`` ``(n,)`` (and optionally ``per_sample_gradient`` ``(n, p)``).
        x0, xt : (n, dim) arrays
            The forward pairs behind the estimate.
        t : float or (n,) array

        Returns
        -------
        ControlVariateLoss
        """
        Z = self.values(x0, xt, t)
        loss = apply_control_variates(estimate.per_sample, Z, split=self.split)
        grad, grad_reduction = None, None
        if estimate.per_sample_gradient is not None:
            g = apply_control_variates(estimate.per_sample_gradient, Z, split=self.split)
            grad, grad_reduction = g.estimate, g.variance_reduction
        return ControlVariateLoss(float(loss.estimate), float(loss.standard_error), grad, estimate,
                                  loss.variance_reduction, grad_reduction)
