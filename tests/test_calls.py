"""cfx.calls: the helpers every method uses to call the user's models."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

from cfx.calls import (
    TwoLogits,
    class_logits,
    frozen,
    in_chunks,
    resolve_target,
    target_margin,
    target_prob,
)


def test_target_margin_is_the_log_odds_of_the_target_probability():
    # three classes with probabilities 0.5, 0.3, 0.2: log-odds of class 0 = log(0.5 / 0.5) = 0,
    # of class 2 = log(0.2 / 0.8)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    target = torch.tensor([0, 2])
    assert torch.allclose(
        target_margin(logits, target), torch.tensor([0.0, math.log(0.25)]), atol=1e-6
    )
    assert torch.allclose(target_prob(logits, target), torch.tensor([0.5, 0.2]))


def test_frozen_restores_mode_and_flags_even_when_the_body_raises():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Linear(2, 1))
    model.train()
    model[2].weight.requires_grad_(False)  # a user's partly frozen model
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(RuntimeError, match="boom"), frozen(model, lambda x: x):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
        raise RuntimeError("boom")
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags


def test_frozen_keeps_a_submodule_the_user_left_in_eval_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))
    model.train()
    model[1].eval()  # e.g. frozen batch statistics during fine-tuning
    with frozen(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and model[2].training
    assert not model[1].training


def test_in_chunks_matches_one_call_in_chunks_of_the_given_size():
    x = torch.arange(70, dtype=torch.float32).view(35, 2)
    for size, expected in ((1, [1] * 35), (4, [4] * 8 + [3]), (32, [32, 3]), (100, [35])):
        seen: list[int] = []

        def fn(t: torch.Tensor, seen: list[int] = seen) -> torch.Tensor:
            seen.append(t.shape[0])
            return t * 2 + 1

        assert torch.equal(in_chunks(fn, x, size=size), x * 2 + 1)
        assert seen == expected


def test_resolve_target_broadcasts_an_int_and_checks_tensors():
    assert torch.equal(resolve_target(1, 3, 2, torch.device("cpu")), torch.tensor([1, 1, 1]))
    t = resolve_target(torch.tensor([0, 1], dtype=torch.int32), 2, 2, torch.device("cpu"))
    assert t.dtype == torch.int64 and t.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"class index in \[0, 1\], got 2"):
        resolve_target(2, 3, 2, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"class index in \[0, 1\], got -1"):
        resolve_target(torch.tensor([0, -1, 1]), 3, 2, torch.device("cpu"))
    with pytest.raises(TypeError, match="`target`"):
        resolve_target(1.0, 3, 2, torch.device("cpu"))  # type: ignore[arg-type]
    # no model to ask yet (explain_in_chunks): any class >= 0, the explainer checks the rest
    assert resolve_target(7, 2, None, torch.device("cpu")).tolist() == [7, 7]
    with pytest.raises(ValueError, match=r"in \[0, K - 1\], got -2"):
        resolve_target(torch.tensor([0, -2]), 2, None, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        resolve_target(torch.tensor([0, 1]), 3, 2, torch.device("cpu"))
    with pytest.raises(ValueError, match="integer tensor"):
        resolve_target(torch.tensor([0.0, 1.0, 1.0]), 3, 2, torch.device("cpu"))
    with pytest.raises(TypeError, match="`target`"):
        resolve_target(True, 3, 2, torch.device("cpu"))


def test_per_image_targets_may_be_a_list_tuple_or_numpy_array():
    """`target=[1, 0, 1]` was a TypeError ("must be an int class index or a (B,) tensor")."""
    cpu = torch.device("cpu")
    assert resolve_target(range(3), 3, 3, cpu).tolist() == [0, 1, 2]  # any sequence of ints
    for given in ([1, 0, 1], (1, 0, 1), np.array([1, 0, 1]), np.uint8([1, 0, 1])):
        t = resolve_target(given, 3, 2, cpu)
        assert t.dtype == torch.int64 and t.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match=r"class index in \[0, 1\], got 2"):
        resolve_target([0, 2, 1], 3, 2, cpu)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        resolve_target([0, 1], 3, 2, cpu)
    # not class indices: booleans, floats and names are refused, not cast
    # the Target alias resolves (typing.get_type_hints failed on a quoted alias | None)
    import typing

    from cfx.saliency import Gradient

    assert "Sequence[int]" in str(typing.get_type_hints(Gradient.attribute)["target"])
    bad_ones = ([True, False, True], [0.0, 1.0, 1.0], np.array([0.0, 1.0, 1.0]), ["a", "b", "c"])
    for bad in (*bad_ones, [2**70, 0, 1], "abc"):
        with pytest.raises(TypeError, match=r"`target` must be an int class index or \(B,\)"):
            resolve_target(bad, 3, 2, cpu)


def test_resolve_target_takes_numpy_and_zero_d_integers_but_not_booleans():
    cpu = torch.device("cpu")
    assert resolve_target(np.int64(1), 2, 2, cpu).tolist() == [1, 1]  # type: ignore[arg-type]
    assert resolve_target(torch.tensor(1), 2, 2, cpu).tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"class index in \[0, 1\], got 5"):
        resolve_target(torch.tensor(5), 2, 2, cpu)
    with pytest.raises(ValueError, match=r"dtype torch\.bool"):
        resolve_target(torch.tensor(True), 2, 2, cpu)
    with pytest.raises(ValueError, match=r"dtype torch\.bool"):
        resolve_target(torch.tensor([True, False]), 2, 2, cpu)
    with pytest.raises(TypeError, match="`target`"):
        resolve_target(np.bool_(True), 2, 2, cpu)  # type: ignore[arg-type]


def test_class_logits_rejects_outputs_that_are_not_b_by_k():
    images = torch.zeros(4, 1, 2, 2)
    assert class_logits(lambda x: torch.zeros(4, 3), images).shape == (4, 3)
    with pytest.raises(ValueError, match=r"logits \(B, K\), got \(4, 3, 1\) for 4 images"):
        class_logits(lambda x: torch.zeros(4, 3, 1), images)
    with pytest.raises(ValueError, match=r"got \(2, 3\) for 4 images"):  # one row each
        class_logits(lambda x: torch.zeros(2, 3), images)
    with pytest.raises(ValueError, match="got list"):
        class_logits(lambda x: [0.0] * 4, images)
    # one score per image, (B,): the TwoLogits advice too, not only "must map ... (B, K)"
    with pytest.raises(ValueError, match=r"`oracle` returns one logit per image, shape \(4,\)"):
        class_logits(lambda x: torch.zeros(4), images, name="oracle")
    # one logit per image: softmax over it is 1 whatever the image, so probabilities (RISE,
    # deletion AUC, the explainers' targets) would never move; TwoLogits makes it two classes
    with pytest.raises(ValueError, match=r"one logit per image.*cfx\.calls\.TwoLogits"):
        class_logits(lambda x: torch.zeros(4, 1), images)


def test_class_logits_on_a_probe_says_it_was_one_image_of_the_batch():
    # a one-image probe of the user's batch `x`: "for 1 image" sent users hunting a batch bug
    one = torch.zeros(1, 1, 2, 2)
    with pytest.raises(
        ValueError,
        match=r"^on one image of `x`, `model` returned shape \(1, 1\): "
        r"one logit per image; .*TwoLogits",
    ):
        class_logits(lambda x: torch.zeros(1, 1), one, name="model", probe="one image of `x`")
    with pytest.raises(ValueError, match=r"on one image of `x`, `model` returned shape \(1,\)"):
        class_logits(lambda x: torch.zeros(1), one, name="model", probe="one image of `x`")
    with pytest.raises(
        ValueError, match=r"to logits \(B, K\); on one image of `x` it returned tuple$"
    ):
        class_logits(lambda x: (torch.zeros(1, 2),), one, name="model", probe="one image of `x`")
    with pytest.raises(ValueError, match=r"NaN or infinite logits on one image of `x`$"):
        class_logits(
            lambda x: torch.full((1, 2), math.nan), one, name="model", probe="one image of `x`"
        )


def test_two_logits_wraps_a_sigmoid_model_and_is_frozen_with_it():
    from cfx.calls import TwoLogits, frozen

    model = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.5))
    wrapped = TwoLogits(model)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    with frozen(wrapped):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        p = torch.softmax(wrapped(x), 1)[:, 1]
        assert torch.allclose(p, torch.sigmoid(model(x)[:, 0]), atol=1e-6)
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_two_logits_of_a_model_ending_in_a_sigmoid():
    import warnings

    from cfx.calls import TwoLogits

    head = nn.Linear(3, 1)
    with torch.no_grad():  # fixed weights: the global RNG left by earlier tests must not decide
        head.weight.copy_(torch.tensor([[1.0, -0.5, 0.25]]))
        head.bias.zero_()
    model = nn.Sequential(head, nn.Sigmoid())
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))  # a batch of 16 warns
    want = torch.sigmoid(head(x)[:, 0])  # the model's own probability of class 1
    p = torch.softmax(TwoLogits(model, outputs="probability")(x), 1)[:, 1]
    assert torch.allclose(p, want, atol=1e-5)
    taken_for_logits = TwoLogits(model)
    with pytest.warns(UserWarning, match="outputs='probability'"):
        wrong = torch.softmax(taken_for_logits(x), 1)[:, 1]
    assert bool((wrong >= 0.5).all()) and not bool((want >= 0.5).all())  # what it warns of
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taken_for_logits(x)  # once per wrapper
        TwoLogits(model)(x[:15])  # too few outputs to tell a sigmoid from logits
        TwoLogits(head)(x * 10)  # real logits, some outside [0, 1]: no warning
        mixed = TwoLogits(head)
        mixed(x[:1] * 0 + 10)  # one logit outside [0, 1], then 16 inside: still logits
        for i in range(16):
            mixed(x[i : i + 1] * 0)
    # one image per call, as a path explained step by step: 64 calls tell the sigmoid apart
    one_by_one = TwoLogits(model)
    with pytest.warns(UserWarning, match=r"every output so far \(64\) lies in \[0, 1\]"):
        for i in range(64):
            one_by_one(x[i % 16 : i % 16 + 1])
    # ... and a real logit near the boundary for 20 steps of one image is not a sigmoid
    near = TwoLogits(lambda t: 0.4 + t.mean(1) / 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(20):
            near(x[i % 16 : i % 16 + 1])
    with pytest.raises(ValueError, match="`outputs` must be 'logit' or 'probability'"):
        TwoLogits(model, outputs="sigmoid")


def test_softmax_outputs_are_recognised():
    from cfx.calls import looks_like_probabilities

    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    assert looks_like_probabilities(torch.softmax(logits, 1))
    assert not looks_like_probabilities(logits)
    assert not looks_like_probabilities(torch.log_softmax(logits, 1))  # log-probs are fine
    assert not looks_like_probabilities(torch.tensor([[0.2, 0.3]]))  # >= 0, sums to 0.5


def test_call_named_rephrases_pytorch_errors():
    from cfx.calls import call_named

    model = nn.Linear(4, 2)
    x = torch.zeros(1, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"`x` is torch.float64 .* the net's weights are torch.fl"):
        call_named(lambda: model(x), {"net": model}, x, "the net failed")
    with pytest.raises(TypeError, match=r"^`images` is torch.float64 .* `images.to\(torch.float32"):
        call_named(lambda: model(x), {"net": model}, x, "the net failed", name="images")
    x = torch.zeros(1, 5)  # right dtype, wrong width: PyTorch's shape error, with our prefix
    with pytest.raises(ValueError, match=r"^the net failed: mat1 and mat2 shapes"):
        call_named(lambda: model(x), {"net": model}, x, "the net failed")
    assert call_named(lambda: model(x[:, :4]), {"net": model}, x, "unused").shape == (1, 2)
    # images channels last: a one-channel convolution reads 64 channels; the hint says why
    conv = nn.Conv2d(1, 2, 3)
    last = torch.zeros(2, 64, 64, 1)
    with pytest.raises(ValueError, match=r"channels last\? `x`.permute\(0, 3, 1, 2\) puts"):
        call_named(lambda: conv(last), {"net": conv}, last, "the net failed")
    rgb = torch.zeros(2, 3, 8, 8)  # channels first, three of them for a one-channel net
    with pytest.raises(ValueError, match=r"the net failed: [^;]*$"):  # no hint
        call_named(lambda: conv(rgb), {"net": conv}, rgb, "the net failed")


def test_class_logits_names_a_model_that_cuts_the_graph_or_returns_nan():
    """A model that detaches its output (or runs under no_grad inside) once failed deep in
    autograd ("element 0 of tensors does not require grad"); NaN logits passed silently and
    every path counted as already in the target."""
    linear = nn.Linear(4, 2)
    images = torch.zeros(3, 1, 2, 2, requires_grad=True)

    def detached(x):
        return linear(x.flatten(1)).detach()

    with pytest.raises(ValueError, match="`classifier`'s logits do not depend on its input"):
        class_logits(detached, images)
    with torch.no_grad():  # no gradient asked for: a detached model is fine
        assert class_logits(detached, images).shape == (3, 2)

    def nan_row(x):
        out = linear(x.flatten(1))
        return torch.cat([out[:1], torch.full_like(out[1:2], float("nan")), out[2:]])

    with pytest.raises(
        ValueError,
        match=r"`oracle` returned NaN or infinite logits for 1 of 3 "
        r"images \(rows \[1\]\)",
    ):
        class_logits(nan_row, images, name="oracle")
    with pytest.raises(TypeError, match=r"floating-point logits \(B, K\), got dtype torch\.int64"):
        class_logits(lambda x: torch.zeros(3, 2, dtype=torch.int64), images)


def test_class_logits_follow_the_images_dtype():
    """float64 logits from a float32 model once turned the explainers' latents float64 and
    failed later inside the generator."""
    images = torch.zeros(2, 1, 2, 2)
    out = class_logits(lambda x: torch.ones(2, 2, dtype=torch.float64), images)
    assert out.dtype == torch.float32 and torch.equal(out, torch.ones(2, 2))


def test_two_logits_names_a_model_that_already_has_two():
    """Once "shape '[2, 1]' is invalid for input of size 4" from inside the wrapper (and,
    inside an explainer, a misleading 'must work on the same images')."""
    with pytest.raises(ValueError, match=r"returns \(2, 2\): pass it to cfx directly"):
        TwoLogits(nn.Linear(3, 2))(torch.zeros(2, 3))
    assert TwoLogits(nn.Linear(3, 1))(torch.zeros(2, 3)).shape == (2, 2)


def test_minus_infinity_masks_a_class_out_but_nan_images_are_named_as_such():
    """A -inf logit (a class ruled out) is legitimate; a row of -inf is not. Logits that are
    NaN because the images were are blamed on the images, not the model."""
    images = torch.zeros(2, 1, 2, 2)
    masked = torch.tensor([[0.0, float("-inf"), 1.0], [float("-inf"), 2.0, 0.0]])
    assert torch.equal(class_logits(lambda x: masked, images), masked)
    assert torch.isfinite(target_prob(masked, torch.tensor([0, 1]))).all()
    ruled_out = masked.clone()
    ruled_out[1] = float("-inf")
    with pytest.raises(
        ValueError, match=r"NaN or infinite logits for 1 of 2 images \(rows \[1\]\)"
    ):
        class_logits(lambda x: ruled_out, images)
    broken = images.clone()
    broken[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"the images given to `oracle` hold NaN .*rows \[1\]"):
        class_logits(lambda x: x.flatten(1)[:, :2] * 1.0, broken, name="oracle")


class _Wrapper:
    """A user's wrapper object holding the model as an attribute."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _closure_over(model: nn.Module):
    return lambda x: model(x)


