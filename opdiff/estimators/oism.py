"""Operator-informed score matching (OISM): closed-form spectral score estimates for every t.

Model (``g = grad log mu``, eigenfunctions ``phi_a`` of the generator, see :mod:`opdiff.spectral`)::

    s_t(x) = g(x) + sum_a alpha_a(t) grad phi_a(x)

The ISM / Fisher loss of this model is the quadratic ``alpha^T A_t alpha - 2 alpha^T b_t + const`` with

    A_t[a, b] = E_{rho_t} <grad phi_a, grad phi_b> = sum_k G[ab, k] exp(mu_k t) m_k
    b_t[a]    = -(lambda_a / c) E_{rho_t}[phi_a]  = -(lambda_a / c) exp(lambda_a t) m_{a}

where ``m_k = E_{rho_0}[psi_k]`` are sample means of eigenfunctions over the data -- the only way
data enter. ``alpha(t) = (A_t + ridge I)^{-1} b_t`` is solved in closed form on a log-spaced grid of
times (block by block for per-coordinate bases) and interpolated (cubic spline in ``log t``) between
grid points; times off the grid are solved exactly.
"""
import warnings

import numpy as np
from scipy.interpolate import CubicSpline

from ..backend.threads import single_threaded_blas
from ..backend import ParamsMixin, as_generator, check_choice, check_count, check_fitted, check_positive, check_time, chunk_rows
from ..sampling.flow import integrate_flow
from .losses import LinearScoreModel


class IllConditionedWarning(UserWarning):
    """The OISM linear system ``A_t + ridge I`` is ill conditioned (condition number in the message)."""


class DivergedFlowWarning(UserWarning):
    """Probability-flow trajectories left every bounded region (their log-density is reported as -inf)."""


