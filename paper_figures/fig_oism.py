"""OISM on the torus (arXiv 2406.09084): the 1-D score figure and the 2-D toy likelihood table.

``make(out_dir, size="quick")`` writes

- ``oism_scores_1d.png`` (the paper's Figure 1): a 1-D Gaussian mixture wrapped on the circle
  ``[-pi, pi)`` under periodic Brownian motion (``dX = dW``, generator ``Delta / 2``): OISM score estimates
  with exact expectations ("OISM I"), with sample means and with James-Stein shrunk sample means,
  against the exact wrapped score (heat kernels of :class:`opdiff.manifolds.FlatTorus`), at several times;
- ``oism_toy_table.png`` (the paper's 2-D table, rebuttal version): held-out log-likelihood on
  2spirals, 8gaussians, pinwheel and checkerboard scaled into the torus ``[-pi, pi)^2``, for the six
  settings of :data:`SETTINGS`, ours beside the paper's numbers;
- ``oism_toy_samples.png``: samples of every setting by the probability-flow ODE from the uniform law.

Protocol, the same for every setting: one forward process (``ManifoldBrownianMotion(FlatTorus(2), 1)``,
``T = 13.8``), one train / test split per data set (the test points are never seen by any fit or time
selection); the held-out log-likelihood is the mean of ``log rho_t(x_test)`` at ``t = T_EVAL`` in nats, for
the density with respect to the Lebesgue measure on ``[-pi, pi)^2`` (the uniform law scores
``-log(4 pi^2) = -3.676``). OISM and the networks go through one route, :func:`opdiff.sampling.log_likelihood`
(the probability-flow ODE from ``T_EVAL`` to ``T``, Heun on a geometric grid, exact divergence: analytic for
OISM, vector-Jacobian products for the networks); DKS is a mixture of heat kernels, so its density is exact,
at the time picked by 5-fold held-out likelihood on the training set. The three trained settings share
the network, the seed (initial weights, batches, times and noise) and the total number of steps.

Network weights (checkpoints) and every evaluated number and sample are cached under
``out_dir/cache/oism``, keyed by the run size and its settings; delete that folder to recompute after a
change of the library.
"""
import pathlib
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import logsumexp, softmax  # noqa: E402

from opdiff.backend.threads import single_threaded_blas  # noqa: E402
from opdiff.datasets import make_toy  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.estimators.oism import OISM, IllConditionedWarning  # noqa: E402
from opdiff.manifolds import FlatTorus  # noqa: E402
from opdiff.neural import NeuralScoreModel  # noqa: E402
from opdiff.processes.manifold import ManifoldBrownianMotion  # noqa: E402
from opdiff.sampling import log_likelihood, sample_manifold_probability_flow  # noqa: E402
from opdiff.spectral import Fourier  # noqa: E402
from paper_figures import cache_dir, cached, check_size, fingerprint, record_results, save_figure  # noqa: E402

WEIGHTS = np.array([0.45, 0.35, 0.2])
MEANS = np.array([-2.2, 0.4, 2.7])
STDS = np.array([0.35, 0.5, 0.4])

#: The data sets of the table, by the paper's names, with the names of :func:`opdiff.datasets.make_toy`.
DATASETS = {"2spirals": "two_spirals", "8gaussians": "eight_gaussians", "pinwheel": "pinwheel",
            "checkerboard": "checkerboard"}
