"""Monte Carlo likelihood bounds for stationary linear SDEs (VP, CLD, ALDA, MALDA, learned Q and D).

MDM (Singhal et al., arXiv 2302.07261), with the hybrid start ``y_0 = (x, v0)``:

1. marginalised ELBO: ``log p(x) >= E_{v0 ~ q(v0|x)} [L(x, v0) - log q(v0 | x)]``, with
   ``q(v0 | x) = N(0, initial_aux_var I)``;
2. DSM integrand with the hybrid target ``g = grad log q(y_s | x)``:
   ``1/2 ||g||^2_{GG^T} - 1/2 ||s - g||^2_{GG^T} + div f``, evaluated as the identical
   ``-1/2 ||s||^2_{GG^T} + <s, g>_{GG^T} + div f`` (the squared target cancels row by row, a stronger
   variance reduction than its analytic mean), ``div f = d beta tr(F0)``, ``GG^T = 2 beta D``;
3. ISM integrand: ``-1/2 ||s||^2_{GG^T} - div(GG^T s) + div f``, the divergence by Hutchinson
   probes on central differences (or a user ``divergence(y, t)`` returning ``div(GG^T s)``);
4. the time integral by importance sampling (:mod:`opdiff.estimators.elbo_times`) or Gauss-Legendre in ``log t``;
5. boundary correction: ``log p(u0 | y_eps) - log q(y_eps | u0)``, the Tweedie decoder
   ``N(Phi^{-1}(y + Sigma s(y, eps)), Phi^{-1} Sigma Phi^{-T})`` with the state-conditioned ``(Phi, Sigma)``;
6. zero-mean control variates (:mod:`opdiff.estimators.elbo_controls`).

The Gaussian closed forms (prior KL, exact-score identity) are in :mod:`opdiff.estimators.gaussian_elbo`,
learning ``(Q, D)`` in :mod:`opdiff.estimators.learned_sde`, bits per dimension in
:mod:`opdiff.metrics.likelihood`; the names are re-exported here.

A bound computed with the score of a kernel smoother of the training set (``DiffusionKernelSmoother``) is a
real ELBO of that smoother, a model that memorises its training points: on held-out data it is dominated by
the bandwidth ``t_min`` and says little about the data's likelihood (it can exceed the uniform model's bits/dim).
"""
import numpy as np

from ..backend import as_generator, check_choice, check_count, check_points, check_positive
from ..processes.base import LOG_2PI
from .elbo_controls import N_TIME_BINS, binned_controls
from .elbo_times import sample_times, time_quantile  # noqa: F401  (re-exported)
from .gaussian_elbo import (GaussianData, aux_term, call_model, check_stationary_process,  # noqa: F401
                            exact_score_elbo, gaussian_data_score, gaussian_entropy, kron_quadratic, prior_kl,
                            prior_term, split_blocks)
from .learned_sde import (fixed_score_elbo, learn_stationary_sde, learned_elbo_gradient,  # noqa: F401
                          learned_prior_kl)
from .losses import directional_derivative

__all__ = ["sample_times", "prior_kl", "gaussian_entropy", "GaussianData", "gaussian_data_score", "exact_score_elbo",
           "dsm_elbo", "ism_elbo", "mean_elbo", "learned_prior_kl", "fixed_score_elbo", "learn_stationary_sde",
           "learned_elbo_gradient", "N_TIME_BINS"]


def _check(process, x, score):
    check_stationary_process(process)
    if not callable(score):
        raise TypeError(f"score: expected a callable score(y, t), got {type(score).__name__}")
    return check_points(x, "x")


def _boundary_term(process, x, v0, score, t_min, rng):
    """``log p(u0 | y_eps) - log q(y_eps | u0)`` with the Tweedie decoder (formula 5); ``(n,)``."""
    u0 = np.concatenate([x, v0], axis=1)
    Phi, Sigma = process.transition_from_state(t_min)
    chol = Sigma.cholesky()
    noise = rng.standard_normal(u0.shape)
    y = Phi.apply(u0) + chol.apply(noise)
    dim = u0.shape[1]
    log_q = -0.5 * np.sum(noise**2, axis=1) - chol.logdet(dim) - 0.5 * dim * LOG_2PI
    decoded = Phi.solve(y + Sigma.apply(call_model(score, y, t_min)))
    # p(u0 | y) = N(decoded, Phi^{-1} Sigma Phi^{-T}): whiten with L^{-1} Phi
    white = chol.solve(Phi.apply(u0 - decoded))
    log_p = -0.5 * np.sum(white**2, axis=1) - chol.logdet(dim) + Phi.logdet(dim) - 0.5 * dim * LOG_2PI
    return log_p - log_q


