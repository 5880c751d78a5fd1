"""``Scalar``, ``Diagonal`` and ``Kron`` operators with apply, solve, Cholesky, log-determinant.

Batched parameters: a ``Scalar`` with ``c`` of shape ``(n,)``, a ``Diagonal`` with ``v`` of shape
``(n, D)`` or a ``Kron`` with ``block`` of shape ``(n, K, K)`` acts row-wise on ``x (n, D)``.
"""
import numpy as np

from ..backend import get_namespace

#: Relative jitter added to the diagonal when a Cholesky factorisation fails (tried in turn).
JITTER_LADDER = (0.0, 1e-12, 1e-10, 1e-8)


class LinearOperator:
    """Base class: a linear map on ``(n, D)`` arrays, applied row by row."""

    #: True when the parameters carry a leading batch axis (one operator per row).
    batched = False

    def apply(self, x):
        """Return ``A x`` for every row; ``x (n, D) -> (n, D)``."""
        raise NotImplementedError

    def solve(self, x):
        """Return ``A^{-1} x`` for every row."""
        raise NotImplementedError

    def transpose(self):
        """``A^T`` as an operator of the same family.

        Returns
        -------
        LinearOperator
        """
        raise NotImplementedError

    def cholesky(self):
        """Lower-triangular factor ``L`` with ``L L^T = A`` (A symmetric positive definite)."""
        raise NotImplementedError

    def logdet(self, dim):
        """``log |det A|`` for the operator acting on ``R^dim``; shape ``()`` or ``(n,)`` if batched."""
        raise NotImplementedError

    def dense(self, dim):
        """The ``(dim, dim)`` matrix (``(n, dim, dim)`` if batched). For tests and small problems only."""
        eye = np.eye(dim)
        if self.batched:
            return np.stack([self._row(i).dense(dim) for i in range(self.batch_size)])
        return self.apply(eye).T

    def __matmul__(self, other):
        if not isinstance(other, _STRUCTURED) or not isinstance(self, _STRUCTURED):
            return NotImplemented  # lets other operator families (e.g. FourierDiagonal) handle it
        return compose(self, other)

    @property
    def T(self):
        return self.transpose()


def _batch_rows(param, rank):
    """Number of rows of a batched parameter (``None`` when unbatched)."""
    return param.shape[0] if param.ndim > rank else None


