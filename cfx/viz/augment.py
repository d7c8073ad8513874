"""Figure of an augmentation round: the frames each path sent to the labeller, with their
labels and what changed between them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from cfx.label.classes import UNSURE, label_name
from cfx.viz._common import (
    _change,
    _change_style,
    _class_labels,
    _drawable,
    _pictures,
    _save,
    _shape,
    _some,
    drawing,
)
from cfx.viz._sheet import TITLE_LINE, Sheet, panel_height, panel_lefts


@drawing
def labelled_frames(
    images: Tensor,
    labels: Tensor,
    path: str | Path,
    *,
    per_path: int,
    class_names: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
    rows: int = 16,
) -> Path:
    """A row per path: the frames it sent to the labeller, each titled with the label it got,
    then where the last differs from the first (``|last - first|``, summed over channels, one
    colour scale for the figure). The frames sit on either side of the classifier's boundary,
    so the change is what moved the classifier across: a marker drawn or wiped rather than a
    lesion shows a shortcut.

    ``images`` ``(N, C, H, W)`` in [-1, 1], path after path (``per_path`` frames each, as
    :class:`~cfx.augment.ActiveLearner` labels one round's: a round's ``images`` in
    ``round_KK/round.safetensors``, or ``result.images`` split by each round's ``labelled``;
    a last path the budget cut short is drawn with the frames it has and no change, so pass
    rounds one at a time);
    ``labels`` ``(N,)`` class indices, named by ``class_names`` (-1, an image the labeller
    could not call, reads "unsure");
    ``levels`` (the learner's ``frame_levels``) head the columns with ``p(target) ~``: the
    classifier's probability of the class the path walks towards, each frame was taken
    nearest to. The
    first ``rows`` paths are drawn. Writes a PNG to ``path`` and returns it.
    """
    _shape("images", images, (None,) * 4, "(N, C, H, W)")
    _some("images", images, "images")
    if not isinstance(per_path, int) or isinstance(per_path, bool) or per_path < 1:
        raise ValueError(f"`per_path` must be an int >= 1, got {per_path!r}")
    n = images.shape[0]
    _shape("labels", labels, (n,), f"({n},), one per image")
    if levels is not None and len(levels) != per_path:
        raise ValueError(f"`levels` must give one level per frame of a path ({per_path}), "
                         f"got {len(levels)}")  # fmt: skip
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ValueError(f"`rows` must be an int >= 1, got {rows!r}")
    _class_labels("labels", labels, f"class indices, or {UNSURE} (unsure)", lowest=UNSURE)
    top = int(labels.max()) if labels.numel() else 0
    if class_names is not None and top >= len(class_names):
        raise ValueError(
            f"`class_names` must name every label: {len(class_names)} names, label {top} given"
        )
    names = list(class_names or [f"class {c}" for c in range(top + 1)])
    shown = min(-(-n // per_path), rows)  # a last path the budget cut short too
    frames = images[: shown * per_path].detach().float().cpu()
    drawn = frames.shape[0]  # frames on the figure; the last row may lack some
    pad = frames[:1].expand(shown * per_path - drawn, *frames.shape[1:])
    padded = torch.cat([frames, pad])  # whole rows to reshape; the padding is not drawn
    pics = _pictures(_drawable(padded), "images").reshape(shown, per_path, *frames.shape[-2:], -1)
    paths = padded.unflatten(0, (shown, per_path))
    whole = drawn // per_path  # rows with every frame: those have a change
    change, most = _change(paths[:, 0], paths[:, -1])  # (P, H, W)
    if whole:
        most = max(float(change[:whole].max()), 1e-6)  # the figure's scale: whole paths only
    cols = per_path + (1 if per_path > 1 else 0)
    # a 1.3-inch column per panel (a 1.2-inch square and a gap); each row its titles' lines
    # above its panels (the first row's also name the levels), as low as the images are
    column, side = 1.3, 1.2
    down = panel_height(tuple(frames.shape[-2:]), side)
    heads = [TITLE_LINE * (2 if levels is not None and i == 0 else 1) + 0.05 for i in range(shown)]
    sheet = Sheet(column * cols, sum(heads) + (down + 0.08) * shown + 0.05)
    xs = panel_lefts(cols, column, side)
    y = 0.05
    for i in range(shown):
        y += heads[i]
        for c in range(cols):
            if i * per_path + min(c, per_path - 1) >= drawn:  # the cut-short path's rest
                if c == drawn - i * per_path:  # the first frame missing
                    sheet.title("(budget spent)", xs[c], y, side)
                continue
            if c == per_path:  # the change column
                sheet.image(change[i], xs[c], y, side, **_change_style(most))
                if i == 0:
                    sheet.title(f"change (max {most:.2f})", xs[c], y, side)
                continue
            sheet.show(pics[i, c], xs[c], y, side)
            name = label_name(int(labels[i * per_path + c]), names)
            head = "" if levels is None or i else f"p(target) ~ {levels[c]:g}\n"
            sheet.title(f"{head}label: {name}", xs[c], y, side)
        y += down + 0.08
    return _save(sheet.fig, path, dpi=110)
