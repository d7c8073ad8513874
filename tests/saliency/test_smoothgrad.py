import torch
from torch import nn

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


class Cubic(nn.Module):
    """Target logit sum(x^3) / 3: gradient x^2 per pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        s = (x**3).flatten(1).sum(1) / 3 * self.w
        return torch.stack([torch.zeros_like(s), s], 1)


class NegHalfSquare(nn.Module):
    """Target logit -sum(x^2) / 2: gradient -x per pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        s = -(x**2).flatten(1).sum(1) / 2 * self.w
        return torch.stack([torch.zeros_like(s), s], 1)


def test_noise_is_a_fraction_of_the_image_range_of_width_two():
    # gradient (x + sigma e)^2 at x = 0: mean sigma^2 = 0.09 with sigma = 2 * noise = 0.3
    # (0.0225 if sigma were the noise itself). 4000 samples: the sd of the mean of
    # sigma^2 e^2 is 0.09 * sqrt(2 / 4000) = 0.002 per pixel (tolerance 0.01).
    x = torch.full((1, 1, 2, 2), -1e-6)  # 0 up to (1e-6)^2
    gen = torch.Generator().manual_seed(0)
    s = SmoothGrad(Cubic(), n_samples=4000, noise=0.15).attribute(x, 1, generator=gen)
    torch.testing.assert_close(s, torch.full_like(s, 0.09), atol=0.01, rtol=0)


def test_signed_maps_average_the_signed_gradient():
    # gradient -(x + sigma e): mean -x = (0.5, -0.5, 0.5, -0.5) for x = (-0.5, 0.5, -0.5, 0.5)
    # when absolute=False; |.| would give about +0.5 everywhere (sigma 0.3 rarely flips a sign)
    x = torch.tensor([-0.5, 0.5, -0.5, 0.5]).view(1, 1, 2, 2)
    gen = torch.Generator().manual_seed(0)
    s = SmoothGrad(NegHalfSquare(), n_samples=2000, noise=0.15, absolute=False).attribute(
        x, 1, generator=gen
    )
    torch.testing.assert_close(s, -x, atol=0.05, rtol=0)
