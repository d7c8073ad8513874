import math

import pytest
import torch

from cfx.errors import UnknownNameError
from cfx.saliency import Gradient
from cfx.saliency.compare import (
    METRICS,
    ComparisonResult,
    build_method,
    compare_methods,
    mean_ci,
)
from tests.saliency.toy import images, small_cnn


def _masks(b=3):
    m = torch.zeros(b, 1, 16, 16, dtype=torch.bool)
    m[:, :, 4:9, 5:10] = True
    return m


def test_every_method_is_scored_on_the_same_images():
    model = small_cnn()
    x = images(b=3, h=16, w=16)
    res = compare_methods(
        model, x, _masks(), 1, ["gradient", "occlusion", "rise"], fast=True, faithfulness_steps=4
    )
    assert res.methods == ("gradient", "occlusion", "rise") and res.metrics == METRICS
    assert res.scores.shape == (3, len(METRICS), 3)
    assert res.maps.shape == (3, 3, 1, 16, 16)
    assert bool((res.seconds_per_image > 0).all())
    rows = res.summary()
    assert rows[0]["method"] == "gradient" and "dice_ci95" in rows[0]
    assert res.to_csv().count("\n") == 4
    table = res.to_markdown().split("\n")
    assert len(table) == 9 and table[-1] == ""  # header, rule, three rows, blank, 2 notes
    assert table[-3].startswith("Cells: mean ± half-width of the 95% confidence interval")
    assert "Student's t" in table[-3] and "but for deletion_auc" in table[-3]
    assert "pointing_game counts a hit" in table[-3]
    assert table[-2].startswith("relevance_rank and dice are equal by construction")
    rank, dice = METRICS.index("relevance_rank"), METRICS.index("dice")
    assert torch.equal(res.scores[:, rank], res.scores[:, dice])  # the note is true
    name, value = res.best("dice")
    means = [float(res.scores[i, dice].nanmean()) for i in range(3)]
    assert value == pytest.approx(max(means)) and name == res.methods[means.index(max(means))]


class _MapOf:
    """A ready method whose map is a fixed tensor, whatever the images."""

    def __init__(self, maps):
        self.maps = maps

    def attribute(self, x, target, **kwargs):
        return self.maps.to(x)


def test_each_column_holds_the_metric_it_is_named_after():
    """The table's cells were never compared with the metrics they are named after: swapping
    deletion and insertion, or pointing game and relevance mass, or scoring |map| instead of
    its positive part, passed every test (session-55 test audit). Known answers: the mask
    itself localises perfectly, its complement not at all (its positive part lies outside the
    mask, the box around it included); each column also equals its metric on the maps."""
    from cfx.saliency import metrics as M
    from cfx.saliency.faithfulness import deletion_auc, insertion_auc

    model, x, masks = small_cnn(), images(b=3, h=16, w=16), _masks()
    signed = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    methods = {
        "mask": _MapOf(masks.float()),
        "outside": _MapOf((~masks).float() - 2 * masks.float()),  # negative inside
        "signed": _MapOf(signed),
    }
    res = compare_methods(model, x, masks, 1, methods, faithfulness_steps=4)
    col = {name: j for j, name in enumerate(res.metrics)}
    localisation = ["pointing_game", "relevance_mass", "relevance_rank"]
    localisation += ["energy_pointing_game", "dice", "iou"]
    for name in localisation:
        assert res.scores[0, col[name]].tolist() == [1.0, 1.0, 1.0], name
        assert res.scores[1, col[name]].tolist() == [0.0, 0.0, 0.0], name
    relevance = signed.clamp(min=0)  # the positive part is scored, not |map|
    functions = {
        "pointing_game": M.pointing_game,
        "relevance_mass": M.relevance_mass_accuracy,
        "relevance_rank": M.relevance_rank_accuracy,
        "energy_pointing_game": M.energy_pointing_game,
        "dice": M.top_k_dice,
        "iou": M.top_k_iou,
    }
    for name, fn in functions.items():
        assert torch.allclose(res.scores[2, col[name]], fn(relevance, masks)), name
    curves = {
        "deletion_auc": deletion_auc(model, x, relevance, 1, steps=4),
        "insertion_auc": insertion_auc(model, x, relevance, 1, steps=4, blur_sigma=None),
    }
    for name, want in curves.items():
        assert torch.allclose(res.scores[2, col[name]], want, atol=1e-6), name
    assert not torch.allclose(curves["deletion_auc"], curves["insertion_auc"])  # told apart


def test_ready_methods_by_display_name_and_same_seed_same_scores():
    model = small_cnn()
    x = images(b=2, h=16, w=16)
    a = compare_methods(
        model,
        x,
        _masks(2),
        1,
        {"plain": Gradient(model), "lime": build_method("lime", model, fast=True)},
        faithfulness_steps=4,
    )
    b = compare_methods(
        model,
        x,
        _masks(2),
        1,
        {"plain": Gradient(model), "lime": build_method("lime", model, fast=True)},
        faithfulness_steps=4,
    )
    assert a.methods == ("plain", "lime")
    assert torch.equal(a.scores, b.scores)


