"""Structured forward processes on the 8 x 8 digits: SAGD noise spectra (with the spectrum of natural-image
patches for reference) and selective omission, fractional
diffusion samples and pixel-wise diversity against the Hurst index, and bits/dim of VP, CLD and MALDA on
held-out digits with the DKS score of the training digits.

``make(out_dir, size="quick")`` writes ``structured_sagd.png``, ``structured_fractional.png`` and
``structured_bpd.png``.
"""
import pathlib

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.datasets import load_digits_images, load_natural_patches  # noqa: E402
from opdiff.datasets.images import DIGITS_LEVELS  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.estimators.elbo import mean_elbo  # noqa: E402
from opdiff.metrics.likelihood import LogitTransform, bits_per_dim, dequantize  # noqa: E402
from opdiff.linalg.fourier import radial_frequency  # noqa: E402
from opdiff.processes import FractionalDiffusion, SpectralAnisotropic, StationaryLinearSDE  # noqa: E402
from paper_figures import check_size, save_figure  # noqa: E402

SHAPE = (1, 8, 8)


def radial_spectrum(images, size):
    """Radially averaged power spectrum ``(radii, power)`` of ``(n, size*size)`` images."""
    psd = np.mean(np.abs(np.fft.fft2(images.reshape(-1, size, size))) ** 2, axis=0)
    r = radial_frequency(size, size)
    bins = np.round(r * size).astype(int)
    keep = [b for b in range(1, size // 2 + 1) if np.any(bins == b)]
    return np.array([r[bins == b].mean() for b in keep]), np.array([psd[bins == b].mean() for b in keep])


def sagd_panel(out, quick, rng):
    size = 32
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for alpha in (-0.5, 0.0, 0.5):
        process = SpectralAnisotropic.power_law((1, size, size), alpha, eps_dc=0.02)
        noise = process.prior().sample(64 if quick else 256, size * size, rng=rng)
        radii, power = radial_spectrum(noise, size)
        axes[0].loglog(radii, power, "o-", ms=3, label=f"alpha = {alpha:+.1f}")
    patches = load_natural_patches(64 if quick else 256, size=size, rng=rng).reshape(-1, size * size)
    radii, power = radial_spectrum(patches - patches.mean(axis=1, keepdims=True), size)
    slope = np.polyfit(np.log(radii), np.log(power), 1)[0]
    axes[0].loglog(radii, power * 1e3 / power[len(power) // 2], "k--", label=f"natural patches (slope {slope:.1f})")
    axes[0].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set(xlabel="radial frequency (cycles/pixel)", ylabel="noise power", title="plw-SAGD noise spectra")
    axes[0].legend(fontsize=8)
    X = load_digits_images(n=300 if quick else 1000, rng=0).reshape(-1, 64)
    band = (0.26, 0.3)  # the ring r = sqrt(5)/8 of the 8 x 8 grid
    process = SpectralAnisotropic.two_band(SHAPE, 0.5, (0.0, band[0]), 0.8, (band[1], 1.0))
    dks = DiffusionKernelSmoother(process).fit(X)
    samples = process.sample_ddim(dks.score, 8, steps=30 if quick else 60, rng=rng)
    omitted = ~process.covariance.mask
    projected = process.covariance.projector().apply(X)
    nearest = np.argmin(np.linalg.norm(samples[:4, None] - projected[None], axis=2), axis=1)
    rows = [np.concatenate(list(r.reshape(4, 8, 8)), axis=1) for r in (samples[:4], projected[nearest], X[nearest])]
    gap = np.full((1, 32), np.nan)
    grid = np.concatenate([rows[0], gap, rows[1], gap, rows[2]])
    axes[1].imshow(grid, cmap="gray_r")
    axes[1].set_title(f"DKS-DDIM samples, band {band} omitted (top);\nnearest training digit, band removed "
                      "(middle) and as is (bottom)", fontsize=9)
    axes[1].set(xticks=[], yticks=[])
    data_energy = process.covariance.band_energy(X, mask=omitted) / process.covariance.band_energy(
        X, mask=np.ones_like(omitted))
    sample_energy = process.covariance.band_energy(samples, mask=omitted) / process.covariance.band_energy(
        samples, mask=np.ones_like(omitted))
    axes[2].bar(["training digits", "SAGD samples"], [data_energy.mean(), max(sample_energy.max(), 1e-300)])
    axes[2].set_yscale("log")
    axes[2].set(title="energy fraction in the omitted band", ylim=(1e-34, 1))
    path = out / "structured_sagd.png"
    save_figure(fig, path)
    return path


def pixel_diversity(samples):
    """Mean over pixels of the standard deviation across samples."""
    return float(np.mean(np.std(samples, axis=0)))


def fractional_panel(out, quick, rng):
    hursts = (0.3, 0.5, 0.7, 0.9) if quick else (0.1, 0.3, 0.5, 0.7, 0.9)
    X = load_digits_images(n=200 if quick else 500, rng=1).reshape(-1, 64)
    n_samples = 16 if quick else 32
    fig, axes = plt.subplots(1, len(hursts) + 1, figsize=(3 * (len(hursts) + 1), 3.2))
    diversity = []
    for ax, hurst in zip(axes, hursts):
        process = FractionalDiffusion(hurst, 2, pd_eps=1e-4)
        dks = DiffusionKernelSmoother(process).fit(X)
        samples = process.reverse_sample(dks.score, n_samples, 64, steps=100 if quick else 300, mode="sde", rng=rng)
        diversity.append(pixel_diversity(samples))
        grid = np.concatenate([np.concatenate(list(samples[i * 4:(i + 1) * 4].reshape(4, 8, 8)), axis=1)
                               for i in range(2)])
        ax.imshow(np.clip(grid, -1, 1), cmap="gray_r")
        ax.set(title=f"H = {hurst}", xticks=[], yticks=[])
    axes[-1].plot(hursts, diversity, "o-", label="samples")
    axes[-1].axhline(pixel_diversity(X), color="k", ls="--", label="training digits")
    axes[-1].set(xlabel="Hurst index H", ylabel="pixel-wise std", title="diversity (K = 2, FVP)")
    axes[-1].legend(fontsize=8)
    path = out / "structured_fractional.png"
    save_figure(fig, path)
    return path, dict(zip(hursts, diversity))


def digits_bits_per_dim(quick, rng):
    """bits/dim ``{name: (t_mins, bpd, s.e.)}`` of VP, CLD, MALDA on held-out digits, DKS score of the training digits.

    The ELBO (DSM form, Tweedie boundary decoder, control variates) is truncated at ``t_min``, which sets
    the bandwidth of the kernel smoother: small ``t_min`` memorises the training digits and
    pays for it on held-out digits, most of all for CLD and MALDA whose data block is smoothed only
    through the auxiliary variables (position variance ``O(t^3)``).
    """
    images = load_digits_images()
    levels = np.round((images.reshape(-1, 64) + 1.0) * 8.0)
    order = np.random.default_rng(2).permutation(levels.shape[0])
    n_train, n_test = (400, 40) if quick else (1500, 100)
    t_mins = (0.2, 0.5) if quick else (0.1, 0.2, 0.3, 0.5)
    logit = LogitTransform(0.05)
    train, _ = logit.forward(dequantize(levels[order[:n_train]], DIGITS_LEVELS, rng=rng))
    test, ldj = logit.forward(dequantize(levels[order[n_train:n_train + n_test]], DIGITS_LEVELS, rng=rng))
    results = {}
    for name in ("vp", "cld", "malda"):
        process = getattr(StationaryLinearSDE, name)()
        dks = DiffusionKernelSmoother(process).fit(train)
        bpd, se = [], []
        for t_min in t_mins:
            result = mean_elbo(process, test, dks.score, rng=rng, time_quadrature=12, t_min=t_min)
            bpd.append(float(bits_per_dim(result.estimate + ldj.mean(), 64, n_levels=DIGITS_LEVELS)))
            se.append(float(result.standard_error / 64 / np.log(2)))
        results[name] = (t_mins, bpd, se)
    return results


def bpd_panel(out, quick, rng):
    results = digits_bits_per_dim(quick, rng)
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    for name, (t_mins, bpd, se) in results.items():
        ax.errorbar(t_mins, bpd, yerr=5 * np.asarray(se), marker="o", capsize=3, label=name.upper())
    ax.axhline(np.log2(DIGITS_LEVELS), color="k", ls=":", label="uniform")
    ax.set(xlabel="t_min (DKS bandwidth)", ylabel="bits / dim (held-out digits)", yscale="log",
           title="ELBO with the DKS score of the training digits")
    ax.legend(fontsize=8)
    path = out / "structured_bpd.png"
    save_figure(fig, path)
    return path, results


def make(out_dir, size="quick"):
    """Write the three figures to ``out_dir``; returns their paths."""
    quick = check_size(size) == "test"
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [sagd_panel(out, quick, rng)]
    paths.append(fractional_panel(out, quick, rng)[0])
    paths.append(bpd_panel(out, quick, rng)[0])
    return [str(p) for p in paths]


if __name__ == "__main__":
    print(make("figures"))
