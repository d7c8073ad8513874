"""Figures of saliency methods: maps side by side, the randomisation cascade, attacks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cfx.errors import check_int
from cfx.viz._common import (
    _check_names,
    _drawable,
    _finite,
    _pictures,
    _save,
    _shape,
    drawing,
)
from cfx.viz._sheet import Sheet, panel_height, panel_lefts


@drawing
def saliency_grid(
    images: Tensor,
    masks: Tensor,
    maps: Tensor,
    names: list[str] | tuple[str, ...],
    path: str | Path,
    *,
    rows: int = 6,
    row_names: Sequence[str] | None = None,
) -> Path:
    """Rows of examples: the image, its true mask, then each method's map (positive part,
    stretched per map from its minimum to its maximum) with the mask outlined. ``row_names``
    (one per image, e.g. file names) label the rows.

    ``images`` ``(B, C, H, W)`` in [-1, 1] (grey or colour; channel 0 of other counts),
    ``masks`` ``(B, 1, H, W)`` bool,
    ``maps`` ``(M, B, 1, H, W)``, ``names`` the M method names. Writes a PNG and returns its
    path.
    """
    _check_names(row_names, images.shape[0])
    check_int("rows", rows)
    b, _, h, w = images.shape
    m = len(names)
    _shape("masks", masks, (b, 1, h, w), f"({b}, 1, {h}, {w}), a mask per image")
    _shape("maps", maps, (m, b, 1, h, w), f"({m}, {b}, 1, {h}, {w}): per name, a map per image")
    maps = _finite("maps", maps)
    n = min(rows, b)
    cols = 2 + len(names)
    pics = _pictures(_drawable(images[:n]), "images")
    outlines = masks[:n, 0].cpu().numpy().astype(float)
    pos = maps[:, :n, 0].detach().float().clamp(min=0).cpu()
    lo = pos.flatten(2).amin(2)[..., None, None]
    hi = pos.flatten(2).amax(2)[..., None, None]
    heat = ((pos - lo) / (hi - lo).clamp_min(1e-12)).numpy()
    # a line per word, large enough to read when a page scales the wide figure down
    titles = [t.replace("_", "\n") for t in ("image", "true mask", *names)]
    # a 1.3-inch column per panel (a 1.2-inch square and a gap), a 0.12-inch band left of
    # the rows for their names; the titles' lines of 9-point text above the first row
    left = 0.12 if row_names is not None else 0.0
    head = 0.15 * max(t.count("\n") + 1 for t in titles) + 0.08
    column, side = 1.3, 1.2
    down = panel_height((h, w), side)  # a wide image's rows are lower
    pitch = down + 0.05
    sheet = Sheet(left + column * cols, head + pitch * n)
    xs = panel_lefts(cols, column, side, left)
    for c, title in enumerate(titles):
        sheet.title(title, xs[c], head, side, fontsize=9)
    for r in range(n):
        y = head + pitch * r
        sheet.show(pics[r], xs[0], y, side, frame=False)
        if row_names is not None:
            sheet.row_name(row_names[r], xs[0], y, down, pitch)
        sheet.image(outlines[r], xs[1], y, side, frame=False, cmap="gray", vmin=0, vmax=1)
        for c in range(2, cols):
            sheet.show(pics[r], xs[c], y, side, frame=False)
            sheet.image(heat[c - 2, r], xs[c], y, side, frame=False, cmap="inferno", alpha=0.65,
                        vmin=0, vmax=1, interpolation=None)  # fmt: skip
            if outlines[r].any():
                sheet.outline(outlines[r], xs[c], y, side, "cyan", width=0.5)
    return _save(sheet.fig, path, dpi=120)


@drawing
def randomisation_figure(
    image: Tensor,
    original: Tensor,
    randomised: Tensor,
    names: Sequence[str],
    layers: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Adebayo et al.'s cascade figure for one image: a row per method, the image, the trained
    model's map, then the map after each stage of the cascade (headed by the layer randomised
    last). Maps shown as ``|map|``, each scaled to its own maximum.

    ``image`` ``(C, H, W)`` in [-1, 1]; ``original`` ``(M, 1, H, W)`` and ``randomised``
    ``(M, L, 1, H, W)`` for the ``M`` method ``names`` and ``L`` ``layers``. Writes a PNG and
    returns its path.
    """
    m, stages = len(names), len(layers)
    if original.dim() != 4 or original.shape[:2] != (m, 1):
        raise ValueError(
            f"`original` must have shape ({m}, 1, H, W) for {m} names, got {tuple(original.shape)}"
        )
    if randomised.shape[:3] != (m, stages, 1) or randomised.shape[3:] != original.shape[2:]:
        raise ValueError(
            f"`randomised` must have shape ({m}, {stages}, 1, H, W) for {m} names and {stages} "
            f"layers, got {tuple(randomised.shape)}"
        )
    both = torch.cat([original[:, None], randomised], 1)[:, :, 0].detach().abs().float().cpu()
    both = _finite("original` and `randomised", both)
    maps = (both / both.flatten(2).amax(2).clamp_min(1e-12)[..., None, None]).numpy()
    picture = _pictures(_drawable(image[None]), "image")[0]
    cols = 2 + stages
    # a 1.05-inch column per panel (a 0.95-inch square and a gap), a 0.16-inch band left of
    # the rows for the method names; the title's line (if any) and the heads above the rows
    left, column, side = 0.16, 1.05, 0.95
    down = panel_height(tuple(maps.shape[-2:]), side)  # a wide image's rows are lower
    pitch = down + 0.05
    top = (0.25 if title else 0.0) + 0.15
    sheet = Sheet(left + column * cols, top + pitch * m + 0.05)
    xs = panel_lefts(cols, column, side, left)
    for c, head in enumerate(["image", "trained", *layers]):
        sheet.title(head, xs[c], top, side, fontsize=6.5)  # 5 read as ~7 px on a page
    for r in range(m):
        y = top + pitch * r
        sheet.show(picture, xs[0], y, side, frame=False)
        sheet.row_name(names[r], xs[0], y, down, pitch, fontsize=7)
        for c in range(1, cols):
            sheet.image(maps[r, c - 1], xs[c], y, side, frame=False, cmap="inferno", vmin=0,
                        vmax=1, interpolation=None)  # fmt: skip
    if title:
        sheet.caption(title, band=0.25)
    return _save(sheet.fig, path, dpi=120)


