"""Riemannian diffusion kernel smoothing (RDKS) as a density estimator on S^2 and T^2.

Three figures:

1. ``riemannian_sphere.png``: a von Mises-Fisher mixture on S^2 (Mollweide projection): true
   density, 500 samples, and the RDKS density at the held-out-selected time (global and adaptive);
2. ``riemannian_torus.png``: the same for a wrapped normal mixture on the flat torus T^2;
3. ``riemannian_heldout.png``: held-out log-likelihood (5-fold CV) against the time ``t``, global
   and adaptive (Abramson, exponent 1/2), with the true mixture's expected log-density.

RDKS is the Riemannian diffusion kernel smoother of arXiv 2406.09084 (v1). The selected times and
held-out log-likelihoods are recorded in ``results.json`` under ``"riemannian"``.
"""
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.datasets import VonMisesFisherMixture, WrappedNormalMixture, latlon_to_unit, unit_to_latlon  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.manifolds import FlatTorus, Hypersphere  # noqa: E402
from opdiff.processes import ManifoldBrownianMotion  # noqa: E402
from paper_figures import check_size, record_results, save_figure  # noqa: E402

CAPTIONS = {
    "riemannian_sphere.png": (
        "Riemannian diffusion kernel smoother (RDKS, arXiv 2406.09084 v1) on the sphere S^2, Mollweide "
        "projection (longitude across, latitude up): 4-component von Mises-Fisher mixture (concentrations 5 to "
        "300), its samples, and the log-densities (per steradian, one colour scale, clipped 8 nats below the "
        "maximum) of the mixture, of RDKS with the heat-kernel time t chosen by held-out likelihood, and of "
        "adaptive RDKS (Abramson bandwidths, exponent 1/2). The paper shows RDKS qualitatively; no published "
        "number to compare."),
    "riemannian_torus.png": (
        "RDKS (arXiv 2406.09084 v1) on the flat torus T^2 = [-pi, pi)^2 (opposite edges glued): 3-component "
        "wrapped normal mixture, one component wrapping across the corner, its samples, and the densities "
        "(per rad^2, one colour scale) of the mixture, of RDKS at the held-out-selected time and of adaptive "
        "RDKS. No published number to compare."),
    "riemannian_heldout.png": (
        "Time selection of RDKS (arXiv 2406.09084 v1): held-out log-likelihood per point (k-fold cross "
        "validation, error bars one standard error over folds) against the heat-kernel time t on S^2 (left) "
        "and T^2 (right), global and adaptive bandwidths; dashed, the true mixture's mean log-density on a "
        "test set (the ceiling). Legend entries give the best score and its t. No published number."),
}


def sphere_mixture():
    """Four vMF components with concentrations from 5 to 300 (very different spreads)."""
    means = latlon_to_unit([60.0, 10.0, -35.0, -20.0], [-30.0, 40.0, 120.0, -120.0])
    return VonMisesFisherMixture(means, [40.0, 300.0, 5.0, 80.0], [0.3, 0.2, 0.3, 0.2])


def torus_mixture():
    """Three wrapped normals, one of them wrapping across the box boundary."""
    return WrappedNormalMixture([[2.8, -2.9], [-1.0, 1.0], [0.5, -1.0]],
                                [[0.35, 0.35], [0.15, 0.9], [0.6, 0.25]], [0.4, 0.3, 0.3])


def fit_selected(process, X, quick):
    """RDKS with the time (and adaptive exponent) chosen by held-out log-likelihood."""
    folds = 3 if quick else 5
    glob = DiffusionKernelSmoother(process).select_time(X, n_folds=folds, rng=0)
    adaptive = DiffusionKernelSmoother(process, adaptive=0.5).select_time(X, times=glob.selection_.times,
                                                                           exponents=(0.5,), n_folds=folds, rng=0)
    return glob, adaptive


def _density_panels(mixture, glob, adaptive, grid, density):
    """``(title, values)`` of the true, global-RDKS and adaptive-RDKS panels on ``grid``."""
    transform = np.exp if density else (lambda v: v)
    return [("true density", transform(mixture.log_density(grid))),
            (f"RDKS, t = {glob.time_:.3g}", transform(glob.log_density(grid, glob.time_))),
            (f"adaptive RDKS, t = {adaptive.time_:.3g}", transform(adaptive.log_density(grid, adaptive.time_)))]


def _sphere_figure(mixture, X, glob, adaptive, path, n_grid):
    lon = np.linspace(-np.pi, np.pi, 2 * n_grid)
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_grid)
    LON, LAT = np.meshgrid(lon, lat)
    grid = latlon_to_unit(np.degrees(LAT).ravel(), np.degrees(LON).ravel())
    panels = _density_panels(mixture, glob, adaptive, grid, density=False)
    vmax = max(p[1].max() for p in panels)  # log-density colour scale: the spreads differ by 60x
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6), subplot_kw={"projection": "mollweide"}, layout="constrained")
    lat_s, lon_s = unit_to_latlon(X)
    axes[0].scatter(np.radians(lon_s), np.radians(lat_s), s=2, c="k")
    axes[0].set_title(f"{X.shape[0]} samples", pad=14)
    for ax, (title, log_density) in zip(axes[1:], panels):
        mesh = ax.pcolormesh(LON, LAT, log_density.reshape(LAT.shape), shading="auto", cmap="magma",
                             vmin=vmax - 8, vmax=vmax)
        ax.set_title(title, pad=14)   # above the 75-degree latitude labels
    for ax in axes:
        ax.set_xticklabels([])
        ax.set_yticks(np.radians([-60, -30, 0, 30, 60]))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.colorbar(mesh, ax=list(axes[1:]), shrink=0.8, pad=0.01, label="log density (log 1/sr)")
    save_figure(fig, path, caption=CAPTIONS[path.name])


