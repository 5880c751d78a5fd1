"""Kernel mean embeddings: the forward marginal ``rho_t = P_t^* rho_N`` of a weighted empirical measure.

For a Gaussian process the marginal of the data ``x_i`` (weights ``w_i``) is the mixture
``rho_t(z) = sum_i w_i N(z; Phi lift(x_i), Sigma)``. Everything here reduces to one call of
:func:`opdiff.reductions.gaussian_reduction` after whitening both sides with the Cholesky factor
``L`` of ``Sigma``: ``|L^{-1}(z - Phi x_i)|^2`` is the Mahalanobis distance of the kernel.
"""
import numpy as np

from ..backend import as_generator, check_count, check_fitted, check_points, get_namespace
from ..processes.base import LOG_2PI
from ..reductions import check_backend, gaussian_reduction


def by_time(x, t, evaluate):
    """Apply ``evaluate`` to the query rows sharing each distinct time and reassemble the rows.

    Parameters
    ----------
    x : (m, D) array
        Queries.
    t : () or (m,) array
        Validated time(s); a single time (or a length-1 array) makes one call on all rows.
    evaluate : callable
        ``evaluate(rows (k, D), t float) -> (k, ...)``.

    Returns
    -------
    (m, ...) array
        Row ``i`` is ``evaluate`` at time ``t[i]``, in the namespace and dtype of ``evaluate``'s output.
    """
    if t.ndim == 0 or t.shape[0] == 1:
        return evaluate(x, float(t.reshape(-1)[0]))
    out = None
    for value in np.unique(t):
        rows = np.flatnonzero(t == value)
        part = evaluate(x[rows], float(value))
        if out is None:
            out = get_namespace(part).empty((x.shape[0],) + part.shape[1:], dtype=part.dtype)
        out[rows] = part
    return out


def normalised_log_weights(weights, n):
    """``(n,)`` log-weights summing to one (``None``: uniform). Zero weights become ``-inf``."""
    if weights is None:
        return np.full(n, -np.log(n))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"weights: expected shape ({n},), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError("weights: expected finite non-negative weights with a positive sum")
    with np.errstate(divide="ignore"):
        return np.log(weights) - np.log(weights.sum())


class GaussianMarginal:
    """The forward marginal at one time ``t``: whitened data and the structured ``(Phi, Sigma)``.

    Built by :meth:`KernelMeanEmbedding.at`; evaluates log-density, posterior mean and score of
    many query batches at the same ``t`` without re-whitening the data.
    """

    def __init__(self, process, data, log_weights, t, backend="auto"):
        self.process = process
        self.data = data
        self.log_weights = log_weights.astype(data.dtype)
        self.Phi, self.Sigma = process.transition(float(t))
        self.chol = self.Sigma.cholesky()
        self.whitened_means = self.chol.solve(self.Phi.apply(process.lift(data)))
        self.backend = backend

    def reduce(self, z):
        """Log-normaliser ``(m,)`` and posterior mean ``E[x0 | z_t = z]`` ``(m, d)``."""
        return gaussian_reduction(self.chol.solve(z), self.whitened_means, values=self.data,
                                  log_weights=self.log_weights, backend=self.backend)

    def log_density(self, z, reduction=None):
        reduction = reduction or self.reduce(z)
        dim = z.shape[1]
        log_sum = reduction.log_sum
        normaliser = get_namespace(log_sum).asarray(self.chol.logdet(dim) + 0.5 * dim * LOG_2PI, dtype=log_sum.dtype)
        return log_sum - normaliser  # float32 kept

    def score_from_mean(self, z, posterior_mean):
        """``-Sigma^{-1} (z - Phi lift(E[x0 | z]))`` (Tweedie's formula)."""
        residual = z - self.Phi.apply(self.process.lift(posterior_mean))
        return -self.chol.transpose().solve(self.chol.solve(residual))


class KernelMeanEmbedding:
    """Forward marginals ``rho_t = P_t^* rho_N`` of an empirical measure under a Gaussian process.

    Parameters
    ----------
    process : GaussianProcess
    backend : str
        Reduction backend (``"auto"``, ``"numpy"``, ``"numba"``, ``"keops"``, ``"cupy"``, ``"dask"``).

    Attributes
    ----------
    data_ : (n, d) array
    log_weights_ : (n,) array
    """

    def __init__(self, process, backend="auto"):
        self.process = process
        self.backend = backend

    def fit(self, X, weights=None):
        """Store the data ``X (n, d)`` and optional non-negative ``weights (n,)``; returns self."""
        if not callable(getattr(self.process, "transition", None)):
            raise TypeError(f"process: expected a Gaussian process with transition(t), "
                            f"got {type(self.process).__name__}")
        check_backend(self.backend)
        X = check_points(X, "X")
        log_weights = normalised_log_weights(weights, X.shape[0])
        self.data_, self.log_weights_ = X, log_weights
        return self

    def _check_query(self, z, t):
        check_fitted(self, "data_")
        d = self.data_.shape[1]
        z = check_points(z, "x", dim=self.process.state_dim(d), allow_1d=True)
        t = self.process.check_time(t, n=z.shape[0])
        return z.astype(self.data_.dtype, copy=False) if z.dtype != self.data_.dtype else z, t

    def at(self, t):
        """The marginal at a single time ``t`` (reused across query batches)."""
        check_fitted(self, "data_")
        t = self.process.check_time(t)
        if t.ndim:
            raise ValueError(f"t: expected a single time here, got shape {t.shape}")
        return GaussianMarginal(self.process, self.data_, self.log_weights_, float(t), self.backend)

    def _by_time(self, z, t, evaluate):
        """Apply ``evaluate(marginal, rows)`` to the rows sharing each distinct time."""
        return by_time(z, t, lambda rows, value: evaluate(self.at(value), rows))

    def log_density(self, x, t):
        """``log rho_t(x)``; ``x (m, D)``, ``t`` float or ``(m,)`` -> ``(m,)``."""
        z, t = self._check_query(x, t)
        return self._by_time(z, t, lambda marginal, rows: marginal.log_density(rows))

    def denoise(self, x, t):
        """Posterior mean ``E[x_0 | x_t = x]``; returns ``(m, d)``."""
        z, t = self._check_query(x, t)
        return self._by_time(z, t, lambda marginal, rows: marginal.reduce(rows).mean)

    def score(self, x, t):
        """``grad log rho_t(x)``; returns ``(m, D)``."""
        z, t = self._check_query(x, t)

        def evaluate(marginal, rows):
            return marginal.score_from_mean(rows, marginal.reduce(rows).mean)

        return self._by_time(z, t, evaluate)

    def sample(self, n, t, rng=None):
        """Draw ``n`` points of ``rho_t``: a data point by weight, pushed through the transition."""
        check_fitted(self, "data_")
        n = check_count(n, "n")
        rng = as_generator(rng)
        probabilities = np.exp(self.log_weights_)
        index = rng.choice(self.data_.shape[0], size=n, p=probabilities / probabilities.sum())
        return self.process.sample(self.data_[index], t, rng=rng)
