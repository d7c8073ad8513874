import pytest
import torch

from cfx.filters import gaussian_blur


def test_impulse_response_is_a_normalised_symmetric_gaussian():
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    k = gaussian_blur(x, 1.5)[0, 0]
    assert abs(float(k.sum()) - 1.0) < 1e-6
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.T)
    # separable: the centre row is the 1-d kernel times its centre value
    assert float(k[7, 7]) > float(k[7, 8]) > float(k[7, 9]) > 0
    # the kernel is a Gaussian cut at radius ceil(2 sigma) = 3 and renormalised: its variance
    # is that of the truncated Gaussian, sum t^2 w_t / sum w_t, w_t = exp(-t^2 / (2 sigma^2))
    t = torch.arange(-3.0, 4.0)
    w = torch.exp(-(t**2) / (2 * 1.5**2))
    expected = float((t**2 * w).sum() / w.sum())
    var = float((k.sum(0) * (torch.arange(15.0) - 7) ** 2).sum())
    assert abs(var - expected) < 1e-5
    assert float(k[7, 3]) == 0.0 and float(k[7, 4]) > 0.0  # support: radius 3 around 7


def test_constant_images_and_channels_are_kept_apart():
    x = torch.stack([torch.full((8, 8), 0.3), torch.full((8, 8), -0.7)])[None]  # (1, 2, 8, 8)
    assert torch.allclose(gaussian_blur(x, 2.0), x)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_gaussian_blur_refuses_a_sigma_that_is_no_positive_number(sigma):
    """sigma=0 returned NaN images; NaN failed as 'cannot convert float NaN to integer'."""
    with pytest.raises(ValueError, match=r"`sigma` must be"):
        gaussian_blur(torch.zeros(1, 1, 4, 4), sigma)
