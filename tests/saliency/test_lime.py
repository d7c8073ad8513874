import pytest
import torch

from cfx.saliency import LIME
from tests.saliency.toy import LinearModel, images


def _segments(b=3):
    seg = torch.zeros(b, 8, 8, dtype=torch.int64)
    seg[:, :4, 4:] = 1
    seg[:, 4:, :4] = 2
    seg[:, 4:, 4:] = 3
    return seg


def _segment_sums(model, x, seg):
    contrib = ((x + 1) * model.w.detach())[:, 0]  # (B, 8, 8)
    return torch.stack(
        [torch.stack([contrib[i][seg[i] == s].sum() for s in range(4)]) for i in range(len(x))]
    )


def test_linear_logit_model_is_recovered_exactly_without_a_penalty():
    model = LinearModel()
    x = images()
    seg = _segments()
    lime = LIME(model, n_samples=64, alpha=0.0, output="logit")
    maps = lime.attribute(x, 1, segments=seg, generator=torch.Generator().manual_seed(0))
    sums = _segment_sums(model, x, seg)
    for s in range(4):
        assert torch.allclose(maps[:, 0][seg == s].view(3, -1)[:, 0], sums[:, s], atol=1e-3)


def test_same_seed_same_map():
    model = LinearModel()
    x = images()
    lime = LIME(model, n_samples=40, n_segments=4)
    a = lime.attribute(x, 1, generator=torch.Generator().manual_seed(1))
    b = lime.attribute(x, 1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (3, 1, 8, 8)


def test_bad_segments():
    lime = LIME(LinearModel(), n_samples=8)
    with pytest.raises(ValueError, match="`segments` must have shape"):
        lime.attribute(images(), 1, segments=torch.zeros(3, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="`segments`"):
        lime.attribute(images(), 1, segments=torch.zeros(3, 8, 8))