#: The columns of the table.
SETTINGS = ("OISM (H)", "OISM (L)", "OISM (L) + NN", "NN (pre-trained)", "NN-only", "DKS")
#: The trained settings (the same total number of steps each).
TRAINED = ("OISM (L) + NN", "NN (pre-trained)", "NN-only")
#: Held-out log-likelihood of arXiv 2406.09084 v2 (the 2-D table of the rebuttal): 20k steps for every
#: trained setting, 1k of them toward OISM (L) for "NN (pre-trained)". Checkerboard and DKS: not reported.
PAPER_TABLE = {
    "2spirals": {"OISM (H)": -2.262, "OISM (L)": -3.150, "OISM (L) + NN": -2.337, "NN (pre-trained)": -2.289,
                 "NN-only": -2.375},
    "8gaussians": {"OISM (H)": -2.036, "OISM (L)": -2.581, "OISM (L) + NN": -2.169, "NN (pre-trained)": -2.195,
                   "NN-only": -2.132},
    "pinwheel": {"OISM (H)": -1.576, "OISM (L)": -1.792, "OISM (L) + NN": -1.686, "NN (pre-trained)": -1.829,
                 "NN-only": -1.842},
}
#: Evaluation time of every held-out log-likelihood (except DKS, evaluated at its selected time).
T_EVAL = 0.01
#: Half-width the data are scaled to (their 99.5% quantile of ``|coordinate|``) before wrapping into ``[-pi, pi)``.
DATA_RADIUS = 2.8

#: Run sizes: data, bases, ODE steps and training (``nn_steps`` per trained setting; ``pretrain_steps`` of
#: them toward OISM (L), the paper's 1k of 20k).
CONFIG = {
    "test": dict(n_train=300, n_test=80, K_H=5, K_L=2, n_grid=16, flow_steps=10, nn_steps=240, pretrain_steps=12,
                 hidden=(64, 64), batch_size=128, lr=1e-2, n_samples=200, dks_times=6, K_1d=8),
    "quick": dict(n_train=2000, n_test=500, K_H=8, K_L=3, n_grid=32, flow_steps=24, nn_steps=800,
                  pretrain_steps=40, hidden=(128, 128), batch_size=256, lr=5e-3, n_samples=1500, dks_times=10,
                  K_1d=12),
    "full": dict(n_train=20000, n_test=2000, K_H=12, K_L=3, n_grid=64, flow_steps=64, nn_steps=20000,
                 pretrain_steps=1000, hidden=(256, 256, 256), batch_size=512, lr=1e-3, n_samples=4000, dks_times=16,
                 K_1d=24),
}

CAPTIONS = {
    "oism_scores_1d.png": (
        "Reproduces Figure 1 of arXiv 2406.09084: score of a 3-component Gaussian mixture wrapped on the circle "
        "[-pi, pi) under periodic Brownian motion at four times. Black: the exact wrapped score (heat kernels); "
        "dashed: OISM with exact expectations (OISM I); solid: OISM from sample means (N) and with James-Stein "
        "shrinkage (JS). Panel titles give the Fisher divergence of each to the exact score (weighted by rho_t); "
        "grey: the density rho_t (scaled)."),
    "oism_toy_table.png": (
        "Reproduces the 2-D table of arXiv 2406.09084 (rebuttal version): held-out log-likelihood (nats, higher is "
        "better) at t = 0.01 under periodic Brownian motion on the torus, this run (top) and the paper (bottom; "
        "20k steps, checkerboard and DKS not reported). OISM and the networks by one probability-flow ODE route "
        "(exact divergence), DKS exactly at its time selected by held-out likelihood. Our data scaling into the "
        "torus differs from the paper's, so absolute values are comparable only within a row."),
    "oism_toy_samples.png": (
        "Samples of every setting of the 2-D table of arXiv 2406.09084 on the torus [-pi, pi)^2: the "
        "probability-flow ODE integrated from the uniform law at t = T down to t = 0.01 (DKS: to its selected "
        "time), first column the held-out data."),
}


def _wrap(x):
    return np.mod(x + np.pi, 2 * np.pi) - np.pi




# ---------------------------------------------------------------------------------------------- Figure 1
def _wrapped_mixture_log_density_and_score(x, t, sigma=1.0):
    """Exact log-density and score at time ``t`` of the wrapped mixture: each component is the circle heat
    kernel at heat time ``(std^2 + sigma^2 t) / 2`` centred at its mean."""
    torus = FlatTorus(1)
    heat = 0.5 * (STDS**2 + sigma**2 * t)
    log_p, grad = torus.log_heat_kernel_and_gradient(x[:, None, :], MEANS[None, :, None], heat[None, :])
    log_joint = np.log(WEIGHTS) + log_p
    post = softmax(log_joint, axis=1)
    return logsumexp(log_joint, axis=1), np.einsum("nk,nkd->nd", post, grad)


