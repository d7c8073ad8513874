"""The one result type of every trajectory explainer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from cfx.inversion import InversionResult

Index = int | slice | list[int] | Tensor
"""What selects sequences from a result: an int, a slice, a list of ints, an integer or bool
tensor ``(B,)``."""


@dataclass(frozen=True, repr=False)
class TrajectoryResult:
    """A batch of ``B`` boundary-crossing sequences of ``T + 1`` frames each.

    Frame 0 is the generator's reconstruction of the source, ``G(z_0)`` (localised paths
    with ``background="source"`` show the source itself outside ``edit_masks``); frames
    1..T walk towards the target class, aiming at target probabilities
    ``levels[t] = t / T``. A frame whose placement landed at or below its predecessor is
    re-placed between its neighbours (:func:`~cfx.trajectory.repair.repair_steps`), off its
    level; a path with a step that cannot be repaired so (its neighbours do not climb either)
    is kept as it is, and the repair is logged.

    Attributes:
        frames: ``(B, T+1, C, H, W)`` in [-1, 1].
        latents: ``(B, T+1, *latent_shape)`` the generator latents of the frames.
        probs: ``(B, T+1)`` the explained classifier's probability of the target class.
        levels: ``(T+1,)`` the calibration targets ``t / T``. A path whose source the
            classifier already puts at or above the first levels is placed at levels spread
            between its start and the next level instead (its frames still climb at every
            step), so its calibration error against ``t / T`` is large by construction.
        target: ``(B,)`` int64 target class of each sequence.
        source: ``(B, C, H, W)`` the input images, in [-1, 1].
        in_target: ``(B, T+1)`` bool, the classifier's most likely class is the target at
            that frame (for two classes: ``probs > 0.5``).
        oracle_probs: ``(B, T+1)`` the oracle's target probability (None without an oracle).
        lambdas: ``(B,)`` identity weight of each image's chosen path, before any frame
            repair (monotone path only;
            NaN where the warm start was returned unchanged: no optimised path was valid, or
            none changed the image less than a valid warm start).
        seconds: wall time of ``explain()`` for the whole batch, inversion included (of a
            :func:`concat` or chunked result: the sum of the parts' times, which for
            :func:`~cfx.trajectory.chunks.explain_in_chunks` may include an earlier,
            interrupted run's).
        inversion_seconds: the part of ``seconds`` spent inverting the sources.
        edit_masks: ``(B, 1, H, W)`` in [0, 1], where frames may differ from frame 0
            (localised paths only; None = anywhere).
        inversion: the sources' inversion (None when the latents were given, or for a
            result read back by :func:`~cfx.trajectory.load_result`).

    ``res[i]``, ``res[2:5]``, ``res[mask]`` select sequences (an int keeps the batch axis);
    ``res.to(device=..., dtype=...)`` and ``res.cpu()`` move them.
    """

    frames: Tensor
    latents: Tensor
    probs: Tensor
    levels: Tensor
    target: Tensor
    source: Tensor
    in_target: Tensor
    oracle_probs: Tensor | None
    lambdas: Tensor | None
    seconds: float
    inversion_seconds: float
    edit_masks: Tensor | None = None
    inversion: InversionResult | None = None

    @property
    def steps(self) -> int:
        """``T``: the frames after the start (each sequence holds ``T + 1``)."""
        return int(self.frames.shape[1] - 1)

    @property
    def success(self) -> Tensor:
        """``(B,)`` bool: the classifier puts the last frame in the target class."""
        return self.in_target[:, -1]

    @property
    def already_in_target(self) -> Tensor:
        """``(B,)`` bool: the classifier already puts frame 0 (the reconstruction of the
        source; the source itself for the pixel baseline) in the target class, so the
        sequence exaggerates the target rather than crossing into it."""
        return self.in_target[:, 0]

    @property
    def crossed_at(self) -> Tensor:
        """``(B,)`` int64: the first frame the classifier assigns to the target (0 for a
        source already there), -1 where no frame is."""
        first = self.in_target.to(torch.uint8).argmax(1)  # the first True (0 if none)
        return torch.where(self.in_target.any(1), first, torch.full_like(first, -1))

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __getitem__(self, index: Index) -> TrajectoryResult:
        """The sequences ``index`` selects, as a result of their own (``levels`` and the
        timings, which belong to the whole batch, are kept)."""
        rows = _rows(index, len(self), self.frames.device)
        inversion = self.inversion
        if inversion is not None:
            inversion = _map(inversion, lambda t: t[rows])  # every tensor is per image
        # every tensor but the levels is per image
        return replace(_map(self, lambda t: t[rows], skip=("levels",)), inversion=inversion)

    def to(
        self,
        device: torch.device | str | torch.dtype | None = None,
        dtype: torch.dtype | None = None,
    ) -> TrajectoryResult:
        """A copy on ``device`` with floating-point tensors in ``dtype`` (the integer and bool
        tensors keep theirs); ``res.to(torch.float64)`` works as for a tensor."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device

        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        inversion = None if self.inversion is None else _map(self.inversion, move)
        return replace(_map(self, move), inversion=inversion)

    def cpu(self) -> TrajectoryResult:
        return self.to(device="cpu")

    def __repr__(self) -> str:
        """A one-line summary (the default would print every tensor in full)."""
        b, n = self.probs.shape
        fields_ = [
            f"images={b}",
            f"steps={n - 1}",
            f"frames={tuple(self.frames.shape)}",
            f"success={int(self.success.sum())}/{b}",
            f"oracle={'yes' if self.oracle_probs is not None else 'no'}",
            f"localised={'yes' if self.edit_masks is not None else 'no'}",
            f"seconds={self.seconds:.2f}",
        ]
        return f"TrajectoryResult({', '.join(fields_)})"


