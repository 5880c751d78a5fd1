"""Shared helper of the notebook build scripts: write a list of (kind, source) cells as a notebook."""
import pathlib

import nbformat


def write_notebook(cells, path):
    """Write ``cells`` (``("md" | "code", source)`` pairs) to ``path`` with outputs cleared; returns the path."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        notebook.cells.append(cell)
    path = pathlib.Path(path)
    nbformat.write(notebook, str(path))
    return path
