"""Structured operators of the forward processes against the dense peers a user would write.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=2 python -m pytest benchmarks/bench_structured.py --benchmark-enable``.
Groups: ``sagd-apply`` (``Sigma_w x`` for a batch of 32 x 32 images: opdiff's real-FFT ``FourierDiagonal``,
a complex ``fft2`` pipeline, and a precomputed dense ``1024 x 1024`` matrix) and ``linear-transition``
(``(Phi, Sigma)`` of MALDA at 2000 distinct times: ``StationaryLinearSDE.transition`` against a loop of
Van Loan block exponentials, the textbook route). Every entry is checked against its peer, so the file
also passes as a plain test with ``--benchmark-disable``.
"""
import numpy as np
import pytest
from scipy.linalg import expm

from opdiff.linalg import FourierDiagonal
from opdiff.linalg.fourier import power_law_weights
from opdiff.processes import StationaryLinearSDE

SIZE, BATCH, N_TIMES = 32, 512, 2000


@pytest.fixture(scope="module")
def images():
    op = FourierDiagonal.from_weights((1, SIZE, SIZE), power_law_weights(SIZE, SIZE, 0.5, eps_dc=0.02))
    x = np.random.default_rng(0).standard_normal((BATCH, SIZE * SIZE))
    return op, x, op.dense(SIZE * SIZE)


def complex_fft_apply(lam, x):
    """The pipeline of the SAGD appendix: fft2, multiply, ifft2, real part."""
    images = x.reshape(-1, SIZE, SIZE)
    return np.fft.ifft2(np.fft.fft2(images) * lam).real.reshape(x.shape)


@pytest.mark.benchmark(group="sagd-apply")
@pytest.mark.parametrize("route", ["opdiff rfft2", "complex fft2", "dense matmul"])
def test_sagd_apply(benchmark, images, route):
    op, x, dense = images
    function = {"opdiff rfft2": lambda: op.apply(x), "complex fft2": lambda: complex_fft_apply(op.eigenvalues, x),
                "dense matmul": lambda: x @ dense.T}[route]
    out = benchmark(function)
    np.testing.assert_allclose(out, x @ dense.T, atol=1e-10)


def van_loan_loop(process, taus):
    K = process.n_blocks
    Phis, Sigmas = [], []
    for tau in taus:
        block = np.zeros((2 * K, 2 * K))
        block[:K, :K] = tau * process.F0
        block[:K, K:] = tau * process.GGT0
        block[K:, K:] = -tau * process.F0.T
        E = expm(block)
        Phis.append(E[:K, :K])
        Sigmas.append(E[:K, K:] @ E[:K, :K].T)
    return np.stack(Phis), np.stack(Sigmas)


@pytest.mark.benchmark(group="linear-transition")
@pytest.mark.parametrize("route", ["opdiff (expm + stationary identity)", "Van Loan loop"])
def test_linear_transition(benchmark, route):
    process = StationaryLinearSDE.malda()
    t = np.random.default_rng(1).uniform(0.05, 1.0, size=N_TIMES)
    if route.startswith("opdiff"):
        Phi, Sigma = benchmark(lambda: process.transition_from_state(t))
        Phi, Sigma = Phi.block, Sigma.block
    else:
        Phi, Sigma = benchmark(lambda: van_loan_loop(process, process.integrated_beta(t)))
    ref_phi, ref_sigma = van_loan_loop(process, process.integrated_beta(t[:20]))
    np.testing.assert_allclose(Phi[:20], ref_phi, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Sigma[:20], ref_sigma, rtol=1e-7, atol=1e-10)
