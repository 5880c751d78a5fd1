"""Likelihood bounds for stationary linear SDEs (VP, CLD, ALDA, MALDA, learned Q and D).

Formulas from notes/mdm_geometry.md A.4-A.6 (seven):

1. marginalised ELBO (A.5, Eqs. 10-12): ``log p(x) >= E_{v0 ~ q(v0|x)} [L(x, v0) - log q(v0 | x)]``, with
   ``q(v0 | x) = N(0, initial_aux_var I)``;
2. DSM integrand (A.5, Eq. 13) with the hybrid target ``g = grad log q(y_s | x)``:
   ``1/2 ||g||^2_{GG^T} - 1/2 ||s - g||^2_{GG^T} + div f``, evaluated as the identical
   ``-1/2 ||s||^2_{GG^T} + <s, g>_{GG^T} + div f`` (the squared target cancels row by row, a stronger
   variance reduction than the notes' analytic ``E||g||^2``), ``div f = d beta tr(F0)``, ``GG^T = 2 beta D``;
3. ISM integrand (A.5, Eq. 4): ``-1/2 ||s||^2_{GG^T} - div(GG^T s) + div f``, the divergence by Hutchinson
   probes on central differences (or a user ``divergence(y, t)``);
4. importance-sampled time (A.5): density ``beta(s) / (1 - e^{-tau(s)})`` on ``[t_min, T]``; its CDF is
   ``log(e^{tau} - 1)`` up to constants, inverted in closed form;
5. boundary correction (A.5): ``log p(u0 | y_eps) - log q(y_eps | u0)``, the Tweedie decoder
   ``N(Phi^{-1}(y + Sigma s(y, eps)), Phi^{-1} Sigma Phi^{-T})`` with the state-conditioned ``(Phi, Sigma)``;
6. bits per dimension (A.5): ``bpd = -((elbo + ldj) / d) / ln 2 + log2(n_levels)`` after uniform
   dequantisation ``(v + U) / n_levels`` and ``LogitTransform(alpha)``: ``y = logit(alpha + (1 - 2 alpha) x)``;
8. control variates (derived here): the integrand of the prior score ``-Sigma_inf^{-1} y`` and the squared
   target ``1/2 ||g||^2_{GG^T}`` have closed-form means under ``y_s | x``; their centred values, per time
   bin, are exactly zero-mean controls (they remove the chi-square noise at large ``s`` and in the
   auxiliary block at small ``s``);
7. exact-score identity (A.5): for Gaussian data and the exact score,
   ``E[ELBO] = -H(x) - KL(q_T || pi) + O(eps)``; the prior term ``KL(q_T(. | x) || pi)`` in closed form
   (with the stationary identity ``Cov = Sigma_inf + Phi (Sigma_0 - Sigma_inf) Phi^T``).

Learning ``(Q, D)`` (:func:`learn_stationary_sde`) maximises, under a fixed noise budget ``tr(D)``, either the
known-score Gaussian ELBO (i.e. minimises ``KL(q_T || pi)``, :func:`learned_prior_kl`) or the closed-form ELBO
of a fixed linear score model (:func:`fixed_score_elbo`); gradients are exact, through
``scipy.linalg.expm_frechet`` (the Frechet derivative of ``expm(tau F0)``).
"""
import numpy as np
from scipy.linalg import expm, expm_frechet

from ..backend import as_generator, check_choice, check_points, check_positive
from ..processes.base import LOG_2PI
from .losses import directional_derivative

LN2 = float(np.log(2.0))
#: Number of time bins of the control variates (one coefficient per bin).
N_TIME_BINS = 8


