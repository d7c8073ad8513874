"""The contract every public trajectory explainer keeps, checked on the linear toy.

Same result type and shapes, the same frames for the same inputs, the user's models left as
they were (modes submodule by submodule, ``requires_grad`` flags, parameters, BatchNorm
statistics), and an error naming the argument for every input a user can get wrong.
"""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from cfx.trajectory import (
    GradientAscent,
    LocalisedAscent,
    MonotonePath,
    PixelSpace,
    TrajectoryResult,
)
from tests.trajectory.toy import LinearGenerator, LogisticClassifier

B, T = 3, 3  # images, frames after the start
IMAGE = (1, 4, 4)


def _start_latents(g: LinearGenerator, f: LogisticClassifier) -> torch.Tensor:
    """z0 = -3 u plus small offsets, u = A^T w / |A^T w|: well inside class 0."""
    u = g.A.detach().T @ f.w.detach()
    u = u / u.norm()
    offsets = torch.tensor([[0.2, 0.0, -0.1], [0.0, 0.3, 0.0], [-0.2, 0.1, 0.2]])
    return -3 * u[None].repeat(B, 1) + offsets  # (B, 3)


def _make(name, g, f, oracle=None):
    """The explainer ``name`` with small settings, and whether it walks ``g``'s latents
    (``False``: the pixel baseline, whose latents are the images)."""
    ascent = {"steps": T, "eta": 0.25, "max_iter": 60, "oracle": oracle}
    monotone = {"steps": T, "iterations": 10, "warm_start_eta": 0.25, "warm_start_iter": 60}
    monotone |= {"blur_check": 0.0, "oracle": oracle}
    regions = {"mask_fractions": (0.125, 0.25)}
    if name == "gradient_ascent":
        return GradientAscent(g, f, **ascent)
    if name == "localised_ascent":
        return LocalisedAscent(g, f, **ascent, **regions)
    if name == "monotone_path":
        return MonotonePath(g, f, **monotone)
    if name == "monotone_path_localised":
        return MonotonePath(g, f, localise=True, **monotone, **regions)
    if name == "pixel_space":
        return GradientAscent(PixelSpace(IMAGE), f, inversion_steps=0, **ascent)
    raise ValueError(name)


NAMES = [
    "gradient_ascent",
    "localised_ascent",
    "monotone_path",
    "monotone_path_localised",
    "pixel_space",
]


class Case:
    """An explainer on the toy, with its inputs: images ``x`` ``(B, 1, 4, 4)`` in [-1, 1] and
    the latents to start from (``G``'s latents, or the images for the pixel baseline)."""

    def __init__(self, name: str, classifier: nn.Module | None = None, oracle=None) -> None:
        self.name = name
        self.g = LinearGenerator()
        self.f = LogisticClassifier() if classifier is None else classifier
        self.oracle = oracle
        z0 = _start_latents(self.g, LogisticClassifier())
        with torch.no_grad():
            self.x = self.g.decode(z0)  # (B, 1, 4, 4)
        assert float(self.x.abs().max()) <= 1.0
        self.explainer = _make(name, self.g, self.f, oracle)
        self.pixel = name == "pixel_space"
        self.latents = self.x.clone() if self.pixel else z0
        self.latent_shape = IMAGE if self.pixel else (3,)
        self.generator = self.explainer.generator  # the model the explainer decodes with

    def explain(self, x=None, target=1, latents="default"):
        latents = self.latents if isinstance(latents, str) else latents
        return self.explainer.explain(self.x if x is None else x, target, latents=latents)


@pytest.fixture(params=NAMES)
def case(request):
    return Case(request.param)


# --- result type and shapes -------------------------------------------------------------------


def test_result_shapes_and_dtypes(case):
    res = case.explain()
    assert isinstance(res, TrajectoryResult)
    assert res.frames.shape == (B, T + 1, *IMAGE)
    assert res.probs.shape == (B, T + 1)
    assert res.latents.shape == (B, T + 1, *case.latent_shape)
    assert res.levels.shape == (T + 1,)
    assert res.success.shape == (B,) and res.success.dtype == torch.bool
    assert res.target.shape == (B,) and res.target.dtype == torch.int64
    assert torch.equal(res.target, torch.ones(B, dtype=torch.int64))
    assert res.frames.dtype == case.x.dtype and res.frames.device == case.x.device
    assert res.steps == T and len(res) == B
    assert torch.equal(res.source, case.x)
    assert bool(((res.probs >= 0) & (res.probs <= 1)).all())
    # given latents: no inversion ran, and frame 0 decodes the latents we passed
    assert res.inversion is None and res.inversion_seconds == 0.0
    assert torch.equal(res.latents[:, 0], case.latents)
    with torch.no_grad():
        assert torch.allclose(res.frames[:, 0], case.generator.decode(case.latents))
    assert res.oracle_probs is None


