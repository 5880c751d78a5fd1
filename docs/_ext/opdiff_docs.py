"""Pages the docs build generates from the code: the API reference, the notebooks and the figure gallery.

Everything written here goes under ``docs/generated/`` (not committed), so the site follows the
library without edits:

- :func:`write_api_pages`: one page per subpackage of ``opdiff``, listing its ``__all__`` (an
  autosummary table, then autodoc of each object);
- :func:`copy_notebooks`: the executed ``notebooks/*.ipynb`` (rendered with their committed outputs);
- :func:`write_examples`: the scripts of ``docs/examples/`` (e.g. an outside network behind the adapters);
- :func:`write_gallery`: the PNGs of every ``paper_figures`` module with the module's ``CAPTIONS`` and
  the numbers it recorded in ``results.json``.

The Sphinx extension (:func:`setup`) runs them on ``builder-inited``.
"""
import ast
import concurrent.futures
import hashlib
import importlib
import inspect
import json
import os
import pathlib
import pkgutil
import re
import shutil
import subprocess
import sys
import textwrap
import time

DOCS = pathlib.Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
GENERATED = DOCS / "generated"


def subpackages():
    """Names of the public subpackages of ``opdiff`` (``"opdiff.backend"``, ...), sorted.

    Returns
    -------
    list of str
    """
    import opdiff

    return sorted(f"opdiff.{m.name}" for m in pkgutil.iter_modules(opdiff.__path__) if not m.name.startswith("_"))


def public_objects(package):
    """The objects a subpackage exports, in the order of its ``__all__``.

    Parameters
    ----------
    package : str
        A module name such as ``"opdiff.sampling"``.

    Returns
    -------
    list of tuple
        ``(name, kind, obj)`` with ``kind`` one of ``"class"``, ``"function"``, ``"module"``, ``"data"``.
    """
    module = importlib.import_module(package)
    rows = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            kind = "module"
        elif inspect.isclass(obj):
            kind = "class"
        elif callable(obj):
            kind = "function"
        else:
            kind = "data"
        rows.append((name, kind, obj))
    return rows


def _rounded(value):
    """``value`` (from JSON) with every float rounded to 4 significant digits, for display."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _rst_text(text):
    """Plain text as reStructuredText: one line, with the markup characters escaped."""
    return re.sub(r"([\\*`|_])", r"\\\1", " ".join(text.split()))


def module_members(module):
    """The public functions and classes a submodule exported by a package documents (its ``__all__``, else
    what it defines without a leading underscore).

    Parameters
    ----------
    module : module

    Returns
    -------
    list of tuple
        ``(name, kind, obj)`` as in :func:`public_objects`.
    """
    names = getattr(module, "__all__", None) or [
        name for name, value in vars(module).items() if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == module.__name__]
    return [(name, "class" if inspect.isclass(getattr(module, name)) else "function", getattr(module, name))
            for name in names]


def _title(text, mark="="):
    return f"{text}\n{mark * len(text)}\n"


def api_page(package, documented):
    """The reStructuredText of one subpackage's reference page.

    Parameters
    ----------
    package : str
        A module name such as ``"opdiff.sampling"``.
    documented : dict
        ``id(obj) -> full name`` of objects already documented on an earlier page (updated); an object
        exported by two subpackages is described once and cross-referenced from the other.

    Returns
    -------
    str
    """
    module = importlib.import_module(package)
    summary = (inspect.getdoc(module) or "").strip().split("\n\n")[0]
    lines = [_title(f"``{package}``"), f".. automodule:: {package}", "   :no-members:", "   :no-index:", ""]
    rows = public_objects(package)
    if not rows:
        return "\n".join(lines + [summary, ""])
    lines += [".. autosummary::", "   :nosignatures:", ""]
    lines += [f"   {name}" for name, _, _ in rows] + [""]
    directive = {"class": "autoclass", "function": "autofunction", "data": "autodata"}
    for name, kind, obj in rows:
        full = f"{package}.{name}"
        if kind == "module":
            lines += [_title(f"``{full}``", "-"), f".. automodule:: {full}", "   :members:", ""]
            continue
        if kind != "data" and id(obj) in documented:
            lines += [f".. py:{'class' if kind == 'class' else 'function'}:: {full}", "   :no-index:", "",
                      f"   Also exported here; described at :py:obj:`{documented[id(obj)]}`.", ""]
            continue
        if kind != "data":
            documented[id(obj)] = full
        lines.append(f".. {directive[kind]}:: {full}")
        if kind == "class":
            lines += ["   :members:", "   :show-inheritance:"]
        if kind == "data":
            lines += ["   :annotation:"]
        lines.append("")
    return "\n".join(lines)


def write_api_pages(folder=GENERATED / "api"):
    """Write ``api/index.rst`` and one page per subpackage into ``folder``.

    Parameters
    ----------
    folder : pathlib.Path
        Where the pages go (replaced).

    Returns
    -------
    list of pathlib.Path
        The subpackage pages written.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    documented = {}
    pages = []
    for package in subpackages():
        page = folder / f"{package}.rst"
        page.write_text(api_page(package, documented))
        pages.append(page)
    index = [_title("API reference"),
             "Generated from the NumPy-style docstrings of each subpackage's ``__all__``, in the order of the",
             "layers (see :doc:`/architecture`).", "", ".. toctree::", "   :maxdepth: 1", ""]
    index += [f"   {page.stem}" for page in pages]
    (folder / "index.rst").write_text("\n".join(index) + "\n")
    return pages


