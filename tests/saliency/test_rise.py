import pytest
import torch
from torch import nn

from cfx.errors import Notice
from cfx.saliency import RISE
from cfx.saliency.rise import rise_masks
from tests.saliency.toy import PatchModel, patch_images


def test_masks_are_smooth_values_in_the_unit_interval():
    m = rise_masks(50, (16, 12), 4, 0.5, generator=torch.Generator().manual_seed(0))
    assert m.shape == (50, 1, 16, 12)
    assert bool(((m >= 0) & (m <= 1)).all())
    assert 0.3 < float(m.mean()) < 0.7


def test_relevance_concentrates_where_the_model_looks():
    model = PatchModel()
    x = patch_images()
    maps = RISE(model, n_masks=300, grid=4).attribute(
        x, 1, generator=torch.Generator().manual_seed(0)
    )
    inside = maps[:, 0, :4, :4].mean((1, 2))
    outside = maps[:, 0, 8:, 8:].mean((1, 2))
    assert bool((inside > outside + 0.05).all())


def test_masks_are_shifted_by_a_random_sub_cell_offset():
    # 4x4 masks, grid 2: cells of 2 px, coarse 2x2 upsampled (bilinear, align_corners=False)
    # to 6x6. Upsampled rows 0 and 1 are exactly coarse row 0 (source coordinate
    # (i + 0.5) / 3 - 0.5 = -1/3, clamped to 0, and 0), row 2 is 2/3 * row 0 + 1/3 * row 1.
    # Pixel (1, 0) reads upsampled row 1 + dy, column 0 + dx with dx in {0, 1} (both exact
    # columns): binary when dy = 0, a non-binary mix when dy = 1 and the two coarse rows
    # differ (1/4 of masks). Without the offset every mask is binary there.
    m = rise_masks(400, (4, 4), 2, 0.5, generator=torch.Generator().manual_seed(0))
    v = m[:, 0, 1, 0]
    mixed = v[(v > 0.01) & (v < 0.99)]
    assert mixed.numel() > 0
    # the non-binary values are exactly 1/3 or 2/3
    torch.testing.assert_close(mixed.sub(0.5).abs(), torch.full_like(mixed, 1 / 6))


class Blind(nn.Module):
    """Logits (0, 0) whatever the image: target probability 0.5 under every mask."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(x.shape[0], 2) + 0 * self.w


def test_relevance_of_a_constant_model_is_that_constant():
    # S = sum_i f M_i / (N p) with f = 0.5 for every mask; E[M] = p (bilinear upsampling of
    # Bernoulli(p) cells keeps the mean), so S ~ 0.5 * p / p = 0.5 at every pixel.
    # p = 0.2 (not 0.5) so "keep with probability p" and "with 1 - p" differ (0.5 vs 2.0);
    # dropping the 1 / p gives 0.1. 4000 masks: the sd of the mean mask is at most
    # sqrt(0.16 / 4000) = 0.0063, of S 0.5 * 0.0063 / 0.2 = 0.016 (tolerance 0.06).
    # A probability that never moves over the masks makes the map the masks' mean, evidence
    # of nothing, which is noticed (it was silent).
    x = torch.full((1, 1, 8, 8), -0.5)  # the model ignores it
    gen = torch.Generator().manual_seed(0)
    with pytest.warns(Notice, match=r"varies by less than 0.01 .* for 1 of 1 images"):
        s = RISE(Blind(), n_masks=4000, grid=4, p=0.2).attribute(x, 1, generator=gen)
    torch.testing.assert_close(s, torch.full_like(s, 0.5), atol=0.06, rtol=0)


class Offset(nn.Module):
    """``model``'s logits plus one constant for every class: the same predictions."""

    def __init__(self, model: nn.Module, c: float) -> None:
        super().__init__()
        self.model, self.c = model, c

    def forward(self, x):
        return self.model(x) + self.c


def test_logit_maps_do_not_depend_on_the_logits_offset():
    """A constant added to every logit changes no prediction; uncentred, it added c times the
    mean mask to the map (a user's CNN whose target logit was -1.2 at probability ~1 got an
    all-negative map, empty once its positive part was scored)."""
    x = patch_images()
    maps = {
        c: RISE(Offset(PatchModel(), c), n_masks=300, grid=4, output="logit").attribute(
            x, 1, generator=torch.Generator().manual_seed(0)
        )
        for c in (0.0, -20.0, 20.0)
    }
    torch.testing.assert_close(maps[-20.0], maps[0.0], atol=1e-4, rtol=0)
    torch.testing.assert_close(maps[20.0], maps[0.0], atol=1e-4, rtol=0)
    # and the map still points at the patch the model reads, positive there
    inside, outside = maps[0.0][:, 0, :4, :4].mean((1, 2)), maps[0.0][:, 0, 8:, 8:].mean((1, 2))
    assert bool((inside > 0).all()) and bool((inside > outside).all())
