"""DKS figures (arXiv 2406.09084, v1): probability-flow samples of the diffusion kernel smoother on the 2-D
toys, and the DKS score error against the exact score of a Gaussian mixture across time and data-set size.

``make(out_dir, size="quick")`` writes ``dks_toy_samples.png`` and ``dks_score_error.png``, and records
the MMDs and score errors they show in ``results.json`` under ``"dks"``.
"""
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.datasets import TOYS, GaussianMixture, make_toy  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.metrics import mmd_squared  # noqa: E402
from opdiff.processes import VPSDE  # noqa: E402
from opdiff.sampling import VEDenoiser, sample_heun  # noqa: E402
from paper_figures import check_size, record_results, save_figure  # noqa: E402

TOY_NAMES = ("two_spirals", "eight_gaussians", "pinwheel", "checkerboard", "moons", "rings")
T_MIN = 1e-2  # stop the reverse flow before the DKS collapses onto the training points

CAPTIONS = {
    "dks_toy_samples.png": (
        "Diffusion kernel smoother (DKS, arXiv 2406.09084 v1): top, training data of "
        "six 2-D toys; bottom, samples of the probability-flow ODE of the VP-SDE driven by the exact DKS score "
        "(Heun, stopped at t = 0.01, before the smoother collapses onto the training points). Panel titles: "
        "unbiased MMD^2 (Gaussian kernel, median bandwidth) between the samples and fresh data, beside the "
        "MMD^2 between the training set and the same fresh data (the floor set by n). The paper reports this "
        "experiment only qualitatively (DKS needs no neural score in low dimension): no published number."),
    "dks_score_error.png": (
        "DKS score error (arXiv 2406.09084 v1): relative Fisher divergence E|s_DKS - s|^2 / E|s|^2 under rho_t "
        "of the DKS of n samples of an 8-component Gaussian mixture, against its exact score, across the VP "
        "time t. The error falls with n and with t (smoothing), and grows without bound as t -> 0, where the "
        "DKS score points at the nearest training point (memorisation). No published number to compare."),
}


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
    return X, flow.from_ve(trajectory.x, trajectory.sigmas[-1])


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
    """Write the two DKS figures into ``out_dir`` and their numbers into ``results.json``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The output folder (created).
    size : {"test", "quick", "full"}
        Run size (see :data:`paper_figures.SIZES`).

    Returns
    -------
    list of pathlib.Path
        The PNG files, in the order of ``CAPTIONS``.
    """
    quick = check_size(size) == "test"
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    process = VPSDE()
    n_train, n_samples, n_steps = (400, 400, 20) if quick else (2000, 2000, 50)
    names = [name for name in TOY_NAMES if name in TOYS]

    mmd = {}
    fig, axes = plt.subplots(2, len(names), figsize=(2.4 * len(names), 5.6), squeeze=False,
                             layout="constrained")
    for column, name in enumerate(names):
        X, samples = toy_samples(process, name, n_train, n_samples, n_steps, rng)
        fresh = make_toy(name, n_samples, rng=rng)
        mmd[name] = {"samples": mmd_squared(samples, fresh), "training_data": mmd_squared(X, fresh)}
        for row, (points, label) in enumerate(((X, f"data (n = {n_train})"),
                                               (samples, f"DKS, PF-ODE ({n_steps} Heun steps)"))):
            ax = axes[row, column]
            ax.scatter(points[:, 0], points[:, 1], s=1.0, alpha=0.6, color="C0" if row == 0 else "C3")
            ax.set_xlim(-4.5, 4.5)
            ax.set_ylim(-4.5, 4.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            if row == 0:
                ax.set_title(f"{name}\nMMD$^2$ data: {mmd[name]['training_data']:.1e}", fontsize=8)
            else:
                ax.set_title(f"MMD$^2$ DKS: {mmd[name]['samples']:.1e}", fontsize=8)
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"Diffusion kernel smoother samples (VP-SDE, stopped at t = {T_MIN})", fontsize=10)
    toys_path = out_dir / "dks_toy_samples.png"
    save_figure(fig, toys_path, dpi=120, caption=CAPTIONS[toys_path.name])

    mixture = eight_gaussian_mixture()
    sizes = (100, 1000) if quick else (100, 1000, 10000)
    times = np.geomspace(1e-3, 1.0, 8 if quick else 16)
    errors = score_errors(process, mixture, sizes, times, 300 if quick else 1000, rng)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for i, n in enumerate(sizes):
        ax.loglog(times, errors[i], "o-", ms=3, label=f"n = {n}")
    ax.set_xlabel("VP-SDE time t (dimensionless)")
    ax.set_ylabel(r"relative Fisher divergence $E|s_{DKS} - s|^2 / E|s|^2$")
    ax.set_title("DKS score error vs the exact mixture score", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", title="training points")   # the curves fall to the right
    ax.grid(True, which="both", alpha=0.3)
    error_path = out_dir / "dks_score_error.png"
    save_figure(fig, error_path, dpi=120, caption=CAPTIONS[error_path.name])
    record_results(out_dir, "dks", {
        "toy_samples": {"n_train": n_train, "n_samples": n_samples, "heun_steps": n_steps, "t_min": T_MIN,
                        "mmd_squared": mmd},
        "score_error": {"times": times, "sizes": list(sizes),
                        "relative_fisher_divergence": {str(n): errors[i] for i, n in enumerate(sizes)}},
        "paper": "arXiv 2406.09084 v1 reports the DKS experiments qualitatively; no published number",
    })
    return [toys_path, error_path]