def _scaled(x: torch.Tensor, model: nn.Module, scale: float = 1.0) -> torch.Tensor:
    return scale * model(x)


@pytest.mark.parametrize(
    "wrap",
    [
        _Wrapper,
        lambda m: _Wrapper(m).predict,  # a bound method
        _closure_over,  # a lambda over a local
        lambda m: functools.partial(_scaled, model=m),  # a partial's keyword
        lambda m: nn.Sequential(m).forward,  # a module's own bound method
        lambda m: functools.partial(m.forward),  # a bound method held by a partial
        lambda m: _Wrapper(m.forward),  # ... or by a wrapper's attribute
    ],
    ids=[
        "object",
        "bound-method",
        "lambda",
        "partial",
        "module-method",
        "partial-method",
        "wrapped-method",
    ],
)
def test_frozen_freezes_a_module_a_wrapper_holds_one_level_deep(wrap):
    """A model wrapped in an object, a method, a lambda or a partial was left in training
    mode with gradients on: Dropout made the counterfactual random and the user's weights
    collected .grad."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    with frozen(wrap(model)):
        assert not model.training and not model[1].training
        assert not any(p.requires_grad for p in model.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_frozen_restores_a_module_reached_twice_to_its_own_state():
    """The same module passed directly and through a wrapper is frozen once: frozen twice,
    the second record would see it already frozen and 'restore' it to eval mode."""
    model = nn.Linear(2, 1)
    model.train()
    with frozen(model, _Wrapper(model), _closure_over(model)):
        assert not model.training
    assert model.training and model.weight.requires_grad


def test_frozen_does_not_search_deeper_than_one_level():
    model = nn.Linear(2, 1)
    model.train()
    with frozen(_Wrapper(_Wrapper(model)), [model]):
        assert model.training  # documented: nested holders and lists are not searched


def test_a_model_with_uninitialised_lazy_layers_is_named():
    """PyTorch's own error (from requires_grad_ on an UninitializedParameter) named neither
    the model nor the remedy."""
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))
    lazy = r"`Sequential` has uninitialised lazy layers \(nn\.LazyLinear\): run it once"
    with pytest.raises(ValueError, match=lazy), frozen(model):
        pass
    model(torch.zeros(1, 3))  # once run, its layers are made and it freezes as usual
    with frozen(model):
        assert not model[1].weight.requires_grad
    assert model[1].weight.requires_grad


def test_two_logits_names_a_model_whose_batch_is_not_the_images():
    """A model returning one value for the whole batch (B, 1) -> (1,) was reshaped without
    complaint and read later as another model's mistake."""

    class Pooled(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum().reshape(1, 1)

    with pytest.raises(ValueError, match=r"got \(1, 1\) for 3 images"):
        TwoLogits(Pooled())(torch.zeros(3, 2))
    assert TwoLogits(Pooled())(torch.zeros(1, 2)).shape == (1, 2)


def test_two_logits_names_a_saturated_sigmoid_once():
    """sigmoid(20) is 1.0 in float32: the clipped logit has no gradient, so an explainer
    could not move the image and said nothing. p = sigmoid(+-2) is far from saturated."""
    import warnings

    from cfx.errors import Notice

    model = nn.Sequential(nn.Linear(1, 1), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
    wrapped = TwoLogits(model, outputs="probability")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)
        wrapped(torch.tensor([[2.0], [-2.0]]))
    x = torch.tensor([[20.0], [1.0], [-200.0]], requires_grad=True)
    with pytest.warns(Notice, match=r"exactly 0 or 1 in torch.float32 for 2 of the 3 images"):
        logits = wrapped(x)
    logits[:, 1].sum().backward()
    assert x.grad is not None and x.grad[0, 0] == 0 and x.grad[2, 0] == 0 and x.grad[1, 0] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)
        wrapped(x)  # once per wrapper