def dsm_elbo(process, x, score, rng=None, n_times=1, t_min=1e-3, importance=True, boundary=True,
             return_controls=False, time_quadrature=None):
    """Monte Carlo ELBO (nats) per data point, DSM form (formulas 1, 2, 4, 5 of the module notes).

    Parameters
    ----------
    process : StationaryLinearSDE
    x : (n, d) array
        Data.
    score : callable
        ``score(y (m, K d), t float or (m,)) -> (m, K d)``: the model score on the state (finite values).
    rng : None, int or numpy.random.Generator
    n_times : int
        Time samples per data point (averaged).
    t_min : float
        Truncation ``eps`` of the time integral.
    importance : bool
        VP likelihood importance sampling of the time (otherwise uniform).
    boundary : bool
        Add the Tweedie-decoder boundary correction (otherwise the bound on ``y_eps``).
    return_controls : bool
        Also return ``(n, 2 N_TIME_BINS)`` exactly zero-mean control variates (one per time bin and kind) for
        :func:`opdiff.estimators.control_variates.apply_control_variates`; see :func:`mean_elbo`.
    time_quadrature : int, optional
        Replace the random times by this many Gauss-Legendre nodes in ``log t`` (same for every point).

    Returns
    -------
    (n,) array
        Unbiased estimates of the ELBO of each point (and the controls).
    """
    return _elbo(process, x, score, rng, n_times, t_min, importance, boundary, "dsm", None, 1, 1e-4,
                 return_controls, time_quadrature)


def ism_elbo(process, x, score, rng=None, n_times=1, t_min=1e-3, importance=True, boundary=True,
             divergence=None, n_probes=1, step=1e-4, return_controls=False, time_quadrature=None):
    """Monte Carlo ELBO (nats) per data point, ISM form (formulas 1, 3, 4, 5 of the module notes).

    Parameters
    ----------
    process, x, score, rng, n_times, t_min, importance, boundary, return_controls, time_quadrature
        As :func:`dsm_elbo`.
    divergence : callable, optional
        ``divergence(y (m, K d), t) -> (m,)``: the divergence ``div_y(G G^T s) = div_y((2 beta(t) D (x) I) s)``
        of the model score weighted by the diffusion covariance, which is what the ISM integrand needs. It is
        not ``div_y s``: for a ``D`` that is not a multiple of the identity (CLD, ALDA, MALDA: no noise on the
        data block) ``div(G G^T s)`` is not a function of ``div s``. Default: Hutchinson estimate.
    n_probes : int
        Rademacher probes of the Hutchinson estimate (central differences of step ``step``, bias ``O(step^2)``).
    step : float

    Returns
    -------
    (n,) array
        Unbiased estimates of the ELBO of each point (and the controls).
    """
    return _elbo(process, x, score, rng, n_times, t_min, importance, boundary, "ism", divergence, n_probes, step,
                 return_controls, time_quadrature)


def _time_schedule(process, n, rng, n_times, t_min, importance, time_quadrature):
    """List of ``(t (n,), weight (n,))`` pairs and the divisor of their sum."""
    if time_quadrature is None:
        return [sample_times(process, n, rng, t_min, importance) for _ in range(n_times)], n_times
    nodes, weights = np.polynomial.legendre.leggauss(check_count(time_quadrature, "time_quadrature"))
    lo, hi = np.log(t_min), np.log(process.t_max)
    times = np.exp(lo + 0.5 * (hi - lo) * (nodes + 1.0))
    weights = 0.5 * (hi - lo) * weights * times
    return [(np.full(n, t), np.full(n, w)) for t, w in zip(times, weights)], 1


