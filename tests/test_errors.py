import math

import numpy as np
import pytest
import torch

from cfx.errors import check_int, check_real


def test_check_real_accepts_numbers_in_range_and_returns_floats():
    assert check_real("eta", 3) == 3.0 and isinstance(check_real("eta", 3), float)
    assert check_real("margin", np.float32(0.75), low=0.5, high=1.0) == 0.75
    assert check_real("w", 0.0, low=0.0) == 0.0  # a closed end includes its bound


@pytest.mark.parametrize(
    ("value", "kw", "exc", "message"),
    [
        (0.5, {"low": 0.5, "open_low": True}, ValueError, r"`m` must be a number in \(0.5, inf\)"),
        (1.0, {"high": 1.0, "open_high": True}, ValueError, r"in \(-inf, 1\), got 1.0"),
        (-1, {"low": 0.0}, ValueError, r"in \[0, inf\), got -1"),
        (math.nan, {}, ValueError, "got nan"),
        (math.inf, {"low": 0.0}, ValueError, "got inf"),
        (None, {}, TypeError, "got None"),
        ("0.9", {}, TypeError, "got '0.9'"),
        (True, {}, TypeError, "got True"),
    ],
)
def test_check_real_names_the_argument_and_the_range(value, kw, exc, message):
    with pytest.raises(exc, match=message):
        check_real("m", value, **kw)


def test_check_int():
    assert check_int("steps", 3) == 3 and check_int("steps", np.int64(0), minimum=0) == 0
    with pytest.raises(ValueError, match=r"`steps` must be an int >= 1, got 0"):
        check_int("steps", 0)
    for bad in (1.5, True, "2", None):
        with pytest.raises(TypeError, match="`steps` must be an int >= 1"):
            check_int("steps", bad)


def test_check_seed():
    from cfx.errors import check_seed

    assert (
        check_seed("seed", None) is None and check_seed("seed", np.uint32(2**32 - 1)) == 2**32 - 1
    )
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match=r"`seed` must be None or an int in \[0, 2\*\*32\)"):
            check_seed("seed", bad)
    for bad in (-1, 2**32):
        with pytest.raises(ValueError, match=rf"`seed` must be None .* got {bad}$"):
            check_seed("seed", bad)


def test_check_seed_where_none_means_nothing():
    from cfx.errors import check_seed

    assert check_seed("--seed", 7, optional=False) == 7
    with pytest.raises(TypeError, match=r"^`--seed` must be an int in \[0, 2\*\*32\), got None$"):
        check_seed("--seed", None, optional=False)
    with pytest.raises(ValueError, match=r"^`--seed` must be an int in \[0, 2\*\*32\), got -1$"):
        check_seed("--seed", -1, optional=False)


def test_check_real_reads_zero_d_tensors_and_numpy_scalars():
    import torch

    assert check_real("margin", torch.tensor(0.99), low=0.5, high=1.0) == pytest.approx(0.99)
    assert check_real("margin", np.float64(0.9)) == 0.9
    with pytest.raises(TypeError, match="`margin`"):
        check_real("margin", torch.tensor([0.9, 0.95]))


def _flag_calls():
    """Every public class and function that takes ``show_progress``, as a call with it set."""
    from cfx.augment import ActiveLearner, OracleLabeller, finetune_without_labels
    from cfx.data.brain import make_dataset
    from cfx.demo import build_demo
    from cfx.inversion import invert
    from cfx.saliency import Gradient
    from cfx.saliency.attacks import GhorbaniAttack, TargetMapAttack
    from cfx.saliency.compare import compare_methods
    from cfx.saliency.randomisation import randomise_methods
    from cfx.shortcuts import ShortcutAudit
    from cfx.training.classifier import train_classifier
    from cfx.training.generator import train_generator
    from cfx.trajectory import GradientAscent, LocalisedAscent, MonotonePath, explain_in_chunks
    from tests.trajectory.toy import LinearGenerator, LogisticClassifier

    g, f = LinearGenerator(), LogisticClassifier()
    return {
        "ActiveLearner": lambda v: ActiveLearner(g, f, OracleLabeller(f), show_progress=v),
        "finetune_without_labels": lambda v: finetune_without_labels(
            None, None, None, None, out="x", show_progress=v
        ),
        "make_dataset": lambda v: make_dataset(2, seed=0, show_progress=v),
        "build_demo": lambda v: build_demo("x", show_progress=v),
        "invert": lambda v: invert(g, None, show_progress=v),
        "GhorbaniAttack": lambda v: GhorbaniAttack(Gradient(f), show_progress=v),
        "TargetMapAttack": lambda v: TargetMapAttack(Gradient(f), show_progress=v),
        "compare_methods": lambda v: compare_methods(f, None, None, 0, show_progress=v),
        "randomise_methods": lambda v: randomise_methods(f, None, 0, ["gradient"], show_progress=v),
        "ShortcutAudit": lambda v: ShortcutAudit(g, f, show_progress=v),
        "train_classifier": lambda v: train_classifier(f, None, None, "x", show_progress=v),
        "train_generator": lambda v: train_generator(None, "x", show_progress=v),
        "GradientAscent": lambda v: GradientAscent(g, f, show_progress=v),
        "MonotonePath": lambda v: MonotonePath(g, f, show_progress=v),
        "LocalisedAscent": lambda v: LocalisedAscent(g, f, show_progress=v),
        "explain_in_chunks": lambda v: explain_in_chunks(None, None, 0, show_progress=v),
    }


