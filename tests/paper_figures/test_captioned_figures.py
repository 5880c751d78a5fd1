"""fig_dks, fig_riemannian and fig_sampling_geometry at size="test": every PNG is captioned, and the numbers
the panels show are in results.json and agree with what they claim (score error falling with n, the
selected time at the top of the held-out curve, held-out likelihoods below the true law's, straight
sampling paths and bent denoising paths, solver orders)."""
import json

import numpy as np
import pytest

import paper_figures


@pytest.fixture(scope="module")
def dks_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dks")
    return out, paper_figures.load("dks").make(out, size="test")


@pytest.fixture(scope="module")
def riemannian_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("riemannian")
    return out, paper_figures.load("riemannian").make(out, size="test")


@pytest.fixture(scope="module")
def geometry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sampling_geometry")
    return out, paper_figures.load("sampling_geometry").make(out, size="test")


@pytest.mark.parametrize("run, module", [("dks_run", "dks"), ("riemannian_run", "riemannian"),
                                         ("geometry_run", "sampling_geometry")])
def test_every_png_has_its_caption(run, module, request):
    out, paths = request.getfixturevalue(run)
    assert sorted(path.name for path in paths) == sorted(paper_figures.load(module).CAPTIONS)
    for path in paths:
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000


def test_dks_numbers(dks_run):
    out, _ = dks_run
    numbers = json.loads((out / "results.json").read_text())["dks"]
    mmd = numbers["toy_samples"]["mmd_squared"]
    assert set(mmd) >= {"two_spirals", "eight_gaussians", "pinwheel"}
    # Unbiased MMD^2 of 400 against 400 points: both near 0, within a few 1e-3 (its sd at this size).
    assert all(abs(row["samples"]) < 0.05 and abs(row["training_data"]) < 0.05 for row in mmd.values())
    errors = numbers["score_error"]["relative_fisher_divergence"]
    small, large = np.log(errors["100"]), np.log(errors["1000"])
    # Ten times the data: the DKS error falls on average over the time grid (the figure shows ~10x) ...
    assert np.mean(large) < np.mean(small) - 1.0
    # ... and it falls with t by orders of magnitude (smoothing), as the panel shows.
    assert large[-1] < large[0] - 5.0 and small[-1] < small[0] - 5.0


def test_riemannian_numbers(riemannian_run):
    out, _ = riemannian_run
    numbers = json.loads((out / "results.json").read_text())["riemannian"]["heldout"]
    assert set(numbers) == {"S^2: vMF mixture", "T^2: wrapped normal mixture"}
    for fits in numbers.values():
        for row in fits.values():
            scores = np.array(row["heldout_loglik"], dtype=float)
            best = int(np.nanargmax(scores))
            assert row["selected_time"] == pytest.approx(row["times"][best])
            assert row["best_heldout_loglik"] == pytest.approx(scores[best])
            # E log q <= E log p (Gibbs): the cross-validated score of 250 points (standard error ~0.1
            # over folds) stays below the true law's mean log-density on 2000 test points, up to 0.5.
            assert row["best_heldout_loglik"] < row["true_mean_log_density"] + 0.5
            assert row["best_heldout_loglik"] > row["true_mean_log_density"] - 2.0   # and close to it


def test_sampling_geometry_numbers(geometry_run):
    out, _ = geometry_run
    numbers = json.loads((out / "results.json").read_text())["sampling_geometry"]
    for data in ("toy", "digits"):
        sampling, denoising = numbers["deviation"][f"{data}_samples"], numbers["deviation"][f"{data}_denoised"]
        # The paper's observations 1 and 2: the sampling path hugs its chord (the paper's bound is 20 / 4e3 =
        # 0.005 on CIFAR-10; 0.02 leaves room for our 12-step grid), the denoising path bends much more, and
        # the mean distance to the end point only falls.
        assert sampling["max_deviation"] < 0.02 < denoising["max_deviation"]
        assert np.all(np.diff(sampling["relative_distance_to_end"]) <= 1e-9)
    orders = {name: row["order"] for name, row in numbers["error_vs_nfe"].items()}
    # Fitted slopes of log error against log NFE on 3 grids: first order for Euler, second for Heun.
    assert 0.7 < orders["Euler"] < 1.3 and orders["Heun"] > 1.6
    sigmas = numbers["trajectories"]["montage_sigmas"]
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-1] == pytest.approx(0.002) and np.all(np.diff(sigmas) < 0)