@drawing
def attack_figure(
    images: Tensor,
    attacked: Tensor,
    maps: Tensor,
    maps_attacked: Tensor,
    path: str | Path,
    *,
    title: str = "",
    rows: int = 4,
    row_names: Sequence[str] | None = None,
    region: Tensor | None = None,
) -> Path:
    """Per example: image, attacked image, amplified difference, map before and after;
    ``row_names`` (one per image, e.g. file names) label the rows.

    Images ``(B, C, H, W)`` in [-1, 1] (grey or colour, channel 0 of other counts; the
    difference is averaged over the channels, and its colour scale, the largest such
    change in pixel levels of 255, heads its column); maps ``(B, 1, H, W)`` (shown as
    ``|map|``, each scaled to its maximum). ``region`` ``(B or 1, 1, H, W)`` bool, where a
    targeted attack pulls the map, is outlined on both maps. Writes a PNG and returns its
    path.
    """
    _check_names(row_names, images.shape[0])
    check_int("rows", rows)
    batch, c, h, w = images.shape
    _shape("attacked", attacked, (batch, c, h, w), f"({batch}, {c}, {h}, {w}), as `images`")
    for name, value in (("maps", maps), ("maps_attacked", maps_attacked)):
        _shape(name, value, (batch, 1, h, w), f"({batch}, 1, {h}, {w}), a map per image")
    images, attacked = _finite("images", images), _finite("attacked", attacked)
    maps, maps_attacked = _finite("maps", maps), _finite("maps_attacked", maps_attacked)
    n = min(rows, batch)
    if region is not None and (
        region.dim() != 4
        or region.shape[0] not in (1, images.shape[0])
        or region.shape[1] != 1
        or region.shape[2:] != maps.shape[2:]
    ):
        raise ValueError(
            f"`region` must have shape (B or 1, 1, H, W) = (B or 1, 1, "
            f"{', '.join(map(str, maps.shape[2:]))}) for {images.shape[0]} images and their "
            f"maps, got {tuple(region.shape)}"
        )
    a, b = _pictures(_drawable(images[:n])), _pictures(_drawable(attacked[:n]))
    diff = (attacked[:n] - images[:n]).detach().mean(1).cpu()
    largest = float(diff.abs().max())
    scale = largest or 1.0  # nothing changed: a blank panel
    outline = None
    if region is not None:
        outline = region.detach().cpu().expand(images.shape[0], 1, *region.shape[2:])[:n, 0]

    def scaled(m: Tensor) -> np.ndarray:
        m = m[:n, 0].detach().abs().cpu()
        return (m / m.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]).numpy()

    before, after = scaled(maps), scaled(maps_attacked)
    levels = largest * 127.5  # [-1, 1] spans 255 levels
    heads = ["image", "attacked", f"difference (±{levels:.3g}/255)", "map", "map (attacked)"]
    # five 1.4-inch columns (a 1.3-inch square and a gap), a 0.12-inch band left of the rows
    # for their names; the title's line (if any) and the heads above the rows
    left = 0.12 if row_names is not None else 0.0
    column, side = 1.4, 1.3
    down = panel_height((h, w), side)  # a wide image's rows are lower
    pitch = down + 0.1
    top = (0.25 if title else 0.0) + 0.17
    sheet = Sheet(left + column * 5, top + pitch * n)
    xs = panel_lefts(5, column, side, left)
    for c, head in enumerate(heads):
        sheet.title(head, xs[c], top, side)
    for r in range(n):
        y = top + pitch * r
        sheet.show(a[r], xs[0], y, side, frame=False)
        if row_names is not None:
            sheet.row_name(row_names[r], xs[0], y, down, pitch)
        sheet.show(b[r], xs[1], y, side, frame=False)
        panels = [
            (diff[r].numpy(), "coolwarm", -scale, scale),
            (before[r], "inferno", 0.0, 1.0),
            (after[r], "inferno", 0.0, 1.0),
        ]
        for c, (img, cmap, lo, hi) in enumerate(panels, start=2):
            sheet.image(img, xs[c], y, side, frame=False, cmap=cmap, vmin=lo, vmax=hi)
            if c > 2 and outline is not None and bool(outline[r].any()):
                sheet.outline(outline[r].float().numpy(), xs[c], y, side, "cyan", width=0.9)
    if title:  # a line of its own above the column heads (they touched it)
        sheet.caption(title, band=0.25, fontsize=8)
    return _save(sheet.fig, path, dpi=120)
