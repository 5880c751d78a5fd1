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


# ---------------------------------------------------------------------------------------------- stochastic
def plain_euler_ancestral(x, sigmas, rng):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        den = mixture_denoiser(x, s)
        up = min(s_next, np.sqrt(s_next**2 * (s**2 - s_next**2) / s**2))
        down = np.sqrt(s_next**2 - up**2)
        x = x + (down - s) * (x - den) / s
        if s_next > 0:
            x = x + up * rng.standard_normal(x.shape)
    return x


def plain_dpm_solver_pp_2m_sde(x, sigmas, rng):
    old = h_last = None
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        den = mixture_denoiser(x, s)
        if s_next == 0:
            x = den
        else:
            h = np.log(s / s_next)
            x = s_next / s * np.exp(-h) * x - np.expm1(-2 * h) * den
            if old is not None:
                x = x - 0.5 * np.expm1(-2 * h) * (h / h_last) * (den - old)
            x = x + s_next * np.sqrt(-np.expm1(-2 * h)) * rng.standard_normal(x.shape)
            h_last = h
        old = den
    return x


def plain_edm_stochastic(x, sigmas, rng, s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003):
    n = len(sigmas) - 1
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        gamma = min(s_churn / n, np.sqrt(2) - 1) if s_tmin <= s <= s_tmax else 0.0
        s_hat = s * (1 + gamma)
        if gamma > 0:
            x = x + s_noise * np.sqrt(s_hat**2 - s**2) * rng.standard_normal(x.shape)
        d = (x - mixture_denoiser(x, s_hat)) / s_hat
        x_next = x + (s_next - s_hat) * d
        if s_next > 0:
            x_next = x + (s_next - s_hat) * (d + (x_next - mixture_denoiser(x_next, s_next)) / s_next) / 2
        x = x_next
    return x


STOCHASTIC = {
    "euler_ancestral": (S.sample_euler_ancestral, plain_euler_ancestral),
    "dpm_solver_pp_2m_sde": (S.sample_dpm_solver_pp_2m_sde, plain_dpm_solver_pp_2m_sde),
    "edm_stochastic": (S.sample_edm_stochastic, plain_edm_stochastic),
}


@pytest.mark.parametrize("implementation", ["opdiff", "numpy"])
@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_stochastic_steps_per_second(benchmark, name, implementation):
    sigmas = S.edm_sigmas(N_STEPS, 0.01, 20.0)
    x0 = 20.0 * np.random.default_rng(0).standard_normal((N_POINTS, 2))
    library, plain = STOCHASTIC[name]
    if implementation == "opdiff":
        run = lambda: library(mixture_denoiser, x0, sigmas, rng=np.random.default_rng(1)).x  # noqa: E731
    else:
        run = lambda: plain(x0, sigmas, np.random.default_rng(1))  # noqa: E731
    benchmark.group = name
    out = benchmark(run)
    other = plain(x0, sigmas, np.random.default_rng(1)) if implementation == "opdiff" else \
        library(mixture_denoiser, x0, sigmas, rng=np.random.default_rng(1)).x
    np.testing.assert_allclose(out, other, rtol=1e-9, atol=1e-9)  # same draws, same order


# ------------------------------------------------------------------------ per-step overhead and recording
CHEAP_SHAPE, CHEAP_STEPS = (512, 64), 500


def cheap_denoiser(x, sigma):
    """Exact posterior mean for N(0, I) data: the cheapest denoiser there is (one multiply)."""
    return x * (1.0 / (1.0 + sigma * sigma))


