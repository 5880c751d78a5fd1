"""SpectralAnisotropic (SAGD): transitions, score vs finite differences, Monte Carlo, DDIM with the DKS
on digits (selective omission), validation."""
import numpy as np
import pytest

from opdiff.datasets import load_digits_images
from opdiff.estimators.kernel_smoother import DiffusionKernelSmoother
from opdiff.linalg import FourierDiagonal
from opdiff.processes import VESDE, VPSDE
from opdiff.processes.spectral_anisotropic import SpectralAnisotropic

SHAPE = (1, 8, 8)


def test_transition_is_vp_scalars_times_sigma_w():
    process = SpectralAnisotropic.power_law(SHAPE, -0.3, eps_dc=0.02)
    t = np.array([0.1, 0.6])
    Phi, Sigma = process.transition(t)
    abar = np.exp(VPSDE().log_alpha_bar(t))
    np.testing.assert_allclose(Phi.c, np.sqrt(abar), rtol=1e-14)
    dense_w = process.covariance.dense(64)
    for i in range(2):
        np.testing.assert_allclose(Sigma.dense(64)[i], (1 - abar[i]) * dense_w, rtol=1e-12, atol=1e-14)
    # alpha = 0 is plain DDPM: Sigma_w = I
    white = SpectralAnisotropic.power_law(SHAPE, 0.0)
    np.testing.assert_allclose(white.covariance.dense(64), np.eye(64), atol=1e-14)
    # s -> t composition: Sigma(t,0) = Phi(t,s)^2 Sigma(s,0) + Sigma(t,s)
    P_ts, S_ts = process.transition(0.7, 0.3)
    _, S_s = process.transition(0.3)
    _, S_t = process.transition(0.7)
    np.testing.assert_allclose(P_ts.c**2 * S_s.scale + S_ts.scale, S_t.scale, rtol=1e-12)


@pytest.mark.parametrize("omit", [False, True])
def test_score_relation_against_finite_differences(omit):
    if omit:
        process = SpectralAnisotropic.two_band(SHAPE, 0.5, (0.0, 0.2), 0.8, (0.35, 1.0))
    else:
        process = SpectralAnisotropic.power_law(SHAPE, 0.4, eps_dc=0.05)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 64))
    t = 0.3
    xt = process.sample(x0, t, rng=rng)
    score = process.transition_score(xt, x0, t)
    # Eq. 23: -(1/sigma_t^2) Sigma_w^+ (x_t - sqrt(abar) x_0), computed with a dense pseudo-inverse
    abar = np.exp(VPSDE().log_alpha_bar(t))
    pinv = np.linalg.pinv(process.covariance.dense(64), rcond=1e-10, hermitian=True)
    np.testing.assert_allclose(score, -(xt - np.sqrt(abar) * x0) @ pinv.T / (1 - abar), rtol=1e-9, atol=1e-9)
    h = 1e-5
    fd = np.empty_like(xt)
    for j in range(64):
        e = np.zeros(64)
        e[j] = h
        fd[:, j] = (process.transition_logpdf(xt + e, x0, t) - process.transition_logpdf(xt - e, x0, t)) / (2 * h)
    # central differences: O(h^2) (exact for a quadratic) plus round-off eps |log p| / h ~ 1e-9
    np.testing.assert_allclose(score, fd, rtol=1e-6, atol=1e-6)


def test_forward_sde_monte_carlo_matches_transition():
    """Euler-Maruyama with Sigma_w^{1/2} noise on 4x4 images; covariance within 5 standard errors."""
    shape = (1, 4, 4)
    process = SpectralAnisotropic.power_law(shape, 0.7, eps_dc=0.1)
    rng = np.random.default_rng(1)
    n, steps, t_end = 8000, 100, 0.5
    x = np.zeros((n, 16))
    dt = t_end / steps
    root = process.diffusion(1.0).dense(16) / process.schedule.diffusion(1.0).c  # Sigma_w^{1/2}, dense
    for k in range(steps):
        u = k * dt
        g = process.schedule.diffusion(u).c
        x = x + dt * process.drift(x, u) + np.sqrt(dt) * g * rng.standard_normal(x.shape) @ root.T
    cov = process.transition(t_end)[1].dense(16)
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    # 5 standard errors + Euler bias O(dt beta / 2) <= 1.5e-2 relative (dt = 5e-3, beta <= 10)
    assert np.all(np.abs(np.cov(x.T) - cov) < 5 * se + 1.5e-2 * np.abs(cov).max())


