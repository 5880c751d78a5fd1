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
