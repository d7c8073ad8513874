import pytest
import torch

from cfx.saliency import Gradient
from tests.saliency.toy import LinearModel, images, small_cnn


def test_linear_model_gradient_is_the_weight():
    model = LinearModel(shape=(2, 8, 8))
    x = images(c=2)
    signed = Gradient(model, absolute=False, reduce="sum").attribute(x, 1)
    assert torch.allclose(signed, model.w.detach().sum(0, keepdim=True).expand(3, 1, 8, 8))
    paper = Gradient(model).attribute(x, 1)  # max over channels of |w|
    assert torch.allclose(paper, model.w.detach().abs().amax(0, keepdim=True).expand(3, 1, 8, 8))
    # class 0 has logit 0: no gradient at all
    assert torch.equal(Gradient(model).attribute(x, 0), torch.zeros(3, 1, 8, 8))


def test_per_example_targets_and_predicted_class():
    model = LinearModel(classes=3)
    x = images()
    maps = Gradient(model, absolute=False).attribute(x, torch.tensor([1, 2, 0]))
    w = model.w.detach()
    assert torch.allclose(maps[0], w) and torch.allclose(maps[1], -w)
    assert torch.equal(maps[2], torch.zeros_like(w))
    predicted = model(x).argmax(1)
    assert torch.equal(Gradient(model).attribute(x, None), Gradient(model).attribute(x, predicted))


def test_batch_size_chunks_give_the_same_maps():
    model = small_cnn()
    x = images(b=5, h=16, w=16)
    full = Gradient(model).attribute(x, 1)
    assert torch.allclose(Gradient(model, batch_size=2).attribute(x, 1), full)


def test_create_graph_makes_the_map_differentiable():
    model = small_cnn()
    x = images(b=2, h=16, w=16).requires_grad_(True)
    maps = Gradient(model, absolute=False).attribute(x, 1, create_graph=True)
    assert maps.requires_grad
    (g,) = torch.autograd.grad(maps.square().sum(), x)
    assert g.shape == x.shape and torch.isfinite(g).all()
    # without create_graph the map is a constant
    assert not Gradient(model).attribute(x.detach(), 1).requires_grad


def test_bad_arguments():
    model = LinearModel()
    with pytest.raises(ValueError, match="`reduce`"):
        Gradient(model, reduce="median").attribute(images(), 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`batch_size`"):
        Gradient(model, batch_size=0).attribute(images(), 1)


def test_a_model_that_cuts_the_graph_is_named_as_the_model():
    """Saliency calls the user's model `model`; the message once said `classifier` (and before
    that, autograd's "element 0 of tensors does not require grad")."""

    class Detached(LinearModel):
        def forward(self, x):
            return super().forward(x).detach()

    with pytest.raises(ValueError, match="`model`'s logits do not depend on its input"):
        Gradient(Detached()).attribute(images(), 1)