def _mixture_sample(n, rng):
    k = rng.choice(len(WEIGHTS), size=n, p=WEIGHTS)
    return _wrap(MEANS[k] + STDS[k] * rng.standard_normal(n))[:, None]


def _exact_fourier_moments(basis):
    """``E[sqrt2 cos(k x)] = sqrt2 exp(-k^2 std^2 / 2) cos(k m)`` per component (characteristic function)."""
    out = np.zeros(basis.n_moments)
    out[0] = 1.0
    q = basis.moment_frequencies[:, 0]
    for w, m, s in zip(WEIGHTS, MEANS, STDS):
        damp = np.sqrt(2) * w * np.exp(-0.5 * (q * s) ** 2)
        out[1::2] += damp * np.cos(q * m)
        out[2::2] += damp * np.sin(q * m)
    return out[None]


def _score_panel(out_dir, cfg, rng):
    """The 1-D figure; returns its path and the Fisher divergences ``{time: {estimator: F}}``."""
    process = ManifoldBrownianMotion(FlatTorus(1), 1.0)
    K, n = cfg["K_1d"], 150
    times = (0.01, 0.05, 0.2, 1.0)
    basis = Fourier(1, K)
    X = _mixture_sample(n, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        models = {
            "OISM I (exact expectations)": OISM(process, basis, n_grid=48).fit_moments(_exact_fourier_moments(basis)),
            f"OISM, sample means (N={n})": OISM(process, basis, n_grid=48).fit(X),
            "OISM, James-Stein shrinkage": OISM(process, basis, shrinkage="james-stein", n_grid=48).fit(X),
        }
    grid = np.linspace(-np.pi, np.pi, 400, endpoint=False)[:, None]
    fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 4.2), layout="constrained")
    fisher = {}
    short = ("I", "N", "JS")
    for ax, t in zip(axes, times):
        log_p, exact = _wrapped_mixture_log_density_and_score(grid, t)
        density = np.exp(log_p)
        ax.plot(grid[:, 0], exact[:, 0], "k", lw=2, label="exact wrapped score")
        fisher[str(t)] = {}
        for (name, model), style in zip(models.items(), ("--", "-", "-")):
            est = model.score(grid, t)[:, 0]
            value = np.sum((est - exact[:, 0]) ** 2 * density) * (2 * np.pi / len(grid))
            fisher[str(t)][name] = float(value)
            ax.plot(grid[:, 0], est, style, lw=1.2, label=name)
        top = 1.5 * np.abs(exact).max()
        ax.set_ylim(-top, top)
        ax.set_xlim(-np.pi, np.pi)
        ax.fill_between(grid[:, 0], -top, -top + density / density.max() * 0.3 * top, color="0.85",
                        label=r"$\rho_t$ (scaled)")
        values = ", ".join(f"{k} {v:.2g}" for k, v in zip(short, fisher[str(t)].values()))
        ax.set_title(f"t = {t}\nFisher divergence: {values}", fontsize=8.5)
        ax.set_xlabel("x (angle)")
    axes[0].set_ylabel("score")
    handles, labels = axes[0].get_legend_handles_labels()
    labels = [f"{label} ({k})" if k else label for label, k in zip(labels, ("",) + short + ("",))]
    factor = float(models["OISM, James-Stein shrinkage"].shrinkage_factor_[0])
    legend = fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), fontsize=8, frameon=False,
                        title=f"1-D wrapped mixture under periodic Brownian motion, Fourier basis K={K} "
                              f"(James-Stein factor {factor:.2f})")
    legend.get_title().set_fontsize(9.5)
    path = save_figure(fig, pathlib.Path(out_dir) / "oism_scores_1d.png", caption=CAPTIONS["oism_scores_1d.png"])
    return path, {
        "fisher_divergence": fisher, "K": K, "n": n, "james_stein_factor": factor}