# ---------------------------------------------------------------------------------------- time sampling
def sample_times(process, n, rng=None, t_min=1e-3, importance=True):
    """Times in ``[t_min, T]`` and weights ``1 / density`` (formula 4); ``(n,)`` each.

    ``importance=False`` draws uniformly (weight ``T - t_min``).
    """
    rng = as_generator(rng)
    t_min = check_positive(t_min, "t_min")
    T = process.t_max
    if t_min >= T:
        raise ValueError(f"t_min: expected a time below T={T}, got {t_min}")
    u = rng.uniform(size=int(n))
    if not importance:
        return t_min + (T - t_min) * u, np.full(int(n), T - t_min)
    lo, hi = np.log(np.expm1(process.integrated_beta(t_min))), np.log(np.expm1(process.integrated_beta(T)))
    tau = np.log1p(np.exp(lo + u * (hi - lo)))
    if process.schedule == "constant" or process.beta_max == process.beta_min:
        t = tau / process.beta_min
    else:
        slope = process.beta_max - process.beta_min
        t = (-process.beta_min + np.sqrt(process.beta_min**2 + 2.0 * slope * tau)) / slope
    density = process.beta(t) / -np.expm1(-tau) / (hi - lo)
    return np.clip(t, t_min, T), 1.0 / density


def _time_quantile(process, t, t_min):
    """CDF of the importance density at ``t`` (equal-probability time bins)."""
    lo, hi = np.log(np.expm1(process.integrated_beta(t_min))), np.log(np.expm1(process.integrated_beta(process.t_max)))
    return np.clip((np.log(np.expm1(process.integrated_beta(t))) - lo) / (hi - lo), 0.0, 1.0)


# ---------------------------------------------------------------------------------------- Gaussian pieces
def _kron_quadratic(block, z):
    """``sum_{k,l} block_kl <z_k, z_l>`` per row for states ``z (n, K, d)``; ``(n,)``."""
    return np.einsum("kl,nkd,nld->n", block, z, z)


def _split(process, y):
    return y.reshape(y.shape[0], process.n_blocks, -1)


def prior_kl(process, mean, data_var=0.0):
    """``KL(q_T || pi)`` per data coordinate, for data ``N(mean, data_var)`` (``data_var = 0``: a point).

    Parameters
    ----------
    process : StationaryLinearSDE
    mean : float or (d,) array
    data_var : float
        Variance of each data coordinate (0 for a single data point ``x = mean``).

    Returns
    -------
    float or (d,) array
        Nats per coordinate (formula 7, hybrid start included).
    """
    Phi = expm(process.integrated_beta(process.t_max) * process.F0)
    return _gaussian_prior_kl(process, Phi, np.asarray(mean, dtype=np.float64), data_var)[0]


def _initial_cov(process, data_var):
    S0 = process.initial_cov.copy()
    S0[0, 0] = data_var
    return S0


def _gaussian_prior_kl(process, Phi, mean, data_var, dPhi=None):
    """KL and (optionally) its derivative along ``dPhi``; uses ``C = S + Phi (S0 - S) Phi^T``."""
    S = process.Sigma_inf
    S_inv = np.linalg.inv(S)
    M = _initial_cov(process, data_var) - S
    C = S + Phi @ M @ Phi.T
    C_inv = np.linalg.inv(C)
    K = S.shape[0]
    m = np.multiply.outer(mean, Phi[:, 0])
    quad = np.einsum("...k,kl,...l->...", m, S_inv, m)
    kl = 0.5 * (np.trace(S_inv @ C) + quad - K + np.linalg.slogdet(S)[1] - np.linalg.slogdet(C)[1])
    if dPhi is None:
        return kl, None
    dC = dPhi @ M @ Phi.T + Phi @ M @ dPhi.T
    dm = np.multiply.outer(mean, dPhi[:, 0])
    dquad = 2.0 * np.einsum("...k,kl,...l->...", m, S_inv, dm)
    return kl, 0.5 * (np.trace(S_inv @ dC) + dquad - np.trace(C_inv @ dC))