FLAG_TAKERS = [
    "ActiveLearner", "GhorbaniAttack", "GradientAscent", "LocalisedAscent", "MonotonePath",
    "ShortcutAudit", "TargetMapAttack", "build_demo", "compare_methods", "explain_in_chunks",
    "finetune_without_labels", "invert", "make_dataset", "randomise_methods",
    "train_classifier", "train_generator",
]  # fmt: skip


def test_the_show_progress_test_covers_every_public_taker():
    import inspect

    import cfx

    takers = set()
    for family in ("augment", "data.brain", "demo", "inversion", "saliency", "saliency.attacks",
                   "saliency.compare", "saliency.randomisation", "shortcuts", "training.classifier",
                   "training.generator", "trajectory"):  # fmt: skip
        module = __import__(f"cfx.{family}", fromlist=["_"])
        for name, obj in vars(module).items():
            if (
                name.startswith("_")
                or not callable(obj)
                or (isinstance(obj, type) and issubclass(obj, BaseException))
            ):
                continue
            if not getattr(obj, "__module__", "").startswith("cfx."):
                continue
            if "show_progress" in inspect.signature(obj).parameters:
                takers.add(name)
    assert cfx is not None and takers == set(FLAG_TAKERS)


@pytest.mark.parametrize("name", FLAG_TAKERS)
def test_show_progress_takes_true_or_false_only(name, tmp_path, monkeypatch):
    """``show_progress="no"`` was truthy and showed the bars (an earlier audit's left-alone
    item, fixed in session 57); refused before any work, a file or a folder is made."""
    monkeypatch.chdir(tmp_path)
    call = _flag_calls()[name]
    for value in ("no", "False", None, 0):
        with pytest.raises(
            TypeError, match=f"`show_progress` must be True or False, got {value!r}"
        ):
            call(value)
    assert list(tmp_path.iterdir()) == []
    if name in ("ActiveLearner", "GhorbaniAttack", "TargetMapAttack", "ShortcutAudit"):
        assert call(np.False_).show_progress is False  # numpy's bool is a bool
    if name in ("GradientAscent", "MonotonePath", "LocalisedAscent"):
        assert call(np.True_).show_progress is True


def _other_flag_calls(v):
    """Public switches besides ``show_progress`` that read ``"no"`` as true, each a call."""
    from cfx.data.io import load_images
    from cfx.label.server import serve
    from cfx.recourse.batch import explain_to_file
    from cfx.saliency import GradCAM, Gradient, GradientXInput, IntegratedGradients, SmoothGrad
    from cfx.saliency.attacks import GhorbaniAttack
    from cfx.saliency.compare import build_method, compare_methods
    from cfx.saliency.randomisation import randomise_methods
    from cfx.trajectory import MonotonePath
    from tests.saliency.toy import small_cnn
    from tests.trajectory.toy import LinearGenerator, LogisticClassifier

    m = small_cnn()
    g, f = LinearGenerator(), LogisticClassifier()
    x = torch.zeros(1, 1, 16, 16)
    return {
        "create_graph": [
            lambda method=method: method(m).attribute(x, 0, create_graph=v)
            for method in (Gradient, GradientXInput, IntegratedGradients, SmoothGrad, GradCAM)
        ],
        "absolute": [lambda: Gradient(m, absolute=v), lambda: SmoothGrad(m, absolute=v)],
        "relu": [lambda: GradCAM(m, relu=v)],
        "random_start": [lambda: GhorbaniAttack(Gradient(m), random_start=v)],
        "fast": [
            lambda: build_method("gradient", m, fast=v),
            lambda: compare_methods(m, None, None, 0, fast=v),
            lambda: randomise_methods(m, None, 0, ["gradient"], fast=v),
        ],
        "batch": [lambda: load_images("x.npy", batch=v)],
        "progress": [lambda: explain_to_file(None, None, "x.csv", progress=v)],
        "open_browser": [lambda: serve(None, open_browser=v)],
        "localise": [
            lambda: MonotonePath(g, f, localise=v).explain(g.decode(torch.zeros(1, 3)), 1)
        ],
    }


@pytest.mark.parametrize(
    "flag",
    [
        "absolute",
        "relu",
        "random_start",
        "fast",
        "batch",
        "progress",
        "open_browser",
        "localise",
        "create_graph",
    ],
)
def test_other_switches_take_true_or_false_only(flag, tmp_path, monkeypatch):
    """``Gradient(model, absolute="no")`` drew absolute maps where signed ones were asked for;
    ``fast="no"`` used the small budgets (session 57). Refused before anything is read or
    written."""
    monkeypatch.chdir(tmp_path)
    for call in _other_flag_calls("no")[flag]:
        with pytest.raises(TypeError, match=f"`{flag}` must be True or False, got 'no'"):
            call()
    assert list(tmp_path.iterdir()) == []
    if flag in ("absolute", "relu", "random_start"):
        (make,) = _other_flag_calls(np.False_)[flag][:1]
        assert getattr(make(), flag) is False
