"""The OISM image experiment (arXiv 2406.09084, Figure 3 left): DSM against OISM-residual U-Nets, "test" size."""
import math

import numpy as np
import pytest

from paper_figures import fig_oism_images, read_results

DATASETS = ("digits", "patches 16x16")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("oism_images")
    return out, fig_oism_images.make(out, size="test")


def test_both_figures_are_written_large_enough_to_read(run):
    from matplotlib.image import imread

    _, paths = run
    by_name = {path.name: imread(path) for path in paths}
    assert sorted(by_name) == sorted(fig_oism_images.CAPTIONS)
    height, width = by_name["oism_image_samples.png"].shape[:2]
    # two mosaics of 4 rows x 6 images, each about 650 screen pixels wide: 6 screen pixels per pixel of
    # the 16 x 16 patches, 12 per pixel of the 8 x 8 digits
    assert width >= 1400 and height >= 250, (height, width)
    assert min(by_name["oism_image_training.png"].shape[:2]) >= 600


def test_results_hold_every_model_with_finite_numbers(run):
    out, _ = run
    results = read_results(out)
    entry = results["oism_image_training"]["datasets"]
    assert sorted(entry) == sorted(DATASETS)
    for name in DATASETS:
        cfg = results["oism_image_training"]["settings"][name]
        for label in fig_oism_images.MODELS:
            r = entry[name][label]
            for key in ("held_out_dsm_loss", "bits_per_dim", "bits_per_dim_standard_error", "final_training_loss",
                        "seconds_per_step"):
                assert math.isfinite(r[key]), (name, label, key, r[key])
            assert len(r["training_loss"]) == cfg["n_steps"]
            assert r["segment_steps"][-1] == cfg["n_steps"] and np.all(np.diff(r["segment_seconds"]) > 0)
            assert len(r["validation_loss"]) == cfg["segments"]
            # a discretised likelihood is at most 1 per bin, so bits/dim are positive; a flow that left the
            # data's scale (a diverged PF-ODE) would give hundreds: 40 bounds a dozen steps of training
            assert 0 < r["bits_per_dim"] < 40, (name, label, r["bits_per_dim"])
    assert results["oism_image_training_paper"]["bits_per_dim"]["CIFAR-10"]["DSM"] == 2.95


def test_trained_models_beat_the_untrained_network(run):
    out, _ = run
    entry = read_results(out)["oism_image_training"]["datasets"]
    for name in DATASETS:
        untrained = entry[name]["untrained network held-out DSM loss"]
        # the untrained U-Net predicts ~0 noise, so its loss is E|eps|^2 = D (64 or 256 pixels) up to the
        # Monte-Carlo error of 4 x 24 draws (~2%)
        assert abs(untrained / entry[name]["dimension"] - 1) < 0.1, (name, untrained)
        for label in fig_oism_images.MODELS:
            # a dozen Adam steps already halve the loss (measured 0.05 to 0.4 of the untrained value): 0.7 is
            # the margin
            assert entry[name][label]["held_out_dsm_loss"] < 0.7 * untrained, (name, label)


def test_a_second_run_only_plots(run):
    out, _ = run
    first = read_results(out)["oism_image_training"]["datasets"]
    files = sorted((out / "cache" / "oism").glob("images_test_*/*"))
    stamps = [path.stat().st_mtime_ns for path in files]
    fig_oism_images.make(out, size="test")
    assert [path.stat().st_mtime_ns for path in files] == stamps
    second = read_results(out)["oism_image_training"]["datasets"]
    for name in DATASETS:
        for label in fig_oism_images.MODELS:
            assert second[name][label]["bits_per_dim"] == first[name][label]["bits_per_dim"]
            assert second[name][label]["held_out_dsm_loss"] == first[name][label]["held_out_dsm_loss"]
