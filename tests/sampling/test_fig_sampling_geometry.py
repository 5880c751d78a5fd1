"""Smoke test of paper_figures/fig_sampling_geometry.py in quick mode: three non-empty PNG files."""
import importlib.util
import pathlib


FIGURE = pathlib.Path(__file__).resolve().parents[2] / "paper_figures" / "fig_sampling_geometry.py"


def test_quick_figures_are_written(tmp_path):
    spec = importlib.util.spec_from_file_location("fig_sampling_geometry", FIGURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.make(tmp_path, size="test")
    assert len(paths) == 3
    for path in paths:
        assert path.exists() and path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
