"""Geometry of probability-flow sampling with the exact empirical score (DKS = annealed mean shift).

Three figures:

1. ``sampling_geometry_trajectories.png``: sampling and denoising trajectories side by side, on a 2-D toy
   and on 8 x 8 digits (each digit trajectory drawn in its own best 2-D PCA plane), with a strip of the
   denoised outputs of one digit trajectory;
2. ``sampling_geometry_deviation.png``: chord deviation (relative to the end-to-end distance) and distance
   to the end point along the sampling and denoising trajectories, against sigma;
3. ``sampling_geometry_nfe.png``: error against NFE for every solver with the exact score of a Gaussian
   mixture (reference: a DOP853 solve).
"""
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import opdiff.sampling as S  # noqa: E402
from opdiff.backend import require_extra  # noqa: E402
from opdiff.datasets import GaussianMixture, make_toy  # noqa: E402
from opdiff.estimators.kernel_smoother import DiffusionKernelSmoother  # noqa: E402
from opdiff.processes import VESDE  # noqa: E402
from paper_figures import check_size, save_figure  # noqa: E402

SIGMA_MAX, SIGMA_MIN = 80.0, 0.002


def load_digits_scaled():
    """The scikit-learn 8 x 8 digits, pixel values mapped from [0, 16] to [-1, 1]; ``(1797, 64)``."""
    return require_extra("sklearn.datasets").load_digits().data / 8.0 - 1.0


def empirical_trajectories(data, n, n_steps, rng, solver=S.sample_euler):
    """Trajectories of ``solver`` with the DKS of ``data`` under the EDM VE process, from ``sigma_max``."""
    process = VESDE.edm(SIGMA_MAX)
    denoiser = S.VEDenoiser(process, DiffusionKernelSmoother(process).fit(data))
    sigmas = S.edm_sigmas(n_steps, SIGMA_MIN, SIGMA_MAX)
    return solver(denoiser, SIGMA_MAX * rng.standard_normal((n, data.shape[1])), sigmas)


def _plane(points):
    """Coordinates of ``points (T, D)`` in their own best 2-D PCA plane."""
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def _trajectory_figure(toy, toy_traj, digits_traj, path):
    fig, axes = plt.subplots(1, 5, figsize=(18, 3.8), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.3]})
    for ax, attribute, title in ((axes[0], "samples", "toy: sampling"), (axes[1], "denoised", "toy: denoising")):
        ax.scatter(*toy.T, s=3, c="0.7", zorder=0)
        lines = getattr(toy_traj, attribute)
        for j in range(lines.shape[1]):
            ax.plot(lines[:, j, 0], lines[:, j, 1], lw=0.8, marker=".", ms=2)
        ax.set_title(title)
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.set_aspect("equal")
    for j in range(min(4, digits_traj.samples.shape[1])):
        axes[2].plot(*_plane(digits_traj.samples[:, j]).T, lw=0.8, marker=".", ms=2)
        axes[3].plot(*_plane(digits_traj.denoised[:, j]).T, lw=0.8, marker=".", ms=2)
    axes[2].set_title("digits: sampling (own 2-D PCA plane)")
    axes[3].set_title("digits: denoising (own 2-D PCA plane)")
    for ax in axes[2:4]:
        ax.set_aspect("equal", adjustable="datalim")
    steps = np.linspace(0, digits_traj.denoised.shape[0] - 1, 7).astype(int)
    rows = [np.concatenate([digits_traj.denoised[k, j].reshape(8, 8) for k in steps], axis=1) for j in range(3)]
    axes[4].imshow(np.concatenate(rows, axis=0), cmap="gray_r")
    axes[4].set_title("D(x_t) along three digit runs (left: sigma = 80)")
    axes[4].axis("off")
    save_figure(fig, path)


def _deviation_figure(runs, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for (label, traj), colour in zip(runs, ("C0", "C1")):
        sig = traj.sigmas[:-1]
        for attribute, style in (("samples", "-"), ("denoised", "--")):
            points = getattr(traj, attribute)
            span = np.linalg.norm(points[-1] - points[0], axis=-1)  # each trajectory's own end-to-end distance
            dev = S.chord_deviation(traj, attribute=attribute)[: len(sig)] / span
            dist = S.distance_to_end(traj, attribute=attribute)[: len(sig)] / span
            axes[0].plot(sig, dev.mean(1), style, color=colour, label=f"{label} {attribute}")
            axes[1].plot(sig, dist.mean(1), style, color=colour, label=f"{label} {attribute}")
    for ax, title in zip(axes, ("chord deviation / end-to-end distance", "distance to end / end-to-end distance")):
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("sigma")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    save_figure(fig, path)


def solver_errors(steps, n_points=16, rng=0):
    """Error against NFE of every solver at ``sigma = 0.05`` on a 3-component 2-D Gaussian mixture
    (exact denoiser), from ``sigma = 10``; see :func:`opdiff.sampling.convergence_study`."""
    process = VESDE.edm(10.0)
    mixture = GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]], np.array([0.5, 0.4, 0.6]) ** 2)
    denoiser = S.VEDenoiser(process, lambda x, t: mixture.denoise(x, t, process), output="denoiser")
    x0 = 10.0 * np.random.default_rng(rng).standard_normal((n_points, 2))
    return S.convergence_study(denoiser, x0, steps, sigma_min=0.05, sigma_max=10.0)


def _nfe_figure(results, path):
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, row in results.items():
        ax.loglog(row["nfe"], row["error"], marker="o", ms=3, label=f"{name} (order {row['slope']:.1f})")
    ax.set_xlabel("NFE")
    ax.set_ylabel("max error vs. exact ODE solution")
    ax.set_title("exact mixture score, EDM grid (rho = 7)")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def make(out_dir, size="quick"):
    """Write the three figures into ``out_dir``; returns their paths."""
    quick = check_size(size) == "test"
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    toy = make_toy("two_spirals", 400 if quick else 1000, rng=rng)
    toy = 1.5 * toy / np.abs(toy).max()
    digits = load_digits_scaled()[: 300 if quick else None]
    n_steps = 12 if quick else 18
    toy_traj = empirical_trajectories(toy, 8, n_steps, rng)
    digits_traj = empirical_trajectories(digits, 16 if quick else 64, n_steps, rng)
    paths = [out / "sampling_geometry_trajectories.png", out / "sampling_geometry_deviation.png",
             out / "sampling_geometry_nfe.png"]
    _trajectory_figure(toy, toy_traj, digits_traj, paths[0])
    _deviation_figure([("toy", empirical_trajectories(toy, 64, n_steps, rng)), ("digits", digits_traj)], paths[1])
    _nfe_figure(solver_errors([4, 8, 16] if quick else [4, 8, 16, 32, 64, 128]), paths[2])
    return paths
