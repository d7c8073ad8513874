import torch

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
