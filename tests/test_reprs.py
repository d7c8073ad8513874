"""Result objects print as one short line: shapes, counts and numbers."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cfx.reprs import short_repr


@dataclass(frozen=True)
class Toy:
    __repr__ = short_repr

    maps: torch.Tensor
    model: nn.Module
    score: torch.Tensor
    table: pd.DataFrame
    names: tuple[str, ...]
    many: tuple[int, ...]
    settings: dict
    text: str
    ratio: float
    hidden: int = field(default=0, repr=False)


def test_short_repr_summarises_every_kind_of_field():
    toy = Toy(
        maps=torch.zeros(4, 1, 8, 8),
        model=nn.Linear(2, 2),
        score=torch.tensor(0.25),
        table=pd.DataFrame(np.zeros((3, 5))),
        names=("a", "b"),
        many=tuple(range(10)),
        settings={"k": 3},
        text="x" * 100,
        ratio=1 / 3,
    )
    assert repr(toy) == (
        "Toy(maps=<4 x 1 x 8 x 8 float32>, model=<Linear>, score=0.25, table=<DataFrame 3 x 5>, "
        f"names=('a', 'b'), many=<10 x int>, settings={{'k': 3}}, text='{'x' * 77}...', "
        "ratio=0.3333)"
    )


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("cfx.recourse.result", "RecourseResult"),
        ("cfx.recourse.result", "Counterfactual"),
        ("cfx.augment.active", "AugmentResult"),
        ("cfx.augment.active", "AugmentRound"),
        ("cfx.saliency.compare", "ComparisonResult"),
        ("cfx.saliency.randomisation", "RandomisationResult"),
        ("cfx.saliency.attacks._common", "AttackResult"),
        ("cfx.shortcuts.report", "ShortcutReport"),
        ("cfx.data.brain", "BrainSlices"),
        ("cfx.data.credit", "GermanCredit"),
    ],
)
def test_results_print_one_short_line(module, name):
    """Their default reprs printed every tensor, model and table (a RecourseResult ran to
    4,292 characters, an AttackResult started with x_adv's pixels)."""
    import importlib
    from dataclasses import fields

    cls = getattr(importlib.import_module(module), name)
    big = {f.name: torch.zeros(64, 64) for f in fields(cls) if f.init}  # every field a tensor
    text = repr(cls(**big))
    assert text.startswith(f"{name}(") and "tensor(" not in text and len(text) < 60 * len(big)


def test_a_brain_batch_prints_its_shapes():
    from cfx.data.brain import make_dataset

    assert repr(make_dataset(2, seed=0)) == (
        "BrainSlices(images=<2 x 1 x 64 x 64 float32>, labels=<2 int64>, "
        "masks=<2 x 1 x 64 x 64 bool>, tags=<2 bool>, brain_masks=<2 x 1 x 64 x 64 bool>)"
    )
