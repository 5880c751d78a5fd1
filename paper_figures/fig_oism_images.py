"""OISM on images (arXiv 2406.09084, Figure 3 left and the image tables): DSM against OISM-residual U-Nets.

``make(out_dir, size="quick")`` trains, on the built-in 8 x 8 digits and on 16 x 16 grey natural-image
patches, the same small U-Net (same initial weights, same batches, times and noise) under the
Ornstein-Uhlenbeck process ``dX = -X dt + sqrt(2) dW`` (the VP process in its own time):

- ``DSM``: the plain network, ``s = s_theta`` (the paper's DDPM baseline);
- ``OISM(K) residual`` for ``K = 3, 9``: ``s = s_OISM + s_theta`` with ``s_OISM`` the closed-form OISM score of
  the Hermite product basis of per-pixel degree ``K`` (:class:`opdiff.spectral.Hermite`, ``kind="product"``),
  the network trained by DSM on the residual,

and writes

- ``oism_image_training.png``: training loss (noise-prediction DSM, moving average) against steps and
  against wall time, the held-out DSM loss every few steps, and the final held-out DSM loss and bits/dim;
- ``oism_image_samples.png``: probability-flow samples of every model (rows labelled) beside training images.

All images are uniformly dequantised (one grey level of noise), for training, the OISM moments and the
held-out evaluation. Wall time is measured by training in segments through the checkpoint (a resumed run
is bit-identical to an uninterrupted one), so the curve's time axis is the measured time at each segment's
end. Bits/dim: the probability-flow ODE likelihood with Hutchinson's divergence estimator (plus the exact
OISM divergence in residual mode) of the held-out images.
"""
import json
import pathlib
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.backend.threads import single_threaded_blas  # noqa: E402
from opdiff.datasets import load_digits_images, load_natural_patches  # noqa: E402
from opdiff.datasets.images import DIGITS_LEVELS  # noqa: E402
from opdiff.estimators.oism import OISM  # noqa: E402
from opdiff.neural import NeuralScoreModel, UNet  # noqa: E402
from opdiff.processes import OrnsteinUhlenbeck  # noqa: E402
from opdiff.sampling import VEDenoiser, edm_sigmas, sample_heun  # noqa: E402
from opdiff.spectral import Hermite  # noqa: E402
from paper_figures import cache_dir, cached, check_size, fingerprint, record_results, save_figure  # noqa: E402

#: The models compared (Hermite degree of the OISM base, None for plain DSM).
MODELS = {"DSM": None, "OISM(3) residual": 3, "OISM(9) residual": 9}
#: Bits/dim of arXiv 2406.09084 (rebuttal image table, without PCA; DDPM is the DSM baseline).
PAPER_BITS_PER_DIM = {"CIFAR-10": {"DSM": 2.95, "OISM(3) residual": 2.95, "OISM(9) residual": 3.56},
                      "ImageNet 32x32": {"DSM": 3.59, "OISM(3) residual": 3.59, "OISM(9) residual": 3.99}}

#: Run sizes: images, U-Net width, steps (in ``segments`` timed segments), batch, evaluation; the 16 x 16
#: patches override some of them (``"patches"``: four times the pixels of the digits per image).
CONFIG = {
    "test": dict(n_train=120, n_test=12, base_width=8, n_steps=24, segments=3, batch_size=16, lr=2e-3,
                 n_samples=6, ode_steps=10, likelihood_steps=10, n_patches=200, patches=dict(n_steps=12, segments=2)),
    "quick": dict(n_train=1500, n_test=100, base_width=16, n_steps=300, segments=10, batch_size=48, lr=2e-3,
                  n_samples=10, ode_steps=24, likelihood_steps=16, n_patches=3000,
                  patches=dict(n_steps=160, segments=8, batch_size=24)),
    "full": dict(n_train=1697, n_test=100, base_width=32, n_steps=20000, segments=40, batch_size=128, lr=2e-4,
                 n_samples=16, ode_steps=64, likelihood_steps=48, n_patches=50000, patches=dict(n_train=20000)),
}


def _dataset_config(cfg, name):
    """The settings of ``cfg`` for data set ``name`` (``"digits"`` or ``"patches"``) with its overrides."""
    out = {key: value for key, value in cfg.items() if key != "patches"}
    if name == "patches":
        out.update(cfg["patches"])
    return out