def test_mean_ci_known_answer_and_nan_handling():
    mean, half = mean_ci(torch.tensor([1.0, 3.0, float("nan")]))
    # sd sqrt(2), n = 2: Student's t with 1 degree of freedom, 12.706 (1.96, the normal
    # approximation, gave two images a sixth of the honest width)
    assert mean == 2.0 and half == pytest.approx(12.7062047 * math.sqrt(2) / math.sqrt(2))
    mean, half = mean_ci(torch.tensor([1.0, 1.0, 1.0, 0.0]))  # a pointing game on 4 images
    assert mean == 0.75 and half == pytest.approx(3.1824463 * 0.5 / 2)
    assert all(math.isnan(v) for v in mean_ci(torch.tensor([float("nan")])))
    mean, half = mean_ci(torch.tensor([0.25, float("nan")]))  # one image: no interval, not 0
    assert mean == 0.25 and math.isnan(half)


def test_errors():
    with pytest.raises(UnknownNameError, match="unknown saliency method"):
        build_method("magic", small_cnn())
    with pytest.raises(ValueError, match="`masks` must have shape"):
        compare_methods(small_cnn(), images(b=2, h=16, w=16), _masks(3), 1, ["gradient"])
    x, m = images(b=3, h=16, w=16), _masks(3)
    # a single name was read letter by letter ("unknown saliency method 'g'")
    with pytest.raises(TypeError, match=r"got the string 'gradient'; for one method pass"):
        compare_methods(small_cnn(), x, m, 1, "gradient")
    # a model where a method belongs failed with "'Net' object has no attribute 'attribute'"
    with pytest.raises(TypeError, match=r"`methods` values must be saliency methods.*\['g'\]"):
        compare_methods(small_cnn(), x, m, 1, {"g": small_cnn()})
    with pytest.raises(TypeError, match="`seed` must be an int, got 'a'"):
        compare_methods(small_cnn(), x, m, 1, ["gradient"], seed="a")
    negative = compare_methods(small_cnn(), x, m, 1, ["gradient"], seed=-5, faithfulness_steps=4)
    assert negative.methods == ("gradient",)  # any int manual_seed takes
    # the command line's spellings (GradCAM, integrated-gradients) were refused in Python
    spelt = compare_methods(
        small_cnn(), x, m, 1, ["Gradient", "gradient-x-input"], faithfulness_steps=4
    )
    assert spelt.methods == ("gradient", "gradient_x_input")
    table = compare_methods(small_cnn(), x, m, 1, ["gradient"], faithfulness_steps=4)
    with pytest.raises(ValueError, match=r"`metric` must be one of \[.*'dice'.*\], got 'dicez'"):
        table.best("dicez")


def test_empty_masks_are_said_not_averaged_away(caplog):
    """All-empty masks gave a table of `nan ± nan` and `best Dice: gradient (nan)`; one empty
    mask dropped its image from the localisation means without a word."""
    model, x = small_cnn(), images(b=3, h=16, w=16)
    with pytest.raises(ValueError, match="`masks` are all empty"):
        compare_methods(model, x, torch.zeros(3, 1, 16, 16, dtype=torch.bool), 1, ["gradient"])
    masks = _masks()
    masks[1] = False
    with caplog.at_level("WARNING"):
        res = compare_methods(model, x, masks, 1, ["gradient"], faithfulness_steps=4)
    assert "1 of 3 masks are empty (rows [1])" in caplog.text
    dice = res.scores[0, METRICS.index("dice")]
    assert dice[1].isnan() and not dice[[0, 2]].isnan().any()  # what the warning says


def test_masks_of_the_wrong_shape_say_what_arrived():
    model, x = small_cnn(), images(b=3, h=16, w=16)
    with pytest.raises(
        ValueError, match=r"`masks` must have shape \(3, 1, 16, 16\), got \(3, 16, 16\)"
    ):
        compare_methods(model, x, _masks()[:, 0], 1, ["gradient"])


def test_0_255_masks_are_refused_before_any_method_runs():
    """0/255 masks passed the up-front checks (non-zero somewhere), the first method ran, and
    the metrics then refused them without saying which values they held."""
    model, x = small_cnn(), images(b=3, h=16, w=16)
    ran = []

    class Spy:
        def __init__(self, m):
            self.model = m

        def attribute(self, x, target):
            ran.append(1)
            return x.mean(1, keepdim=True)

    with pytest.raises(ValueError, match=r"got values 0, 255 \(a 0/255 mask image: pass `masks"):
        compare_methods(model, x, _masks().to(torch.uint8) * 255, 1, {"spy": Spy(model)})
    assert ran == []


