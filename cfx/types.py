"""Small protocols at the edges: what cfx needs from a user's models.

Any ``nn.Module`` or plain callable with the right shape fits; nothing here is subclassed.
Images follow the cfx convention: ``(B, C, H, W)`` float tensors in [-1, 1] (see
:mod:`cfx.images`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
from torch import Tensor

Target: TypeAlias = int | Tensor | Sequence[int] | np.ndarray
"""A target class: one index for every image, or one per image (a ``(B,)`` integer tensor,
list, tuple or numpy array)."""


@runtime_checkable
class Classifier(Protocol):
    """Images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``."""

    def __call__(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Generator(Protocol):
    """Latents ``(B, *latent_shape)`` -> images ``(B, C, H, W)`` in [-1, 1]."""

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one latent, without the batch dimension (e.g. ``(128,)``)."""

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, *latent_shape)`` -> images ``(B, C, H, W)`` in [-1, 1]."""


@runtime_checkable
class Invertible(Generator, Protocol):
    """A generator that can also map images back to latents (an encoder)."""

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] -> latents ``(B, *latent_shape)`` that
        :meth:`decode` maps back to about the same images."""
