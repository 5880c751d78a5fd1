"""Samplers of the structured processes: SAGD's DDIM (arXiv 2510.09660) and GFDM's augmented reverse
dynamics (arXiv 2310.17638), both through opdiff.sampling."""
import math
import warnings

import numpy as np
import pytest

import opdiff.sampling as S
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.processes import FractionalDiffusion, SpectralAnisotropic

SHAPE = (1, 4, 4)
DATA_1D = np.array([[-1.0], [0.2], [1.5]])


@pytest.fixture(scope="module")
def sagd():
    process = SpectralAnisotropic.power_law(SHAPE, 0.7, eps_dc=0.1)
    X = np.random.default_rng(0).standard_normal((20, 16))
    return process, DiffusionKernelSmoother(process).fit(X).score


def test_ddim_three_steps_by_hand(sagd):
    """DDIM (Song et al. 2021, eq. 12) with eta: x0 = x / a + s^2 a C score, eps = (x / a - x0) / s,
    sigma_eta = eta s' sqrt(1 - (s'/s)^2), x' = a' (x0 + sqrt(s'^2 - sigma_eta^2) eps + sigma_eta C^(1/2) z);
    the last time returns x0."""
    process, score = sagd
    times, eta = np.array([1.0, 0.6, 0.3]), 0.6
    x = process.prior().sample(5, 16, rng=np.random.default_rng(1))
    out = S.sample_ddim(score, x, times, process=process, eta=eta, rng=2)
    noise, root = np.random.default_rng(2), process.covariance.cholesky()
    z = x
    for k, t in enumerate(times):
        a, s = float(process.schedule.scale(t)), float(process.schedule.noise_level(t))
        x0 = z / a + s**2 * a * process.covariance.apply(score(z, t))
        if k + 1 == len(times):
            break
        eps = (z / a - x0) / s
        a_next, s_next = float(process.schedule.scale(times[k + 1])), float(process.schedule.noise_level(times[k + 1]))
        sig = eta * s_next * math.sqrt(1 - (s_next / s) ** 2)
        z = a_next * (x0 + math.sqrt(s_next**2 - sig**2) * eps + sig * root.apply(noise.standard_normal(z.shape)))
    np.testing.assert_allclose(out.x, x0, rtol=1e-10, atol=1e-10)
    assert out.nfe == 3 and out.method == "ddim" and out.times[-1] == 0.0 and out.sigmas[-1] == 0.0
    # the process method is the same sampler from its prior
    rng = np.random.default_rng(3)
    direct = process.sample_ddim(score, 5, steps=4, eta=eta, rng=3)
    start = process.prior().sample(5, 16, rng=rng)
    np.testing.assert_array_equal(direct, S.sample_ddim(score, start, np.linspace(1.0, 1e-3, 4), process=process,
                                                        eta=eta, rng=rng).x)


def test_structured_samplers_reject_nan_scores(sagd):
    process, _ = sagd
    nan_score = lambda z, t: z * np.nan  # noqa: E731
    with pytest.raises(ValueError, match="score"):
        process.sample_ddim(nan_score, 2, steps=3)
    with pytest.raises(ValueError, match="score"):
        S.sample_ddim(nan_score, np.ones((2, 16)), [1.0, 0.5], process=process, eta=1.0)
    fractional = FractionalDiffusion(0.7, 2)
    for mode in ("sde", "ode"):
        with pytest.raises(ValueError, match="score"):
            fractional.reverse_sample(nan_score, 2, 1, steps=3, mode=mode)
    with pytest.raises(TypeError, match="process"):
        S.sample_ddim(nan_score, np.ones((2, 2)), [1.0, 0.5], process=FractionalDiffusion(0.7, 0))
    with pytest.raises(ValueError, match="eta"):
        S.sample_ddim(nan_score, np.ones((2, 16)), [1.0, 0.5], process=process, eta=1.5)
    with pytest.raises(ValueError, match="times"):
        S.sample_ddim(nan_score, np.ones((2, 16)), [0.5, 1.0], process=process)
    with pytest.raises(ValueError, match="t_end"):
        fractional.reverse_sample(nan_score, 2, 1, t_end=2.0)


