"""Kernel mean embeddings: the forward marginal ``rho_t = P_t^* rho_N`` of a weighted empirical measure.

For data ``x_i`` with weights ``w_i`` the marginal is the mixture of transition kernels
``rho_t(z) = sum_i w_i k_{t,i}(z)`` (Gaussian ``N(Phi lift(x_i), lambda_i^2 Sigma)`` or the heat kernel on
a manifold). :class:`KernelMixture` is the one code path behind every sum over training points
(this embedding, the diffusion kernel smoother, its adaptive and leave-one-out pilots): it keeps
the data prepared once for the process's kernel (:mod:`opdiff.processes.kernels`), builds the kernel
of a query's time(s) and maps its one reduction to log-density, score and posterior mean. An
``(m,)`` array of distinct times is one kernel and one reduction.
"""
import numpy as np

from ..backend import ParamsMixin, as_generator, check_count, check_fitted
from ..reductions import check_backend


def normalised_log_weights(weights, n, name="sample_weight"):
    """``(n,)`` log-weights summing to one (``None``: uniform). Zero weights become ``-inf``.

    Parameters
    ----------
    weights : (n,) array or None
        Non-negative weights with a positive sum.
    n : int
        Number of points.
    name : str
        Argument name for error messages.

    Returns
    -------
    (n,) float64 array
    """
    if weights is None:
        return np.full(n, -np.log(n))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"{name}: expected finite non-negative weights with a positive sum")
    with np.errstate(divide="ignore"):
        return np.log(weights) - np.log(weights.sum())


def resolve_backend(kernel, backend):
    """Check that ``backend`` is known, installed and serves ``kernel``'s reduction form; returns it.

    Raises ``ValueError`` for an unknown name or a form the backend does not serve, and
    ``ImportError`` naming the extra to install when the backend's package is missing.

    Parameters
    ----------
    kernel : TransitionKernel
    backend : str

    Returns
    -------
    str
    """
    return check_backend(backend, form=kernel.reduction_form())


def _kernel_family(process, data_space):
    """The time-free transition kernel of ``process`` (``TypeError`` naming process when it has none)."""
    if not callable(getattr(process, "transition_kernel", None)):
        raise TypeError(f"process: expected a Gaussian or manifold process with transition_kernel(t), "
                        f"got {type(process).__name__}")
    return process.transition_kernel(None, data_space=data_space)


class KernelMixture:
    """Weighted data and the kernels of a process: ``sum_i w_i k_{t,i}``, evaluated by one reduction.

    Parameters
    ----------
    process : GaussianProcess or ManifoldBrownianMotion
        Anything with ``transition_kernel(t, bandwidth_factors, data_space)``.
    data : (n, d) array
        Finite data of the process's space (on its manifold for a manifold process); :meth:`from_data`
        takes raw data with sample weights instead.
    log_weights : (n,) array
        Normalised log-weights (``log sum exp = 0``; ``-inf`` for a zero weight).
    bandwidth_factors : (n,) array, optional
        Positive finite per-point bandwidth factors.
    backend : str
        ``"auto"`` or a reduction backend name.
    data_space : bool
        Data-space kernels (the density of ``x_0``) instead of the forward marginal.

    Raises
    ------
    TypeError
        If ``process`` has no ``transition_kernel``.
    ValueError
        Naming ``data``, ``log_weights``, ``bandwidth_factors`` or ``backend`` when one is malformed.
    """

    def __init__(self, process, data, log_weights, bandwidth_factors=None, backend="auto", data_space=False):
        family = _kernel_family(process, data_space)
        checked = family.check_data(data, "data")
        # validated data are kept as given: a second projection onto a manifold could move the last bits
        same = getattr(data, "dtype", None) == checked.dtype and getattr(data, "shape", None) == checked.shape
        data = data if same else checked
        n = data.shape[0]
        log_weights = np.asarray(log_weights, dtype=np.float64)
        if log_weights.shape != (n,):
            raise ValueError(f"log_weights: expected shape ({n},), got {log_weights.shape}")
        if np.any(np.isnan(log_weights)) or np.any(log_weights == np.inf):
            raise ValueError("log_weights: expected log-weights in [-inf, 0], found NaN or +inf entries")
        top = np.max(log_weights) if n else -np.inf
        total = top + np.log(np.sum(np.exp(log_weights - top))) if np.isfinite(top) else top
        if not abs(total) <= 1e-8:
            raise ValueError(f"log_weights: expected normalised log-weights (log sum exp = 0), "
                             f"got log sum exp {total:.3g}")
        if bandwidth_factors is not None:
            bandwidth_factors = np.asarray(bandwidth_factors, dtype=np.float64)
            if bandwidth_factors.shape != (n,):
                raise ValueError(f"bandwidth_factors: expected shape ({n},), got {bandwidth_factors.shape}")
            if not (np.all(np.isfinite(bandwidth_factors)) and np.all(bandwidth_factors > 0)):
                raise ValueError("bandwidth_factors: expected positive finite factors")
        self.process = process
        self.data = data
        self.log_weights = log_weights
        self.bandwidth_factors = bandwidth_factors
        self.backend = check_backend(backend)
        self.data_space = data_space
        self.points = family.prepare(data)

    @classmethod
    def from_data(cls, process, X, sample_weight=None, backend="auto", data_space=False):
        """Validate ``X``, the weights and the backend for ``process``; returns the global mixture.

        Parameters
        ----------
        process : GaussianProcess or ManifoldBrownianMotion
        X : (n, d) array
        sample_weight : (n,) array, optional
        backend : str
        data_space : bool

        Returns
        -------
        KernelMixture
        """
        family = _kernel_family(process, data_space)
        data = family.check_data(X, "X")
        resolve_backend(family, backend)
        log_weights = normalised_log_weights(sample_weight, data.shape[0])
        return cls(process, data, log_weights, None, backend, data_space)

    def with_factors(self, bandwidth_factors, data_space=None):
        """The same data with per-point bandwidth factors (and optionally the other space)."""
        space = self.data_space if data_space is None else data_space
        mixture = KernelMixture.__new__(KernelMixture)
        mixture.__dict__.update(self.__dict__)
        mixture.bandwidth_factors, mixture.data_space = bandwidth_factors, space
        if space != self.data_space:
            mixture.points = self.process.transition_kernel(None, data_space=space).prepare(self.data)
        return mixture

    def kernel(self, t):
        """The kernel at validated time(s) ``t`` (an all-equal array collapses to one time)."""
        t = np.asarray(t, dtype=np.float64)
        if t.ndim and t.size and bool(np.all(t == t.reshape(-1)[0])):
            t = t.reshape(-1)[0]
        return self.process.transition_kernel(t, self.bandwidth_factors, self.data_space)

    def check(self, x, t, name="x"):
        """Validated queries (in the data's dtype) and times (``()`` or ``(m,)``)."""
        family = self.process.transition_kernel(None, data_space=self.data_space)
        x = family.check_queries(x, self.data.shape[1], name)
        if x.dtype != self.data.dtype:
            x = x.astype(self.data.dtype)
        return x, self.process.check_time(t, n=x.shape[0])

    def evaluate(self, x, t, what, kernel=None):
        """``"log_density"`` ``(m,)``, ``"score"`` ``(m, D)`` or ``"denoise"`` ``(m, d)`` at queries ``x``.

        ``kernel``: the kernel at ``t`` already built (its factors are replaced by this mixture's).
        """
        x, t = self.check(x, t)
        kernel = self.kernel(t) if kernel is None else kernel.with_factors(self.bandwidth_factors)
        sums = kernel.reduce(x, self.points, self.data, self.log_weights,
                             gradient=what == "score" and kernel.gradient_score, backend=self.backend)
        return getattr(kernel, what)(x, sums)

    def leave_one_out(self, t, kernel=None):
        """Leave-one-out log-density of the data at one time ``t``: ``(n,)`` (data-space kernels)."""
        kernel = self.kernel(self.process.check_time(t)) if kernel is None else \
            kernel.with_factors(self.bandwidth_factors)
        return kernel.leave_one_out(self.points, self.data, self.log_weights, backend=self.backend)

    def sample(self, n, t, rng=None):
        """``n`` exact draws: a training point by weight, through its kernel at time ``t``; ``(n, D)``."""
        n = check_count(n, "n")
        rng = as_generator(rng)
        t = self.process.check_time(t)
        if t.ndim:
            raise ValueError(f"t: expected a single time, got shape {t.shape}")
        probabilities = np.exp(self.log_weights)
        rows = rng.choice(self.data.shape[0], size=n, p=probabilities / probabilities.sum())
        return self.kernel(t).sample(self.data[rows], rows, rng)