def test_result_is_frozen(case):
    res = case.explain()
    x = case.x.clone()
    case.x.zero_()  # the caller reuses its batch: the result kept its own source
    assert torch.equal(res.source, x)
    case.x.copy_(x)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.frames = torch.zeros(1)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.in_target = torch.zeros(B, T + 1, dtype=torch.bool)  # type: ignore[misc]


def test_frames_climb_to_the_target(case):
    # the toy's boundary is a hyperplane and every start lies well inside class 0: every
    # explainer, at these settings, ends past the boundary
    res = case.explain()
    assert bool((res.probs[:, 0] < 0.2).all())
    assert bool(res.success.all())
    assert bool((res.probs[:, -1] > 0.5).all())


@pytest.mark.parametrize("name", NAMES)
def test_oracle_probabilities(name):
    oracle = LogisticClassifier(seed=7)
    c = Case(name, oracle=oracle)
    res = c.explain()
    assert res.oracle_probs is not None
    assert res.oracle_probs.shape == (B, T + 1)
    assert bool(((res.oracle_probs >= 0) & (res.oracle_probs <= 1)).all())
    # the oracle's own target probability of the frames, recomputed by hand
    with torch.no_grad():
        s = res.frames.flatten(2) @ oracle.w + oracle.b  # (B, T+1): oracle log-odds of class 1
    assert torch.allclose(res.oracle_probs, torch.sigmoid(s), atol=1e-5)
    # and the explained classifier's, likewise
    with torch.no_grad():
        s = res.frames.flatten(2) @ c.f.w + c.f.b
    assert torch.allclose(res.probs, torch.sigmoid(s), atol=1e-5)


# --- the user's models are left as they were --------------------------------------------------


