import pytest
import torch
from torch import nn

from cfx.errors import Notice
from cfx.saliency.faithfulness import _auc, deletion_auc, gaussian_blur, insertion_auc
from tests.saliency.toy import PatchModel, patch_images, small_cnn


def test_trapezoid_area():
    assert _auc(torch.tensor([[1.0, 1.0, 1.0]])).item() == 1.0
    assert _auc(torch.tensor([[1.0, 0.0, 0.0, 0.0]])).item() == pytest.approx(1 / 6)


def test_a_map_on_the_evidence_beats_a_map_elsewhere():
    model = PatchModel()
    x = patch_images()
    good = torch.zeros(2, 1, 16, 16)
    good[..., :4, :4] = 1.0
    bad = 1.0 - good
    del_good = deletion_auc(model, x, good, 1, steps=16)
    del_bad = deletion_auc(model, x, bad, 1, steps=16)
    ins_good = insertion_auc(model, x, good, 1, steps=16, blur_sigma=2.0)
    ins_bad = insertion_auc(model, x, bad, 1, steps=16, blur_sigma=2.0)
    assert bool((del_good < del_bad - 0.3).all())
    assert bool((ins_good > ins_bad + 0.3).all())
    assert bool(((del_good >= 0) & (ins_good <= 1)).all())


def test_insertion_can_start_from_the_baseline():
    model = PatchModel()
    x = patch_images()
    good = torch.zeros(2, 1, 16, 16)
    good[..., :4, :4] = 1.0
    from_black = insertion_auc(model, x, good, 1, steps=16, blur_sigma=None, baseline=-1.0)
    from_blur = insertion_auc(model, x, good, 1, steps=16, blur_sigma=2.0)
    assert bool((from_black > 0.5).all()) and not torch.allclose(from_black, from_blur)


def test_blur_keeps_constant_images_and_shape():
    x = torch.full((2, 3, 7, 9), 0.25)
    assert torch.allclose(gaussian_blur(x, 5.0), x)


def test_maps_must_match_the_images():
    with pytest.raises(ValueError, match="`maps` must have shape"):
        deletion_auc(PatchModel(), patch_images(), torch.zeros(2, 1, 8, 8), 1)


def _white_share(x):
    """p(class 1) = the share of white pixels, exactly: the logits are log-probabilities."""
    q = ((x + 1) / 2).flatten(1).mean(1).clamp(1e-7, 1 - 1e-7)
    return torch.stack([torch.log1p(-q), torch.log(q)], 1)


@pytest.mark.filterwarnings("ignore:no pixel of `x` is below 0")  # a white image, on purpose
@pytest.mark.parametrize(("steps", "expected"), [(4, 0.5), (3, 0.5), (8, 0.5)])
def test_deletion_auc_known_answer(steps, expected):
    # a white 2x2 image, its pixels deleted (to black) in the map's order, 4 of them:
    # steps=4: 1 pixel per stage, curve 1, .75, .5, .25, 0 -> trapezoid area 0.5
    # steps=3: 4/3 pixels per stage (the second pixel a third of the way to black at stage
    # 1), curve 1, 2/3, 1/3, 0 -> 0.5 again: the x-axis is the share of pixels changed, on
    # any image size (ceil(4 / 3) = 2 pixels a stage gave 1/3)
    x = torch.ones(1, 1, 2, 2)
    maps = torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]])
    auc = deletion_auc(_white_share, x, maps, 1, steps=steps)
    assert auc.item() == pytest.approx(expected, abs=1e-5)


def _corner_white(corner):
    """p(class 1) = how white one pixel is (its value mapped to [0, 1])."""

    def model(x):
        q = ((x[:, 0, corner[0], corner[1]] + 1) / 2).clamp(1e-7, 1 - 1e-7)
        return torch.stack([torch.log1p(-q), torch.log(q)], 1)

    return model


@pytest.mark.filterwarnings("ignore:no pixel of `x` is below 0")
@pytest.mark.parametrize("corner", [(0, 0), (1, 1)])
def test_tied_pixels_are_changed_together_wherever_the_evidence_lies(corner):
    """A blank map ranks no pixel above another: each stage blends every pixel by the share
    of pixels it reaches, so the curve of a one-pixel model is 1, .75, .5, .25, 0 (AUC 0.5)
    whether that pixel is the first in raster order or the last (pixel order gave 0.125 for
    the top-left pixel and 0.875 for the bottom-right one)."""
    x, blank = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    model = _corner_white(corner)
    assert deletion_auc(model, x, blank, 1, steps=4).item() == pytest.approx(0.5, abs=1e-5)
    # a tie of two pixels above the other two: stage 1 takes half of each top pixel, stage 3
    # half of each bottom one; curves 1, .5, 0, 0, 0 (top-left) and 1, 1, 1, .5, 0
    top = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    want = 0.25 if corner == (0, 0) else 0.75
    assert deletion_auc(model, x, top, 1, steps=4).item() == pytest.approx(want, abs=1e-5)


def test_the_model_is_probed_like_attribute_probes_it():
    # a final softmax (outputs taken for logits) and a float64 image for a float32 model are
    # named up front, as attribute() names them
    model = nn.Sequential(PatchModel(), nn.Softmax(1))
    x, maps = patch_images(), torch.rand(2, 1, 16, 16)
    for score in (deletion_auc, insertion_auc):
        with pytest.warns(Notice, match="the model's outputs look like probabilities") as got:
            score(model, x, maps, 1, steps=4)
        assert got[0].filename == __file__  # points at the caller's line
        with pytest.raises(TypeError, match=r"`x` is torch\.float64 .* weights are torch\.float32"):
            score(small_cnn(), x.double(), maps, 1, steps=4)


@pytest.mark.filterwarnings("ignore:no pixel of `x` is below 0")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_maps_of_large_images_keep_exact_pixel_counts(dtype):
    """The tie counts were kept in the maps' dtype: float16 overflowed at 65,536 pixels
    (inf - inf: NaN masks, an error about the images) and bfloat16 rounded the counts."""
    x = torch.ones(1, 1, 256, 256)
    maps = torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(0)).to(dtype)
    auc = deletion_auc(_white_share, x, maps, 1, steps=32)
    assert auc.item() == pytest.approx(0.5, abs=1e-4)  # the share deleted is exactly t / T


def test_insertion_says_a_baseline_it_would_not_use():
    """`baseline=1.0` (even "black") went unused without a word when insertion started from
    the blurred copy."""
    x, model = patch_images(), PatchModel()
    maps = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(
        ValueError,
        match=r"`baseline` is where insertion starts only with "
        r"blur_sigma=None; with blur_sigma 5\.0",
    ):
        insertion_auc(model, x, maps, 1, steps=4, baseline=1.0)
    with pytest.raises(TypeError, match="`baseline` must be a float or a tensor"):
        insertion_auc(model, x, maps, 1, steps=4, baseline="black")
    from_white = insertion_auc(model, x, maps, 1, steps=4, baseline=1.0, blur_sigma=None)
    from_black = insertion_auc(model, x, maps, 1, steps=4, blur_sigma=None)
    assert not torch.equal(from_white, from_black)  # used when asked for
