"""Transition kernels: the one object that smoothers, embeddings and pilots reduce over.

The forward marginal of a weighted data set ``sum_i w_i delta_{x_i}`` is the mixture of transition
kernels ``rho_t(z) = sum_i w_i k_{t, i}(z)``. A process builds its kernel with
``process.transition_kernel(t, bandwidth_factors=None, data_space=False)``; the kernel knows its
reduction form, its normaliser, how the softmax sums become log-density, score and posterior mean,
and how to sample. Nothing outside :mod:`opdiff.processes` needs to know which process it holds.

Gaussian processes (every scalar, auxiliary-variable, SAGD and fractional process). The kernel of
point ``i`` with bandwidth factor ``lambda_i`` is ``N(z; Phi lift(x_i), lambda_i^2 Sigma)``: the
transition of the same linear SDE with its noise scaled by ``lambda_i``, an exact transition kernel.
Whitening brings every one of them to the squared-distance form

    -1/2 |L^{-1}(z - Phi lift(x_i))|^2 / lambda_i^2 = -s_i (rho |P x_i - c(z)|^2 + e(z)) / 2,
    s_i = 1 / lambda_i^2,

with a time-independent map ``P`` of the data (the identity, or ``Sigma_w^{+1/2}`` for SAGD) and a
per-row query centre ``c``, precision ``rho`` and offset ``e``. For ``Phi = A(t) (x) I`` and
``Sigma = S(t) (x) I`` (scalar processes: ``K = 1``), with ``L_S`` the Cholesky factor of ``S``, the
whitened lift ``g = L_S^{-1} A[:, 0]`` and the whitened query blocks ``w = (L_S^{-1} (x) I) z``:
``rho = |g|^2``, ``c = sum_k g_k w_k / rho`` and ``e = sum_k |w_k - g_k c|^2``. So an ``(m,)`` array
of distinct times costs one reduction, with the data never re-whitened per time. With
``data_space=True`` the kernel is the density of ``x_0``: the data block of the transition divided by
its mean scale, ``N(x; x_i, lambda_i^2 C(t))`` (the smoother as a density estimator of the data).

The score follows from the softmax means of ``(s, s x, x)`` (``c`` is linear in ``z``):
``score(z) = -Sigma^{-1} (E[s] z - Phi lift(E[s x]))`` and the posterior mean is ``E[x]``.

Every Gaussian kernel is one :class:`~opdiff.reductions.SquaredDistance` reduction (per-query
``rho, e``, per-point ``s``), on every backend.

Manifold Brownian motion. The heat kernel ``p_{s(t) lambda_i^2}(x_i, y)``: heat time scaled by
``lambda_i^2``, again an exact transition kernel (that of the time ``s^{-1}(s(t) lambda_i^2)``). Its
forms are the tabulated dot product on ``S^n`` (``n >= 2``, :class:`~opdiff.reductions.DotProductTable`),
the tabulated per-coordinate difference on the torus (:class:`~opdiff.reductions.CoordinateTable`),
one table per distinct query time and per distinct factor (a grid of tables, one reduction), and
the exact per-pair kernel otherwise (the circle, or more than :data:`MAX_TABLES` tables).
"""
import copy
import functools
import math
from typing import NamedTuple

import numpy as np

from ..backend import check_points, get_namespace
from ..backend.threads import single_threaded_blas
from ..linalg import Kron, Scalar
from ..linalg.operators import cholesky_with_jitter
from ..reductions import CoordinateTable, DotProductTable, LogKernel, SquaredDistance, pairwise_reduction, reduce
from ..reductions._numpy import squared_distances

LOG_2PI = float(np.log(2.0 * np.pi))

#: Largest number of distinct bandwidth factors served group by group (one reduction each).
MAX_GROUPS = 64

#: Largest number of heat-kernel tables (distinct query times x distinct factors) of one reduction;
#: beyond it the exact per-pair kernel serves the queries.
MAX_TABLES = 256



class KernelSums(NamedTuple):
    """Softmax sums of a kernel mixture at a batch of queries.

    Attributes
    ----------
    log_sum : (m,) array
        ``log sum_i w_i k_i(z_j)`` (the normalised log-density of the mixture).
    mean : (m, p) array
        Softmax means: the data ``E[x]`` (``gradient=False``), or the kernel's gradient columns.
    scale_mean : (m,) array or None
        ``E[s]`` (Gaussian kernels with bandwidth factors).
    scaled_mean : (m, p) array or None
        ``E[s x]`` (Gaussian kernels with bandwidth factors).
    """

    log_sum: object
    mean: object
    scale_mean: object = None
    scaled_mean: object = None


