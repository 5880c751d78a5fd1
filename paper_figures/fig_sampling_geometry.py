"""Geometry of probability-flow sampling with the exact empirical score (DKS = annealed mean shift).

Three figures:

1. ``sampling_geometry_trajectories.png``: sampling and denoising trajectories side by side, on a 2-D toy
   and on 8 x 8 digits (each digit trajectory drawn in its own best 2-D PCA plane), above a grid of the
   denoised outputs of three digit trajectories (one row per run, one column per noise level);
2. ``sampling_geometry_deviation.png``: chord deviation (relative to the end-to-end distance) and distance
   to the end point along the sampling and denoising trajectories, against sigma;
3. ``sampling_geometry_nfe.png``: error against NFE for every solver with the exact score of a Gaussian
   mixture (reference: a DOP853 solve).

The paper is "A Geometric Perspective on Diffusion Models", arXiv 2305.19947. Every number shown is
recorded in ``results.json`` under ``"sampling_geometry"``.
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
from paper_figures import check_size, record_results, save_figure  # noqa: E402

SIGMA_MAX, SIGMA_MIN = 80.0, 0.002

CAPTIONS = {
    "sampling_geometry_trajectories.png": (
        "Sampling and denoising trajectories of the probability-flow ODE with the exact empirical score "
        "(DKS of the data = annealed mean shift), EDM grid sigma 80 -> 0.002, Euler (arXiv 2305.19947, Fig. 1 "
        "and Sec. 3). Top: a 2-D toy (grey: data; sampling runs start at |x| ~ 80, outside the frame) and 8 x 8 "
        "digits, each digit run in its own best 2-D PCA plane, scaled by its end-to-end distance (PC2 "
        "stretched: the sampling path is almost straight, the denoising path bends). Bottom: the denoiser "
        "output D(x_sigma) of three digit runs (rows) at seven noise levels (columns); it reaches a "
        "recognisable digit long before the sampling path ends (the paper's Observation 3)."),
    "sampling_geometry_deviation.png": (
        "Quasi-linearity and monotonicity (arXiv 2305.19947, Fig. 2b): left, mean deviation of the intermediate "
        "points from the chord x_start -> x_end; right, mean distance to the end point; both divided by each "
        "run's end-to-end distance, for the sampling (solid) and denoising (dashed) trajectories, against "
        "sigma. The paper quotes a deviation below 20 against an end-to-end distance of about 4e3 "
        "(ratio < 0.005, CIFAR-10); ours: the maxima in the legend."),
    "sampling_geometry_nfe.png": (
        "Error against the number of function evaluations (NFE) of every ODE solver with the exact score of "
        "a 3-component Gaussian mixture, EDM grid (rho = 7) from sigma = 10 to 0.05, against a DOP853 reference "
        "solve; legend: fitted order (slope). The paper (arXiv 2305.19947, Sec. 4) reads the second-order "
        "solvers as finite differences of the denoising trajectory; expected orders 1 (Euler) and 2 (Heun, "
        "DPM-Solver-2, DPM-Solver++(2M)), up to 4 for iPNDM. Its FID-vs-NFE numbers need trained networks "
        "and are not reproduced here."),
}


def load_digits_scaled():
    """The scikit-learn 8 x 8 digits, pixel values mapped from [0, 16] to [-1, 1]; ``(1797, 64)``."""
    return require_extra("sklearn.datasets").load_digits().data / 8.0 - 1.0


def empirical_trajectories(data, n, n_steps, rng, solver=S.sample_euler):
    """Trajectories of ``solver`` with the DKS of ``data`` under the EDM VE process, from ``sigma_max``."""
    process = VESDE.edm(SIGMA_MAX)
    denoiser = S.VEDenoiser(process, DiffusionKernelSmoother(process).fit(data))
    sigmas = S.edm_sigmas(n_steps, SIGMA_MIN, SIGMA_MAX)
    return solver(denoiser, SIGMA_MAX * rng.standard_normal((n, data.shape[1])), sigmas, record=True)


def _plane(points):
    """Coordinates of ``points (T, D)`` in their own best 2-D PCA plane, divided by the end-to-end distance."""
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T / np.linalg.norm(points[-1] - points[0])


def _trajectory_figure(toy, toy_traj, digits_traj, path, n_columns=7, n_rows=3):
    fig = plt.figure(figsize=(16, 8.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    axes = top.subplots(1, 4)
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
        axes[2].plot(*_plane(digits_traj.samples[:, j]).T, lw=0.8, marker=".", ms=3)
        axes[3].plot(*_plane(digits_traj.denoised[:, j]).T, lw=0.8, marker=".", ms=3)
    axes[2].set_title("digits: sampling (own PCA plane)")
    axes[3].set_title("digits: denoising (own PCA plane)")
    for ax in axes[2:4]:
        ax.set_xlabel("PC1 / end-to-end distance")
        ax.set_ylabel("PC2 / end-to-end distance")
    # The sampling path is nearly straight: an equal aspect would draw it as a line, so PC2 gets its own
    # range (the label says so) and the small bend the paper measures is visible.
    axes[2].set_ylabel("PC2 / end-to-end distance (stretched)")
    steps = np.linspace(0, digits_traj.denoised.shape[0] - 1, n_columns).astype(int)
    sigmas = np.asarray(digits_traj.sigmas)[steps]
    grid = bottom.subplots(n_rows, n_columns, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    for row in range(n_rows):
        for column, k in enumerate(steps):
            ax = grid[row, column]
            ax.imshow(digits_traj.denoised[k, row].reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"sigma = {sigmas[column]:.3g}", fontsize=9)
            if column == 0:
                ax.set_ylabel(f"run {row + 1}", fontsize=9)
    bottom.suptitle("denoiser output D(x_sigma) along three digit runs (8 x 8 pixels)", fontsize=10)
    save_figure(fig, path, caption=CAPTIONS[path.name])
    return {"montage_sigmas": sigmas}


def _deviation_figure(runs, path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.0), layout="constrained")
    numbers = {}
    for (label, traj), colour in zip(runs, ("C0", "C1")):
        sig = traj.sigmas[:-1]
        for attribute, style in (("samples", "-"), ("denoised", "--")):
            points = getattr(traj, attribute)
            span = np.linalg.norm(points[-1] - points[0], axis=-1)  # each trajectory's own end-to-end distance
            dev = (S.chord_deviation(traj, attribute=attribute)[: len(sig)] / span).mean(1)
            dist = (S.distance_to_end(traj, attribute=attribute)[: len(sig)] / span).mean(1)
            numbers[f"{label}_{attribute}"] = {"sigmas": sig, "relative_chord_deviation": dev,
                                               "relative_distance_to_end": dist, "max_deviation": dev.max(),
                                               "mean_end_to_end_distance": span.mean()}
            name = f"{label} {attribute}"
            axes[0].plot(sig, dev, style, color=colour, label=f"{name}: max {dev.max():.3f}")
            axes[1].plot(sig, dist, style, color=colour, label=name)
    for ax, title in zip(axes, ("deviation from the chord", "distance to the end point")):
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("noise level sigma (EDM, decreasing)")
        ax.set_ylabel(f"{title} / end-to-end distance")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))   # beside the curves
    save_figure(fig, path, caption=CAPTIONS[path.name])
    return numbers


def solver_errors(steps, n_points=16, rng=0):
    """Error against NFE of every solver at ``sigma = 0.05`` on a 3-component 2-D Gaussian mixture
    (exact denoiser), from ``sigma = 10``; see :func:`opdiff.sampling.convergence_study`."""
    process = VESDE.edm(10.0)
    mixture = GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]], np.array([0.5, 0.4, 0.6]) ** 2)
    denoiser = S.VEDenoiser(process, lambda x, t: mixture.denoise(x, t, process), output="denoiser")
    x0 = 10.0 * np.random.default_rng(rng).standard_normal((n_points, 2))
    return S.convergence_study(denoiser, x0, steps, sigma_min=0.05, sigma_max=10.0)


def _nfe_figure(results, path):
    from matplotlib.ticker import ScalarFormatter

    fig, ax = plt.subplots(figsize=(7.4, 4.0), layout="constrained")
    for name, row in results.items():
        ax.loglog(row["nfe"], row["error"], marker="o", ms=3, label=f"{name} (order {row['slope']:.1f})")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("NFE (denoiser evaluations)")
    ax.set_ylabel("max error vs. exact ODE solution")
    ax.set_title("exact mixture score, EDM grid (rho = 7)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside the axes, off the curves
    save_figure(fig, path, caption=CAPTIONS[path.name])
    return {name: {"nfe": row["nfe"], "error": row["error"], "order": row["slope"]} for name, row in results.items()}


def make(out_dir, size="quick"):
    """Write the three figures into ``out_dir`` and their numbers into ``results.json``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The output folder (created).
    size : {"test", "quick", "full"}
        Run size (see :data:`paper_figures.SIZES`).

    Returns
    -------
    list of pathlib.Path
        The three PNG files.
    """
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
    numbers = {"n_steps": n_steps, "sigma_max": SIGMA_MAX, "sigma_min": SIGMA_MIN,
               "n_digits_data": digits.shape[0]}
    numbers["trajectories"] = _trajectory_figure(toy, toy_traj, digits_traj, paths[0])
    numbers["deviation"] = _deviation_figure([("toy", empirical_trajectories(toy, 64, n_steps, rng)),
                                              ("digits", digits_traj)], paths[1])
    numbers["error_vs_nfe"] = _nfe_figure(solver_errors([4, 8, 16] if quick else [4, 8, 16, 32, 64, 128]), paths[2])
    numbers["paper"] = {"arxiv": "2305.19947", "chord_deviation": "< 20 for an end-to-end distance ~4e3 (CIFAR-10)",
                        "relative_deviation_bound": 20 / 4e3}
    record_results(out, "sampling_geometry", numbers)
    return paths
