"""DKS figures: probability-flow samples of the diffusion kernel smoother on the 2-D toys, and the DKS
score error against the exact score of a Gaussian mixture across time and data-set size.

``make(out_dir, size="quick")`` writes ``dks_toy_samples.png`` and ``dks_score_error.png``.
"""
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.datasets import TOYS, GaussianMixture, make_toy  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.processes import VPSDE  # noqa: E402
from opdiff.sampling import VEDenoiser, sample_heun  # noqa: E402
from paper_figures import check_size, save_figure  # noqa: E402

TOY_NAMES = ("two_spirals", "eight_gaussians", "pinwheel", "checkerboard", "moons", "rings")
T_MIN = 1e-2  # stop the reverse flow before the DKS collapses onto the training points


def eight_gaussian_mixture(radius=2.0, std=0.2):
    """The exact law of ``eight_gaussians``-like data: 8 isotropic components on a circle."""
    angles = 2 * np.pi * np.arange(8) / 8
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(np.ones(8), means, std**2)


def toy_samples(process, name, n_train, n_samples, n_steps, rng):
    """Training data and DKS samples of one toy by Heun's method on the probability-flow ODE."""
    X = make_toy(name, n_train, rng=rng)
    dks = DiffusionKernelSmoother(process).fit(X)
    flow = VEDenoiser(process, dks)
    times = np.geomspace(process.t_max, T_MIN, n_steps + 1)
    start = process.prior().sample(n_samples, 2, rng=rng)
    trajectory = flow.sample(sample_heun, start, times)
    return X, flow.from_ve(trajectory.samples[-1], trajectory.sigmas[-1])


def score_errors(process, mixture, sizes, times, n_queries, rng):
    """Relative Fisher divergence ``E|s_DKS - s|^2 / E|s|^2`` under ``rho_t``, per data size and time."""
    errors = np.empty((len(sizes), len(times)))
    for j, t in enumerate(times):
        queries = process.sample(mixture.sample(n_queries, rng=rng), t, rng=rng)
        exact = mixture.score(queries, t, process)
        scale = np.mean(np.sum(exact**2, axis=1))
        for i, n in enumerate(sizes):
            dks = DiffusionKernelSmoother(process).fit(mixture.sample(n, rng=rng))
            errors[i, j] = np.mean(np.sum((dks.score(queries, t) - exact) ** 2, axis=1)) / scale
    return errors


def make(out_dir, size="quick"):
    """Write the DKS figures to ``out_dir``; returns the list of PNG paths."""
    quick = check_size(size) == "test"
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    process = VPSDE()
    n_train, n_samples, n_steps = (400, 400, 20) if quick else (2000, 2000, 50)
    names = [name for name in TOY_NAMES if name in TOYS]

    fig, axes = plt.subplots(2, len(names), figsize=(2.2 * len(names), 4.6), squeeze=False)
    for column, name in enumerate(names):
        X, samples = toy_samples(process, name, n_train, n_samples, n_steps, rng)
        for row, (points, label) in enumerate(((X, "data"), (samples, f"DKS, PF-ODE ({n_steps} Heun steps)"))):
            ax = axes[row, column]
            ax.scatter(points[:, 0], points[:, 1], s=1.0, alpha=0.6, color="C0" if row == 0 else "C3")
            ax.set_xlim(-4.5, 4.5)
            ax.set_ylim(-4.5, 4.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            if row == 0:
                ax.set_title(name, fontsize=9)
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"Diffusion kernel smoother samples (VP-SDE, stopped at t = {T_MIN})", fontsize=10)
    toys_path = out_dir / "dks_toy_samples.png"
    save_figure(fig, toys_path, dpi=120)

    mixture = eight_gaussian_mixture()
    sizes = (100, 1000) if quick else (100, 1000, 10000)
    times = np.geomspace(1e-3, 1.0, 8 if quick else 16)
    errors = score_errors(process, mixture, sizes, times, 300 if quick else 1000, rng)
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    for i, n in enumerate(sizes):
        ax.loglog(times, errors[i], "o-", ms=3, label=f"n = {n}")
    ax.set_xlabel("t (VP-SDE)")
    ax.set_ylabel(r"$E|s_{DKS} - s|^2 / E|s|^2$")
    ax.set_title("DKS score error vs the exact mixture score", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    error_path = out_dir / "dks_score_error.png"
    save_figure(fig, error_path, dpi=120)
    return [toys_path, error_path]