def _check_parameter(param, name, owner):
    """Raise ``ValueError`` naming ``name`` if the operator parameter holds NaN or inf."""
    xp = get_namespace(param)
    if not np.issubdtype(param.dtype, np.number) or np.issubdtype(param.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers for {owner}, got dtype {param.dtype}")
    if not bool(xp.all(xp.isfinite(param))):
        bad = int(xp.sum(~xp.isfinite(param)))
        raise ValueError(f"{name}: expected finite values for {owner}, found {bad} non-finite entries")
    return param


def _parameter_repr(param):
    """A short description of an operator parameter: the value when small, else shape and dtype."""
    if param.size <= 4:
        return repr(np.asarray(param).tolist() if param.ndim else float(param))
    return f"array(shape={tuple(param.shape)}, dtype={param.dtype})"


class Scalar(LinearOperator):
    """``c I``.

    Parameters
    ----------
    c : float or (n,) array
        The scalar, or one per row (finite).
    """

    def __init__(self, c):
        xp = get_namespace(c)
        self.c = _check_parameter(xp.asarray(c, dtype=getattr(c, "dtype", np.float64)), "c", "Scalar")
        if self.c.ndim > 1:
            raise ValueError(f"c: expected a scalar or an (n,) array, got shape {self.c.shape}")
        self.batched = self.c.ndim == 1
        self.batch_size = _batch_rows(self.c, 0)

    def __repr__(self):
        return f"Scalar({_parameter_repr(self.c)})"

    def _coef(self, x):
        return self.c[:, None] if self.batched else self.c

    def _row(self, i):
        return Scalar(self.c[i])

    def apply(self, x):
        return x * self._coef(x).astype(x.dtype, copy=False)

    def solve(self, x):
        return x / self._coef(x).astype(x.dtype, copy=False)

    def transpose(self):
        """``A^T = A`` (symmetric).

        Returns
        -------
        LinearOperator
        """
        return self

    def inverse(self):
        """``A^{-1}`` as an operator of the same family.

        Returns
        -------
        LinearOperator
        """
        return Scalar(1.0 / self.c)

    def cholesky(self):
        xp = get_namespace(self.c)
        if bool(xp.any(self.c <= 0)):
            raise np.linalg.LinAlgError(f"Scalar.cholesky: c must be positive, got min {float(xp.min(self.c))}")
        return Scalar(xp.sqrt(self.c))

    def logdet(self, dim):
        xp = get_namespace(self.c)
        return dim * xp.log(xp.abs(self.c))


class Diagonal(LinearOperator):
    """``diag(v)``.

    Parameters
    ----------
    v : (D,) or (n, D) array
        The diagonal, or one per row (finite).
    """

    def __init__(self, v):
        xp = get_namespace(v)
        self.v = _check_parameter(xp.asarray(v, dtype=getattr(v, "dtype", np.float64)), "v", "Diagonal")
        if self.v.ndim not in (1, 2):
            raise ValueError(f"v: expected shape (D,) or (n, D), got {self.v.shape}")
        self.batched = self.v.ndim == 2
        self.batch_size = _batch_rows(self.v, 1)

    def __repr__(self):
        return f"Diagonal({_parameter_repr(self.v)})"

    def _row(self, i):
        return Diagonal(self.v[i])

    def apply(self, x):
        return x * self.v.astype(x.dtype, copy=False)

    def solve(self, x):
        return x / self.v.astype(x.dtype, copy=False)

    def transpose(self):
        """``A^T = A`` (symmetric).

        Returns
        -------
        LinearOperator
        """
        return self

    def inverse(self):
        """``A^{-1}`` as an operator of the same family.

        Returns
        -------
        LinearOperator
        """
        return Diagonal(1.0 / self.v)

    def cholesky(self):
        xp = get_namespace(self.v)
        if bool(xp.any(self.v <= 0)):
            raise np.linalg.LinAlgError("Diagonal.cholesky: every entry must be positive")
        return Diagonal(xp.sqrt(self.v))

    def logdet(self, dim):
        xp = get_namespace(self.v)
        if self.v.shape[-1] != dim:
            raise ValueError(f"dim: this Diagonal acts on R^{self.v.shape[-1]}, got dim={dim}")
        return xp.sum(xp.log(xp.abs(self.v)), axis=-1)


class Kron(LinearOperator):
    """``B (x) I_d``: a small ``K x K`` block acting on the auxiliary index of ``(n, K, d)`` data.

    Points are stored flat as ``(n, K*d)`` with the K coordinate blocks one after the other
    (``[x (d entries), v1 (d), ...]``) and are reshaped to ``(n, K, d)`` internally.
    ``block`` is ``(K, K)`` or ``(n, K, K)`` (one block per row).

    Parameters
    ----------
    block : (K, K) or (n, K, K) array
        Finite.
    """

    def __init__(self, block):
        xp = get_namespace(block)
        self.block = _check_parameter(xp.asarray(block, dtype=getattr(block, "dtype", np.float64)), "block", "Kron")
        if self.block.ndim not in (2, 3) or self.block.shape[-1] != self.block.shape[-2]:
            raise ValueError(f"block: expected shape (K, K) or (n, K, K), got {self.block.shape}")
        self.K = self.block.shape[-1]
        self.batched = self.block.ndim == 3
        self.batch_size = _batch_rows(self.block, 2)

    def __repr__(self):
        batch = f", batch={self.batch_size}" if self.batched else ""
        return f"Kron(K={self.K}{batch})"

    def _row(self, i):
        return Kron(self.block[i])

    def _split(self, x):
        if x.shape[-1] % self.K:
            raise ValueError(f"x: trailing size {x.shape[-1]} is not a multiple of K={self.K}")
        return x.reshape(x.shape[0], self.K, x.shape[-1] // self.K)

    def _map(self, matrices, x):
        xp = get_namespace(x)
        z = self._split(x)
        matrices = matrices.astype(x.dtype, copy=False)
        spec = "nij,njd->nid" if matrices.ndim == 3 else "ij,njd->nid"
        return xp.einsum(spec, matrices, z).reshape(x.shape)

    def apply(self, x):
        return self._map(self.block, x)

    def solve(self, x):
        xp = get_namespace(self.block)
        return self._map(xp.linalg.inv(self.block), x)

    def transpose(self):
        """``B^T (x) I_d``.

        Returns
        -------
        Kron
        """
        return Kron(np.swapaxes(self.block, -1, -2))

    def inverse(self):
        """``B^{-1} (x) I_d``.

        Returns
        -------
        Kron
        """
        xp = get_namespace(self.block)
        return Kron(xp.linalg.inv(self.block))

    def cholesky(self):
        return Kron(cholesky_with_jitter(self.block))

    def logdet(self, dim):
        xp = get_namespace(self.block)
        if dim % self.K:
            raise ValueError(f"dim: {dim} is not a multiple of K={self.K}")
        sign, logabs = xp.linalg.slogdet(self.block)
        return (dim // self.K) * logabs

    def dense(self, dim):
        d = dim // self.K
        if self.batched:
            return np.stack([np.kron(b, np.eye(d)) for b in self.block])
        return np.kron(self.block, np.eye(d))


def cholesky_with_jitter(matrix):
    """Cholesky of a (batch of) small SPD matrices, adding relative jitter from :data:`JITTER_LADDER`.

    Raises ``numpy.linalg.LinAlgError`` naming the smallest eigenvalue when every jitter fails.
    """
    xp = get_namespace(matrix)
    scale = xp.max(xp.abs(xp.diagonal(matrix, axis1=-2, axis2=-1)))
    eye = xp.eye(matrix.shape[-1], dtype=matrix.dtype)
    for jitter in JITTER_LADDER:
        try:
            return xp.linalg.cholesky(matrix + jitter * scale * eye)
        except np.linalg.LinAlgError:
            continue
    smallest = float(xp.min(xp.linalg.eigvalsh(matrix)))
    raise np.linalg.LinAlgError(f"matrix is not positive definite (smallest eigenvalue {smallest:.3e})")


def _as_kron(op, K):
    if isinstance(op, Kron):
        return op.block
    xp = get_namespace(op.c)
    eye = xp.eye(K)
    return op.c[:, None, None] * eye if op.batched else op.c * eye


def compose(a, b):
    """Operator product ``a @ b`` kept structured (Scalar, Diagonal and Kron close under products)."""
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return Scalar(a.c * b.c)
    if isinstance(a, Diagonal) and isinstance(b, Diagonal):
        return Diagonal(a.v * b.v)
    if isinstance(a, Diagonal) and isinstance(b, Scalar):
        return Diagonal(a.v * (b.c[:, None] if b.batched else b.c))
    if isinstance(a, Scalar) and isinstance(b, Diagonal):
        return Diagonal((a.c[:, None] if a.batched else a.c) * b.v)
    if isinstance(a, Kron) or isinstance(b, Kron):
        if isinstance(a, Diagonal) or isinstance(b, Diagonal):
            raise TypeError("compose: Diagonal and Kron operators do not combine into a structured operator")
        K = a.K if isinstance(a, Kron) else b.K
        return Kron(_as_kron(a, K) @ _as_kron(b, K))
    raise TypeError(f"compose: unsupported operands {type(a).__name__} and {type(b).__name__}")


_STRUCTURED = (Scalar, Diagonal, Kron)


def as_operator(value):
    """Wrap a float, ``(D,)`` diagonal or ``(K, K)`` block as an operator (operators pass through).

    Parameters
    ----------
    value : float, (D,) array, (K, K) array or LinearOperator

    Returns
    -------
    LinearOperator
    """
    if isinstance(value, LinearOperator):
        return value
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return Scalar(arr)
    if arr.ndim == 1:
        return Diagonal(arr)
    return Kron(arr)
