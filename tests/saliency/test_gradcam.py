import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cfx.saliency import GradCAM
from tests.saliency.toy import LinearModel, images, small_cnn


def _cam_net():
    conv = nn.Conv2d(1, 3, 1)
    head = nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.2, 0.1, 0.0]))
        head.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [2.0, 1.0, -3.0]]))
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head), conv


def test_known_answer_on_a_one_by_one_conv_network():
    model, conv = _cam_net()
    x = images(b=2, h=6, w=6)
    cam = GradCAM(model, layer=model[1]).attribute(x, 1)  # hook the ReLU output
    acts = F.relu(conv(x)).detach()  # (B, 3, 6, 6)
    alpha = torch.tensor([2.0, 1.0, -3.0]).view(1, 3, 1, 1) / 36  # d logit / d A = w / (h w)
    expected = F.relu((alpha * acts).sum(1, keepdim=True))
    assert torch.allclose(cam, expected, atol=1e-6)


def test_default_layer_is_the_last_conv_and_names_work():
    model = small_cnn()
    x = images(b=2, h=16, w=16)
    by_default = GradCAM(model).attribute(x, 1)
    last_conv = model.features[-1][0]
    assert torch.equal(by_default, GradCAM(model, layer=last_conv).attribute(x, 1))
    assert torch.equal(
        GradCAM(model, layer="features.2").attribute(x, 1),
        GradCAM(model, layer=model.features[2]).attribute(x, 1),
    )
    assert by_default.shape == (2, 1, 16, 16) and bool((by_default >= 0).all())


def test_upsampling_is_differentiable():
    model = small_cnn()
    x = images(b=2, h=16, w=16).requires_grad_(True)
    cam = GradCAM(model, layer="features.2", relu=False).attribute(x, 1, create_graph=True)
    (g,) = torch.autograd.grad(cam.square().sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_layer_errors():
    with pytest.raises(ValueError, match=r"no nn\.Conv2d"):
        GradCAM(LinearModel()).attribute(images(), 1)
    model = small_cnn()
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3  # named, where the first names of any kind were listed
    with pytest.raises(ValueError, match="not a submodule") as err:
        GradCAM(model, layer="features.9").attribute(images(h=16, w=16), 1)
    assert f"its convolutional layers: {convs} (the default is the last)" in str(err.value)
    with pytest.raises(TypeError, match="`layer` must be given"):
        GradCAM(lambda x: x.flatten(1)[:, :2]).attribute(images(), 1)
    model = small_cnn()
    with pytest.raises(ValueError, match="feature maps"):
        GradCAM(model, layer="head.2").attribute(images(h=16, w=16), 1)
    with pytest.raises(ValueError, match="not called"):
        GradCAM(model, layer=nn.Conv2d(1, 1, 1)).attribute(images(h=16, w=16), 1)


def test_an_in_place_relu_after_the_layer_gives_the_known_map():
    """The hook made the layer's output a leaf, so VGG-style Conv -> ReLU(inplace=True) (or a
    hooked BatchNorm before one) failed: 'a leaf Variable ... used in an in-place
    operation'. The map is the 1x1-conv network's closed form, taken on the conv output."""
    model, conv = _cam_net()
    model[1] = nn.ReLU(inplace=True)
    x = images(b=2, h=6, w=6)
    cam = GradCAM(model).attribute(x, 1)  # the default layer: the conv, before the ReLU
    pre = conv(x).detach()  # (B, 3, 6, 6)
    # d logit / d A = w / (h w) where the ReLU lets the channel through, else 0
    grads = torch.tensor([2.0, 1.0, -3.0]).view(1, 3, 1, 1) / 36 * (pre > 0)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    expected = F.relu((alpha * pre).sum(1, keepdim=True))
    assert torch.allclose(cam, expected, atol=1e-6)
    plain, _ = _cam_net()  # the same weights with a ReLU that is not in place
    assert torch.allclose(GradCAM(plain).attribute(x, 1), expected, atol=1e-6)
    normed = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(True))
    normed = nn.Sequential(*normed, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    maps = GradCAM(normed.eval(), layer="1").attribute(x, 0)  # the BatchNorm's output
    assert maps.shape == (2, 1, 6, 6) and torch.isfinite(maps).all()


def test_the_same_map_under_no_grad():
    """Under the caller's torch.no_grad() (an attack's evaluation step) the score had no
    graph: 'element 0 of tensors does not require grad'."""
    model = small_cnn()
    x = images(b=2, h=16, w=16)
    free = GradCAM(model).attribute(x, 1)
    with torch.no_grad():
        assert torch.equal(GradCAM(model).attribute(x, 1), free)
