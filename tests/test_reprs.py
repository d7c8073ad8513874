"""Result objects print as one short line: shapes, counts and numbers."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cfx.reprs import settings_repr, short_repr


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
        ("cfx.augment.result", "AugmentResult"),
        ("cfx.augment.result", "AugmentRound"),
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


class Method:
    """A class that does work: its repr lists the arguments it was given."""

    __repr__ = settings_repr

    def __init__(self, model, *, baseline=-1.0, n_steps=32, names=("a",), note=None, **extra):
        self.model = model
        self.baseline = baseline
        self.n_steps = n_steps
        self.names = names
        self.note = note
        self.extra = extra


def test_settings_repr_shows_the_arguments_given_and_leaves_defaults_out():
    assert repr(Method(nn.Linear(2, 2))) == "Method(model=<Linear>)"
    given = Method(nn.Linear(2, 2), baseline=torch.zeros(1, 8, 8), n_steps=128, names=("a",))
    assert repr(given) == "Method(model=<Linear>, baseline=<1 x 8 x 8 float32>, n_steps=128)"
    # 32.0 is not the default 32 to the eye of a reader of the signature; a **kwargs is not shown
    assert repr(Method(None, n_steps=32.0, x=1)) == "Method(model=None, n_steps=32.0)"


def test_every_public_class_that_does_work_prints_its_settings():
    """Explainers, saliency methods, attacks, Recourse and ShortcutAudit printed as
    ``<cfx.saliency.gradcam.GradCAM object at 0x7f...>``."""
    import importlib
    import inspect
    import pkgutil

    import cfx

    default = []
    for info in pkgutil.walk_packages(cfx.__path__, "cfx."):
        if info.name.startswith("cfx.cli"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            cls = getattr(module, name)
            if (
                inspect.isclass(cls)
                and cls.__module__.startswith("cfx.")
                and not issubclass(cls, BaseException)
                and not getattr(cls, "_is_protocol", False)
                and cls.__repr__ is object.__repr__
            ):
                default.append(f"{cls.__module__}.{name}")
    assert sorted(set(default)) == []  # LabelServer too now: its page's address


def test_a_saliency_method_and_an_explainer_print_their_settings():
    from cfx.saliency import IntegratedGradients
    from cfx.trajectory import GradientAscent

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    assert repr(IntegratedGradients(model, n_steps=128)) == (
        "IntegratedGradients(model=<Sequential>, n_steps=128)"
    )
    assert repr(GradientAscent(nn.Identity(), model, margin=0.9)) == (
        "GradientAscent(generator=<Identity>, classifier=<Sequential>, margin=0.9)"
    )
