"""Score-matching losses: implicit (ISM), denoising (DSM), sliced, and the operator form.

All losses are Monte Carlo (or exact) estimates of an expectation and return a :class:`LossEstimate`
with the value, its standard error, and -- for models linear in their parameters
(:class:`LinearScoreModel`) -- the gradient with respect to the parameters. Conventions: the score
model ``s(x, t)`` is a Euclidean (or Riemannian) vector field ``(n, d)``; the ISM integrand is
``|s|^2 + 2 div s``, whose expectation under ``rho_t`` is the Fisher divergence
``E_{rho_t}|s - grad log rho_t|^2`` minus ``E_{rho_t}|grad log rho_t|^2``. The DSM integrand is
``|s(x_t) - grad log p_t(x_t | x_0)|^2``; DSM and ISM differ by a constant that does not depend on the
model.
"""
from typing import NamedTuple

import numpy as np

from ..backend import as_generator, check_choice, check_count, check_points, check_positive, chunk_rows


class LossEstimate(NamedTuple):
    """A loss estimate.

    Attributes
    ----------
    value : float
        Sample mean of the per-sample integrand.
    standard_error : float
        Its standard error (``std / sqrt(n)``); 0 for exact evaluations.
    gradient : (p,) array or None
        Gradient with respect to the parameters (linear models only).
    per_sample : (n,) array
        The per-sample integrand.
    per_sample_gradient : (n, p) array or None
    """

    value: float
    standard_error: float
    gradient: object
    per_sample: object
    per_sample_gradient: object