class BatchNormClassifier(nn.Module):
    """flatten -> BatchNorm1d(16) -> the toy's logistic classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(16)
        self.logistic = LogisticClassifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logistic(self.bn(x.flatten(1)))


def _snapshot(*models: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for m in models for t in [*m.parameters(), *m.buffers()]]


def _unchanged(before: list[torch.Tensor], *models: nn.Module) -> bool:
    after = [t for m in models for t in [*m.parameters(), *m.buffers()]]
    return len(before) == len(after) and all(
        torch.equal(a, b) for a, b in zip(before, after, strict=True)
    )


@pytest.mark.parametrize("name", NAMES)
def test_models_in_training_mode_are_left_unchanged(name):
    c = Case(name, oracle=LogisticClassifier(seed=7))
    models = [c.generator, c.f, c.oracle]
    for m in models:
        m.train()
        for p in m.parameters():
            p.requires_grad_(True)
    before = _snapshot(*models)
    c.explain()
    assert all(m.training for m in models)
    assert all(p.requires_grad for m in models for p in m.parameters())
    assert all(p.grad is None for m in models for p in m.parameters())
    assert _unchanged(before, *models)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bn_training", [False, True])
def test_batchnorm_classifier_modes_and_statistics_survive(name, bn_training):
    # a BatchNorm kept in eval mode under a parent in training mode, or the whole classifier in
    # training mode: either way the modes come back submodule by submodule, and the running
    # statistics (which any forward pass in training mode would move) stay put
    f = BatchNormClassifier()
    f.train()
    f.bn.train(bn_training)
    c = Case(name, classifier=f)
    before = _snapshot(f)
    tracked = int(f.bn.num_batches_tracked)
    res = c.explain()
    assert f.training and f.logistic.training
    assert f.bn.training is bn_training
    assert int(f.bn.num_batches_tracked) == tracked
    assert _unchanged(before, f)
    # in eval mode with fresh statistics the BatchNorm is x / sqrt(1 + eps): the explainer saw
    # the toy's logistic classifier (up to that factor)
    with torch.no_grad():
        s = res.frames.flatten(2) / (1 + f.bn.eps) ** 0.5 @ f.logistic.w + f.logistic.b
    assert torch.allclose(res.probs, torch.sigmoid(s), atol=1e-5)


# --- determinism and target forms -------------------------------------------------------------


def test_same_inputs_same_frames(case):
    a = case.explain()
    b = Case(case.name).explain()  # fresh models and explainer, same inputs
    c = case.explain()  # the same explainer again
    assert torch.equal(a.frames, b.frames)
    assert torch.equal(a.frames, c.frames)
    assert torch.equal(a.probs, c.probs)


@pytest.mark.parametrize(
    "target",
    [
        np.int64(1),
        torch.tensor(1),
        torch.tensor(1, dtype=torch.int32),
        torch.ones(B, dtype=torch.int64),
    ],
    ids=["numpy_int64", "tensor_0d", "tensor_0d_int32", "tensor_B"],
)
def test_target_forms_match_the_int(case, target):
    expected = case.explain(target=1)
    res = case.explain(target=target)
    assert torch.equal(res.target, torch.ones(B, dtype=torch.int64))
    assert torch.equal(res.frames, expected.frames)
    assert torch.equal(res.probs, expected.probs)


# --- clear errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "exc", "match"),
    [
        (2, ValueError, r"`target` must be a class index in \[0, 1\]"),
        (-1, ValueError, r"`target` must be a class index in \[0, 1\]"),
        ("healthy", TypeError, "`target`"),
        (1.0, TypeError, "`target`"),
        (True, TypeError, "`target`"),
        (torch.tensor(1.0), ValueError, "`target`"),
        (torch.ones(B), ValueError, "`target`"),
        (torch.ones(B + 1, dtype=torch.int64), ValueError, "`target`"),
    ],
    ids=["2", "-1", "str", "float", "bool", "float_0d", "float_B", "wrong_length"],
)
def test_bad_target(case, target, exc, match):
    with pytest.raises(exc, match=match):
        case.explain(target=target)


def test_x_with_nan(case):
    x = case.x.clone()
    x[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="`x` contains NaN"):
        case.explain(x=x)


def test_x_out_of_range(case):
    with pytest.raises(ValueError, match=r"`x` must have values in \[-1, 1\]"):
        case.explain(x=torch.full((B, *IMAGE), 3.0))


def test_x_three_dimensional(case):
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, C, H, W\)"):
        case.explain(x=torch.zeros(B, 4, 4))


@pytest.mark.parametrize("shape", [(B, 1, 5, 5), (B, 3, 4, 4)])
def test_x_with_the_wrong_image_shape(case, shape):
    with pytest.raises(ValueError, match="`x`") as info:
        case.explain(x=torch.zeros(shape))
    assert "(B, 1, 4, 4)" in str(info.value)


def test_latents_of_the_wrong_shape(case):
    wrong = torch.zeros(B, 5) if not case.pixel else torch.zeros(B, 1, 5, 5)
    with pytest.raises(ValueError, match="`latents` must have shape") as info:
        case.explain(latents=wrong)
    assert str((B, *case.latent_shape)) in str(info.value)
    with pytest.raises(ValueError, match="`latents`"):
        case.explain(latents=case.latents[:2])  # one image short


def test_latents_with_nan(case):
    z = case.latents.clone()
    z[1].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="`latents`"):
        case.explain(latents=z)


def test_latents_as_numpy(case):
    with pytest.raises(TypeError, match="`latents`"):
        case.explain(latents=case.latents.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_oracle_with_the_wrong_output_shape(name):
    class FlatOracle(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(1)  # (B,) instead of (B, K)

    c = Case(name, oracle=FlatOracle())
    with pytest.raises(ValueError, match="`oracle`"):
        c.explain()


@pytest.mark.parametrize("name", NAMES)
def test_classifier_with_the_wrong_output_shape(name):
    class FlatClassifier(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(1)  # (B,) instead of (B, K)

    c = Case(name, classifier=FlatClassifier())
    with pytest.raises(ValueError, match="`classifier`"):
        c.explain()


class DetachedClassifier(LogisticClassifier):
    """The toy classifier behind a ``.detach()``, as a model that leaves autograd would be."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).detach()


