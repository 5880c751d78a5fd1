"""The documentation: every public function and class (each subpackage's ``__all__``) is in the API
reference and has a NumPy-style docstring (Parameters for every callable that takes arguments, naming each
argument; Returns, or Yields, for every function that returns a value; a class's constructor arguments in
its own docstring or its ``__init__``'s; a docstring on every public method); the figure modules caption
every PNG they write; no file of the project points outside it."""
import ast
import dataclasses
import importlib
import importlib.util
import inspect
import pathlib
import re
import subprocess
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTION = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}\s*$", re.MULTILINE)


def _docs_module():
    spec = importlib.util.spec_from_file_location("opdiff_docs", ROOT / "docs" / "_ext" / "opdiff_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docs = _docs_module()
PACKAGES = docs.subpackages()


def sections(docstring):
    """``section title -> body`` of a NumPy-style docstring (the text before the first section is ``""``)."""
    text = inspect.cleandoc(docstring or "")
    found = list(SECTION.finditer(text))
    parts = {"": text[: found[0].start()] if found else text}
    for match, following in zip(found, found[1:] + [None]):
        parts[match.group(1).strip()] = text[match.end(): following.start() if following else len(text)]
    return parts


def documented_parameters(body):
    """Names a Parameters section describes (``x``, ``x, y : ...``, ``*args``, ``**kwargs``)."""
    names = set()
    for line in body.splitlines():
        if line and not line[0].isspace():
            for name in line.split(":")[0].split(","):
                names.add(name.strip().lstrip("*"))
    return names


def returns_value(function):
    """Whether ``function``'s own body (not nested functions) returns a value or yields."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return False, False
    tree = ast.parse(source).body[0]
    returns = yields = False
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            returns = True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            yields = True
        stack.extend(ast.iter_child_nodes(node))
    return returns, yields


def arguments(function):
    """Parameter names a caller passes (``self`` / ``cls`` left out); ``[]`` when there is no signature."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    return [name for name in signature.parameters if name not in ("self", "cls")]


def docstring_problems(name, function, docstring, check_returns=True):
    """What the NumPy-style docstring of one callable lacks (an empty list when nothing)."""
    if not (docstring or "").strip():
        return [f"{name}: no docstring"]
    parts, problems = sections(docstring), []
    wanted = arguments(function)
    if wanted:
        if "Parameters" not in parts:
            problems.append(f"{name}: no Parameters section (takes {wanted})")
        else:
            missing = [arg for arg in wanted if arg not in documented_parameters(parts["Parameters"])]
            if missing:
                problems.append(f"{name}: Parameters does not describe {missing}")
    if check_returns:
        returns, yields = returns_value(function)
        if returns and "Returns" not in parts and "Yields" not in parts:
            problems.append(f"{name}: returns a value but has no Returns section")
        if yields and not returns and "Yields" not in parts:
            problems.append(f"{name}: yields but has no Yields section")
    return problems


def public_methods(cls):
    """``(name, function)`` of the public methods ``cls`` defines itself (inherited ones are checked where defined)."""
    for attribute, value in vars(cls).items():
        if attribute.startswith("_") or not inspect.isfunction(value):
            continue
        yield attribute, value


def object_problems(full_name, kind, obj):
    if kind == "module":   # a submodule in __all__ (e.g. opdiff.estimators.losses): its members, documented with it
        return [problem for name, member_kind, member in docs.module_members(obj)
                for problem in object_problems(f"{full_name}.{name}", member_kind, member)]
    if kind == "function":
        return docstring_problems(full_name, obj, inspect.getdoc(obj))
    if kind != "class":
        return []
    problems = []
    init = vars(obj).get("__init__")
    fields = [field.name for field in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else \
        list(getattr(obj, "_fields", [])) if issubclass(obj, tuple) else None
    if fields is not None:   # a dataclass or NamedTuple: its fields are its Attributes (or Parameters)
        parts = sections(obj.__doc__)
        described = documented_parameters(parts.get("Attributes", "") + "\n" + parts.get("Parameters", ""))
        missing = [field for field in fields if field not in described]
        if missing:
            problems.append(f"{full_name}: Attributes (or Parameters) does not describe the fields {missing}")
    elif init is not None and inspect.isfunction(init):
        # numpydoc reads the constructor's parameters from the class docstring (or from __init__'s).
        doc = obj.__doc__ if "Parameters" in sections(obj.__doc__) else (init.__doc__ or obj.__doc__)
        problems += docstring_problems(full_name, init, doc, check_returns=False)
    elif not (obj.__doc__ or "").strip():
        problems.append(f"{full_name}: no docstring")
    if obj.__module__.startswith("opdiff"):
        # Methods are rendered with their class: each needs a docstring (their sections: see method_problems).
        problems += [f"{full_name}.{method_name}: no docstring" for method_name, method in public_methods(obj)
                     if not (inspect.getdoc(method) or "").strip()]
    return problems


def method_problems(package):
    """The full NumPy-style check applied to the public methods of a subpackage's classes (a report, for
    ``python3 -c "import tests.test_docs as t; print(*t.method_problems('opdiff.sampling'), sep=chr(10))"``)."""
    problems = []
    for name, kind, obj in docs.public_objects(package):
        if kind == "class" and obj.__module__.startswith("opdiff"):
            for method_name, method in public_methods(obj):
                problems += docstring_problems(f"{package}.{name}.{method_name}", method, inspect.getdoc(method))
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_object_is_in_the_api_reference(package, tmp_path):
    rows = docs.public_objects(package)
    assert rows, f"{package} exports nothing: give it an __all__"
    pages = {page.stem: page.read_text() for page in docs.write_api_pages(tmp_path)}
    assert sorted(pages) == PACKAGES
    assert all(f"   {stem}" in (tmp_path / "index.rst").read_text() for stem in pages)
    page = pages[package]
    for name, kind, _ in rows:
        entry = {"class": "autoclass", "function": "autofunction", "data": "autodata", "module": "automodule"}[kind]
        described = f".. {entry}:: {package}.{name}\n" in page or f":: {package}.{name}\n   :no-index:" in page
        assert described, f"{package}.{name} is missing from the API reference page"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_a_subpackage_binds_is_in_its_all(package):
    module = importlib.import_module(package)
    exported = set(module.__all__)
    bound = [name for name, value in vars(module).items() if not name.startswith("_")
             and (inspect.isclass(value) or inspect.isfunction(value))
             and getattr(value, "__module__", "").startswith("opdiff")]
    missing = sorted(set(bound) - exported)
    assert not missing, f"{package} imports {missing} at its top level but leaves them out of __all__ (and the docs)"
    assert len(exported) == len(module.__all__), f"{package}.__all__ lists a name twice"


def test_an_object_exported_twice_is_described_once(tmp_path):
    docs.write_api_pages(tmp_path)
    text = "".join(page.read_text() for page in tmp_path.glob("opdiff.*.rst"))
    described = re.findall(r"^\.\. auto(?:class|function):: (\S+)$", text, re.MULTILINE)
    objects = {}
    for full in described:
        package, _, name = full.rpartition(".")
        objects.setdefault(id(getattr(importlib.import_module(package), name)), []).append(full)
    assert all(len(names) == 1 for names in objects.values()), [n for n in objects.values() if len(n) > 1]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_docstrings_are_numpy_style(package):
    problems = []
    for name, kind, obj in docs.public_objects(package):
        problems += object_problems(f"{package}.{name}", kind, obj)
    assert not problems, "\n".join(problems)


def test_the_docstring_checker_catches_missing_sections():
    def documented(x, y=1):
        """Add.

        Parameters
        ----------
        x, y : float
            Terms.

        Returns
        -------
        float
        """
        return x + y

    def undocumented(x, scale):
        """Scale ``x``.

        Parameters
        ----------
        x : float
        """
        return x * scale

    def generator(n):
        """Count."""
        yield from range(n)

    assert docstring_problems("documented", documented, documented.__doc__) == []
    assert docstring_problems("undocumented", undocumented, undocumented.__doc__) == [
        "undocumented: Parameters does not describe ['scale']",
        "undocumented: returns a value but has no Returns section"]
    assert docstring_problems("generator", generator, generator.__doc__) == [
        "generator: no Parameters section (takes ['n'])", "generator: yields but has no Yields section"]

    @dataclasses.dataclass
    class Record:
        """A result.

        Attributes
        ----------
        value : float
        """

        value: float
        count: int

    assert object_problems("Record", "class", Record) == [
        "Record: Attributes (or Parameters) does not describe the fields ['count']"]


def test_figure_modules_caption_every_png_they_write():
    import paper_figures

    for module in paper_figures.figure_modules():
        source = (ROOT / "paper_figures" / f"{module}.py").read_text()
        written = set(re.findall(r"[\"']([a-z0-9_]+\.png)[\"']", source))
        captions = getattr(paper_figures.load(module), "CAPTIONS", None)
        assert isinstance(captions, dict) and captions, f"{module}: define CAPTIONS = {{'file.png': 'caption'}}"
        assert set(captions) == written, f"{module}: CAPTIONS {sorted(captions)} vs PNGs named {sorted(written)}"
        for name, caption in captions.items():
            assert re.search(r"arXiv \d{4}\.\d{4,5}", caption), f"{module}: {name}'s caption cites no paper"
            assert len(caption.split()) >= 20, f"{module}: {name}'s caption is too short to say what is plotted"


def test_gallery_page_shows_each_png_with_its_caption(tmp_path):
    import paper_figures

    figures = tmp_path / "figures"
    module_name = "fig_dks"
    captions = paper_figures.load(module_name).CAPTIONS
    (figures / module_name).mkdir(parents=True)
    for name in captions:
        (figures / module_name / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    (figures / module_name / "results.json").write_text('{"dks": {"x": 1.5}}\n')
    problems = docs.write_gallery(figures, tmp_path / "gallery")
    page = (tmp_path / "gallery" / "index.rst").read_text()
    for name, caption in captions.items():
        assert f".. figure:: {name}" in page and docs._rst_text(caption) in page
        assert (tmp_path / "gallery" / name).exists()
    assert '"x": 1.5' in page
    assert not [problem for problem in problems if problem.startswith("fig_dks")]
    others = [module for module in paper_figures.figure_modules() if module != module_name]
    assert all(any(problem.startswith(other) for problem in problems) for other in others if
               getattr(paper_figures.load(other), "CAPTIONS", None))   # the other modules wrote nothing here: each is reported


def test_no_file_points_outside_the_project():
    # assembled from parts so that this line is not itself a hit of the pattern
    pattern = "|".join([r"\.\./" + "shared", "notes/[a-z_]+" + r"\.md", "shared" + " folder", "owned" + " by",
                        "another" + " helper", "notes" + ", "])
    found = subprocess.run(["git", "grep", "-n", "-I", "-E", pattern, "--", ".", ":!tests/test_docs.py"],
                           cwd=ROOT, capture_output=True, text=True)
    if found.returncode not in (0, 1):   # not a git checkout (an unpacked archive): read the files directly
        skip = {".git", "_build", "generated", "__pycache__", ".ipynb_checkpoints"}
        hits = [f"{path.relative_to(ROOT)}: {line}" for path in sorted(ROOT.rglob("*")) if path.is_file()
                and not skip & set(path.relative_to(ROOT).parts) and path.suffix in {".py", ".md", ".ipynb", ".cfg", ".txt"}
                and path.name != "test_docs.py" for line in path.read_text(errors="ignore").splitlines()
                if re.search(pattern, line)]
        found = subprocess.CompletedProcess([], 0 if hits else 1, "\n".join(hits), "")
    assert found.returncode == 1, f"files point outside the repository or speak of who wrote what:\n{found.stdout}"


def test_ci_builds_the_docs_with_the_readme_command():
    readme = (ROOT / "README.md").read_text()
    command = next(block for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) if "sphinx" in block)
    build = command.strip().split("&& ")[-1]
    assert "-W" in build.split() and "--keep-going" in build.split()   # warnings are errors
    ci = (ROOT / ".ci" / "run").read_text()
    assert build in ci
    assert '".[test,keops,dask,docs]"' in ci


def test_every_example_script_has_a_page(tmp_path):
    scripts = docs.write_examples(tmp_path)
    assert scripts == sorted((ROOT / "docs" / "examples").glob("*.py"))
    index = (tmp_path / "index.rst").read_text()
    for script in scripts:
        assert f"   {script.stem}" in index
        assert f".. literalinclude:: /examples/{script.name}" in (tmp_path / f"{script.stem}.rst").read_text()


GUIDE_PAGES = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "docs" / "guide").glob("*.md"))


@pytest.mark.parametrize("page", GUIDE_PAGES, ids=[p.stem for p in GUIDE_PAGES])
def test_code_on_the_docs_pages_runs(page):
    import matplotlib

    matplotlib.use("Agg")
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    namespace = {}
    for block in blocks:   # the blocks of a page run in order, in one namespace, as a reader would paste them
        exec(compile(block, f"{page.name}", "exec"), namespace)
