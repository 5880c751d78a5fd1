"""OISM figures: spectral score estimates under periodic Brownian motion.

``make(out_dir, size="quick")`` writes

- ``oism_scores_1d.png``: a 1-D Gaussian mixture wrapped on the circle ``[-pi, pi)`` under periodic
  Brownian motion (``dX = dW``, generator ``Delta / 2``): OISM score estimates with exact expectations
  ("OISM I"), with sample means, and with James-Stein shrunk sample means, against the exact wrapped
  score (heat kernels of :class:`opdiff.manifolds.FlatTorus`), at several times; the Fisher divergence
  of each estimate is in the legend;
- ``oism_loglik_toys.png``: held-out log-likelihood on the 2-D toys (two spirals, 8 gaussians,
  pinwheel, checkerboard) scaled into the torus, for OISM with a rich and a small Fourier basis
  (probability-flow ODE + instantaneous change of variables) and for the Riemannian DKS.
"""
import pathlib
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import logsumexp, softmax  # noqa: E402

from opdiff.datasets import make_toy  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.estimators.oism import OISM, IllConditionedWarning  # noqa: E402
from opdiff.manifolds import FlatTorus  # noqa: E402
from opdiff.processes.manifold import ManifoldBrownianMotion  # noqa: E402
from opdiff.spectral import Fourier  # noqa: E402
from paper_figures import check_size, save_figure  # noqa: E402

WEIGHTS = np.array([0.45, 0.35, 0.2])
MEANS = np.array([-2.2, 0.4, 2.7])
STDS = np.array([0.35, 0.5, 0.4])
TOYS = ("two_spirals", "eight_gaussians", "pinwheel", "checkerboard")


def wrap(x):
    return np.mod(x + np.pi, 2 * np.pi) - np.pi


def wrapped_mixture_log_density_and_score(x, t, sigma=1.0):
    """Exact log-density and score at time ``t`` of the wrapped mixture: each component is the circle heat
    kernel at heat time ``(std^2 + sigma^2 t) / 2`` centred at its mean."""
    torus = FlatTorus(1)
    heat = 0.5 * (STDS**2 + sigma**2 * t)
    log_p, grad = torus.log_heat_kernel_and_gradient(x[:, None, :], MEANS[None, :, None], heat[None, :])
    log_joint = np.log(WEIGHTS) + log_p
    post = softmax(log_joint, axis=1)
    return logsumexp(log_joint, axis=1), np.einsum("nk,nkd->nd", post, grad)


def mixture_sample(n, rng):
    k = rng.choice(len(WEIGHTS), size=n, p=WEIGHTS)
    return wrap(MEANS[k] + STDS[k] * rng.standard_normal(n))[:, None]


def exact_fourier_moments(basis):
    """``E[sqrt2 cos(k x)] = sqrt2 exp(-k^2 std^2 / 2) cos(k m)`` per component (characteristic function)."""
    out = np.zeros(basis.n_moments)
    out[0] = 1.0
    q = basis.moment_frequencies[:, 0]
    for w, m, s in zip(WEIGHTS, MEANS, STDS):
        damp = np.sqrt(2) * w * np.exp(-0.5 * (q * s) ** 2)
        out[1::2] += damp * np.cos(q * m)
        out[2::2] += damp * np.sin(q * m)
    return out[None]