def point_scales(bandwidth_factors, n):
    """``s_i = 1 / lambda_i^2`` ``(n,)`` of validated bandwidth factors (None: None)."""
    if bandwidth_factors is None:
        return None
    factors = np.asarray(bandwidth_factors, dtype=np.float64)
    if factors.shape != (n,) or not np.all(np.isfinite(factors)) or np.any(factors <= 0):
        raise ValueError(f"bandwidth_factors: expected ({n},) positive finite factors, got shape {factors.shape}")
    return 1.0 / factors**2


class TransitionKernel:
    """Base of the transition kernels (see the module notes); built by ``process.transition_kernel``.

    Parameters
    ----------
    process : MarkovProcess
    t : float64 array of shape () or (m,), or None
        Validated time(s); ``None`` builds the time-free kernel (``prepare``, neighbour distances,
        the time of a bandwidth).
    bandwidth_factors : (n,) array, optional
        Per-point factors ``lambda_i`` (``None``: the global kernel).
    """

    #: Reduction form: "squared_distance", "dot_product", "coordinate" or "pairwise".
    form_name = "pairwise"
    #: True when the score is the reduction's mean of per-pair gradients (``reduce(gradient=True)``).
    gradient_score = False
    #: Leave-one-out rows whose own kernel carries more than this share of the full sum are recomputed
    #: without the self pair: the self term subtracted is the formula's (Gaussian: the reduction's
    #: distance of a point to itself is zero up to round-off ~1e-16 rho |x|^2), so the subtraction
    #: keeps at least 4 digits.
    self_share = 1.0 - 1e-6

    def __init__(self, process, t=None, bandwidth_factors=None):
        self.process = process
        self.t = None if t is None else np.asarray(t, dtype=np.float64)
        self.bandwidth_factors = bandwidth_factors

    def with_factors(self, bandwidth_factors):
        """The same kernel (same time, same whitening) with other bandwidth factors."""
        kernel = copy.copy(self)
        kernel.bandwidth_factors = bandwidth_factors
        return kernel

    def _check_time(self):
        if self.t is None:
            raise ValueError("t: this kernel was built without a time; pass t to transition_kernel")

    @property
    def shared_time(self):
        """True when every query row has the same time (a 0-d or length-1 ``t``)."""
        return self.t.ndim == 0 or self.t.shape[0] == 1

    def reduce(self, x, points, data, log_weights, gradient=False, backend="auto"):
        """Softmax sums of the mixture at validated queries ``x (m, D)``: :class:`KernelSums`.

        Parameters
        ----------
        x : (m, D) array
            Validated queries (:meth:`check_queries`).
        points : (n, p) array
            Prepared data (:meth:`prepare`).
        data : (n, d) array
            The data (the values of the posterior mean).
        log_weights : (n,) array
            Normalised log-weights.
        gradient : bool
            Manifold kernels: the means are the kernel's Riemannian gradients (the score).
        backend : str

        Returns
        -------
        KernelSums
        """
        raise NotImplementedError

    def self_log_kernel(self, points):
        """``log k_i(x_i)`` ``(n,)``: each point's own kernel at its centre (leave-one-out pilots)."""
        raise NotImplementedError

    def leave_one_out(self, points, data, log_weights, backend="auto"):
        """Leave-one-out log-density ``log sum_{j != i} w_j k_j(x_i) / (1 - w_i)`` at the data: ``(n,)``.

        One reduction over all pairs, the self pair subtracted in the log domain; the rows where the
        self pair holds more than :attr:`self_share` of the sum (isolated points: the subtraction
        would lose their digits) are recomputed exactly without it (:meth:`exclusive_log_sums`).

        Parameters
        ----------
        points : (n, p) array
        data : (n, d) array
        log_weights : (n,) array
        backend : str

        Returns
        -------
        (n,) float64 array
        """
        n = data.shape[0]
        if n < 2:
            raise ValueError(f"X: leave-one-out needs at least 2 points, got {n}")
        queries = self.pilot_queries(data)
        full = np.asarray(self.reduce(queries, points, data, log_weights, backend=backend).log_sum, dtype=np.float64)
        own = np.asarray(log_weights, dtype=np.float64) + self.self_log_kernel(points)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            share = np.exp(own - full)
            out = full + np.log1p(-np.minimum(share, 1.0))
        redo = np.flatnonzero(~(share <= self.self_share))
        if redo.size:
            others = np.setdiff1d(np.arange(n), redo)
            inner = self.exclusive_log_sums(queries, points, data, log_weights, redo, backend)
            if others.size:
                cross = self._subset(others).reduce(queries[redo], points[others], data[others], log_weights[others],
                                                    backend=backend).log_sum
                inner = np.logaddexp(inner, np.asarray(cross, dtype=np.float64))
            out[redo] = inner
        with np.errstate(divide="ignore"):
            return out - np.log1p(-np.exp(np.asarray(log_weights, dtype=np.float64)))

    def _subset(self, rows):
        return self if self.bandwidth_factors is None else \
            self.with_factors(np.asarray(self.bandwidth_factors)[rows])

    def exclusive_log_sums(self, queries, points, data, log_weights, rows, backend="auto"):
        """``log sum_{j in rows, j != i} w_j k_j(x_i)`` for every ``i`` in ``rows``: ``(len(rows),)``.

        Exact, by halving: each half against the other half is one (fast) reduction, and the halves
        recurse; blocks of at most 64 rows are summed pair by pair.

        Parameters
        ----------
        queries, points, data : arrays of n rows
        log_weights : (n,) array
        rows : (r,) int array
        backend : str

        Returns
        -------
        (r,) float64 array
        """
        if rows.size <= 64:
            log_k = np.asarray(self._subset(rows)._pair_log_kernel(queries[rows], points[rows], slice(None)),
                               dtype=np.float64) + np.asarray(log_weights, dtype=np.float64)[rows][None, :]
            np.fill_diagonal(log_k, -np.inf)
            top = np.max(log_k, axis=1)
            top = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(divide="ignore"):
                return top + np.log(np.sum(np.exp(log_k - top[:, None]), axis=1))
        halves = (rows[: rows.size // 2], rows[rows.size // 2:])
        out = []
        for mine, other in (halves, halves[::-1]):
            cross = self._subset(other).reduce(queries[mine], points[other], data[other], log_weights[other],
                                               backend=backend).log_sum
            inner = self.exclusive_log_sums(queries, points, data, log_weights, mine, backend)
            out.append(np.logaddexp(inner, np.asarray(cross, dtype=np.float64)))
        return np.concatenate(out)

    def pilot_queries(self, data):
        """The data as queries of this kernel (data-space Gaussian kernels and manifolds: the data)."""
        return data

    def _pair_log_kernel(self, queries, points, rows):
        """``(b, n)`` per-pair log-kernels (the reference path), ``rows`` locating the query block."""
        raise NotImplementedError

    def log_density(self, x, sums):
        """``log rho(x)`` from the sums: ``(m,)``."""
        return sums.log_sum

    def denoise(self, x, sums):
        """Posterior mean ``E[x_0 | x]`` from the sums: ``(m, d)``."""
        return sums.mean


# ------------------------------------------------------------------------------------ Gaussian kernels
class GaussianKernel(TransitionKernel):
    """``N(z; Phi lift(x_i), lambda_i^2 Sigma(t))`` (or the data-space ``N(x; x_i, lambda_i^2 C(t))``).

    Subclasses provide the whitening: :meth:`prepare` (``P``), :meth:`query_form` (``c, rho, e``),
    :meth:`log_normaliser` and :meth:`rank`.

    Parameters
    ----------
    process : GaussianProcess
    t : float64 array () or (m,), or None
    bandwidth_factors : (n,) array, optional
    data_space : bool
        The density of ``x_0`` instead of the forward marginal of the state.
    """

    form_name = "squared_distance"

    def __init__(self, process, t=None, bandwidth_factors=None, data_space=False):
        super().__init__(process, t, bandwidth_factors)
        self.data_space = bool(data_space)

    # ---- geometry of the data
    def check_data(self, X, name="X"):
        """Validate data ``(n, d)`` for the process; returns the float array."""
        check_data = getattr(self.process, "check_data", None)
        return check_points(X, name) if check_data is None else check_data(X, name)

    def check_queries(self, x, data_dim, name="x"):
        """Validate queries: ``(m, d)`` in data space, ``(m, K d)`` states otherwise."""
        dim = data_dim if self.data_space else self.process.state_dim(data_dim)
        return check_points(x, name, dim=dim, allow_1d=True)

    def neighbour_distances(self, data, k):
        """Distance from each point to its ``k``-th nearest distinct neighbour, Euclidean in data space."""
        return _tree_neighbour_distances(data, k)

    def time_at_bandwidth(self, h, data_dim):
        """Times whose data-space kernel has geometric-mean standard deviation ``h`` (interpolated)."""
        process = self.process
        low = process.t_min if process.t_min > 0 else process.t_max * 1e-6
        grid = np.geomspace(low, process.t_max, 256)
        kernel = type(self)(process, grid, data_space=True)
        rank = kernel.rank(data_dim)
        # geometric-mean standard deviation det(C)^{1/(2 r)} from the normaliser -1/2 log det C - r/2 log 2 pi
        level = np.exp(-(np.asarray(kernel.log_normaliser(data_dim), dtype=np.float64) + 0.5 * rank * LOG_2PI) / rank)
        keep = np.concatenate([[True], np.diff(np.maximum.accumulate(level)) > 0])
        return np.exp(np.interp(np.log(np.asarray(h, dtype=np.float64)), np.log(level[keep]), np.log(grid[keep])))

    # ---- whitening hooks
    def prepare(self, data):
        """``P x``: the time-independent map of the data into the reduction's coordinates; ``(n, p)``."""
        return data

    def query_form(self, z):
        """``(c (m, p), rho () or (m,), e (m,))`` of validated queries ``z``."""
        raise NotImplementedError

    def rank(self, data_dim):
        """Dimension ``r`` of the kernel's support (``K d``; SAGD: the retained band)."""
        raise NotImplementedError

    def log_normaliser(self, data_dim):
        """``-1/2 log det Sigma - D/2 log 2 pi`` (pseudo-determinant on a retained band); ``()`` or ``(m,)``."""
        raise NotImplementedError

    # ---- reductions
    def reduction_form(self):
        """A :class:`~opdiff.reductions.SquaredDistance` form (what backends are checked against in ``fit``)."""
        return SquaredDistance()

    def reduce(self, x, points, data, log_weights, gradient=False, backend="auto"):
        self._check_time()
        c, rho, e = self.query_form(x)
        d, n = data.shape[1], data.shape[0]
        xp = get_namespace(points)
        scales = point_scales(self.bandwidth_factors, n)
        values, weights = data, log_weights
        if scales is not None:  # means of (s, s x, x) and the per-point normalisers r/2 log s
            column = xp.asarray(scales, dtype=data.dtype)[:, None]
            values = xp.concatenate([column, column * data, data], axis=1)
            weights = log_weights + xp.asarray(0.5 * self.rank(d) * np.log(scales), dtype=log_weights.dtype)
        form = SquaredDistance(precision=rho, offset=None if not np.any(e) else e, point_scale=scales)
        result = reduce(form, xp.asarray(c, dtype=points.dtype), points, values, weights, backend=backend)
        log_sum = result.log_sum + xp.asarray(self.log_normaliser(d), dtype=result.log_sum.dtype)
        if scales is None:
            return KernelSums(log_sum, result.mean)
        mean = result.mean
        return KernelSums(log_sum, mean[:, 1 + d:], mean[:, 0], mean[:, 1:1 + d])

    def self_log_kernel(self, points):
        """Data-space kernels at their own centre: ``r/2 log s_i - 1/2 log det C - r/2 log 2 pi``."""
        if not self.data_space or not self.shared_time:
            raise ValueError("data_space: leave-one-out pilots need the data-space kernel at one time")
        d = points.shape[1]
        scales = np.ones(points.shape[0]) if self.bandwidth_factors is None else \
            1.0 / np.asarray(self.bandwidth_factors, dtype=np.float64) ** 2
        return 0.5 * self.rank(d) * np.log(scales) + float(np.reshape(self.log_normaliser(d), -1)[0])

    def _pair_log_kernel(self, queries, points, rows):
        c, rho, e = self.query_form(queries)
        d = points.shape[1]
        s = np.ones(points.shape[0]) if self.bandwidth_factors is None else \
            1.0 / np.asarray(self.bandwidth_factors, dtype=np.float64) ** 2
        xp = get_namespace(points)
        distance = np.reshape(rho, (-1, 1)) * squared_distances(c.astype(points.dtype), points, xp) + e[:, None]
        return -0.5 * s[None, :] * distance + 0.5 * self.rank(d) * np.log(s)[None, :] \
            + np.reshape(self.log_normaliser(d), (-1, 1))

    # ---- results
    def score(self, z, sums):
        """``-Sigma^{-1} (E[s] z - Phi lift(E[s x]))``: ``(m, D)`` (state-space kernels only)."""
        if self.data_space:
            raise ValueError("data_space: the score is defined for the forward marginal, not the data-space kernel")
        Phi, Sigma = self.transition
        if sums.scale_mean is None:
            residual = z - Phi.apply(self.process.lift(sums.mean))
        else:
            residual = sums.scale_mean[:, None].astype(z.dtype) * z - Phi.apply(self.process.lift(sums.scaled_mean))
        with single_threaded_blas():  # per-row (K, K) solves
            chol = Sigma.cholesky()
            return -chol.transpose().solve(chol.solve(residual)).astype(z.dtype, copy=False)

    @property
    def transition(self):
        """``(Phi, Sigma)`` at the kernel's time(s) (batched for an ``(m,)`` time)."""
        self._check_time()
        if getattr(self, "_transition", None) is None:
            self._transition = self.process.transition(self.t)
        return self._transition

    def sample(self, data, rows, rng):
        """Exact draws ``Phi lift(x_i) + lambda_i L eps`` for the data rows ``rows``: ``(k, D)``.

        Parameters
        ----------
        data : (k, d) array
            The drawn training points.
        rows : (k,) int array
            Their indices (for the bandwidth factors).
        rng : numpy.random.Generator

        Returns
        -------
        (k, D) array
        """
        Phi, Sigma = self.transition
        state = Phi.apply(self.process.lift(data))
        noise = Sigma.cholesky().apply(rng.standard_normal(state.shape).astype(state.dtype, copy=False))
        if self.bandwidth_factors is not None:
            noise = noise * np.asarray(self.bandwidth_factors, dtype=np.float64)[rows, None].astype(state.dtype)
        return state + noise


#: Floor of the kernel's precision ``rho``: at long horizons ``Phi^2 / Sigma`` underflows (OU beyond
#: t ~ 354, VP with T = 10). Floored, the log-kernel changes by ``(RHO_FLOOR - rho) |P x_i|^2 / 2``, below
#: 5e-23 for data norms up to 1e4: invisible in float64 next to the O(1) offset ``|w|^2 / 2``.
RHO_FLOOR = 1e-30


def floored_form(u, squared_norm, rho, residual):
    """``(c, rho, e)`` of the squared-distance form from ``u = sum_k g_k w_k`` ``(m, p)`` and ``|w|^2`` ``(m,)``.

    ``|w - g (x) x|^2 = rho |x - c|^2 + e`` with ``c = u / rho``; rows with ``rho < RHO_FLOOR`` use the
    floor (``e = |w|^2 - |u|^2 / RHO_FLOOR``, so that only the ``rho |x|^2`` term moves), the others the
    exact ``residual(c)`` (``sum_k |w_k - g_k c|^2``: no cancellation).

    Parameters
    ----------
    u : (m, p) array
    squared_norm : (m,) array
    rho : float or (m,) array
        Exact precisions ``|g|^2``.
    residual : callable
        ``c (m, p) -> (m,)`` (or 0.0) exact offsets.

    Returns
    -------
    c : (m, p) array
    rho : float or (m,) array
    e : (m,) array
    """
    rows = np.broadcast_to(np.asarray(rho, dtype=np.float64), (u.shape[0],))
    floored = rows < RHO_FLOOR
    effective = np.maximum(rows, RHO_FLOOR)
    c = u / effective[:, None]
    e = np.broadcast_to(np.asarray(residual(c), dtype=np.float64), (u.shape[0],))
    if np.any(floored):
        e = np.where(floored, squared_norm - np.sum(u * u, axis=1) / effective, e)
    precision = float(effective[0]) if np.ndim(rho) == 0 or bool(np.all(effective == effective[0])) else effective
    return c, precision, np.array(e)


def _as_blocks(operator):
    """``(A, K)``: the ``(..., K, K)`` blocks of a Scalar (``K = 1``) or Kron operator."""
    if isinstance(operator, Kron):
        return operator.block, operator.K
    if isinstance(operator, Scalar):
        return np.asarray(operator.c, dtype=np.float64)[..., None, None], 1
    raise TypeError(f"process: expected Scalar or Kron transition operators, got {type(operator).__name__}")


class KronGaussianKernel(GaussianKernel):
    """Gaussian kernel of a process with ``Phi = A (x) I``, ``Sigma = S (x) I`` (scalar: ``K = 1``).

    Covers Brownian motion, OU, VE, VP, every stationary linear SDE (CLD, ALDA, MALDA, learned) and
    the fractional processes. Parameters are those of :class:`GaussianKernel`.
    """

    def __init__(self, process, t=None, bandwidth_factors=None, data_space=False):
        super().__init__(process, t, bandwidth_factors, data_space)
        if t is None:
            return
        with single_threaded_blas():  # one tiny (K, K) problem per row: BLAS threads only add overhead
            self._whiten(process.transition(self.t))

    def _whiten(self, transition):
        Phi, Sigma = transition
        A, K = _as_blocks(Phi)
        S, _ = _as_blocks(Sigma)
        if self.data_space:
            scale = A[..., 0, 0]
            if np.any(scale == 0):
                raise ValueError(f"t: the data block of the transition vanishes at t={t} (Phi_00 = 0)")
            A, S, K = np.ones_like(scale)[..., None, None], (S[..., 0, 0] / scale**2)[..., None, None], 1
        else:
            self._transition = transition
        root = cholesky_with_jitter(S)
        self.K = K
        self.inverse_root = np.linalg.inv(root)
        self.gain = np.einsum("...kl,...l->...k", self.inverse_root, A[..., :, 0])
        self.rho = np.sum(self.gain * self.gain, axis=-1)
        self.half_log_det = np.sum(np.log(np.diagonal(root, axis1=-2, axis2=-1)), axis=-1)

    def rank(self, data_dim):
        return self.K * int(data_dim)

    def log_normaliser(self, data_dim):
        return -int(data_dim) * self.half_log_det - 0.5 * self.rank(data_dim) * LOG_2PI

    def query_form(self, z):
        d = z.shape[1] // self.K
        blocks = z.reshape(z.shape[0], self.K, d).astype(np.float64)
        spec = "mkl,mld->mkd" if self.inverse_root.ndim == 3 else "kl,mld->mkd"
        w = np.einsum(spec, self.inverse_root, blocks)
        gain = np.broadcast_to(self.gain, (z.shape[0], self.K))

        def residual(c):  # sum_k |w_k - g_k c|^2: exact offset of the least-squares centre
            return np.sum((w - gain[:, :, None] * c[:, None, :]) ** 2, axis=(1, 2)) if self.K > 1 else 0.0

        return floored_form(np.einsum("mk,mkd->md", gain, w), np.sum(w * w, axis=(1, 2)), self.rho, residual)


class FourierGaussianKernel(GaussianKernel):
    """Gaussian kernel of SAGD: ``Phi = a(t) I``, ``Sigma = v(t) Sigma_w`` with a Fourier-diagonal ``Sigma_w``.

    The data are whitened once by ``P = Sigma_w^{+1/2}`` (pseudo-inverse: nothing of an omitted band
    enters); then ``rho = a^2 / v`` and ``c = P z / a`` (``c = P x`` in data space), ``e = 0``; the
    normaliser is that of the density on the retained band (pseudo-determinant, rank ``r``).
    Parameters are those of :class:`GaussianKernel`.
    """

    def __init__(self, process, t=None, bandwidth_factors=None, data_space=False):
        super().__init__(process, t, bandwidth_factors, data_space)
        self.whitener = process.covariance.power(-0.5)
        if t is None:
            return
        Phi, variance = process.schedule.transition(self.t)
        self.mean_scale = np.asarray(Phi.c, dtype=np.float64)
        self.rho = self.mean_scale**2 / np.asarray(variance.c, dtype=np.float64)
        if not self.data_space:
            self._transition = process.transition(self.t)

    def check_data(self, X, name="X"):
        """Validate flattened images ``(n, C*H*W)``."""
        return check_points(X, name, dim=self.process.dim)

    def prepare(self, data):
        """``Sigma_w^{+1/2} x``: whitened once, for every time."""
        return self.whitener.apply(data)

    def rank(self, data_dim):
        return self.process.covariance.rank()

    def log_normaliser(self, data_dim):
        r = self.rank(data_dim)
        log_det = self.process.covariance.logdet(self.process.dim) - r * np.log(self.rho)  # C = Sigma_w / rho
        if not self.data_space:  # Sigma = a^2 C
            log_det = log_det + 2.0 * r * np.log(self.mean_scale)
        return -0.5 * log_det - 0.5 * r * LOG_2PI

    def query_form(self, z):
        white = self.whitener.apply(z).astype(np.float64)
        # w = P z / sqrt(v), g = a / sqrt(v): u = g w = a P z / v, |w|^2 = |P z|^2 / v (data space: a = 1, v = C)
        scale = np.ones(1) if self.data_space else np.reshape(self.mean_scale, (-1,))
        variance = np.reshape(scale**2 / self.rho, (-1,))
        u = white * (scale / variance)[:, None]
        return floored_form(u, np.sum(white * white, axis=1) / variance, self.rho, lambda c: 0.0)


# ------------------------------------------------------------------------------------ heat kernels
class HeatKernel(TransitionKernel):
    """The heat kernel ``p_{s(t) lambda_i^2}(x_i, y)`` of Brownian motion on a compact manifold.

    Parameters
    ----------
    process : ManifoldBrownianMotion
    t : float64 array () or (m,), or None
    bandwidth_factors : (n,) array, optional
    """

    gradient_score = True
    #: The self term subtracted is the table's own value (:meth:`self_log_kernel`): round-off only, so
    #: the subtraction keeps at least 7 digits.
    self_share = 1.0 - 1e-9

    def __init__(self, process, t=None, bandwidth_factors=None):
        super().__init__(process, t, bandwidth_factors)
        self.manifold = process.manifold
        probe = _heat_table(self.manifold, 1.0)
        self.form_name = "pairwise" if probe is None else {"dot": "dot_product", "difference": "coordinate"}[probe.kind]
        if t is not None:
            self.heat_time = np.asarray(process.heat_time(self.t), dtype=np.float64)

    def check_data(self, X, name="X"):
        """Validate data on the manifold (ambient coordinates)."""
        return self.manifold.check_points(X, name)

    def check_queries(self, x, data_dim, name="x"):
        """Validate queries on the manifold."""
        return self.manifold.check_points(x, name)

    def prepare(self, data):
        """The data themselves (the heat kernel needs no whitening)."""
        return data

    def neighbour_distances(self, data, k):
        """Geodesic distance to the ``k``-th nearest distinct neighbour (chordal tree on spheres, periodic on tori)."""
        from ..manifolds import FlatTorus, Hypersphere

        if isinstance(self.manifold, FlatTorus):
            return _tree_neighbour_distances(np.mod(data + math.pi, 2 * math.pi), k, boxsize=2 * math.pi)
        chord = _tree_neighbour_distances(data, k)
        if isinstance(self.manifold, Hypersphere):
            return 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
        return chord

    def time_at_bandwidth(self, h, data_dim):
        """Times of heat time ``h^2 / 2`` (kernel width ``h``)."""
        return self.process.time_at_heat_time(np.asarray(h, dtype=np.float64) ** 2 / 2)

    def reduction_form(self):
        """The kernel's form with its table at unit heat time (what backends are checked against in ``fit``)."""
        if self.form_name == "pairwise":
            return LogKernel(lambda q, p: self.manifold.pairwise_log_heat_kernel(q, p, 1.0))
        table = _heat_table(self.manifold, 1.0)
        return (DotProductTable if self.form_name == "dot_product" else CoordinateTable)(table)

    def _tables(self):
        """``(grid, query_index, point_index)`` of the tables of this kernel, or None (too many, or none)."""
        if self.form_name == "pairwise":
            return None
        times, query_index = np.unique(np.reshape(self.heat_time, -1), return_inverse=True)
        if self.bandwidth_factors is None:
            squares, point_index = np.ones(1), None
        else:
            squares, point_index = np.unique(np.asarray(self.bandwidth_factors, dtype=np.float64) ** 2,
                                             return_inverse=True)
        if times.size * squares.size > MAX_TABLES:
            return None
        grid = [[_heat_table(self.manifold, float(s) * float(q)) for q in squares] for s in times]
        if any(table is None for row in grid for table in row):
            return None
        query_index = None if times.size == 1 else np.reshape(query_index, -1)
        return grid, query_index, None if point_index is None else np.reshape(point_index, -1)

    def _pair_log_kernel(self, queries, points, rows, gradient=False):
        """Per-pair log-kernels ``(b, n)`` (and gradients) at heat times ``s(t_j) lambda_i^2``."""
        s = self.heat_time if self.heat_time.ndim == 0 else self.heat_time[rows][:, None]
        if self.bandwidth_factors is not None:
            s = s * np.asarray(self.bandwidth_factors, dtype=np.float64)[None, :] ** 2
        return self.manifold.pairwise_log_heat_kernel(queries, points, s, gradient=gradient)

    def reduce(self, x, points, data, log_weights, gradient=False, backend="auto"):
        self._check_time()
        tables = self._tables()
        if tables is None:  # the exact per-pair kernel (the circle, or too many distinct heat times)
            if backend in ("keops", "dask"):
                raise ValueError(f"backend: {backend!r} does not serve per-pair heat kernels; use 'auto', "
                                 f"'numba', 'numpy' or 'cupy'")

            def block(q, p, rows):
                return self._pair_log_kernel(q, p, rows, gradient=True) if gradient else \
                    (self._pair_log_kernel(q, p, rows), None)

            result = pairwise_reduction(x, points, block, values=None if gradient else data, log_weights=log_weights,
                                        pair_arrays=8 + 3 * points.shape[1])
        else:
            grid, query_index, point_index = tables
            if len(grid) == 1:
                grid, query_index = grid[0], None
                grid = grid[0] if point_index is None else grid
            Form = DotProductTable if self.form_name == "dot_product" else CoordinateTable
            queries, centres = x, points
            if self.form_name == "dot_product" and x.dtype != np.float64:
                # unit vectors to float64 rounding: 1 - x.y carries the peak of the kernel
                queries, centres = (v.astype(np.float64) for v in (x, points))
                queries, centres = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (queries, centres))
            result = reduce(Form(grid, point_index=point_index, query_index=query_index), queries, centres,
                            None if gradient else data.astype(queries.dtype), log_weights, gradient=gradient,
                            backend=backend)
        log_sum, mean = (v.astype(x.dtype, copy=False) for v in result)
        return KernelSums(log_sum, self.manifold.to_tangent(x, mean) if gradient else mean)

    def self_log_kernel(self, points):
        """Each point's own kernel at its centre, as the reduction computes it (the table's value there).

        Subtracting the very value the reduction added leaves only round-off, so the leave-one-out
        subtraction keeps its digits down to a share of ``1 - self_share``.
        """
        tables = self._tables()
        if tables is None:
            s = self.heat_time * (1.0 if self.bandwidth_factors is None else
                                  np.asarray(self.bandwidth_factors, dtype=np.float64) ** 2)
            s = np.broadcast_to(s, (points.shape[0],))
            return np.asarray(self.manifold.log_heat_kernel(points, points, s), dtype=np.float64)
        grid, _, point_index = tables
        if self.form_name == "dot_product":
            own = np.array([float(table(1.0)[0]) for table in grid[0]])
        else:
            own = np.array([points.shape[1] * float(table(0.0)[0]) for table in grid[0]])
        return own[np.zeros(points.shape[0], dtype=int) if point_index is None else point_index]

    def score(self, x, sums):
        """The Riemannian score: the reduction's gradient mean (a tangent vector); ``(m, D)``."""
        return sums.mean

    def sample(self, data, rows, rng):
        """Exact heat-kernel draws at heat time ``s(t) lambda_i^2`` from the data rows: ``(k, D)``.

        Parameters
        ----------
        data : (k, D) array
        rows : (k,) int array
        rng : numpy.random.Generator

        Returns
        -------
        (k, D) array
        """
        s = np.broadcast_to(self.heat_time, (data.shape[0],))
        if self.bandwidth_factors is not None:
            s = s * np.asarray(self.bandwidth_factors, dtype=np.float64)[rows] ** 2
        return self.manifold.sample_heat_kernel(data, s, rng=rng)


def _heat_table(manifold, s):
    """The manifold's table at heat time ``s`` rounded to 10 significant digits (None: no table).

    Equal heat times reached by different products (``s(t) lambda^2`` over a grid of times and factors)
    share one table; the rounding moves the heat time by less than 1e-10 relative, far inside the
    tables' accuracy (1e-8 of the peak).
    """
    return _rounded_table(manifold, float(f"{s:.10g}"))


@functools.lru_cache(maxsize=512)
def _rounded_table(manifold, s):
    table_of = getattr(manifold, "heat_table", None)
    return None if table_of is None else table_of(s)


def _tree_neighbour_distances(points, k, boxsize=None):
    """Euclidean distance from each row to its ``k``-th nearest *distinct* neighbour: ``(n,)``.

    Repeated rows count as one location, so duplicates never give a zero distance. With fewer than
    ``k + 1`` distinct locations the farthest distinct one is used; a single location gives zeros.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    inverse = np.reshape(inverse, -1)
    if unique.shape[0] < 2:
        return np.zeros(points.shape[0])
    k = min(int(k), unique.shape[0] - 1)
    tree = cKDTree(unique, boxsize=boxsize)
    distances, _ = tree.query(unique, k=k + 1)
    return distances[:, k][inverse]