def _two_methods() -> ComparisonResult:
    """Scores (methods, metrics, images) with known means. Method a: dice (0.2, 0.4) -> 0.3,
    deletion AUC (0.5, 0.7) -> 0.6. Method b: dice (0.8, NaN) -> 0.8 over its one defined
    image, deletion AUC (0.1, 0.3) -> 0.2."""
    scores = torch.tensor(
        [
            [[0.2, 0.4], [0.5, 0.7]],
            [[0.8, math.nan], [0.1, 0.3]],
        ]
    )
    return ComparisonResult(
        methods=("a", "b"),
        metrics=("dice", "deletion_auc"),
        scores=scores,
        maps=torch.zeros(2, 2, 1, 2, 2),
        seconds_per_image=torch.tensor([1.0, 2.0]),
    )


def test_best_deletion_auc_is_the_lowest_mean():
    # a faithful map deletes the evidence first: lower is better (0.2 for b beats 0.6 for a)
    name, value = _two_methods().best("deletion_auc")
    assert name == "b" and value == pytest.approx(0.2)


def test_best_dice_is_the_highest_mean_over_the_images_where_it_is_defined():
    # b's NaN image is skipped, not averaged in: 0.8 beats a's 0.3
    name, value = _two_methods().best("dice")
    assert name == "b" and value == pytest.approx(0.8)


def test_methods_tied_at_the_best_mean_are_named_together():
    """best('pointing_game') named the first of two methods at 1.0, hiding the tie."""
    from dataclasses import replace

    res = _two_methods()
    tied = replace(res, methods=("a", "b", "c"), scores=torch.cat([res.scores, res.scores[1:]]))
    assert tied.best("dice") == ("b = c", pytest.approx(0.8))
    assert tied.best("deletion_auc")[0] == "b = c"
    # a method without a defined mean is never best (argmax picked NaN, naming nobody)
    scores = res.scores.clone()
    scores[0, 0] = math.nan
    undefined = replace(res, scores=scores)
    assert undefined.best("dice") == ("b", pytest.approx(0.8))
    scores[1, 0] = math.nan
    name, value = replace(res, scores=scores).best("dice")
    assert name == "" and math.isnan(value)


def test_one_image_has_no_interval_and_the_csv_leaves_it_empty():
    """Over one image the 95% interval is undefined: the CSV cell is empty (pandas reads NaN;
    a spreadsheet showed the text 'nan'), the Markdown says n/a, the means are numbers."""
    import io

    import pandas as pd

    res = compare_methods(
        small_cnn(),
        images(b=1, h=16, w=16),
        _masks()[:1],
        1,
        ["gradient"],
        fast=True,
        faithfulness_steps=4,
    )
    text = res.to_csv()
    assert "nan" not in text
    table = pd.read_csv(io.StringIO(text))
    assert table["dice_ci95"].isna().all() and table["dice"].notna().all()
    assert "± n/a" in res.to_markdown()


def test_a_softmax_model_is_named_once_not_once_per_method_and_score():
    """Each method and the deletion/insertion scores probed the model again: one notice each."""
    import warnings

    model = torch.nn.Sequential(small_cnn(), torch.nn.Softmax(1))
    x = images(b=2, h=16, w=16)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        compare_methods(model, x, _masks(2), 1, ["gradient", "occlusion"], fast=True)
    said = [str(w.message) for w in record if "look like probabilities" in str(w.message)]
    assert len(said) == 1


class _Returns:
    """A method of one's own whose ``attribute`` returns ``value``."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def attribute(self, x, target=None, **kw):
        self.calls += 1
        return self.value


def test_a_numpy_seed_and_bad_budgets_are_named_before_any_method_runs():
    """seed=np.int64(3) passed the check and failed in manual_seed ("an integer is
    required"); faithfulness_steps=0 failed as `steps` after the first method had run."""
    import numpy as np

    x, m = images(b=2, h=16, w=16), _masks(2)
    got = compare_methods(
        small_cnn(), x, m, 1, ["gradient"], seed=np.int64(3), faithfulness_steps=4
    )
    assert got.methods == ("gradient",)
    maps = torch.zeros(2, 1, 16, 16)
    for kwargs, message in [
        ({"faithfulness_steps": 0}, "`faithfulness_steps` must be an int >= 1, got 0"),
        ({"batch_size": -1}, "`batch_size` must be an int >= 1, got -1"),
    ]:
        method = _Returns(maps)
        with pytest.raises(ValueError, match=message):
            compare_methods(small_cnn(), x, m, 1, {"mine": method}, **kwargs)
        assert method.calls == 0


def test_a_method_of_ones_own_returning_the_wrong_thing_is_named():
    import numpy as np

    x, m = images(b=2, h=16, w=16), _masks(2)
    cases = [
        (
            np.zeros((2, 1, 16, 16)),
            TypeError,
            r"`methods\['mine'\].attribute` must return a "
            r"float tensor \(2, 1, 16, 16\), got ndarray",
        ),
        (torch.zeros(2, 16, 16), ValueError, r"got \(2, 16, 16\) of dtype torch.float32"),
        (torch.zeros(2, 1, 16, 16, dtype=torch.int64), ValueError, "of dtype torch.int64"),
    ]
    for value, error, message in cases:
        with pytest.raises(error, match=message):
            compare_methods(small_cnn(), x, m, 1, {"mine": _Returns(value)})