def gaussian_entropy(variance, d=1):
    """Differential entropy of ``N(mu, variance I_d)`` in nats."""
    return 0.5 * d * (np.log(2.0 * np.pi * variance) + 1.0)


def gaussian_data_score(process, mean, data_var):
    """The exact score ``score(y, t)`` of the forward marginals of data ``N(mean, data_var I_d)``.

    Per coordinate ``j`` the state is ``N(Phi[:, 0] mean_j, Phi S0 Phi^T + Sigma)`` (``Kron`` structure,
    hybrid start, one time per row allowed).
    """
    from ..linalg import Kron

    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    lift = np.zeros(process.n_blocks)
    lift[0] = data_var

    def score(y, t):
        Phi, Sigma = process.transition(t)
        P = Phi.block
        cov = Sigma.block + np.einsum("...i,...j->...ij", P[..., :, 0], P[..., :, 0]) * data_var
        m = Phi.apply(process.lift(np.broadcast_to(mean, (y.shape[0], mean.size))))
        return -Kron(np.linalg.inv(cov)).apply(y - m)

    return score


def exact_score_elbo(process, mean, data_var):
    """``E[ELBO] = -H(x) - KL(q_T || pi)`` for data ``N(mean, data_var I)`` and the exact score (formula 7)."""
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    return float(-gaussian_entropy(data_var, mean.size) - np.sum(prior_kl(process, mean, data_var)))


# ---------------------------------------------------------------------------------------- ELBO estimators
def _check(process, x, score):
    if not hasattr(process, "F0") or not hasattr(process, "Sigma_inf"):
        raise TypeError(f"process: expected a StationaryLinearSDE, got {type(process).__name__}")
    if not callable(score):
        raise TypeError(f"score: expected a callable score(y, t), got {type(score).__name__}")
    return check_points(x, "x")


def _prior_term(process, x):
    """``E_{y_T | x} log pi(y_T)`` in closed form (hybrid start); ``(n,)``."""
    K, d = process.n_blocks, x.shape[1]
    Phi, Sigma = process.transition(process.t_max)
    S_inv = np.linalg.inv(process.Sigma_inf)
    m = _split(process, Phi.apply(process.lift(x)))
    return -0.5 * (_kron_quadratic(S_inv, m) + d * np.trace(S_inv @ Sigma.block)) \
        - 0.5 * d * np.linalg.slogdet(process.Sigma_inf)[1] - 0.5 * K * d * LOG_2PI


def _aux_term(process, v0):
    """``-log q(v0 | x)`` with ``q = N(0, initial_aux_var I)``; ``(n,)``."""
    if v0.shape[1] == 0:
        return np.zeros(v0.shape[0])
    var = process.initial_aux_var
    return 0.5 * np.sum(v0**2, axis=1) / var + 0.5 * v0.shape[1] * (np.log(var) + LOG_2PI)


def _boundary_term(process, x, v0, score, t_min, rng):
    """``log p(u0 | y_eps) - log q(y_eps | u0)`` with the Tweedie decoder (formula 5); ``(n,)``."""
    u0 = np.concatenate([x, v0], axis=1)
    Phi, Sigma = process.transition_from_state(t_min)
    chol = Sigma.cholesky()
    noise = rng.standard_normal(u0.shape)
    y = Phi.apply(u0) + chol.apply(noise)
    dim = u0.shape[1]
    log_q = -0.5 * np.sum(noise**2, axis=1) - chol.logdet(dim) - 0.5 * dim * LOG_2PI
    decoded = Phi.solve(y + Sigma.apply(score(y, t_min)))
    # p(u0 | y) = N(decoded, Phi^{-1} Sigma Phi^{-T}): whiten with L^{-1} Phi
    white = chol.solve(Phi.apply(u0 - decoded))
    log_p = -0.5 * np.sum(white**2, axis=1) - chol.logdet(dim) + Phi.logdet(dim) - 0.5 * dim * LOG_2PI
    return log_p - log_q


