"""The one place where cfx's image value range is defined and converted.

Convention: every image tensor that crosses a cfx API is a ``(B, C, H, W)`` float tensor with
values in **[-1, 1]** (``IMAGE_RANGE``): generators produce it (tanh output), classifiers and
segmenters consume it, datasets return it. Files and figures use [0, 1] floats or uint8
[0, 255]; convert only with the functions below.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from cfx.errors import check

IMAGE_RANGE: tuple[float, float] = (-1.0, 1.0)


def to_unit(x: Tensor) -> Tensor:
    """Map images from the cfx range [-1, 1] to [0, 1] (no clipping)."""
    return (x + 1.0) * 0.5


def from_unit(x: Tensor) -> Tensor:
    """Map images from [0, 1] to the cfx range [-1, 1] (no clipping)."""
    return x * 2.0 - 1.0


def to_uint8(x: Tensor) -> np.ndarray:
    """Images in [-1, 1], shape (B, C, H, W) or (C, H, W), to a clipped uint8 numpy array."""
    unit = to_unit(x.detach().float().cpu()).clamp(0.0, 1.0)
    return (unit * 255.0 + 0.5).to(torch.uint8).numpy()


def check_images(
    x: object,
    name: str = "x",
    *,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    tol: float = 1e-3,
) -> Tensor:
    """Validate a user image batch: a finite float (B, C, H, W) tensor in [-1, 1].

    Returns the tensor unchanged. Raises ``TypeError``/``ValueError`` naming ``name``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    check(
        x.is_floating_point(),
        TypeError,
        f"`{name}` must be a floating-point tensor in [-1, 1], got dtype {x.dtype}",
    )
    check(x.ndim == 4, ValueError, f"`{name}` must have shape (B, C, H, W), got {tuple(x.shape)}")
    check(x.shape[0] > 0, ValueError, f"`{name}` must hold at least one image, got batch size 0")
    if channels is not None:
        check(
            x.shape[1] == channels,
            ValueError,
            f"`{name}` must have {channels} channel(s), got shape {tuple(x.shape)}",
        )
    if size is not None:
        check(
            tuple(x.shape[-2:]) == tuple(size),
            ValueError,
            f"`{name}` must be {size[0]}x{size[1]} pixels, got shape {tuple(x.shape)}",
        )
    flat = x.detach().flatten(1)  # (B, C*H*W)
    bad = ~torch.isfinite(flat).all(1)  # (B,) images with NaN or inf
    if bool(bad.any()):
        raise ValueError(f"`{name}` contains NaN or infinite values{_rows(bad)}")
    lows, highs = flat.amin(1), flat.amax(1)  # (B,) each image's range
    outside = (lows < IMAGE_RANGE[0] - tol) | (highs > IMAGE_RANGE[1] + tol)
    if not bool(outside.any()):
        return x
    lo, hi = float(lows.min()), float(highs.max())
    hint = "rescale them to [-1, 1] (cfx.images.from_unit maps [0, 1] images)"
    if lo >= 0.0 and hi > 1.0:
        hint = (
            f"these look like raw pixel values (up to {hi:.6g}): divide by the data's full "
            "scale (255 for 8-bit, 4095 for 12-bit, 65535 for 16-bit), then map [0, 1] to "
            "[-1, 1] with cfx.images.from_unit (2x - 1)"
        )
    raise ValueError(
        f"`{name}` must have values in [-1, 1] (cfx image range), got [{lo:.3g}, {hi:.3g}]"
        f"{_rows(outside)}; " + hint
    )


def _rows(flags: Tensor) -> str:
    """Which images of a batch ``flags`` ``(B,)`` marks, as a suffix for an error message:
    ``""`` for a batch of one, ``" (row 3 of 40)"``, ``" (2 of 40 images: rows [3, 7])"``
    (rows count from 0, as in the batch)."""
    rows = torch.nonzero(flags).flatten().tolist()
    if flags.numel() == 1:
        return ""
    if len(rows) == 1:
        return f" (row {rows[0]} of {flags.numel()})"
    shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
    return f" ({len(rows)} of {flags.numel()} images: rows [{shown}])"