def test_selective_omission_with_dks_ddim_on_digits():
    """With a band omitted, DKS-driven DDIM samples carry zero energy in that band (1e-10 relative)."""
    X = load_digits_images(n=300, rng=0).reshape(300, -1)
    process = SpectralAnisotropic.two_band(SHAPE, 0.5, (0.0, 0.2), 0.8, (0.35, 1.0))
    assert process.covariance.rank() < 64
    dks = DiffusionKernelSmoother(process).fit(X)
    omitted = ~process.covariance.mask
    assert process.covariance.band_energy(X).mean() > 1.0  # the data do have content in the band
    for eta in (0.0, 1.0):
        samples = process.sample_ddim(dks.score, 16, steps=40, eta=eta, rng=2)
        energy = process.covariance.band_energy(samples, mask=omitted)
        total = process.covariance.band_energy(samples, mask=np.ones_like(omitted))
        assert np.all(energy <= 1e-10 * total)
        # in-band content lands on training digits: samples are close to projected data
        projected = process.covariance.projector().apply(X)
        distance = np.min(np.linalg.norm(samples[:, None] - projected[None], axis=2), axis=1)
        assert np.median(distance) < 0.2 * np.median(np.linalg.norm(projected, axis=1))


def test_band_pass_keeps_plane_waves_in_the_band_and_kills_the_rest():
    """Plane waves are the eigenvectors of Sigma_w: eigenvalue H W / (frequencies in the band) inside
    [low, high] (trace normalised, |w|^2 = 1 there) and 0 outside; counted here from np.fft.fftfreq."""
    process = SpectralAnisotropic.band_pass(SHAPE, 0.2, 0.4)
    f = np.fft.fftfreq(8)
    r = np.hypot(f[:, None], f[None, :])
    n_in = np.sum((r >= 0.2) & (r <= 0.4))
    i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    for ky, kx, inside in [(0.25, 0.0, True), (0.125, 0.25, True), (0.125, 0.0, False), (0.375, 0.375, False),
                           (0.0, 0.0, False)]:
        wave = np.cos(2 * np.pi * (ky * i + kx * j)).reshape(1, 64)
        expected = 64 / n_in * wave if inside else np.zeros_like(wave)
        np.testing.assert_allclose(process.covariance.apply(wave), expected, atol=1e-13)  # FFT round-off


def test_ddim_full_rank_reproduces_training_points():
    X = load_digits_images(n=50, rng=3).reshape(50, -1)
    process = SpectralAnisotropic.power_law(SHAPE, -0.5, eps_dc=0.05)
    samples = process.sample_ddim(DiffusionKernelSmoother(process).fit(X).score, 8, steps=60, rng=4)
    distance = np.min(np.linalg.norm(samples[:, None] - X[None], axis=2), axis=1)
    assert np.all(distance < 0.05)  # memorisation by the exact empirical score


def test_other_schedules_images_and_operator_weights():
    op = FourierDiagonal.from_weights(SHAPE, np.ones((8, 8)))
    process = SpectralAnisotropic(SHAPE, op, schedule=VESDE())
    _, Sigma = process.transition(0.5)
    np.testing.assert_allclose(Sigma.scale, VESDE().transition(0.5)[1].c)
    images = np.zeros((2,) + SHAPE)
    assert process.flatten(images).shape == (2, 64)
    assert process.unflatten(process.flatten(images)).shape == (2,) + SHAPE
    prior = process.prior()
    assert prior.sample(3, 64, rng=0).shape == (3, 64)
    G = process.diffusion(0.3)
    np.testing.assert_allclose((G @ G).dense(64), process.diffusion_covariance(0.3).dense(64), atol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        SpectralAnisotropic((8, 8), np.ones((8, 8)))
    with pytest.raises(TypeError, match="schedule"):
        SpectralAnisotropic(SHAPE, np.ones((8, 8)), schedule="vp")
    process = SpectralAnisotropic.power_law(SHAPE, 0.1)
    with pytest.raises(ValueError, match="eta"):
        process.sample_ddim(lambda x, t: x, 2, eta=2.0)
    with pytest.raises(ValueError, match="images"):
        process.flatten(np.zeros((2, 63)))
    with pytest.raises(ValueError, match="weights"):
        SpectralAnisotropic(SHAPE, FourierDiagonal((1, 4, 4), np.ones((4, 4))))
