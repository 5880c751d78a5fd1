"""Paper figures: one module ``fig_<name>.py`` per figure family, each exposing
``make(out_dir, quick=False) -> list[pathlib.Path]``. ``python -m paper_figures`` makes them all."""
import importlib
import pkgutil


def save_figure(fig, path, dpi=110):
    """Lay out, write and close ``fig``; returns ``path``. The one place figures are saved."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def figure_modules():
    """Names of the figure modules in this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("fig_"))


def load(name):
    """Import the figure module ``name`` (``"fig_dks"`` or ``"dks"``)."""
    name = name if name.startswith("fig_") else f"fig_{name}"
    if name not in figure_modules():
        raise ValueError(f"figure: expected one of {figure_modules()}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
