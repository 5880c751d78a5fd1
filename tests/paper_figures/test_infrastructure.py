"""paper_figures' shared helpers: results.json, the weight cache, sizes and the --only names."""
import json

import numpy as np
import pytest

import paper_figures
from paper_figures.__main__ import main


def test_record_results_merges_entries_and_converts_numpy_values(tmp_path):
    paper_figures.record_results(tmp_path, "first", {"a": np.float32(1.5), "b": np.arange(3)})
    paper_figures.record_results(tmp_path, "second", {"x": {"y": np.int64(2), "nan": float("nan")}})
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == {"first": {"a": 1.5, "b": [0, 1, 2]}, "second": {"x": {"y": 2, "nan": "nan"}}}
    paper_figures.record_results(tmp_path, "first", {"a": 2})
    assert paper_figures.read_results(tmp_path)["first"] == {"a": 2}
    assert paper_figures.read_results(tmp_path)["second"]["x"]["y"] == 2


def test_cache_dir_is_created_under_the_output_folder(tmp_path):
    path = paper_figures.cache_dir(tmp_path, "oism")
    assert path.is_dir() and path == tmp_path / "cache" / "oism"


def test_cached_computes_once_and_reads_back_the_same_tree(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"table": {"VP": [2.5, 0.1], "note": "text"}, "losses": np.arange(4.0), "flow": (1.5, 0.2),
                "nested": {"Q": np.eye(2)}}

    path = tmp_path / f"evaluation_{paper_figures.fingerprint('quick', {'n': 3})}.npz"
    first = paper_figures.cached(path, compute)
    second = paper_figures.cached(path, compute)
    assert len(calls) == 1 and path.exists()
    np.testing.assert_array_equal(second["losses"], first["losses"])
    np.testing.assert_array_equal(second["nested"]["Q"], np.eye(2))
    assert second["table"] == {"VP": [2.5, 0.1], "note": "text"} and list(second["flow"]) == [1.5, 0.2]
    # the key changes with the settings
    assert paper_figures.fingerprint("quick", {"n": 3}) != paper_figures.fingerprint("quick", {"n": 4})


def test_sizes_are_checked():
    assert paper_figures.check_size("test") == "test"
    with pytest.raises(ValueError, match="size: expected one of"):
        paper_figures.check_size("tiny")


def test_unknown_figure_names_get_a_clear_error_listing_the_figures(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['typo'\]"):
        paper_figures.check_names(["dks", "typo"])
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--only", "typo"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "typo" in error and "dks" in error
    assert paper_figures.check_names(["dks", "fig_oism"]) == ["fig_dks", "fig_oism"]
