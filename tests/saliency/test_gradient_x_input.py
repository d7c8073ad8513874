import torch

from cfx.saliency import GradientXInput
from tests.saliency.toy import LinearModel, images


def test_linear_model_contributions_are_exact():
    model = LinearModel(shape=(2, 8, 8))
    x = images(c=2)
    maps = GradientXInput(model).attribute(x, 1)  # baseline -1 (black)
    expected = ((x + 1) * model.w.detach()).sum(1, keepdim=True)
    assert torch.allclose(maps, expected, atol=1e-6)
    # the contributions add up to f(x) - f(black)
    black = torch.full_like(x, -1.0)
    gap = model.score(x) - model.score(black)
    assert torch.allclose(maps.flatten(1).sum(1), gap.detach(), atol=1e-4)


def test_zero_baseline_is_plain_input_times_gradient():
    model = LinearModel()
    x = images()
    maps = GradientXInput(model, baseline=0.0).attribute(x, 1)
    assert torch.allclose(maps, x * model.w.detach())


def test_tensor_baseline_broadcasts():
    model = LinearModel()
    x = images()
    base = torch.full((1, 1, 8, 8), 0.25)
    maps = GradientXInput(model, baseline=base).attribute(x, 1)
    assert torch.allclose(maps, (x - 0.25) * model.w.detach())
