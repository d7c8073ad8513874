import torch

from cfx.saliency import CausalResponsibility
from tests.saliency.toy import PatchModel, patch_images


def test_responsibility_sits_on_the_region_that_keeps_the_class():
    model = PatchModel()
    x = patch_images()
    rex = CausalResponsibility(model, runs=8, depth=3)
    maps = rex.attribute(x, 1, generator=torch.Generator().manual_seed(0))
    assert maps.shape == (2, 1, 16, 16) and bool((maps >= 0).all())
    inside = maps[:, 0, :4, :4].mean((1, 2))
    outside = maps[:, 0, 8:, 8:].mean((1, 2))
    assert bool((inside > 2 * outside).all()) and bool((inside > 0.5).all())


def test_images_not_classified_as_the_target_get_zero_maps():
    model = PatchModel()
    x = patch_images()
    maps = CausalResponsibility(model, runs=2, depth=2).attribute(x, 0)
    assert torch.equal(maps, torch.zeros_like(maps))


def test_same_generator_same_map():
    model = PatchModel()
    x = patch_images()
    rex = CausalResponsibility(model, runs=3, depth=3)
    a = rex.attribute(x, 1, generator=torch.Generator().manual_seed(5))
    b = rex.attribute(x, 1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
