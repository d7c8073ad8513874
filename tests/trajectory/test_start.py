"""Where every trajectory explainer starts (cfx/trajectory/start.py), called directly.

The checks it makes on each explainer's inputs are in ``test_contract.py``.
"""

import logging
from types import SimpleNamespace

import pytest
import torch

from cfx.calls import frozen
from cfx.inversion import unit_range_notice
from cfx.trajectory.start import start
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


def _explainer(generator, classifier, *, oracle=None, inversion_steps=0):
    """What `start` reads of an explainer: its models and inversion settings."""
    return SimpleNamespace(
        generator=generator,
        classifier=classifier,
        oracle=oracle,
        inversion_steps=inversion_steps,
        inversion_classifier_weight=0.0,
        show_progress=False,
    )


def test_unit_range_notice_fires_for_images_whose_darkest_pixel_is_exactly_zero(caplog):
    # a [0, 1] image almost always has a black pixel at exactly 0: "no pixel below 0" holds
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 2, 2)
    with caplog.at_level(logging.WARNING):
        unit_range_notice(x)
    assert "no pixel of the 1 input image is below 0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        unit_range_notice(x - 1e-3)  # one pixel below 0: silent
    assert caplog.text == ""


def test_given_latents_are_detached_and_cast_to_the_images_dtype():
    g, f = LinearGenerator(), LogisticClassifier()
    explainer = _explainer(g, f)
    x = -torch.ones(2, 1, 4, 4)
    z = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    with frozen(g, f):
        s = start(explainer, x, 1, z)
    assert s.latents.dtype == torch.float32
    assert not s.latents.requires_grad
    assert s.inversion is None and s.seconds == 0.0


def test_a_failing_classifier_is_not_blamed_on_the_oracles_dtype():
    """The classifier, built for other images, failed; the message named the oracle's
    float64 weights (a model that casts its inputs itself, so no cause at all)."""

    class Casting(LogisticClassifier):
        def forward(self, x):
            return super().forward(x.to(self.w.dtype)).float()

    # the classifier is built for 8 pixels; the images have 16
    explainer = _explainer(LinearGenerator(), torch.nn.Linear(8, 2), oracle=Casting().double())
    x = -torch.ones(2, 1, 4, 4)
    models = (explainer.generator, explainer.classifier, explainer.oracle)
    failed = r"the classifier failed on the generator's images"
    with frozen(*models), pytest.raises(ValueError, match=failed):
        start(explainer, x, 1, torch.zeros(2, 3))


def test_errors_on_the_probe_do_not_describe_it_as_the_users_batch():
    """With a batch of 3 the error read "returns one logit per image, shape (1, 1)": the
    shape of cfx's one-image probe, not of anything the user passed."""
    explainer = _explainer(LinearGenerator(), lambda im: im.flatten(1)[:, :1])
    x = -torch.ones(3, 1, 4, 4)
    probe = r"on the generator's image of the zero latent \(a check before the work\), "
    with pytest.raises(ValueError, match=probe + r"`classifier` returned shape \(1, 1\)"):
        start(explainer, x, 1, torch.zeros(3, 3))


def test_a_classifier_trained_at_another_size_is_named_in_python_too(caplog):
    """Only the command line compared a model's recorded training size with the frames';
    a Python user explaining a 32x32 classifier on 4x4 frames was told nothing."""
    g, f = LinearGenerator(), LogisticClassifier()
    f.config = SimpleNamespace(image_size=(32, 32))
    explainer = _explainer(g, f)
    with frozen(g, f), caplog.at_level("WARNING"):
        start(explainer, -torch.ones(2, 1, 4, 4), 1, torch.zeros(2, 3))
    assert (
        "the classifier was trained on 32x32 images (width x height) and is given 4x4 images "
        "(the generator's)" in caplog.text
    )
    caplog.clear()
    f.config = SimpleNamespace(image_size=(4, 4))
    with frozen(g, f), caplog.at_level("WARNING"):
        start(explainer, -torch.ones(2, 1, 4, 4), 1, torch.zeros(2, 3))
    assert "was trained on" not in caplog.text


def test_the_classifier_passed_as_its_own_oracle_is_named(caplog):
    g, f = LinearGenerator(), LogisticClassifier()
    explainer = _explainer(g, f, oracle=f)
    with frozen(g, f), caplog.at_level("WARNING"):
        start(explainer, -torch.ones(2, 1, 4, 4), 1, torch.zeros(2, 3))
    assert "`oracle` is the classifier being explained (`classifier`)" in caplog.text
    caplog.clear()
    explainer.oracle = LogisticClassifier(seed=4)
    with frozen(g, f), caplog.at_level("WARNING"):
        start(explainer, -torch.ones(2, 1, 4, 4), 1, torch.zeros(2, 3))
    assert "being explained" not in caplog.text


def test_a_dtype_mismatch_among_the_models_is_named_whole():
    """A float64 classifier with a float32 generator: the error said to convert the images
    to float64, after which the generator failed (and to float32 the other way round)."""
    g, f = LinearGenerator(), LogisticClassifier().double()
    explainer = _explainer(g, f)
    for x in (-torch.ones(2, 1, 4, 4), -torch.ones(2, 1, 4, 4, dtype=torch.float64)):
        with frozen(g, f), pytest.raises(TypeError, match=r"differ among themselves \(the gen"):
            start(explainer, x, 1, torch.zeros(2, 3, dtype=x.dtype))


def test_an_oracle_trained_at_another_size_is_named_by_its_own_record(caplog):
    """Each model's own config is read: an oracle recorded at 32x32 next to a classifier
    without a record is named as the oracle, and the classifier is not."""
    g, f, oracle = LinearGenerator(), LogisticClassifier(), LogisticClassifier(seed=4)
    oracle.config = SimpleNamespace(image_size=(32, 32))
    explainer = _explainer(g, f, oracle=oracle)
    with frozen(g, f, oracle), caplog.at_level("WARNING"):
        start(explainer, -torch.ones(2, 1, 4, 4), 1, torch.zeros(2, 3))
    assert "the oracle was trained on 32x32 images" in caplog.text
    assert "the classifier was trained on" not in caplog.text


def test_unit_range_images_are_noticed_once_when_they_are_inverted(caplog):
    """The start checks the images' range and so does the inversion it runs: [0, 1] images
    were told twice that no pixel is below 0."""
    g, f = LinearGenerator(), LogisticClassifier()
    explainer = _explainer(g, f, inversion_steps=2)
    unit = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))  # in [0, 1]
    with frozen(g, f), caplog.at_level("WARNING"):
        begun = start(explainer, unit, 1)
    assert begun.inversion is not None  # the premise: the images were inverted
    assert caplog.text.count("no pixel of the 2 input images is below 0") == 1


def test_a_generator_missing_the_protocol_is_told_so_whatever_its_dtype():
    """A float64 module without `decode` given float32 images: the error named the dtypes,
    and after converting the user met the real problem, the missing protocol."""
    g, f = torch.nn.Linear(3, 16).double(), LogisticClassifier()
    explainer = _explainer(g, f)
    with frozen(g, f), pytest.raises(TypeError, match=r"missing `latent_shape` and `decode`"):
        start(explainer, -torch.ones(2, 1, 4, 4), 1, torch.zeros(2, 3))