def dsm_elbo(process, x, score, rng=None, n_times=1, t_min=1e-3, importance=True, boundary=True,
             return_controls=False, time_quadrature=None):
    """Monte Carlo ELBO (nats) per data point, DSM form (formulas 1, 2, 4, 5).

    Parameters
    ----------
    process : StationaryLinearSDE
    x : (n, d) array
        Data.
    score : callable
        ``score(y (m, K d), t float or (m,)) -> (m, K d)``: the model score on the state.
    n_times : int
        Time samples per data point (averaged).
    t_min : float
        Truncation ``eps`` of the time integral.
    importance : bool
        VP likelihood importance sampling of the time (otherwise uniform).
    boundary : bool
        Add the Tweedie-decoder boundary correction (otherwise the bound on ``y_eps``).

    return_controls : bool
        Also return ``(n, 2 N_TIME_BINS)`` exactly zero-mean control variates (formula 8, one per time bin
        and kind) for :func:`opdiff.estimators.control_variates.apply_control_variates`; see :func:`mean_elbo`.

    Returns
    -------
    (n,) array
        Unbiased estimates of the ELBO of each point (and the controls).
    """
    return _elbo(process, x, score, rng, n_times, t_min, importance, boundary, "dsm", None, 1, 1e-4,
                 return_controls, time_quadrature)


def ism_elbo(process, x, score, rng=None, n_times=1, t_min=1e-3, importance=True, boundary=True,
             divergence=None, n_probes=1, step=1e-4, return_controls=False, time_quadrature=None):
    """Monte Carlo ELBO (nats) per data point, ISM form (formulas 1, 3, 4, 5).

    ``divergence(y, t) -> (m,)`` gives ``div_y score``; otherwise Hutchinson with ``n_probes``
    Rademacher probes and central differences of step ``step`` (bias ``O(step^2)``).
    Other parameters as :func:`dsm_elbo`.
    """
    return _elbo(process, x, score, rng, n_times, t_min, importance, boundary, "ism", divergence, n_probes, step,
                 return_controls, time_quadrature)


def _prior_score_control(process, GG, y, Phi, Sigma, x, form, target):
    """``E[c] - c`` for the integrand ``c`` of the prior score ``-Sigma_inf^{-1} y`` (formula 8); ``(n,)``.

    Zero mean given ``(x, t)``.

    ``E[c] = -1/2 sum_j (tr(A GG A Sigma) + m_j^T A GG A m_j) + d tr(A GG)`` per unit beta under
    ``y | x ~ N(m, Sigma)``; zero mean, strongly correlated with the model's integrand at large ``t``.
    """
    A = np.linalg.inv(process.Sigma_inf)
    AGGA = A @ GG @ A
    d = x.shape[1]
    m = _split(process, Phi.apply(process.lift(x)))
    expected = -0.5 * (d * np.einsum("ij,nji->n", AGGA, Sigma.block) + _kron_quadratic(AGGA, m)) \
        + d * np.trace(A @ GG)
    prior_score = np.einsum("kl,nld->nkd", -A, y)
    if form == "dsm":
        sample = -0.5 * _kron_quadratic(GG, prior_score) + np.einsum("kl,nkd,nld->n", GG, prior_score, target)
    else:
        sample = -0.5 * _kron_quadratic(GG, prior_score) + d * np.trace(GG @ A)
    return expected - sample


def _time_schedule(process, n, rng, n_times, t_min, importance, time_quadrature):
    """List of ``(t (n,), weight (n,))`` pairs and the divisor of their sum."""
    if time_quadrature is None:
        return [sample_times(process, n, rng, t_min, importance) for _ in range(int(n_times))], int(n_times)
    nodes, weights = np.polynomial.legendre.leggauss(int(time_quadrature))
    lo, hi = np.log(t_min), np.log(process.t_max)
    times = np.exp(lo + 0.5 * (hi - lo) * (nodes + 1.0))
    weights = 0.5 * (hi - lo) * weights * times
    return [(np.full(n, t), np.full(n, w)) for t, w in zip(times, weights)], 1