class NanClassifier(LogisticClassifier):
    """The toy classifier, NaN for every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * float("nan")


@pytest.mark.parametrize("name", NAMES)
def test_a_classifier_that_cuts_the_graph_is_named(name):
    """Once a RuntimeError from inside autograd ("element 0 of tensors does not require
    grad")."""
    with pytest.raises(ValueError, match="`classifier`'s logits do not depend on its input"):
        Case(name, classifier=DetachedClassifier()).explain()


@pytest.mark.parametrize("name", NAMES)
def test_a_classifier_returning_nan_is_named(name):
    """Once silent: NaN probabilities, every path flagged a success 'starting in the target'."""
    with pytest.raises(ValueError, match="`classifier` returned NaN or infinite logits"):
        Case(name, classifier=NanClassifier()).explain()


@pytest.mark.parametrize("name", NAMES)
def test_oracle_is_checked_before_the_work(name):
    """A segmenter passed as the oracle fails at the start, after one call of the classifier
    (the probe), not after the inversion and the search, when the frames are scored."""

    class Segmenter(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x  # (B, 1, H, W) mask logits

    class Counting(LogisticClassifier):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Counting.calls += 1
            return super().forward(x)

    c = Case(name, classifier=Counting(), oracle=Segmenter())
    probe = r"on the generator's image of the zero latent \(a check before the work\)"
    with pytest.raises(
        ValueError, match=r"`oracle` must map .*; " + probe + r" it returned \(1, 1"
    ):
        c.explain()
    assert Counting.calls == 1


@pytest.mark.parametrize("name", ["gradient_ascent", "monotone_path_localised"])
def test_oracle_with_other_classes(name):
    class ThreeClasses(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :3]

    with pytest.raises(ValueError, match="`oracle` returns 3 class logits but the classifier 2"):
        Case(name, oracle=ThreeClasses()).explain()


class RGBLinear(nn.Module):  # built for 3-channel 4x4 images; the toy generator makes 1
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(48, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


@pytest.mark.parametrize("name", ["gradient_ascent", "monotone_path_localised"])
@pytest.mark.parametrize("role", ["classifier", "oracle"])
def test_a_model_built_for_other_images_is_named(name, role):
    with pytest.raises(
        ValueError, match=rf"the {role} failed on the generator's images \(1, 4, 4\)"
    ):
        Case(name, **{role: RGBLinear()}).explain()
    if role == "oracle":
        with pytest.raises(ValueError, match="CLI: `--oracle none`"):
            Case(name, oracle=RGBLinear()).explain()


@pytest.mark.parametrize("name", ["gradient_ascent", "localised_ascent"])
def test_single_logit_classifier_is_refused(name):
    """Softmax over one logit is 1 for every image: the explainer would report success
    without changing anything."""

    class OneLogit(LogisticClassifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x)[:, 1:]  # (B, 1)

    with pytest.raises(ValueError, match=r"one logit per image.*cfx.calls.TwoLogits"):
        Case(name, classifier=OneLogit()).explain(target=0)
    # the wrapper the message names: class 1's probability is the sigmoid of the one logit
    from cfx.calls import TwoLogits

    one = OneLogit()
    res = Case(name, classifier=TwoLogits(one)).explain(target=1)
    with torch.no_grad():
        own = torch.sigmoid(one(res.frames.flatten(0, 1))).view(B, T + 1)
    assert torch.allclose(res.probs, own, atol=1e-6)


def test_x_in_another_dtype_than_the_models(case):
    with pytest.raises(
        TypeError, match=r"`x` is torch.float64 on cpu but the (generator|classifier)'s weights"
    ):
        case.explain(x=case.x.double(), latents=case.latents.double())


def test_a_model_that_casts_its_own_inputs_is_not_refused():
    """Weights in float64 but a forward that casts the float32 images itself: it runs, so
    the dtype check only explains calls that fail."""

    class Casting(LogisticClassifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x.to(self.w.dtype)).float()

    res = Case("gradient_ascent", classifier=Casting().double()).explain()
    assert bool(res.success.all())


class _CastingGenerator(LinearGenerator):
    """float32 weights and frames whatever the latents' dtype (a model that casts its
    inputs itself)."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return super().decode(z.float())


class _CastingClassifier(LogisticClassifier):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float())


@pytest.mark.parametrize("name", [n for n in NAMES if n != "pixel_space"])
def test_float64_images_with_models_that_cast_to_float32(name):
    """The frames' probabilities are float32 but the placement levels take the latents'
    float64: the placement's refinement crashed in PyTorch (index_copy_ of another dtype)."""
    c = Case(name, classifier=_CastingClassifier())
    c.explainer.generator = c.generator = _CastingGenerator()
    res = c.explain(x=c.x.double(), latents=c.latents.double())
    assert bool(res.success.all()) and res.probs.shape == (B, T + 1)
    assert bool((res.probs[:, 1:] > res.probs[:, :-1]).all())  # still climbing


@pytest.mark.parametrize("name", [n for n in NAMES if n != "pixel_space"])
def test_half_precision_models_and_images(name):
    """Localised paths crashed in float16 (torch.quantile takes float32/64 only) with a
    PyTorch error naming no argument; every explainer runs in the models' dtype."""
    c = Case(name)
    c.explainer.generator = c.generator = c.g.half()
    c.explainer.classifier = c.f.half()
    res = c.explain(x=c.x.half(), latents=c.latents.half())
    assert res.frames.dtype == torch.float16 and bool(res.success.all())
    assert bool((res.probs[:, -1] > 0.5).all())
    # every tensor of the result in it (MonotonePath's lambdas came back float32: session 54)
    for field in dataclasses.fields(res):
        value = getattr(res, field.name)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert value.dtype == torch.float16, field.name


def test_softmax_outputs_and_unit_range_batches_are_warned_about(caplog):
    class Softmaxed(LogisticClassifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(super().forward(x), 1)

    Case("gradient_ascent", classifier=Softmaxed()).explain()
    assert "look like probabilities" in caplog.text
    assert "no pixel" not in caplog.text
    caplog.clear()
    c = Case("gradient_ascent")
    c.explain(x=c.x.abs())  # every pixel >= 0: [0, 1] images?
    assert "no pixel of the 3 input images is below 0" in caplog.text
    assert "probabilities" not in caplog.text
    caplog.clear()
    c.explain(x=c.x[:1].abs(), latents=c.latents[:1])  # one image too
    assert "no pixel of the 1 input image is below 0" in caplog.text
    caplog.clear()
    Case("gradient_ascent", oracle=Softmaxed()).explain()  # a softmaxed oracle too
    assert "the oracle's outputs look like probabilities" in caplog.text


def test_crossed_at_is_the_first_frame_in_the_target():
    from cfx.trajectory.result import TrajectoryResult

    probs = torch.tensor(
        [
            [0.1, 0.4, 0.6, 0.9],  # crosses at frame 2
            [0.7, 0.8, 0.9, 0.99],  # already past at frame 0
            [0.1, 0.2, 0.3, 0.5],  # never in the target (0.5 is not > 0.5): -1
            [0.2, 0.6, 0.4, 0.7],  # the first crossing counts, not the last
        ]
    )
    b, n = probs.shape
    res = TrajectoryResult(
        frames=torch.zeros(b, n, 1, 2, 2),
        latents=torch.zeros(b, n, 3),
        probs=probs,
        levels=torch.arange(n) / (n - 1),
        target=torch.zeros(b, dtype=torch.long),
        source=torch.zeros(b, 1, 2, 2),
        in_target=probs > 0.5,
        oracle_probs=None,
        lambdas=None,
        seconds=0.0,
        inversion_seconds=0.0,
    )
    assert res.crossed_at.tolist() == [2, 0, -1, 1]
    assert repr(res) == (
        "TrajectoryResult(images=4, steps=3, frames=(4, 4, 1, 2, 2), success=3/4, "
        "oracle=no, localised=no, seconds=0.00)"
    )


def test_in_target_is_the_argmax_for_four_classes():
    """Logits (0, s, 0, 0) with target 1: the target is the most likely class as soon as
    s > 0, at probabilities from 1/4 up, so the frame at level 1/3 (s = log 1.5) is in the
    target at p < 0.5; crossed_at and success follow the argmax, not p > 0.5."""

    class FourClasses(LogisticClassifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = super().forward(x)[:, 1]
            zero = torch.zeros_like(s)
            return torch.stack([zero, s, zero, zero], 1)

    c = Case("gradient_ascent", classifier=FourClasses())
    res = c.explain()
    f = LogisticClassifier()
    s = (res.frames.flatten(2) @ f.w.detach() + f.b.detach()).view(B, T + 1)  # class 1 logit
    assert torch.equal(res.in_target, s > 0)
    assert bool(((res.probs < 0.5) & res.in_target).any())  # the case p > 0.5 got wrong
    assert torch.equal(res.success, s[:, -1] > 0)
    first = [int(torch.nonzero(row).min()) if bool(row.any()) else -1 for row in s > 0]
    assert res.crossed_at.tolist() == first


@pytest.mark.parametrize("name", ["gradient_ascent", "monotone_path_localised"])
def test_selecting_and_moving_sequences(name):
    c = Case(name)
    res = c.explain(latents=None)  # inverted: the inversion is selected too
    one = res[1]
    assert len(one) == 1 and torch.equal(one.frames, res.frames[1:2])
    assert torch.equal(one.probs, res.probs[1:2]) and torch.equal(one.levels, res.levels)
    assert torch.equal(one.inversion.latents, res.inversion.latents[1:2])
    if res.edit_masks is not None:
        assert torch.equal(one.edit_masks, res.edit_masks[1:2])
    last_two = res[torch.tensor([False, True, True])]
    assert torch.equal(last_two.latents, res.latents[1:]) and torch.equal(
        last_two.target, res[1:].target
    )
    assert torch.equal(res[[2, 0]].source, res.source[[2, 0]])
    assert torch.equal(res[-1].frames, res.frames[2:])
    with pytest.raises(IndexError, match="out of range for a result of 3"):
        res[3]
    with pytest.raises(IndexError, match="bool index must have shape"):
        res[torch.tensor([True, False])]
    wide = res.to(dtype=torch.float64)
    assert wide.frames.dtype == torch.float64 and wide.inversion.psnr.dtype == torch.float64
    assert wide.target.dtype == torch.int64 and wide.in_target.dtype == torch.bool
    assert torch.equal(wide.frames.float(), res.frames)
    assert res.cpu().frames.device.type == "cpu"


def test_sources_already_in_the_target_are_logged(caplog):
    c = Case("gradient_ascent")
    res = c.explain(target=0)  # every toy source starts well inside class 0
    assert bool(res.already_in_target.all())
    assert "3 of 3 paths start in the target class" in caplog.text
    assert "rows [0, 1, 2]" in caplog.text
    caplog.clear()
    assert not bool(c.explain(target=1).already_in_target.any())
    assert "start in the target" not in caplog.text
    from cfx.trajectory.notices import without_path_notices

    with without_path_notices():  # for callers that report these paths themselves
        assert bool(c.explain(target=0).already_in_target.all())
    assert "start in the target" not in caplog.text
    c.explain(target=0)  # the notice is back after the block
    assert "3 of 3 paths start in the target class" in caplog.text


def test_a_held_start_notice_costs_no_classifier_pass(caplog):
    """The notice's sources' verdicts cost a classifier pass over the whole input, which was
    spent (in every chunk, the shortcut audit and augment) even when the notice was dropped."""
    from types import SimpleNamespace

    from cfx.trajectory.notices import notify_starts, without_path_notices

    seen: list[int] = []

    def classifier(x):
        seen.append(x.shape[0])
        return torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], 1)

    explainer = SimpleNamespace(classifier=classifier, inversion_classifier_weight=0.0)
    first, x, target = torch.tensor([True, False]), torch.ones(2, 1, 2, 2), torch.tensor([1, 1])
    with caplog.at_level("WARNING"), without_path_notices():
        notify_starts(explainer, first, x, target, inverted=True)
    assert seen == [] and "start in the target" not in caplog.text
    notify_starts(explainer, first, x, target, inverted=True)  # outside the block: one pass
    assert seen == [2] and "rows [0]" in caplog.text


@pytest.mark.parametrize(
    ("name", "bars"),
    [
        ("gradient_ascent", ["gradient ascent"]),
        ("localised_ascent", ["global ascent", "region 12%"]),
        ("monotone_path", ["warm start", "monotone path"]),
        ("monotone_path_localised", ["global ascent", "region 12%", "monotone path"]),
    ],
)
def test_progress_bars_cover_every_stage_and_end_full(name, bars, capsys):
    c = Case(name)
    c.explainer.show_progress = True
    c.explain(latents=None)  # the inversion has its bar too
    err = capsys.readouterr().err
    for label in ["inverting", *bars]:
        assert f"{label}: 100%" in err, label
    # the last state of each bar reads n/n: none is left part-way as when it counted iterations
    finals = [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.strip()]
    assert all("100%" in line for line in finals), finals


def test_integers_of_every_kind_and_empty_selections_index_a_result():
    res = Case("gradient_ascent").explain()
    for index in (1, np.int64(1), torch.tensor(1), res.probs[:, 0].argmin().clone().fill_(1)):
        assert torch.equal(res[index].frames, res.frames[1:2]), type(index)
    assert len(res[[]]) == 0 and len(res[torch.zeros(B, dtype=torch.bool)]) == 0
    with pytest.raises(TypeError, match=r"got torch.float32 of shape \(2,\)"):
        res[torch.tensor([0.0, 1.0])]
    assert res.to(torch.float64).frames.dtype == torch.float64  # positional, as for tensors
    # res[0, -1] meant "image 0, last frame" and silently gave images 0 and 2
    with pytest.raises(TypeError, match=r"indexed by sequence only.*`res.frames\[i, t\]`"):
        res[0, -1]
    # res["frames"] failed in torch.as_tensor: "new(): invalid data type 'str'" (session 57)
    with pytest.raises(TypeError, match=r"got 'frames': its fields are attributes \(res.frames\)"):
        res["frames"]


@pytest.mark.parametrize("name", NAMES)
def test_models_that_are_not_models_are_named(name):
    """A generator without ``latent_shape`` gave ``AttributeError: 'Linear' object has no
    attribute 'latent_shape'``, and ``classifier=None`` ``'NoneType' object is not callable``."""
    good = Case(name)
    if not good.pixel:
        explainer = _make(name, nn.Linear(3, 16), LogisticClassifier())
        with pytest.raises(TypeError, match=r"`generator` must have `latent_shape`.*got Linear"):
            explainer.explain(good.x, 1)
    explainer = _make(name, good.g, None)
    with pytest.raises(TypeError, match=r"`classifier` must be a model or function.*NoneType"):
        explainer.explain(good.x, 1)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "pixel_space"])
def test_every_explainer_inverts_keeping_the_decision_when_asked(name):
    """``inversion_classifier_weight`` reaches :func:`cfx.invert` from each latent explainer
    (only GradientAscent's was tested), and each checks it."""
    from cfx.inversion import invert

    c = Case(name)
    c.explainer.inversion_steps = 20
    c.explainer.inversion_classifier_weight = 0.5
    # off the generator's range, so the pixel-optimal reconstruction changes the logits
    noise = torch.randn(c.x.shape, generator=torch.Generator().manual_seed(0))
    x = (c.x + 0.2 * noise).clamp(-1, 1)
    res = c.explain(x, latents=None)
    kept = invert(c.g, x, steps=20, classifier=c.f, classifier_weight=0.5).latents
    assert torch.equal(res.inversion.latents, kept)
    assert float((invert(c.g, x, steps=20).latents - kept).abs().max()) > 1e-3  # it acts
    c.explainer.inversion_classifier_weight = -1.0
    with pytest.raises(ValueError, match="`inversion_classifier_weight` must be"):
        c.explain(latents=None)
    c.explainer.inversion_classifier_weight, c.explainer.inversion_steps = 0.5, 0
    with pytest.raises(ValueError, match=r"it needs `inversion_steps` > 0, got 0"):
        c.explain(latents=None)


# --- the caller's autograd state --------------------------------------------------------------


@pytest.mark.parametrize("with_latents", [True, False], ids=["latents", "inverted"])
def test_same_frames_under_the_callers_no_grad(case, with_latents):
    """Under ``torch.no_grad()`` (how many users wrap "inference"), PyTorch's "element 0 of
    tensors does not require grad" came from deep inside the optimisation."""
    latents = "default" if with_latents else None
    expected = case.explain(latents=latents)
    with torch.no_grad():
        res = case.explain(latents=latents)
    assert torch.equal(res.frames, expected.frames)
    assert torch.equal(res.probs, expected.probs)


def test_inference_mode_is_named(case):
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"torch\.inference_mode\(\)"):
        case.explain()


