"""The one result type of every trajectory explainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cfx.inversion import InversionResult


@dataclass(frozen=True, repr=False)
class TrajectoryResult:
    """A batch of boundary-crossing sequences.

    Frame 0 is the generator's reconstruction of the source, ``G(z_0)`` (localised paths
    with ``background="source"`` show the source itself outside ``edit_masks``); frames
    1..T walk towards the target class, aiming at target probabilities
    ``levels[t] = t / T``.
    """

    frames: Tensor  # (B, T+1, C, H, W) in [-1, 1]
    latents: Tensor  # (B, T+1, *latent_shape)
    probs: Tensor  # (B, T+1) target-class probability of the explained classifier
    levels: Tensor  # (T+1,) calibration targets t / T
    target: Tensor  # (B,) int64 target class
    source: Tensor  # (B, C, H, W) the input images
    success: Tensor  # (B,) bool, the classifier assigns the final frame to the target
    oracle_probs: Tensor | None  # (B, T+1) oracle's target-class probability (if given)
    lambdas: Tensor | None  # (B,) identity weight of each image's chosen path (monotone path
    # only; NaN where the warm start was returned unchanged: no optimised path was valid, or
    # none changed the image less than a valid warm start)
    seconds: float  # wall time of explain(), inversion included
    inversion_seconds: float  # part of `seconds` spent inverting the sources
    edit_masks: Tensor | None = None  # (B, 1, H, W) in [0, 1]: where frames may differ from
    # frame 0 (localised ascent only; None = anywhere)
    inversion: InversionResult | None = None  # the sources' inversion (None: latents given)

    @property
    def steps(self) -> int:
        return int(self.frames.shape[1] - 1)

    @property
    def crossed_at(self) -> Tensor:
        """``(B,)`` int64: the first frame the classifier gives the target more than half
        its probability (0 for a source already there), -1 where no frame does."""
        past = self.probs > 0.5  # (B, T+1)
        first = past.to(torch.uint8).argmax(1)  # the first True (0 if none)
        return torch.where(past.any(1), first, torch.full_like(first, -1))

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __repr__(self) -> str:
        """A one-line summary (the default would print every tensor in full)."""
        b, n = self.probs.shape
        fields = [
            f"images={b}",
            f"steps={n - 1}",
            f"frames={tuple(self.frames.shape)}",
            f"success={int(self.success.sum())}/{b}",
            f"oracle={'yes' if self.oracle_probs is not None else 'no'}",
            f"localised={'yes' if self.edit_masks is not None else 'no'}",
            f"seconds={self.seconds:.2f}",
        ]
        return f"TrajectoryResult({', '.join(fields)})"