class OISM(ParamsMixin):
    """Operator-informed score matching estimator.

    Parameters
    ----------
    process : MarkovProcess
        The forward process; ``basis.check_process(process)`` must accept it
        (``Hermite`` for ``OrnsteinUhlenbeck(theta)``, ``Fourier`` for periodic ``BrownianMotion(sigma)``
        with coordinates wrapped to ``[-pi, pi)``, ``SphericalHarmonics`` for Brownian motion on ``S^2``).
    basis : opdiff.spectral.EigenBasis
    ridge : float
        ``ridge`` added to the diagonal of ``A_t`` (absolute; ``A_t`` is ``O(|lambda|)`` at large t).
    shrinkage : None or "james-stein"
        Positive-part James-Stein shrinkage of the standardised sample means of the non-constant
        moment functions towards 0 (their mean under ``mu``), per block. Shrinking every mean by one
        factor ``f`` is exactly replacing the empirical law by ``f rho_N + (1 - f) mu``, so ``A_t`` stays PSD.
    t_max : float, optional
        Largest time (default ``process.t_max``; the fitted value is ``t_max_``).
    n_grid : int
        Number of log-spaced grid times in ``[t_grid_min, t_max]``.
    t_grid_min : float, optional
        Smallest grid time (default ``1e-3 / max|mu_k|``); smaller times are solved exactly.
    condition_warn : float
        Warn (:class:`IllConditionedWarning`) when ``cond(A_t + ridge I)`` exceeds this.
    chunk_bytes : int, optional
        Chunk budget for the sample means and for evaluations.
    time : float, optional
        Density-estimation time of :meth:`score_samples` and of ``score(X)`` without ``t`` (the mean
        held-out log-likelihood ``log rho_time`` that scikit-learn's model selection maximises).

    Every parameter is stored unchanged by the constructor (scikit-learn's contract: ``get_params``,
    ``set_params``, ``clone``); they are validated by :meth:`fit`.

    Attributes
    ----------
    t_max_ : float
        The largest time, validated.
    moment_means_ : (n_blocks, n_moments) array
        (Shrunk) sample means ``m_k``.
    shrinkage_factor_ : (n_blocks,) array
    t_grid_ : (n_grid,) array
    coefficients_grid_ : (n_grid, n_basis) array
    condition_numbers_ : (n_grid, n_blocks) array
    """

    def __init__(self, process, basis, ridge=1e-8, shrinkage=None, t_max=None, n_grid=96, t_grid_min=None,
                 condition_warn=1e10, chunk_bytes=None, time=None):
        self.process = process
        self.basis = basis
        self.ridge = ridge
        self.shrinkage = shrinkage
        self.t_max = t_max
        self.n_grid = n_grid
        self.t_grid_min = t_grid_min
        self.condition_warn = condition_warn
        self.chunk_bytes = chunk_bytes
        self.time = time

    def _check_params(self):
        """Validate the constructor's parameters; returns them as a dict (nothing is stored)."""
        if not all(callable(getattr(self.basis, name, None)) for name in ("check_process", "moment_values")):
            raise TypeError(f"basis: expected an opdiff.spectral.EigenBasis (e.g. Hermite(dim, degree)), "
                            f"got {type(self.basis).__name__} {self.basis!r}")
        self.basis.check_process(self.process)
        if self.shrinkage is not None:
            check_choice(self.shrinkage, "shrinkage", ("james-stein",))
        t_max = check_positive(self.process.t_max if self.t_max is None else self.t_max, "t_max")
        n_grid = check_count(self.n_grid, "n_grid", minimum=4)
        scale = float(np.max(np.abs(self.basis.moment_eigenvalues)))
        t_grid_min = check_positive(1e-3 / scale if self.t_grid_min is None else self.t_grid_min, "t_grid_min")
        if t_grid_min >= t_max:
            raise ValueError(f"t_grid_min: expected < t_max={t_max}, got {t_grid_min}")
        if self.time is not None and not 0.0 < check_positive(self.time, "time") < t_max:
            raise ValueError(f"time: expected a density-estimation time in (0, {t_max}), got {self.time}")
        return {"ridge": check_positive(self.ridge, "ridge", strict=False), "t_max": t_max, "n_grid": n_grid,
                "time": None if self.time is None else float(self.time),
                "t_grid_min": t_grid_min, "condition_warn": check_positive(self.condition_warn, "condition_warn"),
                "chunk_bytes": None if self.chunk_bytes is None else check_count(self.chunk_bytes, "chunk_bytes")}

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Sample means of the moment functions over ``X (n, dim)`` (chunked), then the grid solves.

        Parameters
        ----------
        X : (n, dim) array
            Data; on the torus (``Fourier``) angles in ``[-pi, pi]``, on the sphere unit vectors.
        y : None
            Ignored (scikit-learn convention).
        sample_weight : (n,) array, optional
            Non-negative weights of the data points (weighted sample means; the James-Stein
            shrinkage then uses the effective sample size ``(sum w)^2 / sum w^2``).

        Returns
        -------
        self
        """
        settings = self._check_params()
        X = self.basis.check_data(X, "X")
        n = X.shape[0]
        weights = _check_sample_weight(sample_weight, n)
        nb, M = self.basis.n_blocks, self.basis.n_moments
        total = np.zeros((nb, M))
        total_sq = np.zeros((nb, M))
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, naming X
            for sl in chunk_rows(n, 8 * nb * M * 3, settings["chunk_bytes"]):
                psi = np.asarray(self.basis.moment_values(X[sl]), dtype=np.float64)
                w = weights[sl, None, None]
                total += (w * psi).sum(0)
                total_sq += (w * psi * psi).sum(0)
        w_sum = float(weights.sum())
        means = total / w_sum
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(total_sq))):
            raise ValueError("X: expected points where the basis is finite, got non-finite moment sample means "
                             f"(largest |x| = {float(np.max(np.abs(X))):.3g})")
        n_effective = w_sum**2 / float(np.sum(weights**2))  # n for uniform weights
        variances = np.maximum(total_sq / w_sum - means**2, 0.0) * n_effective / max(n_effective - 1.0, 1.0)
        return self._fit_moments(settings, means, variances, n_effective)

    def fit_moments(self, moment_means, variances=None, n_samples=None):
        """Fit from given means ``E_{rho_0}[psi_k]`` (e.g. exact expectations of a known law).

        Parameters
        ----------
        moment_means : (n_blocks, n_moments) array
        variances : (n_blocks, n_moments) array, optional
            Per-function variances (needed for ``shrinkage="james-stein"``).
        n_samples : int, optional
            Sample size behind the means (needed for shrinkage).

        Returns
        -------
        self
        """
        return self._fit_moments(self._check_params(), moment_means, variances, n_samples)

    def _fit_moments(self, settings, moment_means, variances, n_samples):
        means = np.array(moment_means, dtype=np.float64)
        shape = (self.basis.n_blocks, self.basis.n_moments)
        if means.shape != shape:
            raise ValueError(f"moment_means: expected shape {shape}, got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("moment_means: expected finite values")
        factor = np.ones(shape[0])
        if self.shrinkage == "james-stein":
            if variances is None or n_samples is None:
                raise ValueError("variances: shrinkage='james-stein' needs the variances and n_samples")
            means, factor = james_stein(means, np.asarray(variances, dtype=np.float64), float(n_samples),
                                        constant=self.basis.moment_eigenvalues == 0)
        t_grid = np.geomspace(settings["t_grid_min"], settings["t_max"], settings["n_grid"])
        coef, cond = self._solve(means, t_grid, settings)
        spline = CubicSpline(np.log(t_grid), coef / self._decay(t_grid), axis=0)
        # commit the fitted state only after every step succeeded
        self.settings_, self.t_max_ = settings, settings["t_max"]
        self.moment_means_, self.shrinkage_factor_ = means, factor
        self.t_grid_, self.coefficients_grid_, self.condition_numbers_ = t_grid, coef, cond
        self.spline_ = spline
        return self

    def system(self, t):
        """``(A_t, b_t)`` at times ``t``: ``(T, n_blocks, B, B)`` and ``(T, n_blocks, B)`` (no ridge)."""
        check_fitted(self, "moment_means_")
        t = self._check_t(t)
        return self.basis.gram(self.moment_means_, t), self.basis.linear_term(self.moment_means_, t)

    def _solve(self, means, t, settings):
        A = self.basis.gram(means, t)
        b = self.basis.linear_term(means, t)
        B = A.shape[-1]
        A = A + settings["ridge"] * np.eye(B)
        with single_threaded_blas():
            w = np.linalg.eigvalsh(A)
            w_max = w[..., -1]
            floor = w_max * B * np.finfo(np.float64).eps
            cond = np.where(w[..., 0] > floor, w_max / np.maximum(w[..., 0], floor), np.inf)
            worst = float(np.max(cond))
            if np.isfinite(worst):
                L = np.linalg.cholesky(A)
                y = np.linalg.solve(L, b[..., None])
                coef = np.linalg.solve(np.swapaxes(L, -1, -2), y)[..., 0]
            else:  # singular directions: minimum-norm (pseudo-inverse) solution
                w, V = np.linalg.eigh(A)
                keep = w > floor[..., None]
                inv_w = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
                coef = np.einsum("tgab,tgb->tga", V, inv_w * np.einsum("tgba,tgb->tga", V, b))
        if worst > settings["condition_warn"]:
            at = np.unravel_index(int(np.argmax(cond)), cond.shape)
            msg = (f"OISM: A_t + ridge I is ill conditioned: condition number {worst:.3g} at t={t[at[0]]:.4g} "
                   f"(n_basis={self.basis.n_basis}, ridge={settings['ridge']}); ")
            msg += ("singular directions are dropped (pseudo-inverse); " if not np.isfinite(worst) else "")
            msg += "increase ridge or reduce the basis"
            warnings.warn(msg, IllConditionedWarning, stacklevel=3)
        if not np.all(np.isfinite(coef)):
            raise FloatingPointError(f"OISM: non-finite coefficients (condition number {worst:.3g})")
        return coef.reshape(len(t), -1), cond

    def _decay(self, t):
        """``exp(-gap t)``, ``(T, 1)``: the slowest decay of the coefficients (``gap`` the smallest ``|lambda_a|``).

        ``b_t`` decays like ``exp(lambda_a t)`` and ``A_t`` tends to a constant, so every ``alpha_a(t)`` is
        ``O(exp(-gap t))``: the spline interpolates ``alpha(t) exp(gap t)``, of order one, and the slowest
        coefficients keep their relative accuracy at long horizons (OU with T = 400) instead of the
        spline's absolute error. Floored at 1e-300 (beyond it the coefficients are 0 to rounding).
        """
        lam = np.abs(np.asarray(self.basis.eigenvalues, dtype=np.float64))
        gap = float(np.min(lam[lam > 0])) if np.any(lam > 0) else 0.0
        return np.maximum(np.exp(-gap * np.asarray(t, dtype=np.float64)), 1e-300)[:, None]

    def _check_t(self, t):
        return np.atleast_1d(check_time(t, "t", 0.0, self.t_max_, include_min=True))

    # ------------------------------------------------------------------ coefficients
    def coefficients(self, t, exact=False):
        """``alpha(t)``: ``(n_basis,)`` for a float ``t``, ``(T, n_basis)`` for an array.

        Inside the grid the cubic spline in ``log t`` is used (``exact=False``); below
        ``t_grid_min`` (and everywhere with ``exact=True``) the system is solved at the unique times.
        """
        check_fitted(self, "moment_means_")
        scalar = np.ndim(t) == 0
        tt = self._check_t(t)
        out = np.empty((tt.shape[0], self.basis.n_basis))
        on_grid = (tt >= self.t_grid_[0]) & (not exact)
        if np.any(on_grid):
            out[on_grid] = self.spline_(np.log(tt[on_grid])) * self._decay(tt[on_grid])
        if np.any(~on_grid):
            uniq, inv = np.unique(tt[~on_grid], return_inverse=True)
            out[~on_grid] = self._solve(self.moment_means_, uniq, self.settings_)[0][inv]
        return out[0] if scalar else out

    # ------------------------------------------------------------------ scores
    def _evaluate(self, x, t, fn, trailing):
        check_fitted(self, "moment_means_")
        x = self.basis.check_points(x)
        n = x.shape[0]
        t_arr = check_time(t, "t", 0.0, self.t_max_, n=n, include_min=True)
        alpha = self.coefficients(float(t_arr) if t_arr.ndim == 0 else t_arr)
        if alpha.ndim == 2 and alpha.shape[0] == 1:
            alpha = alpha[0]
        out = np.empty((n,) + trailing, dtype=x.dtype)
        row_bytes = 8 * self.basis.n_basis * (self.basis.dim + 2) * 2
        for sl in chunk_rows(n, row_bytes, self.settings_["chunk_bytes"]):
            out[sl] = fn(x[sl], alpha if alpha.ndim == 1 else alpha[sl])
        return out

    def score(self, x, t=None):
        """``s_t(x) = grad log mu(x) + sum_a alpha_a(t) grad phi_a(x)``; without ``t``, the mean held-out log-likelihood.

        Parameters
        ----------
        x : (n, dim) array
        t : float or (n,) array, optional
            ``None``: scikit-learn's ``score(X)``, the mean of :meth:`score_samples` (at ``time``).

        Returns
        -------
        (n, dim) array, or float when ``t`` is None
        """
        if t is None:
            return float(np.mean(self.score_samples(x)))
        b = self.basis
        return self._evaluate(x, t, lambda xs, a: b.invariant_score(xs) + b.gradient_combination(xs, a),
                              (b.dim,))

    def score_samples(self, X):
        """``log rho_time(X)`` through the probability flow (:meth:`log_density` at the ``time`` parameter).

        Parameters
        ----------
        X : (n, dim) array

        Returns
        -------
        (n,) array
        """
        check_fitted(self, "moment_means_")
        if self.settings_["time"] is None:
            raise ValueError("time: score_samples needs the density-estimation time; pass OISM(..., time=...)")
        return self.log_density(X, self.settings_["time"])

    def divergence(self, x, t):
        """Analytic ``div s_t(x) = Delta log mu + sum_a alpha_a Delta phi_a``; ``(n,)``."""
        b = self.basis
        return self._evaluate(x, t, lambda xs, a: b.invariant_score_divergence(xs) + b.laplacian_combination(xs, a),
                              ())

    def denoise(self, x, t):
        """Posterior mean ``E[x_0 | x_t = x] = Phi^{-1} (x + Sigma s_t(x))`` (Tweedie) for Gaussian processes.

        Parameters
        ----------
        x : (n, d) array
        t : float or (n,) array, ``t > 0``

        Returns
        -------
        (n, d) array

        Raises
        ------
        ValueError
            For processes without a Gaussian transition (the torus, the sphere).
        """
        if not hasattr(self.process, "transition") or getattr(self.process, "is_manifold", False):
            raise ValueError(f"process: denoise needs a Gaussian transition, got {type(self.process).__name__}")
        b = self.basis
        check_fitted(self, "moment_means_")
        x = b.check_points(x)
        dtype, x = x.dtype, np.asarray(x, dtype=np.float64)  # Phi^{-1} may exceed float32's range
        residual = self._evaluate(x, t, lambda xs, a: b.gradient_combination(xs, a), (b.dim,))
        t_arr = check_time(t, "t", 0.0, self.t_max_, n=x.shape[0])
        Phi, Sigma = self.process.transition(t_arr)
        if getattr(self.process, "variance_preserving", False):
            # OU with its N(0, I) invariant law: x + Sigma grad log mu = (1 - Sigma) x = Phi^2 x, without the
            # cancellation of 1 - Sigma at long horizons
            base = Phi.apply(x)
        else:
            base = Phi.solve(x + Sigma.apply(b.invariant_score(x)))
        with np.errstate(over="ignore"):
            out = base + Phi.solve(Sigma.apply(residual))
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(f"OISM.denoise: the posterior mean overflows at t={t} (Phi^-1 Sigma grows "
                                     "like exp(t) while the spectral coefficients underflow)")
        return out.astype(dtype, copy=False)

    def velocity(self, x, t):
        """Probability-flow velocity ``c (g - s_t) = -c sum_a alpha_a grad phi_a`` (forward time)."""
        c = self.basis.generator_scale
        return self._evaluate(x, t, lambda xs, a: -c * self.basis.gradient_combination(xs, a), (self.basis.dim,))

    def velocity_divergence(self, x, t):
        """``div`` of :meth:`velocity`: ``-c sum_a alpha_a Delta phi_a``; ``(n,)``."""
        c = self.basis.generator_scale
        return self._evaluate(x, t, lambda xs, a: -c * self.basis.laplacian_combination(xs, a), ())

    def linear_model(self):
        """The spectral score as a :class:`LinearScoreModel` in ``alpha`` (for the losses)."""
        b = self.basis
        return LinearScoreModel(
            features=lambda x, t: b.gradients(x),
            offset=lambda x, t: b.invariant_score(x),
            feature_divergence=lambda x, t: b.laplacians(x),
            offset_divergence=lambda x, t: b.invariant_score_divergence(x),
        )

    # ------------------------------------------------------------------ probability flow
    def _flow(self, x, t_start, t_end, n_steps, with_divergence, progress):
        """RK4 in ``u = log t`` for ``dx/dt = velocity`` (and ``d ell/dt = div velocity``), by
        :func:`opdiff.sampling.integrate_flow`; paths leaving ``|x| < 1e8`` stop and are reported dead.

        Returns ``(x_end (n, dim), ell (n,), alive (n,) bool)``.
        """
        times = np.exp(np.linspace(np.log(t_start), np.log(t_end), int(n_steps) + 1))
        times[0], times[-1] = t_start, t_end  # exp(log T) may round above T
        run = integrate_flow(self.velocity, x, times, divergence=self.velocity_divergence if with_divergence else None,
                             project=self.basis.project, method="rk4", log_time=True, bound=1e8, progress=progress)
        ell = run.extras.get("divergence_integral", np.zeros(x.shape[0]))
        return run.x, ell, ~run.extras["diverged"]

    def _diverged(self, alive, what):
        n_bad = int((~alive).sum())
        if n_bad:
            warnings.warn(f"OISM.{what}: the probability-flow ODE diverged for {n_bad} of {alive.size} points "
                          "(the spectral score is unreliable far from the data; reduce the basis or raise ridge)",
                          DivergedFlowWarning, stacklevel=3)

    def log_density(self, x, t, n_steps=64, progress=False):
        """``log rho_t(x)`` through the probability-flow ODE and the instantaneous change of variables.

        ``log rho_t(x) = log mu(x_T) + int_t^T div v(x_s, s) ds`` with ``x_s`` the flow from ``x_t = x``
        (RK4 with ``n_steps`` steps in ``log t``), ``mu`` the invariant law (the terminal law up to
        ``exp(-|lambda_1| T)``).

        Parameters
        ----------
        x : (n, dim) array
        t : float, ``0 < t < t_max``
        n_steps : int
        progress : bool
            Show a tqdm progress bar (off by default).

        Returns
        -------
        (n,) array
            ``-inf`` (with a :class:`DivergedFlowWarning`) where the flow diverged.
        """
        check_fitted(self, "moment_means_")
        x = self.basis.check_points(x)
        dtype = x.dtype  # the flow runs in float64; the result keeps float32
        x = np.array(x, dtype=np.float64)
        t_arr = check_time(t, "t", 0.0, self.t_max_)
        if t_arr.ndim or float(t_arr) >= self.t_max_:
            raise ValueError(f"t: expected a float in (0, {self.t_max_}), got {t}")
        t = float(t_arr)
        xT, ell, alive = self._flow(x, t, self.t_max_, n_steps, True, progress)
        self._diverged(alive, "log_density")
        return np.where(alive, self.basis.invariant_logpdf(xT) + ell, -np.inf).astype(dtype, copy=False)

    def sample(self, n, t=None, rng=None, n_steps=64, progress=False):
        """Draw ``n`` points: start from ``mu`` at ``t_max``, integrate the probability-flow ODE to ``t``.

        Same argument order as :meth:`DiffusionKernelSmoother.sample` ``(n, t, rng)``.

        Parameters
        ----------
        n : int
        t : float, optional
            Final time in ``(0, t_max)`` (default ``t_grid_min``, the smallest grid time).
        rng : None, int or Generator
        n_steps : int
            RK4 steps in ``log t``.
        progress : bool
            Show a tqdm progress bar (off by default).

        Returns
        -------
        (n, dim) array
        """
        check_fitted(self, "moment_means_")
        n = check_count(n, "n")
        n_steps = check_count(n_steps, "n_steps")
        t_end = self.t_grid_[0] if t is None else float(check_time(t, "t", 0.0, self.t_max_))
        x = self.basis.sample_invariant(n, as_generator(rng))
        x, _, alive = self._flow(x, self.t_max_, t_end, n_steps, False, progress)
        if not alive.all():
            raise FloatingPointError(f"OISM.sample: the probability-flow ODE diverged for {int((~alive).sum())} "
                                     f"of {n} samples; reduce the basis, raise ridge or use more steps")
        return x


def _check_sample_weight(sample_weight, n):
    """``(n,)`` non-negative weights with a positive sum from ``sample_weight`` (None: all ones)."""
    if sample_weight is None:
        return np.ones(n)
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"sample_weight: expected an array of {n} non-negative numbers, "
                        f"got {type(sample_weight).__name__}") from None
    if weights.shape != (n,):
        raise ValueError(f"sample_weight: expected shape ({n},), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError("sample_weight: expected finite non-negative weights with a positive sum")
    return weights


def james_stein(means, variances, n_samples, constant):
    """Positive-part James-Stein shrinkage of sample means towards 0, one factor per block.

    ``z_k = m_k / se_k``, ``f = (1 - (p - 2) / sum_k z_k^2)_+`` over the ``p`` non-constant functions.

    Parameters
    ----------
    means, variances : (n_blocks, n_moments) arrays
    n_samples : int
    constant : (n_moments,) bool array
        Marks the constant function (never shrunk).

    Returns
    -------
    shrunk means, factors (n_blocks,)
    """
    free = ~np.asarray(constant)
    p = int(free.sum())
    se2 = np.maximum(variances[:, free], 1e-300) / n_samples
    z2 = np.sum(means[:, free] ** 2 / se2, axis=1)
    factor = np.clip(1.0 - max(p - 2, 0) / np.maximum(z2, 1e-300), 0.0, 1.0)
    out = means.copy()
    out[:, free] *= factor[:, None]
    return out, factor


class ResidualScore(ParamsMixin):
    """A residual score model ``s = base + correction`` ("OISM (L) + NN" of arXiv 2406.09084).

    Parameters
    ----------
    base : fitted OISM, object with ``score(x, t)``, or callable ``base(x, t)``
        The score the correction is added to.
    model : estimator, callable or object
        Trainable: an estimator with ``fit`` and a ``base`` parameter (e.g.
        ``opdiff.neural.NeuralScoreModel(process, ...)``); :meth:`fit` trains a copy of it with
        ``base=base`` by DSM on the residual target ``s_target - base``. Fixed: a callable
        ``model(x, t)`` or an object with ``score(x, t)`` / ``predict(x, t)``, used as the correction as
        it is (no fit needed).

    Attributes
    ----------
    model_ : estimator
        The trained copy of ``model`` (trainable models, after :meth:`fit`).
    """

    def __init__(self, base, model):
        self.base = base
        self.model = model

    def _base_score(self):
        if callable(getattr(self.base, "score", None)):
            if hasattr(self.base, "moment_means_"):
                check_fitted(self.base, "moment_means_")
            return self.base.score
        if callable(self.base):
            return self.base
        raise TypeError(f"base: expected a fitted OISM, an object with score(x, t) or a callable, "
                        f"got {type(self.base).__name__}")

    def _fixed_correction(self):
        for name in ("score", "predict"):
            if callable(getattr(self.model, name, None)):
                return getattr(self.model, name)
        if callable(self.model):
            return self.model
        raise TypeError(f"model: expected an estimator with fit and a base parameter, a callable or an object "
                        f"with score/predict, got {type(self.model).__name__}")

    def fit(self, X, y=None, sample_weight=None):
        """Train a copy of ``model`` with ``base=self.base`` on ``X`` (DSM on the residual target).

        Parameters
        ----------
        X : (n, d) array (or what ``model.fit`` takes)
        y : None
            Ignored (scikit-learn convention).
        sample_weight : (n,) array, optional
            Passed to ``model.fit``.

        Returns
        -------
        self
        """
        self._base_score()
        if not (callable(getattr(self.model, "fit", None)) and callable(getattr(self.model, "get_params", None))
                and "base" in self.model.get_params(deep=False)):
            raise TypeError(f"model: fit needs an estimator with fit and a base parameter (e.g. NeuralScoreModel), "
                            f"got {type(self.model).__name__}")
        params = self.model.get_params(deep=False)
        params["base"] = self.base
        self.model_ = type(self.model)(**params).fit(X, sample_weight=sample_weight)
        return self

    def correction(self, x, t):
        """The learned part ``(n, d)``: the trained network after :meth:`fit`, else the fixed ``model``.

        Parameters
        ----------
        x : (n, d) array
        t : float or (n,) array

        Returns
        -------
        (n, d) array
        """
        if getattr(self, "model_", None) is not None:
            return self.model_.correction(x, t)
        return self._fixed_correction()(x, t)

    def score(self, x, t):
        """``base.score(x, t) + correction(x, t)``; ``(n, d)``.

        Parameters
        ----------
        x : (n, d) array
        t : float or (n,) array

        Returns
        -------
        (n, d) array
        """
        return self._base_score()(x, t) + self.correction(x, t)

    def divergence(self, x, t):
        """``base.divergence + correction's divergence``; ``(n,)``.

        The correction's divergence is the trained model's exact one after :meth:`fit` (its total divergence
        minus the base's), else ``model.divergence(x, t)``.

        Parameters
        ----------
        x : (n, d) array
        t : float or (n,) array

        Returns
        -------
        (n,) array
        """
        if not callable(getattr(self.base, "divergence", None)):
            raise ValueError("base: the base score has no divergence(x, t)")
        if getattr(self, "model_", None) is not None:
            return self.model_.divergence(x, t)
        if not callable(getattr(self.model, "divergence", None)):
            raise ValueError("model: the correction has no divergence(x, t); use a Hutchinson ISM instead")
        return self.base.divergence(x, t) + self.model.divergence(x, t)

    def residual_target(self, x, t, target):
        """What the correction should regress onto: ``target - base.score(x, t)``; ``(n, d)``.

        Parameters
        ----------
        x : (n, d) array
        t : float or (n,) array
        target : (n, d) array

        Returns
        -------
        (n, d) array
        """
        return np.asarray(target) - self._base_score()(x, t)

    def __call__(self, x, t):
        return self.score(x, t)
