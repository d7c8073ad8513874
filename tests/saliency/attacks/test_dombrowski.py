import contextlib

import pytest
import torch

from cfx.errors import Notice
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
    with pytest.raises(TypeError, match=r"`target_map` .* got \(1, 1, 16, 16\) of torch.int64"):
        attack.perturb(x, target_map=torch.ones(1, 1, 16, 16, dtype=torch.long))


def test_a_drawn_boolean_region_is_a_target_map():
    """The README says the attack pulls the map "towards any map m you draw"; a boolean
    region was refused with a TypeError (session-55 audit). It is the 0/1 float map."""
    model, x = small_cnn(seed=1, width=8, blocks=3), images(b=2, h=16, w=16, seed=2)
    region = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    region[..., 10:, :6] = True
    attack = TargetMapAttack(Gradient(model), steps=2)
    drawn = attack.perturb(x, target_map=region, generator=torch.Generator().manual_seed(0))
    as_float = attack.perturb(
        x, target_map=region.float(), generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(drawn.x_adv, as_float.x_adv) and bool((drawn.linf > 0).all())


def test_a_model_or_a_function_passed_for_the_explainer_is_named_briefly():
    """GhorbaniAttack(model) printed the model's whole repr; an explainer built on a plain
    function was told its model must be an nn.Module without what it was (session-55 audit)."""
    from cfx.saliency.attacks import GhorbaniAttack

    model = small_cnn()
    with pytest.raises(TypeError, match=r"got a BrainCNN: a model\? pass .*Gradient\(model\)") as e:
        GhorbaniAttack(model).perturb(images(b=1, h=16, w=16))
    assert "Conv2d" not in str(e.value)
    attack = TargetMapAttack(Gradient(lambda batch: model(batch)))
    goal = torch.ones(1, 1, 16, 16)
    with pytest.raises(
        TypeError, match=r"`explainer.model` must be an nn.Module .* got a function"
    ):
        attack.perturb(images(b=1, h=16, w=16), target_map=goal)


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


class ReluSum(torch.nn.Module):
    """Logits (0, sum(relu(x))): its softplus surrogate's gradient map is sigmoid(beta * x)."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        s = self.relu(x).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(s), s], 1)


def _recording_gradient(model):
    """A Gradient explainer that records, at each differentiable call (the attack's surrogate,
    once per step), the image it explains and the softplus sharpness of its model."""
    seen = []

    class Recording(Gradient):
        def attribute(self, x, target, *, create_graph=False):
            if create_graph:
                betas = {m.beta for m in self.model.modules() if isinstance(m, torch.nn.Softplus)}
                seen.append((x.detach().clone(), betas))
            return super().attribute(x, target, create_graph=create_graph)

    return Recording(model), seen


def test_beta_is_annealed_geometrically_from_beta_start_to_beta_end():
    """Known answer: three steps from 2 to 50 are 2, 2 * 25^(1/2) = 10, 50; one step is 2."""
    x0 = torch.tensor([-0.1, -0.1]).view(1, 1, 1, 2)
    goal = torch.ones(1, 1, 1, 2)
    for steps, want in [(3, [2.0, 10.0, 50.0]), (1, [2.0])]:
        explainer, seen = _recording_gradient(ReluSum())
        TargetMapAttack(explainer, steps=steps, beta_start=2.0, beta_end=50.0).perturb(
            x0, 1, target_map=goal
        )
        assert [b for _, (b,) in seen] == pytest.approx(want)


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_the_output_term_pulls_the_surrogate_probability_back_to_the_original(gamma):
    """Known answer. Two equal pixels at -0.1 explained for class 1, a uniform target map: the
    surrogate's map sigmoid(beta x) is uniform too, so the map term is 0 with gradient 0 and
    only the gamma term moves the image. The softplus(2) surrogate's log-odds sum(softplus(x))
    = 2 log(1 + e^-0.2) / 2 = 0.60 exceed the real sum(relu(x)) = 0, so gamma ||p - p0||^2 is
    lowered by lowering both pixels: Adam's first step moves each by lr * range = 4/255 down.
    With gamma 0 nothing moves."""
    x0 = torch.tensor([-0.1, -0.1]).view(1, 1, 1, 2)
    explainer, seen = _recording_gradient(ReluSum())
    attack = TargetMapAttack(explainer, steps=2, gamma=gamma, lr=2 / 255)
    with (
        pytest.warns(Notice, match="exactly zero for 1 of 1 images")  # nothing moves: said
        if gamma == 0
        else contextlib.nullcontext()
    ):
        attack.perturb(x0, 1, target_map=torch.ones(1, 1, 1, 2))
    assert torch.equal(seen[0][0], x0)
    moved = seen[1][0] - x0
    assert moved.flatten().tolist() == pytest.approx([-gamma * 4 / 255] * 2, rel=1e-4, abs=1e-9)


def test_grad_cam_maps_can_be_attacked():
    """The attack scores each step's real map under torch.no_grad(), where Grad-CAM failed
    ('element 0 of tensors does not require grad'), so `--method gradcam --objective
    target_map` always stopped at the first step."""
    from cfx.saliency import GradCAM

    model = small_cnn(seed=1, width=8, blocks=3)
    x = images(b=3, h=16, w=16, seed=2)
    goal = torch.zeros(1, 1, 16, 16)
    goal[..., 10:, :6] = 1.0
    res = TargetMapAttack(GradCAM(model), steps=10, epsilon=16 / 255).perturb(x, target_map=goal)
    g = relevance(goal.expand(3, -1, -1, -1))
    before = (relevance(res.maps) - g).square().sum(1)
    after = (relevance(res.maps_adv) - g).square().sum(1)
    assert bool((after <= before).all()) and float(after.mean()) < float(before.mean())
