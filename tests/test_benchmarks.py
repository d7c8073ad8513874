"""The benchmark scripts are not run in CI (they take tens of minutes), so a renamed cfx
function would break one unseen until the next measurement: every name they import from cfx
must exist. (``without_start_notice``, renamed ``without_path_notices`` in session 33, broke
benchmarks/trajectory.py this way.)"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.py"))


def _cfx_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from cfx... import name`` in ``path``, nested ones too."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cfx"
        for alias in node.names
    ]


def test_there_are_benchmarks_importing_cfx():
    assert len(BENCHMARKS) >= 5
    assert sum(bool(_cfx_imports(p)) for p in BENCHMARKS) >= 5


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_every_name_a_benchmark_imports_from_cfx_exists(path):
    missing = []
    for module, name in _cfx_imports(path):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            missing.append(module)
            continue
        if not hasattr(mod, name):
            try:  # a submodule imported by name: from cfx import metrics
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert missing == [], f"{path.name} imports names cfx no longer has: {missing}"


def _defined(path: Path) -> set[str]:
    """Names a script defines or imports at its top level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _sibling_imports(path: Path) -> list[tuple[str, str]]:
    """(script, name) of every ``from SCRIPT import name`` of another benchmark script."""
    stems = {p.stem for p in BENCHMARKS}
    return [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.ImportFrom) and node.module in stems
        for alias in node.names
    ]


def test_sibling_imports_are_checked_on_a_known_case():
    probe = next(p for p in BENCHMARKS if p.name == "latent_shift_probe.py")
    assert ("trajectory", "run_latent_shift") in _sibling_imports(probe)


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_every_name_a_benchmark_imports_from_another_exists(path):
    """latent_shift_probe.py takes helpers from trajectory.py: renaming one there would break
    the probe unseen, as a cfx rename would (session-54 benchmark audit)."""
    folder = path.parent
    missing = [
        f"{script}.{name}"
        for script, name in _sibling_imports(path)
        if name not in _defined(folder / f"{script}.py")
    ]
    assert missing == [], f"{path.name} imports names its sibling scripts lack: {missing}"


def _quoted_commands() -> list[tuple[str, str, str]]:
    """(document, script name, arguments) of every ``python benchmarks/NAME.py ...`` the
    documents quote inside backticks (a command may wrap across lines)."""
    root = Path(__file__).parents[1]
    documents = [root / "BENCHMARKS.md", root / "README.md"]
    documents += sorted(root.glob("classifiers/*/README.md"))
    documents += sorted(root.glob("generators/*/README.md"))
    documents += sorted(root.glob("benchmarks/results/*.md"))
    found = []
    for doc in documents:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"`[^`]*?python benchmarks/(\w+)\.py([^`]*)`", text, re.DOTALL):
            found.append((doc.relative_to(root).as_posix(), m[1], m[2]))
    return found


def test_every_benchmark_command_the_documents_quote_exists_with_its_flags():
    """Every figure names the command that made it; a script renamed, or a flag dropped or
    renamed since, leaves the figure with no command that reproduces it (session-54 audit:
    nothing checked this, though all were current)."""
    commands = _quoted_commands()
    assert len(commands) >= 30  # the documents quote many; a broken pattern finds none
    scripts = {p.stem: p.read_text(encoding="utf-8") for p in BENCHMARKS}
    wrong = []
    for doc, name, args in commands:
        if name not in scripts:
            wrong.append(f"{doc}: benchmarks/{name}.py does not exist")
            continue
        own = set(re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", scripts[name])) | {"--help"}
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", args):
            if flag not in own:
                wrong.append(f"{doc}: benchmarks/{name}.py has no {flag}")
    assert wrong == []
