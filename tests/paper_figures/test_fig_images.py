"""The image experiments (MDM, SAGD, GFDM) run in their "test" size with finite, sane numbers."""
import json
import pathlib

import numpy as np
import pytest

from paper_figures import fig_gfdm, fig_mdm, fig_sagd


def _check_pngs(paths, module):
    assert set(pathlib.Path(p).name for p in paths) == set(module.CAPTIONS)
    for path in map(pathlib.Path, paths):
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("figures")


def test_mdm_bits_per_dim(out):
    paths = fig_mdm.make(out, size="test")
    _check_pngs(paths, fig_mdm)
    results = json.loads((out / "results.json").read_text())
    table, details = results["mdm_bits_per_dim"], results["mdm_details"]
    assert set(table) == {"VP", "CLD", "ALDA", "MALDA", "learned"}
    assert all(np.isfinite(v) and v > 0 for v in table.values())
    uniform = np.log2(17)
    # every trained network, on its Gaussian base, beats the uniform model of the 17 grey levels by more than
    # 5 of its standard errors (the ELBO's Monte Carlo error, importance-sampled times)
    for name, value in table.items():
        assert value + 5 * details["standard_error"][name] < uniform, name
    assert set(details["gaussian_base_bits_per_dim"]) == set(table)
    for name, gain in details["network_gain_bits_per_dim"].items():
        assert np.isfinite(gain) and details["network_gain_standard_error"][name] > 0, name
    # the memorising smoother's held-out bound is far above the uniform model's (the point of its panel)
    assert min(details["smoother_bits_per_dim_misleading"].values()) > uniform
    Q, D = np.array(details["learned_Q"]), np.array(details["learned_D"])
    np.testing.assert_allclose(Q, -Q.T, atol=1e-15)
    np.testing.assert_allclose(np.trace(D), fig_mdm.NOISE_BUDGET + 2e-3, rtol=1e-12)  # the fixed noise budget
    # weights are cached (one checkpoint per process) and so is their evaluation: a second run only plots
    assert len(list((out / "cache" / "mdm").glob("[!e]*.npz"))) == 5
    assert len(list((out / "cache" / "mdm").glob("evaluation_*.npz"))) == 1
    fig_mdm.make(out, size="test")
    again = json.loads((out / "results.json").read_text())
    assert again["mdm_bits_per_dim"] == table and again["mdm_details"] == details


def test_sagd_sweep_and_omission(out):
    paths = fig_sagd.make(out, size="test")
    _check_pngs(paths, fig_sagd)
    results = json.loads((out / "results.json").read_text())
    sweep, omission = results["sagd_exponent_sweep"], results["sagd_omission"]
    assert set(sweep) == {f"{a:+.3f}" for a in fig_sagd.EXPONENTS["test"]}
    assert all(np.isfinite(v) and v > 0 for v in sweep.values())
    assert set(omission) == {"isotropic", "band-omitting SAGD"}
    # no forward noise in the band and a prior without it: DDIM leaves only FFT round-off there
    assert omission["band-omitting SAGD"]["band_energy"] < 1e-20
    assert omission["isotropic"]["band_energy"] > 1e-3
    references = results["sagd_details"]["omission_references"]
    assert references["corrupted (training)"]["band_energy"] > 5 * references["clean digits"]["band_energy"]
    assert all(np.isfinite(v["distance"]) for v in omission.values())
    # the bootstrap standard errors the figure's bars and notes use: positive, and below the distances' scale
    errors = results["sagd_details"]["exponent_sweep_standard_error"]
    assert set(errors) == set(sweep) and all(0 < errors[a] < sweep[a] for a in sweep)
    assert all(0 < v["distance_standard_error"] < v["distance"] for v in omission.values())


def test_gfdm_settings(out):
    paths = fig_gfdm.make(out, size="test")
    _check_pngs(paths, fig_gfdm)
    results = json.loads((out / "results.json").read_text())
    table = results["gfdm"]
    assert set(table) == {fig_gfdm.setting_name(*s) for s in fig_gfdm.SETTINGS["test"]} and "VP" in table
    errors = results["gfdm_details"]["distance_standard_error"]
    for name, values in table.items():
        assert np.isfinite(values["distance"]) and values["distance"] >= 0
        assert 0 < errors[name] < values["distance"], name
        assert np.isfinite(values["diversity"]) and values["diversity"] > 0
