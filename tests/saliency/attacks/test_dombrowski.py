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


def test_the_attack_never_returns_an_image_whose_label_flipped():
    """A target map that can only be reached by flipping the label: every step towards it
    lowers the logit, so the attack may keep only the steps that still keep the label (a
    mutant that kept the closest map whatever the label passed the test above)."""
    from cfx.saliency import GradientXInput
    from tests.saliency.attacks.test_ghorbani import SumLogit

    # class 1 iff sum(x) > 0 (0.04 here); Gradient x Input gives the map x + 1, so the share
    # in pixel 0 grows as pixel 0 rises and the others fall, which lowers the sum: the
    # target map (all relevance in pixel 0) lies across the boundary. gamma 0: nothing in the
    # loss holds the prediction, so the optimiser walks across
    x0 = torch.tensor([0.0, -0.3, 0.2, 0.14]).view(1, 1, 2, 2)
    goal = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 2)
    attack = TargetMapAttack(GradientXInput(SumLogit()), steps=20, gamma=0.0, epsilon=16 / 255)
    res = attack.perturb(x0, 1, target_map=goal)
    assert float(res.x_adv.sum()) > 0 and bool(res.label_kept.all())
