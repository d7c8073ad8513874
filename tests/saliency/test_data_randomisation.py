import copy

import pytest
import torch
from scipy.stats import spearmanr

from cfx.saliency import Gradient, SmoothGrad
from cfx.saliency.data_randomisation import data_randomisation
from tests.saliency.toy import ImageItself, LinearModel, images, small_cnn


def test_gradient_maps_of_two_linear_models_correlate_as_their_weights():
    """The signed gradient of a linear model's class-1 logit is its weight map ``w``, for
    every image: the check's correlation is Spearman(w, w') of the two models' weights."""
    true, permuted = LinearModel(seed=0), LinearModel(seed=1)
    x = images(b=3, h=8, w=8)
    res = data_randomisation(lambda m: Gradient(m, absolute=False), true, permuted, x, 1)
    w, w2 = true.w.detach().flatten().numpy(), permuted.w.detach().flatten().numpy()
    want = spearmanr(w, w2).statistic
    want_abs = spearmanr(abs(w), abs(w2)).statistic
    assert res.spearman.shape == res.spearman_abs.shape == (3,)
    assert torch.allclose(res.spearman, torch.full((3,), float(want)), atol=1e-5)
    assert torch.allclose(res.spearman_abs, torch.full((3,), float(want_abs)), atol=1e-5)
    assert torch.allclose(res.permuted[0, 0], permuted.w.detach()[0])
    assert res.mean() == pytest.approx((float(want), float(want_abs)), abs=1e-5)
    assert res.target.tolist() == [1, 1, 1]


def test_the_input_control_fails_the_check_and_a_copy_with_replayed_noise_matches():
    model, other = small_cnn(seed=0), small_cnn(seed=1)
    x = images(b=4, h=16, w=16)
    ctrl = data_randomisation(ImageItself, model, other, x, None)
    assert torch.allclose(ctrl.spearman, torch.ones(4))
    # the same weights in a second module with SmoothGrad's noise replayed: identical maps
    twin = data_randomisation(
        lambda m: SmoothGrad(m, n_samples=3),
        model,
        copy.deepcopy(model),
        x,
        1,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(twin.original, twin.permuted)
    assert torch.allclose(twin.spearman, torch.ones(4))
    # other weights give other gradients
    grad = data_randomisation(lambda m: Gradient(m, absolute=False), model, other, x, 1)
    assert float(grad.spearman.abs().max()) < 0.9


def test_the_classes_explained_are_the_true_models_predictions_for_both():
    true, permuted = LinearModel(seed=0), LinearModel(seed=1)
    x = images(b=6, h=8, w=8)
    with torch.no_grad():
        want = true(x).argmax(1)
    res = data_randomisation(lambda m: Gradient(m, absolute=False), true, permuted, x, None)
    assert torch.equal(res.target, want)
    # class 0's logit is constant: its gradient map is zero, whose Spearman is 0 by definition
    zero = want == 0
    assert bool(zero.any()) and bool((res.spearman[zero] == 0).all())


def test_both_models_are_left_as_they_were():
    model, other = small_cnn(seed=0), small_cnn(seed=1)
    model.train()
    other.requires_grad_(False)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (model, other)]
    data_randomisation(Gradient, model, other, images(b=2, h=16, w=16), 1)
    assert model.training and not other.training
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in other.parameters())
    for m, state in zip((model, other), before, strict=True):
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


def test_bad_arguments_are_named():
    model, x = LinearModel(), images(b=2, h=8, w=8)
    with pytest.raises(ValueError, match="`permuted_model` must be a second model"):
        data_randomisation(Gradient, model, model, x, 1)
    with pytest.raises(ValueError, match=r"its logits have shape \(2, 3\), `model`'s \(2, 2\)"):
        data_randomisation(Gradient, model, LinearModel(classes=3), x, 1)
    with pytest.raises(TypeError, match="`make_method` must be a factory"):
        data_randomisation(Gradient(model), model, LinearModel(seed=1), x, 1)
    with pytest.raises(TypeError, match=r"`permuted_model` must be an nn\.Module, got dict"):
        data_randomisation(Gradient, model, {}, x, 1)
    # another architecture scored 0.05, as if it were the same one trained on other labels
    with pytest.raises(ValueError, match="must be `model`'s architecture trained on permuted"):
        data_randomisation(Gradient, model, LinearModel(shape=(1, 4, 16)), x, 1)


def test_a_factory_that_ignores_its_argument_is_named():
    true, permuted = LinearModel(seed=0), LinearModel(seed=1)
    x = images(b=2, h=8, w=8)
    with pytest.raises(ValueError, match="got a method on `model` when given `permuted_model`"):
        data_randomisation(lambda m: Gradient(true), true, permuted, x, 1)
    with pytest.raises(ValueError, match="got a method on `permuted_model` when given `model`"):
        data_randomisation(lambda m: Gradient(permuted), true, permuted, x, 1)


def test_a_generator_in_attribute_kwargs_is_replayed_and_fewer_classes_are_named():
    """A generator passed through attribute_kwargs ran on between the two models (different
    noise for each); a permuted model of fewer classes failed on `target`, not on its shape."""
    model = small_cnn(seed=0)
    x = images(b=2, h=16, w=16)
    twin = data_randomisation(
        lambda m: SmoothGrad(m, n_samples=3),
        model,
        copy.deepcopy(model),
        x,
        1,
        attribute_kwargs={"generator": torch.Generator().manual_seed(3)},
    )
    assert torch.equal(twin.original, twin.permuted)

    three = LinearModel(classes=3)  # the same parameters, a third logit
    with pytest.raises(ValueError, match=r"its logits have shape \(2, 2\), `model`'s \(2, 3\)"):
        data_randomisation(Gradient, three, LinearModel(seed=1), images(b=2, h=8, w=8), 2)


def test_a_blank_map_is_left_out_of_the_verdict():
    """The permuted model's map is blank for the first two images (it ranks nothing; Spearman
    0 by convention) and the image itself for the third: the mean over all, 1/3, read
    "model-dependent"; the verdict now reads the third image alone, input-driven."""
    model, other = small_cnn(seed=0), small_cnn(seed=1)

    class BlankFirst:
        def __init__(self, m):
            self.model = m

        def attribute(self, x, target):
            maps = x.mean(1, keepdim=True).clone()
            if self.model is other:
                maps[:2] = 0.0
            return maps

    res = data_randomisation(BlankFirst, model, other, images(b=3, h=8, w=8), 1)
    assert res.blank.tolist() == [True, True, False]
    assert res.mean()[0] == pytest.approx(1 / 3)
    assert res.verdict() == (
        "input-driven over 1 image without a blank (constant) map (Spearman 1.00, of "
        "|map| 1.00); 2 left out"
    )


def test_the_result_keeps_its_own_copy_of_the_targets():
    """The frozen result held the caller's label tensor and changed when they edited it."""
    y = torch.tensor([1, 0, 1])
    x = images(b=3)
    r = data_randomisation(Gradient, LinearModel(), LinearModel(seed=1), x, y)
    y[0] = 0
    assert r.target.tolist() == [1, 0, 1]