def _elbo(process, x, score, rng, n_times, t_min, importance, boundary, form, divergence, n_probes, step,
          return_controls=False, time_quadrature=None):
    x = _check(process, x, score)
    check_choice(form, "form", {"dsm", "ism"})
    n_times, n_probes = check_count(n_times, "n_times"), check_count(n_probes, "n_probes")
    t_min, step = check_positive(t_min, "t_min"), check_positive(step, "step")
    if t_min >= process.t_max:
        raise ValueError(f"t_min: expected a time below T={process.t_max}, got {t_min}")
    if divergence is not None and not callable(divergence):
        raise TypeError(f"divergence: expected a callable divergence(y, t), got {type(divergence).__name__}")
    rng = as_generator(rng)
    x = x.astype(np.float64)
    n, d = x.shape
    K = process.n_blocks
    v0 = np.sqrt(process.initial_aux_var) * rng.standard_normal((n, (K - 1) * d))
    total = prior_term(process, x) + aux_term(process, v0)
    if boundary:
        total = total + _boundary_term(process, x, v0, score, t_min, rng)
    integral = np.zeros(n)
    controls = np.zeros((n, 2 * N_TIME_BINS))
    schedule, divisor = _time_schedule(process, n, rng, n_times, t_min, importance, time_quadrature)
    GG = 2.0 * process.D
    for t, weight in schedule:
        Phi, Sigma = process.transition(t)
        chol = Sigma.cholesky()
        eps = rng.standard_normal((n, K * d))
        y = Phi.apply(process.lift(x)) + chol.apply(eps)
        s_blocks = split_blocks(process, call_model(score, y, t))
        beta = process.beta(t)
        target = None
        if form == "dsm":
            # 1/2 |g|^2 - 1/2 |s - g|^2 = -1/2 |s|^2 + <s, g> (GG^T norms, g = grad log q(y | x)): the
            # squared target cancels row by row, which removes its O(1/sigma^2) variance
            target = split_blocks(process, -chol.transpose().solve(eps))
            value = beta * (-0.5 * kron_quadratic(GG, s_blocks) + np.einsum("kl,nkd,nld->n", GG, s_blocks, target))
        else:
            if divergence is not None:
                div = np.asarray(divergence(y, t), dtype=np.float64)
                if div.shape != (n,) or not np.all(np.isfinite(div)):
                    raise ValueError(f"divergence: expected finite values of shape ({n},), got {div.shape}")
                div = div / beta
            else:
                div = np.zeros(n)
                for _ in range(n_probes):
                    probe = rng.choice(np.array([-1.0, 1.0]), size=y.shape)
                    jvp = directional_derivative(lambda z, u: call_model(score, z, u), y, t, probe, step)
                    div += np.einsum("kl,nkd,nld->n", GG, split_blocks(process, probe), split_blocks(process, jvp))
                div /= n_probes  # tr(2 D J): the divergence of GG^T s per unit beta
            value = beta * (-0.5 * kron_quadratic(GG, s_blocks) - div)
        integral += weight * (value + d * beta * np.trace(process.F0))
        controls += binned_controls(process, t, t_min, weight, beta, GG, split_blocks(process, y), Phi, Sigma, x,
                                    form, target)
    estimate = total + integral / divisor
    if return_controls:
        return estimate, controls / divisor
    return estimate


def mean_elbo(process, x, score, form="dsm", rng=None, split=False, **options):
    """Mean ELBO over ``x`` with the zero-mean controls of :mod:`opdiff.estimators.elbo_controls` (optimal coefficients).

    Parameters
    ----------
    process : StationaryLinearSDE
    x : (n, d) array
    score : callable
        ``score(y (m, K d), t) -> (m, K d)``.
    form : {"dsm", "ism"}
    rng : None, int or numpy.random.Generator
    split : bool
        Passed to :func:`~opdiff.estimators.control_variates.apply_control_variates` (unbiased when true;
        otherwise bias ``O(k / n)`` from estimating the coefficients on the same samples).
    options
        Keyword arguments of :func:`dsm_elbo` / :func:`ism_elbo`.

    Returns
    -------
    ControlVariateResult
        ``estimate`` and ``standard_error`` in nats per data point (``plain_*``: without controls).
    """
    from .control_variates import apply_control_variates

    check_choice(form, "form", {"dsm", "ism"})
    function = dsm_elbo if form == "dsm" else ism_elbo
    values, controls = function(process, x, score, rng=rng, return_controls=True, **options)
    keep = np.any(controls != 0, axis=0)
    return apply_control_variates(values, controls[:, keep], split=split)
