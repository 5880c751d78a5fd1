"""The OISM torus experiments (arXiv 2406.09084): the 1-D figure and the 2-D toy table at the "test" size."""
import math

import numpy as np
import pytest

from paper_figures import fig_oism, read_results

DATASETS = ("2spirals", "8gaussians", "pinwheel", "checkerboard")
SETTINGS = ("OISM (H)", "OISM (L)", "OISM (L) + NN", "NN (pre-trained)", "NN-only", "DKS")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("oism_toy")
    return out, fig_oism.make(out, size="test")


def test_every_figure_is_written_with_its_caption(run):
    out, paths = run
    assert sorted(path.name for path in paths) == sorted(fig_oism.CAPTIONS)
    for path in paths:
        assert path.exists() and path.stat().st_size > 20_000, path
    for caption in fig_oism.CAPTIONS.values():
        assert "arXiv 2406.09084" in caption


def test_the_table_has_every_data_set_and_setting_with_finite_log_likelihoods(run):
    out, _ = run
    results = read_results(out)
    table = results["oism_toy_table"]
    assert tuple(table) == DATASETS or sorted(table) == sorted(DATASETS)
    for name in DATASETS:
        assert sorted(table[name]) == sorted(SETTINGS)
        for setting, value in table[name].items():
            assert isinstance(value, float) and math.isfinite(value), (name, setting, value)
            # a density on the torus of area 4 pi^2: a mean log-density far above 0 (a density > 1
            # everywhere on the test points) or below the uniform's -log(4 pi^2) by much is a broken route
            assert -4.5 < value < 0.5, (name, setting, value)
    assert results["oism_toy_table_paper"]["2spirals"]["OISM (H)"] == -2.262
    assert "checkerboard" not in results["oism_toy_table_paper"]
    fisher = results["oism_scores_1d"]["fisher_divergence"]
    assert all(math.isfinite(v) and v >= 0 for row in fisher.values() for v in row.values())


def test_trained_settings_beat_the_untrained_network(run):
    out, _ = run
    results = read_results(out)
    table, details = results["oism_toy_table"], results["oism_toy_table_details"]["per_dataset"]
    uniform = -math.log(4 * math.pi**2)
    for name in DATASETS:
        untrained = details[name]["untrained network"]
        # the initial network's last layer is scaled by 0.1, so its density stays within a few hundredths of
        # the uniform law's (measured gap <= 0.05 nats)
        assert abs(untrained - uniform) < 0.1, (name, untrained)
        losses = details[name]["held-out DSM loss"]
        # every model is scored on the same held-out points, times and noise (one seed): a paired comparison.
        # 240 steps cut the held-out DSM loss to 0.82 to 0.95 of the untrained network's (measured; most of
        # the loss is the irreducible variance of the target): 0.97 is the margin
        assert losses["OISM (L) + NN"] < 0.97 * losses["untrained network"], (name, losses)
        assert table[name]["OISM (L) + NN"] > untrained + 0.2, (name, table[name], untrained)
        if name == "checkerboard":
            # 240 steps of a plain network do not yet resolve the checkerboard's sharp edges at the small
            # times where its structure lies (measured loss ratio 0.996 to 0.998): no margin asked of them
            continue
        for setting in ("NN (pre-trained)", "NN-only"):
            assert losses[setting] < 0.97 * losses["untrained network"], (name, setting, losses)
            # measured gains: 0.25 to 1.8 nats
            assert table[name][setting] > untrained + 0.1, (name, setting, table[name][setting], untrained)


def test_dks_time_is_selected_inside_its_candidate_grid_and_beats_a_too_small_time(run):
    out, _ = run
    details = read_results(out)["oism_toy_table_details"]["per_dataset"]
    table = read_results(out)["oism_toy_table"]
    for name in DATASETS:
        assert 1e-3 <= details[name]["DKS time"] <= 0.3
        # the selected time maximises the validation likelihood; on the held-out points it should not
        # lose to the fixed evaluation time by more than the validation noise (~0.05 nats at n_test=100)
        assert table[name]["DKS"] > details[name]["DKS at t_eval"] - 0.1, name


def test_a_second_run_loads_the_cached_weights_and_reproduces_the_table(run):
    out, _ = run
    first = read_results(out)["oism_toy_table"]
    checkpoints = sorted((out / "cache" / "oism").glob("toy_test_*/*.npz"))
    assert len(checkpoints) == len(DATASETS) * (len(fig_oism.TRAINED) + 1)  # weights and evaluations
    stamps = [path.stat().st_mtime_ns for path in checkpoints]
    fig_oism.make(out, size="test")
    assert [path.stat().st_mtime_ns for path in checkpoints] == stamps  # loaded, not retrained
    second = read_results(out)["oism_toy_table"]
    for name in DATASETS:
        np.testing.assert_allclose([second[name][s] for s in SETTINGS], [first[name][s] for s in SETTINGS],
                                   rtol=0, atol=1e-12)


def test_disagreements_with_the_paper_are_computed_from_the_orderings():
    table = {name: dict(row) for name, row in fig_oism.PAPER_TABLE.items()}
    assert fig_oism.compare_with_paper(table) == []
    table["pinwheel"]["NN-only"] = -1.0  # above every other setting, and above NN (pre-trained)
    found = fig_oism.compare_with_paper(table)
    assert any("pinwheel: best" in text for text in found)
    assert any("pinwheel: NN (pre-trained) below NN-only" in text for text in found)
    table["2spirals"]["OISM (L) + NN"] = table["2spirals"]["OISM (L)"] + 0.005  # the paper's +0.81 becomes a tie
    assert any(text.startswith("2spirals: OISM (L) + NN ties OISM (L) (+0.005; paper +0.81)")
               for text in fig_oism.compare_with_paper(table))