def test_images_with_an_autograd_graph_are_used_as_values(case):
    """x from a model's output (non-leaf, requires_grad): the explainer's own backward passes
    ran into x's graph ("backward through the graph a second time") or filled a leaf's .grad;
    the result's source must hold the values only."""
    expected = case.explain()
    w = torch.ones((), requires_grad=True)
    x = case.x * w  # non-leaf, in a graph
    res = case.explain(x=x)
    assert torch.equal(res.frames, expected.frames)
    assert not res.source.requires_grad and not res.frames.requires_grad
    assert w.grad is None
    leaf = case.x.clone().requires_grad_(True)
    res = case.explain(x=leaf)
    assert leaf.grad is None and not res.source.requires_grad
    assert torch.equal(res.probs, expected.probs)


def test_end_notice_names_missed_paths_and_those_short_of_the_margin(caplog):
    """Margin 0.99: log-odds 4.595, so 'short' is below 4.595 - 0.25 = 4.345 (p = 0.9872).
    p = 0.989 (4.50) is a hair under the margin and not named; 0.98 (3.89) and 0.6 are."""
    from cfx.trajectory.notices import end_notice

    in_target = torch.tensor([True, True, True, False, True])
    probs = torch.tensor([0.995, 0.989, 0.98, 0.3, 0.6])
    with caplog.at_level("WARNING"):
        end_notice(in_target, probs, 0.99)
    assert "1 of 5 paths end outside the target class (rows [3])" in caplog.text
    assert "2 of 5 paths end in the target class but short of the margin 0.99" in caplog.text
    assert "probabilities down to 0.6; rows [2, 4]" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        end_notice(in_target, probs, None)  # no margin: only the missed paths
        end_notice(torch.ones(2, dtype=torch.bool), torch.tensor([0.99, 0.999]), 0.99)
    assert "short of the margin" not in caplog.text
    assert caplog.text.count("end outside") == 1


