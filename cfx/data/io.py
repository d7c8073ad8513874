"""Reading users' image and label files (``.npy`` or ``.pt`` tensors), with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cfx.images import check_images


def _load_array(path: str | Path, name: str) -> Tensor:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`{name}` file not found: {p}")
    if p.suffix.lower() == ".npy":
        return torch.from_numpy(np.load(p, allow_pickle=False))
    if p.suffix.lower() == ".pt":
        obj = torch.load(p, map_location="cpu", weights_only=True)
        if not isinstance(obj, Tensor):
            raise TypeError(f"`{name}` ({p}) must hold a single tensor, got {type(obj).__name__}")
        return obj
    raise ValueError(f"`{name}` must be a .npy or .pt file, got {p.name!r}")


def load_images(path: str | Path, *, name: str = "images") -> Tensor:
    """Images ``(N, C, H, W)`` from ``.npy``/``.pt``: floats in [-1, 1], or uint8 (0..255).

    Errors call the file ``name`` (e.g. the command-line option that gave it)."""
    x = _load_array(path, name)
    if x.dtype == torch.uint8:
        x = x.float() / 127.5 - 1.0
    x = x.float()
    return check_images(x, name)


def load_labels(path: str | Path, n: int) -> Tensor:
    """Integer labels ``(N,)`` matching ``n`` images."""
    y = _load_array(path, "labels")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"`labels` must have shape ({n},), got {tuple(y.shape)}")
    if y.is_floating_point() and not torch.equal(y, y.round()):
        raise ValueError("`labels` must be integers")
    return y.long()


def load_masks(path: str | Path, images: Tensor) -> Tensor:
    """Boolean masks ``(N, 1, H, W)`` for ``images`` ``(N, C, H, W)``; files hold bool or 0/1."""
    m = _load_array(path, "masks")
    want = (images.shape[0], 1, *images.shape[2:])
    if tuple(m.shape) != want:
        raise ValueError(f"`masks` must have shape {want}, got {tuple(m.shape)}")
    if m.dtype != torch.bool and not bool(((m == 0) | (m == 1)).all()):
        raise ValueError("`masks` must be bool or hold only 0 and 1")
    return m.bool()