def _elbo(process, x, score, rng, n_times, t_min, importance, boundary, form, divergence, n_probes, step,
          return_controls=False, time_quadrature=None):
    x = _check(process, x, score)
    rng = as_generator(rng)
    check_choice(form, "form", {"dsm", "ism"})
    n, d = x.shape
    K = process.n_blocks
    v0 = np.sqrt(process.initial_aux_var) * rng.standard_normal((n, (K - 1) * d))
    total = _prior_term(process, x) + _aux_term(process, v0)
    if boundary:
        total = total + _boundary_term(process, x, v0, score, t_min, rng)
    integral = np.zeros(n)
    controls = np.zeros((n, 2 * N_TIME_BINS))
    schedule, divisor = _time_schedule(process, n, rng, n_times, check_positive(t_min, "t_min"), importance,
                                       time_quadrature)
    for t, weight in schedule:
        Phi, Sigma = process.transition(t)
        chol = Sigma.cholesky()
        eps = rng.standard_normal((n, K * d))
        y = Phi.apply(process.lift(x)) + chol.apply(eps)
        s = score(y, t)
        beta = process.beta(t)
        GG = 2.0 * process.D
        div_f = d * beta * np.trace(process.F0)
        s_blocks = _split(process, s)
        y_blocks = _split(process, y)
        if form == "dsm":
            # 1/2 |g|^2 - 1/2 |s - g|^2 = -1/2 |s|^2 + <s, g> (GG^T norms, g = grad log q(y | x)): the
            # squared target cancels row by row, which removes its O(1/sigma^2) variance
            target = _split(process, -chol.transpose().solve(eps))
            value = beta * (-0.5 * _kron_quadratic(GG, s_blocks) + np.einsum("kl,nkd,nld->n", GG, s_blocks, target))
        else:
            if divergence is not None:
                div = np.asarray(divergence(y, t)) / beta
            else:
                div = np.zeros(n)
                for _ in range(int(n_probes)):
                    probe = rng.choice(np.array([-1.0, 1.0]), size=y.shape)
                    jvp = directional_derivative(score, y, t, probe, step)
                    div += np.einsum("kl,nkd,nld->n", GG, _split(process, probe), _split(process, jvp))
                div /= int(n_probes)  # tr(2 D J): the divergence of GG^T s per unit beta
            value = beta * (-0.5 * _kron_quadratic(GG, s_blocks) - div)
        value = value + div_f
        integral += weight * value
        # zero-mean controls: the prior-score integrand and (DSM) the squared target, per time bin
        z_prior = weight * beta * _prior_score_control(process, GG, y_blocks, Phi, Sigma, x, form,
                                                       target if form == "dsm" else None)
        z_target = np.zeros(n)
        if form == "dsm":
            expected = 0.5 * d * np.einsum("nij,ji->n", np.linalg.inv(Sigma.block), GG)
            z_target = weight * beta * (0.5 * _kron_quadratic(GG, target) - expected)
        bins = np.minimum(_time_quantile(process, t, t_min) * N_TIME_BINS, N_TIME_BINS - 1)
        onehot = np.eye(N_TIME_BINS)[bins.astype(int)]
        controls += np.concatenate([onehot * z_prior[:, None], onehot * z_target[:, None]], axis=1)
    estimate = total + integral / divisor
    if return_controls:
        return estimate, controls / divisor
    return estimate