def _rows(index: Index, b: int, device: torch.device) -> Tensor:
    """``index`` as int64 row indices into a batch of ``b`` (an error naming it otherwise).
    Integers (Python, numpy, 0-d tensors) keep the batch axis: ``res[2]`` holds one image."""
    if isinstance(index, bool | str):  # "a" reached torch.as_tensor: "invalid data type 'str'"
        raise TypeError(
            f"a result is indexed by int, slice, list or tensor, got {index!r}"
            + (f": its fields are attributes (res.{index})" if isinstance(index, str) else "")
        )
    if isinstance(index, tuple):  # res[0, -1] read as rows 0 and -1 of the batch
        raise TypeError(
            f"a result is indexed by sequence only (int, slice, list or tensor), got the tuple "
            f"{index!r}: for frame t of image i use `res.frames[i, t]` (or `res[i].frames[:, t]`)"
        )
    if isinstance(index, slice):
        return torch.arange(b, device=device)[index]
    if isinstance(index, list) and not index:  # torch.as_tensor([]) would be float
        return torch.empty(0, dtype=torch.long, device=device)
    t = torch.as_tensor(index, device=device)
    if t.dtype == torch.bool:
        if tuple(t.shape) != (b,):
            raise IndexError(f"a bool index must have shape ({b},), got {tuple(t.shape)}")
        return torch.nonzero(t).flatten()
    if t.is_floating_point() or t.is_complex() or t.ndim > 1:
        raise TypeError(
            f"a result is indexed by an int, a slice or 1-D integer or bool indices, got "
            f"{t.dtype} of shape {tuple(t.shape)}"
        )
    t = t.reshape(-1)  # an integer becomes one row
    if t.numel() and not (bool((t >= -b).all()) and bool((t < b).all())):
        raise IndexError(f"index out of range for a result of {b} sequences: {t.tolist()[:10]}")
    return t.long() % b


def _map(obj: Any, fn: Any, skip: tuple[str, ...] = ()) -> Any:
    """``obj`` (a frozen dataclass) with ``fn`` applied to its tensor fields not in ``skip``."""
    changes = {
        f.name: fn(value)
        for f in fields(obj)
        if isinstance(value := getattr(obj, f.name), Tensor) and f.name not in skip
    }
    return replace(obj, **changes)


def concat(results: Sequence[TrajectoryResult]) -> TrajectoryResult:
    """One result from the batches ``results`` (the rows in order), e.g. of chunks of one
    input. They must share ``levels`` and which optional fields they hold; ``seconds`` and
    ``inversion_seconds`` add up, and so do the inversions' seconds."""
    if isinstance(results, TrajectoryResult):  # iterated row by row, its seconds counted B times
        raise TypeError("`results` must be a list of TrajectoryResult, got one: pass [result]")
    if not results:
        raise ValueError("`results` must hold at least one TrajectoryResult, got none")
    bad = [type(r).__name__ for r in results if not isinstance(r, TrajectoryResult)]
    if bad:
        raise TypeError(f"`results` must hold TrajectoryResult objects, got {', '.join(bad[:3])}")
    first = results[0]
    for i, res in enumerate(results[1:], start=1):
        if res.levels.shape != first.levels.shape or not torch.equal(
            res.levels.to(first.levels), first.levels
        ):
            raise ValueError(
                f"`results`: result {i} has levels {res.levels.tolist()}, result 0 "
                f"{first.levels.tolist()}"
            )
        for name in ("oracle_probs", "lambdas", "edit_masks", "inversion"):
            if (getattr(res, name) is None) != (getattr(first, name) is None):
                raise ValueError(f"`results`: result {i} and result 0 differ in having {name}")
        for f in fields(first):
            a, b = getattr(first, f.name), getattr(res, f.name)
            if isinstance(a, Tensor) and f.name != "levels":
                want, got = (a.shape[1:], a.dtype, a.device), (b.shape[1:], b.dtype, b.device)
                if want != got:
                    raise ValueError(
                        f"`results`: {f.name} of result {i} has per-image shape, dtype, device "
                        f"{got}, result 0 {want}"
                    )
    changes: dict[str, Any] = {
        f.name: torch.cat([getattr(r, f.name) for r in results])
        for f in fields(first)
        if isinstance(getattr(first, f.name), Tensor) and f.name != "levels"
    }
    changes["seconds"] = sum(r.seconds for r in results)
    changes["inversion_seconds"] = sum(r.inversion_seconds for r in results)
    if first.inversion is not None:
        inversions = [r.inversion for r in results if r.inversion is not None]
        kinds = {(inv.perceptual, inv.steps) for inv in inversions}
        if len(kinds) > 1:
            raise ValueError(f"`results`: inversions with different settings {sorted(kinds)}")
        merged: dict[str, Any] = {
            f.name: torch.cat([getattr(inv, f.name) for inv in inversions])
            for f in fields(first.inversion)
            if isinstance(getattr(first.inversion, f.name), Tensor)
        }
        merged["seconds"] = sum(inv.seconds for inv in inversions)
        changes["inversion"] = replace(first.inversion, **merged)
    return replace(first, **changes)
