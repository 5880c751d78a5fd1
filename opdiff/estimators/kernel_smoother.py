"""The diffusion kernel smoother (DKS / RDKS): exact scores of the forward marginals of a data set.

With the empirical measure ``rho_N = sum_i w_i delta_{x_i}`` the forward marginal is the mixture of
transition kernels ``rho_t = sum_i w_i k_{t,i}``, and its score is a kernel smoother (Gaussian
processes: ``s_t(z) = -Sigma^{-1} (z - Phi lift(E[x_0 | z]))``; manifolds: the softmax mean of the
heat kernels' Riemannian gradients). One implementation for every process: the process builds the
kernel (:mod:`opdiff.processes.kernels`), :class:`~opdiff.operators.kme.KernelMixture` reduces over
it, and per-point bandwidths (:mod:`opdiff.estimators.adaptive`) only change the kernel's factors.
"""
import numpy as np

from ..backend import ParamsMixin, check_fitted, check_positive
from ..operators.kme import KernelMixture
from .adaptive import candidate_rules, fit_factors, parse_adaptive, select_time


class DiffusionKernelSmoother(ParamsMixin):
    """Exact score, denoiser and log-density of the forward marginals of a data set (DKS / RDKS).

    Two meanings of ``score``, told apart by ``t``: ``score(x, t)`` is the diffusion score
    ``grad log rho_t(x)`` (what samplers call); ``score(X)`` (no ``t``, scikit-learn's
    ``score(X, y=None)``) is the mean held-out log-likelihood ``mean(score_samples(X))`` of the
    smoother as a density estimator of the data, at the time ``time`` (or the one
    :meth:`select_time` chose). So ``GridSearchCV(DiffusionKernelSmoother(p), {"time": [...]})`` and
    ``cross_val_score`` select the time by held-out log-likelihood.

    Parameters
    ----------
    process : GaussianProcess or ManifoldBrownianMotion
        The forward process.
    backend : {"auto", "numpy", "numba", "keops", "cupy", "dask"}
        Backend of the sums over training points (checked in :meth:`fit`; manifolds: "auto",
        "numba", "numpy", "cupy").
    adaptive : None, "power", "knn", "auto" or float
        Bandwidth rule (:mod:`opdiff.estimators.adaptive`): None the global smoother; a number the
        power law with that exponent, ``"power"`` the exponent 1/2 (:meth:`select_time` tries
        several); ``"knn"`` nearest-neighbour bandwidths with ``k``; ``"auto"`` lets
        :meth:`select_time` choose the rule (``fit`` alone refuses it).
    k : int
        Neighbour count of the ``"knn"`` rule.
    time : float, optional
        Time of the density estimate (:meth:`score_samples`, ``score(X)``) and default pilot time.
    pilot_time : float, optional
        Time of the leave-one-out pilot of the power rule (default ``time``).

    Attributes
    ----------
    data_ : (n, d) array
        Training points, flattened (float32 kept).
    log_weights_ : (n,) array
        Normalised log-weights.
    bandwidth_factors_ : (n,) array or None
        Per-point bandwidth factors (None: the global smoother).
    rule_ : str
        ``"global"``, ``"power"`` or ``"knn"``.
    exponent_, k_ : float or None, int or None
        The rule's parameter.
    time_ : float or None
        Density-estimation time (``time``, or the one chosen by :meth:`select_time`).
    selection_ : TimeSelection or None
        The held-out scores of :meth:`select_time`.
    data_shape_ : tuple
        Shape of one training point as given (images: ``(C, H, W)``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from opdiff.processes import VPSDE
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> dks = DiffusionKernelSmoother(VPSDE()).fit(X)
    >>> dks.score(X[:3], t=0.5).shape
    (3, 2)
    """

    def __init__(self, process, backend="auto", adaptive=None, k=10, time=None, pilot_time=None):
        self.process = process
        self.backend = backend
        self.adaptive = adaptive
        self.k = k
        self.time = time
        self.pilot_time = pilot_time

    # ------------------------------------------------------------------ fitting
    def _prepare(self, X, sample_weight):
        X = X if hasattr(X, "shape") else np.asarray(X)
        if X.ndim not in (2, 4) or X.shape[0] == 0:
            raise ValueError(f"X: expected a 2-D array (n, d) or (n, C, H, W) images with at least one point, "
                             f"got shape {tuple(X.shape)}")
        shape = tuple(X.shape[1:])
        mixture = KernelMixture.from_data(self.process, X.reshape(X.shape[0], -1), sample_weight, self.backend)
        return mixture, shape

    def _time(self, value, name):
        return None if value is None else float(self.process.check_time(check_positive(value, name), name))

    def _assign(self, mixture, shape, rule, parameter, factors, time, selection):
        # assigned together, after every step that can fail: an error never leaves a half-fitted smoother
        self.mixture_ = mixture.with_factors(factors)
        self.density_ = mixture.with_factors(factors, data_space=True)
        self.data_, self.log_weights_, self.bandwidth_factors_ = mixture.data, mixture.log_weights, factors
        self.rule_ = rule
        self.exponent_ = parameter if rule == "power" else None
        self.k_ = parameter if rule == "knn" else None
        self.time_, self.selection_ = time, selection
        self.data_shape_, self.n_features_in_ = shape, mixture.data.shape[1]
        return self

    def fit(self, X, y=None, sample_weight=None):
        """Store the training points and resolve the kernel, the bandwidths and the backend.

        Parameters
        ----------
        X : (n, d) array or (n, C, H, W) images
        y : None
            Ignored (scikit-learn convention).
        sample_weight : (n,) array, optional
            Non-negative weights of the points.

        Returns
        -------
        self
        """
        rule, parameter = parse_adaptive(self.adaptive, self.k)
        if rule == "auto":
            raise ValueError("adaptive: 'auto' is resolved by select_time(X); fit needs None, 'power', 'knn' "
                             "or an exponent")
        time = self._time(self.time, "time")
        pilot_time = self._time(self.pilot_time, "pilot_time")
        mixture, shape = self._prepare(X, sample_weight)
        factors = fit_factors(mixture, rule, parameter, pilot_time if pilot_time is not None else time)
        return self._assign(mixture, shape, rule, parameter, factors, time, None)

    def select_time(self, X, y=None, sample_weight=None, times=None, exponents=None, neighbours=None, n_folds=5,
                    rng=0):
        """Choose the time (and, with ``adaptive``, the rule and its parameter) by K-fold held-out likelihood.

        The constructor's parameters are kept as given: the choice goes to ``time_``, ``rule_``,
        ``exponent_`` / ``k_`` and ``selection_``; then the smoother is fitted on all of ``X``.

        Parameters
        ----------
        X : (n, d) array or (n, C, H, W) images
        y : None
            Ignored.
        sample_weight : (n,) array, optional
        times : (k,) array, optional
            Candidate times (default: a geometric grid spanning the data's scales).
        exponents : sequence of float, optional
            Candidate power-law exponents (``adaptive="power"`` or ``"auto"``).
        neighbours : sequence of int, optional
            Candidate neighbour counts (``adaptive="knn"`` or ``"auto"``).
        n_folds : int
        rng : None, int or Generator

        Returns
        -------
        self
        """
        candidates = candidate_rules(self.adaptive, self.k, exponents, neighbours)
        mixture, shape = self._prepare(X, sample_weight)
        density = mixture.with_factors(None, data_space=True)
        selection = select_time(density, candidates, times=times, n_folds=n_folds, rng=rng)
        factors = fit_factors(mixture, selection.rule, selection.parameter, selection.time)
        return self._assign(mixture, shape, selection.rule, selection.parameter, factors, selection.time, selection)

    # ------------------------------------------------------------------ queries
    def _query(self, x, t, what, mixture=None):
        check_fitted(self, "mixture_")
        mixture = self.mixture_ if mixture is None else mixture
        flat = np.asarray(x) if not hasattr(x, "shape") else x
        images = flat.ndim > 2
        out = mixture.evaluate(flat.reshape(flat.shape[0], -1) if images else flat, t, what)
        if images and what != "log_density":
            return out.reshape((out.shape[0],) + (tuple(flat.shape[1:]) if what == "score" else self.data_shape_))
        return out

    def score(self, x, t=None):
        """The diffusion score ``grad log rho_t(x)``; without ``t``, the mean held-out log-likelihood.

        Parameters
        ----------
        x : (m, D) array or (m, C, H, W) images
            Query states (``D = K d`` for auxiliary-variable processes; ambient coordinates on a manifold).
        t : float or (m,) array, optional
            Time(s). ``None``: scikit-learn's ``score(X)``, the mean of :meth:`score_samples`.

        Returns
        -------
        (m, D) array, or float when ``t`` is None
            Tangent vectors on a manifold.
        """
        if t is None:
            return float(np.mean(self.score_samples(x)))
        return self._query(x, t, "score")

    def score_samples(self, X):
        """Log-density of the data-space smoother at ``time_`` (the density estimate of the data).

        Parameters
        ----------
        X : (m, d) array or (m, C, H, W) images

        Returns
        -------
        (m,) array
        """
        check_fitted(self, "mixture_")
        if self.time_ is None:
            raise ValueError("time: score_samples needs the density-estimation time; pass time=... or call "
                             "select_time(X)")
        return self._query(X, self.time_, "log_density", self.density_)

    def denoise(self, x, t):
        """Posterior mean ``E[x_0 | x_t = x]`` (Tweedie).

        Parameters
        ----------
        x : (m, D) array or (m, C, H, W) images
        t : float or (m,) array

        Returns
        -------
        (m, d) array (images: ``(m, C, H, W)``)
        """
        return self._query(x, t, "denoise")

    def log_density(self, x, t):
        """``log rho_t(x)`` (normalised; on a manifold, with respect to the Riemannian volume).

        Parameters
        ----------
        x : (m, D) array or (m, C, H, W) images
        t : float or (m,) array

        Returns
        -------
        (m,) array
        """
        return self._query(x, t, "log_density")

    def sample(self, n, t, rng=None):
        """Exact samples of the smoothed data law ``rho_t``.

        A training point drawn by weight, pushed through its kernel for time ``t`` (exact, no
        discretisation; use :mod:`opdiff.sampling` to run the reverse dynamics instead).

        Parameters
        ----------
        n : int
        t : float
        rng : None, int or Generator

        Returns
        -------
        (n, D) array (images: ``(n, C, H, W)`` when the state is the image)
        """
        check_fitted(self, "mixture_")
        out = self.mixture_.sample(n, t, rng)
        if len(self.data_shape_) > 1 and out.shape[1] == self.n_features_in_:
            return out.reshape((out.shape[0],) + self.data_shape_)
        return out