_GLOBAL_NET = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))


def _reads_a_global(x: torch.Tensor) -> torch.Tensor:
    return _GLOBAL_NET(x)  # a notebook's `clf = lambda im: net(im)` reads `net` like this


def test_frozen_freezes_a_module_a_function_reads_as_a_global():
    """The usual lambda of a script or notebook reads the model as a global, not a closure
    cell: it was left in training mode (Dropout on, BatchNorm statistics updated)."""
    _GLOBAL_NET.train()
    with frozen(_reads_a_global):
        assert not _GLOBAL_NET.training
        assert not any(p.requires_grad for p in _GLOBAL_NET.parameters())
    assert _GLOBAL_NET.training and all(p.requires_grad for p in _GLOBAL_NET.parameters())


def test_frozen_takes_a_function_with_a_closure_cell_not_yet_filled():
    """A function closing over a name assigned after it is defined (a helper set later in the
    same scope) has an empty cell, whose contents raise ValueError: frozen must skip that
    cell and still freeze the module the function does hold."""
    model = nn.Linear(2, 1)
    model.train()

    def classifier(x: torch.Tensor) -> torch.Tensor:
        return squash(model(x))

    with frozen(classifier):  # `squash` is not assigned yet
        assert not model.training and not model.weight.requires_grad
    assert model.training and model.weight.requires_grad
    squash = torch.sigmoid
    assert classifier(torch.zeros(1, 2)).shape == (1, 1)


class _StaysLazy(nn.LazyLinear):
    """A lazy layer that keeps its own class once its parameters are made (a user's lazy
    module need not name a ``cls_to_become``)."""

    cls_to_become = None


def test_a_lazy_layer_whose_parameters_are_made_is_frozen_like_any_other():
    """Only lazy layers whose parameters are not made yet are an error: one that is still a
    LazyModuleMixin after its first call, parameters made, must freeze as usual, not be
    refused for ever."""
    from torch.nn.modules.lazy import LazyModuleMixin

    model = nn.Sequential(_StaysLazy(2))
    model(torch.zeros(1, 3))
    assert isinstance(model[0], LazyModuleMixin)  # the premise: still a lazy module
    with frozen(model):
        assert not model[0].weight.requires_grad
    assert model[0].weight.requires_grad


def test_two_logits_takes_an_empty_batch():
    """An empty selection of images is a batch like any other: TwoLogits read the output's
    first row to check its width, an IndexError for (0, 1)."""
    out = TwoLogits(nn.Linear(2, 1))(torch.zeros(0, 2))
    assert out.shape == (0, 2)


def test_two_logits_clips_probabilities_below_float_precision_and_names_them():
    """p = 0 exactly (sigmoid(-200) underflows in float32) is clamped to float32's smallest
    normal number 2^-126: its logit is log(2^-126) - log1p(-2^-126) = -126 ln 2 = -87.34,
    finite (log(0) would be -inf), with no gradient, so it is named. p = sigmoid(-20) =
    2.1e-9 is small but exact: its logit comes back as -20 with gradient 1 (a clamp at eps
    1.19e-7 took both away from it and blamed the model), and p = 0.5 keeps logit 0."""
    from cfx.errors import Notice

    wrapped = TwoLogits(nn.Sigmoid(), outputs="probability")
    x = torch.tensor([[-200.0], [-20.0], [0.0]], requires_grad=True)
    with pytest.warns(Notice, match=r"exactly 0 or 1 in torch.float32 for 1 of the 3 images"):
        logits = wrapped(x)
    odds = logits[:, 1] - logits[:, 0]  # (-l/2, l/2)
    assert odds.tolist() == pytest.approx([-126 * math.log(2), -20.0, 0.0], abs=1e-3)
    assert torch.equal(logits[:, 0], -logits[:, 1])
    odds.sum().backward()
    assert x.grad[0, 0] == 0.0
    assert x.grad[1:, 0].tolist() == pytest.approx([1.0, 1.0], abs=1e-3)


def test_two_logits_clips_at_the_model_dtype_precision():
    """The clamp is at the model's own dtype's precision: in float64, sigmoid(+-20) =
    1 - 2.1e-9 and 2.1e-9 are far from saturated (eps 2.2e-16), so their logits +-20 come
    back exactly enough, with gradient 1 (d logit / dx for a sigmoid's logit), and nothing
    is named. float32's bounds would clip +20 (1 - 2.1e-9 rounds to 1 there)."""
    import warnings

    from cfx.errors import Notice

    wrapped = TwoLogits(nn.Sigmoid(), outputs="probability")
    x = torch.tensor([[20.0], [-20.0]], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)
        logits = wrapped(x)
    odds = logits[:, 1] - logits[:, 0]  # (-l/2, l/2)
    assert odds.tolist() == pytest.approx([20.0, -20.0], abs=1e-6)
    odds.sum().backward()
    assert x.grad[:, 0].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


model = nn.Linear(2, 1)  # a global whose name is also an attribute name below


class _Holder:
    def __init__(self) -> None:
        self.model = nn.Linear(2, 1)


_HOLDER = _Holder()


def _reads_an_attribute_named_like_a_global(x: torch.Tensor) -> torch.Tensor:
    return _HOLDER.model(x)  # `model` here is an attribute, not the global


