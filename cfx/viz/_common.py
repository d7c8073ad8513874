"""Shared by cfx.viz's figures: matplotlib figures without pyplot, saving, and the checks
and drawing helpers of image panels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from cfx.images import to_unit


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


def _change(first: Tensor, last: Tensor) -> tuple[np.ndarray, float]:
    """Where ``last`` differs from ``first`` (both ``(B, C, H, W)``): ``|last - first|`` summed
    over channels, ``(B, H, W)``, and the largest change (1e-6 at least: a scale for none). A
    NaN or infinite pixel (a half-precision VAE's overflow) counts as no change, so it sets
    no figure's scale."""
    change = (last.detach().float() - first.detach().float()).abs().sum(1).cpu().numpy()
    change = np.nan_to_num(change, nan=0.0, posinf=0.0)
    return change, max(float(change.max()), 1e-6)


def _show_change(ax: Any, change: np.ndarray, top: float) -> Any:
    """Draw one change map on the figure's scale ``top``: black for none, the largest at
    magma's orange, not its pale yellow, so outlines drawn on it show. Returns the image."""
    return ax.imshow(change, cmap="magma", vmin=0, vmax=top / 0.8, interpolation="nearest")
