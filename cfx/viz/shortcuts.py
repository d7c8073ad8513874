"""The figure of a shortcut audit (:class:`cfx.shortcuts.ShortcutReport`): a few of its paths,
where each changed the image and where the classifier's saliency lay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from cfx.viz._common import _drawable, _finite, _pictures, _save, _show, _subplots, drawing

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
    fig, axes = _subplots(n, 5, figsize=(8.6, 1.45 * n + 0.3), squeeze=False)
    for r, i in enumerate(picked):
        # colour inputs in colour: channel 0 alone drew them grey and hid a blue-side edit
        src, start, last = _pictures(
            _drawable(torch.stack([report.paths.source[i], frames[i, 0], frames[i, -1]]))
        )
        heat: list[Tensor] = [change[i], _finite("saliency_maps", report.saliency_maps[i, 0])]
        panels = [(src, None), (start, None), (last, None)] + [
            ((h / h.max().clamp_min(1e-12)).cpu().numpy(), "inferno") for h in heat
        ]
        for c, (img, cmap) in enumerate(panels):
            ax = axes[r, c]
            ax.axis("off")
            if cmap is None:
                _show(ax, img)
            else:
                ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if r == 0:
                ax.set_title(heads[c], fontsize=7)
            if c >= 3:
                if bool(lesion[i].any()):
                    ax.contour(
                        lesion[i].cpu().numpy(), levels=[0.5], colors="yellow", linewidths=0.6
                    )
                ax.contour(marker[i].cpu().numpy(), levels=[0.5], colors="cyan", linewidths=0.6)
        p = report.paths.probs[i]
        via, undone = bool(report.via_marker[i]), bool(report.undone[i])
        if not bool(report.counted[i]):
            tag = "not counted"
        elif via:
            tag = "via marker" + (", restoring it undoes" if undone else "")
        else:
            tag = "restoring marker undoes" if undone else "not via marker"
        name = Path(files[i]).name if files is not None else f"image {i}"
        axes[r, 0].text(
            -2,
            src.shape[0] / 2,
            f"{name}\n{named.get(int(report.target[i]), f'target {int(report.target[i])}')}\n"
            f"p {float(p[0]):.2f}->{float(p[-1]):.2f}\nmarker share "
            f"{float(report.change.marker[i]):.2f}\n{tag}",
            fontsize=6,
            ha="right",
            va="center",
        )
    fig.subplots_adjust(left=0.17, right=0.99, bottom=0.01, top=1 - 0.3 / (1.45 * n + 0.3))
    fig.subplots_adjust(wspace=0.04, hspace=0.06)
    return _save(fig, path, dpi=120)