def test_fractional_sde_step_shares_one_noise_across_the_augmented_state():
    """GFDM's reverse Euler-Maruyama (notes of arXiv 2310.17638, official AugmentedEulerMaruyama):
    z <- z - [F z - G G^T s] dt + G sqrt(dt) xi with one scalar xi per coordinate for all K+1 blocks."""
    process = FractionalDiffusion(0.8, 2)
    score = DiffusionKernelSmoother(process).fit(DATA_1D).score
    z0 = process.prior().sample(6, 3, rng=np.random.default_rng(4))
    times = [1.0, 0.9, 0.8]
    out = S.sample_reverse_sde(score, z0, times, process=process, rng=5).x
    noise = np.random.default_rng(5)
    z = z0.reshape(6, 3, 1)
    for k in range(2):
        t, dt = times[k], times[k] - times[k + 1]
        G, F = process.noise_vector(t), process.drift_matrix(t)
        s = score(z.reshape(6, 3), t).reshape(6, 3, 1)
        xi = noise.standard_normal((6, 3, 1))[:, :1]  # the first block's draws drive every component
        drift = np.einsum("ij,njd->nid", F, z) - G[None, :, None] * np.einsum("k,nkd->nd", G, s)[:, None]
        z = z - dt * drift + (np.sqrt(dt) * G[None, :, None] * xi if k == 0 else 0.0)
    np.testing.assert_allclose(out, z.reshape(6, 3), rtol=1e-12, atol=1e-12)


def test_fractional_sampling_with_default_settings_stays_in_the_data_range():
    """Default settings (pd_eps = 1e-4, 500 steps): the exact empirical score pulls every sample to within
    0.25 of the data range [-1, 1.5] (measured: 0.007 beyond it; with pd_eps = 0 the same run reaches 1e9)."""
    process = FractionalDiffusion(0.9, 2)
    score = DiffusionKernelSmoother(process).fit(DATA_1D).score
    with warnings.catch_warnings():
        warnings.simplefilter("error", S.StiffGridWarning)
        for mode in ("sde", "ode"):
            out = process.reverse_sample(score, 100, 1, mode=mode, rng=6)
            assert out.min() > -1.25 and out.max() < 1.75, mode


@pytest.mark.parametrize("hurst,n_processes", [(0.1, 5), (0.5, 1), (0.9, 3)])
def test_fractional_sampling_stays_bounded_across_settings(hurst, n_processes):
    """Fewer steps (100) and other (H, K): within 2 data ranges (5) of the data (measured: at most 1.5 beyond
    it, for H = 0.1, K = 5 whose fastest OU speed is stiffest; 0.3 for K <= 3) and no stiffness warning at
    the default pd_eps."""
    process = FractionalDiffusion(hurst, n_processes)
    score = DiffusionKernelSmoother(process).fit(DATA_1D).score
    with warnings.catch_warnings():
        warnings.simplefilter("error", S.StiffGridWarning)
        out = process.reverse_sample(score, 100, 1, steps=100, rng=7)
    assert np.all(np.abs(out - 0.25) < 1.25 + 2 * 2.5)


def test_unregularised_fractional_grid_is_reported_as_stiff():
    """pd_eps = 0 (the exact law): Sigma_yy -> 0 as t -> 0 and explicit steps diverge; warned up front."""
    process = FractionalDiffusion(0.9, 2, pd_eps=0.0)
    score = DiffusionKernelSmoother(process).fit(DATA_1D).score
    times = np.append(np.linspace(1.0, 1e-3, 100), 0.0)
    assert process.reverse_euler_growth(times, 1.0) > S.process_form.GROWTH_WARNING
    assert FractionalDiffusion(0.9, 2).reverse_euler_growth(np.append(np.linspace(1.0, 1e-3, 500), 0.0)) < 2.0
    with pytest.warns(S.StiffGridWarning, match="times"):
        with np.errstate(all="ignore"):
            try:
                process.reverse_sample(score, 20, 1, steps=100, rng=8)
            except ValueError:  # the divergence may also reach a non-finite score, which is refused
                pass


def test_ddim_of_a_scalar_process_is_euler_ancestral_in_the_ve_form():
    """VP (C = I): sample_ddim on process times equals VEDenoiser + sample_euler_ancestral on the VE grid
    (which maps levels back to times by inverting s(t) numerically: agreement to 1e-9, the inversion's
    tolerance), and with eta = 0 the Euler ODE solver (DDIM = Euler in the VE form)."""
    from opdiff.datasets import GaussianMixture
    from opdiff.processes import VPSDE

    process = VPSDE()
    mixture = GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 1.0]], np.array([0.5, 0.4]) ** 2)
    score = lambda x, t: mixture.score(x, t, process)  # noqa: E731
    times = np.linspace(1.0, 1e-2, 12)
    x = process.prior().sample(8, 2, rng=np.random.default_rng(9))
    ve = S.VEDenoiser(process, score)
    for eta, solver in ((0.0, S.sample_euler), (0.7, S.sample_euler_ancestral)):
        options = {"eta": eta} if eta else {}
        ours = S.sample_ddim(score, x, times, process=process, eta=eta, rng=10).x
        reference = ve.sample(solver, x, times, append_zero=True, rng=10, **options).x
        np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-9)
