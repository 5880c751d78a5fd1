"""The Riemannian diffusion kernel smoother (RDKS): exact forward marginals of data under manifold BM.

For data ``x_i`` with weights ``w_i`` (summing to one) and Brownian motion on a compact manifold,
the forward marginal at time ``t`` is the heat-kernel mixture (a kernel mean embedding)

    rho_t(y) = sum_i w_i p_{s(t)}(x_i, y)        (density w.r.t. the Riemannian volume)

and its Riemannian score is the softmax-weighted mean of the per-pair Riemannian gradients

    grad log rho_t(y) = sum_i pi_i(y) grad_y log p_{s(t)}(x_i, y),   pi_i(y) = softmax_i(log w_i + log p(x_i, y)),

a tangent vector at ``y`` (on ``S^2``: ``g(x_i . y) (x_i - (x_i . y) y)``; on the torus a wrapped
term per coordinate). :class:`~opdiff.estimators.DiffusionKernelSmoother` fitted with a
:class:`~opdiff.processes.ManifoldBrownianMotion` delegates here.

``bandwidth_factors`` (``(n,)``, optional) gives each data point its own bandwidth: heat time
``s(t) * bandwidth_factors[i]^2`` (adaptive smoothing, :mod:`opdiff.estimators.adaptive`). It is
still a mixture of transition kernels, so the score and log-density stay exact.

Backends. ``"auto"`` / ``"numba"``: on NumPy inputs with one time for every query and no
per-point bandwidths, the kernel at that time is tabulated once (``manifold.heat_table``, a cubic in
``x . y`` on ``S^n``, in ``|x_k - y_k|`` per coordinate on the torus, within the kernel's documented
accuracy relative to its peak) and the sums run in one fused pass
(:mod:`opdiff.reductions.tabulated`); otherwise, and always with ``"numpy"`` / ``"cupy"``, the
reference path: exact per-pair kernels through :func:`opdiff.reductions.pairwise_reduction`
(chunked, log-domain).
"""
import numpy as np

from ..backend import check_choice
from ..reductions import Reduction, pairwise_reduction
from ..reductions.tabulated import difference_reduction, dot_product_reduction

#: Backends of the RDKS sums: tabulated fused Numba sums ("auto", "numba") or the chunked
#: array-namespace reference path ("numpy", "cupy"; also "auto" where no table applies).
RIEMANNIAN_BACKENDS = {"auto", "numba", "numpy", "cupy"}


def _prepare(process, data, x, t, backend):
    check_choice(backend, "backend", RIEMANNIAN_BACKENDS)
    x = process.manifold.check_points(x, "x")
    if x.dtype != data.dtype:
        x = x.astype(data.dtype)
    t = process.check_time(t, n=x.shape[0])
    return x, (t.reshape(()) if t.size == 1 else t)  # a length-1 array is one time for every query


def heat_times(process, t, rows, bandwidth_factors=None):
    """Heat times for a block of query rows: a scalar, ``(b, 1)`` (per query) or ``(b, n)``/``(1, n)``.

    Parameters
    ----------
    process : ManifoldBrownianMotion
    t : float64 array, shape ``()`` or ``(m,)``
        Validated process times.
    rows : slice
        The query rows of the block.
    bandwidth_factors : (n,) array, optional
        Per-point bandwidth multipliers ``lambda_i``: heat time ``s(t) lambda_i^2``.
    """
    s = process.heat_time(t if t.ndim == 0 else t[rows][:, None])
    if bandwidth_factors is not None:
        s = s * np.asarray(bandwidth_factors, dtype=np.float64)[None, :] ** 2
    return s


def heat_kernel_mixture(manifold, centres, log_weights, x, block_heat_times, gradient, values=None):
    """Log-normaliser and mean of a heat-kernel mixture ``sum_i w_i p_{s_i}(centres_i, x)``.

    Parameters
    ----------
    manifold : Manifold
    centres : (n, D) array
        Kernel centres (on the manifold).
    log_weights : (n,) array or None
        Normalised log-weights (``None``: uniform, ``-log n``).
    x : (m, D) array
        Validated queries.
    block_heat_times : callable
        ``rows (slice) -> heat times`` broadcastable to ``(b, n)``.
    gradient : bool
        True: ``mean`` is the softmax mean of the per-pair Riemannian gradients in ``x`` (the score).
        False: ``mean`` is the softmax mean of ``values`` (default: the centres).
    values : (n, p) array, optional
        Averaged when ``gradient`` is False (ignored otherwise).

    Returns
    -------
    Reduction
        ``log_sum (m,)``, ``mean (m, D)`` or ``(m, p)``.
    """
    if log_weights is None:
        log_weights = np.full(centres.shape[0], -np.log(centres.shape[0]))

    def block(queries, points, rows):
        s = block_heat_times(rows)
        if gradient:
            return manifold.pairwise_log_heat_kernel(queries, points, s, gradient=True)
        return manifold.pairwise_log_heat_kernel(queries, points, s), None

    return pairwise_reduction(x, centres, block, values=None if gradient else values, log_weights=log_weights,
                              pair_arrays=8 + 3 * centres.shape[1])


