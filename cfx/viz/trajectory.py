"""Figures of boundary-crossing paths: frame strips, change panels, GIFs and probability
curves."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cfx.errors import check_int
from cfx.files import path_argument, write_atomic
from cfx.viz._common import (
    _change,
    _change_style,
    _check_names,
    _drawable,
    _picture_bytes,
    _pictures,
    _save,
    _shape,
    _some,
    _subplots,
    drawing,
)
from cfx.viz._sheet import TITLE_LINE, Sheet, panel_height, panel_lefts

STRIP_COLUMN = 1.25
"""Inches a frame takes across in the strip and change figures, its gap included."""
STRIP_SIDE = 1.15
"""Inches of a frame's square in those figures."""


def _whole_result(first: object, path: str | Path | None, call: str) -> str | Path:
    """``path``, after refusing a result passed where its tensors go (``f(res, "s.png")``
    failed on a missing ``path``, naming no fix; session 45 audit)."""
    if hasattr(first, "frames") and hasattr(first, "probs"):
        raise TypeError(f"pass the result's tensors, not the result: {call}")
    if path is None:
        raise TypeError("`path` is required: the file to write")
    return path


@drawing
def trajectory_strip(
    frames: Tensor,
    probs: Tensor,
    path: str | Path | None = None,  # required: None only to name a result passed whole
    *,
    oracle_probs: Tensor | None = None,
    sources: Tensor | None = None,
    source_probs: Tensor | None = None,
    row_names: Sequence[str] | None = None,
    target_name: str | None = None,
    model_names: tuple[str, str] = ("classifier", "oracle"),
) -> Path:
    """One PNG per batch: a row of frames per sequence, titled with target probabilities.

    ``frames`` ``(B, T+1, C, H, W)`` in [-1, 1] with one (grey) or three (RGB) channels,
    ``probs`` ``(B, T+1)``; ``sources`` ``(B, C, H, W)`` (optional), the inputs themselves,
    drawn in a first column titled "input" so the reconstruction in frame 0 can be judged
    against them; ``source_probs`` ``(B,)``, the classifier's target probability on each
    input, adds ``f=`` to that title (an input already in the target shows it);
    ``row_names`` (one per sequence, e.g. file names) label the rows. A line above the rows
    says what the titles are: ``f: brain-cnn's P(healthy)`` with ``target_name`` and
    ``model_names`` (the classifier's and the oracle's names, as the probability plot's).
    """
    path = _whole_result(
        frames,
        path,
        "trajectory_strip(res.frames, res.probs, path, oracle_probs=res.oracle_probs, "
        "sources=res.source)",
    )
    _shape("frames", frames, (None,) * 5, "(B, T+1, C, H, W) (one sequence: frames[None])")
    _some("frames", frames, "sequences")
    _some("frames[0]", frames[0], "frames")
    b, n = frames.shape[:2]
    _shape("probs", probs, (b, n), f"(B, T+1) = ({b}, {n}) to match `frames`")
    _shape("oracle_probs", oracle_probs, (b, n), f"(B, T+1) = ({b}, {n}) to match `frames`")
    probs = probs.detach().float().cpu()
    oracle_probs = None if oracle_probs is None else oracle_probs.detach().float().cpu()
    want = (b, *frames.shape[2:])
    _shape("sources", sources, want, f"{want} to match `frames`")
    _shape("source_probs", source_probs, (b,), f"({b},) to match `frames`")
    _check_names(row_names, b)
    if source_probs is not None and sources is None:
        raise ValueError("`source_probs` title the inputs' column: give `sources` too")
    if sources is not None:
        frames = torch.cat([sources[:, None].to(frames), frames], 1)
    first = 0 if sources is None else 1  # column of frame 0
    cols = n + first
    # title lines above each frame: f=, o= with an oracle; the input's "input" and f=
    lines = 2 if oracle_probs is not None or source_probs is not None else 1
    # a 1.25-inch column per frame (a 1.15-inch square and a gap), a 0.12-inch band left of
    # the rows for their names; each row its titles' lines above its squares; the caption
    # in the first 0.2 inch
    left = 0.12 if row_names is not None else 0.0
    head = TITLE_LINE * lines + 0.05
    down = panel_height(tuple(frames.shape[-2:]), STRIP_SIDE)  # a wide scan's rows are lower
    pitch = head + down + 0.06
    sheet = Sheet(left + STRIP_COLUMN * cols, 0.2 + pitch * b)
    xs = panel_lefts(cols, STRIP_COLUMN, STRIP_SIDE, left)
    pics = _pictures(frames.flatten(0, 1)).reshape(b, cols, *frames.shape[-2:], -1)
    for i in range(b):
        y = 0.2 + pitch * i + head
        for c in range(cols):
            x = xs[c]
            sheet.show(pics[i, c], x, y, STRIP_SIDE)
            if c == 0 and row_names is not None:
                sheet.row_name(row_names[i], x, y, down, pitch)
            t = c - first
            if t < 0:
                title = (
                    "input" if source_probs is None else f"input\nf={float(source_probs[i]):.2f}"
                )
            else:
                title = f"f={float(probs[i, t]):.2f}"
                if oracle_probs is not None:
                    title += f"\no={float(oracle_probs[i, t]):.2f}"
            sheet.title(title, x, y, STRIP_SIDE)
    sheet.caption(_strip_caption(target_name, model_names, oracle_probs is not None))
    fig = sheet.fig
    return _save(fig, path, dpi=110)


