"""The one place where cfx's image value range is defined and converted.

Convention: every image tensor that crosses a cfx API is a ``(B, C, H, W)`` float tensor with
values in **[-1, 1]** (``IMAGE_RANGE``): generators produce it (tanh output), classifiers and
segmenters consume it, datasets return it. Files and figures use [0, 1] floats or uint8
[0, 255]; convert only with the functions below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from cfx.errors import check

IMAGE_RANGE: tuple[float, float] = (-1.0, 1.0)


def to_unit(x: Tensor) -> Tensor:
    """Map images from the cfx range [-1, 1] to [0, 1] (no clipping)."""
    return (x + 1.0) * 0.5


def from_unit(x: Tensor) -> Tensor:
    """Map images from [0, 1] to the cfx range [-1, 1] (no clipping)."""
    return x * 2.0 - 1.0


class UnitInput(nn.Module):
    """A classifier trained on [0, 1] images, optionally normalised per channel (``(u - mean)
    / std``, as torchvision's pretrained weights expect), as a cfx classifier of [-1, 1]
    images: ``forward(x)`` is ``model((to_unit(x) - mean) / std)``.

    cfx's images stay in [-1, 1] (explainers, generators, metrics and figures assume it);
    the wrapper hands the model what it was trained on. ``mean`` and ``std``: sequences of
    one value per channel (or one for all), given together. Example::

        net = UnitInput(resnet, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
        Gradient(net).attribute(from_unit(images01), target)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        mean: Sequence[float] | Tensor | None = None,
        std: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__()
        check(
            callable(model),
            TypeError,
            f"`model` must be a model mapping images to logits, got {type(model).__name__}",
        )
        check(
            (mean is None) == (std is None),
            ValueError,
            "`mean` and `std` go together (the normalisation the model was trained with)",
        )
        self.model = model
        self.mean: Tensor | None
        self.std: Tensor | None
        if mean is None or std is None:
            self.register_buffer("mean", None)
            self.register_buffer("std", None)
            return
        m = torch.as_tensor(mean, dtype=torch.float32).flatten()
        sd = torch.as_tensor(std, dtype=torch.float32).flatten()
        check(
            m.numel() >= 1 and m.shape == sd.shape,
            ValueError,
            f"`mean` and `std` must have one value per channel each, got {m.numel()} and "
            f"{sd.numel()}",
        )
        check(
            bool(torch.isfinite(m).all()) and bool((sd > 0).all()) and bool(sd.isfinite().all()),
            ValueError,
            f"`std` must be positive and `mean` finite, got mean {m.tolist()}, std {sd.tolist()}",
        )
        check(  # (123.7, 116.3, 103.5) fed the model about -2 everywhere, in silence
            bool((m.abs() <= 1).all()) and bool((sd <= 1).all()),
            ValueError,
            f"`mean` and `std` are on the [0, 1] scale UnitInput hands the model, got mean "
            f"{m.tolist()}, std {sd.tolist()}: for values given in 0..255 divide both by 255",
        )
        self.register_buffer("mean", m.view(1, -1, 1, 1))
        self.register_buffer("std", sd.view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        u = to_unit(x)
        if self.mean is not None and self.std is not None:
            check(
                self.mean.shape[1] in (1, x.shape[1]),
                ValueError,
                f"`mean`/`std` hold {self.mean.shape[1]} channel values, the images have "
                f"{x.shape[1]} channels",
            )
            u = (u - self.mean.to(u)) / self.std.to(u)
        return self.model(u)


def to_uint8(x: Tensor) -> np.ndarray:
    """Images in [-1, 1], shape (B, C, H, W) or (C, H, W), to a clipped uint8 numpy array."""
    unit = to_unit(x.detach().float().cpu()).clamp(0.0, 1.0)
    return (unit * 255.0 + 0.5).to(torch.uint8).numpy()


def int_range(x: Tensor) -> tuple[int, int]:
    """The smallest and largest of integer ``x`` (uint16/32/64 too, which torch's min and max
    do not take)."""
    wide = x.to(torch.int64) if x.dtype != torch.uint64 else x.to(torch.float64)
    return int(wide.min()), int(wide.max())


def _bytes_wide(x: object) -> bool:
    """Whether ``x`` is a non-empty integer tensor of another type than uint8 whose values all
    fit 0..255 (8-bit pixels widened, as ``np.array(image) + 0`` is int64)."""
    if not isinstance(x, Tensor) or x.is_floating_point() or x.dtype in (torch.bool, torch.uint8):
        return False
    if x.numel() == 0:
        return False
    lo, hi = int_range(x)
    return lo >= 0 and hi <= 255


def from_uint8(x: Tensor | np.ndarray) -> Tensor:
    """8-bit pixels (a uint8 tensor or numpy array, any shape; e.g. ``np.asarray(PIL
    image)``, which is ``(H, W)`` or ``(H, W, C)``: arrange it as ``(B, C, H, W)`` first) to
    float32 in the cfx range [-1, 1]; :func:`to_uint8` undoes it."""
    if isinstance(x, np.ndarray):  # a copy: np.asarray(image) is read-only (torch warned)
        x = torch.from_numpy(np.array(x))
    if not isinstance(x, Tensor) or x.dtype != torch.uint8:
        got = type(x).__name__ if not isinstance(x, Tensor) else f"dtype {x.dtype}"
        raise TypeError(  # the hint only where it is true: 4000 would wrap to 160
            f"`x` must be uint8 pixels (a tensor or numpy array), got {got}"
            + ("; its values fit 0..255: convert with x.to(torch.uint8)" if _bytes_wide(x) else "")
        )
    return from_unit(x.float() / 255.0)


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
    if not x.is_floating_point():
        hint = ""
        if x.dtype == torch.uint8:  # 8-bit pixels
            hint = f"; for 8-bit pixels, cfx.images.from_uint8({name})"
        elif _bytes_wide(x):
            hint = (
                f"; values 0..{int_range(x)[1]}: 8-bit pixels as {x.dtype}? "
                f"cfx.images.from_uint8({name}.to(torch.uint8))"
            )
        elif x.dtype != torch.bool:  # 12- or 16-bit scans, as integers
            hint = (
                "; for pixel values, divide by the data's full scale (4095 for 12-bit, 65535 "
                "for 16-bit) and map [0, 1] to [-1, 1] with cfx.images.from_unit"
            )
        raise TypeError(
            f"`{name}` must be a floating-point tensor in [-1, 1], got dtype {x.dtype}{hint}"
        )
    check(x.ndim == 4, ValueError, f"`{name}` must have shape (B, C, H, W), got {tuple(x.shape)}")
    check(x.shape[0] > 0, ValueError, f"`{name}` must hold at least one image, got batch size 0")
    check(  # (B, 0, H, W) or (B, C, 0, W) failed inside torch's amin as an IndexError
        x[0].numel() > 0,
        ValueError,
        f"`{name}` must have channels and pixels, got shape {tuple(x.shape)}",
    )
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
    hint = (
        "rescale them to [-1, 1] (cfx.images.from_unit maps [0, 1] images); images normalised "
        "for a model (e.g. by ImageNet's mean and std) go in as [-1, 1] images, with the model "
        "wrapped as cfx.images.UnitInput(model, mean=..., std=...)"
    )
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


def binary_masks(masks: Tensor, name: str = "masks") -> Tensor:
    """``masks`` as bool: bool as it is, numbers only where every value is 0 or 1; else an
    error naming ``name`` with the values found (a 0/255 mask image gets its fix)."""
    if masks.dtype == torch.bool:
        return masks
    bad = ~((masks == 0) | (masks == 1))
    if bool(bad.any()):
        found = torch.unique(masks.detach().flatten()).cpu()
        shown = ", ".join(f"{float(v):g}" for v in found[:6]) + (", ..." if len(found) > 6 else "")
        fix = "save it as 0/1" if name.startswith("--") else f"pass `{name} > 0`"
        hint = (
            f" (a 0/{float(found[-1]):g} mask image: {fix})"
            if len(found) == 2 and float(found[0]) == 0
            else ""
        )
        raise ValueError(f"`{name}` must be bool or hold only 0 and 1, got values {shown}{hint}")
    return masks != 0


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