def _torus_figure(mixture, X, glob, adaptive, path, n_grid):
    g = np.linspace(-np.pi, np.pi, n_grid, endpoint=False) + np.pi / n_grid
    A, B = np.meshgrid(g, g, indexing="xy")
    grid = np.stack([A.ravel(), B.ravel()], axis=1)
    panels = _density_panels(mixture, glob, adaptive, grid, density=True)
    vmax = max(p[1].max() for p in panels)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), layout="constrained")
    axes[0].scatter(X[:, 0], X[:, 1], s=2, c="k")
    axes[0].set_title(f"{X.shape[0]} samples")
    for ax, (title, density) in zip(axes[1:], panels):
        image = ax.imshow(density.reshape(A.shape), origin="lower", extent=(-np.pi, np.pi, -np.pi, np.pi),
                          cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(title)
    for ax in axes:
        ax.set_xlim(-np.pi, np.pi)
        ax.set_ylim(-np.pi, np.pi)
        ax.set_aspect("equal")
        ax.set_xlabel("angle 1 (rad)")
    axes[0].set_ylabel("angle 2 (rad)")
    fig.colorbar(image, ax=list(axes[1:]), shrink=0.9, pad=0.01, label="density (1/rad$^2$)")
    save_figure(fig, path, caption=CAPTIONS[path.name])


def _selection_numbers(mixture, test, fit):
    """The numbers the held-out panel shows for one fit: the grid, scores and the selected time."""
    sel = fit.selection_
    best = int(np.argmax(sel.scores[:, 0]))
    return {"times": sel.times, "heldout_loglik": sel.scores[:, 0], "stderr": sel.stderr[:, 0],
            "selected_time": fit.time_, "best_heldout_loglik": sel.scores[best, 0],
            "true_mean_log_density": mixture.log_density(test).mean()}


def _heldout_figure(results, path):
    fig, axes = plt.subplots(1, len(results), figsize=(5.8 * len(results), 4.4), layout="constrained")
    numbers = {}
    for ax, (name, mixture, test, glob, adaptive) in zip(np.atleast_1d(axes), results):
        numbers[name] = {}
        for fit, label in ((glob, "global"), (adaptive, "adaptive (alpha = 1/2)")):
            sel, row = fit.selection_, _selection_numbers(mixture, test, fit)
            numbers[name][label.split()[0]] = row
            ax.errorbar(sel.times, sel.scores[:, 0], yerr=sel.stderr[:, 0], marker="o", ms=3, capsize=2,
                        label=f"{label}: best {row['best_heldout_loglik']:.2f} at t = {row['selected_time']:.2g}")
        truth = mixture.log_density(test).mean()
        ax.axhline(truth, color="k", ls="--", lw=1, label=f"true mixture (test): {truth:.2f}")
        ax.set_xscale("log")
        ax.set_xlabel("heat-kernel time t")
        ax.set_ylabel("held-out log-likelihood per point (nats)")
        best = max(glob.selection_.scores.max(), adaptive.selection_.scores.max())
        ax.set_ylim(best - 3.0, max(best, truth) + 0.5)
        ax.set_title(name)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    save_figure(fig, path, caption=CAPTIONS[path.name])
    return numbers


def make(out_dir, size="quick"):
    """Write the three RDKS figures into ``out_dir`` and their numbers into ``results.json``.

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
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = 250 if quick else 500
    n_grid = 45 if quick else 90
    sphere, torus = sphere_mixture(), torus_mixture()
    X_sphere, X_torus = sphere.sample(n, 0), torus.sample(n, 1)
    p_sphere = ManifoldBrownianMotion(Hypersphere(2))
    p_torus = ManifoldBrownianMotion(FlatTorus(2))
    fits_sphere = fit_selected(p_sphere, X_sphere, quick)
    fits_torus = fit_selected(p_torus, X_torus, quick)
    paths = [out / "riemannian_sphere.png", out / "riemannian_torus.png", out / "riemannian_heldout.png"]
    _sphere_figure(sphere, X_sphere, *fits_sphere, paths[0], n_grid)
    _torus_figure(torus, X_torus, *fits_torus, paths[1], n_grid)
    numbers = _heldout_figure([("S^2: vMF mixture", sphere, sphere.sample(2000, 2), *fits_sphere),
                               ("T^2: wrapped normal mixture", torus, torus.sample(2000, 3), *fits_torus)], paths[2])
    record_results(out, "riemannian", {
        "n_samples": n, "heldout": numbers,
        "paper": "arXiv 2406.09084 v1 shows RDKS qualitatively; no published number"})
    return paths
