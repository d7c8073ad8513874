"""Pieces shared by the trajectory explainers (the model-calling helpers are in
:mod:`cfx.calls`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from cfx.types import Generator


def composite_decoder(
    generator: Generator, mask: Tensor, start: Tensor
) -> Callable[[Tensor, Tensor], Tensor]:
    """``decode(z, image)``: frames ``mask * G(z) + (1 - mask) * start`` in chunks of 32.

    ``mask`` ``(B, 1, H, W)`` and ``start`` ``(B, C, H, W)`` (= ``G(z_0)``) belong to the
    images; the latents ``z`` ``(N, *latent)`` belong to the images ``image`` ``(N,)``.
    """

    def decode(z: Tensor, image: Tensor) -> Tensor:
        out = []
        for i in range(0, z.shape[0], 32):
            rows = image[i : i + 32]
            out.append(
                mask[rows] * generator.decode(z[i : i + 32]) + (1 - mask[rows]) * start[rows]
            )
        return torch.cat(out)  # (N, C, H, W)

    return decode
