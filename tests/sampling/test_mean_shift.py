"""Sampling with the exact empirical score (the DKS) is annealed mean shift (notes B.4).

- A full mean-shift step ``x -> D(x, sigma)`` and every partial (Euler) step never lower the smoothed
  log-density ``log rho_sigma`` at that bandwidth: convexity of the Gaussian profile gives
  ``rho(x') - rho(x) >= c (2 lambda - lambda^2) |m(x) - x|^2 >= 0``. The smoothed log-density is the
  DKS's own ``log_density`` (a different code path from the denoiser's weighted mean).
- Sampling to ``sigma -> 0`` returns training points (memorisation).
Floating-point slack: increments are compared with -1e-10 (|log rho| < 1e2, so ~1e4 ulps).
"""
import numpy as np
import pytest

import opdiff.sampling as S
from opdiff.datasets import make_toy
from opdiff.estimators.kernel_smoother import DiffusionKernelSmoother
from opdiff.processes import VESDE, VPSDE

SLACK = -1e-10


@pytest.fixture(scope="module")
def training():
    return make_toy("eight_gaussians", 64, rng=0)


@pytest.mark.parametrize("process", [VESDE.edm(), VPSDE()], ids=["ve_edm", "vp"])
def test_mean_shift_steps_never_lower_the_smoothed_density(training, process):
    ve = S.VEDenoiser(process, DiffusionKernelSmoother(process).fit(training))
    rng = np.random.default_rng(1)
    sigma_max = min(20.0, ve.sigma_max)
    sigmas = S.polynomial_grid(18, 0.02, sigma_max)
    starts = sigma_max * rng.standard_normal((500, 2))
    trajectory = S.sample_euler(ve, starts, sigmas, record=True)
    increments = S.mean_shift_increments(ve.log_density, trajectory)
    assert increments.shape == (18, 500)
    violations = int(np.sum(increments < SLACK))
    print(f"{type(process).__name__}: Euler-step violations {violations} / {increments.size}, "
          f"min increment {increments.min():.2e}")
    assert violations == 0
    # full mean-shift steps at fixed bandwidth, from random points at every level
    full = 0
    for sigma in sigmas[:-1]:
        x = training[rng.integers(0, 64, 200)] + sigma * rng.standard_normal((200, 2))
        gain = ve.log_density(ve(x, sigma), sigma) - ve.log_density(x, sigma)
        full += int(np.sum(gain < SLACK))
    assert full == 0
    # the property is not vacuous: moving away from the mean-shift target lowers the density
    x = training[:50] + 0.5 * rng.standard_normal((50, 2))
    backwards = 2 * x - ve(x, 0.5)
    assert np.mean(ve.log_density(backwards, 0.5) < ve.log_density(x, 0.5)) > 0.9


@pytest.mark.parametrize("solver", [S.sample_euler, S.sample_heun, S.sample_dpm_solver_pp_2m])
def test_sampling_to_zero_returns_training_points(training, solver):
    process = VESDE.edm()
    ve = S.VEDenoiser(process, DiffusionKernelSmoother(process).fit(training))
    rng = np.random.default_rng(2)
    sigmas = S.edm_sigmas(20, sigma_min=0.002, sigma_max=20.0)
    out = solver(ve, 20.0 * rng.standard_normal((100, 2)), sigmas).x
    nearest = S.nearest_neighbour(out, training)
    pairwise = np.linalg.norm(training[:, None] - training[None], axis=-1) + np.diag(np.full(64, np.inf))
    spacing = np.median(pairwise.min(axis=1))
    print(f"{solver.__name__}: distance to the training set: median {np.median(nearest.distance):.2e}, "
          f"max {nearest.distance.max():.2e}; median training spacing {spacing:.2e}")
    # at sigma_min = 0.002 the softmax weights are one-hot up to exp(-spacing^2 / 2 sigma^2) ~ 0, so
    # the last jump returns a training point to round-off; only a pair of training points closer than
    # a few sigma_min can share the weight, which leaves the output within sigma_min sqrt(d) of one
    assert np.median(nearest.distance) < 1e-12 and nearest.distance.max() < 0.002 * np.sqrt(2)
    assert spacing > 10 * 0.002 * np.sqrt(2)
    assert len(np.unique(nearest.index)) > 10  # many different training points, not one mode