def copy_notebooks(folder=GENERATED / "notebooks"):
    """Copy the executed notebooks (``notebooks/NN_name.ipynb``) into ``folder`` for myst-nb to render.

    Parameters
    ----------
    folder : pathlib.Path
        Where the copies go (replaced).

    Returns
    -------
    list of pathlib.Path
        The copies, sorted.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return [pathlib.Path(shutil.copy2(path, folder / path.name))
            for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def write_examples(folder=GENERATED / "examples"):
    """Write a page per script in ``docs/examples/`` (its docstring, then its full source) and an index.

    Parameters
    ----------
    folder : pathlib.Path
        Where the pages go (replaced).

    Returns
    -------
    list of pathlib.Path
        The scripts shown, sorted.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    scripts = sorted((DOCS / "examples").glob("*.py"))
    index = [_title("Examples"), "Complete scripts, run as they are (``python3 docs/examples/<name>.py``).", "",
             ".. toctree::", "   :maxdepth: 1", ""]
    for script in scripts:
        summary = (ast.get_docstring(ast.parse(script.read_text())) or "").strip()
        page = [_title(f"``{script.name}``"), summary, "", f".. literalinclude:: /examples/{script.name}",
                "   :language: python", "   :linenos:", ""]
        (folder / f"{script.stem}.rst").write_text("\n".join(page) + "\n")
        index.append(f"   {script.stem}")
    if not scripts:
        index = index[:2] + ["(No example script yet.)", ""]
    (folder / "index.rst").write_text("\n".join(index) + "\n")
    return scripts


def figure_captions():
    """``module name -> CAPTIONS`` of every ``paper_figures`` module (``{}`` where a module has none).

    Returns
    -------
    dict
    """
    import paper_figures

    return {name: dict(getattr(paper_figures.load(name), "CAPTIONS", {})) for name in paper_figures.figure_modules()}


