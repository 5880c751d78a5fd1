"""Learning the forward process ``(Q, D)`` of a stationary linear SDE by its ELBO (MDM, arXiv 2302.07261).

Parameterisation: ``Q = G - G^T`` and ``D = eps I + b B B^T / tr(B B^T)`` (a fixed noise budget ``tr(D)``;
otherwise a known-score optimum is ``D -> infinity``), ``Sigma_inf = I``, ``F0 = -(Q + D)``.

* Gaussian data, known score: :func:`learned_prior_kl` (minus the ELBO up to a constant) with exact gradients
  through ``scipy.linalg.expm_frechet``; a fixed linear score: :func:`fixed_score_elbo`;
  :func:`learn_stationary_sde` runs Adam on either.
* Any score model, e.g. a network trained jointly with ``(Q, D)``: :func:`dsm_elbo_with_gradients` and
  :func:`learned_elbo_gradient` give the reparameterised Monte Carlo DSM ELBO (one time per point, the bound
  on ``y_{t_min}``), its gradient with respect to the model output (the network's training signal) and its
  gradient with respect to ``(G, B)``: through ``y = Phi lift(x) + L eps`` (the model's vector-Jacobian
  product), the target ``g = -L^{-T} eps``, the weight ``2 beta D``, ``div f`` and the closed-form prior term.
  ``Phi`` and its derivative come from one batched ``expm`` of ``[[tau F0, tau dF0], [0, tau F0]]`` per
  direction, ``dL`` from ``dSigma`` by the Cholesky derivative ``L tril_half(L^{-1} dSigma L^{-T})``.
"""
from typing import NamedTuple

import numpy as np
from scipy.linalg import expm, expm_frechet

from ..backend import as_generator, check_choice, check_count, check_points, check_positive
from ..backend.optim import Adam
from ..processes.base import LOG_2PI
from .elbo_times import sample_times
from .gaussian_elbo import (GaussianData, aux_term, call_model, check_stationary_process, gaussian_prior_kl,
                            initial_cov, prior_term)


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


def learned_process(G, B, noise_budget=1.0, eps=1e-3, **process_kwargs):
    """The stationary linear SDE of the parameters ``(G, B)``: ``Q = G - G^T``, ``D = eps I + b B B^T / tr(B B^T)``.

    Parameters
    ----------
    G, B : (K, K) and (K, r) arrays
    noise_budget : float
        ``b = tr(D) - K eps``.
    eps : float
    process_kwargs
        Keyword arguments of :class:`~opdiff.processes.StationaryLinearSDE`.

    Returns
    -------
    StationaryLinearSDE
    """
    return _learned_process(G, B, check_positive(noise_budget, "noise_budget"), eps, process_kwargs)[2]


def learned_prior_kl(G, B, mean, data_var, noise_budget=1.0, eps=1e-3, return_gradient=False, **process_kwargs):
    """``KL(q_T || pi)`` summed over coordinates for ``Q = G - G^T``, ``D = eps I + b B B^T / tr(B B^T)``.

    With the exact score of data ``N(mean, data_var I)`` the ELBO is ``-H(x) - KL(q_T || pi)``, so this is
    minus the (known-score) ELBO up to a constant.

    Parameters
    ----------
    G, B : (K, K) and (K, r) arrays
        The unconstrained parameters.
    mean : float or (d,) array
    data_var : float
    noise_budget : float
        ``b = tr(D) - K eps``.
    eps : float
    return_gradient : bool
        Also return the exact gradients ``(dKL/dG, dKL/dB)`` through ``expm_frechet`` (one Frechet derivative
        per parameter entry).
    process_kwargs
        Keyword arguments of :class:`~opdiff.processes.StationaryLinearSDE` (schedule, ``T``).

    Returns
    -------
    float, or (float, (K, K) array, (K, r) array)
    """
    G, B, process = _learned_process(G, B, noise_budget, eps, process_kwargs)
    tau = process.integrated_beta(process.t_max)
    A = tau * process.F0
    Phi = expm(A)
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    kl = float(np.sum(gaussian_prior_kl(process, Phi, mean, data_var)[0]))
    if not return_gradient:
        return kl
    grads = [np.zeros_like(G), np.zeros_like(B)]
    for which, index, dQ, dD in _directions(G, B, noise_budget):
        dPhi = expm_frechet(A, -tau * (dQ + dD), compute_expm=False)
        grads[which][index] = np.sum(gaussian_prior_kl(process, Phi, mean, data_var, dPhi)[1])
    return kl, grads[0], grads[1]


