"""Paper figures: one module ``fig_<name>.py`` per figure family; ``python -m paper_figures`` makes them all.

Every module exposes ``make(out_dir, size="quick") -> list[pathlib.Path]`` where ``size`` is one of
:data:`SIZES`: ``"test"`` (seconds, used by the test suite), ``"quick"`` (the default of the main job:
every figure in minutes on two cores) and ``"full"`` (the papers' sizes). Each module defines
``CAPTIONS = {"file.png": caption}`` (which paper figure or table it reproduces, with the arXiv number,
what is plotted, and our numbers beside the paper's), writes its PNGs with :func:`save_figure` and
``caption=CAPTIONS[name]`` (drawn under the figure; the docs gallery shows the same text), records every
number it shows with :func:`record_results` in ``results.json`` beside them, under the figure's name,
and keeps trained weights under :func:`cache_dir`, and evaluated numbers with :func:`cached` (keyed by a
:func:`fingerprint` of their settings), so that a second run only plots.
"""
import hashlib
import importlib
import json
import pathlib
import pkgutil

import numpy as np

#: The run sizes, smallest first.
SIZES = ("test", "quick", "full")


def check_size(size):
    """Validate a run size (one of :data:`SIZES`) and return it.

    Parameters
    ----------
    size : str
        ``"test"``, ``"quick"`` or ``"full"``.

    Returns
    -------
    str
    """
    if size not in SIZES:
        raise ValueError(f"size: expected one of {SIZES}, got {size!r}")
    return size


def save_figure(fig, path, dpi=110, caption=None):
    """Lay out, write and close ``fig``; returns ``path``. The one place figures are saved.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    path : str or pathlib.Path
        The PNG file.
    dpi : int
        Resolution.
    caption : str or None
        Drawn under the figure, wrapped to its width (the module's ``CAPTIONS`` entry for this file).

    Returns
    -------
    pathlib.Path
    """
    import textwrap

    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    if not fig.get_layout_engine():
        fig.tight_layout()
    if caption:
        width = int(fig.get_figwidth() * 72 / (8 * 0.52))   # characters of an 8-pt line across the figure
        text = "\n".join(textwrap.wrap(" ".join(caption.split()), width))
        fig.text(0.005, -0.01, text, ha="left", va="top", fontsize=8, transform=fig.transFigure)
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if caption else None)
    plt.close(fig)
    return path


def _to_json(value):
    """Plain JSON values from NumPy scalars and arrays (non-finite floats become strings)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return _to_json(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def record_results(out_dir, name, values):
    """Write ``values`` to ``out_dir/results.json`` under ``name`` (other figures' entries are kept).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The folder of the PNGs.
    name : str
        The figure's (or table's) name, e.g. ``"oism_toy_table"``.
    values : dict
        Every number the figure shows (NumPy values are converted to plain JSON).

    Returns
    -------
    pathlib.Path
        The path of ``results.json``.
    """
    path = pathlib.Path(out_dir) / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = _to_json(values)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)
    return path


def read_results(out_dir):
    """The contents of ``out_dir/results.json`` (an empty dict when there is none yet).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The folder of the PNGs.

    Returns
    -------
    dict
    """
    path = pathlib.Path(out_dir) / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def cache_dir(out_dir, name):
    """The folder for trained weights of figure ``name`` under ``out_dir/cache`` (created).

    Parameters
    ----------
    out_dir : str or pathlib.Path
    name : str

    Returns
    -------
    pathlib.Path
    """
    path = pathlib.Path(out_dir) / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(*values):
    """A short hash of JSON-serialisable ``values`` (the settings a cached result depends on).

    Parameters
    ----------
    *values : JSON-serialisable objects (tuples are written as lists)

    Returns
    -------
    str
        12 hexadecimal digits of the SHA-1 of the sorted JSON.
    """
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=list).encode()).hexdigest()[:12]


def _split(value, arrays, key):
    """``value`` with every array replaced by ``{"__array__": name}`` and stored in ``arrays[name]``."""
    if isinstance(value, dict):
        return {k: _split(v, arrays, f"{key}/{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"__array__": key}
    return float(value) if isinstance(value, np.floating) else value


def _join(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _join(v, arrays) for k, v in value.items()}
    return value


def cached(path, compute):
    """``compute()`` (a nested dict of arrays, numbers and strings), stored in ``path`` (``.npz``) the first
    time and read back from it afterwards, so that a second run of a figure only plots.

    Parameters
    ----------
    path : str or pathlib.Path
    compute : callable
        ``compute() -> dict``.

    Returns
    -------
    dict
    """
    path = pathlib.Path(path)
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files if name != "__tree__"}
            return _join(json.loads(str(stored["__tree__"])), arrays)
    values = compute()
    arrays = {}
    tree = _split(values, arrays, "")
    temporary = path.with_name(path.stem + ".partial.npz")
    np.savez(temporary, __tree__=np.array(json.dumps(tree)), **arrays)
    temporary.replace(path)
    return values


def figure_modules():
    """Names of the figure modules in this package (``"fig_dks"``, ...), sorted.

    Returns
    -------
    list of str
    """
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("fig_"))


def check_names(names):
    """Validate figure names (``"fig_dks"`` or ``"dks"``); returns the module names.

    Parameters
    ----------
    names : list of str
        Short or full names.

    Returns
    -------
    list of str
        The module names, ``"fig_..."``.

    Raises
    ------
    ValueError
        Naming every unknown name and listing the figures there are.
    """
    modules = figure_modules()
    resolved = [name if name.startswith("fig_") else f"fig_{name}" for name in names]
    unknown = [name for name, module in zip(names, resolved) if module not in modules]
    if unknown:
        short = [module[len("fig_"):] for module in modules]
        raise ValueError(f"figure: unknown name(s) {unknown}; expected some of {short}")
    return resolved


def load(name):
    """Import the figure module ``name`` (``"fig_dks"`` or ``"dks"``).

    Parameters
    ----------
    name : str

    Returns
    -------
    module
    """
    (module,) = check_names([name])
    return importlib.import_module(f"{__name__}.{module}")
