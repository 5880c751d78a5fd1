"""SAGD (arXiv 2510.09660) on the 8 x 8 digits with trained networks: the power-law exponent sweep against the
isotropic baseline (Table 1 / Fig. 3), and selective omission of a corrupted frequency band (Table 2 / Fig. 5).

Each model is the same MLP (same initial weights and batches) trained with the paper's loss, the
coloured-noise prediction ``|eps_w - eps_theta(x_t, t)|^2`` with ``x_t = a_t x_0 + sigma_t Sigma_w^{1/2} xi``,
and sampled by DDIM (``eta = 0``, :func:`opdiff.sampling.sample_ddim`) from the process's own prior
``N(0, Sigma_w)``. Sample quality is the Frechet distance on the features of the fixed digits classifier
(:func:`opdiff.metrics.frechet_digits_distance`; the paper's FID is on Inception features: the scales differ,
the comparisons between models are the point), with its bootstrap standard error
(:func:`opdiff.metrics.frechet_standard_error`): the figures draw 2 standard errors and say when a
difference between two models is within twice their combined standard error.

Selective omission: the training digits are corrupted inside the band ``[0.4, 0.5]`` cycles/pixel (Fig. 5 of
the paper), ``x' = x + eps_[0.4, 0.5]``; the isotropic model learns the corruption, the band-omitting
bpm-SAGD (no forward noise in the band, ``(0, 0.399)`` and ``(0.501, 1)`` noised) cannot generate it.

``make(out_dir, size="quick")`` writes ``sagd_exponent_sweep.png`` and ``sagd_omission.png`` and the tables
``sagd_exponent_sweep`` and ``sagd_omission`` to ``results.json``.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.datasets import load_digits_images  # noqa: E402
from opdiff.datasets.images import corrupt_band  # noqa: E402
from opdiff.metrics import DigitsClassifier  # noqa: E402
from opdiff.neural import MLP  # noqa: E402
from opdiff.processes import SpectralAnisotropic  # noqa: E402
from opdiff.sampling import sample_ddim  # noqa: E402
from paper_figures import cache_dir, record_results, save_figure  # noqa: E402
from paper_figures._digits import (SIZES, differ, digits_split, fingerprint_of, image_rows, merged_legend,  # noqa: E402
                                   note, output_folder, sample_distance, train)

SHAPE = (1, 8, 8)
#: Exponents of the sweep per run size (0 is the isotropic baseline).
EXPONENTS = {"test": (-0.08, 0.0, 0.08), "quick": (-0.08, -0.04, 0.0, 0.04, 0.08),
             "full": (-0.08, -0.06, -0.04, -0.02, -0.01, 0.0, 0.01, 0.02, 0.04, 0.06, 0.08)}
#: MNIST column of Table 1 of arXiv 2510.09660 (FID on the 768-d Inception block, mean over seeds).
PAPER_MNIST_FID = {-0.08: 0.31, -0.06: 0.28, -0.04: 0.31, -0.02: 0.37, -0.01: 0.37, 0.0: 0.42, 0.01: 0.43,
                   0.02: 0.47, 0.04: 0.56, 0.06: 0.65, 0.08: 0.78}
#: The corrupted band (cycles per pixel) and the paper's Table 2 row for it (MNIST FID).
CORRUPTION_BAND = (0.4, 0.5)
PAPER_OMISSION_FID = {"isotropic": 3.4281, "band-omitting SAGD": 2.9218}
T_END = 1e-3

CAPTIONS = {
    "sagd_exponent_sweep.png": (
        "Analogue of Table 1 / Fig. 3 of arXiv 2510.09660 (SAGD) on the 8 x 8 digits: Frechet distance "
        "(features of a fixed digits classifier; lower is better) between DDIM samples and the digits, for "
        "power-law SAGD w(f) = (|f| + 1e-10)^alpha at each exponent alpha (alpha = 0: the isotropic baseline), "
        "the same MLP trained by coloured-noise prediction for each (bars: 2 bootstrap standard errors of the "
        "distance); right axis: the paper's MNIST FID "
        "(Inception 768-d block). Right: samples, one row per exponent, under a row of training digits."),
    "sagd_omission.png": (
        "Analogue of Table 2 / Fig. 5 of arXiv 2510.09660 (selective omission) on the 8 x 8 digits: the training "
        "digits are corrupted inside the band [0.4, 0.5] cycles/pixel. Left: rows of clean digits, corrupted "
        "training digits, samples of the isotropic model and of band-omitting bpm-SAGD (no forward noise in the "
        "band). Middle: Frechet distance of the samples to the clean digits (ours) beside the paper's MNIST FID "
        "for this band. Right: fraction of the image energy inside the band (log scale)."),
}


class ColouredNoiseModel:
    """An MLP predicting the coloured noise ``eps_w = Sigma_w^{1/2} xi`` of a SAGD process (the paper's loss).

    Parameters
    ----------
    process : SpectralAnisotropic
    hidden : tuple of int
    seed : int
    """

    def __init__(self, process, hidden, seed):
        self.process = process
        self.network = MLP(process.dim, hidden, rng=seed)
        self.root = process.covariance.cholesky()

    def step_function(self, X, batch_size, t_min=T_END):
        """The training step on flat images ``X (n, 64)``.

        Parameters
        ----------
        X : (n, D) array
        batch_size : int
        t_min : float

        Returns
        -------
        callable
            ``step(network, step, rng) -> loss``.
        """
        schedule = self.process.schedule

        def step(network, _, rng):
            x0 = X[rng.integers(X.shape[0], size=batch_size)]
            t = rng.uniform(t_min, self.process.t_max, size=batch_size)
            a, s = schedule.scale(t)[:, None], schedule.noise_level(t)[:, None]
            noise = self.root.apply(rng.standard_normal(x0.shape))
            predicted = network.forward(a * (x0 + s * noise), np.log(s[:, 0]))
            residual = predicted - noise
            network.backward(2.0 * residual / batch_size)
            return float(np.mean(np.sum(residual**2, axis=1)))

        return step

    def score_of(self, network):
        """``score(x, t) = -(1 / (a s)) Sigma_w^+ eps_hat`` (pseudo-inverse on an omitted band).

        Parameters
        ----------
        network : MLP

        Returns
        -------
        callable
        """
        schedule = self.process.schedule

        def score(x, t):
            a, s = float(schedule.scale(t)), float(schedule.noise_level(t))
            eps_hat = network.forward(x, np.full(x.shape[0], np.log(s)))
            return -self.process.covariance.solve(eps_hat) / (a * s)

        return score


def train_and_sample(label, process, X, size, cache, seed=0):
    """Train on flat images ``X`` and return ``(samples (n_samples, 64), final loss)``."""
    model = ColouredNoiseModel(process, size["hidden"], seed)
    loop = train(model.network, model.step_function(X, size["batch_size"]), size["n_steps"],
                 cache / f"{label}.npz", fingerprint_of(f"sagd-{label}", process, X, size), seed)
    rng = np.random.default_rng(seed + 7)
    start = process.prior().sample(size["n_samples"], process.dim, rng=rng)
    times = np.linspace(process.t_max, T_END, size["n_sampler"])
    samples = sample_ddim(model.score_of(loop.average), start, times, process=process).x
    return samples, float(np.mean(loop.losses[-20:]))


def exponent_sweep(size_name, out, classifier):
    """``{alpha: {"distance", "distance_standard_error"}}`` and the sample rows."""
    size = SIZES[size_name]
    X = digits_split(size["n_train"], size["n_test"])[0].reshape(-1, 64)
    reference = load_digits_images().reshape(-1, 64)
    cache = cache_dir(out, "sagd")
    measured, rows = {}, {}
    for alpha in EXPONENTS[size_name]:
        process = SpectralAnisotropic.power_law(SHAPE, alpha)
        samples, _ = train_and_sample(f"alpha{alpha:+.3f}", process, X, size, cache)
        measured[alpha] = sample_distance(samples, reference, classifier)
        rows[alpha] = samples
    return measured, rows, X


def omission(size_name, out, classifier):
    """``{model: {"distance", "distance_standard_error", "band_energy"}}`` for the isotropic and band-omitting
    models, and the images."""
    size = SIZES[size_name]
    clean = digits_split(size["n_train"], size["n_test"])[0]
    corrupted = corrupt_band(clean, CORRUPTION_BAND, 1.0, rng=11).reshape(-1, 64)
    reference = load_digits_images().reshape(-1, 64)
    cache = cache_dir(out, "sagd")
    low, high = CORRUPTION_BAND
    models = {"isotropic": SpectralAnisotropic.power_law(SHAPE, 0.0),
              "band-omitting SAGD": SpectralAnisotropic.two_band(SHAPE, 0.5, (0.0, low - 1e-3), 0.5,
                                                                 (high + 1e-3, 1.0))}
    band = ~models["band-omitting SAGD"].covariance.mask
    measure = models["band-omitting SAGD"].covariance

    def band_energy(x):
        return float(np.mean(measure.band_energy(x, mask=band) / measure.band_energy(x, mask=np.ones_like(band))))

    table, images = {}, {"clean digits": clean.reshape(-1, 64), "corrupted (training)": corrupted}
    for name, process in models.items():
        samples, _ = train_and_sample(f"omission-{name.split()[0]}", process, corrupted, size, cache)
        table[name] = dict(sample_distance(samples, reference, classifier), band_energy=band_energy(samples))
        images[name] = samples
    references = {name: dict(sample_distance(images[name], reference, classifier),
                             band_energy=band_energy(images[name])) for name in ("clean digits", "corrupted (training)")}
    return table, references, images


def make(out_dir, size="quick"):
    """Train, sample, measure and plot; returns the written PNG paths.

    Parameters
    ----------
    out_dir : str or pathlib.Path
    size : {"test", "quick", "full"}

    Returns
    -------
    list of str
    """
    size, out = output_folder(out_dir, size)
    classifier = DigitsClassifier.load(cache_dir(out, "frechet_classifier"))
    measured, rows, X = exponent_sweep(size, out, classifier)
    alphas = sorted(measured)
    distances = {a: measured[a]["distance"] for a in alphas}
    errors = {a: measured[a]["distance_standard_error"] for a in alphas}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.0, 1.2]})
    axes[0].errorbar(alphas, [distances[a] for a in alphas], yerr=[2 * errors[a] for a in alphas], fmt="o-",
                     color="tab:blue", capsize=3, label="ours (8x8 digits), 2 bootstrap s.e.")
    axes[0].axhline(distances[0.0], color="tab:blue", ls=":", label="ours, isotropic baseline")
    axes[0].set(xlabel="power-law exponent alpha", ylabel="Frechet distance (digits classifier)",
                title="SAGD exponent sweep")
    twin = axes[0].twinx()
    paper = sorted(PAPER_MNIST_FID)
    twin.plot(paper, [PAPER_MNIST_FID[a] for a in paper], "s--", color="tab:orange", label="paper, MNIST FID")
    twin.set_ylabel("paper's FID (Inception 768-d)", color="tab:orange")
    best = min(distances, key=distances.get)
    agree = "agrees" if best < 0 else "disagrees"
    resolved = best == 0.0 or differ(distances[best], distances[0.0], errors[best], errors[0.0])
    note(axes[0], f"our best alpha: {best:+.2f}; the paper's MNIST best: -0.06\n"
                  f"(negative alpha better): ours {agree}"
                  + ("" if resolved else f"\nbut alpha {best:+.2f} and the baseline are within 2 s.e.")
                  + "".join(f"\nalpha {a:+.2f}: {'worse than' if distances[a] > distances[0.0] else 'better than'}"
                            f" the baseline beyond 2 s.e." if differ(distances[a], distances[0.0], errors[a], errors[0.0])
                            else f"\nalpha {a:+.2f}: within 2 s.e. of the baseline" for a in alphas if a != 0.0))
    merged_legend(axes[0], twin, bbox_to_anchor=(0.0, -0.14), ncol=3)
    image_rows([X] + [rows[a] for a in alphas], ["training"] + [f"alpha {a:+.2f}" for a in alphas], axes[1])
    axes[1].set_title("DDIM samples per exponent")
    fig.tight_layout()
    sweep_path = save_figure(fig, out / "sagd_exponent_sweep.png", caption=CAPTIONS["sagd_exponent_sweep.png"])
    record_results(out, "sagd_exponent_sweep", {f"{a:+.3f}": distances[a] for a in alphas})

    table, references, images = omission(size, out, classifier)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.0), gridspec_kw={"width_ratios": [1.6, 0.8, 0.8]})
    image_rows(list(images.values()), list(images), axes[0])
    axes[0].set_title(f"corruption band {CORRUPTION_BAND} cycles/pixel")
    names = list(table)
    positions = np.arange(len(names))
    axes[1].bar(positions - 0.2, [table[n]["distance"] for n in names], 0.4, label="ours (Frechet, classifier)",
                yerr=[2 * table[n]["distance_standard_error"] for n in names], capsize=3)
    twin = axes[1].twinx()
    twin.bar(positions + 0.2, [PAPER_OMISSION_FID[n] for n in names], 0.4, color="tab:orange",
             label="paper, MNIST FID")
    twin.set_ylabel("paper's FID", color="tab:orange")
    axes[1].set(xticks=positions, xticklabels=["isotropic", "band-omitting\nSAGD"],
                ylabel="Frechet distance to clean digits", title="distance to the clean digits")
    merged_legend(axes[1], twin, bbox_to_anchor=(0.0, -0.2))
    sagd, isotropic = table["band-omitting SAGD"], table["isotropic"]
    wins = sagd["distance"] < isotropic["distance"]
    beyond = differ(sagd["distance"], isotropic["distance"], sagd["distance_standard_error"],
                    isotropic["distance_standard_error"])
    note(axes[1], "SAGD closer: " + ("yes, as in the paper" if wins else "no, unlike the paper")
         + ("" if beyond else "\n(within 2 s.e.)"))
    energy_names = list(references) + names
    values = [({**references, **table})[n]["band_energy"] for n in energy_names]
    floor = 1e-34  # exact zeros (no forward noise in the band) drawn at the floor of the log axis
    axes[2].bar(np.arange(len(energy_names)), [max(v, floor) for v in values],
                color=["0.6", "0.3", "tab:blue", "tab:green"])
    for k, v in enumerate(values):
        axes[2].text(k, max(v, floor) * 3, f"{v:.1e}", ha="center", va="bottom", fontsize=7)
    axes[2].set(yscale="log", xticks=np.arange(len(energy_names)), ylabel="energy fraction in the band",
                title="energy left in the corrupted band", ylim=(floor / 10, 1e3))
    axes[2].set_xticklabels(["clean", "corrupted", "isotropic", "SAGD"], fontsize=8)
    fig.tight_layout()
    omission_path = save_figure(fig, out / "sagd_omission.png", caption=CAPTIONS["sagd_omission.png"])
    record_results(out, "sagd_omission", table)
    record_results(out, "sagd_details", {
        "paper_mnist_fid_table_1": {f"{a:+.3f}": v for a, v in PAPER_MNIST_FID.items()},
        "paper_omission_fid_band_0.4_0.5": PAPER_OMISSION_FID, "omission_references": references,
        "best_exponent_ours": best, "exponent_sweep_standard_error": {f"{a:+.3f}": errors[a] for a in alphas},
        "classifier_test_accuracy": classifier.test_accuracy, "size": size})
    return [str(sweep_path), str(omission_path)]


if __name__ == "__main__":
    print(make("figures"))
