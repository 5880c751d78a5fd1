"""Generative fractional diffusion (GFDM): a diffusion driven by Markov-approximate fractional BM.

Formulas of GFDM (arXiv 2310.17638), eight:

1. MA-fBM: ``Bhat_t = sum_k omega_k Y^k_t``, ``dY^k = -gamma_k Y^k dt + dB`` (one shared ``B``);
   type II starts at ``Y_0 = 0``, type I at the stationary law and uses ``Y_t - Y_0``.
2. speeds: ``gamma_k = r^{k - (K+1)/2}``, ``r = gamma_max^{2/(K-1)}`` (``gamma_1 = 1`` for ``K = 1``).
3. optimal weights: ``A omega = b`` minimising ``E int_0^T (B^H_t - Bhat_t)^2 dt``, with
   type II ``A_ij = (T - (1 - e^{-g T})/g)/g`` (``g = gamma_i + gamma_j``),
   ``b_k = T gamma^{-a} P(a, gamma T) - a gamma^{-(a+1)} P(a+1, gamma T)`` (``a = H + 1/2``,
   ``P`` the regularised lower incomplete gamma), ``c = T^{2H+1} / (2H (2H+1) Gamma(a)^2)``;
   type I ``A_ij = (2T - (1 - e^{-gamma_i T})/gamma_i - (1 - e^{-gamma_j T})/gamma_j)/g``,
   ``b_k = 2T gamma^{-a} - T^a/(gamma Gamma(a+1)) + (e^{-gamma T} - e^{gamma T} Q(a, gamma T)) / gamma^{a+1}``
   (re-derived here; ``e^x Q(a, x) = U(1 - a, 1 - a, x) / Gamma(a)`` with Tricomi's ``U``, stable for large
   ``x``), ``c = V_H T^{2H+1}/(2H+1)`` with ``V_H = 1/(Gamma(2H+1) sin(pi H))``.
   Relative error ``1 - b^T omega / c``.
4. forward SDE: ``dX = mu(t) X dt + g(t) dBhat``; FVP ``mu = -beta/2``, ``g = sqrt(beta)``,
   ``beta`` linear from ``beta_min`` to ``beta_max``; FVE ``mu = 0``, ``g = a r^t``, ``r = sigma_max/sigma_min``,
   ``a = sigma_min sqrt(2 log r)`` (no ``sigma_min^2`` offset: the exact perturbation variance).
5. augmented linear state ``z = (x, y_1..y_K)``:
   ``F(t) = [[mu, -g omega_1 gamma_1, ..., -g omega_K gamma_K], [0, -diag(gamma)]]``,
   ``G(t) = (g sum_k omega_k, 1, ..., 1)^T`` (rank-one ``G G^T``, one Brownian motion per coordinate).
6. transition: ``dPhi/dt = F Phi``, ``dQ/dt = F Q + Q F^T + G G^T``, ``Q(s, s) = 0``, with closed forms
   ``Phi_xx = c(t)/c(s)``, ``Phi_{y_k y_k} = e^{-gamma_k (t-s)}``,
   ``Q_{y_k y_l} = (1 - e^{-(gamma_k+gamma_l)(t-s)})/(gamma_k+gamma_l)``; the remaining blocks
   (``Phi_{x y}``, ``Q_xx``, ``Q_{x y}``) by the ODE in float64 (DOP853, rtol 1e-11, atol 1e-13).
7. normalisation: FVP ``omega <- omega / sqrt(Var X_T)``, FVE ``omega <- sigma_max omega / sqrt(Var X_T)``.
8. score: ``eta_t = Sigma_yy^{-1} Sigma_yx``, ``sigma~_t^2 = Sigma_xx - Sigma_xy eta_t``,
   ``u = x - eta_t^T y``; ``grad_x log p_t = s_u`` (the only unknown, ``grad_u log q_t(u)``) and
   ``grad_{y_k} log p_t = -eta_{t,k} s_u - [Sigma_yy^{-1} y]_k``.
"""
import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import gamma as gamma_function
from scipy.special import gammainc, hyperu

from ..backend import as_generator, check_choice, check_count, check_points, check_positive
from ..linalg import Kron
from .base import GaussianPrior, GaussianProcess

