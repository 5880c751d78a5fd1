"""The sampler contract: final samples only by default, opt-in recording, k-diffusion callbacks, short repr,
and memory that does not grow with the number of steps."""
import tracemalloc

import numpy as np
import pytest

import opdiff.sampling as S
from opdiff.processes import VPSDE


def _ve_runs(mixture, x0, sigmas, **kwargs):
    """Every VE-form solver (and ODE jump) on the same inputs."""
    runs = {name: solver(mixture, x0, sigmas, rng=0, **kwargs) for name, solver in S.SOLVERS.items()}
    runs["ode_jump"] = S.sample_ode_jump(mixture, x0, sigmas, jump_step=3, **kwargs)
    return runs


def test_default_keeps_only_the_final_samples(mixture):
    x0 = 5.0 * np.random.default_rng(0).standard_normal((7, 2))
    sigmas = S.edm_sigmas(6, 0.05, 5.0)
    plain, recorded = _ve_runs(mixture, x0, sigmas), _ve_runs(mixture, x0, sigmas, record=True)
    for name, run in plain.items():
        assert run.recorded == {} and run.x.shape == (7, 2), name
        for attribute in ("samples", "denoised", "noise"):
            with pytest.raises(ValueError, match="record=True"):
                getattr(run, attribute)
        full = recorded[name]
        # recording changes nothing but what is kept
        np.testing.assert_array_equal(full.x, run.x)
        assert full.nfe == run.nfe and full.n_steps == run.n_steps == len(run.sigmas) - 1, name
        np.testing.assert_array_equal(full.samples[-1], run.x)
        np.testing.assert_array_equal(full.samples[0], x0)
        assert full.samples.shape == (full.n_steps + 1, 7, 2) and full.denoised.shape == (full.n_steps, 7, 2), name
    only = S.sample_heun(mixture, x0, sigmas, record="denoised")
    assert set(only.recorded) == {"denoised"}
    np.testing.assert_array_equal(only.denoised, recorded["heun"].denoised)


def test_callback_sees_every_step_with_k_diffusion_keys(mixture):
    x0 = 5.0 * np.random.default_rng(1).standard_normal((4, 2))
    sigmas = S.edm_sigmas(5, 0.05, 5.0)
    for name, solver in S.SOLVERS.items():
        seen = []
        run = solver(mixture, x0, sigmas, rng=2, callback=seen.append, record=True)
        assert [info["i"] for info in seen] == list(range(5)), name
        for i, info in enumerate(seen):
            assert {"x", "i", "sigma", "sigma_hat", "denoised"} <= set(info), name
            assert info["sigma"] == sigmas[i] and info["sigma_hat"] >= info["sigma"]
            np.testing.assert_array_equal(info["denoised"], run.denoised[i])
            np.testing.assert_array_equal(info["x_next"], run.samples[i + 1])
            # x is the point the denoiser saw at sigma_hat (EDM churn and the Langevin corrector move it)
            np.testing.assert_allclose(info["denoised"], mixture(info["x"], info["sigma_hat"]), rtol=1e-14)
            if name not in ("edm_stochastic", "predictor_corrector"):
                np.testing.assert_array_equal(info["x"], run.samples[i])


def test_repr_is_short_and_names_shapes(mixture):
    x0 = np.random.default_rng(2).standard_normal((512, 3))
    run = S.sample_euler(lambda x, s: 0.5 * x, x0, S.edm_sigmas(50, 0.05, 5.0), record=True)
    text = repr(run)
    assert len(text) < 200 and "\n" not in text and "[" not in text  # shapes, never array values
    assert "euler" in text and "nfe=50" in text and "(512, 3)" in text and "(51, 512, 3)" in text
    assert repr(S.sample_euler(mixture, x0[:, :2], [1.0, 0.5])) == \
        "Trajectory(method='euler', n_steps=1, nfe=1, x=(512, 2) float64)"


def test_record_choices_are_validated(mixture):
    x0 = np.ones((3, 2))
    with pytest.raises(ValueError, match="record"):
        S.sample_euler(mixture, x0, [1.0, 0.5], record="trajectory")
    with pytest.raises(TypeError, match="record"):
        S.sample_euler(mixture, x0, [1.0, 0.5], record=3)
    process = VPSDE()
    from opdiff.manifolds import FlatTorus
    from opdiff.processes import ManifoldBrownianMotion
    torus = ManifoldBrownianMotion(FlatTorus(1))
    with pytest.raises(ValueError, match="record: this sampler has no denoised"):
        S.sample_manifold_reverse_sde(lambda y, t: 0 * y, np.zeros((3, 1)), [1.0, 0.5], process=torus,
                                      record="denoised")
    run = S.sample_manifold_reverse_sde(lambda y, t: 0 * y, np.zeros((3, 1)), [1.0, 0.5], process=torus, record=True)
    assert set(run.recorded) == {"samples"}
    # process-form runs compute Tweedie's denoised output only when recorded or seen by a callback
    calls = []

    class Counting(VPSDE):
        def transition(self, t, s=0.0):
            calls.append(t)
            return super().transition(t, s)

    counting = Counting()
    plain = S.sample_probability_flow(lambda x, t: -x, x0, [0.5, 0.2, 0.1], process=counting, method="euler")
    assert calls == [] and plain.recorded == {}
    full = S.sample_probability_flow(lambda x, t: -x, x0, [0.5, 0.2, 0.1], process=counting, method="euler",
                                     record=True)
    Phi, Sigma = process.transition(0.5)
    np.testing.assert_allclose(full.denoised[0], Phi.solve(x0 + Sigma.apply(-x0)), rtol=1e-12)
    np.testing.assert_array_equal(full.x, plain.x)


def test_memory_does_not_grow_with_the_number_of_steps():
    """500 Euler steps on a (512, 64) float64 batch (256 KiB): the peak of traced allocations stays under
    10 batches. A step holds the point, the denoiser output and the update's temporaries (about five
    batches); a run that kept its trajectory would need 500 batches (128 MiB)."""
    x0 = np.random.default_rng(3).standard_normal((512, 64))
    denoiser = lambda x, sigma: x / (1.0 + sigma * sigma)  # noqa: E731  (exact for N(0, I) data)
    sigmas = S.edm_sigmas(500, 0.01, 10.0)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = S.sample_euler(denoiser, x0, sigmas)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert out.x.shape == (512, 64) and out.nfe == 500
    print(f"peak {peak / x0.nbytes:.2f} batches")
    assert peak < 10 * x0.nbytes
