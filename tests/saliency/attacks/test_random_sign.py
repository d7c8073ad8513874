import torch

from cfx.saliency import RISE, Gradient
from cfx.saliency.attacks import RandomSign
from tests.saliency.toy import images, small_cnn


def test_every_pixel_moves_by_the_budget_unless_clipped():
    model = small_cnn()
    x = images(b=3, h=16, w=16) * 0.9  # away from the range ends: no clipping
    res = RandomSign(Gradient(model), epsilon=4 / 255).perturb(
        x, generator=torch.Generator().manual_seed(0)
    )
    step = (res.x_adv - x).abs()
    assert torch.allclose(step, torch.full_like(step, 8 / 255), atol=1e-6)
    assert torch.allclose(res.linf, torch.full((3,), 4 / 255), atol=1e-6)
    assert res.label_kept.dtype == torch.bool and res.k == round(0.02 * 256)


def test_stochastic_methods_see_the_same_noise_for_both_maps():
    model = small_cnn()
    x = images(b=2, h=16, w=16)
    res = RandomSign(RISE(model, n_masks=8, grid=4), epsilon=1e-6).perturb(
        x, generator=torch.Generator().manual_seed(0)
    )
    # a negligible perturbation with replayed masks: (almost) the same map
    assert bool((res.spearman > 0.99).all())
