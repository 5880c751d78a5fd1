"""The generator ``L_t`` of a forward process acting on test functions, and the carre du champ.

Convention (the one of :mod:`opdiff.processes.base`): for ``dX = b(X, t) dt + G(t) dW`` with
``a(t) = G(t) G(t)^T``,

    L_t f = b . grad f + 1/2 tr(a Hess f),      Gamma_t(f, g) = 1/2 [L_t(fg) - f L_t g - g L_t f]
                                                              = 1/2 grad f . a grad g.

(Brownian motion ``dX = dW``: ``L = 1/2 Laplacian`` and ``Gamma(f, g) = 1/2 grad f . grad g``; the
other common convention, ``dX = b dt + sqrt(2) dW``, is ``a = 2 I`` here.)

Test functions carry their value, gradient and Hessian (:class:`Polynomial`, :class:`Quadratic`,
:class:`Exponential`, :class:`PlaneWave`, :class:`GaussianBump`), so ``L_t f`` is exact; they also
carry their Gaussian expectation, which :class:`opdiff.operators.Semigroup` uses for ``P_{s,t} f`` in
closed form. Plain callables ``f(x (n, D)) -> (n,)`` are differentiated by central finite differences.
"""
import itertools

import numpy as np

from ..backend import check_points, check_time, get_namespace
from ..linalg import Kron

#: Finite-difference step (relative to ``max(1, |x_i|)``): ``eps^(1/4)`` balances the ``O(h^2)``
#: truncation error of the central second difference against its ``O(eps / h^2)`` rounding error.
FD_STEP = float(np.finfo(np.float64).eps ** 0.25)
#: Largest tensor Gauss-Hermite grid used for exact polynomial expectations.
MAX_QUADRATURE_NODES = 20000


class SmoothFunction:
    """A scalar test function on ``R^D`` with value, gradient and Hessian.

    Subclasses implement :meth:`value`, :meth:`gradient` and :meth:`hessian`, and may implement
    :meth:`gaussian_expectation` (``E f(Y)``, ``Y ~ N(mean, cov)``) for closed-form semigroups.
    Values are complex for complex-valued functions (plane waves).

    Attributes
    ----------
    dim : int
        ``D``, the dimension of the points the function takes.
    """

    dim = None

    def __call__(self, x):
        return self.value(x)

    def _check(self, x):
        return check_points(x, "x", dim=self.dim, allow_1d=True)

    def value(self, x):
        """``f(x)``; ``x (n, D) -> (n,)``."""
        raise NotImplementedError

    def gradient(self, x):
        """``grad f(x)``; ``(n, D)``."""
        raise NotImplementedError

    def hessian(self, x):
        """``Hess f(x)``; ``(n, D, D)``."""
        raise NotImplementedError

    def gaussian_expectation(self, mean, cov):
        """``E f(Y)`` for ``Y ~ N(mean_j, cov_j)``; ``mean (n, D)``, ``cov (D, D)`` or ``(n, D, D)`` -> ``(n,)``.

        Returns ``None`` when no closed form is available (the semigroup then uses Monte Carlo).
        """
        return None


def _param(value, name, dim=None, ndim=1):
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.complex128 if np.iscomplexobj(arr) else np.float64)
    if arr.ndim != ndim or (dim is not None and arr.shape[-1] != dim):
        raise ValueError(f"{name}: expected a {ndim}-D array{'' if dim is None else f' of trailing size {dim}'},"
                         f" got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {arr}")
    return arr


def _cast(param, x):
    """A parameter in the precision of ``x`` (complex parameters stay complex)."""
    if np.iscomplexobj(param):
        return param.astype(np.complex64 if x.dtype == np.float32 else np.complex128)
    return param.astype(x.dtype)


def _quadratic_form(vectors, matrices):
    """``v_j^T M v_j`` for ``vectors (n, D)`` and ``matrices (D, D)`` or ``(n, D, D)``."""
    if matrices.ndim == 2:
        return np.einsum("ni,ij,nj->n", vectors, matrices, vectors)
    return np.einsum("ni,nij,nj->n", vectors, matrices, vectors)


