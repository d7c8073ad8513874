"""A command's outputs repeat what its run warned about: a [0, 1] batch is warned about on
stderr, but the summary or report read later said nothing of it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cfx.cli import main

BELOW_0 = "is below 0"  # the inversion's and the saliency commands' [0, 1] warnings


@pytest.fixture(scope="module")
def unit_batch(tmp_path_factory):
    """Two tumour slices in [0, 1] (and their lesion masks) as .npy files."""
    from cfx.saliency.compare import tumour_slices

    x, masks = tumour_slices(2, 1)
    folder = tmp_path_factory.mktemp("unit")
    np.save(folder / "x.npy", ((x + 1) / 2).numpy())
    np.save(folder / "m.npy", masks.numpy())
    return folder


def _kept(notes: list[str]) -> list[str]:
    said = [n for n in notes if BELOW_0 in n]
    assert len(said) == 1, notes
    return said


@pytest.mark.parametrize(
    ("argv", "written"),
    [
        (
            [
                "trajectory",
                "--no-figures",
                "--target",
                "healthy",
                "--method",
                "gradient",
                "--steps",
                "2",
            ],
            "summary.json",
        ),
        (["saliency", "attack", "--steps", "1"], "attack.json"),
        (["saliency", "randomise", "--methods", "gradient"], "summary.json"),
    ],
    ids=["trajectory", "attack", "randomise"],
)
def test_json_outputs_list_the_runs_warnings(unit_batch, tmp_path, argv, written):
    out = tmp_path / "out"
    given = ["--input", str(unit_batch / "x.npy"), "--no-progress", "--out", str(out)]
    assert main([*argv, *given]) == 0
    _kept(json.loads((out / written).read_text())["warnings"])


def test_the_compare_table_opens_with_the_runs_warnings(unit_batch, tmp_path):
    out = tmp_path / "out"
    argv = ["saliency", "compare", "--input", str(unit_batch / "x.npy"), "--masks"]
    argv += [str(unit_batch / "m.npy"), "--classifier", "brain-cnn", "--target", "tumour"]
    argv += ["--methods", "gradient", "--attack-n", "0", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    (said,) = _kept([line[2:] for line in (out / "table.md").read_text().splitlines()
                     if line.startswith("- ")])  # fmt: skip
    table = (out / "table.md").read_text()
    assert table.index("**Warnings of this run:**") < table.index(said) < table.index("| method")