# ---------------------------------------------------------------------------------------------- 2-D table
def _toy_split(name, cfg, rng):
    """Train and test points of data set ``name`` scaled into the torus: ``(n_train, 2)``, ``(n_test, 2)``.

    The points are scaled so that the 99.5% quantile of ``|coordinate|`` of the training part is
    :data:`DATA_RADIUS`, then wrapped into ``[-pi, pi)`` (the rare outliers fold over, as under periodic BM).
    """
    data = make_toy(DATASETS[name], cfg["n_train"] + cfg["n_test"], rng=rng)
    scale = DATA_RADIUS / np.quantile(np.abs(data[: cfg["n_train"]]), 0.995)
    data = _wrap(data * scale)
    return data[: cfg["n_train"]], data[cfg["n_train"]:]


def _fit_oism(process, train, K, cfg):
    """OISM with the Fourier basis of maximal frequency ``K`` on ``train``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        return OISM(process, Fourier(2, K), n_grid=cfg["n_grid"]).fit(train)


def _fit_dks(process, train, cfg):
    """DKS with its time picked by 5-fold held-out log-likelihood on ``train``; returns ``(dks, time)``.

    The candidate times are log-spaced in ``[1e-3, 0.3]``
    (:meth:`~opdiff.estimators.DiffusionKernelSmoother.select_time`, refitted on all of ``train``).
    """
    dks = DiffusionKernelSmoother(process).select_time(train, times=np.geomspace(1e-3, 0.3, cfg["dks_times"]),
                                                       n_folds=5, rng=0)
    return dks, float(dks.time_)


def _pf_ode_samples(score, process, n, t_end, n_steps, rng):
    """``n`` draws by the probability-flow ODE (Heun, log-spaced times) from the uniform law at ``T`` to ``t_end``."""
    x = process.prior().sample(n, rng=rng)
    times = np.geomspace(process.t_max, t_end, n_steps + 1)
    trajectory = sample_manifold_probability_flow(score, x, times, process=process)
    return trajectory.x


def _cell(value):
    return "-" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _table_figure(out_dir, table, size, cfg, disagreements):
    """The table figure: this run (top) and the paper (bottom), best setting per row in bold."""
    names = list(table)
    fig, axes = plt.subplots(2, 1, figsize=(10.5, 4.6), gridspec_kw={"height_ratios": [len(names) + 1, 4]})
    blocks = ((f"This run ({size}: {cfg['nn_steps']} steps per trained setting, {cfg['pretrain_steps']} of them "
               f"toward OISM (L); n_train={cfg['n_train']}, n_test={cfg['n_test']}; OISM (H) K={cfg['K_H']}, "
               f"OISM (L) K={cfg['K_L']})", table, names),
              ("arXiv 2406.09084 (20k steps, 1k toward OISM (L))", PAPER_TABLE, list(PAPER_TABLE)))
    for ax, (title, values, rows) in zip(axes, blocks):
        ax.axis("off")
        cells = [[_cell(values[row].get(setting)) for setting in SETTINGS] for row in rows]
        shown = ax.table(cellText=cells, rowLabels=rows, colLabels=list(SETTINGS), loc="center", cellLoc="center")
        shown.auto_set_font_size(False)
        shown.set_fontsize(8)
        shown.scale(1.0, 1.35)
        for i, row in enumerate(rows):
            finite = {s: v for s, v in values[row].items() if v is not None and np.isfinite(v)}
            best = max(finite, key=finite.get)
            shown[i + 1, SETTINGS.index(best)].get_text().set_fontweight("bold")
        ax.set_title(title, fontsize=8.5)
    fig.suptitle("Held-out log-likelihood on the torus at t = 0.01 (nats, higher is better; bold: best per row)",
                 fontsize=10)
    extra = ("Disagreements with the paper at this size: " + "; ".join(disagreements) + ".") if disagreements \
        else "The orderings the paper reports hold in this run."
    return save_figure(fig, pathlib.Path(out_dir) / "oism_toy_table.png",
                       caption=CAPTIONS["oism_toy_table.png"] + " " + extra)


def _samples_figure(out_dir, tests, draws):
    """Rows: data sets; columns: held-out data, then the samples of every setting."""
    names = list(draws)
    columns = ("held-out data",) + SETTINGS
    fig, axes = plt.subplots(len(names), len(columns), figsize=(1.9 * len(columns), 1.95 * len(names) + 0.9),
                             squeeze=False)
    for i, name in enumerate(names):
        for j, column in enumerate(columns):
            ax = axes[i, j]
            points = tests[name] if j == 0 else draws[name][column]
            ax.scatter(points[:, 0], points[:, 1], s=0.6, alpha=0.5, color="k" if j == 0 else f"C{j - 1}",
                       rasterized=True)
            ax.set_xlim(-np.pi, np.pi)
            ax.set_ylim(-np.pi, np.pi)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(column, fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    return save_figure(fig, pathlib.Path(out_dir) / "oism_toy_samples.png", caption=CAPTIONS["oism_toy_samples.png"])


#: Differences of mean held-out log-likelihood below this (nats) are not called an ordering.
TIE = 0.01


def compare_with_paper(table):
    """The orderings of the paper's table that this run does not reproduce (a list of sentences).

    Parameters
    ----------
    table : dict
        ``{data set: {setting: held-out log-likelihood}}`` with the data sets and settings of :data:`PAPER_TABLE`.

    Returns
    -------
    list of str
        One sentence per disagreement: the best of the paper's settings differs, or one of the pairs the paper
        discusses (residual against OISM (L), pre-trained against NN-only, OISM (H) against OISM (L)) is
        ordered the other way, or tied (within :data:`TIE`) where the paper separates them.
    """
    out = []
    for name, paper in PAPER_TABLE.items():
        ours = table[name]
        best_paper = max(paper, key=paper.get)
        best_ours = max((s for s in paper), key=lambda s: ours[s])
        if best_ours != best_paper:
            out.append(f"{name}: best of the paper's settings is {best_ours}, the paper's {best_paper}")
        for a, b in (("OISM (L) + NN", "OISM (L)"), ("NN (pre-trained)", "NN-only"), ("OISM (H)", "OISM (L)")):
            gap, paper_gap = ours[a] - ours[b], paper[a] - paper[b]
            if abs(gap) <= TIE < abs(paper_gap):
                out.append(f"{name}: {a} ties {b} ({gap:+.3f}; paper {paper_gap:+.2f})")
            elif abs(gap) > TIE and (gap > 0) != (paper_gap > 0):
                out.append(f"{name}: {a} {'above' if gap > 0 else 'below'} {b} ({gap:+.2f}; paper {paper_gap:+.2f})")
    return out


def _train_networks(process, train, oism_L, cfg, cache, seed):
    """The three trained settings, the same network, seed, batches and total steps; ``{setting: model}``.

    Weights are checkpointed in ``cache`` (a complete checkpoint is loaded instead of retrained).
    """
    common = dict(hidden=cfg["hidden"], n_steps=cfg["nn_steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                  rng=seed)
    modes = {"OISM (L) + NN": dict(base=oism_L),
             "NN (pre-trained)": dict(pretrain=oism_L, pretrain_steps=cfg["pretrain_steps"]),
             "NN-only": {}}
    models = {}
    for label, mode in modes.items():
        path = cache / (label.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "plus") + ".npz")
        models[label] = NeuralScoreModel(process, checkpoint=str(path), **common, **mode).fit(train)
    return models


def _untrained_network(process, train, cfg, seed):
    """The initial network of :func:`_train_networks` (one Adam step of size 1e-12, no weight average)."""
    return NeuralScoreModel(process, hidden=cfg["hidden"], n_steps=1, batch_size=cfg["batch_size"], lr=1e-12,
                            rng=seed, ema_decay=None).fit(train)


def _held_out_log_likelihood(model, test, cfg):
    """Mean held-out ``log rho_t(x)`` at :data:`T_EVAL` by the PF-ODE with the exact divergence (OISM, networks)."""
    result = log_likelihood(model, test, t_min=T_EVAL, n_steps=cfg["flow_steps"], divergence="exact")
    return float(np.mean(result.log_likelihood))


def _toy_row(name, process, cfg, cache, seed):
    """One row of the table for data set ``name``: ``{"row", "draws", "test", "extras"}`` (cached)."""
    return cached(cache / f"evaluation_{fingerprint(cfg, T_EVAL, DATA_RADIUS, seed)}.npz",
                  lambda: _evaluate_toy(name, process, cfg, cache, seed))


def _evaluate_toy(name, process, cfg, cache, seed):
    """Fit, train and evaluate every setting on data set ``name`` (see :func:`_toy_row`)."""
    rng = np.random.default_rng(seed)
    train, test = _toy_split(name, cfg, rng)
    row, draws = {}, {}
    oism = {"OISM (H)": _fit_oism(process, train, cfg["K_H"], cfg),
            "OISM (L)": _fit_oism(process, train, cfg["K_L"], cfg)}
    for label, model in oism.items():
        row[label] = _held_out_log_likelihood(model, test, cfg)
        draws[label] = _pf_ode_samples(model.score, process, cfg["n_samples"], T_EVAL, cfg["flow_steps"], rng)
    networks = _train_networks(process, train, oism["OISM (L)"], cfg, cache, seed)
    for label, model in networks.items():
        row[label] = _held_out_log_likelihood(model, test, cfg)
        draws[label] = _pf_ode_samples(model.score, process, cfg["n_samples"], T_EVAL, cfg["flow_steps"], rng)
    dks, t_dks = _fit_dks(process, train, cfg)
    row["DKS"] = float(np.mean(dks.log_density(test, t_dks)))
    draws["DKS"] = _pf_ode_samples(dks.score, process, cfg["n_samples"], t_dks, cfg["flow_steps"], rng)
    untrained = _untrained_network(process, train, cfg, seed)
    extras = {"DKS time": t_dks, "DKS at t_eval": float(np.mean(dks.log_density(test, T_EVAL))),
              "OISM condition numbers": {label: float(np.max(model.condition_numbers_))
                                         for label, model in oism.items()},
              "untrained network": _held_out_log_likelihood(untrained, test, cfg),
              "held-out DSM loss": {label: model.dsm_loss(test, rng=seed, n_repeats=8) for label, model in
                                    list(networks.items()) + [("untrained network", untrained)]}}
    return {"row": {s: row[s] for s in SETTINGS}, "draws": draws, "test": test, "extras": extras}


def make(out_dir, size="quick"):
    """Write the OISM torus figures to ``out_dir`` and their numbers to ``results.json``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder of the PNGs and ``results.json``; network weights go to ``cache/oism`` below it.
    size : {"test", "quick", "full"}

    Returns
    -------
    list of pathlib.Path
    """
    cfg = CONFIG[check_size(size)]
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path_1d, numbers_1d = _score_panel(out_dir, cfg, np.random.default_rng(0))
    record_results(out_dir, "oism_scores_1d", numbers_1d)
    process = ManifoldBrownianMotion(FlatTorus(2), 1.0)
    table, draws, tests, extras = {}, {}, {}, {}
    for seed, name in enumerate(DATASETS, start=1):
        cache = cache_dir(out_dir, f"oism/toy_{size}_{name}")
        with single_threaded_blas():  # tiny matrices: BLAS threads only oversubscribe the cores
            evaluation = _toy_row(name, process, cfg, cache, seed)
        table[name], draws[name], tests[name] = evaluation["row"], evaluation["draws"], evaluation["test"]
        extras[name] = evaluation["extras"]
    disagreements = compare_with_paper(table)
    paths = [path_1d, _table_figure(out_dir, table, size, cfg, disagreements), _samples_figure(out_dir, tests, draws)]
    record_results(out_dir, "oism_toy_table", table)
    record_results(out_dir, "oism_toy_table_paper", PAPER_TABLE)
    record_results(out_dir, "oism_toy_table_details", {
        "t_eval": T_EVAL, "size": size, "config": cfg, "per_dataset": extras, "disagreements": disagreements,
        "route": "held-out mean log rho_t(x_test) on [-pi, pi)^2 at t_eval: OISM and networks by the PF-ODE "
                 "(exact divergence), DKS exactly at its validation-selected time"})
    for name, row in table.items():
        print(f"  {name:12s} " + "  ".join(f"{k}: {v:.3f}" for k, v in row.items()))
    return paths