def _probability(target_name: str | None) -> str:
    """The probability a strip's titles and the probability plot's axis show: "P(healthy)",
    or "target probability" when the class is not named."""
    return "target probability" if target_name is None else f"P({target_name})"


def _strip_caption(target_name: str | None, model_names: tuple[str, str], oracle: bool) -> str:
    """What a strip's titles are: "f: brain-cnn's P(healthy), o: oracle's P(healthy)"."""
    p = _probability(target_name)
    caption = f"f: {model_names[0]}'s {p}"
    return caption + (f", o: {model_names[1]}'s {p}" if oracle else "")


@drawing
def change_panels(
    frames: Tensor,
    path: str | Path,
    *,
    sources: Tensor | None = None,
    edit_masks: Tensor | None = None,
    lesion_masks: Tensor | None = None,
    row_names: Sequence[str] | None = None,
) -> Path:
    """Where each sequence changed the image: a row per sequence with (the input,) frame 0,
    the last frame and the change ``|frame T - frame 0|`` (summed over channels; one colour
    scale for the whole figure, black for none, orange for the largest, so rows compare),
    on which the region a localised path was confined to (``edit_masks``, cyan) and the true
    lesion (``lesion_masks``, yellow) are outlined. Frame 0 is the reconstruction of the
    input, so the map shows the edit alone, not the inversion's error.

    ``frames`` ``(B, T+1, C, H, W)`` in [-1, 1] (grey or RGB), ``sources`` ``(B, C, H, W)``,
    ``edit_masks`` ``(B, 1, H, W)`` in [0, 1] (e.g. ``res.edit_masks``; all ones, where a
    search fell back to the whole image, draws no outline), ``lesion_masks`` ``(B, 1, H, W)``
    bool; ``row_names`` (one per sequence, e.g. file names) label the rows. Writes a PNG to
    ``path`` and returns it.
    """
    _shape("frames", frames, (None,) * 5, "(B, T+1, C, H, W) (one sequence: frames[None])")
    _some("frames", frames, "sequences")
    _some("frames[0]", frames[0], "frames")
    b, n = frames.shape[:2]
    size = tuple(frames.shape[-2:])
    want = (b, *frames.shape[2:])
    _shape("sources", sources, want, f"{want} to match `frames`")
    _shape("edit_masks", edit_masks, (b, 1, *size), f"{(b, 1, *size)} to match `frames`")
    _shape("lesion_masks", lesion_masks, (b, 1, *size), f"{(b, 1, *size)} to match `frames`")
    _check_names(row_names, b)
    frames = frames.detach().float().cpu()
    change, top = _change(frames[:, 0], frames[:, -1])  # (B, H, W), the page's scale
    ends = _drawable(frames[:, [0, -1]].flatten(0, 1)).unflatten(0, (b, 2))  # frames 0 and T
    shown = (
        ends
        if sources is None
        else torch.cat([_drawable(sources.detach().cpu())[:, None], ends], 1)
    )
    heads = (["input"] if sources is not None else []) + ["frame 0", f"frame {n - 1}"]
    cols = len(heads) + 1
    pics = _pictures(shown.flatten(0, 1)).reshape(b, cols - 1, *size, -1)
    region = None if edit_masks is None else edit_masks.detach().cpu()[:, 0].float().numpy()
    lesion = None if lesion_masks is None else lesion_masks.detach().cpu()[:, 0].float().numpy()
    # columns as the strips'; a 0.12-inch band left of the rows for their names; the
    # titles above the first row (0.2 inch); below the rows, the change column's colour bar
    # (0.4 inch)
    left = 0.12 if row_names is not None else 0.0
    down = panel_height(size, STRIP_SIDE)  # a wide scan's rows are lower
    pitch = down + 0.1
    height = 0.2 + pitch * b + 0.4
    sheet = Sheet(left + STRIP_COLUMN * cols, height)
    xs = panel_lefts(cols, STRIP_COLUMN, STRIP_SIDE, left)
    for c, head in enumerate([*heads, f"change (max {top:.2f})"]):
        sheet.title(head, xs[c], 0.2, STRIP_SIDE)
    for i in range(b):
        y = 0.2 + pitch * i
        if row_names is not None:
            sheet.row_name(row_names[i], xs[0], y, down, pitch)
        for c in range(cols - 1):
            sheet.show(pics[i, c], xs[c], y, STRIP_SIDE)
        shown_change = sheet.image(change[i], xs[-1], y, STRIP_SIDE, **_change_style(top))
        if region is not None and float(region[i].min()) < 0.5:  # not the whole image
            sheet.outline(region[i], xs[-1], y, STRIP_SIDE, "cyan")
        if lesion is not None and bool(lesion[i].any()):
            sheet.outline(lesion[i], xs[-1], y, STRIP_SIDE, "yellow")
    fig = sheet.fig
    if float(change.max()) > 0:  # no change anywhere: no scale to show
        # the scale of |frame T - frame 0| (summed over channels), under the change column
        width = sheet.fig.get_figwidth()
        # 0.15 inch short of the figure's edge: a tick label at the bar's end was cut off
        where = (xs[-1] / width, 0.16 / height, (STRIP_SIDE - 0.1) / width, 0.08 / height)
        bar = fig.add_axes(where, label="colour bar")
        fig.colorbar(shown_change, cax=bar, orientation="horizontal")
        bar.tick_params(labelsize=5, length=2, pad=1)
        # named to its left (below it the figure ends): what the colours count
        bar.text(-0.04, 0.5, f"|frame {n - 1} - frame 0|, summed over channels", fontsize=6,
                 transform=bar.transAxes, ha="right", va="center")  # fmt: skip
        bar.set_xlim(0, top)  # up to the largest change: the colours above it are never drawn
    return _save(fig, path, dpi=110)