@pytest.mark.parametrize("name", NAMES)
def test_paths_that_cannot_reach_the_target_are_named_once(name, caplog):
    """A classifier blind to its input (w = 0, class 0 by 5 log-odds) cannot be flipped: the
    library said nothing (success flags only); explain_in_chunks in chunks of 2 names the
    rows of the whole input, once."""
    from cfx.trajectory import explain_in_chunks

    blind = LogisticClassifier()
    with torch.no_grad():
        blind.w.zero_()
        blind.b.fill_(-5.0)
    c = Case(name, classifier=blind)
    with caplog.at_level("WARNING"):
        res = c.explain()
    assert not bool(res.success.any())
    assert caplog.text.count("3 of 3 paths end outside the target class (rows [0, 1, 2])") == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        explain_in_chunks(c.explainer, c.x, 1, batch_size=2)
    assert caplog.text.count("end outside the target class") == 1
    assert "3 of 3 paths end outside the target class (rows [0, 1, 2])" in caplog.text


def test_images_and_latents_made_under_inference_mode_are_taken(case):
    """Tensors a caller made under torch.inference_mode() (a preprocessing step, a data
    loader) cannot be saved for backward outside it: the explainer must work on a copy of
    their values and give the same frames as for ordinary tensors."""
    expected = case.explain()
    with torch.inference_mode():
        x, latents = case.x.clone(), case.latents.clone()
    assert x.is_inference() and latents.is_inference()  # the premise
    res = case.explain(x=x, latents=latents)
    assert torch.equal(res.frames, expected.frames)
    assert torch.equal(res.probs, expected.probs)


def test_without_path_notices_holds_the_end_notice_too(caplog):
    """Active learning walks every path whatever its end and the shortcut audit reports the
    paths itself: within without_path_notices() the 'end outside the target class' notice
    must be held as the start notice is, and be back after the block."""
    from cfx.trajectory.notices import without_path_notices

    blind = LogisticClassifier()
    with torch.no_grad():
        blind.w.zero_()
        blind.b.fill_(-5.0)  # class 0 by 5 log-odds whatever the image: no path can cross
    c = Case("gradient_ascent", classifier=blind)
    with caplog.at_level("WARNING"), without_path_notices():
        assert not bool(c.explain().success.any())
    assert "end outside the target class" not in caplog.text
    with caplog.at_level("WARNING"):
        c.explain()
    assert "3 of 3 paths end outside the target class (rows [0, 1, 2])" in caplog.text


def test_a_target_that_is_every_sources_own_class_is_pointed_out(caplog):
    """Every source already in the target: all paths 'succeed' at frame 0, and the notice
    said only that they exaggerate; the likely mistake is the target itself, or a classifier
    that misreads the images (it blamed --target for built-in slices cfx chose from the
    other class, which an untrained classifier called the target: a user audit)."""
    from cfx.trajectory.notices import start_notice

    with caplog.at_level("WARNING"):
        start_notice(torch.tensor([True, True]), torch.tensor([True, True]))
    assert "2 of 2 paths start in the target class" in caplog.text
    assert (
        "the classifier puts every source image itself in the target class: either `target` "
        "names the images' own class" in caplog.text
    )
    assert "or the classifier misreads these images" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # one source outside: not a wrong target
        start_notice(torch.tensor([True, False]), torch.tensor([True, False]))
    assert "every source image" not in caplog.text


