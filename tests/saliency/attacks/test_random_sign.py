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


def test_without_a_generator_the_global_one_is_untouched_and_attacks_repeat():
    """RandomSign's signs and Ghorbani's random start (and a stochastic explainer's noise)
    came from torch's global generator when none was passed (session-54 audit)."""
    from cfx.saliency.attacks import GhorbaniAttack

    model = small_cnn()
    x = images(b=2, h=16, w=16)
    attacks = [
        RandomSign(RISE(model, n_masks=8, grid=4)),
        GhorbaniAttack(Gradient(model), objective="mass_center", steps=2),
    ]
    for attack in attacks:
        torch.manual_seed(5)
        before = torch.random.get_rng_state()
        a = attack.perturb(x)
        assert torch.equal(torch.random.get_rng_state(), before)
        assert torch.equal(a.x_adv, attack.perturb(x).x_adv)
        assert torch.equal(a.x_adv, attack.perturb(x, generator=torch.Generator()).x_adv)


class _Blank(torch.nn.Module):
    """An explainer whose maps are blank whatever the image: every pixel ties."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def attribute(self, x, target, **kwargs):
        return torch.zeros(x.shape[0], 1, *x.shape[2:])


def test_maps_that_did_not_move_keep_their_whole_top_k():
    """Blank maps before and after: nothing moved, so intersection 1 (it read k / P = 0.02,
    a total success of the attack, session-55 audit)."""
    res = RandomSign(_Blank(small_cnn()), epsilon=4 / 255).perturb(
        images(b=2, h=16, w=16), generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(res.maps, res.maps_adv)
    assert res.top_k_intersection.tolist() == [1.0, 1.0]
