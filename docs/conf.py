"""Sphinx configuration of the opdiff documentation.

Build (warnings are errors)::

    python3 -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference, the rendered notebooks and the figure gallery are generated at build time under
``docs/generated/`` by ``docs/_ext/opdiff_docs.py``.
"""
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))   # opdiff and paper_figures come from the installed package

import opdiff  # noqa: E402

project = "opdiff"
author = "the opdiff developers"
copyright = "the opdiff developers, BSD-3-Clause"
release = version = opdiff.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",   # ships MathJax with the site: the pages render their equations offline
    "numpydoc",
    "myst_nb",
    "opdiff_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "examples/*.py", "**/.ipynb_checkpoints"]
templates_path = []

# The API reference: autodoc of each subpackage's __all__ with numpydoc rendering. Docstring-level
# problems are left to tests/test_docs.py (sections, Parameters, Returns); the build itself only fails
# on problems of the pages.
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
numpydoc_attributes_as_param_list = False

# Notebooks are rendered with the outputs committed beside them; nothing is executed here.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "furo"
html_title = f"opdiff {release}"
html_static_path = []