class KernelMeanEmbedding(ParamsMixin):
    """Forward marginals ``rho_t = P_t^* rho_N`` of an empirical measure (Gaussian or manifold process).

    Parameters
    ----------
    process : GaussianProcess or ManifoldBrownianMotion
    backend : str
        Reduction backend (``"auto"``, ``"numpy"``, ``"numba"``, ``"keops"``, ``"cupy"``, ``"dask"``).

    Attributes
    ----------
    data_ : (n, d) array
    log_weights_ : (n,) array
    mixture_ : KernelMixture
    """

    def __init__(self, process, backend="auto"):
        self.process = process
        self.backend = backend

    def fit(self, X, y=None, sample_weight=None):
        """Store the data ``X (n, d)`` and optional non-negative ``sample_weight (n,)``.

        Parameters
        ----------
        X : (n, d) array
        y : None
            Ignored (scikit-learn convention).
        sample_weight : (n,) array, optional

        Returns
        -------
        self
        """
        mixture = KernelMixture.from_data(self.process, X, sample_weight, self.backend)
        self.mixture_, self.data_, self.log_weights_ = mixture, mixture.data, mixture.log_weights
        return self

    def _mixture(self):
        check_fitted(self, "mixture_")
        return self.mixture_

    def log_density(self, x, t):
        """``log rho_t(x)``.

        Parameters
        ----------
        x : (m, D) array
        t : float or (m,) array

        Returns
        -------
        (m,) array
        """
        return self._mixture().evaluate(x, t, "log_density")

    def denoise(self, x, t):
        """Posterior mean ``E[x_0 | x_t = x]``.

        Parameters
        ----------
        x : (m, D) array
        t : float or (m,) array

        Returns
        -------
        (m, d) array
        """
        return self._mixture().evaluate(x, t, "denoise")

    def score(self, x, t):
        """``grad log rho_t(x)``.

        Parameters
        ----------
        x : (m, D) array
        t : float or (m,) array

        Returns
        -------
        (m, D) array
        """
        return self._mixture().evaluate(x, t, "score")

    def sample(self, n, t, rng=None):
        """Draw ``n`` points of ``rho_t``: a data point by weight, pushed through the transition.

        Parameters
        ----------
        n : int
        t : float
        rng : None, int or Generator

        Returns
        -------
        (n, D) array
        """
        return self._mixture().sample(n, t, rng)