CAPTIONS = {
    "oism_image_training.png": (
        "Reproduces Figure 3 (left) of arXiv 2406.09084 and the bits/dim column of its image tables on small "
        "built-in data: the same U-Net (same initial weights, batches and noise) trained by DSM alone and as a "
        "residual on top of the OISM score of the Hermite product basis (per-pixel degree 3 and 9), "
        "Ornstein-Uhlenbeck forward process. Columns: training loss (noise-prediction DSM, moving average) "
        "against steps, the same against measured wall time, held-out DSM loss during training, and the final "
        "held-out DSM loss and bits/dim (PF-ODE likelihood, Hutchinson divergence; paper: CIFAR-10 "
        "2.95 / 2.95 / 3.56)."),
    "oism_image_samples.png": (
        "Probability-flow ODE samples (Heun, from N(0, I) at t = T) of the three models of the image "
        "experiment of arXiv 2406.09084, one row per model, beside training images (top row)."),
}


def _image_data(name, cfg, rng):
    """``(train, test, levels, data_range)``: images ``(n, 1, H, W)`` in ``[-1, 1]``.

    ``levels`` is the number of grey levels (17 for the digits, 256 for the photographs' patches, whose
    luma is not integer-valued: the 256 levels are then the usual convention) and ``data_range`` the
    range of the dequantised data, ``[-1, 1 + bin)``.
    """
    n = cfg["n_train"] + cfg["n_test"]
    if name == "digits":
        X = load_digits_images(n=n, rng=rng)
        levels = DIGITS_LEVELS
    else:
        X = load_natural_patches(max(n, cfg["n_patches"]), size=16, rng=rng)[:n]
        levels = 256
    order = rng.permutation(X.shape[0])
    X = X[order]
    return X[: cfg["n_train"]], X[cfg["n_train"]: n], levels, (-1.0, 1.0 + 2.0 / (levels - 1))


def _dequantise(images, levels, rng):
    """Uniform dequantisation ``x + U(0, 2 / (levels - 1))`` (one grey level of ``[-1, 1]``)."""
    return images + rng.uniform(0.0, 2.0 / (levels - 1), size=images.shape)


