"""OISM against DKS as the data set grows: fit + score time of the spectral estimator against the score
time of the diffusion kernel smoother, on the same data and queries.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_oism.py --benchmark-enable``.
Groups ``oism-vs-dks-n<N>``: ``OISM fit + score`` (sample means of the eigenfunctions over the n data
points, the grid solves, then the score at m queries: ``O(n M + n_grid B^3 + m B)``) against ``DKS score``
(``O(m n)`` kernel pairs, numpy and numba backends). OU process, ``two_spirals`` (scaled to unit
variance), tensor Hermite basis of total degree 8 (44 functions), m = 2000 queries at t = 0.5. Each
entry also checks that the OISM score is close to the DKS score (the exact score of the smoothed
empirical law), so the file passes as a plain test with ``--benchmark-disable``.
"""
import warnings

import numpy as np
import pytest

from opdiff.datasets import make_toy
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.estimators.oism import OISM, IllConditionedWarning
from opdiff.processes import OrnsteinUhlenbeck
from opdiff.spectral import Hermite

SIZES = (1000, 4000, 16000, 64000)
N_QUERIES, DEGREE, T = 2000, 8, 0.5
PROCESS = OrnsteinUhlenbeck(1.0, T=8.0)


def data(n):
    X = make_toy("two_spirals", n, rng=0)
    return X / X.std()


@pytest.fixture(scope="module")
def queries():
    return PROCESS.sample(data(N_QUERIES), T, rng=1)


def oism_fit_and_score(X, queries):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        oism = OISM(PROCESS, Hermite(2, DEGREE), n_grid=32).fit(X)
    return oism.score(queries, T)


def relative_error(a, b):
    return float(np.mean(np.sum((a - b) ** 2, 1)) / np.mean(np.sum(b**2, 1)))


@pytest.mark.parametrize("n", SIZES)
def test_oism_fit_and_score(benchmark, queries, n):
    benchmark.group = f"oism-vs-dks-n{n}"
    X = data(n)
    score = benchmark(oism_fit_and_score, X, queries)
    reference = DiffusionKernelSmoother(PROCESS).fit(X).score(queries[:200], T)
    # the degree-8 spectral score approximates the smoothed empirical score to a few per cent at t = 0.5
    assert relative_error(score[:200], reference) < 0.05
    benchmark.extra_info["n"] = n


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("n", SIZES)
def test_dks_score(benchmark, queries, n, backend):
    benchmark.group = f"oism-vs-dks-n{n}"
    dks = DiffusionKernelSmoother(PROCESS, backend=backend).fit(data(n))
    score = benchmark(dks.score, queries, T)
    assert np.all(np.isfinite(score))
    benchmark.extra_info["n"] = n


@pytest.mark.parametrize("n", SIZES)
def test_oism_score_only(benchmark, queries, n):
    """Score of an already fitted OISM: a sum over basis functions, independent of n."""
    benchmark.group = f"oism-vs-dks-n{n}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        oism = OISM(PROCESS, Hermite(2, DEGREE), n_grid=32).fit(data(n))
    score = benchmark(oism.score, queries, T)
    assert np.all(np.isfinite(score))
    benchmark.extra_info["n"] = n