class Exponential(SmoothFunction):
    """``f(x) = exp(k . x)`` with a real or complex wave vector ``k (D,)``.

    Gaussian expectation ``E exp(k . Y) = exp(k . m + 1/2 k^T S k)`` (valid for complex ``k``).

    Parameters
    ----------
    k : (D,) array
        Wave vector (real or complex, finite).
    """

    def __init__(self, k):
        self.k = _param(k, "k")
        self.dim = self.k.shape[0]

    def value(self, x):
        x = self._check(x)
        return np.exp(x @ _cast(self.k, x))

    def gradient(self, x):
        k = _cast(self.k, self._check(x))
        return self.value(x)[:, None] * k

    def hessian(self, x):
        k = _cast(self.k, self._check(x))
        return self.value(x)[:, None, None] * np.multiply.outer(k, k)

    def gaussian_expectation(self, mean, cov):
        return np.exp(mean @ self.k + 0.5 * _quadratic_form(np.broadcast_to(self.k, mean.shape), cov))


class PlaneWave(Exponential):
    """``f(x) = exp(i k . x)`` for a real wave vector ``k (D,)`` (complex values; take ``.real`` for cosines).

    Gaussian expectation ``exp(i k . m - 1/2 k^T S k)``: the characteristic function.

    Parameters
    ----------
    k : (D,) array
        Real wave vector.
    """

    def __init__(self, k):
        k = _param(k, "k")
        if np.iscomplexobj(k):
            raise ValueError(f"k: expected a real wave vector, got {k}")
        super().__init__(1j * k)
        self.wave_vector = k


class GaussianBump(SmoothFunction):
    """``f(x) = exp(-1/2 (x - c)^T C^{-1} (x - c))`` (unnormalised).

    Parameters
    ----------
    center : (D,) array
    width : float or (D, D) array
        A float ``w`` means ``C = w^2 I``; a matrix is the covariance ``C`` (symmetric positive definite).

    Gaussian expectation ``det(I + C^{-1} S)^{-1/2} exp(-1/2 (m - c)^T (C + S)^{-1} (m - c))``.
    """

    def __init__(self, center, width=1.0):
        self.center = _param(center, "center")
        self.dim = self.center.shape[0]
        width = np.asarray(width, dtype=np.float64)
        if width.ndim == 0:
            if not (np.isfinite(width) and width > 0):
                raise ValueError(f"width: expected a positive number, got {float(width)}")
            cov = float(width) ** 2 * np.eye(self.dim)
        else:
            cov = _param(width, "width", dim=self.dim, ndim=2)
            if cov.shape != (self.dim, self.dim) or not np.allclose(cov, cov.T):
                raise ValueError(f"width: expected a symmetric ({self.dim}, {self.dim}) matrix, got shape {cov.shape}")
            if np.min(np.linalg.eigvalsh(cov)) <= 0:
                raise ValueError("width: expected a positive definite covariance")
        self.cov = cov
        self.precision = np.linalg.inv(cov)

    def _parts(self, x):
        x = self._check(x)
        residual = x - self.center.astype(x.dtype)
        direction = residual @ self.precision.astype(x.dtype)  # C^{-1} (x - c), C symmetric
        value = np.exp(-0.5 * np.sum(residual * direction, axis=1))
        return value, direction

    def value(self, x):
        return self._parts(x)[0]

    def gradient(self, x):
        value, direction = self._parts(x)
        return -value[:, None] * direction

    def hessian(self, x):
        value, direction = self._parts(x)
        precision = self.precision.astype(direction.dtype)
        return value[:, None, None] * (np.einsum("ni,nj->nij", direction, direction) - precision)

    def gaussian_expectation(self, mean, cov):
        total = self.cov + cov
        residual = mean - self.center
        _, logdet_total = np.linalg.slogdet(total)
        _, logdet_c = np.linalg.slogdet(self.cov)
        return np.exp(0.5 * (logdet_c - logdet_total) - 0.5 * _quadratic_form(residual, np.linalg.inv(total)))