#: Tolerances of the moment ODE (float64).
ODE_RTOL, ODE_ATOL = 1e-11, 1e-13


def mafbm_speeds(n_processes, gamma_max=20.0):
    """Geometric OU speeds ``gamma_k = r^{k - (K+1)/2}``, ``r = gamma_max^{2/(K-1)}``; ``(K,)``."""
    K = int(n_processes)
    if K < 1:
        raise ValueError(f"n_processes: expected a positive number of OU processes, got {n_processes}")
    gamma_max = check_positive(gamma_max, "gamma_max")
    if K == 1:
        return np.ones(1)
    r = gamma_max ** (2.0 / (K - 1))
    return r ** (np.arange(1, K + 1) - (K + 1) / 2.0)


def _check_hurst(hurst):
    hurst = float(hurst)
    if not 0.0 < hurst < 1.0:
        raise ValueError(f"hurst: expected a Hurst index in (0, 1), got {hurst}")
    return hurst


def mafbm_weights(speeds, hurst, T=1.0, kind="II", return_error=False):
    """Optimal weights ``omega`` of the MA-fBM (formula 3 of the module notes).

    Parameters
    ----------
    speeds : (K,) array
        Positive OU speeds ``gamma_k``.
    hurst : float
        Hurst index in (0, 1).
    T : float
        Time horizon of the L2 criterion.
    kind : {"II", "I"}
        Riemann-Liouville (type II, ``Y_0 = 0``; GFDM) or Mandelbrot-van Ness (type I, stationary start).
    return_error : bool
        Also return the relative L2 error ``1 - b^T omega / c``.

    Returns
    -------
    omega : (K,) array  (and the relative error)
    """
    g = np.asarray(speeds, dtype=np.float64)
    if g.ndim != 1 or g.size == 0 or np.any(~np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"speeds: expected a non-empty 1-D array of positive speeds, got {speeds}")
    H = _check_hurst(hurst)
    T = check_positive(T, "T")
    check_choice(kind, "kind", {"I", "II"})
    a = H + 0.5
    s = g[:, None] + g[None, :]
    if kind == "II":
        A = (T + np.expm1(-s * T) / s) / s
        b = T * g ** (-a) * gammainc(a, g * T) - a * g ** (-(a + 1)) * gammainc(a + 1, g * T)
        c = T ** (2 * H + 1) / (2 * H * (2 * H + 1) * gamma_function(a) ** 2)
    else:
        one_minus = -np.expm1(-g * T) / g
        A = (2 * T - one_minus[:, None] - one_minus[None, :]) / s
        b = 2 * T * g ** (-a) - T**a / (g * gamma_function(a + 1)) \
            + (np.exp(-g * T) - hyperu(1 - a, 1 - a, g * T) / gamma_function(a)) / g ** (a + 1)
        c = fbm_variance_constant(H) * T ** (2 * H + 1) / (2 * H + 1)
    omega = np.linalg.solve(A, b)
    return (omega, 1.0 - float(b @ omega) / c) if return_error else omega


def fbm_variance_constant(hurst):
    """``V_H = Var W^H_1 = 1 / (Gamma(2H+1) sin(pi H))`` of Mandelbrot-van Ness fBM with ``1/Gamma(H+1/2)``."""
    H = _check_hurst(hurst)
    return 1.0 / (gamma_function(2 * H + 1) * np.sin(np.pi * H))


def mafbm_covariance(t, s, speeds, omega, kind="II"):
    """``Cov(Bhat_t, Bhat_s)`` of the weighted OU sum, in closed form; broadcasts ``t`` and ``s``.

    Type II: ``sum_ij w_i w_j e^{-g_i (t - m)} (1 - e^{-(g_i + g_j) m}) / (g_i + g_j)``, ``m = min(t, s)``
    (for ``t >= s``, symmetrised). Type I: increments of stationary OU processes,
    ``k_ij(t - s) - k_ij(t) - k_ji(s) + k_ij(0)`` with ``k_ij(u) = e^{-g_i u} / (g_i + g_j)`` (``u >= 0``).
    """
    g = np.asarray(speeds, dtype=np.float64)
    w = np.asarray(omega, dtype=np.float64)
    t, s = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64))
    hi, lo = np.maximum(t, s)[..., None, None], np.minimum(t, s)[..., None, None]
    gi, gj = g[:, None], g[None, :]
    total = gi + gj
    if kind == "II":
        pair = np.exp(-gi * (hi - lo)) * -np.expm1(-total * lo) / total
    else:
        pair = (np.exp(-gi * (hi - lo)) - np.exp(-gi * hi) - np.exp(-gj * lo) + 1.0) / total
    return np.einsum("...ij,i,j->...", pair, w, w)