def _train_model(label, process, train, base, cfg, cache, seed):
    """Train one model in timed segments (resuming its checkpoint); returns ``(model, record)``.

    ``record`` holds the steps, wall-clock seconds and process CPU seconds at the end of each segment,
    measured when the segment actually ran (read back from ``cache`` when every segment was already there).
    On a shared machine the wall time also counts the other processes; the CPU time does not.
    """
    stem = cache / label.replace("(", "").replace(")", "").replace(" ", "_")
    record_path = stem.with_suffix(".json")
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    network = UNet(train.shape[1], base_width=cfg["base_width"], levels=2, rng=seed, dtype=train.dtype)
    ends = np.linspace(0, cfg["n_steps"], cfg["segments"] + 1).astype(int)[1:]
    seconds, cpu_seconds, elapsed, cpu = [], [], 0.0, 0.0
    for end in ends:
        model = NeuralScoreModel(process, architecture=network, n_steps=int(end), batch_size=cfg["batch_size"],
                                 lr=cfg["lr"], rng=seed, base=base, validation_fraction=0.1,
                                 validation_every=max(1, cfg["n_steps"] // cfg["segments"]),
                                 checkpoint=str(stem.with_suffix(".npz")))
        start, start_cpu = time.perf_counter(), time.process_time()
        model.fit(train)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        seconds.append(elapsed)
        cpu_seconds.append(cpu)
    if record is None or model.n_steps_trained_ > 0:
        record = {"steps": ends.tolist(), "seconds": seconds, "cpu_seconds": cpu_seconds}
        record_path.write_text(json.dumps(record))
    return model, record


def _sample_images(model, process, shape, n, n_steps, rng):
    """``n`` probability-flow samples ``(n, *shape)`` clipped to ``[-1, 1]`` (Heun in the VE form, EDM levels)."""
    denoiser = VEDenoiser(process, model)
    sigmas = edm_sigmas(n_steps, sigma_min=float(process.noise_level(1e-3)), sigma_max=denoiser.sigma_max)
    start = denoiser.sigma_max * rng.standard_normal((n, int(np.prod(shape))))
    trajectory = sample_heun(denoiser, start, sigmas)
    final = trajectory.x
    return np.clip(final, -1.0, 1.0).reshape((n,) + tuple(shape))


def _initial_network_loss(process, train, test, cfg, seed):
    """Held-out DSM loss of the untrained U-Net (the plain model after one Adam step of size 1e-12)."""
    network = UNet(train.shape[1], base_width=cfg["base_width"], levels=2, rng=seed, dtype=train.dtype)
    model = NeuralScoreModel(process, architecture=network, n_steps=1, batch_size=cfg["batch_size"], lr=1e-12,
                             rng=seed, ema_decay=None)
    return model.fit(train).dsm_loss(test, rng=seed + 2, n_repeats=4)


def _run_dataset(name, cfg, cache, seed):
    """Numbers and images of data set ``name``: ``{"results", "images"}`` (cached: a second run only plots)."""
    return cached(cache / f"evaluation_{fingerprint(cfg, seed)}.npz", lambda: _evaluate_dataset(name, cfg, cache, seed))


def _evaluate_dataset(name, cfg, cache, seed):
    """Train and evaluate every model of :data:`MODELS` on data set ``name`` (see :func:`_run_dataset`)."""
    rng = np.random.default_rng(seed)
    train, test, levels, data_range = _image_data(name, cfg, rng)
    # every model trains on one uniform dequantisation of the training images (a continuous law, so that
    # the Hermite moments of always-black pixels are not those of a point mass), in float32 (kept by opdiff)
    train = _dequantise(train, levels, rng).astype(np.float32)
    test = _dequantise(test, levels, rng).astype(np.float32)
    flat = train.reshape(train.shape[0], -1).astype(np.float64)
    process = OrnsteinUhlenbeck()
    results = {"untrained network held-out DSM loss": _initial_network_loss(process, train, test, cfg, seed)}
    images = {}
    for label, degree in MODELS.items():
        base = None
        if degree is not None:
            base = OISM(process, Hermite(flat.shape[1], degree, kind="product"), ridge=1e-6).fit(flat)
        model, timing = _train_model(label, process, train, base, cfg, cache, seed)
        loss = model.dsm_loss(test, rng=seed + 2, n_repeats=4)
        bpd = model.bits_per_dim(test, data_range=data_range, n_levels=levels, divergence="hutchinson",
                                 n_probes=1, n_steps=cfg["likelihood_steps"], rng=seed + 3)
        images[label] = _sample_images(model, process, train.shape[1:], cfg["n_samples"], cfg["ode_steps"],
                                      np.random.default_rng(seed + 4))
        tail = model.losses_[-max(1, len(model.losses_) // 10):]
        results[label] = {
            "held_out_dsm_loss": loss, "bits_per_dim": float(np.mean(bpd)),
            "bits_per_dim_standard_error": float(np.std(bpd, ddof=1) / np.sqrt(bpd.size)),
            "final_training_loss": float(np.mean(tail)), "training_loss": model.losses_,
            "validation_steps": model.validation_steps_, "validation_loss": model.validation_losses_,
            "segment_steps": timing["steps"], "segment_seconds": timing["seconds"],
            "segment_cpu_seconds": timing["cpu_seconds"],
            "seconds_per_step": timing["seconds"][-1] / timing["steps"][-1],
            "cpu_seconds_per_step": timing["cpu_seconds"][-1] / timing["steps"][-1],
            "worst_condition_number": None if base is None else float(np.max(base.condition_numbers_)),
        }
    images["training images"] = train[: cfg["n_samples"]]
    results["grey levels"], results["dimension"] = levels, int(flat.shape[1])
    return {"results": results, "images": images}


def _moving_average(values, width):
    """Trailing moving average of ``values (n,)`` over ``width`` steps (shorter at the start); ``(n,)``."""
    values = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(1, values.size + 1)
    low = np.maximum(index - width, 0)
    return (cumulative[index] - cumulative[low]) / (index - low)


def _training_figure(out_dir, results, settings):
    """Loss against steps and wall time, held-out loss during training, final held-out loss and bits/dim."""
    names = list(results)
    fig, axes = plt.subplots(len(names), 4, figsize=(17, 3.6 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        row, cfg = results[name], settings[name]
        width = max(1, cfg["n_steps"] // 20)
        ax_steps, ax_time, ax_held, ax_bars = axes[i]
        for j, label in enumerate(MODELS):
            r = row[label]
            smooth = _moving_average(r["training_loss"], width)
            steps = np.arange(1, smooth.size + 1)
            ax_steps.plot(steps, smooth, color=f"C{j}", label=label)
            seconds = np.interp(steps, [0] + list(r["segment_steps"]), [0.0] + list(r["segment_seconds"]))
            ax_time.plot(seconds, smooth, color=f"C{j}", label=label)
            ax_held.plot(r["validation_steps"], r["validation_loss"], "o-", ms=3, color=f"C{j}", label=label)
        untrained = row["untrained network held-out DSM loss"]
        for ax in (ax_steps, ax_time, ax_held):
            ax.axhline(untrained, color="0.5", ls=":", lw=1, label="untrained U-Net")
            ax.set_yscale("log")
            ax.set_ylabel("DSM loss (noise prediction)")
        ax_steps.set_xlabel("training step")
        ax_time.set_xlabel("wall time (s, measured; CPU seconds in results.json)")
        ax_held.set_xlabel("training step")
        ax_steps.set_title(f"{name} ({row['dimension']} pixels): training loss", fontsize=9)
        ax_time.set_title(f"{name}: training loss against wall time", fontsize=9)
        ax_held.set_title(f"{name}: held-out DSM loss (10% of the training set)", fontsize=9)
        ax_steps.legend(fontsize=7, loc="upper right", framealpha=0.9)
        labels = list(MODELS)
        x = np.arange(len(labels))
        losses = [row[label]["held_out_dsm_loss"] for label in labels]
        bpd = [row[label]["bits_per_dim"] for label in labels]
        bars = ax_bars.bar(x - 0.2, losses, 0.4, color=[f"C{j}" for j in range(len(labels))])
        ax_bars.bar_label(bars, fmt="%.2f", fontsize=7)
        ax_bars.set_ylabel("held-out DSM loss (test images)")
        ax_bars.set_ylim(0, 1.25 * max(losses))
        twin = ax_bars.twinx()
        bars = twin.bar(x + 0.2, bpd, 0.4, color="white", edgecolor=[f"C{j}" for j in range(len(labels))],
                        hatch="//")
        twin.bar_label(bars, fmt="%.2f", fontsize=7)
        twin.set_ylabel("bits/dim (hatched)")
        twin.set_ylim(0, 1.25 * max(bpd))
        ax_bars.set_xticks(x)
        ax_bars.set_xticklabels([label.replace(" residual", "\nresidual") for label in labels], fontsize=8)
        ax_bars.set_title(f"{name}: after {cfg['n_steps']} steps (solid: DSM loss, hatched: bits/dim)", fontsize=9)
    fig.suptitle("DSM against OISM-residual U-Nets (Ornstein-Uhlenbeck process, Hermite product basis)", fontsize=11)
    return save_figure(fig, pathlib.Path(out_dir) / "oism_image_training.png",
                       caption=CAPTIONS["oism_image_training.png"])


def _mosaic(rows, gap=1):
    """Tile ``rows`` (a list of ``(n, 1, H, W)`` arrays) into one ``(len(rows) (H + gap), n (W + gap))`` image."""
    n, _, H, W = rows[0].shape
    out = np.full((len(rows) * (H + gap) - gap, n * (W + gap) - gap), np.nan)
    for i, row in enumerate(rows):
        for j in range(n):
            out[i * (H + gap): i * (H + gap) + H, j * (W + gap): j * (W + gap) + W] = row[j, 0]
    return out


def _samples_figure(out_dir, images):
    """One panel per data set: the training images, then one labelled row of samples per model."""
    names = list(images)
    rows = ["training images"] + list(MODELS)
    tiled = {name: _mosaic([images[name][row] for row in rows]) for name in names}
    aspect = max(image.shape[0] / image.shape[1] for image in tiled.values())
    fig, axes = plt.subplots(1, len(names), figsize=(7.5 * len(names), 5.6 * aspect + 0.6), squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes[0], names):
        H = images[name][rows[0]].shape[2]
        shown = ax.imshow(tiled[name], cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_yticks([(H + 1) * i + (H - 1) / 2 for i in range(len(rows))])
        ax.set_yticklabels(rows, fontsize=9)
        ax.set_xticks([])
        ax.tick_params(length=0)
        ax.set_title(f"{name}: probability-flow samples", fontsize=10)
    colorbar = fig.colorbar(shown, ax=list(axes[0]), fraction=0.02, pad=0.01, aspect=10)
    colorbar.set_label("pixel value (data in [-1, 1])", fontsize=8)
    return save_figure(fig, pathlib.Path(out_dir) / "oism_image_samples.png",
                       caption=CAPTIONS["oism_image_samples.png"])


def make(out_dir, size="quick"):
    """Train (or load from the cache), evaluate and plot the image experiment; returns the PNG paths.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder of the PNGs and ``results.json``; trained weights go to ``cache/oism`` below it.
    size : {"test", "quick", "full"}

    Returns
    -------
    list of pathlib.Path
    """
    cfg = CONFIG[check_size(size)]
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, images, settings = {}, {}, {}
    for seed, name in enumerate(("digits", "patches 16x16")):
        cache = cache_dir(out_dir, f"oism/images_{size}_{name.split()[0]}")
        settings[name] = _dataset_config(cfg, name.split()[0])
        with single_threaded_blas():  # small convolutions: BLAS threads only oversubscribe the cores
            evaluation = _run_dataset(name.split()[0], settings[name], cache, seed)
        results[name], images[name] = evaluation["results"], evaluation["images"]
    paths = [_training_figure(out_dir, results, settings), _samples_figure(out_dir, images)]
    record_results(out_dir, "oism_image_training", {"size": size, "settings": settings, "datasets": results})
    record_results(out_dir, "oism_image_training_paper", {"bits_per_dim": PAPER_BITS_PER_DIM})
    for name, row in results.items():
        print(f"  {name:14s} " + "  ".join(f"{label}: DSM {row[label]['held_out_dsm_loss']:.3f}, "
                                           f"{row[label]['bits_per_dim']:.3f} bits/dim" for label in MODELS))
    return paths
