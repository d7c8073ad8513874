import pytest
import torch
from torch import nn

from cfx.saliency import GradCAM, Gradient, GradientXInput
from cfx.saliency._common import fast_model, masked_scores, target_slice
from tests.saliency.toy import LinearModel, images, small_cnn


def test_fast_model_is_a_channels_last_copy_with_the_same_outputs():
    model = small_cnn()
    x = images(b=3, h=16, w=16)
    fast = fast_model(model, x[:1])
    assert fast is not model
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    # the user's model keeps its layout
    assert all(p.is_contiguous() for p in model.parameters())


def test_fast_model_falls_back_to_the_model():
    def plain(x):
        return x.flatten(1)[:, :2]

    assert fast_model(plain, images()) is plain

    class ViewNet(nn.Module):  # .view on a channels-last tensor raises: keep the original
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x).view(x.shape[0], -1)[:, :2]

    net = ViewNet()
    assert fast_model(net, images(h=8, w=8)) is net


def test_masked_scores_known_answer_and_pairs():
    model = LinearModel()
    x = images(b=2)
    base = torch.full_like(x, -1.0)
    masks = torch.stack([torch.ones(1, 8, 8), torch.zeros(1, 8, 8)])  # keep all, keep none
    target = torch.tensor([1, 1])
    scores = masked_scores(model, x, base, masks, 2, target, "logit", batch_size=3)
    with torch.no_grad():
        assert torch.allclose(scores[:, 0], model.score(x))
        assert torch.allclose(scores[:, 1], model.score(base))
    some = masked_scores(
        model, x, base, masks, 2, target, "logit", 3, pairs=(torch.tensor([1]), torch.tensor([0]))
    )
    assert torch.allclose(some, scores[1:, 0])


def test_a_0d_integer_target_means_the_int_it_holds():
    # y[i] is a 0-d tensor: the gradient methods read it as the int, like resolve_target does
    model = LinearModel(classes=3)
    x = images(b=4)
    w = model.w.detach()  # d logit_1 / dx = w, d logit_2 / dx = -w
    for k, sign in ((1, 1.0), (2, -1.0)):
        signed = Gradient(model, absolute=False).attribute(x, torch.tensor(k))
        assert torch.allclose(signed, sign * w.expand(4, 1, 8, 8))
        gxi = GradientXInput(model).attribute(x, torch.tensor(k))
        assert torch.allclose(gxi, sign * w * (x + 1))  # baseline -1
    cnn, xc = small_cnn(), images(b=4, h=16, w=16)
    cam = GradCAM(cnn, batch_size=2).attribute(xc, torch.tensor(1))
    assert torch.equal(cam, GradCAM(cnn, batch_size=2).attribute(xc, 1))
    assert target_slice(torch.tensor(3), 0, 2, 4) == 3
    # per-image targets as a list: each chunk gets its rows (GradCAM runs in chunks of 2)
    per_image = [1, 0, 0, 1]
    assert target_slice(per_image, 2, 4, 4).tolist() == [0, 1]
    cams = GradCAM(cnn, batch_size=2).attribute(xc, per_image)
    assert torch.equal(cams, GradCAM(cnn, batch_size=2).attribute(xc, torch.tensor(per_image)))
    for bad in (torch.tensor(1.0), torch.tensor([1, 0])):  # float 0-d, wrong length
        with pytest.raises(ValueError, match=r"`target` must be an int or an integer tensor"):
            target_slice(bad, 0, 2, 4)


@pytest.mark.parametrize(
    ("output", "said"),
    [
        (lambda z: z.flatten(1)[:, :1], r"on one image of `x`, `model` returned shape \(1, 1\)"),
        (lambda z: (z.flatten(1)[:, :2],), r"on one image of `x` it returned tuple"),
    ],
)
def test_the_model_probe_says_it_ran_one_image_of_x(output, said):
    # 4 images: the error is about the probe of one of them, not a batch of 1
    with pytest.raises(ValueError, match=said) as err:
        Gradient(output).attribute(images(b=4), 1)
    assert "for 1 image" not in str(err.value) and "returns one logit" not in str(err.value)


