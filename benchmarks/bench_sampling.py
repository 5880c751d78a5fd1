"""Steps per second of each opdiff ODE solver against a plain NumPy loop of the same method.

``python -m pytest benchmarks/bench_sampling.py --benchmark-enable`` (pytest-benchmark). The plain loops
are the textbook updates without validation, NFE counting or trajectory recording; both sides call the
same closed-form mixture denoiser, so the ratio measures opdiff's per-step overhead. With
``--benchmark-disable`` every case still runs once and checks that both sides agree.
"""
import numpy as np
import pytest

import opdiff.sampling as S

N_POINTS, N_STEPS = 2048, 32


def mixture_denoiser(x, sigma, means=np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]]), var=0.25):
    """Closed-form posterior mean of an equal-weight isotropic mixture under VE noise ``sigma``."""
    logits = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1) / (var + sigma**2)
    logits -= logits.max(1, keepdims=True)
    post = np.exp(logits)
    post /= post.sum(1, keepdims=True)
    gain = var / (var + sigma**2)
    return post @ means + gain * (x - post @ means)


def plain_euler(x, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (s_next - s) * (x - mixture_denoiser(x, s)) / s
    return x


def plain_heun(x, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - mixture_denoiser(x, s)) / s
        x_pred = x + (s_next - s) * d
        d_next = (x_pred - mixture_denoiser(x_pred, s_next)) / s_next
        x = x + (s_next - s) * (d + d_next) / 2
    return x


def plain_dpm_solver_2(x, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        s_mid = np.sqrt(s * s_next)
        d = (x - mixture_denoiser(x, s)) / s
        x_mid = x + (s_mid - s) * d
        x = x + (s_next - s) * (x_mid - mixture_denoiser(x_mid, s_mid)) / s_mid
    return x


def plain_dpm_solver_pp_2m(x, sigmas):
    old = None
    for i, (s, s_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        den = mixture_denoiser(x, s)
        h = np.log(s / s_next)
        if old is None:
            data = den
        else:
            r = np.log(sigmas[i - 1] / s) / h
            data = (1 + 1 / (2 * r)) * den - old / (2 * r)
        x = (s_next / s) * x - np.expm1(-h) * data
        old = den
    return x


def plain_ipndm(x, sigmas):
    coefficients = [[1], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]]
    history = []
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        history = [(x - mixture_denoiser(x, s)) / s] + history[:3]
        c = coefficients[len(history) - 1]
        x = x + (s_next - s) * sum(ci * di for ci, di in zip(c, history))
    return x


CASES = {
    "euler": (S.sample_euler, plain_euler),
    "heun": (S.sample_heun, plain_heun),
    "dpm_solver_2": (S.sample_dpm_solver_2, plain_dpm_solver_2),
    "dpm_solver_pp_2m": (S.sample_dpm_solver_pp_2m, plain_dpm_solver_pp_2m),
    "ipndm": (S.sample_ipndm, plain_ipndm),
}


@pytest.fixture(scope="module")
def inputs():
    sigmas = S.polynomial_grid(N_STEPS, 0.01, 20.0)
    return 20.0 * np.random.default_rng(0).standard_normal((N_POINTS, 2)), sigmas


@pytest.mark.parametrize("implementation", ["opdiff", "numpy"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_solver_steps_per_second(benchmark, inputs, name, implementation):
    x0, sigmas = inputs
    library, plain = CASES[name]
    if implementation == "opdiff":
        run = lambda: library(mixture_denoiser, x0, sigmas).x  # noqa: E731
    else:
        run = lambda: plain(x0, sigmas)  # noqa: E731
    benchmark.group = name
    benchmark.extra_info["steps"] = N_STEPS
    benchmark.extra_info["points"] = N_POINTS
    out = benchmark(run)
    reference = plain(x0, sigmas) if implementation == "opdiff" else library(mixture_denoiser, x0, sigmas).x
    np.testing.assert_allclose(out, reference, rtol=1e-10, atol=1e-10)
