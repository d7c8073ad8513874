"""Figures written to files (matplotlib ``Figure`` objects, no pyplot: no screen needed, and
a notebook's own backend is left alone). Images in [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cfx.images import to_uint8, to_unit


def _subplots(*grid: int, figsize: tuple[float, float], **kwargs):
    """``(figure, axes)`` of a matplotlib ``Figure`` made directly, without pyplot: cfx never
    picks a backend or touches pyplot's state (``matplotlib.use("Agg")`` here once silenced
    every later figure of a notebook's inline backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def _rectangle(*args, **kwargs):
    from matplotlib.patches import Rectangle

    return Rectangle(*args, **kwargs)


def _save(fig, path: str | Path, *, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (creating folders; ``.png`` added to a name without a
    suffix, as matplotlib does), return the path written."""
    out = Path(path)
    out = out if out.suffix else out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


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
    n = images.shape[0]
    columns = max(1, min(columns, n))  # two slices: two columns, not six empty ones
    rows = (n + columns - 1) // columns
    fig, axes = _subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows), squeeze=False)
    pics = to_unit(images[:, 0]).clamp(0, 1).cpu().numpy()
    outlines = masks[:, 0].cpu().numpy()
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(pics[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if outlines[i].any():
            ax.contour(outlines[i].astype(float), levels=[0.5], colors="yellow", linewidths=0.8)
        if bool(tags[i]) and marker_box is not None:
            r, c = marker_box
            ax.add_patch(
                _rectangle(
                    (c.start - 0.5, r.start - 0.5),
                    c.stop - c.start,
                    r.stop - r.start,
                    fill=False,
                    edgecolor="cyan",
                    linewidth=0.8,
                )
            )
        title = "tumour" if int(labels[i]) == 1 else "healthy"
        ax.set_title(title + (" +tag" if bool(tags[i]) else ""), fontsize=7)
    fig.tight_layout(pad=0.3)
    return _save(fig, path, dpi=110)


def image_grid(images: Tensor, path: str | Path, *, columns: int = 8, scale: int = 2) -> Path:
    """Plain uint8 PNG grid of ``(N, 1, H, W)`` images in [-1, 1] (no matplotlib)."""
    from PIL import Image

    pics = to_uint8(images)[:, 0]  # (N, H, W)
    n, h, w = pics.shape
    rows = (n + columns - 1) // columns
    canvas = np.zeros((rows * h, columns * w), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = pics[i]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(canvas).resize(
        (columns * w * scale, rows * h * scale), Image.Resampling.NEAREST
    )
    img.save(out)
    return out


def _shape(name: str, value: Tensor | None, want: tuple[int | None, ...], what: str) -> None:
    """An error naming ``name`` unless ``value`` (skipped if None) has shape ``want`` (None:
    any length on that axis); ``what`` spells the expected shape for the message."""
    if value is None:
        return
    if not isinstance(value, Tensor):
        field = (
            ": pass one of its tensors (`res.frames`, `.probs`, ...)"
            if hasattr(value, "frames")
            else ""
        )
        raise TypeError(
            f"`{name}` must be a tensor of shape {what}, got {type(value).__name__}{field}"
        )
    shape = tuple(value.shape)
    if len(shape) != len(want) or any(
        w is not None and w != d for w, d in zip(want, shape, strict=True)
    ):
        raise ValueError(f"`{name}` must have shape {what}, got {shape}")


def _pictures(images: Tensor, name: str = "frames") -> np.ndarray:
    """Images ``(N, C, H, W)`` in [-1, 1] with ``C`` 1 or 3 -> ``(N, H, W, C)`` in [0, 1]."""
    if images.shape[1] not in (1, 3):
        raise ValueError(f"`{name}` must have 1 or 3 channels to draw, got {tuple(images.shape)}")
    return to_unit(images.detach().float()).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()


def _some(name: str, value: Tensor, what: str) -> None:
    """An error naming ``name`` when its first axis (the batch, a path's frames) is empty:
    there is nothing to draw, and matplotlib's own error would not say which argument."""
    if value.shape[0] == 0:
        raise ValueError(f"`{name}` holds no {what} (shape {tuple(value.shape)}): nothing to draw")


def _drawable(images: Tensor) -> Tensor:
    """Images as drawn: grey or colour as they are, channel 0 of any other channel count."""
    return images if images.shape[1] in (1, 3) else images[:, :1]


def _check_names(row_names: Sequence[str] | None, b: int) -> None:
    if row_names is not None and len(row_names) != b:
        raise ValueError(f"`row_names` must name the {b} rows, got {len(row_names)} names")


def _row_name(ax: Any, name: str) -> None:
    """Write ``name`` (e.g. the image's file) vertically left of a row's first panel."""
    ax.text(-0.04, 0.5, name, transform=ax.transAxes, rotation=90, ha="right", va="center",
            fontsize=5)  # fmt: skip


def _show(ax: Any, picture: np.ndarray) -> None:
    """Draw one ``(H, W, C)`` picture in [0, 1]: grey for one channel, colour for three."""
    if picture.shape[-1] == 1:
        ax.imshow(picture[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(picture, interpolation="nearest")


def trajectory_strip(
    frames: Tensor,
    probs: Tensor,
    path: str | Path,
    *,
    oracle_probs: Tensor | None = None,
    sources: Tensor | None = None,
    source_probs: Tensor | None = None,
    row_names: Sequence[str] | None = None,
) -> Path:
    """One PNG per batch: a row of frames per sequence, titled with target probabilities.

    ``frames`` ``(B, T+1, C, H, W)`` in [-1, 1] with one (grey) or three (RGB) channels,
    ``probs`` ``(B, T+1)``; ``sources`` ``(B, C, H, W)`` (optional), the inputs themselves,
    drawn in a first column titled "input" so the reconstruction in frame 0 can be judged
    against them; ``source_probs`` ``(B,)``, the classifier's target probability on each
    input, adds ``f=`` to that title (an input already in the target shows it);
    ``row_names`` (one per sequence, e.g. file names) label the rows.
    """
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
    # each row: a 1.25-inch square frame plus its title (fontsize 7 is ~0.12 inch a line)
    fig, axes = _subplots(b, cols, figsize=(1.25 * cols, (1.35 + 0.14 * lines) * b), squeeze=False)
    pics = _pictures(frames.flatten(0, 1)).reshape(b, cols, *frames.shape[-2:], -1)
    for i in range(b):
        for c in range(cols):
            ax = axes[i, c]
            pic = pics[i, c, ..., 0] if pics.shape[-1] == 1 else pics[i, c]
            ax.imshow(pic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and row_names is not None:
                ax.set_ylabel(row_names[i], fontsize=5)
            t = c - first
            if t < 0:
                head = "input" if source_probs is None else f"input\nf={float(source_probs[i]):.2f}"
                ax.set_title(head, fontsize=7)
                continue
            title = f"f={float(probs[i, t]):.2f}"
            if oracle_probs is not None:
                title += f"\no={float(oracle_probs[i, t]):.2f}"
            ax.set_title(title, fontsize=7)
    fig.tight_layout(pad=0.2)
    return _save(fig, path, dpi=110)


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
    change = (frames[:, -1] - frames[:, 0]).abs().sum(1).numpy()  # (B, H, W)
    # a path with NaN pixels (a half-precision VAE's overflow) shows them as no change; its
    # NaN must not set the scale of the page's other rows
    change = np.nan_to_num(change, nan=0.0, posinf=0.0)
    ends = _drawable(frames[:, [0, -1]].flatten(0, 1)).unflatten(0, (b, 2))  # frames 0 and T
    top = max(float(change.max()), 1e-6)
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
    fig, axes = _subplots(b, cols, figsize=(1.3 * cols, 1.45 * b), squeeze=False)
    for i in range(b):
        for c in range(cols):
            ax = axes[i, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and row_names is not None:
                _row_name(ax, row_names[i])
            if c < cols - 1:
                _show(ax, pics[i, c])
                if i == 0:
                    ax.set_title(heads[c], fontsize=7)
                continue
            # the largest change at magma's orange, not its pale yellow: the outlines show
            ax.imshow(change[i], cmap="magma", vmin=0, vmax=top / 0.8, interpolation="nearest")
            if region is not None and float(region[i].min()) < 0.5:  # not the whole image
                ax.contour(region[i], levels=[0.5], colors="cyan", linewidths=0.6)
            if lesion is not None and bool(lesion[i].any()):
                ax.contour(lesion[i], levels=[0.5], colors="yellow", linewidths=0.6)
            if i == 0:
                ax.set_title(f"change (max {top:.2f})", fontsize=7)
    fig.tight_layout(pad=0.2)
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
    (frame index, target probability)."""
    from PIL import Image, ImageDraw

    _shape("frames", frames, (None,) * 4, "(T+1, C, H, W), one sequence (e.g. res.frames[i])")
    _some("frames", frames, "frames")
    _shape("probs", probs, (frames.shape[0],), f"({frames.shape[0]},) to match `frames`")
    if frames.shape[1] not in (1, 3):
        raise ValueError(f"`frames` must have 1 or 3 channels to draw, got {tuple(frames.shape)}")
    pics = to_uint8(frames).transpose(0, 2, 3, 1)  # (T+1, H, W, 1 or 3)
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
    out = Path(path)
    out = out if out.suffix else out.with_suffix(".gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    seq[0].save(out, save_all=True, append_images=seq[1:], duration=ms, loop=0)
    return out


def probability_curves(
    probs: Tensor,
    levels: Tensor,
    path: str | Path,
    *,
    oracle_probs: Tensor | None = None,
    target_name: str | None = None,
    model_names: tuple[str, str] = ("classifier", "oracle"),
) -> Path:
    """Target probability along each path (thin lines), the ideal ``t/T`` (dashed):
    ``probs`` ``(B, T+1)``, ``levels`` ``(T+1,)``, ``oracle_probs`` ``(B, T+1)``.
    ``target_name`` (e.g. "healthy") labels the axis ``P(healthy)``; ``model_names`` name the
    classifier's and the oracle's lines in the legend."""
    _shape("probs", probs, (None, None), "(B, T+1) (one sequence: probs[None])")
    _some("probs", probs, "sequences")
    _some("probs[0]", probs[0], "frames")
    b, n = probs.shape
    _shape("levels", levels, (n,), f"(T+1,) = ({n},) to match `probs`")
    _shape("oracle_probs", oracle_probs, (b, n), f"(B, T+1) = ({b}, {n}) to match `probs`")
    probs, levels = probs.detach().float(), levels.detach().float()
    oracle_probs = None if oracle_probs is None else oracle_probs.detach().float()
    fig, ax = _subplots(figsize=(4.5, 3.2))
    t = np.arange(probs.shape[1])
    for row in probs.cpu().numpy():
        ax.plot(t, row, color="tab:blue", alpha=0.5, linewidth=0.9)
    if oracle_probs is not None:
        for row in oracle_probs.cpu().numpy():
            ax.plot(t, row, color="tab:orange", alpha=0.35, linewidth=0.8)
        ax.plot([], [], color="tab:orange", label=model_names[1])
    ax.plot(t, levels.cpu().numpy(), "k--", linewidth=1, label="t/T")
    ax.plot([], [], color="tab:blue", label=model_names[0])
    ax.set_xlabel("frame t")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # frames are whole: no t = 0.5
    ax.set_ylabel("target probability" if target_name is None else f"P({target_name})")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, path, dpi=120)


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
    n = min(rows, images.shape[0])
    cols = 2 + len(names)
    fig, axes = _subplots(n, cols, figsize=(1.3 * cols, 1.35 * n + 0.3), squeeze=False)
    pics = _pictures(_drawable(images[:n]), "images")
    outlines = masks[:n, 0].cpu().numpy().astype(float)
    pos = maps[:, :n, 0].detach().float().clamp(min=0).cpu()
    lo = pos.flatten(2).amin(2)[..., None, None]
    hi = pos.flatten(2).amax(2)[..., None, None]
    heat = ((pos - lo) / (hi - lo).clamp_min(1e-12)).numpy()
    titles = ["image", "true mask", *names]
    for r in range(n):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if r == 0:
                ax.set_title(titles[c], fontsize=6)
            if c == 0:
                _show(ax, pics[r])
                if row_names is not None:
                    _row_name(ax, row_names[r])
            elif c == 1:
                ax.imshow(outlines[r], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                _show(ax, pics[r])
                ax.imshow(heat[c - 2, r], cmap="inferno", alpha=0.65, vmin=0, vmax=1)
                if outlines[r].any():
                    ax.contour(outlines[r], levels=[0.5], colors="cyan", linewidths=0.5)
    fig.tight_layout(pad=0.2)
    return _save(fig, path, dpi=120)


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
    maps = (both / both.flatten(2).amax(2).clamp_min(1e-12)[..., None, None]).numpy()
    picture = _pictures(_drawable(image[None]), "image")[0]
    cols = 2 + stages
    fig, axes = _subplots(m, cols, figsize=(0.95 * cols, 1.0 * m + 0.5), squeeze=False)
    heads = ["image", "trained", *layers]
    for r in range(m):
        _show(axes[r, 0], picture)
        axes[r, 0].text(-0.06, 0.5, names[r], transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=6)  # fmt: skip
        for c in range(1, cols):
            axes[r, c].imshow(maps[r, c - 1], cmap="inferno", vmin=0, vmax=1)
        for c in range(cols):
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(heads[c], fontsize=5)
    top = 1.0
    if title:
        fig.suptitle(title, fontsize=7)
        top -= 0.25 / fig.get_figheight()
    fig.tight_layout(pad=0.2, rect=(0.0, 0.0, 1.0, top))
    return _save(fig, path, dpi=120)


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
    n = min(rows, images.shape[0])
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
    fig, axes = _subplots(n, 5, figsize=(7.0, 1.45 * n + 0.4), squeeze=False)
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
    for r in range(n):
        panels = [
            (diff[r].numpy(), "coolwarm", -scale, scale),
            (before[r], "inferno", 0.0, 1.0),
            (after[r], "inferno", 0.0, 1.0),
        ]
        _show(axes[r, 0], a[r])
        if row_names is not None:
            _row_name(axes[r, 0], row_names[r])
        _show(axes[r, 1], b[r])
        for c, (img, cmap, lo, hi) in enumerate(panels, start=2):
            axes[r, c].imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            if c > 2 and outline is not None and bool(outline[r].any()):
                axes[r, c].contour(
                    outline[r].float().numpy(), levels=[0.5], colors="cyan", linewidths=0.6
                )
        for c in range(5):
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(heads[c], fontsize=7)
    top = 1.0
    if title:  # keep a line for it above the column heads (they touched it)
        fig.suptitle(title, fontsize=8)
        top -= 0.2 / fig.get_figheight()
    fig.tight_layout(pad=0.3, rect=(0.0, 0.0, 1.0, top))
    return _save(fig, path, dpi=120)
