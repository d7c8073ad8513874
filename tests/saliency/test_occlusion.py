import pytest
import torch

from cfx.saliency import Occlusion
from cfx.saliency.occlusion import window_masks
from tests.saliency.toy import LinearModel, images


def test_single_pixel_windows_give_the_exact_linear_contributions():
    model = LinearModel()
    x = images()
    maps = Occlusion(model, window=1, stride=1).attribute(x, 1)
    assert torch.allclose(maps, (x + 1) * model.w.detach(), atol=1e-5)


def test_each_pixel_gets_the_mean_drop_of_the_windows_covering_it():
    model = LinearModel()
    x = images(b=1)
    maps = Occlusion(model, window=3, stride=2).attribute(x, 1)
    contrib = ((x + 1) * model.w.detach())[0, 0]  # (8, 8)
    windows = window_masks((8, 8), (3, 3), (2, 2))
    drops = torch.stack([contrib[w].sum() for w in windows])
    expected = (drops[:, None, None] * windows).sum(0) / windows.sum(0)
    assert torch.allclose(maps[0, 0], expected, atol=1e-5)


def test_window_positions_follow_captum():
    w = window_masks((10, 7), (4, 3), (3, 3))
    # rows: ceil((10-4)/3)+1 = 3 positions at 0, 3, 6; cols: ceil(4/3)+1 = 3 at 0, 3, 6 (clipped)
    assert w.shape == (9, 10, 7)
    assert w[-1].sum() == 4 * 1  # last window: rows 6..9, column 6 only
    assert bool(w.any(0).all())  # every pixel covered


def test_background_windows_are_skipped_without_changing_the_map():
    model = LinearModel()
    x = images(b=2)
    x[:, :, :4] = -1.0  # top half already equals the black baseline
    maps = Occlusion(model, window=2, stride=2).attribute(x, 1)
    assert torch.allclose(maps, Occlusion(model, window=2, stride=2, baseline=-1.0).attribute(x, 1))
    assert torch.equal(maps[:, :, :4], torch.zeros(2, 1, 4, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 9}, "must fit"),
        ({"window": 2, "stride": 3}, "must not exceed"),
        ({"window": 0}, "`window`"),
    ],
)
def test_bad_windows(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Occlusion(LinearModel(), **kwargs).attribute(images(), 1)