class Quadratic(SmoothFunction):
    """``f(x) = x^T A x + b . x + c``; Gaussian expectation ``tr(A S) + m^T A m + b . m + c``.

    Parameters
    ----------
    A : (D, D) array (symmetrised)
    b : (D,) array, optional
    c : float
    """

    def __init__(self, A, b=None, c=0.0):
        A = _param(A, "A", ndim=2)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
        self.A = 0.5 * (A + A.T)
        self.dim = A.shape[0]
        self.b = np.zeros(self.dim) if b is None else _param(b, "b", dim=self.dim)
        self.c = float(c)

    def value(self, x):
        x = self._check(x)
        return np.sum((x @ _cast(self.A, x)) * x, axis=1) + x @ _cast(self.b, x) + self.c

    def gradient(self, x):
        x = self._check(x)
        return 2.0 * x @ _cast(self.A, x) + _cast(self.b, x)

    def hessian(self, x):
        x = self._check(x)
        return np.broadcast_to(2.0 * _cast(self.A, x), (x.shape[0], self.dim, self.dim))

    def gaussian_expectation(self, mean, cov):
        trace = np.einsum("ij,...ji->...", self.A, cov)
        return trace + _quadratic_form(mean, self.A) + mean @ self.b + self.c


class Polynomial(SmoothFunction):
    """``f(x) = sum_j c_j prod_k x_k^{alpha_jk}``.

    Parameters
    ----------
    coefficients : (J,) array
    exponents : (J, D) array of non-negative integers

    The Gaussian expectation is exact: tensor Gauss-Hermite quadrature with ``deg // 2 + 1`` nodes per
    axis integrates polynomials of degree ``deg`` exactly (``None`` beyond
    :data:`MAX_QUADRATURE_NODES` nodes, and the semigroup falls back to Monte Carlo).
    """

    def __init__(self, coefficients, exponents):
        self.coefficients = _param(coefficients, "coefficients")
        exponents = np.asarray(exponents)
        if exponents.ndim != 2 or exponents.shape[0] != self.coefficients.shape[0]:
            raise ValueError(f"exponents: expected shape ({self.coefficients.shape[0]}, D), got {exponents.shape}")
        if not np.issubdtype(exponents.dtype, np.integer) or np.any(exponents < 0):
            raise ValueError("exponents: expected non-negative integers")
        self.exponents = exponents.astype(np.int64)
        self.dim = exponents.shape[1]
        self.degree = int(self.exponents.sum(axis=1).max())

    def _monomials(self, x, exponents):
        """``(n, J)`` monomials with the given exponents (negative exponents give zero)."""
        powers = np.where(exponents >= 0, exponents, 0).astype(x.dtype)  # integer powers, float32 kept
        terms = np.prod(x[:, None, :] ** powers[None], axis=2)
        return np.where(np.all(exponents >= 0, axis=1)[None], terms, 0.0)

    def value(self, x):
        x = self._check(x)
        return self._monomials(x, self.exponents) @ _cast(self.coefficients, x)

    def gradient(self, x):
        x = self._check(x)
        coefficients = _cast(self.coefficients, x)
        columns = []
        for k in range(self.dim):
            lowered = self.exponents.copy()
            lowered[:, k] -= 1
            columns.append(self._monomials(x, lowered) @ (coefficients * self.exponents[:, k].astype(x.dtype)))
        return np.stack(columns, axis=1)

    def hessian(self, x):
        x = self._check(x)
        coefficients = _cast(self.coefficients, x)
        out = np.empty((x.shape[0], self.dim, self.dim), dtype=np.result_type(x.dtype, coefficients.dtype))
        for k, l in itertools.combinations_with_replacement(range(self.dim), 2):
            lowered = self.exponents.copy()
            factor = self.exponents[:, k] * (self.exponents[:, l] - (k == l))
            lowered[:, k] -= 1
            lowered[:, l] -= 1
            out[:, k, l] = out[:, l, k] = self._monomials(x, lowered) @ (coefficients * factor.astype(x.dtype))
        return out

    def gaussian_expectation(self, mean, cov):
        per_axis = self.degree // 2 + 1
        if per_axis**self.dim > MAX_QUADRATURE_NODES:
            return None
        nodes, weights = np.polynomial.hermite_e.hermegauss(per_axis)
        weights = weights / np.sqrt(2.0 * np.pi)
        factor = gaussian_factor(cov)
        total = np.zeros(mean.shape[0], dtype=np.result_type(mean.dtype, self.coefficients.dtype))
        for index in itertools.product(range(per_axis), repeat=self.dim):
            z = nodes[list(index)]
            points = mean + (factor @ z if factor.ndim == 2 else np.einsum("nij,j->ni", factor, z))
            total += np.prod(weights[list(index)]) * self.value(points)
        return total