def plain_cheap_euler(x, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (s_next - s) * (x - cheap_denoiser(x, s)) / s
    return x


def plain_cheap_euler_path(x, sigmas):
    """The same loop keeping the sampling and denoising paths in lists, stacked at the end."""
    path, denoised = [x], []
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = cheap_denoiser(x, s)
        x = x + (s_next - s) * (x - d) / s
        path.append(x)
        denoised.append(d)
    return np.stack(path), np.stack(denoised)


@pytest.mark.parametrize("implementation", ["numpy", "opdiff", "opdiff record=True"])
def test_cheap_denoiser_overhead(benchmark, implementation):
    """500 Euler steps on a (512, 64) batch with a one-multiply denoiser: the solver's own per-step cost."""
    sigmas = S.edm_sigmas(CHEAP_STEPS, 0.01, 10.0)
    x0 = np.random.default_rng(2).standard_normal(CHEAP_SHAPE)
    if implementation == "numpy":
        run = lambda: plain_cheap_euler(x0, sigmas)  # noqa: E731
    else:
        record = implementation.endswith("record=True")
        run = lambda: S.sample_euler(cheap_denoiser, x0, sigmas, record=record).x  # noqa: E731
    benchmark.group = "cheap denoiser, 500 Euler steps"
    out = benchmark(run)
    np.testing.assert_allclose(out, plain_cheap_euler(x0, sigmas), rtol=1e-12, atol=1e-12)


def test_peak_memory_of_500_euler_steps():
    """Peak traced allocations of 500 Euler steps on a (512, 64) float64 batch, in batches (printed with -s)."""
    import tracemalloc

    sigmas = S.edm_sigmas(CHEAP_STEPS, 0.01, 10.0)
    x0 = np.random.default_rng(3).standard_normal(CHEAP_SHAPE)
    peaks = {}
    for label, call in (("numpy loop", lambda: plain_cheap_euler(x0, sigmas)),
                        ("opdiff", lambda: S.sample_euler(cheap_denoiser, x0, sigmas)),
                        ("opdiff record=True", lambda: S.sample_euler(cheap_denoiser, x0, sigmas, record=True))):
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = call()
        peaks[label] = (tracemalloc.get_traced_memory()[1] - base) / x0.nbytes
        tracemalloc.stop()
        del result
    print("peak memory in batches of 256 KiB:", {k: round(v, 2) for k, v in peaks.items()})
    assert peaks["opdiff"] < 10


def test_cheap_denoiser_interleaved_ratio():
    """opdiff / plain-loop time of 500 cheap Euler steps, the two timed alternately 15 times so that a
    shared machine's changing load hits both alike; the median ratio is printed (run with -s)."""
    import time

    sigmas = S.edm_sigmas(CHEAP_STEPS, 0.01, 10.0)
    x0 = np.random.default_rng(4).standard_normal(CHEAP_SHAPE)
    calls = {"numpy loop": lambda: plain_cheap_euler(x0, sigmas),
             "opdiff": lambda: S.sample_euler(cheap_denoiser, x0, sigmas),
             "opdiff record=True": lambda: S.sample_euler(cheap_denoiser, x0, sigmas, record=True),
             "numpy loop keeping the paths": lambda: plain_cheap_euler_path(x0, sigmas)}
    times = {label: [] for label in calls}
    for _ in range(15):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    plain = np.array(times["numpy loop"])
    for label in ("opdiff", "opdiff record=True", "numpy loop keeping the paths"):
        ratio = np.array(times[label]) / plain
        print(f"{label} / numpy loop: median {np.median(ratio):.2f} (quartiles {np.quantile(ratio, 0.25):.2f}-"
              f"{np.quantile(ratio, 0.75):.2f}); numpy loop median {np.median(plain) * 1e3:.0f} ms")


def _interleaved(calls, repeats):
    """Median over ``repeats`` alternations of each call's time divided by the first call's."""
    import time

    times = {label: [] for label in calls}
    for _ in range(repeats):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    first = np.array(next(iter(times.values())))
    return {label: float(np.median(np.array(values) / first)) for label, values in times.items()}, first


def test_every_solver_interleaved_ratio():
    """opdiff / plain-loop time of every solver of the tables above (mixture denoiser, 2048 points,
    32 steps), alternated 11 times in one run; printed with -s."""
    x0 = 20.0 * np.random.default_rng(0).standard_normal((N_POINTS, 2))
    ode_sigmas, sde_sigmas = S.polynomial_grid(N_STEPS, 0.01, 20.0), S.edm_sigmas(N_STEPS, 0.01, 20.0)
    for name, (library, plain) in {**CASES, **STOCHASTIC}.items():
        if name in STOCHASTIC:
            calls = {"numpy": lambda: plain(x0, sde_sigmas, np.random.default_rng(1)),
                     "opdiff": lambda: library(mixture_denoiser, x0, sde_sigmas, rng=np.random.default_rng(1))}
        else:
            calls = {"numpy": lambda: plain(x0, ode_sigmas), "opdiff": lambda: library(mixture_denoiser, x0, ode_sigmas)}
        ratios, plain_times = _interleaved(calls, 11)
        print(f"{name}: opdiff / numpy {ratios['opdiff']:.2f}; numpy loop {N_STEPS / np.median(plain_times):.0f} steps/s")