def mean_elbo(process, x, score, form="dsm", rng=None, split=False, **options):
    """Mean ELBO over ``x`` with the zero-mean controls of formula 8 (optimal coefficients).

    Parameters
    ----------
    form : {"dsm", "ism"}
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


# ---------------------------------------------------------------------------------------- bits per dimension
def dequantize(values, n_levels, rng=None):
    """Uniform dequantisation ``(v + U) / n_levels`` of integer levels ``v in {0..n_levels-1}``."""
    rng = as_generator(rng)
    values = np.asarray(values, dtype=np.float64)
    if np.any(values < 0) or np.any(values > n_levels - 1) or np.any(values != np.round(values)):
        raise ValueError(f"values: expected integer levels in [0, {n_levels - 1}]")
    return (values + rng.uniform(size=values.shape)) / n_levels


class LogitTransform:
    """``y = logit(alpha + (1 - 2 alpha) x)`` for ``x in [0, 1]`` (RealNVP), with its log-Jacobian.

    Parameters
    ----------
    alpha : float
        Boundary shrinkage in ``(0, 1/2)``.
    """

    def __init__(self, alpha=0.05):
        alpha = float(alpha)
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha: expected a value in (0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, x):
        """``(y (n, d), log|dy/dx| (n,))``."""
        x = check_points(x, "x")
        if np.any(x < 0) or np.any(x > 1):
            raise ValueError("x: expected values in [0, 1]")
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        y = np.log(p) - np.log1p(-p)
        ldj = np.sum(np.log(1.0 - 2.0 * self.alpha) - np.log(p) - np.log1p(-p), axis=1)
        return y, ldj

    def inverse(self, y):
        """``x`` from ``y``."""
        return (1.0 / (1.0 + np.exp(-np.asarray(y))) - self.alpha) / (1.0 - 2.0 * self.alpha)


def bits_per_dim(elbo, dim, log_jacobian=0.0, n_levels=256):
    """``-((elbo + ldj) / dim) / ln 2 + log2(n_levels)`` (formula 6)."""
    return -((np.asarray(elbo) + log_jacobian) / int(dim)) / LN2 + np.log2(n_levels)


# ---------------------------------------------------------------------------------------- learning (Q, D)
def _qd_from_params(G, B, noise_budget, eps):
    BB = B @ B.T
    return G - G.T, eps * np.eye(G.shape[0]) + noise_budget * BB / np.trace(BB)


def _directions(G, B, noise_budget):
    """Yield ``(which, index, dQ, dD)`` for every entry of ``G`` (which = 0) and ``B`` (which = 1)."""
    K = G.shape[0]
    BB = B @ B.T
    trace = np.trace(BB)
    for index in np.ndindex(G.shape):
        E = np.zeros_like(G)
        E[index] = 1.0
        yield 0, index, E - E.T, np.zeros((K, K))
    for index in np.ndindex(B.shape):
        E = np.zeros_like(B)
        E[index] = 1.0
        dBB = E @ B.T + B @ E.T
        yield 1, index, np.zeros((K, K)), noise_budget * (dBB / trace - BB * np.trace(dBB) / trace**2)


def _learned_process(G, B, noise_budget, eps, process_kwargs):
    from ..processes.linear import StationaryLinearSDE

    G = np.asarray(G, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or B.shape[0] != G.shape[0]:
        raise ValueError(f"G, B: expected (K, K) and (K, r) matrices, got {G.shape} and {B.shape}")
    Q, D = _qd_from_params(G, B, noise_budget, eps)
    return G, B, StationaryLinearSDE(Q, D, np.eye(G.shape[0]), **process_kwargs)


def learned_prior_kl(G, B, mean, data_var, noise_budget=1.0, eps=1e-3, return_gradient=False, **process_kwargs):
    """``KL(q_T || pi)`` summed over coordinates for ``Q = G - G^T``, ``D = eps I + b B B^T / tr(B B^T)``.

    With the exact score of data ``N(mean, data_var I)`` the ELBO is ``-H(x) - KL(q_T || pi)``, so this is
    minus the (known-score) ELBO up to a constant. ``return_gradient=True`` also returns the exact
    gradients ``(dKL/dG, dKL/dB)`` through ``expm_frechet`` (one Frechet derivative per parameter entry).
    """
    G, B, process = _learned_process(G, B, noise_budget, eps, process_kwargs)
    tau = process.integrated_beta(process.t_max)
    A = tau * process.F0
    Phi = expm(A)
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    kl = float(np.sum(_gaussian_prior_kl(process, Phi, mean, data_var)[0]))
    if not return_gradient:
        return kl
    grads = [np.zeros_like(G), np.zeros_like(B)]
    for which, index, dQ, dD in _directions(G, B, noise_budget):
        dPhi = expm_frechet(A, -tau * (dQ + dD), compute_expm=False)
        grads[which][index] = np.sum(_gaussian_prior_kl(process, Phi, mean, data_var, dPhi)[1])
    return kl, grads[0], grads[1]


def fixed_score_elbo(G, B, score_matrix, mean, data_var, noise_budget=1.0, eps=1e-3, t_min=1e-3, n_nodes=24,
                     return_gradient=False, **process_kwargs):
    """Closed-form ISM ELBO of data ``N(mean, data_var I)`` for a fixed linear score ``s(y, t) = -(M (x) I) y``.

    ``ELBO = E log pi(y_T) + int_{t_min}^T beta [-1/2 E||M y||^2_{2D} + d tr(2 D M) + d tr(F0)] ds + H(v0)``
    with ``y_s | x ~ N(Phi [x, 0], Sigma_inf + Phi (Sigma_0 - Sigma_inf) Phi^T)`` (formulas 1, 3, 7; Gauss-Legendre
    in ``s``; the bound is on ``y_{t_min}``, without the boundary decoder). The score model is fixed and the
    process ``(Q, D)`` (parameterised as in :func:`learned_prior_kl`) is what varies: with
    ``return_gradient=True`` the exact gradients ``(dELBO/dG, dELBO/dB)`` come through ``expm_frechet``.
    """
    G, B, process = _learned_process(G, B, noise_budget, eps, process_kwargs)
    M = np.asarray(score_matrix, dtype=np.float64)
    K = G.shape[0]
    if M.shape != (K, K):
        raise ValueError(f"score_matrix: expected shape {(K, K)}, got {M.shape}")
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    d = mean.size
    nodes, weights = np.polynomial.legendre.leggauss(int(n_nodes))
    times = t_min + 0.5 * (process.t_max - t_min) * (nodes + 1.0)
    weights = 0.5 * (process.t_max - t_min) * weights * process.beta(times)
    taus = np.append(process.integrated_beta(times), process.integrated_beta(process.t_max))
    S = process.Sigma_inf
    M0 = _initial_cov(process, data_var) - S
    e0 = np.zeros(K)
    e0[0] = 1.0
    sum_m2 = float(mean @ mean)
    v0_entropy = 0.5 * (K - 1) * d * (np.log(2 * np.pi * process.initial_aux_var) + 1.0)

    def value(Phi, D, F0, dPhi=None, dD=None, dF0=None):
        """ELBO (or its directional derivative when the d* arguments are given)."""
        GG = 2.0 * D
        N = M.T @ GG @ M
        total = 0.0
        for j, w in enumerate(weights):
            P = Phi[j]
            C = S + P @ M0 @ P.T
            m0 = P @ e0
            if dPhi is None:
                total += w * (-0.5 * (d * np.trace(N @ C) + sum_m2 * m0 @ N @ m0) + d * np.trace(GG @ M)
                              + d * np.trace(F0))
            else:
                dP = dPhi[j]
                dC = dP @ M0 @ P.T + P @ M0 @ dP.T
                dN = 2.0 * M.T @ dD @ M
                dm0 = dP @ e0
                total += w * (-0.5 * (d * (np.trace(dN @ C) + np.trace(N @ dC))
                                      + sum_m2 * (m0 @ dN @ m0 + 2 * m0 @ N @ dm0))
                              + d * np.trace(2.0 * dD @ M) + d * np.trace(dF0))
        P = Phi[-1]
        C = S + P @ M0 @ P.T
        m0 = P @ e0
        S_inv = np.linalg.inv(S)
        if dPhi is None:
            prior = -0.5 * (d * np.trace(S_inv @ C) + sum_m2 * m0 @ S_inv @ m0) \
                - 0.5 * d * np.linalg.slogdet(S)[1] - 0.5 * K * d * LOG_2PI
            return float(prior + total + v0_entropy)
        dP = dPhi[-1]
        dC = dP @ M0 @ P.T + P @ M0 @ dP.T
        return float(-0.5 * (d * np.trace(S_inv @ dC) + 2 * sum_m2 * m0 @ S_inv @ (dP @ e0)) + total)

    Phi = expm(taus[:, None, None] * process.F0)
    elbo = value(Phi, process.D, process.F0)
    if not return_gradient:
        return elbo
    S_inv = np.linalg.inv(S)
    grads = [np.zeros_like(G), np.zeros_like(B)]
    for which, index, dQ, dD in _directions(G, B, noise_budget):
        dF0 = -(dQ + dD) @ S_inv
        dPhi = np.stack([expm_frechet(tau * process.F0, tau * dF0, compute_expm=False) for tau in taus])
        grads[which][index] = value(Phi, process.D, process.F0, dPhi, dD, dF0)
    return elbo, grads[0], grads[1]


def learn_stationary_sde(K, mean, data_var, noise_budget=1.0, steps=200, learning_rate=0.05, rng=None, eps=1e-3,
                         score_matrix=None, progress=False, **process_kwargs):
    """Learn ``(Q, D)`` by maximising an ELBO of Gaussian data ``N(mean, data_var I)`` with exact gradients.

    ``score_matrix=None``: the score is known (the exact score of the data), the ELBO is
    ``-H(x) - KL(q_T || pi)`` (:func:`learned_prior_kl`). A ``(K, K)`` ``score_matrix`` fixes the score model
    ``-(M (x) I) y`` instead (:func:`fixed_score_elbo`). Adam ascent on ``(G, B)``; the noise budget
    ``tr(D) = noise_budget + K eps`` is fixed (otherwise the known-score optimum is ``D -> infinity``).

    Returns
    -------
    process : StationaryLinearSDE
        The learned process.
    history : (steps + 1,) array
        The ELBO along the optimisation (nats; for the known score, ``-KL(q_T || pi)``, i.e. up to ``-H(x)``).
    """
    rng = as_generator(rng)
    check_positive(noise_budget, "noise_budget")
    if score_matrix is None:
        def objective(G, B, gradient=False):
            out = learned_prior_kl(G, B, mean, data_var, noise_budget, eps, gradient, **process_kwargs)
            return (-out[0], -out[1], -out[2]) if gradient else -out
    else:
        def objective(G, B, gradient=False):
            return fixed_score_elbo(G, B, score_matrix, mean, data_var, noise_budget, eps, return_gradient=gradient,
                                    **process_kwargs)
    params = [0.5 * rng.standard_normal((K, K)), rng.standard_normal((K, K))]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    history = []
    iterator = range(int(steps))
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="learning (Q, D)")
    for k in iterator:
        elbo, *grads = objective(*params, gradient=True)
        history.append(elbo)
        for p, g, m in zip(params, grads, moments):
            m[0] = 0.9 * m[0] + 0.1 * g
            m[1] = 0.999 * m[1] + 0.001 * g**2
            p += learning_rate * (m[0] / (1 - 0.9 ** (k + 1))) / (np.sqrt(m[1] / (1 - 0.999 ** (k + 1))) + 1e-12)
    history.append(objective(*params))
    return _learned_process(*params, noise_budget, eps, process_kwargs)[2], np.array(history)