def gaussian_factor(cov):
    """A square root ``R`` with ``R R^T = cov`` for positive semi-definite ``cov (..., D, D)`` (eigen-based)."""
    eigenvalues, vectors = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[..., None, :]


def _trace_product(covariance, hessians):
    """``tr(a H_j)`` for a structured operator ``a`` (one per row if batched) and ``hessians (n, D, D)``."""
    D = hessians.shape[-1]
    columns = [covariance.apply(hessians[:, :, j]) for j in range(D)]  # (a H)[:, :, j]
    return sum(columns[j][:, j] for j in range(D))


def _fd_steps(x):
    return FD_STEP * np.maximum(1.0, np.abs(x))


def finite_difference_derivatives(f, x, full_hessian=True):
    """Value, gradient and Hessian of a callable ``f(x (n, D)) -> (n,)`` by central differences.

    Step ``h_i = eps^(1/4) max(1, |x_i|)``. Truncation error ``O(h^2)`` (``h^2/6 |f'''|`` for the
    gradient, ``h^2/12 |f''''|`` for the Hessian) plus rounding ``O(eps |f| / h^2)``: about ``1e-7``
    relative to the scale of ``f`` and its derivatives in float64.

    Parameters
    ----------
    f : callable
    x : (n, D) float64 array
    full_hessian : bool
        When false, only the diagonal of the Hessian is computed (off-diagonal entries are zero).

    Returns
    -------
    value (n,), gradient (n, D), hessian (n, D, D)
    """
    if not callable(f):
        raise TypeError(f"f: expected a callable f(x) -> (n,), got {type(f).__name__}")
    x = check_points(x, "x")
    n, D = x.shape
    steps = _fd_steps(x)

    def evaluate(point):
        out = np.asarray(f(point))
        if out.shape != (n,):
            raise ValueError(f"f: expected a callable returning shape ({n},), got {out.shape}")
        if not np.all(np.isfinite(out)):
            raise ValueError("f: returned non-finite values at or near x")
        return out

    value = evaluate(x)
    dtype = np.result_type(value.dtype, np.float64)
    gradient = np.empty((n, D), dtype=dtype)
    hessian = np.zeros((n, D, D), dtype=dtype)
    shifted = {}
    for i in range(D):
        for sign in (1, -1):
            point = x.copy()
            point[:, i] += sign * steps[:, i]
            shifted[i, sign] = evaluate(point)
        gradient[:, i] = (shifted[i, 1] - shifted[i, -1]) / (2.0 * steps[:, i])
        hessian[:, i, i] = (shifted[i, 1] - 2.0 * value + shifted[i, -1]) / steps[:, i] ** 2
    if full_hessian:
        for i, j in itertools.combinations(range(D), 2):
            corners = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                point = x.copy()
                point[:, i] += si * steps[:, i]
                point[:, j] += sj * steps[:, j]
                corners.append(evaluate(point))
            mixed = (corners[0] - corners[1] - corners[2] + corners[3]) / (4.0 * steps[:, i] * steps[:, j])
            hessian[:, i, j] = hessian[:, j, i] = mixed
    return value, gradient, hessian


