import torch
from torch import nn

from cfx.saliency import KernelSHAP
from cfx.saliency.kernel_shap import shapley_coalitions
from tests.saliency.test_lime import _segment_sums, _segments
from tests.saliency.toy import LinearModel, images, small_cnn


def test_linear_logit_model_gives_the_exact_shapley_values():
    model = LinearModel()
    x = images()
    seg = _segments()
    shap = KernelSHAP(model, n_samples=32, output="logit")
    maps = shap.attribute(x, 1, segments=seg, generator=torch.Generator().manual_seed(0))
    sums = _segment_sums(model, x, seg)
    for s in range(4):
        assert torch.allclose(maps[:, 0][seg == s].view(3, -1)[:, 0], sums[:, s], atol=1e-4)


def test_efficiency_holds_for_a_nonlinear_model():
    model = small_cnn()
    x = images(b=2, h=16, w=16)
    shap = KernelSHAP(model, n_samples=64, n_segments=9)
    seg_maps = shap.attribute(x, 1, generator=torch.Generator().manual_seed(0))
    from cfx.saliency import superpixels

    seg = superpixels(x, n_segments=9)
    phi_sum = torch.stack(
        [sum(seg_maps[i, 0][seg[i] == s][0] for s in seg[i].unique()) for i in range(2)]
    )
    with torch.no_grad():
        p = torch.softmax(model(x), 1)[:, 1] - torch.softmax(model(torch.full_like(x, -1)), 1)[:, 1]
    assert torch.allclose(phi_sum, p, atol=1e-4)


class SumPlusFive(nn.Module):
    """Logits (0, sum(x) + 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.tensor(5.0))

    def forward(self, x):
        s = x.flatten(1).sum(1) + self.b
        return torch.stack([torch.zeros_like(s), s], 1)


def test_a_nonzero_baseline_output_is_taken_off_before_the_fit():
    # logit = sum(x) + 5, baseline -1: f(baseline) = -6 + 5 = -1 (not 0). 2x3 image, segment
    # j = column j, columns (0.5, 0, -0.5). An additive model's Shapley values are each
    # segment's own change: 2 * (0.5 + 1) = 3, 2 * (0 + 1) = 2, 2 * (-0.5 + 1) = 1 (sum 6 =
    # f(x) - f(baseline)). Three players, so coalition sizes (1 or 2) differ and a forgotten
    # f(baseline) is not absorbed by the efficiency constraint. n_samples odd: with every
    # coalition in a complementary pair a constant offset cancels under the constraint
    # (residuals f0 +- z.delta), so only an unpaired coalition exposes it.
    x = torch.tensor([[0.5, 0.0, -0.5], [0.5, 0.0, -0.5]]).view(1, 1, 2, 3)
    seg = torch.tensor([[0, 1, 2], [0, 1, 2]]).view(1, 2, 3)
    maps = KernelSHAP(SumPlusFive(), n_samples=7, output="logit", baseline=-1.0).attribute(
        x, 1, segments=seg, generator=torch.Generator().manual_seed(0)
    )
    expected = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]).view(1, 1, 2, 3)
    torch.testing.assert_close(maps, expected, atol=1e-4, rtol=0)


def test_coalitions_come_in_complementary_pairs_over_present_players():
    present = torch.tensor([[True, True, True, False], [True, True, False, False]])
    z = shapley_coalitions(present, 10, torch.Generator().manual_seed(0))
    assert z.shape == (2, 10, 4)
    assert not bool(z[~present[:, None].expand_as(z)].any())
    pairs = z.view(2, 5, 2, 4)
    assert torch.equal(pairs[:, :, 0] ^ pairs[:, :, 1], present[:, None].expand(-1, 5, -1))
    sizes = z.sum(2)
    assert bool((sizes >= 1).all()) and bool((sizes < present.sum(1, keepdim=True)).all())


def test_one_superpixel_gets_the_whole_change_f_x_minus_f_baseline():
    # one player: its Shapley value is f(all on) - f(all off); for the linear logit model
    # that is sum(w * (x - baseline)) = sum(w * (x + 1)), painted on every pixel
    model = LinearModel()
    x = images(b=4)
    expected = (model.w.detach() * (x + 1)).flatten(1).sum(1)  # (B,)
    one = torch.zeros(4, 8, 8, dtype=torch.long)
    for shap, kwargs in (
        (KernelSHAP(model, n_samples=8, output="logit"), {"segments": one}),
        (KernelSHAP(model, n_samples=8, output="logit", n_segments=1), {}),
    ):
        maps = shap.attribute(x, 1, generator=torch.Generator().manual_seed(0), **kwargs)
        assert maps.shape == (4, 1, 8, 8)
        torch.testing.assert_close(maps, expected.view(4, 1, 1, 1).expand(4, 1, 8, 8))
    z = shapley_coalitions(torch.ones(2, 1, dtype=torch.bool), 4, None)
    assert z[:, :, 0].tolist() == [[True, False, True, False]] * 2  # (all on, all off) pairs
