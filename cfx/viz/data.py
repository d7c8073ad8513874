"""Figures of datasets: brain slices with their lesions and markers, plain image grids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from torch import Tensor

from cfx.errors import check_int
from cfx.files import path_argument, write_atomic
from cfx.viz._common import (
    _class_labels,
    _picture_bytes,
    _pictures,
    _save,
    _shape,
    _some,
    drawing,
)
from cfx.viz._sheet import TITLE_LINE, Sheet, panel_height, panel_lefts, shortened


@drawing
def brain_preview(
    images: Tensor,
    labels: Tensor,
    masks: Tensor,
    tags: Tensor,
    path: str | Path,
    *,
    columns: int = 8,
    marker_box: tuple[slice, slice] | None = None,
) -> Path:
    """Grid of slices with lesion outlines (yellow) and scanner markers boxed (cyan).

    ``images`` ``(N, 1, H, W)`` in [-1, 1], ``labels`` ``(N,)``, ``masks`` ``(N, 1, H, W)`` bool,
    ``tags`` ``(N,)`` bool. Writes a PNG to ``path`` and returns it.
    """
    _shape("images", images, (None, None, None, None), "(N, 1, H, W)")
    n = images.shape[0]
    for name, value in (("labels", labels), ("tags", tags)):
        _shape(name, value, (n,), f"({n},), one per image")
    _class_labels("labels", labels, "0 (healthy) or 1 (tumour)", highest=1)
    titles = [
        ("tumour" if int(label) == 1 else "healthy") + (" +tag" if bool(tag) else "")
        for label, tag in zip(labels, tags, strict=True)
    ]
    boxed = [bool(t) and marker_box is not None for t in tags]
    return _grid(images[:, :1], path, titles, masks, columns, boxed, marker_box)


def image_grid(images: Tensor, path: str | Path, *, columns: int = 8, scale: int = 2) -> Path:
    """Plain uint8 PNG grid of ``(N, 1, H, W)`` images in [-1, 1] (no matplotlib); ``.png``
    added to a ``path`` without a suffix."""
    from PIL import Image

    _shape("images", images, (None, 1, None, None), "(N, 1, H, W), grey")
    _some("images", images, "images")
    check_int("columns", columns)
    check_int("scale", scale)
    out = path_argument(path, "path")  # before the grid is drawn, as the figures check it
    pics = _picture_bytes(images, "images")[..., 0]  # (N, H, W): float, NaN said
    n, h, w = pics.shape
    rows = (n + columns - 1) // columns
    canvas = np.zeros((rows * h, columns * w), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = pics[i]
    out = out if out.suffix else out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(canvas).resize(
        (columns * w * scale, rows * h * scale), Image.Resampling.NEAREST
    )
    buffer = io.BytesIO()
    img.save(buffer, format=Image.registered_extensions().get(out.suffix.lower(), "PNG"))
    return write_atomic(out, buffer.getvalue())  # never half a file


@drawing
def image_preview(
    images: Tensor,
    path: str | Path,
    *,
    titles: list[str] | None = None,
    masks: Tensor | None = None,
    columns: int = 8,
) -> Path:
    """Grid of ``images`` ``(N, C, H, W)`` in [-1, 1] (grey for one channel, colour for three)
    as cfx reads them, each titled by ``titles`` (e.g. its file name and label) and, with
    ``masks`` ``(N, 1, H, W)`` bool, its mask outlined in yellow. Writes ``path``, returns it."""
    _shape("images", images, (None, None, None, None), "(N, C, H, W)")
    _some("images", images, "images")
    n, c = images.shape[:2]
    if c not in (1, 3):
        raise ValueError(f"`images` must have 1 or 3 channels, got {c}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"`titles` must have one title per image ({n}), got {len(titles)}")
    _shape("masks", masks, (n, 1, *images.shape[2:]), f"({n}, 1, H, W)")
    return _grid(images, path, titles, masks, columns)


def _grid(
    images: Tensor,
    path: str | Path,
    titles: list[str] | None,
    masks: Tensor | None,
    columns: int,
    boxed: list[bool] | None = None,
    box: tuple[slice, slice] | None = None,
) -> Path:
    """The previews' figure: ``images`` ``(N, 1 or 3, H, W)`` a grid of ``columns`` (fewer
    for fewer images), each with its title (its middle left out where it is wider than its
    column), its mask outlined (yellow) and, where ``boxed``, ``box`` ``(rows, columns)``
    outlined (cyan)."""
    n = images.shape[0]
    check_int("columns", columns)
    columns = max(1, min(columns, n))  # two images: two columns, not six empty ones
    rows = (n + columns - 1) // columns
    # a 1.6-inch column per image (a 1.45-inch square and a gap); each row its titles'
    # lines above its images, as low as the images are (a wide scan's rows are lower)
    column, side = 1.6, 1.45
    shown = [
        "\n".join(shortened(line, column - 0.05, 7) for line in t.split("\n"))
        for t in (titles or [""] * n)
    ]
    head = TITLE_LINE * max(t.count("\n") + 1 for t in shown) + 0.06
    down = panel_height(tuple(images.shape[-2:]), side)
    pitch = head + down + 0.08
    sheet = Sheet(column * columns, pitch * rows + 0.05)
    pics = _pictures(images, "images")  # (N, H, W, C) in [0, 1]
    xs = panel_lefts(columns, column, side)
    for i in range(n):
        r, c = divmod(i, columns)
        x, y = xs[c], 0.05 + pitch * r + head
        sheet.show(pics[i], x, y, side, frame=False)
        if masks is not None and bool(masks[i].any()):
            outline = masks[i, 0].cpu().numpy().astype(float)
            sheet.outline(outline, x, y, side, "yellow", width=0.8)
        if boxed is not None and box is not None and boxed[i]:
            sheet.pixel_box(pics.shape[1:3], box, x, y, side, colour="cyan")
        if titles is not None:
            sheet.title(shown[i], x, y, side)
    return _save(sheet.fig, path, dpi=110)
