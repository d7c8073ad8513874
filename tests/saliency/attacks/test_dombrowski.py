import pytest
import torch

from cfx.saliency import Gradient
from cfx.saliency.attacks import TargetMapAttack
from cfx.saliency.attacks._common import relevance
from tests.saliency.toy import images, small_cnn


def test_map_moves_towards_the_target_within_budget_and_label():
    model = small_cnn(seed=1, width=8, blocks=3)
    x = images(b=3, h=16, w=16, seed=2)
    goal = torch.zeros(1, 1, 16, 16)
    goal[..., 10:, :6] = 1.0  # bottom-left corner
    res = TargetMapAttack(Gradient(model), steps=10, epsilon=16 / 255).perturb(x, target_map=goal)
    assert float((res.x_adv - x).abs().max()) <= 2 * 16 / 255 + 1e-6
    assert bool(res.label_kept.all())
    g = relevance(goal.expand(3, -1, -1, -1))
    before = (relevance(res.maps) - g).square().sum(1)
    after = (relevance(res.maps_adv) - g).square().sum(1)
    assert bool((after <= before).all()) and float(after.mean()) < float(before.mean())


def test_bad_target_maps():
    attack = TargetMapAttack(Gradient(small_cnn()), steps=1)
    x = images(b=2, h=16, w=16)
    with pytest.raises(ValueError, match="`target_map` must have shape"):
        attack.perturb(x, target_map=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="non-negative"):
        attack.perturb(x, target_map=-torch.ones(1, 1, 16, 16))
    with pytest.raises(TypeError, match="`target_map`"):
        attack.perturb(x, target_map=torch.ones(1, 1, 16, 16, dtype=torch.long))