class Generator:
    """``L_t f = b . grad f + 1/2 tr(a Hess f)`` of a forward process, applied pointwise.

    Parameters
    ----------
    process : MarkovProcess
        Any process exposing ``process.generator`` (drift and ``a = G G^T``) on Euclidean states.

    Notes
    -----
    Test functions (:class:`SmoothFunction`) are differentiated exactly. Plain callables
    ``f(x (n, D)) -> (n,)`` are differentiated by central finite differences
    (:func:`finite_difference_derivatives`, about ``1e-7`` relative accuracy in float64; the
    off-diagonal Hessian is only computed when ``a`` is not diagonal), evaluated in float64 and
    returned in the dtype of ``x``.

    Examples
    --------
    >>> from opdiff.processes import BrownianMotion
    >>> L = Generator(BrownianMotion(sigma=1.0))
    >>> float(L(Quadratic(np.eye(2)), np.zeros((1, 2)), 0.5)[0])  # 1/2 Laplacian |x|^2 = D
    2.0
    """

    def __init__(self, process):
        if getattr(process, "is_manifold", False):
            raise ValueError("process: Generator acts on Euclidean processes; got a manifold process")
        if not hasattr(process, "generator"):
            raise TypeError(f"process: expected a MarkovProcess with a generator, got {type(process).__name__}")
        self.process = process
        self.coefficients = process.generator

    def _check(self, f, x, t, name="f"):
        if not callable(f):
            raise TypeError(f"{name}: expected a SmoothFunction or a callable, got {type(f).__name__}")
        dim = f.dim if isinstance(f, SmoothFunction) else None
        x = check_points(x, "x", dim=dim, allow_1d=True)
        t = check_time(t, "t", self.process.t_min, self.process.t_max, n=x.shape[0], include_min=True)
        return x, (t.reshape(()) if t.shape == (1,) else t)

    def derivatives(self, f, x, full_hessian=True):
        """Value, gradient and Hessian of ``f`` at ``x``: exact for test functions, finite differences otherwise."""
        if isinstance(f, SmoothFunction):
            return f.value(x), f.gradient(x), f.hessian(x)
        value, gradient, hessian = finite_difference_derivatives(f, x.astype(np.float64), full_hessian)
        out = (lambda a: a.astype(np.complex64 if np.iscomplexobj(a) else np.float32)) if x.dtype == np.float32 \
            else (lambda a: a)
        return out(value), out(gradient), out(hessian)

    def apply(self, f, x, t):
        """``(L_t f)(x)``.

        Parameters
        ----------
        f : SmoothFunction or callable ``(n, D) -> (n,)``
        x : (n, D) array
        t : float or (n,) array, inside ``[t_min, t_max]``

        Returns
        -------
        (n,) array (complex for complex-valued ``f``)
        """
        x, t = self._check(f, x, t)
        covariance = self.coefficients.covariance(t)
        _, gradient, hessian = self.derivatives(f, x, full_hessian=isinstance(covariance, Kron))
        drift = self.coefficients.drift(x, t)
        xp = get_namespace(x)
        return xp.sum(drift * gradient, axis=1) + 0.5 * _trace_product(covariance, hessian)

    __call__ = apply

    def carre_du_champ(self, f, g, x, t):
        """``Gamma_t(f, g)(x) = 1/2 grad f . a(t) grad g`` (``= 1/2 [L(fg) - f Lg - g Lf]``); ``(n,)``."""
        x, t = self._check(f, x, t)
        self._check(g, x, t, name="g")
        covariance = self.coefficients.covariance(t)
        grad_f = self.derivatives(f, x, full_hessian=False)[1]
        grad_g = self.derivatives(g, x, full_hessian=False)[1]
        xp = get_namespace(x)
        return 0.5 * xp.sum(grad_f * covariance.apply(grad_g), axis=1)