def trajectory_gif(
    frames: Tensor,
    path: str | Path,
    *,
    probs: Tensor | None = None,
    scale: int = 4,
    ms: int = 180,
) -> Path:
    """Animated GIF of one sequence ``(T+1, C, H, W)`` in [-1, 1], grey or RGB (there and
    back), written to ``path`` (``.gif`` added to a name without a suffix). ``probs``
    ``(T+1,)`` (optional): each frame gets a caption band below it reading ``t=3 f=0.30``
    (frame index, target probability). NaN pixels are drawn as 0 (mid-grey), with a warning
    naming the frames, as in the figures."""
    from PIL import Image, ImageDraw

    _shape("frames", frames, (None,) * 4, "(T+1, C, H, W), one sequence (e.g. res.frames[i])")
    _some("frames", frames, "frames")
    _shape("probs", probs, (frames.shape[0],), f"({frames.shape[0]},) to match `frames`")
    # PIL's "height and width must be > 0" named neither; a float scale failed in PIL too
    scale, ms = check_int("scale", scale), check_int("ms", ms)
    out = path_argument(path, "path")  # before the frames are drawn, as the figures check it
    # NaN drawn as 0 and said, as in the figures (to_uint8 made a NaN frame black in silence)
    pics = _picture_bytes(frames)  # (T+1, H, W, 1 or 3)
    pics = pics[..., 0] if pics.shape[-1] == 1 else pics
    size = (pics.shape[2] * scale, pics.shape[1] * scale)
    seq = [Image.fromarray(p).resize(size, Image.Resampling.NEAREST) for p in pics]
    if probs is not None:
        band = 12  # the default bitmap font is ~10 px tall
        captioned = []
        for t, (pic, p) in enumerate(zip(seq, probs.detach().tolist(), strict=True)):
            canvas = Image.new(pic.mode, (size[0], size[1] + band), 0)
            canvas.paste(pic, (0, 0))
            ImageDraw.Draw(canvas).text(
                (2, size[1] + 1), f"t={t} f={p:.2f}", fill=255 if pic.mode == "L" else "white"
            )
            captioned.append(canvas)
        seq = captioned
    seq = seq + seq[-2:0:-1]
    out = out if out.suffix else out.with_suffix(".gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    seq[0].save(buffer, format="GIF", save_all=True, append_images=seq[1:], duration=ms, loop=0)
    return write_atomic(out, buffer.getvalue())  # never half an animation


CURVE_ROWS = 10
"""Up to this many paths, :func:`probability_curves` gives each its own colour and names it."""


@drawing
def probability_curves(
    probs: Tensor,
    levels: Tensor,
    path: str | Path | None = None,  # required: None only to name a result passed whole
    *,
    oracle_probs: Tensor | None = None,
    target_name: str | None = None,
    model_names: tuple[str, str] = ("classifier", "oracle"),
    row_names: Sequence[str] | None = None,
) -> Path:
    """Target probability along each path, the ideal ``t/T`` (dashed): ``probs``
    ``(B, T+1)``, ``levels`` ``(T+1,)``, ``oracle_probs`` ``(B, T+1)``.

    Up to ten paths each get a colour, named in a legend beside the plot (``row_names``, one
    per path, e.g. file names; "row 1", "row 2", ... as in the strips otherwise), with the
    classifier's line solid and the oracle's dotted, so a path's two curves can be matched
    to each other and to its row of the strip. More paths are drawn thin, the classifier's
    blue and the oracle's orange. ``target_name`` (e.g. "healthy") labels the axis
    ``P(healthy)``; ``model_names`` name the classifier's and the oracle's lines.
    """
    path = _whole_result(
        probs,
        path,
        "probability_curves(res.probs, res.levels, path, oracle_probs=res.oracle_probs)",
    )
    _shape("probs", probs, (None, None), "(B, T+1) (one sequence: probs[None])")
    _some("probs", probs, "sequences")
    _some("probs[0]", probs[0], "frames")
    b, n = probs.shape
    _shape("levels", levels, (n,), f"(T+1,) = ({n},) to match `probs`")
    _shape("oracle_probs", oracle_probs, (b, n), f"(B, T+1) = ({b}, {n}) to match `probs`")
    _check_names(row_names, b)
    probs, levels = probs.detach().float(), levels.detach().float()
    oracle_probs = None if oracle_probs is None else oracle_probs.detach().float()
    own = 2 <= b <= CURVE_ROWS  # a colour per path
    bold = own or b == 1  # one path is drawn full strength too (it looked half empty, faint)
    fig, ax = _subplots(figsize=(5.8 if own else 4.5, 3.2))
    t = np.arange(probs.shape[1])
    oracle = None if oracle_probs is None else oracle_probs.cpu().numpy()
    for i, row in enumerate(probs.cpu().numpy()):
        colour = f"C{i}" if own else "tab:blue"
        name = (f"row {i}" if row_names is None else _short(row_names[i])) if own else None
        ax.plot(t, row, color=colour, alpha=0.9 if bold else 0.5, linewidth=0.9, label=name)
        if oracle is not None:
            ax.plot(
                t,
                oracle[i],
                color=colour if own else "tab:orange",
                linestyle=":" if own else "-",
                alpha=0.9 if bold else 0.35,
                linewidth=1.1 if bold else 0.8,
            )
    grey = "0.3"
    ax.plot([], [], color=grey if own else "tab:blue", label=model_names[0])
    if oracle is not None:
        style = {"color": grey, "linestyle": ":"} if own else {"color": "tab:orange"}
        ax.plot([], [], label=model_names[1], **style)
    ax.plot(t, levels.cpu().numpy(), "k--", linewidth=1, label="t/T")
    ax.set_xlabel("frame t")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # frames are whole: no t = 0.5
    ax.set_ylabel(_probability(target_name))
    ax.set_ylim(-0.02, 1.02)
    if own:
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def _short(name: str, width: int = 18) -> str:
    """A legend's row name: long file names keep their end (where they differ)."""
    name = str(name)  # a Path too
    return name if len(name) <= width else "..." + name[-(width - 3) :]
