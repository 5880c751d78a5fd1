"""Scalar / Diagonal / Kron operators against their dense matrices (hypothesis property tests)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opdiff.linalg import Diagonal, Kron, Scalar, as_operator
from opdiff.linalg.operators import cholesky_with_jitter

SETTINGS = settings(max_examples=25, deadline=None)


def _spd(rng, K, batch=None):
    shape = (K, K) if batch is None else (batch, K, K)
    A = rng.normal(size=shape)
    return A @ np.swapaxes(A, -1, -2) + K * np.eye(K)


@st.composite
def operator_cases(draw):
    """A random positive definite structured operator, its data dimension, batching and dtype."""
    kind = draw(st.sampled_from(["scalar", "diagonal", "kron"]))
    batched = draw(st.booleans())
    n = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(seed)
    if kind == "scalar":
        dim = draw(st.integers(1, 5))
        c = rng.uniform(0.5, 2.0, size=n if batched else None)
        op = Scalar(c if batched else float(c))
    elif kind == "diagonal":
        dim = draw(st.integers(1, 5))
        op = Diagonal(rng.uniform(0.5, 2.0, size=(n, dim) if batched else dim))
    else:
        K, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        dim = K * d
        op = Kron(_spd(rng, K, n if batched else None))
    x = rng.normal(size=(n, dim)).astype(dtype)
    return op, x, dim


def _dense_rows(op, n, dim):
    """(n, dim, dim) dense matrices, one per row."""
    dense = op.dense(dim)
    return dense if dense.ndim == 3 else np.broadcast_to(dense, (n, dim, dim))


@SETTINGS
@given(operator_cases())
def test_apply_solve_transpose_against_dense(case):
    op, x, dim = case
    n = x.shape[0]
    dense = _dense_rows(op, n, dim)
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    y = op.apply(x)
    assert y.shape == x.shape and y.dtype == x.dtype  # float32 kept
    np.testing.assert_allclose(y, np.einsum("nij,nj->ni", dense, x.astype(np.float64)), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(op.solve(y), x, rtol=10 * rtol, atol=10 * rtol)
    assert op.solve(x).dtype == x.dtype
    np.testing.assert_allclose(_dense_rows(op.T, n, dim), np.swapaxes(dense, 1, 2), rtol=1e-14)


@SETTINGS
@given(operator_cases())
def test_cholesky_and_logdet_against_dense(case):
    op, x, dim = case
    n = x.shape[0]
    dense = _dense_rows(op, n, dim)
    L = _dense_rows(op.cholesky(), n, dim)
    np.testing.assert_allclose(L @ np.swapaxes(L, 1, 2), dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.triu(L, 1), 0.0)
    logdet = np.broadcast_to(op.logdet(dim), (n,))
    np.testing.assert_allclose(logdet, np.linalg.slogdet(dense)[1], rtol=1e-12, atol=1e-12)


@SETTINGS
@given(operator_cases(), st.integers(0, 2**16))
def test_composition_against_dense(case, seed):
    a, x, dim = case
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    if isinstance(a, Kron):
        others = [Scalar(rng.uniform(0.5, 2.0)), Scalar(rng.uniform(0.5, 2.0, size=n)),
                  Kron(rng.normal(size=(a.K, a.K)))]
    else:
        others = [Scalar(rng.uniform(0.5, 2.0)), Scalar(rng.uniform(0.5, 2.0, size=n)),
                  Diagonal(rng.normal(size=dim))]
    for b in others:
        for left, right in ((a, b), (b, a)):
            product = left @ right
            expected = _dense_rows(left, n, dim) @ _dense_rows(right, n, dim)
            np.testing.assert_allclose(_dense_rows(product, n, dim), expected, rtol=1e-12, atol=1e-12)


def test_diagonal_and_kron_do_not_compose():
    with pytest.raises(TypeError, match="compose: Diagonal and Kron"):
        Diagonal(np.ones(4)) @ Kron(np.eye(2))


def test_as_operator_and_bad_shapes():
    assert isinstance(as_operator(2.0), Scalar)
    assert isinstance(as_operator(np.ones(3)), Diagonal)
    assert isinstance(as_operator(np.eye(2)), Kron)
    op = Kron(np.eye(2))
    assert as_operator(op) is op
    with pytest.raises(ValueError, match="c: expected a scalar or an"):
        Scalar(np.ones((2, 2)))
    with pytest.raises(ValueError, match="v: expected shape"):
        Diagonal(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="block: expected shape"):
        Kron(np.ones((2, 3)))
    with pytest.raises(ValueError, match="x: trailing size 3 is not a multiple of K=2"):
        Kron(np.eye(2)).apply(np.ones((1, 3)))
    with pytest.raises(ValueError, match="dim: this Diagonal acts on R\\^3"):
        Diagonal(np.ones(3)).logdet(4)
    with pytest.raises(np.linalg.LinAlgError, match="c must be positive"):
        Scalar(-1.0).cholesky()
    with pytest.raises(np.linalg.LinAlgError, match="smallest eigenvalue"):
        cholesky_with_jitter(np.array([[1.0, 0.0], [0.0, -1.0]]))


def test_cholesky_jitter_rescues_semidefinite_blocks():
    v = np.array([1.0, 2.0])
    singular = np.outer(v, v)  # rank one
    L = cholesky_with_jitter(singular)
    np.testing.assert_allclose(L @ L.T, singular, atol=1e-7 * np.max(singular))


def test_scalar_composes_with_fourier_diagonal_on_either_side():
    from opdiff.linalg import Scalar
    from opdiff.linalg.fourier import FourierDiagonal, power_law_weights

    op = FourierDiagonal.from_weights((1, 4, 4), power_law_weights(4, 4, 0.5))
    x = np.random.default_rng(0).normal(size=(3, 16))
    expected = 2.5 * op.apply(x)
    np.testing.assert_allclose((Scalar(2.5) @ op).apply(x), expected, rtol=1e-13)
    np.testing.assert_allclose((op @ Scalar(2.5)).apply(x), expected, rtol=1e-13)
