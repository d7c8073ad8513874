"""The figure of a shortcut audit (:class:`cfx.shortcuts.ShortcutReport`): a few of its paths,
where each changed the image and where the classifier's saliency lay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from cfx.viz._common import _drawable, _finite, _pictures, _save, drawing
from cfx.viz._sheet import Sheet, panel_height, panel_lefts, shortened

if TYPE_CHECKING:
    from cfx.shortcuts import ShortcutReport


def pick_examples(report: ShortcutReport, per_direction: int = 3) -> list[int]:
    """Up to ``per_direction`` rows per target class, in class order: counted paths via the
    marker or undone by restoring it first, then other counted paths, then the rest."""
    via, counted, target = report.via_marker | report.undone, report.counted, report.target
    rows: list[int] = []
    for t in range(len(report.class_names)):
        mine = target == t
        ranked = [
            *torch.nonzero(mine & counted & via).flatten().tolist(),
            *torch.nonzero(mine & counted & ~via).flatten().tolist(),
            *torch.nonzero(mine & ~counted).flatten().tolist(),
        ]
        rows += ranked[:per_direction]
    return rows


@drawing
def shortcut_examples(
    report: ShortcutReport,
    path: str | Path,
    *,
    rows: Sequence[int] | None = None,
    directions: Mapping[int, str] | None = None,
    files: Sequence[str | Path] | None = None,
) -> Path:
    """Draw some of ``report``'s paths to ``path`` (PNG) and return it.

    Per row: the input, its reconstruction G(z_0) (the path's start, which the change is
    measured from), the last frame, then |change| and |saliency| (of the input) heat maps, each
    from black (none) to yellow-white (its own largest value), with the lesion (yellow) and the
    marker region (cyan) outlined; beside it the image's file (or
    row number), direction, target probability, the marker's share of the change and whether
    the path counted, went via the marker and had its flip undone by restoring the marker.

    Args:
        report: a :class:`~cfx.shortcuts.ShortcutReport`.
        path: the PNG to write (folders are created).
        rows: the paths to draw, by row; default :func:`pick_examples` (three per direction,
            via-marker paths first).
        directions: a name per target class (default ``"tumour->healthy"`` style, from the
            report's class names).
        files: one name per input image (e.g. its file), shown instead of the row number.
    """
    frames = report.paths.frames
    b = frames.shape[0]
    if files is not None and len(files) != b:
        raise ValueError(f"`files` must name the report's {b} images, got {len(files)} names")
    picked = pick_examples(report) if rows is None else [int(r) for r in rows]
    if rows is not None and not picked:  # drew a figure of empty axes
        raise ValueError("`rows` must name at least one path to draw, got none")
    wrong = [r for r in picked if not 0 <= r < b]
    if wrong:
        raise ValueError(f"`rows` must be rows of the report's {b} paths, got {wrong[:5]}")
    from cfx.shortcuts.report import direction_names  # cfx.viz imports no audit machinery

    named = direction_names(report.class_names) | dict(directions or {})
    change = _finite("frames", (frames[:, -1] - frames[:, 0]).abs().sum(1))  # (B, H, W)
    marker = report.marker_masks.expand(b, -1, -1, -1)[:, 0].float()
    lesion = report.lesion_masks[:, 0].float()
    # each heat map is scaled to its own maximum: shares within a row, not sizes across rows
    heads = [
        "input",
        "G(z_0)",
        "last frame",
        "|change| (0 to row max)",
        "|saliency| (0 to row max)",
    ]
    n = max(1, len(picked))
    # five 1.41-inch columns (a 1.33-inch square and a gap) right of a 1.45-inch band for
    # each row's facts; the heads above the first row; rows as low as the images are
    left, column, side = 1.45, 1.41, 1.33
    down = panel_height(tuple(frames.shape[-2:]), side)
    head, pitch = 0.2, down + 0.08
    sheet = Sheet(left + column * 5, head + pitch * n)
    xs = panel_lefts(5, column, side, left)
    for c, title in enumerate(heads):
        sheet.title(title, xs[c], head, side)
    for r, i in enumerate(picked):
        y = head + pitch * r
        # colour inputs in colour: channel 0 alone drew them grey and hid a blue-side edit
        src, start, last = _pictures(
            _drawable(torch.stack([report.paths.source[i], frames[i, 0], frames[i, -1]]))
        )
        for c, picture in enumerate((src, start, last)):
            sheet.show(picture, xs[c], y, side, frame=False)
        heat: list[Tensor] = [change[i], _finite("saliency_maps", report.saliency_maps[i, 0])]
        for c, h in enumerate(heat, start=3):
            scaled = (h / h.max().clamp_min(1e-12)).cpu().numpy()
            sheet.image(scaled, xs[c], y, side, frame=False, cmap="inferno", vmin=0, vmax=1)
            if bool(lesion[i].any()):
                sheet.outline(lesion[i].cpu().numpy(), xs[c], y, side, "yellow")
            sheet.outline(marker[i].cpu().numpy(), xs[c], y, side, "cyan")
        p = report.paths.probs[i]
        via, undone = bool(report.via_marker[i]), bool(report.undone[i])
        if not bool(report.counted[i]):
            tag = "not counted"
        elif via:
            tag = "via marker" + (", restoring it undoes" if undone else "")
        else:
            tag = "restoring marker undoes" if undone else "not via marker"
        name = shortened(Path(files[i]).name if files is not None else f"image {i}", left - 0.1, 6)
        facts = (
            f"{name}\n{named.get(int(report.target[i]), f'target {int(report.target[i])}')}\n"
            f"p {float(p[0]):.2f}->{float(p[-1]):.2f}\nmarker share "
            f"{float(report.change.marker[i]):.2f}\n{tag}"
        )
        sheet.ax.text(xs[0] - 0.05, y + down / 2, facts, fontsize=6, ha="right", va="center")
    return _save(sheet.fig, path, dpi=120)
