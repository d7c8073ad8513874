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


def _plain_occlusion(model, x, k):
    """Occlusion written out: every k x k window of a tiling (stride = window), black, one
    forward pass each, no window skipped; each pixel gets its one window's drop of logit 1."""
    maps = torch.zeros(x.shape[0], 1, *x.shape[2:])
    with torch.no_grad():
        full = model(x)[:, 1]
        for r in range(0, x.shape[2], k):
            for c in range(0, x.shape[3], k):
                occluded = x.clone()
                occluded[:, :, r : r + k, c : c + k] = -1.0
                maps[:, 0, r : r + k, c : c + k] = (full - model(occluded)[:, 1])[:, None, None]
    return maps


def test_background_windows_are_skipped_without_changing_the_map():
    """Pins that windows covering only background are not scored, and that skipping them
    leaves the map as plain occlusion gives it (an audit found neither pinned: the old test
    compared a map with itself, and scoring every window failed no test). Rows 0-2 equal the
    black baseline; of the 16 2x2 windows per image, the 4 on rows 0-1 are all background and
    skipped, the 4 on rows 2-3 half background and scored: 12 occluded images per image. The
    count is taken in a list (cfx may deep-copy a module, losing a counter kept on it) through
    a plain function, and compared with an all-background batch, where every window is
    skipped and only the unoccluded images (and the model probe) are scored."""
    model = LinearModel()
    scored = []

    def counting(images):
        scored.append(images.shape[0])
        return model(images)

    x = images(b=2)
    x[:, :, :3] = -1.0
    maps = Occlusion(counting, window=2, stride=2).attribute(x, 1)
    with_windows = sum(scored)
    scored.clear()
    blank = Occlusion(counting, window=2, stride=2).attribute(torch.full_like(x, -1.0), 1)
    assert torch.equal(blank, torch.zeros(2, 1, 8, 8))
    assert with_windows - sum(scored) == 2 * 12
    assert torch.allclose(maps, _plain_occlusion(model, x, 2), atol=1e-5)
    assert torch.equal(maps[:, :, :2], torch.zeros(2, 1, 2, 8))
    assert bool((maps[:, :, 2:] != 0).all())  # half-background windows still count


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
