import torch

from cfx.saliency import Gradient, SmoothGrad
from tests.saliency.toy import LinearModel, images, small_cnn


def test_linear_model_smoothgrad_equals_the_gradient():
    model = LinearModel()
    x = images()
    g = torch.Generator().manual_seed(0)
    maps = SmoothGrad(model, n_samples=5).attribute(x, 1, generator=g)
    assert torch.allclose(maps, Gradient(model).attribute(x, 1), atol=1e-6)


def test_same_seed_same_map_and_noise_matters():
    model = small_cnn()
    x = images(b=2, h=16, w=16)
    sg = SmoothGrad(model, n_samples=6, noise=0.2)
    a = sg.attribute(x, 1, generator=torch.Generator().manual_seed(3))
    b = sg.attribute(x, 1, generator=torch.Generator().manual_seed(3))
    c = sg.attribute(x, 1, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_small_batches_split_the_images_and_give_the_same_average():
    model = small_cnn()
    x = images(b=3, h=16, w=16)
    sg_big = SmoothGrad(model, n_samples=4, batch_size=256)
    sg_small = SmoothGrad(model, n_samples=4, batch_size=2)
    a = sg_big.attribute(x, 1, generator=torch.Generator().manual_seed(0))
    b = sg_small.attribute(x, 1, generator=torch.Generator().manual_seed(0))
    assert a.shape == b.shape == (3, 1, 16, 16)
    # same noise draws, in the same order (sample-major), so the averages agree
    assert torch.allclose(a, b, atol=1e-6)
