"""Superpixels for LIME and KernelSHAP: a small batched SLIC.

Achanta, Shaji, Smith, Lucchi, Fua & Suesstrunk, "SLIC Superpixels Compared to
State-of-the-Art Superpixel Methods", IEEE TPAMI 2012. Centres start on a regular grid of about
``n_segments`` cells (spacing ``S``); each iteration assigns every pixel to the centre that
minimises ``(I_p - I_k)^2 + (compactness / S)^2 * ||p - k||^2`` (intensity = channel mean of a
lightly smoothed image, in the cfx range [-1, 1]) and moves the centres to the means of their
pixels. Everything is batched over images with dense distance tensors (fine for the small
images cfx works with); segments may be empty or disconnected, which LIME and KernelSHAP
handle. Deterministic: no randomness.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.saliency._common import check_input, positive_float, positive_int


def superpixels(
    x: Tensor,
    *,
    n_segments: int = 64,
    compactness: float = 0.25,
    iterations: int = 10,
    batch_size: int = 32,
) -> Tensor:
    """Segment images ``x`` ``(B, C, H, W)`` in [-1, 1] into at most ``K ~ n_segments`` parts.

    SLIC: each pixel joins the grid-seeded centre nearest in intensity and position (see the
    module docstring). Reference: Achanta, Shaji, Smith, Lucchi, Fua & Suesstrunk, "SLIC
    Superpixels Compared to State-of-the-Art Superpixel Methods", IEEE TPAMI 2012.

    Args:
        n_segments: approximate number of segments (grid cells at the start).
        compactness: weight of the spatial distance relative to intensity differences
            (intensity units of the [-1, 1] range per grid spacing); larger = squarer segments.
        iterations: assignment/update rounds.
        batch_size: images processed together (bounds memory: ``batch * K * H * W`` floats).

    Returns ``(B, H, W)`` int64 labels in ``[0, K)``, the same ``K`` for every image
    (``K = gy * gx``, the grid size actually used).
    """
    x = check_input(x)
    n = positive_int("n_segments", n_segments)
    m = positive_float("compactness", compactness)
    iters = positive_int("iterations", iterations, minimum=0)
    size = positive_int("batch_size", batch_size)
    h, w = x.shape[2:]
    spacing = math.sqrt(h * w / n)
    gy = max(1, min(h, round(h / spacing)))
    gx = max(1, min(w, round(w / spacing)))
    return torch.cat(
        [
            _slic(x[s : s + size].detach(), gy, gx, m / spacing, iters)
            for s in range(0, x.shape[0], size)
        ]
    )


def _slic(x: Tensor, gy: int, gx: int, weight: float, iters: int) -> Tensor:
    b, _, h, w = x.shape
    dtype, device = x.dtype, x.device
    intensity = F.avg_pool2d(x.mean(1, keepdim=True), 3, 1, 1, count_include_pad=False)
    intensity = intensity.flatten(1)  # (B, P)
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=dtype, device=device),
        torch.arange(w, dtype=dtype, device=device),
        indexing="ij",
    )
    py, px = yy.flatten(), xx.flatten()  # (P,)
    cy = ((torch.arange(gy, dtype=dtype, device=device) + 0.5) * h / gy).floor()
    cx = ((torch.arange(gx, dtype=dtype, device=device) + 0.5) * w / gx).floor()
    cy, cx = torch.meshgrid(cy, cx, indexing="ij")
    k = gy * gx
    centre_y = cy.flatten().expand(b, k).clone()  # (B, K)
    centre_x = cx.flatten().expand(b, k).clone()
    centre_i = intensity.gather(1, (centre_y * w + centre_x).long())  # (B, K)
    labels = _assign(intensity, py, px, centre_y, centre_x, centre_i, weight)
    for _ in range(iters):
        count = torch.zeros(b, k, dtype=dtype, device=device).scatter_add_(
            1, labels, torch.ones_like(intensity)
        )
        centre_y = _mean(py.expand(b, -1), labels, count, centre_y)
        centre_x = _mean(px.expand(b, -1), labels, count, centre_x)
        centre_i = _mean(intensity, labels, count, centre_i)
        labels = _assign(intensity, py, px, centre_y, centre_x, centre_i, weight)
    return labels.view(b, h, w)


def _mean(values: Tensor, labels: Tensor, count: Tensor, old: Tensor) -> Tensor:
    """Per-segment mean of ``values`` ``(B, P)``; empty segments keep ``old`` ``(B, K)``."""
    total = torch.zeros_like(old).scatter_add_(1, labels, values)
    return torch.where(count > 0, total / count.clamp_min(1), old)


def _assign(
    intensity: Tensor,
    py: Tensor,
    px: Tensor,
    centre_y: Tensor,
    centre_x: Tensor,
    centre_i: Tensor,
    weight: float,
) -> Tensor:
    """Nearest centre under the SLIC distance: ``(B, P)`` labels."""
    d_int = (intensity[:, None, :] - centre_i[:, :, None]) ** 2  # (B, K, P)
    d_sp = (py[None, None] - centre_y[:, :, None]) ** 2 + (
        px[None, None] - centre_x[:, :, None]
    ) ** 2
    return (d_int + weight**2 * d_sp).argmin(1)  # (B, P)