def score_panel(out_dir, quick, rng):
    process = ManifoldBrownianMotion(FlatTorus(1), 1.0)
    K, n = (12, 150) if quick else (24, 150)
    times = (0.01, 0.05, 0.2, 1.0)
    basis = Fourier(1, K)
    X = mixture_sample(n, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        models = {
            "OISM I (exact expectations)": OISM(process, basis, n_grid=48).fit_moments(exact_fourier_moments(basis)),
            f"OISM, sample means (N={n})": OISM(process, basis, n_grid=48).fit(X),
            "OISM, James-Stein shrinkage": OISM(process, basis, shrinkage="james-stein", n_grid=48).fit(X),
        }
    grid = np.linspace(-np.pi, np.pi, 400, endpoint=False)[:, None]
    fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 3.2))
    for ax, t in zip(axes, times):
        log_p, exact = wrapped_mixture_log_density_and_score(grid, t)
        density = np.exp(log_p)
        ax.plot(grid[:, 0], exact[:, 0], "k", lw=2, label="exact wrapped score")
        for (name, model), style in zip(models.items(), ("--", "-", "-")):
            est = model.score(grid, t)[:, 0]
            fisher = np.sum((est - exact[:, 0]) ** 2 * density) * (2 * np.pi / len(grid))
            ax.plot(grid[:, 0], est, style, lw=1.2, label=f"{name}: F={fisher:.3g}")
        top = 1.5 * np.abs(exact).max()
        ax.set_ylim(-top, top)
        ax.fill_between(grid[:, 0], -top, -top + density / density.max() * 0.3 * top, color="0.85",
                        label=r"$\rho_t$ (scaled)")
        ax.set_title(f"t = {t}")
        ax.set_xlabel("x")
        ax.legend(fontsize=6, loc="upper right")
    axes[0].set_ylabel("score")
    fig.suptitle(f"1-D mixture under periodic Brownian motion, Fourier basis K={K} "
                 f"(JS factor {models['OISM, James-Stein shrinkage'].shrinkage_factor_[0]:.2f})", fontsize=9)
    path = pathlib.Path(out_dir) / "oism_scores_1d.png"
    save_figure(fig, path)
    return path




def held_out_loglik(quick, rng, t_eval=0.02):
    """Mean held-out log-likelihood ``log rho_t(x_test)`` per toy for OISM(H), OISM(L) and DKS."""
    n_train, n_test = (800, 150) if quick else (3000, 500)
    K_rich, K_small = (6, 2) if quick else (10, 3)
    process = ManifoldBrownianMotion(FlatTorus(2), 1.0)
    results = {}
    for name in TOYS:
        data = make_toy(name, n_train + n_test, rng=rng)
        data = wrap(data * (2.8 / np.quantile(np.abs(data), 0.995)))
        train, test = data[:n_train], data[n_train:]
        row = {}
        for label, K in ((f"OISM (H), K={K_rich}", K_rich), (f"OISM (L), K={K_small}", K_small)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", IllConditionedWarning)
                oism = OISM(process, Fourier(2, K), n_grid=24 if quick else 40).fit(train)
            row[label] = float(np.mean(oism.log_density(test, t_eval, n_steps=16 if quick else 32, progress=False)))
        dks = DiffusionKernelSmoother(process).fit(train)
        row["DKS"] = float(np.mean(dks.log_density(test, t_eval)))
        results[name] = row
    return results, t_eval


def loglik_panel(out_dir, quick, rng):
    results, t_eval = held_out_loglik(quick, rng)
    labels = list(next(iter(results.values())).keys())
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        vals = [results[name][label] for name in TOYS]
        bars = ax.bar(np.arange(len(TOYS)) + j * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(np.arange(len(TOYS)) + width * (len(labels) - 1) / 2)
    ax.set_xticklabels(TOYS)
    ax.set_ylabel(f"held-out log-likelihood at t={t_eval}")
    ax.set_title("2-D toys on the torus under periodic Brownian motion (higher is better)", fontsize=9)
    ax.legend(fontsize=7)
    path = pathlib.Path(out_dir) / "oism_loglik_toys.png"
    save_figure(fig, path)
    return path, results


def make(out_dir, size="quick"):
    """Write the OISM figures to ``out_dir``; returns the list of PNG paths."""
    quick = check_size(size) == "test"
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [score_panel(out_dir, quick, rng)]
    path, results = loglik_panel(out_dir, quick, rng)
    for name, row in results.items():
        print(f"  {name:16s} " + "  ".join(f"{k}: {v:.3f}" for k, v in row.items()))
    return paths + [path]
