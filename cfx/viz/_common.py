"""Shared by cfx.viz's figures: matplotlib figures without pyplot, saving, and the checks
of image panels (their layout is :mod:`cfx.viz._sheet`'s)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from cfx.errors import shape_or_type, shown_rows
from cfx.images import to_unit
from cfx.metrics.image import check_scale

log = logging.getLogger("cfx.viz")


_F = TypeVar("_F", bound=Callable[..., Any])


def drawing(draw: _F) -> _F:
    """Draw a figure with its ``path`` checked first and every text as written.

    The path is checked before the drawing (:func:`cfx.files.path_argument`): a path that
    is no path failed only when the figure was saved, after seconds of drawing. A ``$`` pair
    in a file name or class name (``price $5 to $10.png``) was read as mathematics, garbling
    the label, or failed to parse (``scan$_$.png``) and lost the figure: matplotlib's
    setting is changed for the call only (``rc_context``)."""
    signature = inspect.signature(draw)

    @functools.wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> Any:
        from matplotlib import rc_context

        from cfx.files import path_argument

        try:
            path = signature.bind(*args, **kwargs).arguments.get("path")
        except TypeError:  # a wrong call: Python's own error, from the call below
            path = None
        if path is not None:
            path_argument(path, "path")
        with rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn  # type: ignore[return-value]


def _subplots(*grid: int, figsize: tuple[float, float], **kwargs):
    """``(figure, axes)`` of a matplotlib ``Figure`` made directly, without pyplot: cfx never
    picks a backend or touches pyplot's state (``matplotlib.use("Agg")`` here once silenced
    every later figure of a notebook's inline backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def _save(fig, path: str | Path, *, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (creating folders; ``.png`` added to a name without a
    suffix matplotlib writes: ``run.v2`` is ``run.v2.png``), return the path written. The
    file is written whole or not at all (:func:`cfx.files.write_atomic`): Ctrl-C during
    ``cfx data preview`` left a truncated PNG in place of the earlier one."""
    import io

    from cfx.files import path_argument, write_atomic

    out = path_argument(path, "path")
    kind = out.suffix[1:].lower()
    if kind not in fig.canvas.get_supported_filetypes():
        out, kind = out.with_name(out.name + ".png"), "png"
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=kind)
    return write_atomic(out, buffer.getvalue())


def _finite(name: str, value: Tensor) -> Tensor:
    """``value`` with NaN and infinite entries as 0, and a warning naming ``name`` and the
    rows that held them: drawn as they were, a NaN frame showed white (a valid all-+1 image)
    and one NaN pixel blanked a whole map's overlay."""
    bad = ~torch.isfinite(value.detach())
    if not bool(bad.any()):
        return value
    rows = torch.nonzero(bad.flatten(1).any(1)).flatten().tolist() if value.ndim > 1 else []
    log.warning(
        "`%s` holds %d NaN or infinite value(s)%s: drawn as 0",
        name,
        int(bad.sum()),
        f" (rows {shown_rows(rows, 5)})" if rows else "",
    )
    return torch.nan_to_num(value.detach(), nan=0.0, posinf=0.0, neginf=0.0)


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
    """Images ``(N, C, H, W)`` in [-1, 1] with ``C`` 1 or 3 -> ``(N, H, W, C)`` in [0, 1]
    (NaN drawn as 0, said: :func:`_finite`)."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"`{name}` must be images (N, C, H, W), got {shape_or_type(images)}")
    if not images.is_floating_point():  # uint8 0..255 read as [-1, 1]: washed out
        raise TypeError(
            f"`{name}` must be float images in [-1, 1], got dtype {images.dtype} (8-bit "
            "pixels: cfx.images.from_unit(x.float() / 255))"
        )
    if images.shape[1] not in (1, 3):
        raise ValueError(f"`{name}` must have 1 or 3 channels to draw, got {tuple(images.shape)}")
    check_scale(images, name)  # [0, 255] images were drawn white, silently
    images = _finite(name, images.detach().float())
    return to_unit(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()


def _picture_bytes(images: Tensor, name: str = "frames") -> np.ndarray:
    """:func:`_pictures` as uint8 ``(N, H, W, C)``, rounded as :func:`cfx.images.to_uint8`
    rounds (the image files written without matplotlib: a grid, a GIF)."""
    return (_pictures(images, name) * 255.0 + 0.5).astype(np.uint8)


def _some(name: str, value: Tensor, what: str) -> None:
    """An error naming ``name`` when its first axis (the batch, a path's frames) is empty:
    there is nothing to draw, and matplotlib's own error would not say which argument."""
    if value.shape[0] == 0:
        raise ValueError(f"`{name}` holds no {what} (shape {tuple(value.shape)}): nothing to draw")


def _drawable(images: Tensor) -> Tensor:
    """Images as drawn: grey or colour as they are, channel 0 of any other channel count."""
    return images if images.shape[1] in (1, 3) else images[:, :1]


def _check_names(row_names: Sequence[str] | None, b: int) -> None:
    if isinstance(row_names, str):  # its letters would name the rows
        raise TypeError(
            f"`row_names` must be a list of names, one per row, got the string {row_names!r}"
        )
    if row_names is not None and len(row_names) != b:
        raise ValueError(f"`row_names` must name the {b} rows, got {len(row_names)} names")


def _class_labels(
    name: str, labels: Tensor, what: str, lowest: int = 0, highest: int | None = None
) -> None:
    """An error naming ``name`` unless ``labels`` are whole numbers in ``[lowest, highest]``
    (a probability of 0.5 was drawn as class 0, a label 2 as healthy)."""
    bad = labels < lowest
    if highest is not None:
        bad |= labels > highest
    if labels.is_floating_point():
        bad |= labels != labels.round()  # NaN too
    if bool(bad.any()):
        raise ValueError(f"`{name}` must be {what}, got {float(labels[bad][0]):g}")


def _change(first: Tensor, last: Tensor) -> tuple[np.ndarray, float]:
    """Where ``last`` differs from ``first`` (both ``(B, C, H, W)``): ``|last - first|`` summed
    over channels, ``(B, H, W)``, and the largest change (1e-6 at least: a scale for none). A
    NaN or infinite pixel (a half-precision VAE's overflow) counts as no change, so it sets
    no figure's scale."""
    change = (last.detach().float() - first.detach().float()).abs().sum(1).cpu().numpy()
    change = np.nan_to_num(change, nan=0.0, posinf=0.0)
    return change, max(float(change.max()), 1e-6)


def _change_style(top: float) -> dict[str, Any]:
    """How a change map is coloured on the figure's scale ``top``: black for none, the
    largest at magma's orange, not its pale yellow, so outlines drawn on it show."""
    return {"cmap": "magma", "vmin": 0, "vmax": top / 0.8}
