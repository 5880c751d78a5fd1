"""pairwise_reduction against dense softmax sums; leave-one-out; chunk independence; errors."""
import numpy as np
import pytest
from scipy.special import logsumexp

from opdiff.backend import chunk_budget
from opdiff.reductions import pairwise_reduction


def _block(queries, points, rows):
    diff = queries[:, None, :] - points[None, :, :]
    log_k = -0.5 * np.sum(diff**2, axis=-1) / (1.0 + 0.01 * np.arange(points.shape[0]))[None, :]
    return log_k, np.concatenate([diff, np.sin(diff[..., :1])], axis=-1)  # (b, n, D + 1) per-pair coefficients


def _dense(x, y, log_w):
    log_k, coef = _block(x, y, slice(0, x.shape[0]))
    logits = log_k + log_w
    pi = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    return logsumexp(logits, axis=1), pi, coef


def test_modes_match_dense_sums_and_chunking():
    rng = np.random.default_rng(0)
    x, y, values = rng.normal(size=(300, 2)), rng.normal(size=(50, 2)), rng.normal(size=(50, 4))
    log_w = np.log(rng.uniform(0.1, 1, 50))
    log_sum, pi, coef = _dense(x, y, log_w)
    with chunk_budget(8192):  # many chunks
        coefficients = pairwise_reduction(x, y, _block, log_weights=log_w)
        both = pairwise_reduction(x, y, _block, values=values, log_weights=log_w)
        plain = pairwise_reduction(x, y, lambda q, p, r: (_block(q, p, r)[0], None), values=values, log_weights=log_w)
    np.testing.assert_allclose(coefficients.log_sum, log_sum, rtol=1e-13)
    np.testing.assert_allclose(coefficients.mean, np.einsum("mn,mnq->mq", pi, coef), atol=1e-13)
    np.testing.assert_allclose(both.mean, np.einsum("mn,mnq,np->mqp", pi, coef, values), atol=1e-13)
    np.testing.assert_allclose(plain.mean, pi @ values, atol=1e-13)


def test_leave_one_out_drops_the_diagonal():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(40, 2))
    loo = pairwise_reduction(y, y, _block, exclude_self=True)
    log_k, _ = _block(y, y, slice(0, 40))
    np.fill_diagonal(log_k, -np.inf)
    np.testing.assert_allclose(loo.log_sum, logsumexp(log_k, axis=1), rtol=1e-13)
    single = pairwise_reduction(y[:1], y[:1], _block, exclude_self=True)
    assert single.log_sum[0] == -np.inf and np.all(single.mean == 0)


def test_errors_name_the_problem():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="exclude_self"):
        pairwise_reduction(x, np.zeros((4, 2)), _block, exclude_self=True)
    with pytest.raises(ValueError, match="block: expected a log-kernel block"):
        pairwise_reduction(x, x, lambda q, p, r: (np.zeros((1, 1)), None))
    with pytest.raises(ValueError, match="NaN"):
        pairwise_reduction(x, x, lambda q, p, r: (np.full((q.shape[0], 3), np.nan), None))
    with pytest.raises(ValueError, match="coefficients"):
        pairwise_reduction(x, x, lambda q, p, r: (np.zeros((q.shape[0], 3)), np.zeros((q.shape[0], 2, 1))))
    with pytest.raises(ValueError, match="non-finite coefficients"):
        pairwise_reduction(x, x, lambda q, p, r: (np.zeros((q.shape[0], 3)), np.full((q.shape[0], 3, 1), np.inf)))
