"""The diffusion kernel smoother (DKS): exact scores of the forward marginals of a data set.

With the empirical measure ``rho_N = sum_i w_i delta_{x_i}`` the forward marginal is a mixture of
transition kernels and its score is a kernel smoother,

    s_t(z) = -Sigma^{-1} (z - Phi lift(E[x_0 | z])),   E[x_0 | z] = sum_i softmax_i(log w_i + log p_t(z | x_i)) x_i,

one implementation for every Gaussian process (VE, VP, OU, CLD, SAGD, fractional, ...): only
``(Phi, Sigma)`` differ. Fitted with a manifold process (``process.is_manifold``), the same
estimator is the Riemannian DKS (RDKS), with heat kernels and Riemannian gradients.
"""
import numpy as np

from ..backend import as_generator, check_choice, check_count, check_fitted, check_points, check_positive
from ..operators.kme import KernelMeanEmbedding, normalised_log_weights


class DiffusionKernelSmoother:
    """Exact score, denoiser and log-density of the forward marginals of a data set (DKS / RDKS).

    Parameters
    ----------
    process : GaussianProcess or manifold process
        The forward process.
    backend : {"auto", "numpy", "numba", "keops", "cupy", "dask"}
        Backend of the sums over training points.
    adaptive : float, optional
        Adaptive smoothing exponent ``alpha`` (0.5: Abramson's square-root law): point ``i`` gets
        its bandwidth scaled by ``lambda_i = (f_i / g)^{-alpha}`` from a leave-one-out pilot at
        ``pilot_time`` (every manifold and Gaussian process; see :mod:`opdiff.estimators.adaptive`).
    pilot_time : float, optional
        Time of the pilot smoother (required with ``adaptive``; :meth:`select_time` sets it).

    Attributes
    ----------
    data_ : (n, d) array
        Training points (float32 kept).
    log_weights_ : (n,) array
        Normalised log-weights of the training points.
    bandwidth_factors_ : (n,) array or None
        Per-point bandwidth factors (adaptive smoothing), ``None`` for the global smoother.

    Examples
    --------
    >>> import numpy as np
    >>> from opdiff.processes import VPSDE
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> dks = DiffusionKernelSmoother(VPSDE()).fit(X)
    >>> dks.score(X[:3], t=0.5).shape
    (3, 2)
    """

    def __init__(self, process, backend="auto", adaptive=None, pilot_time=None):
        self.process = process
        self.backend = backend
        self.adaptive = adaptive
        self.pilot_time = pilot_time

    @property
    def is_riemannian(self):
        return bool(getattr(self.process, "is_manifold", False))

    def fit(self, X, weights=None):
        """Store the training points ``X (n, d)`` and optional ``weights (n,)``; returns self."""
        if self.adaptive is not None:
            from .adaptive import check_adaptive_process

            check_adaptive_process(self.process)
            check_positive(self.adaptive, "adaptive", strict=False)
            if self.pilot_time is None:
                raise ValueError("pilot_time: required with adaptive=...; or call select_time(X)")
        if self.is_riemannian:
            from .riemannian import RIEMANNIAN_BACKENDS

            check_choice(self.backend, "backend", RIEMANNIAN_BACKENDS)
            manifold = self.process.manifold
            X = manifold.check_points(X, "X") if hasattr(manifold, "check_points") else check_points(X, "X")
            data, log_weights, embedding = X, normalised_log_weights(weights, X.shape[0]), None
        else:
            embedding = KernelMeanEmbedding(self.process, backend=self.backend).fit(X, weights)
            data, log_weights = embedding.data_, embedding.log_weights_
        bandwidth_factors = None
        if self.adaptive is not None:
            from .adaptive import pilot_bandwidth_factors

            bandwidth_factors = pilot_bandwidth_factors(self.process, data, self.pilot_time, self.adaptive, log_weights)
        # assigned together, after every step that can fail: an error never leaves a half-fitted smoother
        self.data_, self.log_weights_, self.embedding_ = data, log_weights, embedding
        self.bandwidth_factors_ = bandwidth_factors
        return self

    def select_time(self, X, times=None, exponents=None, n_folds=5, rng=0):
        """Pick the time (and the adaptive exponent) by K-fold held-out log-likelihood, then fit ``X``.

        Parameters
        ----------
        X : (n, d) array
        times : (k,) array, optional
            Candidate times (default: a geometric grid spanning the data's scales).
        exponents : sequence of float, optional
            Candidate adaptive exponents; default ``(0,)``, or ``(0, 0.25, 0.5, 0.75, 1)`` when the
            smoother was built with ``adaptive``.
        n_folds : int
        rng : None, int or Generator

        Returns
        -------
        self
            Fitted on all of ``X``, with ``time_``, ``exponent_`` and ``selection_``
            (:class:`~opdiff.estimators.adaptive.TimeSelection`); adaptive when ``exponent_ > 0``.
            The density estimate of the data is ``log_density(x, time_)``.
        """
        from .adaptive import select_time

        if exponents is None:
            exponents = (0.0,) if self.adaptive is None else (0.0, 0.25, 0.5, 0.75, 1.0)
        selection = select_time(self.process, X, times=times, exponents=exponents, n_folds=n_folds, rng=rng)
        previous = (self.adaptive, self.pilot_time)
        self.adaptive = selection.exponent if selection.exponent > 0 else None
        self.pilot_time = selection.time if selection.exponent > 0 else self.pilot_time
        try:
            self.fit(X)
        except Exception:
            self.adaptive, self.pilot_time = previous
            raise
        self.time_, self.exponent_, self.selection_ = selection.time, selection.exponent, selection
        return self

    def _adaptive(self, name, x, t):
        from . import adaptive

        return getattr(adaptive, f"adaptive_{name}")(self.process, self.data_, self.log_weights_, x, t,
                                                     self.bandwidth_factors_)

    def _riemannian(self, name, x, t):
        from . import riemannian

        check_fitted(self, "data_")
        function = getattr(riemannian, f"riemannian_{name}")
        return function(self.process, self.data_, self.log_weights_, x, t, self.backend,
                        bandwidth_factors=getattr(self, "bandwidth_factors_", None))

    def score(self, x, t):
        """Score ``grad log rho_t(x)``.

        Parameters
        ----------
        x : (m, D) array
            Query states (``D = K d`` for auxiliary-variable processes; ambient coordinates on a manifold).
        t : float or (m,) array

        Returns
        -------
        (m, D) array
            Tangent vectors on a manifold.
        """
        if self.is_riemannian:
            return self._riemannian("score", x, t)
        if getattr(self, "bandwidth_factors_", None) is not None:
            return self._adaptive("score", x, t)
        check_fitted(self, "embedding_")
        return self.embedding_.score(x, t)

    def denoise(self, x, t):
        """Posterior mean ``E[x_0 | x_t = x]`` (Tweedie); returns ``(m, d)``."""
        if self.is_riemannian:
            return self._riemannian("denoise", x, t)
        if getattr(self, "bandwidth_factors_", None) is not None:
            return self._adaptive("denoise", x, t)
        check_fitted(self, "embedding_")
        return self.embedding_.denoise(x, t)

    def log_density(self, x, t):
        """``log rho_t(x)`` (normalised; on a manifold, with respect to the Riemannian volume); ``(m,)``."""
        if self.is_riemannian:
            return self._riemannian("log_density", x, t)
        if getattr(self, "bandwidth_factors_", None) is not None:
            return self._adaptive("log_density", x, t)
        check_fitted(self, "embedding_")
        return self.embedding_.log_density(x, t)

    def sample(self, n, t, rng=None):
        """Exact samples of the smoothed data law ``rho_t``: ``(n, D)``.

        A training point drawn by weight, pushed through the forward transition for time ``t``
        (exact, no discretisation; use :mod:`opdiff.sampling` to run the reverse dynamics instead).
        """
        check_fitted(self, "data_")
        n = check_count(n, "n")
        rng = as_generator(rng)
        probabilities = np.exp(self.log_weights_)
        index = rng.choice(self.data_.shape[0], size=n, p=probabilities / probabilities.sum())
        if getattr(self, "bandwidth_factors_", None) is not None:
            from .adaptive import adaptive_sample

            return adaptive_sample(self.process, self.data_[index], t, self.bandwidth_factors_[index], rng)
        return self.process.sample(self.data_[index], t, rng=rng)
