import warnings

import pytest
import torch

from cfx.errors import Notice
from cfx.saliency import IntegratedGradients
from cfx.saliency.integrated_gradients import completeness_gap, quadrature
from tests.saliency.toy import LinearModel, images, small_cnn


@pytest.mark.parametrize(
    "method",
    ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"],
)
def test_linear_model_is_exact_for_every_rule(method):
    model = LinearModel(shape=(2, 8, 8))
    x = images(c=2)
    maps = IntegratedGradients(model, n_steps=7, method=method).attribute(x, 1)
    expected = ((x + 1) * model.w.detach()).sum(1, keepdim=True)
    assert torch.allclose(maps, expected, atol=1e-5)


@pytest.mark.parametrize(
    "method",
    ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"],
)
def test_quadrature_weights_sum_to_one_and_nodes_lie_in_the_unit_interval(method):
    alphas, weights = quadrature(method, 9)
    assert torch.isclose(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert bool(((alphas >= 0) & (alphas <= 1)).all())


def test_trapezoid_integrates_a_quadratic_path_with_its_known_error():
    # integral of a^2 on [0, 1] = 1/3; trapezoid with n points errs by +1/(6 (n-1)^2)
    alphas, weights = quadrature("riemann_trapezoid", 5)
    assert torch.isclose(
        (weights * alphas**2).sum(), torch.tensor(1 / 3 + 1 / 96, dtype=torch.float64)
    )


def test_completeness_on_a_cnn():
    model = small_cnn()
    x = images(b=3, h=16, w=16)
    base = -1.0
    maps = IntegratedGradients(model, n_steps=128).attribute(x, 1)
    with torch.no_grad():
        gap = model(x)[:, 1] - model(torch.full_like(x, base))[:, 1]
    assert torch.allclose(maps.flatten(1).sum(1), gap, rtol=0.02, atol=2e-3)


def test_create_graph_reaches_the_input():
    model = small_cnn()
    x = images(b=2, h=16, w=16).requires_grad_(True)
    maps = IntegratedGradients(model, n_steps=4).attribute(x, 1, create_graph=True)
    (g,) = torch.autograd.grad(maps.abs().sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_bad_method_and_steps():
    model = LinearModel()
    with pytest.raises(ValueError, match="`method`"):
        IntegratedGradients(model, method="simpson").attribute(images(), 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`n_steps`"):
        IntegratedGradients(model, n_steps=0).attribute(images(), 1)
    with pytest.raises(ValueError, match="at least 2"):
        IntegratedGradients(model, n_steps=1, method="riemann_trapezoid").attribute(images(), 1)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("riemann_right", 0.375), ("riemann_left", -1.875), ("riemann_middle", -0.75)],
)
def test_quadrature_nodes_on_a_quadratic(method, expected):
    # f = sum of x^2, so each pixel's attribution is its own. Pixel 0 goes from the baseline
    # -1 to 0.5: IG = mean_i f'(-1 + 1.5 a_i) * 1.5 = mean_i 2 (-1 + 1.5 a_i) * 1.5 over the
    # nodes a_i. n = 2: right (0.5, 1) -> 0.375; left (0, 0.5) -> -1.875; middle
    # (0.25, 0.75) -> -0.75. Pixel 1 sits at the baseline (and keeps x in the image range).
    def f(x):
        s = (x**2).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(s), s], 1)

    x = torch.tensor([[[[0.5, -1.0]]]])
    # f(x) - f(x') = 1.25 - 2 = -0.75: the midpoint rule is exact (the gradient is linear in
    # a), the others miss by 1.125, 150 %, which is noticed (the maps gave no sign of it)
    if method == "riemann_middle":
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = IntegratedGradients(f, n_steps=2, method=method).attribute(x, 1)
    else:
        with pytest.warns(Notice, match=r"maps of 1 of 1 images .*\(largest gap 150%\)"):
            m = IntegratedGradients(f, n_steps=2, method=method).attribute(x, 1)
    assert m[0, 0, 0, 0].item() == pytest.approx(expected, abs=1e-6)
    gap = completeness_gap(f, x, m, torch.tensor([1]), torch.tensor(-1.0))
    assert gap.item() == pytest.approx(abs(expected + 0.75) / 0.75)
    # the target and baseline as IntegratedGradients takes them: an int, a float (default -1)
    assert torch.equal(completeness_gap(f, x, m, 1), gap)
    assert torch.equal(completeness_gap(f, x, m, None, -1.0, batch_size=1), gap)


def test_completeness_gap_refuses_maps_that_are_not_one_per_image():
    """A map of one image broadcast over two gave a gap of 0.14 for the second, and a map
    of another size a gap of 2: numbers that decide n_steps, from a mistake."""
    model, x = LinearModel(), images(b=2)
    maps = IntegratedGradients(model, n_steps=8).attribute(x, 1)
    assert completeness_gap(model, x, maps, 1).shape == (2,)
    with pytest.raises(
        ValueError,
        match=r"`maps` must have shape \(2, 1, 8, 8\) \(one map per "
        r"image of `x`\), got \(1, 1, 8, 8\)",
    ):
        completeness_gap(model, x, maps[:1], 1)
    with pytest.raises(ValueError, match=r"got \(2, 1, 4, 4\)"):
        completeness_gap(model, x, maps[..., :4, :4], 1)
    with pytest.raises(TypeError, match="`x` must be"):
        completeness_gap(model, x.numpy(), maps, 1)
