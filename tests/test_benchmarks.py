"""The benchmark scripts are not run in CI (they take tens of minutes), so a renamed cfx
function would break one unseen until the next measurement: every name they import from cfx
must exist. (``without_start_notice``, renamed ``without_path_notices`` in session 33, broke
benchmarks/trajectory.py this way.)"""

from __future__ import annotations

import ast
import importlib
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
