"""cfx.viz.shortcut_examples: the audit's figure, for the Python API as for the command."""

from __future__ import annotations

import pytest

from cfx.viz import shortcut_examples
from cfx.viz.shortcuts import pick_examples

from .test_audit import _scripted_report

ROWS = [
    ((1.0, 0.5, 0.0), (1.0, -0.5, 0.0), 0),  # 0: removes the lesion only: counted, not via
    ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0),  # 1: removes the marker only: via
    ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1),  # 2: already tumour: not counted
    ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1),  # 3: paints the marker: via
    ((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 1),  # 4: paints a lesion: counted, not via
]


def test_examples_are_picked_via_the_marker_first_per_direction():
    report = _scripted_report(ROWS)
    assert report.via_marker.tolist()[:2] == [False, True]
    assert report.counted.tolist() == [True, True, False, True, True]
    assert pick_examples(report) == [1, 0, 3, 4, 2]
    assert pick_examples(report, per_direction=1) == [1, 3]


def test_the_figure_is_written_and_bad_rows_or_names_are_named(tmp_path):
    from PIL import Image

    report = _scripted_report(ROWS)
    out = shortcut_examples(
        report, tmp_path / "figs" / "examples", files=[f"s{i}.png" for i in range(5)]
    )
    assert out == tmp_path / "figs" / "examples.png"
    two = shortcut_examples(report, tmp_path / "two.png", rows=[1, 3])
    tall, short = Image.open(out).size[1], Image.open(two).size[1]
    assert tall > 2 * short  # five rows against two
    with pytest.raises(ValueError, match=r"`rows` must be rows of the report's 5 paths, got \[7\]"):
        shortcut_examples(report, tmp_path / "x.png", rows=[1, 7])
    with pytest.raises(ValueError, match="`files` must name the report's 5 images, got 2"):
        shortcut_examples(report, tmp_path / "x.png", files=["a", "b"])


def test_colour_inputs_are_drawn_in_colour(tmp_path):
    """The input, G(z_0) and last-frame panels drew channel 0 alone, in grey: a red input
    came out white and an edit on the blue side was invisible (session-53 audit)."""
    from dataclasses import replace

    import numpy as np
    from PIL import Image

    report = _scripted_report(ROWS)
    frames = report.paths.frames.repeat(1, 1, 3, 1, 1)
    frames[:, :, 0], frames[:, :, 1:] = 1.0, -1.0  # pure red
    source = report.paths.source.repeat(1, 3, 1, 1)
    source[:, 0], source[:, 1:] = 1.0, -1.0
    red = replace(report, paths=replace(report.paths, frames=frames, source=source))
    out = shortcut_examples(red, tmp_path / "red.png", rows=[1])
    with Image.open(out) as png:
        pixels = np.asarray(png.convert("RGB")).reshape(-1, 3).astype(int)
    reddish = (pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)
    assert reddish.sum() > 300  # three red panels