def fixed_score_elbo(G, B, score_matrix, mean, data_var, noise_budget=1.0, eps=1e-3, t_min=1e-3, n_nodes=24,
                     return_gradient=False, **process_kwargs):
    """Closed-form ISM ELBO of data ``N(mean, data_var I)`` for a fixed linear score ``s(y, t) = -(M (x) I) y``.

    ``ELBO = E log pi(y_T) + int_{t_min}^T beta [-1/2 E||M y||^2_{2D} + d tr(2 D M) + d tr(F0)] ds + H(v0)``
    with ``y_s | x ~ N(Phi [x, 0], Sigma_inf + Phi (Sigma_0 - Sigma_inf) Phi^T)`` (Gauss-Legendre in ``s``; the
    bound is on ``y_{t_min}``, without the boundary decoder). The score model is fixed and the
    process ``(Q, D)`` (parameterised as in :func:`learned_prior_kl`) is what varies.

    Parameters
    ----------
    G, B : (K, K) and (K, r) arrays
    score_matrix : (K, K) array
        ``M`` of the score model.
    mean : float or (d,) array
    data_var : float
    noise_budget, eps : float
        As :func:`learned_prior_kl`.
    t_min : float
    n_nodes : int
        Gauss-Legendre nodes of the time integral.
    return_gradient : bool
        Also return the exact gradients ``(dELBO/dG, dELBO/dB)`` through ``expm_frechet``.
    process_kwargs
        Keyword arguments of :class:`~opdiff.processes.StationaryLinearSDE`.

    Returns
    -------
    float, or (float, (K, K) array, (K, r) array)
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
    M0 = initial_cov(process, data_var) - S
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

    Parameters
    ----------
    K : int
        Number of blocks (data and ``K - 1`` auxiliary variables).
    mean : float or (d,) array
    data_var : float
    noise_budget : float
    steps : int
        Adam steps.
    learning_rate : float
    rng : None, int or numpy.random.Generator
        Initialisation of ``(G, B)``.
    eps : float
    score_matrix : (K, K) array, optional
    progress : bool
        Show a tqdm bar.
    process_kwargs
        Keyword arguments of :class:`~opdiff.processes.StationaryLinearSDE`.

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
    optimiser = Adam(params, lr=learning_rate, eps=1e-12, maximize=True)
    history = []
    iterator = range(check_count(steps, "steps"))
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="learning (Q, D)")
    for _ in iterator:
        elbo, *grads = objective(*params, gradient=True)
        history.append(elbo)
        optimiser.step(grads)
    history.append(objective(*params))
    return _learned_process(*params, noise_budget, eps, process_kwargs)[2], np.array(history)


# ---------------------------------------------------------------------------------------- any score model
class ElboGradients(NamedTuple):
    """The reparameterised DSM ELBO of a batch and its gradients.

    Attributes
    ----------
    values : (n,) array
        ELBO estimate of each point (nats; one time and one noise draw per point, no boundary decoder).
    output_cotangent : (n, K d) array
        ``d values_i / d output_i``: the gradient with respect to the model's output (ascend it to train the
        model by maximum likelihood).
    gradients : (p,) array
        ``d mean(values) / d theta`` along each given direction.
    """

    values: np.ndarray
    output_cotangent: np.ndarray
    gradients: np.ndarray


def _frechet_at(taus, F0, dF0):
    """``expm(tau F0)`` and its Frechet derivative along ``tau dF0`` for each ``tau`` of ``taus (n,)``.

    One block ``expm([[A, E], [0, A]])`` per distinct ``tau``; returns two ``(n, K, K)`` stacks.
    """
    unique, inverse = np.unique(np.asarray(taus, dtype=np.float64), return_inverse=True)
    K = F0.shape[0]
    block = np.zeros((unique.size, 2 * K, 2 * K))
    block[:, :K, :K] = block[:, K:, K:] = unique[:, None, None] * F0
    block[:, :K, K:] = unique[:, None, None] * dF0
    full = expm(block)[inverse.ravel()]
    return full[:, :K, :K], full[:, :K, K:]


def _cholesky_derivative(L, L_inv, dSigma):
    """``dL`` of ``Sigma = L L^T`` along ``dSigma`` (batched): ``L tril_half(L^{-1} dSigma L^{-T})``."""
    inner = L_inv @ dSigma @ np.swapaxes(L_inv, -1, -2)
    lower = np.tril(inner, -1) + 0.5 * np.einsum("...ii->...i", inner)[..., None] * np.eye(L.shape[-1])
    return L @ lower


def _lower_transpose_apply(L_inv, z):
    """``L^{-T} z`` per row for blocks ``z (n, K, d)`` and ``L_inv (n, K, K)``."""
    return np.einsum("nlk,nld->nkd", L_inv, z)


def dsm_elbo_with_gradients(process, x, model, rng=None, model_vjp=None, output="score", directions=(),
                            t_min=1e-3, importance=True, time_groups=None, base=None):
    """DSM ELBO of a batch with its gradients w.r.t. the model output and along directions of ``(Q, D)``.

    The estimate is :func:`opdiff.estimators.elbo.dsm_elbo` with ``n_times=1`` and ``boundary=False``, drawn
    with the same random numbers in the same order (``v0``, the time, the noise ``eps``), so the values agree
    for the same seed. The derivative along a direction ``(dQ, dD)`` (``Sigma_inf`` fixed) holds the random
    numbers fixed (reparameterisation): ``y = Phi lift(x) + L eps`` moves with ``(Q, D)`` and the model's
    response enters through ``model_vjp``.

    Parameters
    ----------
    process : StationaryLinearSDE
    x : (n, d) array
    model : callable
        ``model(y (n, K d), t (n,)) -> (n, K d)``: the score (``output="score"``) or the standardised noise
        ``eps_hat`` with score ``-L^{-T} eps_hat`` (``output="noise"``, ``L L^T = Sigma(t)``).
    rng : None, int or numpy.random.Generator
    model_vjp : callable, optional
        ``model_vjp(y, t, cotangent (n, K d)) -> (n, K d)``: ``J^T cotangent`` of the model at the last
        ``model(y, t)`` call, ``J = d output / d y``. Needed when ``directions`` is not empty.
    output : {"score", "noise"}
    directions : sequence of ((K, K), (K, K)) pairs
        ``(dQ, dD)``: skew-symmetric and symmetric perturbations.
    t_min : float
    importance : bool
        Importance-sampled time (otherwise uniform).
    time_groups : int, optional
        Draw this many times and give them to the rows in turn (row ``i`` gets time ``i mod time_groups``):
        still unbiased, and the transitions and their derivatives are computed once per distinct time. The
        values then differ from :func:`~opdiff.estimators.elbo.dsm_elbo`'s draws. Default: one time per row.
    base : GaussianData, optional
        The model is a correction: the score is ``base``'s exact marginal score under ``process`` plus the
        model's score. The base's dependence on ``y`` and on ``(Q, D)`` enters the gradients in closed form
        (:meth:`~opdiff.estimators.elbo.GaussianData.score_derivative`).

    Returns
    -------
    ElboGradients
    """
    check_stationary_process(process)
    if base is not None and not isinstance(base, GaussianData):
        raise TypeError(f"base: expected a GaussianData (e.g. GaussianData.fit(x)), got {type(base).__name__}")
    x = check_points(x, "x").astype(np.float64)
    check_choice(output, "output", {"score", "noise"})
    if not callable(model):
        raise TypeError(f"model: expected a callable model(y, t), got {type(model).__name__}")
    directions = list(directions)
    if directions and not callable(model_vjp):
        raise TypeError("model_vjp: expected a callable model_vjp(y, t, cotangent) when directions are given")
    rng = as_generator(rng)
    n, d = x.shape
    K = process.n_blocks
    S_inv = np.linalg.inv(process.Sigma_inf)
    M = process.initial_cov - process.Sigma_inf  # Sigma(t) = Sigma_inf + Phi M Phi^T (hybrid start)
    v0 = np.sqrt(process.initial_aux_var) * rng.standard_normal((n, (K - 1) * d))
    if time_groups is None:
        t, weight = sample_times(process, n, rng, t_min, importance)
    else:
        groups = np.arange(n) % check_count(time_groups, "time_groups")
        t, weight = (values[groups] for values in sample_times(process, min(time_groups, n), rng, t_min, importance))
    eps = rng.standard_normal((n, K, d))
    taus = process.integrated_beta(t)
    tau_T = float(process.integrated_beta(process.t_max))
    Phi_op, Sigma_op = process.transition(t)  # the process's small-t series keeps O(t^3) variances accurate
    P, Sigma = Phi_op.block, Sigma_op.block
    L = np.linalg.cholesky(Sigma)
    L_inv = np.linalg.inv(L)
    y = P[:, :, :1] * x[:, None, :] + L @ eps
    target = -_lower_transpose_apply(L_inv, eps)
    out = call_model(model, y.reshape(n, -1), t, "model").reshape(n, K, d)
    model_score = -_lower_transpose_apply(L_inv, out) if output == "noise" else out
    if base is None:
        score = model_score
    else:
        base_score, precision = base.block_score(P, Sigma, y)
        score = base_score + model_score
    beta = process.beta(t)
    GG = 2.0 * process.D
    wb = (weight * beta)[:, None, None]
    integrand = weight * beta * (-0.5 * np.einsum("kl,nkd,nld->n", GG, score, score)
                                 + np.einsum("kl,nkd,nld->n", GG, score, target)) \
        + weight * d * beta * np.trace(process.F0)
    values = prior_term(process, x) + aux_term(process, v0) + integrand
    score_cotangent = wb * np.einsum("kl,nld->nkd", GG, target - score)
    cotangent = -L_inv @ score_cotangent if output == "noise" else score_cotangent
    gradients = np.zeros(len(directions))
    if not directions:
        return ElboGradients(values, cotangent.reshape(n, -1), gradients)
    y_cotangent = np.asarray(model_vjp(y.reshape(n, -1), t, cotangent.reshape(n, -1))).reshape(n, K, d)
    if base is not None:
        y_cotangent = y_cotangent + base.score_vjp(precision, score_cotangent)
    P_T = expm(tau_T * process.F0)
    x_norms = np.sum(x**2, axis=1)
    for j, (dQ, dD) in enumerate(directions):
        dF0 = -(np.asarray(dQ) + np.asarray(dD)) @ S_inv
        _, dP = _frechet_at(taus, process.F0, dF0)
        dSigma = dP @ M @ np.swapaxes(P, 1, 2) + P @ M @ np.swapaxes(dP, 1, 2)
        dL = _cholesky_derivative(L, L_inv, dSigma)
        dy = dP[:, :, :1] * x[:, None, :] + dL @ eps
        # d(L^{-T} z) = -L^{-T} dL^T L^{-T} z, for the target and (noise form) the score
        dtarget = -_lower_transpose_apply(L_inv, np.einsum("nlk,nld->nkd", dL, target))
        dscore = -_lower_transpose_apply(L_inv, np.einsum("nlk,nld->nkd", dL, model_score)) if output == "noise" \
            else 0.0
        if base is not None:
            dscore = dscore + base.score_derivative(precision, P, dP, dSigma, y)
        dGG = 2.0 * np.asarray(dD)
        d_integrand = weight * beta * (-0.5 * np.einsum("kl,nkd,nld->n", dGG, score, score)
                                       + np.einsum("kl,nkd,nld->n", dGG, score, target)
                                       + np.einsum("kl,nkd,nld->n", GG, score, dtarget)) \
            + np.sum(score_cotangent * dscore, axis=(1, 2)) + np.sum(y_cotangent * dy, axis=(1, 2)) \
            + weight * d * beta * np.trace(dF0)
        dP_T = _frechet_at([tau_T], process.F0, dF0)[1][0]
        dSigma_T = dP_T @ M @ P_T.T + P_T @ M @ dP_T.T
        d_prior = -(P_T[:, 0] @ S_inv @ dP_T[:, 0]) * x_norms - 0.5 * d * np.trace(S_inv @ dSigma_T)
        gradients[j] = float(np.mean(d_integrand + d_prior))
    return ElboGradients(values, cotangent.reshape(n, -1), gradients)


def learned_elbo_gradient(G, B, x, model, model_vjp, output="noise", noise_budget=1.0, eps=1e-3, rng=None,
                          t_min=1e-3, importance=True, time_groups=None, base=None, **process_kwargs):
    """DSM ELBO of a batch under the learned process of ``(G, B)`` and its gradients w.r.t. ``G``, ``B`` and the model.

    Parameters
    ----------
    G, B : (K, K) and (K, r) arrays
        ``Q = G - G^T``, ``D = eps I + noise_budget B B^T / tr(B B^T)``.
    x : (n, d) array
    model, model_vjp, output, rng, t_min, importance, time_groups, base
        As :func:`dsm_elbo_with_gradients`.
    noise_budget, eps : float
    process_kwargs
        Keyword arguments of :class:`~opdiff.processes.StationaryLinearSDE`.

    Returns
    -------
    values : (n,) array
    output_cotangent : (n, K d) array
    grad_G : (K, K) array
    grad_B : (K, r) array
        ``d mean(values) / dG`` and ``/ dB`` at fixed random numbers.
    process : StationaryLinearSDE
        The process the values were computed with.
    """
    G, B, process = _learned_process(G, B, check_positive(noise_budget, "noise_budget"), eps, process_kwargs)
    listed = list(_directions(G, B, noise_budget))
    result = dsm_elbo_with_gradients(process, x, model, rng, model_vjp, output, [(dQ, dD) for *_, dQ, dD in listed],
                                     t_min, importance, time_groups, base)
    grads = [np.zeros_like(G), np.zeros_like(B)]
    for (which, index, _, _), value in zip(listed, result.gradients):
        grads[which][index] = value
    return result.values, result.output_cotangent, grads[0], grads[1], process