def _estimate(per_sample, per_sample_gradient=None):
    per_sample = np.asarray(per_sample, dtype=np.float64)
    if not np.all(np.isfinite(per_sample)):
        bad = int(np.sum(~np.isfinite(per_sample)))
        raise ValueError(f"model: expected finite scores, the loss integrand is non-finite at {bad} of "
                         f"{per_sample.shape[0]} samples")
    n = per_sample.shape[0]
    se = float(np.std(per_sample, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    grad = None if per_sample_gradient is None else per_sample_gradient.mean(0)
    return LossEstimate(float(per_sample.mean()), se, grad, per_sample, per_sample_gradient)


class LinearScoreModel:
    """A score linear in its parameters: ``s(x, t; theta) = offset(x, t) + sum_p theta_p f_p(x, t)``.

    Parameters
    ----------
    features : callable
        ``features(x (n, d), t) -> (n, p, d)``.
    offset : callable, optional
        ``offset(x, t) -> (n, d)`` (zero if omitted).
    feature_divergence : callable, optional
        ``feature_divergence(x, t) -> (n, p)``: ``div f_p``.
    offset_divergence : callable, optional
        ``offset_divergence(x, t) -> (n,)``.
    """

    def __init__(self, features, offset=None, feature_divergence=None, offset_divergence=None):
        self.features = features
        self.offset = offset
        self.feature_divergence = feature_divergence
        self.offset_divergence = offset_divergence

    def _offset(self, x, t):
        return np.zeros_like(x) if self.offset is None else self.offset(x, t)

    def score(self, x, t, params):
        """``(n, d)`` score with parameters ``params (p,)``."""
        return self._offset(x, t) + np.einsum("npd,p->nd", self.features(x, t), np.asarray(params))

    def divergence(self, x, t, params):
        """``(n,)`` divergence (needs ``feature_divergence``)."""
        if self.feature_divergence is None:
            raise ValueError("model: exact divergence needs feature_divergence")
        base = 0.0 if self.offset_divergence is None else self.offset_divergence(x, t)
        return base + self.feature_divergence(x, t) @ np.asarray(params)


def _score_callable(model, params):
    """(score(x, t), divergence(x, t) or None) of a linear model with params, a callable or an estimator."""
    if isinstance(model, LinearScoreModel):
        if params is None:
            raise ValueError("params: a LinearScoreModel needs its parameter vector, got None")
        div = (lambda x, t: model.divergence(x, t, params)) if model.feature_divergence is not None else None
        return (lambda x, t: model.score(x, t, params)), div
    if hasattr(model, "score") and callable(model.score):
        return model.score, getattr(model, "divergence", None)
    if callable(model):
        return model, getattr(model, "divergence", None)
    raise TypeError(f"model: expected a LinearScoreModel, a callable score(x, t) or an object with .score, "
                    f"got {type(model).__name__}")


def directional_derivative(fn, x, t, direction, step=1e-4):
    """Central difference ``(fn(x + h v, t) - fn(x - h v, t)) / (2h)`` (error ``O(h^2)``).

    Parameters
    ----------
    fn : callable
        ``fn(x (n, d), t) -> (n, ...)``.
    x : (n, d) array
    t : float or (n,) array
    direction : (n, d) array
    step : float
        ``h > 0``.

    Returns
    -------
    (n, ...) array
    """
    step = check_positive(step, "step")
    return (fn(x + step * direction, t) - fn(x - step * direction, t)) / (2.0 * step)


def _probes(rng, shape, probe):
    if probe == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=shape)
    return rng.standard_normal(shape)


def hutchinson_variance(jacobian, probe="rademacher"):
    """Exact variance of the single-probe Hutchinson estimate ``v^T J v`` of ``tr J``.

    Rademacher probes: ``sum_{i != j} (J_ij^2 + J_ij J_ji)``; Gaussian probes:
    ``sum_{i, j} (J_ij^2 + J_ij J_ji)``. With ``m`` probes the variance is divided by ``m``.

    Parameters
    ----------
    jacobian : (..., d, d) array
    probe : {"rademacher", "gaussian"}

    Returns
    -------
    (...) array
    """
    check_choice(probe, "probe", ("rademacher", "gaussian"))
    J = np.asarray(jacobian)
    full = np.sum(J * J + J * np.swapaxes(J, -1, -2), axis=(-1, -2))
    if probe == "gaussian":
        return full
    diag = np.diagonal(J, axis1=-2, axis2=-1)
    return full - 2.0 * np.sum(diag * diag, axis=-1)


def ism_loss(model, x, t, params=None, divergence="exact", n_probes=1, probe="rademacher", rng=None, step=1e-4):
    """Implicit score matching ``E_{rho_t}[|s|^2 + 2 div s]`` from samples ``x ~ rho_t``.

    Parameters
    ----------
    model : LinearScoreModel, callable ``score(x, t)`` or object with ``score`` (and ``divergence``)
    x : (n, d) array
        Samples of the forward marginal at ``t``.
    t : float or (n,) array
    params : (p,) array, optional
        Parameters of a :class:`LinearScoreModel` (then the gradient is returned).
    divergence : {"exact", "hutchinson"}
        ``"exact"`` uses the model's analytic divergence; ``"hutchinson"`` estimates it by
        ``v^T (J v)`` with ``n_probes`` probes and central differences of step ``step`` for ``J v``
        (bias ``O(step^2)``); its extra variance per sample is ``4 hutchinson_variance(J) / n_probes``.
    n_probes : int
        Probes per sample (``>= 1``).
    probe : {"rademacher", "gaussian"}
    rng : None, int or Generator
    step : float
        Central-difference step (``> 0``).

    Returns
    -------
    LossEstimate
    """
    check_choice(divergence, "divergence", ("exact", "hutchinson"))
    check_choice(probe, "probe", ("rademacher", "gaussian"))
    n_probes = check_count(n_probes, "n_probes")
    step = check_positive(step, "step")
    x = check_points(x, "x")
    score, div = _score_callable(model, params)
    s = score(x, t)
    linear = isinstance(model, LinearScoreModel)
    F = model.features(x, t) if linear else None
    if divergence == "exact":
        if div is None:
            raise ValueError("divergence: 'exact' needs a model with an analytic divergence; use 'hutchinson'")
        dv = div(x, t)
        dF = model.feature_divergence(x, t) if linear else None
    else:
        rng = as_generator(rng)
        dv = np.zeros(x.shape[0])
        dF = np.zeros((x.shape[0], F.shape[1])) if linear else None
        for _ in range(n_probes):
            v = _probes(rng, x.shape, probe)
            dv += np.sum(v * directional_derivative(score, x, t, v, step), axis=1) / n_probes
            if linear:
                dF += np.einsum("nd,npd->np", v, directional_derivative(model.features, x, t, v, step)) / n_probes
    per_sample = np.sum(s * s, axis=1) + 2.0 * dv
    grad = None
    if linear:
        grad = 2.0 * np.einsum("nd,npd->np", s, F) + 2.0 * dF
    return _estimate(per_sample, grad)


def sliced_loss(model, x, t, params=None, n_projections=1, rng=None, step=1e-4):
    """Sliced score matching ``E[(v . s)^2 + 2 v^T (grad s) v]``, ``v ~ N(0, I)``, from ``x ~ rho_t``.

    Its expectation equals the ISM loss (``E[v v^T] = I``). ``grad s . v`` by central differences
    (bias ``O(step^2)``).

    Parameters
    ----------
    model : LinearScoreModel, callable ``score(x, t)`` or object with ``score``
    x : (n, d) array
        Samples of the forward marginal at ``t``.
    t : float or (n,) array
    params : (p,) array, optional
        Parameters of a :class:`LinearScoreModel` (then the gradient is returned).
    n_projections : int
        Random directions per sample (``>= 1``).
    rng : None, int or Generator
    step : float
        Central-difference step (``> 0``).

    Returns
    -------
    LossEstimate
    """
    n_projections = check_count(n_projections, "n_projections")
    step = check_positive(step, "step")
    x = check_points(x, "x")
    rng = as_generator(rng)
    score, _ = _score_callable(model, params)
    linear = isinstance(model, LinearScoreModel)
    s = score(x, t)
    F = model.features(x, t) if linear else None
    per_sample = np.zeros(x.shape[0])
    grad = np.zeros((x.shape[0], F.shape[1])) if linear else None
    for _ in range(n_projections):
        v = rng.standard_normal(x.shape)
        vs = np.sum(v * s, axis=1)
        vjv = np.sum(v * directional_derivative(score, x, t, v, step), axis=1)
        per_sample += (vs**2 + 2.0 * vjv) / n_projections
        if linear:
            vF = np.einsum("nd,npd->np", v, F)
            vJF = np.einsum("nd,npd->np", v, directional_derivative(model.features, x, t, v, step))
            grad += (2.0 * vs[:, None] * vF + 2.0 * vJF) / n_projections
    return _estimate(per_sample, grad)


def dsm_loss(model, x0, t, process, params=None, rng=None, control_variates=None, return_samples=False):
    """Denoising score matching ``E |s(x_t) - grad log p_t(x_t | x_0)|^2`` with ``x_t ~ p_t(. | x_0)``.

    Parameters
    ----------
    model : LinearScoreModel, callable or estimator
    x0 : (n, d) array
        Data.
    t : float or (n,) array
    process : object
        Any process with ``sample(x0, t, rng)`` and ``transition_score(xt, x0, t)`` (Gaussian
        processes, the wrapped torus kernel, ...).
    params : (p,) array, optional
        Parameters of a :class:`LinearScoreModel` (then the gradient is returned).
    rng : None, int or Generator
    control_variates : OperatorControlVariates, optional
        If given, the estimate (and gradient) are corrected by the zero-mean operator control
        variates ``Z = g(x_t) - P_t g(x_0)`` with the optimal coefficient; see
        :func:`opdiff.estimators.control_variates.apply_control_variates`.
    return_samples : bool
        Also return ``(x_t, target)``.

    Returns
    -------
    LossEstimate or ControlVariateLoss (and ``(xt, target)`` when asked)
    """
    if not all(callable(getattr(process, name, None)) for name in ("sample", "transition_score")):
        raise TypeError(f"process: expected a process with sample(x0, t, rng) and transition_score(xt, x0, t), "
                        f"got {type(process).__name__}")
    x0 = check_points(x0, "x0")
    rng = as_generator(rng)
    xt = process.sample(x0, t, rng=rng)
    target = process.transition_score(xt, x0, t)
    score, _ = _score_callable(model, params)
    residual = score(xt, t) - target
    per_sample = np.sum(residual * residual, axis=1)
    grad = None
    if isinstance(model, LinearScoreModel):
        grad = 2.0 * np.einsum("nd,npd->np", residual, model.features(xt, t))
    result = _estimate(per_sample, grad)
    if control_variates is not None:
        result = control_variates.correct(result, x0, xt, t)
    return (result, (xt, target)) if return_samples else result


def operator_ism_loss(basis, params, x0, t, chunk_bytes=None):
    """Operator form of ISM for a spectral model ``s = grad log mu + sum_a theta_a grad phi_a``.

    ``E_{rho_t}[|s|^2 + 2 div s] = E_{rho_0}[ P_t( |g|^2 + 2 div g + (Gamma(phi, phi) + 2 L phi) / c ) ]``
    with ``phi = sum theta_a phi_a``, ``g = grad log mu``: every term expands in eigenfunctions
    ``psi_k`` (:class:`opdiff.spectral.EigenBasis`), ``P_t psi_k = exp(mu_k t) psi_k``, so the per-datum
    integrand is ``q(x0) = const + sum_k w_k(theta) exp(mu_k t) psi_k(x0)``. No forward samples, no
    divergence: the estimate is a sample mean over the data.

    Parameters
    ----------
    basis : EigenBasis
    params : (n_basis,) array
    x0 : (n, dim) array
        Data (samples of ``rho_0``).
    t : float
    chunk_bytes : int, optional
        Chunk budget of the per-datum terms.

    Returns
    -------
    LossEstimate
        Value, standard error over the data, gradient ``(n_basis,)`` and the per-datum terms.
        (Multiply ``value - E_{rho_t}[|g|^2 + 2 div g]`` by ``c`` to get the carre-du-champ form
        ``E_{rho_0} P_t (Gamma(phi, phi) + 2 L phi)``.)
    """
    x0 = basis.check_points(x0, "x0")
    t = float(check_positive(t, "t", strict=False))
    nb, B, M = basis.n_blocks, basis.block_size, basis.n_moments
    theta = np.asarray(params, dtype=np.float64)
    if theta.shape != (basis.n_basis,):
        raise ValueError(f"params: expected shape ({basis.n_basis},), got {theta.shape}")
    theta = theta.reshape(nb, B)
    decay = np.exp(basis.moment_eigenvalues * t)  # (M,)
    G = basis.gradient_coefficients  # (B^2, M)
    inv_coef, inv_const = basis.invariant_term()
    lam_c = np.asarray(basis.eigenvalues) / basis.generator_scale
    # per-block weights on psi_k of the theta-quadratic part: sum_ab theta_a theta_b G[ab, k]
    quad = (G.T @ np.einsum("ga,gb->abg", theta, theta).reshape(B * B, nb)).T  # (nb, M)
    lin = np.zeros((nb, M))
    lin[:, basis.basis_moment_index] = 2.0 * lam_c * theta
    weights = (quad + lin + inv_coef) * decay
    per_sample = np.empty(x0.shape[0])
    per_grad = np.empty((x0.shape[0], basis.n_basis))
    row_bytes = 8 * nb * (M + B * B + B)
    for sl in chunk_rows(x0.shape[0], row_bytes, chunk_bytes):
        psi = basis.moment_values(x0[sl])  # (c, nb, M)
        w = psi * decay
        per_sample[sl] = inv_const + np.einsum("cgm,gm->c", psi, weights)
        A = (G @ w.reshape(-1, M).T).T.reshape(-1, nb, B, B)  # per-datum Gram
        A = 0.5 * (A + np.swapaxes(A, -1, -2))
        grad = 2.0 * np.einsum("cgab,gb->cga", A, theta) + 2.0 * lam_c * w[:, :, basis.basis_moment_index]
        per_grad[sl] = grad.reshape(grad.shape[0], -1)
    return _estimate(per_sample, per_grad)
