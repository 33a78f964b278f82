"""The layout shows the architecture, and stays that way: imports flow one way
(nn -> optim -> data -> dist -> cli), only the communication module imports mpi4py,
every module has a test home, files stay small, kernels state their shapes."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "distbp"
LAYERS = ["errors", "nn", "optim", "data", "dist", "cli"]  # each may import only leftwards
ENTRY_POINTS = {"train": "tests/cli/test_job.py", "plot": "tests/cli/test_plot.py",
                "predict": "tests/cli/test_predict.py", "export": "tests/cli/test_export.py",
                "errors": "tests/test_errors.py"}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def layer_of(module: str) -> int:
    """Index in LAYERS of 'distbp.dist.comm' (dist); the package root's entry points last."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return len(LAYERS)  # distbp itself, distbp.train, distbp.plot: above everything


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: dotted(p))
def test_imports_flow_one_way(path):
    mine = layer_of(dotted(path))
    for name in imports(path):
        if name.startswith("distbp.") and name.split(".")[1] in LAYERS:
            assert layer_of(name) <= mine, f"{dotted(path)} imports {name}"


def test_only_the_communication_module_imports_mpi4py():
    importers = [dotted(p) for p in PACKAGE.rglob("*.py")
                 if any(name.split(".")[0] == "mpi4py" for name in imports(p))]
    assert importers == ["distbp.dist.comm"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: dotted(p))
def test_every_module_has_a_test_home(path):
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        home = ROOT / ENTRY_POINTS[path.stem]
    else:
        home = ROOT / "tests" / relative.parent / f"test_{path.stem}.py"
    assert home.is_file(), f"{dotted(path)} has no tests at {home.relative_to(ROOT)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: dotted(p))
def test_files_are_small_and_say_what_they_are(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 250
    assert ast.get_docstring(ast.parse(text)), f"{dotted(path)} has no module docstring"


def kernels():
    """(where, docstring) of every forward/backward defined in distbp.nn."""
    for path in sorted((PACKAGE / "nn").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name in ("forward", "backward"):
                        yield f"{path.stem}.{node.name}.{item.name}", ast.get_docstring(item)


def test_every_kernel_states_its_shapes():
    found = dict(kernels())
    assert len(found) >= 30
    missing = [where for where, doc in found.items() if not doc or "->" not in doc]
    assert not missing, f"forward/backward without a shape docstring: {missing}"


def test_no_source_file_is_ignored_by_git():
    """A clean clone must hold every module: a .gitignore pattern such as `dist/` once
    hid the whole distbp/dist package from commits while every local run passed."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard",
                          "distbp", "tests", "scripts", "cluster", "docs"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    hidden = [f for f in out.split() if "__pycache__" not in f and not f.endswith(".pyc")]
    assert hidden == [], f"files git ignores (fix .gitignore): {hidden}"


def test_test_modules_have_distinct_names():
    """pytest imports test modules by basename (rootdir-relative folders are not packages):
    two files of one name stop the whole collection."""
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []
