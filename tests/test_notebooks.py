"""The notebooks: each jupytext source ``notebooks/NN_name.py`` agrees with its committed, executed ``.ipynb``,
and runs (nbclient, kernel python3, 300 s per cell) without an error. One test of each kind per notebook."""
import ast
import importlib.util
import pathlib

import pytest

FOLDER = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(FOLDER.glob("[0-9][0-9]_*.py"))
RESYNC = 'edit the .py source, then re-pair and re-execute with `python3 notebooks/sync.py {prefix}`'


def _sync_module():
    spec = importlib.util.spec_from_file_location("notebooks_sync", FOLDER / "sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _sync_module()


def test_every_notebook_is_paired():
    notebooks = sorted(path.stem for path in FOLDER.glob("*.ipynb"))
    assert len(SOURCES) == 5
    assert notebooks == [path.stem for path in SOURCES], "every .ipynb needs its .py source and vice versa"
    assert not list(FOLDER.glob("build_*.py")), "the .py percent sources are the only notebook sources"


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_pair_agrees(path):
    nbformat = sync._require("nbformat")
    paired = nbformat.read(str(path.with_suffix(".ipynb")), as_version=4)
    hint = RESYNC.format(prefix=path.name[:2])
    assert sync.cell_sources(paired) == sync.cell_sources(sync.read_source(path)), \
        f"{path.name} and its .ipynb differ: {hint}"
    ids = [cell.get("id") for cell in paired.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"cell ids missing or repeated: {hint}"
    # The ids are stable: re-labelling the source against the committed file reproduces them.
    assert [cell["id"] for cell in sync.assign_ids(sync.read_source(path), paired).cells] == ids
    code = [cell for cell in paired.cells if cell.cell_type == "code"]
    assert code and all(cell.get("execution_count") for cell in code), f"committed without outputs: {hint}"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), f"run out of order: {hint}"
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]


def test_ids_stable_and_fresh_for_new_cells():
    nbformat = sync._require("nbformat")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# a"), nbformat.v4.new_code_cell("x = 1")]
    first = [cell["id"] for cell in sync.assign_ids(notebook).cells]
    again = [cell["id"] for cell in sync.assign_ids(nbformat.from_dict(notebook)).cells]
    assert first == again and len(set(first)) == 2
    edited = nbformat.from_dict(notebook)
    edited.cells.insert(0, nbformat.v4.new_code_cell("y = 2"))
    relabelled = [cell["id"] for cell in sync.assign_ids(edited, notebook).cells]
    assert relabelled[1:] == first and relabelled[0] not in first   # unchanged cells keep their ids


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_source_imports_only_what_it_uses(path):
    tree = ast.parse(path.read_text())   # also: the source is valid Python
    imported = {(alias.asname or alias.name).split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not imported - used, f"{path.name} imports {sorted(imported - used)} without using them"


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_executes(path):
    notebook = sync.execute(sync.read_source(path), FOLDER)   # raises CellExecutionError naming the cell
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors
