"""Contract over every public saliency method: shape, dtype and device follow the input; the
same generator gives the same map; the user's model is left exactly as it was; bad arguments
raise clear errors."""

import warnings

import pytest
import torch

import cfx.calls as cfx_calls
import cfx.errors as cfx_errors
import cfx.saliency as S
from tests.saliency.toy import images, small_cnn

METHODS = {
    "Gradient": lambda m: S.Gradient(m),
    "GradientXInput": lambda m: S.GradientXInput(m),
    "SmoothGrad": lambda m: S.SmoothGrad(m, n_samples=3),
    "IntegratedGradients": lambda m: S.IntegratedGradients(m, n_steps=4),
    "GradCAM": lambda m: S.GradCAM(m),
    "Occlusion": lambda m: S.Occlusion(m, window=4, stride=4),
    "RISE": lambda m: S.RISE(m, n_masks=16, grid=4),
    "LIME": lambda m: S.LIME(m, n_samples=16, n_segments=8),
    "KernelSHAP": lambda m: S.KernelSHAP(m, n_samples=16, n_segments=8),
    "CausalResponsibility": lambda m: S.CausalResponsibility(m, runs=2, depth=2),
}
STOCHASTIC = {"SmoothGrad", "RISE", "LIME", "KernelSHAP", "CausalResponsibility"}


def _run(name, method, x, target, seed=0):
    kwargs = {"generator": torch.Generator().manual_seed(seed)} if name in STOCHASTIC else {}
    return method.attribute(x, target, **kwargs)


def test_every_public_method_is_covered():
    public = {n for n in S.__all__ if hasattr(getattr(S, n), "attribute")} - {"SaliencyMethod"}
    assert public == set(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_and_determinism(name, dtype):
    model = small_cnn().to(dtype)
    x = images(b=2, h=16, w=16).to(dtype)
    method = METHODS[name](model)
    a = _run(name, method, x, 1)
    assert a.shape == (2, 1, 16, 16)
    assert a.dtype == dtype and a.device == x.device
    assert torch.isfinite(a).all()
    assert not a.requires_grad  # a plain map: .numpy() and plt.imshow work on it
    assert torch.equal(a, _run(name, method, x, 1))
    # images that require grad (e.g. an attack's iterate) give a plain map too: Gradient x
    # Input and Integrated Gradients carried x's graph into theirs
    assert not _run(name, method, x.clone().requires_grad_(True), 1).requires_grad


@pytest.mark.parametrize("name", sorted(METHODS))
def test_user_model_left_unchanged(name):
    model = small_cnn()
    model.train()
    model.features[0][0].weight.requires_grad_(False)  # a mixed pattern must survive too
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _run(name, METHODS[name](model), images(b=2, h=16, w=16), torch.tensor([1, 0]))
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize(
    ("x", "target", "exc", "match"),
    [
        ("not a tensor", 1, TypeError, "`x` must be a torch.Tensor"),
        (torch.zeros(1, 16, 16), 1, ValueError, r"\(B, C, H, W\)"),
        (torch.full((1, 1, 16, 16), 3.0), 1, ValueError, r"\[-1, 1\]"),
        (torch.full((2, 1, 16, 16), -0.5), 5, ValueError, r"class index in \[0, 1\]"),
        (torch.full((2, 1, 16, 16), -0.5), torch.tensor([1, 0, 1]), ValueError, r"shape \(2,\)"),
        (torch.full((2, 1, 16, 16), -0.5), torch.tensor([0.0, 1.0]), ValueError, "integer tensor"),
        (torch.full((2, 1, 16, 16), -0.5), "1", TypeError, "`target`"),
    ],
)
def test_bad_inputs_raise_clear_errors(name, x, target, exc, match):
    method = METHODS[name](small_cnn())
    with pytest.raises(exc, match=match):
        _run(name, method, x, target)


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_generator_must_be_a_torch_generator(name):
    method = METHODS[name](small_cnn())
    with pytest.raises(TypeError, match="`generator`"):
        method.attribute(images(b=1, h=16, w=16), 1, generator=0)


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_without_a_generator_the_global_one_is_untouched_and_calls_repeat(name):
    """Without `generator=` the draws came from torch's global generator: it moved (a
    caller's seeded torch.rand after the call changed) and a shortcut audit with SmoothGrad
    differed run to run (session-54 audit). None is now a fresh generator at torch's
    default seed: the same map as passing torch.Generator() itself."""
    method = METHODS[name](small_cnn())
    x = images(b=2, h=16, w=16)
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a = method.attribute(x, None)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, method.attribute(x, None))
    assert torch.equal(a, method.attribute(x, None, generator=torch.Generator()))
    if name != "CausalResponsibility":  # (its map here is 0: no mask changes the class)
        assert not torch.equal(a, _run(name, method, x, None, seed=1))  # the draws matter


