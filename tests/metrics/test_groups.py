import math

import pytest
import torch

from cfx.metrics import group_accuracies


def test_known_group_accuracies():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    tags = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1]).bool()
    pred = torch.tensor([0, 0, 1, 1, 0, 1, 1, 1])  # healthy+tag all wrong, tumour-notag half
    out = group_accuracies(pred, labels, tags)
    assert out["accuracy"] == 5 / 8
    assert out["healthy_notag"] == 1.0
    assert out["healthy_tag"] == 0.0
    assert out["tumour_notag"] == 0.5
    assert out["tumour_tag"] == 1.0
    assert out["worst_group"] == 0.0


def test_empty_groups_are_left_out_and_shapes_checked():
    out = group_accuracies(torch.tensor([1]), torch.tensor([1]), torch.tensor([True]))
    assert set(out) == {"accuracy", "tumour_tag", "worst_group"}
    with pytest.raises(ValueError, match="`pred`, `labels` and `attribute`"):
        group_accuracies(
            torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long), torch.zeros(3)
        )
    empty = torch.zeros(0, dtype=torch.long)
    assert math.isnan(group_accuracies(empty, empty, empty.bool())["worst_group"])


def test_inputs_that_would_be_scored_wrong_are_named():
    """numpy arrays failed with "'numpy.ndarray' object has no attribute 'float'",
    probabilities scored accuracy 0, and a class without a name was left out of worst_group."""
    labels, tags = torch.tensor([0, 1, 1]), torch.tensor([False, True, False])
    with pytest.raises(TypeError, match=r"`pred` must be a torch tensor .* got ndarray"):
        group_accuracies(labels.numpy(), labels, tags)
    with pytest.raises(TypeError, match=r"`pred` must hold class indices .* pass their argmax"):
        group_accuracies(torch.tensor([0.2, 0.9, 0.7]), labels, tags)
    with pytest.raises(ValueError, match=r"classes \[2\] that `class_names`"):
        group_accuracies(torch.tensor([0, 2, 1]), torch.tensor([0, 2, 1]), tags)
    out = group_accuracies(
        torch.tensor([0, 2, 1]), torch.tensor([0, 2, 1]), tags, class_names=("a", "b", "c")
    )
    assert out["c_tag"] == 1.0 and out["worst_group"] == 1.0


def test_inputs_of_one_length_but_not_one_dimension_are_named():
    t = torch.zeros(2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"must be \(N,\)"):
        group_accuracies(t, t, t.bool())


def test_attributes_and_names_that_would_mislabel_groups_are_refused():
    """Probabilities as `attribute` all read as 'tag'; values 0/1/2 merged 1 and 2; a repeated
    class name overwrote its group (worst_group 0.636 for a true 0.600); a third attribute
    name made a copy of the second's group (session-53 audit)."""
    labels = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 1, 1, 1])
    tags = torch.tensor([0, 1, 0, 1])
    assert group_accuracies(pred, labels, tags)["healthy_tag"] == 0.0  # 0/1 ints are taken
    for bad in (torch.tensor([0.2, 0.9, 0.1, 0.7]), torch.tensor([0, 1, 2, 1])):
        with pytest.raises(ValueError, match=r"`attribute` must be bool or 0/1"):
            group_accuracies(pred, labels, bad)
    with pytest.raises(ValueError, match=r"`class_names` must be a tuple of unique distinct"):
        group_accuracies(pred, labels, tags, class_names=("x", "x"))
    with pytest.raises(ValueError, match=r"`attribute_names` must be a tuple of two distinct"):
        group_accuracies(pred, labels, tags, attribute_names=("a", "b", "c"))  # type: ignore[arg-type]
