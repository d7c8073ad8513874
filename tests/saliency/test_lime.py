import pytest
import torch

from cfx.saliency import LIME
from cfx.saliency.lime import weighted_ridge
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


def test_weighted_ridge_known_values_with_and_without_a_penalty():
    # One feature z = (0, 1, 1), y = (0, 1, 3), weights (1, 1, 2). Weighted means:
    # z (0 + 1 + 2) / 4 = 0.75, y (0 + 1 + 6) / 4 = 1.75; centred zc = (-0.75, 0.25, 0.25),
    # yc = (-1.75, -0.75, 1.25); sum w zc^2 = 0.5625 + 0.0625 + 0.125 = 0.75,
    # sum w zc yc = 1.3125 - 0.1875 + 0.625 = 1.75.
    # alpha 0: beta = 1.75 / 0.75 = 7/3 (the weighted mean of y at z = 1 minus y at z = 0);
    # alpha 1: beta = 1.75 / (0.75 + 1) = 1.
    z = torch.tensor([[[0.0], [1.0], [1.0]]], dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 3.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 1.0, 2.0]], dtype=torch.float64)
    for alpha, beta in ((0.0, 7 / 3), (1.0, 1.0)):
        expected = torch.tensor([[beta]], dtype=torch.float64)
        torch.testing.assert_close(weighted_ridge(z, y, w, alpha), expected, atol=1e-5, rtol=0)


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


def test_kernel_weights_come_from_the_cosine_distance_to_the_full_image():
    """Known answer: LIME's estimator written out for a model that is not additive.

    Three one-pixel segments; the model's logit is (number of pixels not switched off)^2, so a
    linear surrogate cannot fit it and the coefficients depend on the sample weights. The
    coalitions are read off the images the model is shown; the expected coefficients are the
    weighted least-squares fit (with intercept, alpha 0) under LIME's kernel: weight
    sqrt(exp(-d^2 / 0.25^2)) of the cosine distance d = 1 - z.1 / (|z| |1|) (1 for the empty
    coalition), e.g. d = 1 - sqrt(2/3) = 0.18 for two of three segments on.
    """
    seen = []

    def model(images):
        on = (images.flatten(1) != -1).to(images.dtype)  # (n, 3): switched on
        seen.append(on)
        s = on.sum(1) ** 2
        return torch.stack([torch.zeros_like(s), s], 1)

    x = torch.tensor([-0.5, 0.2, 0.6]).view(1, 1, 1, 3)
    segments = torch.tensor([[[0, 1, 2]]])
    lime = LIME(model, n_samples=64, alpha=0.0, output="logit")
    maps = lime.attribute(x, 1, segments=segments, generator=torch.Generator().manual_seed(0))
    z = torch.cat(seen)[-64:].double()  # the coalitions, in the order they were scored
    assert z[0].tolist() == [1.0, 1.0, 1.0] and len(set(map(tuple, z.tolist()))) == 8
    cos = torch.nn.functional.cosine_similarity(z, torch.ones(1, 3, dtype=z.dtype), dim=1)
    weight = torch.exp(-((1 - cos) ** 2) / 0.25**2).sqrt()
    design = torch.cat([torch.ones(64, 1, dtype=z.dtype), z], 1)
    y = z.sum(1) ** 2
    root = weight.sqrt()[:, None]
    coef = torch.linalg.lstsq(design * root, y[:, None] * root).solution[1:, 0]
    assert maps.flatten().tolist() == pytest.approx(coef.tolist(), abs=1e-3)
