import pytest
import torch
from torch import nn

from cfx.saliency import Gradient, SmoothGrad
from cfx.saliency.randomisation import cascading_randomisation, parameterised_layers
from tests.saliency.toy import images, small_cnn


class _Image:
    """A weight-independent "explanation": the image itself (the control of Adebayo et al.)."""

    def __init__(self, model):
        self.model = model

    def attribute(self, x, target):
        return x.mean(1, keepdim=True)


def test_layers_are_listed_from_the_output_back():
    model = small_cnn()
    names = parameterised_layers(model)
    assert names[0] == "head.2" and names[-1] == "features.0.0"


def test_weight_dependent_maps_decorrelate_and_the_control_does_not():
    model = small_cnn()
    x = images(b=4, h=16, w=16)
    g = torch.Generator().manual_seed(0)
    grad = cascading_randomisation(lambda m: Gradient(m, absolute=False), model, x, 1, generator=g)
    ctrl = cascading_randomisation(_Image, model, x, 1, generator=torch.Generator().manual_seed(0))
    assert grad.spearman.shape == (len(grad.layers), 4)
    assert float(grad.spearman[-1].abs().mean()) < 0.5
    assert torch.allclose(ctrl.spearman, torch.ones_like(ctrl.spearman))
    assert torch.allclose(ctrl.spearman_abs, torch.ones_like(ctrl.spearman_abs))


def test_model_left_untouched_and_noise_replayed():
    model = small_cnn()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = images(b=2, h=16, w=16)
    res = cascading_randomisation(
        lambda m: SmoothGrad(m, n_samples=3),
        model,
        x,
        1,
        layers=["head.2"],
        generator=torch.Generator().manual_seed(0),
    )
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert res.layers == ("head.2",)
    signed, absolute = res.mean()
    assert len(signed) == len(absolute) == 1


def test_bad_arguments():
    x = images(h=16, w=16)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        cascading_randomisation(Gradient, lambda t: t, x, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown module"):
        cascading_randomisation(Gradient, small_cnn(), x, 1, layers=["nope"])
    with pytest.raises(ValueError, match="no parameterised"):
        cascading_randomisation(Gradient, nn.Flatten(), x, 1)
