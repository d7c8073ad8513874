"""Small image filters shared by several modules (no value-range conversion here: that is
:mod:`cfx.images`)."""

from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` images (kernel radius ``ceil(2 sigma)``,
    edges replicated); ``sigma`` > 0 (0 gave NaN images)."""
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not sigma > 0:
        raise ValueError(f"`sigma` must be a number > 0, got {sigma!r}")
    if not math.isfinite(sigma):
        raise ValueError(f"`sigma` must be finite, got {sigma!r}")
    radius = max(1, math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
