"""Pair each notebook source ``notebooks/NN_name.py`` (jupytext percent format) with its executed ``.ipynb``.

The ``.py`` files are the single source of truth: edit them, then run::

    python3 notebooks/sync.py            # every notebook
    python3 notebooks/sync.py 02 04      # only those whose name starts with 02 or 04

Each source is read with jupytext, executed with nbclient (kernel ``python3``, in this folder) and
written as ``NN_name.ipynb`` with its outputs. Cell ids are stable: a cell whose source is unchanged
keeps the id it had in the existing ``.ipynb``; a new or edited cell gets an id made from a hash of
its position and source, so running the script twice gives the same file. Needs the ``[notebooks]``
extra (``pip install -e ".[notebooks]"``).
"""
import hashlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def _require(module):
    """Import ``module`` or raise an ImportError naming the ``[notebooks]`` extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is required to pair the notebooks: install it with "
                          f"`pip install -e \".[notebooks]\"`") from exc


def sources(folder=HERE):
    """The notebook sources ``NN_name.py`` in ``folder``, sorted.

    Parameters
    ----------
    folder : pathlib.Path
        The notebooks folder.

    Returns
    -------
    list of pathlib.Path
    """
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def read_source(path):
    """Read a percent-format source as a notebook (no outputs).

    Parameters
    ----------
    path : pathlib.Path
        A ``NN_name.py`` source.

    Returns
    -------
    nbformat.NotebookNode
    """
    jupytext = _require("jupytext")
    return jupytext.read(str(path), fmt="py:percent")


def cell_sources(notebook):
    """``(cell_type, source)`` of every cell, the pairing's comparison key.

    Parameters
    ----------
    notebook : nbformat.NotebookNode

    Returns
    -------
    list of tuple of str
    """
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def assign_ids(notebook, previous=None):
    """Give every cell a stable id (in place): kept from ``previous`` for an unchanged source, else hashed.

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        The notebook to label.
    previous : nbformat.NotebookNode or None
        The existing ``.ipynb``, whose ids are reused for cells with the same type and source.

    Returns
    -------
    nbformat.NotebookNode
        ``notebook`` itself.
    """
    known = {}
    for cell in (previous.cells if previous is not None else []):
        known.setdefault((cell.cell_type, cell.source.strip()), cell.get("id"))
    used = set()
    for index, cell in enumerate(notebook.cells):
        key = (cell.cell_type, cell.source.strip())
        cell_id = known.get(key)
        if not cell_id or cell_id in used:
            cell_id = hashlib.sha1(f"{index}\n{key[0]}\n{key[1]}".encode()).hexdigest()[:8]
        used.add(cell_id)
        cell["id"] = cell_id
    return notebook


def execute(notebook, folder=HERE, timeout=300):
    """Run every code cell of ``notebook`` in place (kernel ``python3``, working folder ``folder``).

    Parameters
    ----------
    notebook : nbformat.NotebookNode
    folder : pathlib.Path
        The kernel's working directory.
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    nbformat.NotebookNode
        ``notebook``, with outputs; nbclient raises ``CellExecutionError`` on a failing cell.
    """
    nbclient = _require("nbclient")
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


def sync(path):
    """Execute the source ``path`` and write its paired ``.ipynb`` with outputs and stable ids.

    Parameters
    ----------
    path : pathlib.Path
        A ``NN_name.py`` source.

    Returns
    -------
    pathlib.Path
        The ``.ipynb`` written.
    """
    nbformat = _require("nbformat")
    path = pathlib.Path(path)
    target = path.with_suffix(".ipynb")
    previous = nbformat.read(str(target), as_version=4) if target.exists() else None
    notebook = read_source(path)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    assign_ids(notebook, previous)
    execute(notebook, path.parent)
    nbformat.validate(notebook)
    nbformat.write(notebook, str(target))
    return target


def main(argv=None):
    """Sync the notebooks named by prefix in ``argv`` (all when empty).

    Parameters
    ----------
    argv : list of str or None
        Name prefixes such as ``"02"``; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status.
    """
    prefixes = sys.argv[1:] if argv is None else argv
    chosen = [path for path in sources() if not prefixes or path.name.startswith(tuple(prefixes))]
    if prefixes and not chosen:
        raise SystemExit(f"sync.py: no notebook source starts with {prefixes}; there are "
                         f"{[path.name for path in sources()]}")
    for path in chosen:
        print(sync(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
