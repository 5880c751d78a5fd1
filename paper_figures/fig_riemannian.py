"""Riemannian diffusion kernel smoothing (RDKS) as a density estimator on S^2 and T^2.

Three figures:

1. ``riemannian_sphere.png``: a von Mises-Fisher mixture on S^2 (Mollweide projection): true
   density, 500 samples, and the RDKS density at the held-out-selected time (global and adaptive);
2. ``riemannian_torus.png``: the same for a wrapped normal mixture on the flat torus T^2;
3. ``riemannian_heldout.png``: held-out log-likelihood (5-fold CV) against the time ``t``, global
   and adaptive (Abramson, exponent 1/2), with the true mixture's expected log-density.
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
from paper_figures import check_size, save_figure  # noqa: E402


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


def _sphere_figure(mixture, X, glob, adaptive, path, n_grid):
    lon = np.linspace(-np.pi, np.pi, 2 * n_grid)
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_grid)
    LON, LAT = np.meshgrid(lon, lat)
    grid = latlon_to_unit(np.degrees(LAT).ravel(), np.degrees(LON).ravel())
    panels = [("true density", mixture.log_density(grid)),
              (f"RDKS, t = {glob.time_:.3g}", glob.log_density(grid, glob.time_)),
              (f"adaptive RDKS, t = {adaptive.time_:.3g}", adaptive.log_density(grid, adaptive.time_))]
    vmax = max(p[1].max() for p in panels)  # log-density colour scale: the spreads differ by 60x
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4), subplot_kw={"projection": "mollweide"})
    lat_s, lon_s = unit_to_latlon(X)
    axes[0].scatter(np.radians(lon_s), np.radians(lat_s), s=2, c="k")
    axes[0].set_title(f"{X.shape[0]} samples")
    for ax, (title, log_density) in zip(axes[1:], panels):
        ax.pcolormesh(LON, LAT, log_density.reshape(LAT.shape), shading="auto", cmap="magma", vmin=vmax - 8, vmax=vmax)
        ax.set_title(f"{title} (log)")
    for ax in axes:
        ax.set_xticklabels([])
        ax.grid(alpha=0.3)
    save_figure(fig, path)


def _torus_figure(mixture, X, glob, adaptive, path, n_grid):
    g = np.linspace(-np.pi, np.pi, n_grid, endpoint=False) + np.pi / n_grid
    A, B = np.meshgrid(g, g, indexing="xy")
    grid = np.stack([A.ravel(), B.ravel()], axis=1)
    panels = [("true density", mixture.log_density(grid)),
              (f"RDKS, t = {glob.time_:.3g}", glob.log_density(grid, glob.time_)),
              (f"adaptive RDKS, t = {adaptive.time_:.3g}", adaptive.log_density(grid, adaptive.time_))]
    vmax = max(np.exp(p[1]).max() for p in panels)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    axes[0].scatter(X[:, 0], X[:, 1], s=2, c="k")
    axes[0].set_title(f"{X.shape[0]} samples")
    for ax, (title, log_density) in zip(axes[1:], panels):
        ax.imshow(np.exp(log_density).reshape(A.shape), origin="lower", extent=(-np.pi, np.pi, -np.pi, np.pi),
                  cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(title)
    for ax in axes:
        ax.set_xlim(-np.pi, np.pi)
        ax.set_ylim(-np.pi, np.pi)
        ax.set_aspect("equal")
    save_figure(fig, path)


def _heldout_figure(results, path):
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8))
    for ax, (name, mixture, test, glob, adaptive) in zip(np.atleast_1d(axes), results):
        for fit, label in ((glob, "global"), (adaptive, "adaptive (alpha = 1/2)")):
            sel = fit.selection_
            ax.errorbar(sel.times, sel.scores[:, 0], yerr=sel.stderr[:, 0], marker="o", ms=3, capsize=2, label=label)
        ax.axhline(mixture.log_density(test).mean(), color="k", ls="--", lw=1, label="true mixture (test)")
        ax.set_xscale("log")
        ax.set_xlabel("time t")
        ax.set_ylabel("held-out log-likelihood per point")
        best = max(glob.selection_.scores.max(), adaptive.selection_.scores.max())
        ax.set_ylim(best - 3.0, best + 0.5)
        ax.set_title(name)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def make(out_dir, size="quick"):
    """Write the three figures into ``out_dir``; returns their paths."""
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
    _heldout_figure([("S^2: vMF mixture", sphere, sphere.sample(2000, 2), *fits_sphere),
                     ("T^2: wrapped normal mixture", torus, torus.sample(2000, 3), *fits_torus)], paths[2])
    return paths
