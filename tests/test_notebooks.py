"""Execute every notebook in notebooks/ (small settings) so the worked examples stay true."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("CFX_NOTEBOOK_SMALL", "1")  # notebooks read this to shrink their work
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    # a Python warning ("path:line: SomeWarning: ...") in a cell's output is noise a reader of
    # the example has to puzzle over, e.g. tqdm's "IProgress not found" on importing cfx
    warned = [
        out["text"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and re.search(r"\w+Warning: ", out["text"])
    ]
    assert not warned
