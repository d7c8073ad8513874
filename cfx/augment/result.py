"""Frozen results of :meth:`~cfx.augment.ActiveLearner.augment`, and a round's ``round.json``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor, nn

from cfx.reprs import short_repr


@dataclass(frozen=True)
class AugmentRound:
    """What one round did: labels spent and what the fine-tuned model scored."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    index: int
    starts: Tensor  # (S,) pool indices used as starting points
    labelled: int  # labels spent in this round (unsure answers included)
    label_counts: tuple[int, ...]  # labels per class
    disagreement: float  # of the frames labelled with a class, the share the classifier got
    # wrong before this round; NaN when none got one
    metrics: dict[str, float]  # eval_fn(model) after fine-tuning ({} without eval_fn)
    unsure: int = 0  # frames the labeller could not call (label -1): not trained on


@dataclass(frozen=True)
class AugmentResult:
    """The fine-tuned model, every labelled image, and the per-round history."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    model: nn.Module  # a fine-tuned copy; the user's classifier is unchanged
    images: Tensor  # (N, C, H, W) in [-1, 1], all labelled frames
    labels: Tensor  # (N,) int64; -1 (cfx.label.UNSURE) where the labeller could not call one
    rounds: tuple[AugmentRound, ...]
    # eval_fn(classifier) before any round, the baseline of the rounds' metrics ({} without
    # eval_fn)
    start_metrics: dict[str, float] = field(default_factory=dict)
    # what the run was given, for finetune_without_labels (None in a result built by hand):
    # the seed, and the sha256 of the training images and labels (cfx.run_key.tensors_sha256
    # of images.float(), labels.long())
    seed: int | None = None
    train_sha256: str | None = None

    @property
    def labels_used(self) -> int:
        """Labels spent over all rounds: the number of labelled images ``N``."""
        return int(self.labels.shape[0])


def round_to_json(r: AugmentRound) -> dict:
    """What ``round.json`` keeps of a round (its starts are stored with its tensors)."""
    return {
        "index": r.index,
        "labelled": r.labelled,
        "label_counts": list(r.label_counts),
        # NaN (no frame got a class) is no JSON number: null, as summary.json writes it
        "disagreement": None if math.isnan(r.disagreement) else r.disagreement,
        "metrics": {k: None if math.isnan(v) else v for k, v in r.metrics.items()},
        "unsure": r.unsure,
    }


def round_from_json(meta: dict, starts: Tensor) -> AugmentRound:
    """The round ``round.json`` and its stored ``starts`` describe."""
    return AugmentRound(
        index=int(meta["index"]),
        starts=starts,
        labelled=int(meta["labelled"]),
        label_counts=tuple(meta["label_counts"]),
        disagreement=math.nan if meta["disagreement"] is None else float(meta["disagreement"]),
        metrics={k: math.nan if v is None else float(v) for k, v in meta["metrics"].items()},
        unsure=int(meta.get("unsure", 0)),  # rounds of an older cfx had none
    )
