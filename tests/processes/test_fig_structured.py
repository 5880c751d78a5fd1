"""Smoke test of paper_figures/fig_structured.py in quick mode: three non-empty PNG files."""
import importlib.util
import pathlib


FIGURE = pathlib.Path(__file__).resolve().parents[2] / "paper_figures" / "fig_structured.py"


def test_quick_figures_are_written(tmp_path):
    spec = importlib.util.spec_from_file_location("fig_structured", FIGURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.make(tmp_path, size="test")
    assert len(paths) == 3
    for path in map(pathlib.Path, paths):
        assert path.exists() and path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
    rng = __import__("numpy").random.default_rng(0)
    results = module.digits_bits_per_dim(True, rng)
    # the DKS-ELBO of VP at the wider bandwidth beats a uniform model of the 17 grey levels (4.09 bits)
    assert results["vp"][1][-1] < 4.09
