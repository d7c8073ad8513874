"""The explicit package list in pyproject.toml must cover every cfx package."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_cfx_package_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "cfx").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def test_every_family_is_an_attribute_after_a_bare_import_cfx():
    import subprocess
    import sys

    import cfx

    found = {
        p.stem if p.suffix == ".py" else p.name
        for p in (ROOT / "cfx").iterdir()
        if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())
    } - {"cli"}  # the command line is not a library family
    # in a fresh interpreter, where nothing has imported the family yet (in this process
    # other tests may have, which put it in cfx's namespace: cfx.files passed that way)
    listed = "import cfx; print(' '.join(dir(cfx)))"
    out = subprocess.run([sys.executable, "-c", listed], capture_output=True, text=True, check=True)
    fresh = set(out.stdout.split())
    assert found <= fresh, f"add to cfx._SUBMODULES: {sorted(found - fresh)}"
    assert set(cfx.__all__) <= fresh  # the top-level names, loaded on first use, are listed
    # and nothing else public: typing's and importlib's names were listed beside them
    public = {name for name in fresh if not name.startswith("_")}
    assert public == found | (set(cfx.__all__) - {"__version__"})
    code = (
        "import cfx; print(cfx.trajectory.save_result.__name__, cfx.zoo.load_classifier.__name__,"
        " cfx.invert.__name__, cfx.Classifier.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["save_result", "load_classifier", "invert", "Classifier"]
    try:
        cfx.no_such_family  # noqa: B018
    except AttributeError as err:
        assert "no_such_family" in str(err)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")


def test_constraints_pin_torch_once():
    pins = [
        line.split("#")[0].strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert pins == ["torch==2.14.1", "torchvision==0.29.1"]
    assert "constraints.txt" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"