@pytest.mark.parametrize(
    ("method", "match"),
    [
        (S.SmoothGrad(small_cnn(), n_samples=0), "`n_samples`"),
        (S.SmoothGrad(small_cnn(), noise=-1.0), "`noise`"),
        (S.RISE(small_cnn(), p=1.5), "`p`"),
        (S.RISE(small_cnn(), output="prob"), "`output`"),  # type: ignore[arg-type]
        (S.LIME(small_cnn(), kernel_width=0.0), "`kernel_width`"),
        (S.KernelSHAP(small_cnn(), n_samples=1), "`n_samples`"),
        (S.CausalResponsibility(small_cnn(), depth=0), "`depth`"),
        (S.CausalResponsibility(small_cnn(), confidence=2.0), "`confidence`"),
        (S.IntegratedGradients(small_cnn(), baseline="black"), "`baseline`"),  # type: ignore[arg-type]
    ],
)
def test_bad_hyperparameters_name_themselves(method, match):
    with pytest.raises((ValueError, TypeError), match=match):
        method.attribute(images(b=1, h=16, w=16), 1)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_single_logit_model_points_to_two_logits(name):
    one = _one_logit()
    with pytest.raises(ValueError, match=r"one logit per image.*cfx\.calls\.TwoLogits"):
        _run(name, METHODS[name](one), images(b=2, h=16, w=16), 1)
    # wrapped, it is explained as the binary model it is
    a = _run(name, METHODS[name](cfx_calls.TwoLogits(one)), images(b=2, h=16, w=16), 1)
    assert a.shape == (2, 1, 16, 16) and torch.isfinite(a).all()


def test_a_single_logit_model_explains_class_0_as_the_mirror_of_class_1():
    """TwoLogits gave class 0 the constant logit 0: every gradient map of class 0 was blank,
    silently, and compare_methods scored them as chance (session-55 audit). Its logits are
    now (-l/2, l/2): class 0's signed maps are minus class 1's, class 1's half l's own."""
    one, x = _one_logit(), images(b=2, h=16, w=16)
    wrapped = cfx_calls.TwoLogits(one)
    for cls in (S.Gradient, S.GradientXInput):
        zero, first = cls(wrapped).attribute(x, 0), cls(wrapped).attribute(x, 1)
        assert float(zero.abs().amax()) > 0
        signed = cls is S.GradientXInput  # Gradient's maps are |gradient|
        assert torch.allclose(zero, -first if signed else first, atol=1e-6)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(one(xg).sum(), xg)
    assert torch.allclose(S.Gradient(wrapped).attribute(x, 1), grad.abs() / 2, atol=1e-6)
    assert torch.allclose(
        torch.softmax(wrapped(x), 1)[:, 1], torch.sigmoid(one(x)[:, 0]), atol=1e-6
    )


def test_faithfulness_refuses_a_single_logit_model():
    from cfx.saliency.faithfulness import deletion_auc, insertion_auc

    x, maps = images(b=2, h=16, w=16), torch.rand(2, 1, 16, 16)
    for score in (deletion_auc, insertion_auc):  # both read 1.0 for every map before
        with pytest.raises(ValueError, match="TwoLogits"):
            score(_one_logit(), x, maps, 0)