def _comprehension_over_a_global(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([_GLOBAL_NET(c) for c in x.split(1)])


@torch.no_grad()
def _decorated(x: torch.Tensor) -> torch.Tensor:
    return _GLOBAL_NET(x)


def test_held_modules_reads_the_globals_a_function_loads_and_no_attribute_names():
    """co_names lists attribute names too: `_HOLDER.model(x)` picked up the unrelated global
    `model` (a lazy one would have raised); a comprehension's globals live in a nested code
    object, and a decorated function's in the function it wraps, and both were missed."""
    from cfx.calls import held_modules

    assert held_modules(_reads_an_attribute_named_like_a_global) == []
    assert held_modules(_comprehension_over_a_global) == [_GLOBAL_NET]
    assert held_modules(_decorated) == [_GLOBAL_NET]


def test_half_precision_logits_are_not_taken_for_probabilities():
    """The tolerance was 10 * K * eps of the dtype, 2 % in float16: two logits summing to
    0.993 were called probabilities on every half-precision run."""
    from cfx.calls import looks_like_probabilities

    logits = torch.tensor([[0.6689, 0.3245]], dtype=torch.float16)
    assert not looks_like_probabilities(logits)
    probs = torch.softmax(torch.tensor([[2.0, -1.0], [0.3, 0.1]]), 1).half()  # rounded rows
    assert looks_like_probabilities(probs)


def test_class_labels_are_named_as_such_not_sent_to_two_logits():
    """A classifier returning integer labels (B,) was told to wrap itself in TwoLogits,
    which then failed on the integer dtype."""
    images = torch.zeros(3, 1, 4, 4)
    with pytest.raises(TypeError, match=r"got dtype torch.int64 of shape \(B,\): class labels\?"):
        class_logits(lambda x: torch.zeros(x.shape[0], dtype=torch.long), images)
    with pytest.raises(TypeError, match=r"floating-point logits \(B, K\), got dtype torch.int32;"):
        class_logits(lambda x: torch.zeros(x.shape[0], 2, dtype=torch.int32), images)


def test_an_ensembles_models_in_a_list_or_dict_are_frozen_and_keyed():
    """`self.models = [a, b]` is the common ensemble: its models stayed in train mode
    (dropout on) and a retrained member resumed from the old chunks."""
    from cfx.calls import held_modules
    from cfx.trajectory.identity import explainer_key

    a, b = nn.Linear(2, 2), nn.Dropout(0.5)

    class Ensemble:
        def __init__(self, models) -> None:
            self.models = models

        def __call__(self, x):
            return x

    assert held_modules(Ensemble([a, b])) == [a, b]
    assert held_modules(Ensemble({"first": a})) == [a]
    assert held_modules(Ensemble((a,))) == [a]
    assert held_modules(Ensemble([[a]])) == []  # one level: a list in a list is not read
    b.train()
    with frozen(Ensemble([a, b])):
        assert not b.training and not a.weight.requires_grad
    assert b.training and a.weight.requires_grad

    class Holder:
        def __init__(self, classifier) -> None:
            self.classifier = classifier

    before = explainer_key(Holder(Ensemble([a])))
    with torch.no_grad():
        a.weight.add_(1.0)
    assert explainer_key(Holder(Ensemble([a]))) != before


def test_a_dtype_mismatch_among_the_models_names_them_all():
    """A float64 classifier with a float32 generator: the message said to convert the images
    to float64, after which the generator failed; it now names both models' dtypes."""
    from cfx.calls import dtype_device_mismatch

    x = torch.zeros(1, 1, 4, 4)
    one = dtype_device_mismatch({"generator": nn.Linear(2, 2).double()}, x)
    assert one is not None and "the generator's weights are torch.float64" in one
    both = dtype_device_mismatch(
        {"generator": nn.Linear(2, 2), "classifier": nn.Linear(2, 2).double()}, x
    )
    assert both is not None and "differ among themselves" in both
    assert "the generator's torch.float32 on cpu; the classifier's torch.float64" in both
    assert dtype_device_mismatch({"generator": nn.Linear(2, 2)}, x) is None


def test_a_size_recorded_as_one_int_is_a_square_and_odd_records_are_ignored():
    """Hugging Face configs record `image_size=224`: `tuple(224)` crashed every explain."""
    from types import SimpleNamespace

    from cfx.calls import trained_size_mismatch

    def said(recorded):
        model = SimpleNamespace(config=SimpleNamespace(image_size=recorded))
        return trained_size_mismatch(model, (2, 1, 64, 64), "`m`", "images")

    assert said(64) is None and said((64, 64)) is None
    assert said(32) is not None and "trained on 32x32 images" in said(32)
    for odd in ("64", (64,), (64, 64, 3), (0, 64), True, None, 64.0):
        assert said(odd) is None, odd


def test_a_model_on_another_device_than_the_images_is_named():
    """Weights in the images' dtype but on another device fail as deep in the model as a
    dtype mismatch; the message must name the device (a meta-device model stands in for a
    GPU one here)."""
    from cfx.calls import dtype_device_mismatch

    x = torch.zeros(1, 1, 4, 4)
    said = dtype_device_mismatch({"classifier": nn.Linear(2, 2, device="meta")}, x)
    assert said is not None
    assert "the classifier's weights are torch.float32 on meta" in said


def test_softmax_outputs_in_float64_or_with_an_exact_zero_are_recognised():
    """The rows are summed in float32, 1e-7 off for float64 softmax rows of 10 classes,
    far more than float64's own precision; and a confident softmax gives an exact 0, which
    is still a probability."""
    from cfx.calls import looks_like_probabilities

    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    probs = torch.softmax(logits, 1)
    assert bool((probs.float().sum(1) != 1).any())  # the premise: float32 sums miss 1
    assert looks_like_probabilities(probs)
    confident = torch.softmax(torch.tensor([[0.0, -200.0], [1.0, 0.0]]), 1)
    assert confident[0, 1] == 0  # the premise: exp(-200) is 0 in float32
    assert looks_like_probabilities(confident)


class _IndexFirst(torch.nn.Module):
    """An integer parameter first (an index table), then a float64 weight."""

    def __init__(self):
        super().__init__()
        self.index = torch.nn.Parameter(torch.tensor([1, 0]), requires_grad=False)
        self.w = torch.nn.Parameter(torch.tensor([-1.0, 1.0], dtype=torch.float64))

    def forward(self, x):
        assert x.dtype == torch.float64, f"got {x.dtype}"
        return x.flatten(1).sum(1, keepdim=True) * self.w[self.index]  # (B, 2)


def test_to_model_follows_the_first_floating_weight_not_an_integer_one():
    from cfx.calls import to_model

    x = torch.ones(2, 1, 2, 2)
    assert to_model(x, _IndexFirst()).dtype == torch.float64  # not int64, not left float32
    assert to_model(x, torch.nn.Linear(2, 2).double()).dtype == torch.float64
    assert to_model(x, lambda v: v) is x  # a function: as it came
    ints = torch.nn.Module()
    ints.register_buffer("table", torch.arange(3))
    assert to_model(x, ints) is x  # integer weights only: no input dtype to follow


def test_predict_feeds_a_model_with_an_integer_first_parameter_its_float_dtype():
    """predict cast the images to the first parameter's dtype: int64 here, which truncated
    every pixel in [-1, 1] to 0 (or failed inside the model)."""
    from cfx.training.classifier import predict

    x = torch.full((3, 1, 2, 2), 0.5)
    logits = predict(_IndexFirst(), x)  # (3, 2): the sum 2.0 times (1, -1)
    assert torch.equal(logits, torch.tensor([[2.0, -2.0]] * 3, dtype=torch.float64))


def test_to_model_looks_through_a_wrapper_without_weights_of_its_own():
    """predict cast float64 images to float32 for TwoLogits around a function (no weights of
    its own); placing inputs by the wrapper alone left them float64 for a float32 network."""
    from cfx.calls import to_model
    from cfx.training.classifier import predict

    net = nn.Linear(4, 1)
    wrapped = TwoLogits(lambda v: net(v.flatten(1)))
    x = torch.rand(3, 1, 2, 2, dtype=torch.float64)
    assert to_model(x, wrapped).dtype == torch.float32
    assert to_model(x, lambda v: net(v)).dtype == torch.float32  # a function's network
    logits = predict(wrapped, x)  # (3, 2): (-l/2, l/2) with l the network's output
    expected = net(x.float().flatten(1))[:, 0].detach()
    assert torch.allclose(logits[:, 1], expected / 2) and torch.equal(logits[:, 0], -logits[:, 1])


def test_held_modules_reads_a_functions_default_arguments():
    """`lambda im, net=net: net(im)` (the loop idiom) hid its network: saliency ran it in
    training mode, BatchNorm statistics changed and maps varied from call to call."""
    import torch

    from cfx.calls import held_modules
    from cfx.saliency import Gradient

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1),
        torch.nn.BatchNorm2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(2 * 8 * 8, 2),
    ).train()

    def keyword_only(im, *, model=net):
        return model(im)

    assert held_modules(lambda im, net=net: net(im)) == [net]
    assert held_modules(keyword_only) == [net]
    stats = net[1].running_mean.clone()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a = Gradient(lambda im, net=net: net(im)).attribute(x, 1)
    b = Gradient(lambda im, net=net: net(im)).attribute(x, 1)
    assert torch.equal(a, b)
    assert torch.equal(net[1].running_mean, stats) and net.training


