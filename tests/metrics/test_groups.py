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
        group_accuracies(torch.zeros(3), torch.zeros(2), torch.zeros(3))
    assert math.isnan(
        group_accuracies(torch.tensor([2]), torch.tensor([2]), torch.tensor([0]))["worst_group"]
    )