def test_paths_short_at_a_sigmoids_ceiling_name_the_probability_wrapper(caplog):
    """A sigmoid's output wrapped as a logit (TwoLogits' default) caps class 1 at
    sigmoid(1) = 0.731: the notice advised a longer walk, which cannot help."""
    from cfx.trajectory.notices import end_notice

    with caplog.at_level("WARNING"):
        end_notice(torch.tensor([True, True]), torch.tensor([0.7305, 0.72]), 0.99)
    assert "0.731 = sigmoid(1), the ceiling of a probability taken for a logit" in caplog.text
    assert "outputs='probability'" in caplog.text
    # a softmax's two outputs read as logits end there too: drop the softmax, and a longer
    # walk (offered as the other way) cannot pass it (session-54 imaging audit)
    assert "if the classifier ends in a softmax, give cfx the logits before it" in caplog.text
    assert "which no longer walk passes" in caplog.text and "goes further" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # one above the ceiling: an ordinary short walk
        end_notice(torch.tensor([True, True]), torch.tensor([0.7305, 0.9]), 0.99)
    assert "sigmoid(1)" not in caplog.text and "a longer walk" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # far under the ceiling: a walk cut short, no sigmoid
        end_notice(torch.tensor([True, True]), torch.tensor([0.6, 0.65]), 0.99)
    assert "sigmoid(1)" not in caplog.text and "a longer walk" in caplog.text


def test_start_notice_names_apart_the_rows_whose_inversion_lost_the_decision(caplog):
    """Rows 0 and 1 start in the target; the classifier puts source 0 there itself (the path
    only exaggerates it) but not source 1: row 1 alone is the inversion's loss, and the
    remedy fits the inversion weight (0: turn it on; > 0: raise it; latents passed by the
    caller: invert with the classifier)."""
    from cfx.trajectory.notices import start_notice, start_remedy

    first = torch.tensor([True, True, False])
    source = torch.tensor([True, False, False])
    with caplog.at_level("WARNING"):
        start_notice(first, source, remedy=start_remedy(0.0, inverted=True))
    assert "2 of 3 paths start in the target class" in caplog.text
    assert "rows [0, 1])" in caplog.text
    assert "target on rows [1]: the inversion lost what it saw there" in caplog.text
    assert "`inversion_classifier_weight=0.01` (CLI" in caplog.text
    raise_it = start_remedy(0.05, inverted=True)
    assert "a larger `inversion_classifier_weight` (now 0.05)" in raise_it
    assert "cfx.invert(" in start_remedy(0.0, inverted=False)
    assert "cfx.invert(" in start_remedy(0.05, inverted=False)