def _bn_dropout_net(out: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, out),
    ).train()


@pytest.mark.parametrize("wrap", ["two_logits", "unit_input"])
def test_cfx_wrappers_around_a_function_freeze_the_network_it_calls(wrap):
    """TwoLogits(lambda im: net(im)[:, 0]) and UnitInput(lambda u: net(u)) were frozen as
    wrappers alone: the network ran in training mode, two Gradient maps differed (Dropout)
    and its BatchNorm statistics moved for good (session-53 audit)."""
    from cfx.images import UnitInput
    from cfx.saliency import Gradient

    torch.manual_seed(0)
    net = _bn_dropout_net(1 if wrap == "two_logits" else 2)
    model = TwoLogits(lambda im: net(im)[:, 0]) if wrap == "two_logits" else UnitInput(net.forward)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    first = Gradient(model).attribute(x, 1)
    second = Gradient(model).attribute(x, 1)
    assert torch.equal(first, second)
    assert net.training and all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_slots_wrapper_is_frozen_like_any_other_object():
    """A @dataclass(slots=True) wrapper has no __dict__: its network went unfrozen."""
    from dataclasses import dataclass

    @dataclass(slots=True)
    class Slotted:
        net: nn.Module

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    net = _bn_dropout_net()
    with frozen(Slotted(net)):
        assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert net.training