def test_inference_mode_is_named_and_its_tensors_are_taken():
    """Under torch.inference_mode() the error blamed the model ('logits do not depend on its
    input through autograd'); images made there failed outside it with PyTorch's 'Setting
    requires_grad=True on inference tensor outside InferenceMode'."""
    from cfx.saliency import Gradient, IntegratedGradients

    model = small_cnn()
    x = images(b=2, h=16, w=16)
    with torch.inference_mode():
        made_there = x.clone()
        for method in (Gradient(model), GradCAM(model)):
            with pytest.raises(RuntimeError, match=r"called under `torch\.inference_mode\(\)`"):
                method.attribute(made_there, 1)
    for method in (Gradient(model), IntegratedGradients(model, n_steps=4)):
        assert torch.equal(method.attribute(made_there, 1), method.attribute(x, 1))


@pytest.mark.parametrize("baseline", [5.0, -1.5, float("nan"), torch.full((1, 1, 1, 1), 2.0)])
def test_a_baseline_outside_the_image_range_is_named(baseline):
    """A baseline of 5.0 was used as given: an image the model never saw, silently."""
    from cfx.saliency import IntegratedGradients, Occlusion

    x = images(b=2, h=16, w=16)
    for method in (
        IntegratedGradients(small_cnn(), baseline=baseline),
        Occlusion(small_cnn(), baseline=baseline),
    ):
        with pytest.raises(
            ValueError, match=r"`baseline` must be in the cfx image range \[-1, 1\]"
        ):
            method.attribute(x, 1)


def test_a_torchscript_model_is_named_where_cfx_must_copy_or_hook_it():
    """A scripted classifier (how many ship them) failed in the attacks and the cascading check
    with PyTorch's 'only change requires_grad flags of leaf variables', and in Grad-CAM with
    'get_submodule is not supported on ScriptModules'; the gradient methods take it."""
    import warnings

    from cfx.saliency.attacks import GhorbaniAttack
    from cfx.saliency.randomisation import cascading_randomisation

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        scripted = torch.jit.script(net)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    assert torch.allclose(Gradient(scripted).attribute(x, 1), Gradient(net).attribute(x, 1))
    with pytest.raises(TypeError, match=r"ReLUs made smooth.*TorchScript module does not allow"):
        GhorbaniAttack(Gradient(scripted), steps=1).perturb(x)
    with pytest.raises(TypeError, match=r"randomises a copy.*pass the nn.Module it was scripted"):
        cascading_randomisation(Gradient, scripted, x, 1)
    with pytest.raises(TypeError, match="Grad-CAM hooks a layer of the model, which a TorchScr"):
        GradCAM(scripted).attribute(x, 1)
    from cfx.calls import TwoLogits

    net[-1] = torch.nn.Linear(4, 1)  # one logit, as the README says to wrap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        one = torch.jit.script(net)
    with pytest.raises(TypeError, match="TorchScript module does not allow"):  # wrapped
        GhorbaniAttack(Gradient(TwoLogits(one)), steps=1).perturb(x)


def test_numpy_numbers_and_lists_are_taken_where_python_ones_are():
    """np.float32(-1) as a baseline, np.int64(4) or [4, 4] as a window, np.int64 as a
    tolerance or k were refused ("must be a float or a tensor, got float32")."""
    import numpy as np

    from cfx.saliency import IntegratedGradients, Occlusion
    from cfx.saliency import metrics as M

    model, x = LinearModel(), images(b=2)
    want = IntegratedGradients(model, baseline=-1.0).attribute(x, 1)
    got = IntegratedGradients(model, baseline=np.float32(-1)).attribute(x, 1)
    assert torch.equal(got, want)
    want = Occlusion(model, window=4, stride=4).attribute(x, 1)
    for window in (np.int64(4), [4, 4], (np.int64(4), np.int64(4))):
        assert torch.equal(Occlusion(model, window=window, stride=window).attribute(x, 1), want)
    with pytest.raises(TypeError, match=r"`window` must be a positive int or a pair of them"):
        Occlusion(model, window=4.0).attribute(x, 1)
    with pytest.raises(TypeError, match=r"`window` must be a positive int or a pair of them"):
        Occlusion(model, window=[4, 4, 4]).attribute(x, 1)
    maps, masks = torch.rand(2, 1, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    masks[:, :, :2, :2] = True
    assert torch.equal(
        M.pointing_game(maps, masks, tolerance=np.int64(1)),
        M.pointing_game(maps, masks, tolerance=1),
    )
    assert torch.equal(
        M.top_k_intersection(maps, maps.flip(-1), np.int64(5)),
        M.top_k_intersection(maps, maps.flip(-1), 5),
    )
