"""Figures (matplotlib, Agg backend; no screen needed). Images in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from cfx.images import to_unit


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


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
    plt = _pyplot()
    n = images.shape[0]
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows), squeeze=False)
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
                plt.Rectangle(
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
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def image_grid(images: Tensor, path: str | Path, *, columns: int = 8, scale: int = 2) -> Path:
    """Plain uint8 PNG grid of ``(N, 1, H, W)`` images in [-1, 1] (no matplotlib)."""
    from PIL import Image

    pics = (to_unit(images[:, 0]).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
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


def trajectory_strip(
    frames: Tensor, probs: Tensor, path: str | Path, *, oracle_probs: Tensor | None = None
) -> Path:
    """One PNG per batch: a row of frames per sequence, titled with target probabilities.

    ``frames`` ``(B, T+1, 1, H, W)`` in [-1, 1], ``probs`` ``(B, T+1)``.
    """
    plt = _pyplot()
    b, n = frames.shape[:2]
    fig, axes = plt.subplots(b, n, figsize=(1.25 * n, 1.4 * b), squeeze=False)
    pics = to_unit(frames[:, :, 0]).clamp(0, 1).cpu().numpy()
    for i in range(b):
        for t in range(n):
            ax = axes[i, t]
            ax.imshow(pics[i, t], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"f={float(probs[i, t]):.2f}"
            if oracle_probs is not None:
                title += f"\no={float(oracle_probs[i, t]):.2f}"
            ax.set_title(title, fontsize=6)
    fig.tight_layout(pad=0.2)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def trajectory_gif(frames: Tensor, path: str | Path, *, scale: int = 4, ms: int = 180) -> Path:
    """Animated GIF of one sequence ``(T+1, 1, H, W)`` in [-1, 1] (there and back)."""
    from PIL import Image

    pics = (to_unit(frames[:, 0]).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    size = (pics.shape[2] * scale, pics.shape[1] * scale)
    seq = [Image.fromarray(p).resize(size, Image.Resampling.NEAREST) for p in pics]
    seq = seq + seq[-2:0:-1]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seq[0].save(out, save_all=True, append_images=seq[1:], duration=ms, loop=0)
    return out


def probability_curves(
    probs: Tensor, levels: Tensor, path: str | Path, *, oracle_probs: Tensor | None = None
) -> Path:
    """Target probability along each path (thin lines), the ideal ``t/T`` (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    t = np.arange(probs.shape[1])
    for row in probs.cpu().numpy():
        ax.plot(t, row, color="tab:blue", alpha=0.5, linewidth=0.9)
    if oracle_probs is not None:
        for row in oracle_probs.cpu().numpy():
            ax.plot(t, row, color="tab:orange", alpha=0.35, linewidth=0.8)
        ax.plot([], [], color="tab:orange", label="oracle")
    ax.plot(t, levels.cpu().numpy(), "k--", linewidth=1, label="t/T")
    ax.plot([], [], color="tab:blue", label="classifier")
    ax.set_xlabel("frame t")
    ax.set_ylabel("target probability")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