def test_unit_input_around_a_float64_function_takes_float64_images():
    """UnitInput's own float32 mean/std buffers were taken for the model's dtype: float64
    images were cast to float32 for a float64 network, which failed inside it."""
    from cfx.calls import to_model
    from cfx.images import UnitInput

    net = _bn_dropout_net(2).double()
    model = UnitInput(lambda u: net(u), mean=(0.5,), std=(0.25,))
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64) * 2 - 1
    assert to_model(x.float(), model).dtype == torch.float64


def test_run_keys_tell_wrappers_around_different_functions_apart():
    """TwoLogits(lambda: netA) and TwoLogits(lambda: netB) had one digest, so a chunked run's
    folder made with one was read back for the other."""
    from cfx.run_key import module_sha256

    torch.manual_seed(0)
    a, b = _bn_dropout_net(), _bn_dropout_net()
    assert module_sha256(TwoLogits(lambda im: a(im)[:, 0])) != module_sha256(
        TwoLogits(lambda im: b(im)[:, 0])
    )
    assert module_sha256(TwoLogits(a)) == module_sha256(TwoLogits(a))
    plain = nn.Linear(2, 2)  # a plain module's digest is its state alone, as before
    assert module_sha256(plain) == module_sha256(nn.Sequential(plain)[0])


def test_call_named_keeps_out_of_memory_and_not_implemented_errors():
    """torch.OutOfMemoryError (a RuntimeError) became a ValueError: a caller's
    `except torch.OutOfMemoryError:` (retry on a smaller batch) no longer caught it."""
    from cfx.calls import call_named

    x = torch.zeros(1, 1, 2, 2)
    for err in (torch.OutOfMemoryError("CUDA out of memory"), NotImplementedError("no")):

        def fail(err=err):
            raise err

        with pytest.raises(type(err)):
            call_named(fail, {}, x, "failed")


def test_two_logits_names_integer_outputs_in_probability_mode_too():
    x = torch.zeros(3, 1, 2, 2)
    said = r"floating-point probability per image, got dtype torch.int64"
    with pytest.raises(TypeError, match=said):
        TwoLogits(lambda im: torch.tensor([0, 1, 1]), outputs="probability")(x)


def test_two_logits_notices_point_at_the_users_line():
    """They were attributed to torch/nn/modules/module.py (stacklevel 2 inside forward is
    torch's Module._call_impl), so a per-file filter could not reach them (session-54 audit).
    Called directly and through a cfx function alike, the warning names this file."""
    import warnings

    from cfx.calls import TwoLogits, class_logits

    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 1), nn.Sigmoid())
    with torch.no_grad():
        net[1].weight.fill_(100.0)  # saturated: "exactly 0 or 1"
    x = torch.ones(2, 1, 2, 2)
    for call in (lambda m: m(x), lambda m: class_logits(m, x)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(TwoLogits(net, outputs="probability"))
        (said,) = [w for w in caught if "exactly 0 or 1" in str(w.message)]
        assert said.filename == __file__