def fbm_covariance(t, s, hurst):
    """Standard fBM covariance ``1/2 (t^{2H} + s^{2H} - |t - s|^{2H})``."""
    H = _check_hurst(hurst)
    t = np.asarray(t, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    return 0.5 * (t ** (2 * H) + s ** (2 * H) - np.abs(t - s) ** (2 * H))


class FractionalDiffusion(GaussianProcess):
    """``dX = mu(t) X dt + g(t) dBhat^H`` on the augmented state ``(x, y_1, ..., y_K)`` (GFDM, type II).

    Parameters
    ----------
    hurst : float
        Hurst index in (0, 1).
    n_processes : int
        Number ``K`` of OU processes (``K = 0``: the standard VP / VE SDE).
    kind : {"vp", "ve"}
        FVP (``beta`` linear from ``beta_min`` to ``beta_max``) or FVE (geometric ``sigma_min -> sigma_max``).
    gamma_max : float
        Largest OU speed.
    speeds : (K,) array, optional
        Explicit speeds (``gamma_max`` ignored). Zero speeds are allowed with ``normalize=False``
        (``K = 1``, ``H = 1/2``, ``gamma = 0``, ``omega = 1`` is Brownian motion exactly).
    omega : (K,) array, optional
        Explicit weights (default: the optimal type-II weights for ``T``).
    normalize : bool
        Rescale ``omega`` so that ``Var(X_T | x_0 = 0)`` is 1 (FVP) or ``sigma_max^2`` (FVE).
    beta_min, beta_max : float
        FVP: ``beta(t)`` linear from ``beta_min`` at 0 to ``beta_max`` at 1.
    sigma_min, sigma_max : float
        FVE: ``g(t) = sigma_min sqrt(2 log r) r^t`` with ``r = sigma_max / sigma_min``.
    T : float
    pd_eps : float
        GFDM's regulariser: ``pd_eps e^{-2 gamma_k t}`` is added to the diagonal of ``Sigma_yy`` in
        ``transition(t, 0)``. Default 1e-4, the official GFDM value (arXiv 2310.17638): it bounds the
        conditional variance away from zero, which the explicit reverse samplers need near ``t = 0``
        (with 0, 500 Euler steps of H = 0.9, K = 2 reach 1e9 from data in [-1, 1.5]); 0 is the exact
        law of the MA-fBM diffusion (use it for the moments, not for sampling).

    Notes
    -----
    State ``(n, (K+1) d)`` laid out ``[x block, y_1 block, ...]``; all coordinates share the
    ``(K+1) x (K+1)`` dynamics (``Kron`` operators). ``transition(t, s)`` conditions on the whole
    state for ``s > 0`` and on the data for ``s = 0`` (``Y_0 = 0``). See the module notes for the
    formulas and the ODE tolerance.
    """

    def __init__(self, hurst, n_processes, kind="vp", gamma_max=20.0, speeds=None, omega=None, normalize=True,
                 beta_min=0.1, beta_max=20.0, sigma_min=0.01, sigma_max=50.0, T=1.0, pd_eps=1e-4):
        self.hurst = _check_hurst(hurst)
        K = int(n_processes)
        if K < 0 or K != n_processes:
            raise ValueError(f"n_processes: expected a non-negative integer, got {n_processes}")
        self.kind = check_choice(kind, "kind", {"vp", "ve"})
        self.t_max = check_positive(T, "T")
        self.beta_min = check_positive(beta_min, "beta_min")
        self.beta_max = check_positive(beta_max, "beta_max")
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        if self.kind == "ve" and self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max: expected > sigma_min={sigma_min}, got {sigma_max}")
        if K == 0:
            self.speeds, self.omega = np.zeros(0), np.zeros(0)
        else:
            self.speeds = mafbm_speeds(K, gamma_max) if speeds is None else np.asarray(speeds, dtype=np.float64)
            if self.speeds.shape != (K,) or np.any(self.speeds < 0) or not np.all(np.isfinite(self.speeds)):
                raise ValueError(f"speeds: expected {K} non-negative finite speeds, got {speeds}")
            if omega is None:
                if np.any(self.speeds == 0):
                    raise ValueError("speeds: zero speeds need explicit omega")
                omega = mafbm_weights(self.speeds, self.hurst, self.t_max)
            self.omega = np.asarray(omega, dtype=np.float64)
            if self.omega.shape != (K,) or not np.all(np.isfinite(self.omega)):
                raise ValueError(f"omega: expected {K} finite weights, got {omega}")
        self.n_blocks = K + 1
        self.pd_eps = check_positive(pd_eps, "pd_eps", strict=False)
        self.normalize = bool(normalize)
        self._cache = {}
        if self.normalize and K > 0:
            target = 1.0 if self.kind == "vp" else self.sigma_max**2
            variance = self._moments(0.0, np.array([self.t_max]))[1][0, 0, 0]
            self.omega = self.omega * np.sqrt(target / variance)
            self._cache = {}

    # ------------------------------------------------------------------ schedule
    def beta(self, t):
        """FVP rate ``beta(t) = beta_min + t (beta_max - beta_min)``.

        Parameters
        ----------
        t : float or (m,) array

        Returns
        -------
        float64 array shaped like ``t``
        """
        return self.beta_min + np.asarray(t, dtype=np.float64) * (self.beta_max - self.beta_min)

    def mu(self, t):
        """``mu(t)``: the drift rate of the data coordinate."""
        t = np.asarray(t, dtype=np.float64)
        return -0.5 * self.beta(t) if self.kind == "vp" else np.zeros_like(t)

    def g(self, t):
        """``g(t)``: the diffusion scale of the data coordinate."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind == "vp":
            return np.sqrt(self.beta(t))
        ratio = self.sigma_max / self.sigma_min
        return self.sigma_min * np.sqrt(2.0 * np.log(ratio)) * ratio**t

    def log_mean_scale(self, t, s=0.0):
        """``log c(t)/c(s) = int_s^t mu``."""
        t = np.asarray(t, dtype=np.float64)
        s = np.asarray(s, dtype=np.float64)
        if self.kind == "ve":
            return np.zeros(np.broadcast(t, s).shape)
        return -0.5 * (self.beta_min * (t - s) + 0.5 * (self.beta_max - self.beta_min) * (t**2 - s**2))

    def drift_matrix(self, t):
        """``F(t)``, ``(K+1, K+1)``."""
        K = self.n_blocks - 1
        F = np.zeros((K + 1, K + 1))
        F[0, 0] = self.mu(t)
        F[0, 1:] = -self.g(t) * self.omega * self.speeds
        F[1:, 1:] = -np.diag(self.speeds)
        return F

    def noise_vector(self, t):
        """``G(t) = (g sum omega, 1, ..., 1)``, ``(K+1,)`` (for ``K = 0``: ``(g,)``)."""
        G = np.ones(self.n_blocks)
        G[0] = self.g(t) * (self.omega.sum() if self.n_blocks > 1 else 1.0)
        return G

    # ------------------------------------------------------------------ moments
    def _moments(self, s, ts):
        """``Phi(t, s)``, ``Q(t, s)`` for sorted ``ts >= s``: ``(m, K+1, K+1)`` each (ODE + closed forms).

        Results are cached per ``(s, t)`` pair; one ODE solve covers all missing times.
        """
        ts = np.asarray(ts, dtype=np.float64)
        missing = np.array([u for u in ts if (float(s), float(u)) not in self._cache])
        if missing.size:
            if len(self._cache) > 20000:
                self._cache.clear()
            Phi, Q = self._solve_moments(float(s), missing)
            for u, P_u, Q_u in zip(missing, Phi, Q):
                self._cache[(float(s), float(u))] = (P_u, Q_u)
        pairs = [self._cache[(float(s), float(u))] for u in ts]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _solve_moments(self, s, ts):
        n = self.n_blocks

        def rhs(u, y):
            F = self.drift_matrix(u)
            G = self.noise_vector(u)
            Phi = y[: n * n].reshape(n, n)
            Q = y[n * n:].reshape(n, n)
            return np.concatenate([(F @ Phi).ravel(), (F @ Q + Q @ F.T + np.outer(G, G)).ravel()])

        y0 = np.concatenate([np.eye(n).ravel(), np.zeros(n * n)])
        Phi = np.empty((ts.size, n, n))
        Q = np.empty((ts.size, n, n))
        positive = ts > s
        Phi[~positive], Q[~positive] = np.eye(n), 0.0
        if np.any(positive):
            sol = solve_ivp(rhs, (s, float(ts[positive].max())), y0, method="DOP853", t_eval=np.sort(ts[positive]),
                            rtol=ODE_RTOL, atol=ODE_ATOL)
            if not sol.success:
                raise RuntimeError(f"moment ODE failed: {sol.message}")
            order = np.argsort(ts[positive], kind="stable")
            Phi_p = np.empty((order.size, n, n))
            Q_p = np.empty((order.size, n, n))
            Phi_p[order] = sol.y[: n * n].T.reshape(-1, n, n)
            Q_p[order] = sol.y[n * n:].T.reshape(-1, n, n)
            Phi[positive], Q[positive] = Phi_p, Q_p
        # closed-form blocks (formula 6)
        dt = ts - s
        Phi[:, 0, 0] = np.exp(self.log_mean_scale(ts, s))
        Phi[:, 1:, 0] = 0.0
        if n > 1:
            g = self.speeds
            Phi[:, 1:, 1:] = np.exp(-g[None, :] * dt[:, None])[:, :, None] * np.eye(n - 1)
            total = g[:, None] + g[None, :]
            safe = np.where(total > 0, total, 1.0)
            Q[:, 1:, 1:] = np.where(total > 0, -np.expm1(-total * dt[:, None, None]) / safe, dt[:, None, None])
        return Phi, 0.5 * (Q + np.swapaxes(Q, 1, 2))

    def transition(self, t, s=0.0):
        """``(Phi, Sigma)`` as :class:`Kron` operators (batched when ``t`` or ``s`` is an array)."""
        t, s = self.check_transition_times(t, s)
        batched = t.ndim > 0 or s.ndim > 0
        t_b, s_b = np.broadcast_arrays(np.atleast_1d(t), np.atleast_1d(s))
        n = self.n_blocks
        Phi = np.empty((t_b.size, n, n))
        Sigma = np.empty((t_b.size, n, n))
        for start in np.unique(s_b):
            rows = np.flatnonzero(s_b == start)
            times, inverse = np.unique(t_b[rows], return_inverse=True)
            P, Q = self._moments(start, times)
            Phi[rows], Sigma[rows] = P[inverse], Q[inverse] + (self._regulariser(times)[inverse] if start == 0 else 0)
        if not batched:
            return Kron(Phi[0]), Kron(Sigma[0])
        return Kron(Phi), Kron(Sigma)

    def _regulariser(self, times):
        """``pd_eps diag(0, e^{-2 gamma t})``, ``(m, K+1, K+1)``."""
        out = np.zeros((len(times), self.n_blocks, self.n_blocks))
        if self.pd_eps > 0 and self.n_blocks > 1:
            idx = np.arange(1, self.n_blocks)
            out[:, idx, idx] = self.pd_eps * np.exp(-2.0 * np.asarray(times)[:, None] * self.speeds[None, :])
        return out

    def drift_operator(self, t):
        t = np.asarray(t, dtype=np.float64)
        if t.ndim:
            return Kron(np.stack([self.drift_matrix(u) for u in t]))
        return Kron(self.drift_matrix(t))

    def diffusion(self, t):
        """``G(t)`` as a square :class:`Kron` block whose first column is the noise vector (one shared BM)."""
        t = self.check_time(t, include_min=True)
        vectors = np.stack([self.noise_vector(u) for u in np.atleast_1d(t)])
        blocks = np.zeros(vectors.shape + (self.n_blocks,))
        blocks[:, :, 0] = vectors
        return Kron(blocks if t.ndim else blocks[0])

    def prior(self, dim=None):
        """``N(0, Sigma(T, 0))`` per coordinate (the mean ``c(T) x_0`` is dropped, as in GFDM).

        Parameters
        ----------
        dim : int, optional
            Bind the prior to states of dimension ``dim`` (``(K+1) d``; a multiple of ``K+1``), so that
            ``prior.sample(n, rng=...)`` needs no ``dim``.

        Returns
        -------
        GaussianPrior
        """
        if dim is not None and check_count(dim, "dim") % self.n_blocks:
            raise ValueError(f"dim: expected a state dimension (K+1) d, a multiple of K+1={self.n_blocks}, got {dim}")
        Sigma_T = self.transition(self.t_max)[1].block
        return GaussianPrior(lambda d: Kron(Sigma_T), dim=dim)

    # ------------------------------------------------------------------ score structure
    def conditional_moments(self, t):
        """``(eta_t (K,), sigma~_t^2)``: ``X_t | Y_t, x_0 ~ N(c x_0 + eta^T Y_t, sigma~^2)`` (formula 8)."""
        Sigma = self.transition(float(t))[1].block
        if self.n_blocks == 1:
            return np.zeros(0), float(Sigma[0, 0])
        eta = np.linalg.solve(Sigma[1:, 1:], Sigma[1:, 0])
        return eta, float(Sigma[0, 0] - Sigma[0, 1:] @ eta)

    def _split(self, z):
        z = check_points(z, "z")
        if z.shape[1] % self.n_blocks:
            raise ValueError(f"z: expected a state of width divisible by K+1={self.n_blocks}, got {z.shape}")
        return z.reshape(z.shape[0], self.n_blocks, -1)

    def residual(self, z, t):
        """``u = x - eta_t^T y``: the data-dimensional argument of the unknown score; ``(n, d)``."""
        blocks = self._split(z)
        eta, _ = self.conditional_moments(t)
        return blocks[:, 0] - np.einsum("k,nkd->nd", eta, blocks[:, 1:])

    def augmented_score(self, z, t, residual_score):
        """Full state score from ``s_u = grad_u log q_t(u)`` (formula 8); ``(n, (K+1) d)``.

        ``grad_x = s_u`` and ``grad_{y_k} = -eta_k s_u - [Sigma_yy^{-1} y]_k``: the y-part is known.
        """
        blocks = self._split(z)
        s_u = np.asarray(residual_score, dtype=np.float64)
        if s_u.shape != blocks[:, 0].shape:
            raise ValueError(f"residual_score: expected shape {blocks[:, 0].shape}, got {s_u.shape}")
        eta, _ = self.conditional_moments(t)
        out = np.empty_like(blocks)
        out[:, 0] = s_u
        if self.n_blocks > 1:
            Sigma_yy = self.transition(float(t))[1].block[1:, 1:]
            out[:, 1:] = -eta[None, :, None] * s_u[:, None, :] - np.einsum(
                "kl,nld->nkd", np.linalg.inv(Sigma_yy), blocks[:, 1:])
        return out.reshape(z.shape)

    # ------------------------------------------------------------------ samplers
    def euler_maruyama(self, z0, t0, t1, steps, rng=None):
        """Forward augmented Euler-Maruyama from ``z0`` at ``t0`` to ``t1`` (one shared noise per coordinate)."""
        rng = as_generator(rng)
        blocks = self._split(z0).copy()
        times = np.linspace(t0, t1, int(steps) + 1)
        for u, v in zip(times[:-1], times[1:]):
            dt = v - u
            noise = rng.standard_normal((blocks.shape[0], 1, blocks.shape[2]))
            blocks = blocks + dt * np.einsum("ij,njd->nid", self.drift_matrix(u), blocks) \
                + np.sqrt(dt) * self.noise_vector(u)[None, :, None] * noise
        return blocks.reshape(z0.shape)

    def reverse_euler_growth(self, times, weight=1.0):
        """Worst-case amplification of a perturbation by explicit Euler steps of the reverse dynamics on ``times``.

        Near data concentrated at a point the score is ``-Sigma_t^{-1} (z - m_t)``, so a step of size
        ``dt`` maps a perturbation by ``M_t = I - dt (F(t) + w G G^T Sigma_t^{-1})`` (per coordinate,
        ``(K+1) x (K+1)``); the product of ``max(1, spectral radius of M_t)`` over the steps bounds how
        much errors can grow. It is about 1 for the default ``pd_eps`` on 500 steps and 1e5 to 1e10
        with ``pd_eps = 0`` (the explicit samplers then diverge to 1e5 - 1e13).

        Parameters
        ----------
        times : (m,) array
            Decreasing times; the dynamics are evaluated at ``times[:-1]`` (the last may be 0).
        weight : float
            1 for the reverse SDE, 1/2 for the probability-flow ODE.

        Returns
        -------
        float
        """
        times = np.asarray(times, dtype=np.float64)
        Sigma = self.transition(times[:-1])[1].block.reshape(-1, self.n_blocks, self.n_blocks)
        log_growth = 0.0
        for t, dt, S in zip(times[:-1], times[:-1] - times[1:], Sigma):
            G = self.noise_vector(t)
            M = np.eye(self.n_blocks) - dt * (self.drift_matrix(t) + weight * np.outer(G, np.linalg.solve(S, G)))
            log_growth += max(0.0, float(np.log(np.abs(np.linalg.eigvals(M)).max())))
        return float(np.exp(min(log_growth, 700.0)))

    def reverse_sample(self, score, n, data_dim, steps=500, mode="sde", t_end=1e-3, rng=None, progress=False,
                       return_state=False):
        """Draw from the prior and run the augmented reverse dynamics of :mod:`opdiff.sampling` (GFDM's sampler).

        Euler-Maruyama of the reverse SDE (``mode="sde"``, :func:`opdiff.sampling.sample_reverse_sde`: the
        Kron diffusion ``G`` carries one scalar noise per coordinate shared by all K+1 components) or
        Euler of the probability flow (``mode="ode"``, :func:`opdiff.sampling.sample_probability_flow`)
        with the score evaluated on ``linspace(T, t_end, steps)`` and a last, noise-free step to 0.
        A :class:`~opdiff.sampling.StiffGridWarning` is raised where the grid is known to diverge
        (see :meth:`reverse_euler_growth`).

        Parameters
        ----------
        score : callable
            ``score(z (n, (K+1) d), t float) -> (n, (K+1) d)`` on the augmented state; non-finite values
            are rejected.
        n : int
            Number of samples.
        data_dim : int
            Data dimension ``d``.
        steps : int
            Number of score evaluations.
        mode : {"sde", "ode"}
        t_end : float
            Last time at which the score is evaluated, in ``(0, T)``.
        rng : None, int or Generator
        progress : bool
            Show a tqdm progress bar (off by default).
        return_state : bool
            Return the whole state instead of the data block.

        Returns
        -------
        (n, d) array, or (n, (K+1) d) with ``return_state``
        """
        from ..sampling import sample_probability_flow, sample_reverse_sde  # layer 4 samplers, imported on use

        check_choice(mode, "mode", {"sde", "ode"})
        rng = as_generator(rng)
        steps = check_count(steps, "steps")
        t_end = check_positive(t_end, "t_end")
        if t_end >= self.t_max:
            raise ValueError(f"t_end: expected a time below T={self.t_max}, got {t_end}")
        z = self.prior().sample(check_count(n, "n"), self.state_dim(check_count(data_dim, "data_dim")), rng=rng)
        times = np.append(np.linspace(self.t_max, t_end, steps), 0.0)
        if mode == "sde":
            run = sample_reverse_sde(score, z, times, process=self, rng=rng, progress=progress)
        else:
            run = sample_probability_flow(score, z, times, process=self, method="euler", progress=progress)
        return run.x if return_state else self.project(run.x)

    def __repr__(self):
        return (f"FractionalDiffusion(hurst={self.hurst}, n_processes={self.n_blocks - 1}, kind={self.kind!r}, "
                f"omega={np.round(self.omega, 4).tolist()})")