def _one_logit():
    """A binary model with one (sigmoid) logit: the small CNN's class-1 logit alone."""
    cnn = small_cnn()
    head = torch.nn.Linear(2, 1)
    with torch.no_grad():  # a logit, not a probability: well outside [0, 1] (TwoLogits warns
        head.bias.fill_(-3.0)  # when a batch of outputs all lie in [0, 1], as a sigmoid's)
    return torch.nn.Sequential(cnn, head)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_model_that_does_not_fit_the_images_is_named_first(name):
    model, x = small_cnn(), images(b=2, h=16, w=16)
    with pytest.raises(TypeError, match=r"`x` is torch.float64 .* weights are torch.float32"):
        _run(name, METHODS[name](model), x.double(), 1)
    with pytest.raises(ValueError, match=r"`model` failed on `x` shaped \(3, 16, 16\)"):
        _run(name, METHODS[name](model), x.expand(2, 3, 16, 16), 1)
    softmax = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="look like probabilities"):
        _run(name, METHODS[name](softmax), x, 1)
    with pytest.warns(UserWarning, match="no pixel of `x` is below 0"):
        _run(name, METHODS[name](model), (x + 1) / 2, 1)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_model_trained_at_another_size_is_said(name):
    """The trajectory explainers said so; the saliency methods explained a 16x16 model on
    32x32 images without a word (session 45 API audit)."""
    from types import SimpleNamespace

    from cfx.errors import Notice

    model = small_cnn()
    model.config = SimpleNamespace(image_size=(16, 16))  # as a zoo model records it
    with pytest.warns(Notice, match=r"`model` was trained on 16x16 images .* given 32x32"):
        _run(name, METHODS[name](model), images(b=1, h=32, w=32), 1)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        _run(name, METHODS[name](model), images(b=1, h=16, w=16), 1)
    assert not [w for w in said if "was trained on" in str(w.message)]  # its own size


class _Shared(list):
    """A list a deep copy shares: the methods that score many images at once do it through a
    copy of the model (``fast_model``), whose own ``seen`` the test never read."""

    def __deepcopy__(self, memo):
        return self


class _Spy(torch.nn.Module):
    """The model, recording how many images each forward pass took (copies record too)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, _Shared()

    def forward(self, x):
        self.seen.append(x.shape[0])
        return self.model(x)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_pass_takes_more_images_than_batch_size(name):
    """The first pass (the logits that pick the targets, f(x) for Integrated Gradients,
    KernelSHAP's f of the baseline) took every image at once whatever `batch_size` said:
    a user holding memory down with batch_size=4 still sent all 12 images through."""
    spy = _Spy(small_cnn())
    method = METHODS[name](spy)
    method.batch_size = 4
    with warnings.catch_warnings():  # RISE's saturation notice on a random network
        warnings.simplefilter("ignore", cfx_errors.Notice)
        _run(name, method, images(b=12, h=16, w=16), None)
    assert max(spy.seen) <= 4, spy.seen
    if name in ("Occlusion", "RISE", "LIME", "KernelSHAP", "CausalResponsibility"):  # masked
        assert sum(spy.seen) > 2 * 12, spy.seen


def test_faithfulness_passes_take_batch_size_images_at_most():
    from cfx.saliency.faithfulness import deletion_auc, insertion_auc

    spy = _Spy(small_cnn())
    x = images(b=12, h=16, w=16)
    maps = torch.rand(12, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    deletion_auc(spy, x, maps, None, steps=2, batch_size=4)
    insertion_auc(spy, x, maps, None, steps=2, batch_size=4)
    assert max(spy.seen) <= 4, spy.seen
    assert sum(spy.seen) >= 2 * 2 * 12, spy.seen  # each curve's 2 steps of 12 images seen
