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


def test_quarter_cuts_keep_every_side_at_least_min_size_and_reach_both_ends():
    """Known answer: a 5 x 7 box with min_size 2 can be cut at rows 2..3 and columns 2..5;
    u = 0 takes the first cut, u just below 1 the last, and the four parts tile the box."""
    from cfx.saliency.rex import _quarter

    box = torch.tensor([[10, 15, 20, 27]])  # rows 10..14, columns 20..26
    for u, (ry, cx) in [((0.0, 0.0), (12, 22)), ((0.999, 0.999), (13, 25))]:
        parts = _quarter(box, 2, torch.tensor([u]))
        assert parts[0].tolist() == [
            [10, ry, 20, cx],
            [10, ry, cx, 27],
            [ry, 15, 20, cx],
            [ry, 15, cx, 27],
        ]


class _CornerModel(torch.nn.Module):
    """Class 1 iff pixel (0, 0) is visible (0.5), not masked to the baseline (-1)."""

    def forward(self, x):
        s = 4 * (x[:, 0, 0, 0] + 0.5)
        return torch.stack([torch.zeros_like(s), s], 1)


def test_a_box_of_twice_min_size_is_cut_once_into_quarters_and_no_further():
    """Known answer: a 4 x 4 image with min_size 2 can only be cut at row 2 and column 2. Only
    the top-left quarter keeps the class, and it is critical in the full coalition (masking it
    alone flips the class): responsibility 1 / (1 + 0) = 1 there, 0 elsewhere. Its 2 x 2 box
    is below 2 * min_size, so the run stops: the map is exactly 1 on that quarter."""
    x = torch.full((1, 1, 4, 4), 0.5)
    x[0, 0, 3, 3] = -0.5
    maps = CausalResponsibility(_CornerModel(), runs=2, depth=3, min_size=2).attribute(
        x, 1, generator=torch.Generator().manual_seed(0)
    )
    want = torch.zeros(1, 1, 4, 4)
    want[..., :2, :2] = 1.0
    assert torch.equal(maps, want)


class _Counting:
    """Class 1 whatever the image shows (logits [0, 3]), counting the images it scores (a
    plain callable: an ``nn.Module`` would be scored through a private channels-last copy,
    whose count the test could not read)."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, x):
        self.seen += x.shape[0]
        return torch.tensor([0.0, 3.0]).repeat(x.shape[0], 1)


def test_a_run_stops_when_no_part_is_responsible():
    """Known answer: a model that keeps class 1 with every pixel masked makes every coalition
    pass, so no part is ever critical: responsibility 0 everywhere, and each run stops after
    its first level. The models' images are therefore the same for depth 1 and depth 4
    (15 mutants per run, plus the checks), where a run that went on would score 15 more per
    level."""
    x = torch.full((2, 1, 16, 16), -0.5)
    seen = []
    for depth in (1, 4):
        model = _Counting()
        maps = CausalResponsibility(model, runs=3, depth=depth, min_size=2).attribute(
            x, 1, generator=torch.Generator().manual_seed(0)
        )
        assert torch.equal(maps, torch.zeros_like(maps))
        seen.append(model.seen)
    assert seen[0] == seen[1]
    assert seen[0] >= 2 * 3 * 15  # the first level was scored: 15 mutants x 3 runs x 2 images


def test_depth_bounds_the_levels_a_run_refines():
    """The corner model on 16 x 16 with min_size 1: the part holding pixel (0, 0) is critical
    (responsibility 1) at every level, so the map at (0, 0) counts the levels each run
    refined; with depth 1 that is exactly 1 for every run, and deeper searches add to it."""
    x = torch.full((1, 1, 16, 16), 0.5)
    x[0, 0, 15, 15] = -0.5  # one dark pixel: [-1, 1] images, no [0, 1] notice
    maps = [
        CausalResponsibility(_CornerModel(), runs=4, depth=d, min_size=1).attribute(
            x, 1, generator=torch.Generator().manual_seed(1)
        )
        for d in (1, 3)
    ]
    assert float(maps[0][0, 0, 0, 0]) == 1.0 and float(maps[0].max()) == 1.0
    assert 1.0 < float(maps[1][0, 0, 0, 0]) <= 3.0