def tabulated_mixture(manifold, centres, log_weights, x, s, gradient):
    """:func:`heat_kernel_mixture` at one heat time ``s`` from the tabulated kernel, or None.

    None where no table applies (not NumPy, no ``manifold.heat_table``, or it returned None). With
    ``gradient`` the mean is the (ambient) score ``sum pi_i g(u_i) (y_i - u_i x)`` on the sphere, the
    mean of the per-coordinate gradients on the torus.
    """
    table_of = getattr(manifold, "heat_table", None)
    if table_of is None or not isinstance(x, np.ndarray) or not isinstance(centres, np.ndarray):
        return None
    table = table_of(s)
    if table is None:
        return None
    if log_weights is None:
        log_weights = np.full(centres.shape[0], -np.log(centres.shape[0]))
    dtype = x.dtype
    if table.kind == "dot":
        reduction = dot_product_reduction
        if dtype != np.float64:  # unit vectors to float64 rounding: 1 - x.y carries the peak of the kernel
            x, centres = (v.astype(np.float64) for v in (x, centres))
            x, centres = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (x, centres))
    else:
        reduction = difference_reduction
    log_sum, mean = reduction(x, centres, table.coefficients, table.lo, table.inv_step, log_weights, gradient)
    if gradient and table.kind == "dot":
        mean = mean[:, :-1] - mean[:, -1:] * x
    return Reduction(log_sum.astype(dtype, copy=False), mean.astype(dtype, copy=False))


def _reduce(process, data, log_weights, x, t, bandwidth_factors, gradient, backend):
    """RDKS reduction at validated ``x``, ``t``: the score or the posterior mean of the data."""
    if backend in ("auto", "numba") and bandwidth_factors is None and (t.ndim == 0 or bool(np.all(t == t[0]))):
        result = tabulated_mixture(process.manifold, data, log_weights, x,
                                   float(process.heat_time(t.reshape(-1)[0])), gradient)
        if result is not None:
            return result
    return heat_kernel_mixture(process.manifold, data, log_weights, x,
                               lambda rows: heat_times(process, t, rows, bandwidth_factors), gradient)


def riemannian_log_density(process, data, log_weights, x, t, backend="auto", bandwidth_factors=None):
    """``log rho_t(x)``, normalised with respect to the Riemannian volume.

    Parameters
    ----------
    process : ManifoldBrownianMotion
    data : (n, D) array
        Training points on the manifold (ambient coordinates).
    log_weights : (n,) array or None
        Log-weights summing to one (``None``: uniform ``-log n``).
    x : (m, D) array
        Query points (validated against the manifold).
    t : float or (m,) array
    backend : {"auto", "numba", "numpy", "cupy"}
        ``"auto"``/``"numba"``: tabulated kernel where it applies (module docstring); ``"numpy"``,
        ``"cupy"``: the exact per-pair reference path.
    bandwidth_factors : (n,) array, optional
        Per-point bandwidth multipliers (adaptive smoothing): heat time ``s(t) lambda_i^2``.

    Returns
    -------
    (m,) array
    """
    x, t = _prepare(process, data, x, t, backend)
    return _reduce(process, data, log_weights, x, t, bandwidth_factors, gradient=False, backend=backend).log_sum


def riemannian_score(process, data, log_weights, x, t, backend="auto", bandwidth_factors=None):
    """Riemannian gradient of ``log rho_t`` at ``x``: ``(m, D)`` tangent vectors.

    Parameters are those of :func:`riemannian_log_density`.
    """
    x, t = _prepare(process, data, x, t, backend)
    score = _reduce(process, data, log_weights, x, t, bandwidth_factors, gradient=True, backend=backend).mean
    return process.manifold.to_tangent(x, score)


def riemannian_denoise(process, data, log_weights, x, t, backend="auto", bandwidth_factors=None):
    """Posterior mean ``E[x_0 | x_t = x] = sum_i pi_i(x) x_i`` in ambient coordinates: ``(m, D)``.

    This is the *ambient* (extrinsic) mean of the posterior over training points: on the sphere it
    lies inside the ball (its norm measures the posterior concentration; project with
    ``manifold.proj`` for the extrinsic mean on the sphere); on the torus it is the mean of the
    angle coordinates, not a circular mean. Parameters are those of :func:`riemannian_log_density`.
    """
    x, t = _prepare(process, data, x, t, backend)
    return _reduce(process, data, log_weights, x, t, bandwidth_factors, gradient=False, backend=backend).mean