def _sources_hash():
    digest = hashlib.sha1()
    for path in sorted([*ROOT.glob("opdiff/**/*.py"), *ROOT.glob("paper_figures/*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _make_one(name, folder, size):
    folder.mkdir(parents=True, exist_ok=True)
    code = ("import matplotlib; matplotlib.use('Agg'); import paper_figures; "
            f"paper_figures.load({name!r}).make({str(folder)!r}, size={size!r})")
    env = dict(os.environ, MPLBACKEND="Agg")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    (folder / "seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    return name, done.returncode, done.stderr[-3000:]


def make_figures(cache, size="test", workers=2):
    """Run every figure module at ``size`` into ``cache/<module>/`` (one process each, ``workers`` at once).

    The results are reused while no file of ``opdiff`` or ``paper_figures`` changes.

    Parameters
    ----------
    cache : pathlib.Path
        A folder in the build directory.
    size : str
        The ``paper_figures`` run size.
    workers : int
        Figure modules run in parallel.

    Returns
    -------
    dict
        ``module name -> error text`` for the modules that failed (empty when all ran).
    """
    import paper_figures

    cache = pathlib.Path(cache)
    stamp = cache / "sources.sha1"
    key = f"{size}:{_sources_hash()}"
    if stamp.exists() and stamp.read_text() == key:
        return {}
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        runs = list(pool.map(lambda name: _make_one(name, cache / name, size), paper_figures.figure_modules()))
    failed = {name: error for name, code, error in runs if code}
    if not failed:
        stamp.write_text(key)
    return failed


def write_gallery(figures, folder=GENERATED / "gallery"):
    """Write the gallery page: each figure module's PNGs with their captions and recorded numbers.

    Parameters
    ----------
    figures : pathlib.Path
        A folder holding ``<module>/<file>.png`` and ``<module>/results.json`` (see :func:`make_figures`),
        or the flat output folder of ``python -m paper_figures``.
    folder : pathlib.Path
        Where the page and the copied PNGs go (replaced).

    Returns
    -------
    list of str
        Problems to report: PNGs without a caption (shown with a placeholder), captions without a PNG.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    figures = pathlib.Path(figures)
    problems = []
    lines = [_title("Paper figures"),
             "Every figure of ``python -m paper_figures`` with its caption (the module's ``CAPTIONS``): which",
             "paper figure or table it reproduces, what is plotted, and our numbers beside the paper's. The",
             "images here are made during the docs build at ``size=\"test\"`` (seconds, small data), so their",
             "numbers are rougher than those of the default run (``python3 -m paper_figures --out figures``);",
             "the numbers each figure shows are listed under it, as written to ``results.json``.", ""]
    for module, captions in figure_captions().items():
        source = figures / module if (figures / module).is_dir() else figures
        lines.append(_title(f"``{module}``", "-"))
        lines += [f":mod:`paper_figures.{module}`: " + (inspect.getdoc(importlib.import_module(
            f"paper_figures.{module}")) or "").split("\n\n")[0].replace("\n", " "), ""]
        written = sorted(p.name for p in source.glob("*.png")) if source is not figures else []
        pngs = list(captions) if source is figures else [name for name in captions if name in written] + [
            name for name in written if name not in captions]
        for name in pngs:
            caption = captions.get(name)
            if caption is None:
                problems.append(f"{module}: {name} has no entry in CAPTIONS")
                caption = f"(No caption yet: {module}.CAPTIONS has no entry for {name}.)"
            if not (source / name).exists():
                problems.append(f"{module}: CAPTIONS names {name}, which the run did not write")
                continue
            shutil.copy2(source / name, folder / name)
            width = int.from_bytes((folder / name).read_bytes()[16:20], "big")   # the PNG header's width
            size = ["   :width: 100%"] if width > 900 else []   # small plots keep their size, wide ones fit
            lines += [f".. figure:: {name}", *size, "", "   " + _rst_text(caption), ""]
        for name in [name for name in captions if name not in pngs]:
            problems.append(f"{module}: CAPTIONS names {name}, which the run did not write")
        results = source / "results.json"
        if results.exists() and source is not figures:
            lines += [".. raw:: html", "", "   <details><summary>The numbers these figures show, as recorded in "
                      "results.json (4 significant digits)</summary>", "", ".. code-block:: text", ""]
            for key, value in json.loads(results.read_text()).items():
                lines += ["   " + line for line in textwrap.wrap(f"{key}: {json.dumps(_rounded(value))}", 100,
                                                                   break_on_hyphens=False)]
            lines += ["", ".. raw:: html", "", "   </details>", ""]
    (folder / "index.rst").write_text("\n".join(lines) + "\n")
    return problems


def _builder_inited(app):
    from sphinx.util import logging

    logger = logging.getLogger("opdiff_docs")
    write_api_pages()
    copy_notebooks()
    write_examples()
    figures = os.environ.get("OPDIFF_DOCS_FIGURES")
    if figures:
        source = pathlib.Path(figures).resolve()
    else:
        source = pathlib.Path(app.outdir).parent / "gallery-cache"
        logger.info("making the paper figures at size='test' for the gallery ...")
        for module, error in make_figures(source).items():
            logger.warning(f"paper_figures.{module} failed at size='test':\n{error}")
        for timing in sorted(source.glob("*/seconds.txt")):
            logger.info(f"gallery: {timing.parent.name} took {timing.read_text().strip()} s")
    # Missing or stale captions are reported by tests/test_docs.py; here they are shown on the page and
    # listed, so that a figure module still being written does not fail the -W build.
    for problem in write_gallery(source):
        logger.info(f"gallery: {problem}")


class _DocstringWarnings:
    """Warning-handler filter: docutils complaints inside docstrings (and autosummary's one-line extracts
    of them) are shown as info lines, not counted as warnings. ``tests/test_docs.py`` checks the
    docstrings' sections, so a malformed docstring elsewhere does not fail the ``-W`` build."""

    def __init__(self, app, info_handler):
        from sphinx.util.logging import WarningLogRecordTranslator

        self.translate = WarningLogRecordTranslator(app).filter
        self.info_handler = info_handler
        self.count = 0

    def filter(self, record):
        self.translate(record)   # the location becomes "path:line" text, as the handler would print it
        location = str(getattr(record, "location", "") or "")
        if "docstring of" not in location and "<autosummary>" not in location:
            return True
        self.count += 1
        if self.info_handler is not None:
            record.levelname, record.levelno = "INFO", 20
            record.msg = f"(docstring, not counted) {location}: {record.msg}"
            self.info_handler.handle(record)
        return False


def setup(app):
    """Register the page generators with Sphinx.

    Parameters
    ----------
    app : sphinx.application.Sphinx

    Returns
    -------
    dict
        The extension's metadata.
    """
    import logging

    from sphinx.util.logging import NAMESPACE, NewLineStreamHandler, WarningStreamHandler

    handlers = logging.getLogger(NAMESPACE).handlers
    info = next((h for h in handlers if isinstance(h, NewLineStreamHandler)), None)
    for handler in handlers:
        if isinstance(handler, WarningStreamHandler):
            handler.filters.insert(0, _DocstringWarnings(app, info))
    app.connect("builder-inited", _builder_inited)
    return {"parallel_read_safe": True, "version": "1"}
