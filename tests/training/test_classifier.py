import math

import pytest
import torch
from torch import nn

import cfx.training.classifier as classifier_module
from cfx.data.brain import make_dataset
from cfx.models.classifiers import (
    BrainCNN,
    BrainCNNConfig,
    BrainSegmenter,
    BrainSegmenterConfig,
)
from cfx.training.classifier import (
    ClassifierTrainingConfig,
    dice_score,
    evaluate_classifier,
    evaluate_segmenter,
    train_classifier,
)


@pytest.fixture(scope="module")
def slices():
    """512 tagged slices; the marker is independent of the lesion (tag_correlation=0.5)."""
    d = make_dataset(512, seed=11, tagged=True, tag_correlation=0.5)
    return d.subset(slice(0, 256)), d.subset(slice(256, 512))


# --- dice_score ---------------------------------------------------------------------------------


def _logits(mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, 4.0, -4.0)


def test_dice_known_answers():
    a = torch.zeros(5, 1, 8, 8, dtype=torch.bool)
    b = torch.zeros_like(a)
    a[0, 0, :2, :2] = True  # 0: identical
    b[0, 0, :2, :2] = True
    a[1, 0, 0, :3] = True  # 1: disjoint
    b[1, 0, 5, :3] = True
    # 2: both empty
    b[3, 0, 2, 2] = True  # 3: nothing predicted, something to find
    a[4, 0, 0, :4] = True  # 4: 4 predicted, 2 true, 1 shared -> 2 * 1 / (4 + 2)
    b[4, 0, 0, 3:5] = True
    got = dice_score(_logits(a), b)
    torch.testing.assert_close(got, torch.tensor([1.0, 0.0, 1.0, 0.0, 1 / 3]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(dice_score(_logits(a), b.float()), got)  # {0, 1} floats work too


def test_dice_thresholds_at_probability_half():
    masks = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    logits = torch.tensor([[[[0.1, 0.1], [0.0, -0.1]]]])  # logit 0 is not "in the mask"
    torch.testing.assert_close(dice_score(logits, masks), torch.tensor([2 * 2 / (2 + 4)]))


def test_dice_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="`mask_logits` and `masks` must have the same shape"):
        dice_score(torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8))


# --- evaluation ---------------------------------------------------------------------------------


class _Brightness(nn.Module):
    """Predicts class 1 for images brighter than 0 on average."""

    def forward(self, x):
        m = x.mean((1, 2, 3))
        return torch.stack([-m, m], dim=1)


def test_evaluate_classifier_known_accuracy_and_restores_mode():
    images = torch.cat([torch.full((4, 1, 8, 8), 0.5), torch.full((4, 1, 8, 8), -0.5)])
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0])  # one bright image labelled 0
    model = _Brightness().train()
    assert evaluate_classifier(model, images, labels, batch_size=3) == pytest.approx(7 / 8)
    assert model.training
    # a submodule kept in eval mode under a training parent (a frozen BatchNorm when
    # fine-tuning) stays so: model.train(True) switched it back on
    net = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(64), nn.Linear(64, 2)).train()
    net[1].eval()
    evaluate_classifier(net, images, labels)
    assert net.training and net[2].training and not net[1].training


def test_evaluate_segmenter_known_dice():
    class Threshold(nn.Module):
        def forward(self, x):
            return x * 10

    images = torch.full((2, 1, 4, 4), -0.5)
    images[:, :, :2] = 0.5  # top half bright
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[0, :, :2] = True  # exact
    masks[1, :, :1] = True  # half of the prediction: 2 * 4 / (8 + 4)
    assert evaluate_segmenter(Threshold(), images, masks) == pytest.approx((1 + 2 / 3) / 2)


# --- training: it learns ------------------------------------------------------------------------


def test_classifier_learns_the_scanner_marker(slices, tmp_path):
    train, test = slices
    model = BrainCNN(BrainCNNConfig(width=8))
    assert evaluate_classifier(model, test.images, test.tags.long()) < 0.8  # untrained
    config = ClassifierTrainingConfig(epochs=8, batch_size=32, lr=2e-3, seed=0)
    model, report = train_classifier(
        model,
        train.images,
        train.tags.long(),
        tmp_path,
        config,
        val=(test.images, test.tags.long()),
        show_progress=False,
    )
    assert not model.training
    acc = evaluate_classifier(model, test.images, test.tags.long())
    assert acc >= 0.95  # held-out slices, never seen in training
    assert report.history[-1]["val_acc"] == pytest.approx(acc)
    assert report.steps == 8 * 8 and len(report.history) == 8
    assert report.history[-1]["loss"] < report.history[0]["loss"]
    # it learned the marker, which is independent of the lesion: lesions stay at chance
    assert abs(evaluate_classifier(model, test.images, test.labels) - 0.5) < 0.1


def test_segmenter_learns_the_brain_mask(slices, tmp_path):
    train, test = slices
    config = ClassifierTrainingConfig(epochs=4, batch_size=32, lr=5e-3, seed=0)
    model, report = train_classifier(
        BrainSegmenter(BrainSegmenterConfig(width=8)),
        train.images,
        train.brain_masks,
        tmp_path,
        config,
        task="segment",
        show_progress=False,
    )
    everything = torch.ones_like(test.brain_masks)
    baseline = float(dice_score(_logits(everything), test.brain_masks).mean())
    assert baseline < 0.6  # "all brain" is not good enough
    assert evaluate_segmenter(model, test.images, test.brain_masks) > 0.9
    assert set(report.history[-1]) == {"epoch", "step", "lr", "loss", "train_dice"}


def test_training_never_touches_the_global_rng(slices, tmp_path):
    train, _ = slices
    model = BrainCNN(BrainCNNConfig(width=4))  # (constructing nn layers draws from it)
    before = torch.random.get_rng_state()
    config = ClassifierTrainingConfig(epochs=1, batch_size=64)
    train_classifier(
        model,
        train.images,
        train.labels,
        tmp_path,
        config,
        show_progress=False,
    )
    assert torch.equal(torch.random.get_rng_state(), before)


# --- training: resumable ------------------------------------------------------------------------


class _Interrupted(Exception):
    pass


def _crash_after_checkpoint(monkeypatch, at_step):
    """Make the loop die right after it writes the checkpoint of ``at_step`` (like a kill)."""
    real = classifier_module.save_checkpoint

    def save(path, **kwargs):
        real(path, **kwargs)
        if kwargs["state"]["step"] == at_step:
            raise _Interrupted

    monkeypatch.setattr(classifier_module, "save_checkpoint", save)


def _run(task, data, out, config):
    images, targets, val = data
    if task == "classify":
        model = BrainCNN(BrainCNNConfig(width=4))
    else:
        model = BrainSegmenter(BrainSegmenterConfig(width=4))
    return train_classifier(
        model, images, targets, out, config, task=task, val=val, show_progress=False
    )


@pytest.mark.parametrize("task", ["classify", "segment"])
def test_resumed_run_ends_with_identical_weights(slices, task, tmp_path, monkeypatch):
    train, test = slices
    n = 96 if task == "classify" else 40
    targets = train.labels[:n] if task == "classify" else train.masks[:n]
    val_targets = test.labels[:32] if task == "classify" else test.masks[:32]
    data = (train.images[:n], targets, (test.images[:32], val_targets))
    # 6 (classify) or 3 (segment) steps per epoch; the crash at step 8 falls mid-epoch
    config = ClassifierTrainingConfig(epochs=3, batch_size=16, checkpoint_every=4, seed=5)

    whole, whole_report = _run(task, data, tmp_path / "whole", config)

    _crash_after_checkpoint(monkeypatch, at_step=8)
    with pytest.raises(_Interrupted):
        _run(task, data, tmp_path / "split", config)
    monkeypatch.undo()
    resumed, resumed_report = _run(task, data, tmp_path / "split", config)

    assert whole_report.steps == resumed_report.steps == 3 * (n // 16 + (n % 16 > 0))
    whole_state, resumed_state = whole.state_dict(), resumed.state_dict()
    assert whole_state.keys() == resumed_state.keys()
    for key, value in whole_state.items():
        assert torch.equal(value, resumed_state[key]), key
    assert whole_report.history == resumed_report.history

    # a finished run is not trained further when called again
    again, again_report = _run(task, data, tmp_path / "split", config)
    for key, value in whole_state.items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert again_report.history == whole_report.history


def _ctrl_c_during(monkeypatch, module, name, call):
    """Press Ctrl-C (a real SIGINT) inside the ``call``-th call of ``module.name``."""
    import signal

    real, calls = getattr(module, name), []

    def pressed(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, pressed)


def test_ctrl_c_saves_the_step_it_arrived_in_and_resumes_exactly(slices, tmp_path, monkeypatch):
    """Ctrl-C kept only the last periodic checkpoint (step 4 here): the steps since were lost
    (up to 200 by default), and a run stopped before its first checkpoint left nothing."""
    train, test = slices
    data = (train.images[:96], train.labels[:96], (test.images[:32], test.labels[:32]))
    config = ClassifierTrainingConfig(epochs=2, batch_size=16, checkpoint_every=4, seed=5)
    whole, whole_report = _run("classify", data, tmp_path / "whole", config)

    _ctrl_c_during(monkeypatch, classifier_module, "_augment", call=7)  # inside step 7
    with pytest.raises(KeyboardInterrupt):
        _run("classify", data, tmp_path / "split", config)
    monkeypatch.undo()
    from cfx.training.checkpoint import load_checkpoint

    saved = load_checkpoint(
        tmp_path / "split" / "checkpoint.safetensors",
        modules={"model": BrainCNN(BrainCNNConfig(width=4))},
        optimizers={},
        generators={},
    )
    assert saved["step"] == 7  # the step finished, then saved
    resumed, report = _run("classify", data, tmp_path / "split", config)
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert report.history == whole_report.history


def test_resuming_with_other_settings_is_refused(slices, tmp_path):
    train, _ = slices
    data = (train.images[:32], train.labels[:32], None)
    _run("classify", data, tmp_path, ClassifierTrainingConfig(epochs=1, batch_size=16))
    with pytest.raises(ValueError, match="holds a checkpoint of a different run"):
        _run("classify", data, tmp_path, ClassifierTrainingConfig(epochs=2, batch_size=16))
    with pytest.raises(ValueError, match="holds a checkpoint of a different run"):
        train_classifier(
            BrainCNN(BrainCNNConfig(width=8)),
            data[0],
            data[1],
            tmp_path,
            ClassifierTrainingConfig(epochs=1, batch_size=16),
            show_progress=False,
        )
    flipped = (data[0], 1 - data[1], None)  # the same number of images, other labels
    with pytest.raises(ValueError, match=r"different run.*\(the training images or labels\)"):
        _run("classify", flipped, tmp_path, ClassifierTrainingConfig(epochs=1, batch_size=16))
    with pytest.raises(ValueError, match=r"different run.*epochs: 1 before, 2 now"):
        _run("classify", data, tmp_path, ClassifierTrainingConfig(epochs=2, batch_size=16))
    # a checkpoint written before data digests resumes (the settings still checked)
    from tests.training.legacy import rewrite_state

    ckpt = tmp_path / "checkpoint.safetensors"
    rewrite_state(ckpt, lambda state: state["fingerprint"].pop("data_sha256", None))
    _run("classify", data, tmp_path, ClassifierTrainingConfig(epochs=1, batch_size=16))
    rewrite_state(ckpt, lambda state: state["fingerprint"].pop("data_sha256", None))
    with pytest.raises(ValueError, match=r"epochs: 1 before, 2 now"):
        _run("classify", data, tmp_path, ClassifierTrainingConfig(epochs=2, batch_size=16))
    # the checkpoint interval may change between runs
    _run(
        "classify",
        data,
        tmp_path,
        ClassifierTrainingConfig(epochs=1, batch_size=16, checkpoint_every=1),
    )


def test_resuming_with_other_validation_data_is_refused(slices, tmp_path):
    """A resume with another validation set (or none) was accepted, and the history's val_acc
    then came from two sets. A checkpoint written before the validation digest resumes."""
    train, test = slices
    config = ClassifierTrainingConfig(epochs=1, batch_size=16)
    val_a = (test.images[:16], test.labels[:16])
    val_b = (test.images[16:32], test.labels[16:32])
    _run("classify", (train.images[:32], train.labels[:32], val_a), tmp_path, config)
    for other in (val_b, None):
        with pytest.raises(ValueError, match=r"different run.*\(the validation images or labels"):
            _run("classify", (train.images[:32], train.labels[:32], other), tmp_path, config)
    _run("classify", (train.images[:32], train.labels[:32], val_a), tmp_path, config)  # same
    from tests.training.legacy import rewrite_state

    ckpt = tmp_path / "checkpoint.safetensors"
    rewrite_state(ckpt, lambda state: state["fingerprint"].pop("val_sha256", None))
    _run("classify", (train.images[:32], train.labels[:32], val_b), tmp_path, config)


# --- bad arguments ------------------------------------------------------------------------------


def _train(tmp_path, images, targets, **kwargs):
    return train_classifier(
        BrainCNN(BrainCNNConfig(width=4)),
        images,
        targets,
        tmp_path,
        ClassifierTrainingConfig(epochs=1),
        show_progress=False,
        **kwargs,
    )


def test_bad_arguments_are_clear_errors(slices, tmp_path):
    train, _ = slices
    x, y = train.images[:8], train.labels[:8]
    with pytest.raises(ValueError, match=r"`images` must have shape \(B, C, H, W\)"):
        _train(tmp_path, x[:, 0], y)
    with pytest.raises(ValueError, match=r"`images` must have values in \[-1, 1\]"):
        _train(tmp_path, x * 3, y)
    with pytest.raises(ValueError, match=r"`targets` must have shape \(8,\) .* got \(7,\)"):
        _train(tmp_path, x, y[:7])
    with pytest.raises(TypeError, match="`targets` must hold integer class indices"):
        _train(tmp_path, x, y.float())
    with pytest.raises(ValueError, match="below the model's 2 outputs, got max 2"):
        _train(tmp_path, x, y + 1)
    with pytest.raises(ValueError, match="`task` must be 'classify' or 'segment', got 'regress'"):
        _train(tmp_path, x, y, task="regress")
    with pytest.raises(ValueError, match=r"`targets` must have shape \(8, 1, 64, 64\)"):
        _train(tmp_path, x, y, task="segment")
    with pytest.raises(ValueError, match="task 'segment' needs a model returning mask logits"):
        _train(tmp_path, x, train.masks[:8], task="segment")
    with pytest.raises(ValueError, match=r"task 'classify' needs a model returning logits"):
        train_classifier(
            BrainSegmenter(BrainSegmenterConfig(width=4)), x, y, tmp_path, show_progress=False
        )
    with pytest.raises(ValueError, match=r"`val\[1\]` must have shape \(4,\)"):
        _train(tmp_path, x, y, val=(x[:4], y[:3]))
    with pytest.raises(TypeError, match="`val` must be a tuple"):
        _train(tmp_path, x, y, val=x)
    # a 3-channel batch for a grey model met PyTorch's conv error and left `out` made
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match=r"`images` must have the 1 channels `model` was made"):
        train_classifier(
            BrainCNN(BrainCNNConfig(width=4)), x.repeat(1, 3, 1, 1), y, fresh, show_progress=False
        )
    assert not fresh.exists()
    frozen_model = BrainCNN(BrainCNNConfig(width=4)).requires_grad_(False)
    with pytest.raises(ValueError, match="`model` must have trainable parameters"):
        train_classifier(frozen_model, x, y, tmp_path, show_progress=False)
    assert not (tmp_path / "checkpoint.safetensors").exists()  # nothing written on bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "`epochs` must be an int >= 1, got 0"),
        ({"lr": -1.0}, r"`lr` must be a number in \(0, inf\), got -1.0"),
        ({"lr": math.inf}, r"`lr` must be a number in \(0, inf\), got inf"),  # a NaN model
        ({"weight_decay": math.nan}, r"`weight_decay` must be a number in \[0, inf\), got nan"),
        ({"warmup": 1.0}, r"`warmup` must be a number in \[0, 1\), got 1.0"),
        ({"max_shift": -1}, "`max_shift` must be an int >= 0, got -1"),
        ({"blur": -0.5}, r"`blur` must be a number in \[0, 3\], got -0.5"),
        ({"noise": 0.6}, r"`noise` must be a number in \[0, 0.5\], got 0.6"),
        ({"seed": 2**64}, r"`seed` must be an int in \[0, 2\*\*64\), got 18446744073709551616"),
        ({"augment": False, "noise": 0.1}, r"`blur` \(0.0\) and `noise` \(0.1\) are augment"),
    ],
)
def test_bad_training_config_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassifierTrainingConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # each was accepted and ran otherwise: a truthy string kept augmenting or reset weights
        ({"augment": "no"}, "`augment` must be True or False, got 'no'"),
        ({"reset_parameters": "False"}, "`reset_parameters` must be True or False, got 'False'"),
        ({"max_shift": True}, "`max_shift` must be an int >= 0, got True"),
        # each failed comparing a str with a number, naming no setting
        ({"warmup": "0.1"}, r"`warmup` must be a number in \[0, 1\), got '0.1'"),
        ({"intensity_jitter": "0"}, "`intensity_jitter` must be a number"),
        ({"blur": "1"}, "`blur` must be a number"),
        ({"noise": None}, "`noise` must be a number"),
        ({"seed": 1.5}, r"`seed` must be an int in \[0, 2\*\*64\), got 1.5"),  # the range too
    ],
)
def test_training_config_settings_of_another_type_are_named(kwargs, message):
    with pytest.raises(TypeError, match=message):
        ClassifierTrainingConfig(**kwargs)


def test_counts_are_whole_numbers_and_numpy_ints_are_kept_as_ints():
    """A float count is a type error like everywhere else in cfx; a numpy int (a sweep over
    np.arange) was refused as "must be a positive int" and now becomes an int, which the
    checkpoint's JSON fingerprint can hold."""
    import numpy as np

    with pytest.raises(TypeError, match=r"`batch_size` must be an int >= 1, got 2\.0"):
        ClassifierTrainingConfig(batch_size=2.0)
    cfg = ClassifierTrainingConfig(epochs=np.int64(3), seed=np.int64(7))
    assert cfg.epochs == 3 and type(cfg.epochs) is int
    assert cfg.seed == 7 and type(cfg.seed) is int  # a seed sweep over np.arange
    cfg = ClassifierTrainingConfig(max_shift=np.int64(2), warmup=np.float32(0.25))
    assert cfg.max_shift == 2 and type(cfg.max_shift) is int  # refused before
    assert cfg.warmup == 0.25 and type(cfg.warmup) is float  # JSON holds it
    assert ClassifierTrainingConfig(augment=np.bool_(False)).augment is False


def test_gaussian_blur_has_the_requested_width_per_image():
    # a unit impulse blurred with sigma s spreads with variance s^2 along each axis and keeps
    # its mass; sigma 0 leaves the image as it was
    u = torch.zeros(3, 1, 33, 33)
    u[:, :, 16, 16] = 1.0
    sigma = torch.tensor([0.0, 1.0, 2.0])
    out = classifier_module._gaussian_blur(u, sigma)
    assert torch.allclose(out[0], u[0], atol=1e-6)
    coords = torch.arange(33.0) - 16
    for i, s in enumerate(sigma.tolist()):
        assert float(out[i].sum()) == pytest.approx(1.0, abs=1e-5)
        var_x = float((out[i, 0].sum(0) * coords**2).sum())
        var_y = float((out[i, 0].sum(1) * coords**2).sum())
        assert var_x == pytest.approx(s**2, rel=0.01, abs=1e-4)
        assert var_y == pytest.approx(s**2, rel=0.01, abs=1e-4)


def test_acquisition_augmentation_blurs_and_adds_noise():
    x = make_dataset(8, seed=0).images
    gen = torch.Generator().manual_seed(0)
    plain = ClassifierTrainingConfig(max_shift=0, intensity_jitter=0.0)
    same, _ = classifier_module._augment(plain, x, None, gen)
    assert torch.equal(same, x)

    def roughness(img):  # mean absolute difference of horizontal neighbours
        return float((img[..., 1:] - img[..., :-1]).abs().mean())

    blurred, _ = classifier_module._augment(
        ClassifierTrainingConfig(max_shift=0, intensity_jitter=0.0, blur=2.0), x, None, gen
    )
    assert roughness(blurred) < 0.8 * roughness(x)
    noisy, _ = classifier_module._augment(
        ClassifierTrainingConfig(max_shift=0, intensity_jitter=0.0, noise=0.2), x, None, gen
    )
    assert roughness(noisy) > 1.5 * roughness(x)
    assert float(noisy.min()) >= -1.0 and float(noisy.max()) <= 1.0


def test_a_loss_that_turns_nan_stops_the_run(slices, tmp_path, monkeypatch):
    """lr=inf trained a NaN model that exited 0: a loss that is no finite number stops it."""
    from cfx.errors import DivergedError

    train, _ = slices
    real, calls = classifier_module._loss, []

    def turns_nan(task, out, y, weight=None):
        calls.append(1)
        loss, score = real(task, out, y, weight)
        return (loss * math.nan if len(calls) >= 3 else loss), score

    monkeypatch.setattr(classifier_module, "_loss", turns_nan)
    config = ClassifierTrainingConfig(epochs=1, batch_size=64)
    with pytest.raises(DivergedError, match="the training loss is nan at step 3"):
        train_classifier(
            BrainCNN(BrainCNNConfig(width=4)),
            train.images,
            train.labels,
            tmp_path,
            config,
            show_progress=False,
        )


def test_a_last_update_that_breaks_the_model_is_caught(slices, tmp_path):
    """The loss is checked before its update: a run whose last step made the model's output
    overflow (lr 3e37, one step) ended normally with a NaN model (session 47 review)."""
    from cfx.errors import DivergedError

    train, _ = slices
    config = ClassifierTrainingConfig(epochs=1, batch_size=8, lr=3e37, warmup=0.0)
    with pytest.raises(DivergedError, match="the model is no longer finite after step 1"):
        train_classifier(
            BrainCNN(BrainCNNConfig(width=4)),
            train.images[:8],
            train.labels[:8],
            tmp_path,
            config,
            show_progress=False,
        )
    assert not (tmp_path / "checkpoint.safetensors").exists()  # none of the broken model


# --- class balance ------------------------------------------------------------------------------


def _linear_run(out, images, labels, cfg, **kwargs):
    """``train_classifier`` on a fresh linear model of 4x4 images (16 pixels, 2 classes)."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    return train_classifier(net, images, labels, out, cfg, show_progress=False, **kwargs)


def _bias_only_run(tmp_path, labels: torch.Tensor, balanced: bool) -> float:
    """Train a model whose logits are its bias alone (every image is 0) on the whole data
    at each step, and return its probability of class 1: cross-entropy's optimum is the
    share of class 1 in ``labels`` and, with ``balanced`` weights ``N / (K n_k)``, one half."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    images = torch.zeros(labels.shape[0], 1, 4, 4)
    cfg = ClassifierTrainingConfig(
        epochs=200,
        batch_size=labels.shape[0],
        lr=0.1,
        weight_decay=0.0,
        warmup=0.0,
        augment=False,
        balanced=balanced,
    )
    net, _ = train_classifier(net, images, labels, tmp_path, cfg, show_progress=False)
    with torch.no_grad():
        return float(torch.softmax(net(images[:1]), 1)[0, 1])


def test_balanced_weights_move_the_optimum_to_equal_classes(tmp_path):
    """Known answer: a bias-only model reaches p(class 1) = the labels' share of class 1
    (0.1) unweighted, and 0.5 with the balanced class weights."""
    labels = torch.zeros(200, dtype=torch.int64)
    labels[::10] = 1  # 20 of 200
    plain = _bias_only_run(tmp_path / "plain", labels, balanced=False)
    balanced = _bias_only_run(tmp_path / "balanced", labels, balanced=True)
    assert plain == pytest.approx(0.1, abs=0.005)
    assert balanced == pytest.approx(0.5, abs=0.005)


def test_balanced_batch_losses_average_to_the_balanced_loss():
    """Known answer: the balanced loss of the whole data is the mean over classes of each
    class's mean cross-entropy, and the batches' losses average to it (torch's weighted
    mean, which divides by each batch's sum of weights, does not: a bias-only model trained
    on batches of 64 settled at p = 0.46 for an optimum of 0.5)."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 48 + [1] * 12 + [2] * 4)[torch.randperm(64, generator=gen)]
    logits = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    weights = classifier_module._class_weights(labels, 3, balanced=True)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")  # (64,)
    per_class = torch.stack([ce[labels == k].mean() for k in range(3)])
    whole, _ = classifier_module._loss("classify", logits, labels, weights)
    torch.testing.assert_close(whole, per_class.mean())
    batches = [
        classifier_module._loss("classify", logits[i : i + 16], labels[i : i + 16], weights)[0]
        for i in range(0, 64, 16)
    ]
    torch.testing.assert_close(torch.stack(batches).mean(), per_class.mean())


def test_imbalanced_labels_give_a_notice_unless_balanced(tmp_path, caplog):
    labels = torch.zeros(40, dtype=torch.int64)
    labels[:8] = 1  # 32 to 8: four to one
    images = torch.zeros(40, 1, 4, 4)
    cfg = ClassifierTrainingConfig(epochs=1, augment=False)
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        _linear_run(tmp_path / "a", images, labels, cfg)
    notices = [r for r in caplog.records if getattr(r, "cfx_imbalanced", False)]
    assert len(notices) == 1
    assert "(class 0: 32, class 1: 8)" in notices[0].getMessage()
    assert "balanced=True" in notices[0].getMessage()
    caplog.clear()
    labels[8] = 1  # 31 to 9: under four to one
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        _linear_run(tmp_path / "b", images, labels, cfg)
        balanced = ClassifierTrainingConfig(epochs=1, augment=False, balanced=True)
        labels[8] = 0
        _linear_run(tmp_path / "c", images, labels, balanced)
    assert not [r for r in caplog.records if getattr(r, "cfx_imbalanced", False)]


def test_balanced_needs_every_class_and_a_classifier(slices, tmp_path):
    images = torch.zeros(10, 1, 4, 4)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 2, 2, 2, 2])
    cfg = ClassifierTrainingConfig(epochs=1, augment=False, balanced=True)
    with pytest.raises(
        ValueError,
        match=r"3 classes .* got none of class 1 \(class 0: 6, "
        r"class 1: 0, class 2: 4\)",
    ):
        train_classifier(net, images, labels, tmp_path / "a", cfg, show_progress=False)
    assert not (tmp_path / "a").exists()  # refused before anything is written
    train, _ = slices
    with pytest.raises(ValueError, match="balanced=True weights the classes of task 'classify'"):
        train_classifier(
            BrainSegmenter(BrainSegmenterConfig(width=4)),
            train.images[:4],
            train.masks[:4],
            tmp_path / "b",
            cfg,
            task="segment",
            show_progress=False,
        )
    with pytest.raises(TypeError, match="`balanced` must be True or False, got 'yes'"):
        ClassifierTrainingConfig(balanced="yes")


def test_balanced_is_part_of_the_run_and_old_checkpoints_resume(tmp_path):
    """A rerun that switches `balanced` is another run; a checkpoint written before the
    setting existed (its fingerprint has no `balanced`) resumes as balanced=False."""
    from tests.training.legacy import rewrite_state

    labels = torch.tensor([0, 1] * 8)
    images = torch.zeros(16, 1, 4, 4)

    def run(balanced: bool) -> None:
        cfg = ClassifierTrainingConfig(epochs=1, augment=False, balanced=balanced)
        _linear_run(tmp_path, images, labels, cfg)

    run(balanced=True)
    with pytest.raises(ValueError, match=r"different run.*config.balanced: true before, unset"):
        run(balanced=False)
    (tmp_path / "checkpoint.safetensors").unlink()
    run(balanced=False)
    ckpt = tmp_path / "checkpoint.safetensors"
    rewrite_state(ckpt, lambda state: state["fingerprint"]["config"].pop("balanced", None))
    run(balanced=False)  # resumes (finished: nothing to do) rather than refusing


def test_history_reports_balanced_validation_accuracy(tmp_path):
    """Known answer: a model that answers class 0 for everything scores accuracy 0.75 on
    a validation set of 30 class-0 and 10 class-1 images, and balanced accuracy 0.5."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    images = torch.zeros(16, 1, 4, 4)
    labels = torch.tensor([0, 1] * 8)
    val = (torch.zeros(40, 1, 4, 4), torch.tensor([0] * 30 + [1] * 10))
    cfg = ClassifierTrainingConfig(epochs=1, augment=False, lr=1e-9, reset_parameters=False)
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.tensor([1.0, -1.0]))
    _, report = train_classifier(net, images, labels, tmp_path, cfg, val=val, show_progress=False)
    assert report.history[-1]["val_acc"] == pytest.approx(0.75)
    assert report.history[-1]["val_balanced_acc"] == pytest.approx(0.5)


def test_submodules_put_in_eval_mode_under_a_training_model_stay_so(tmp_path):
    """Fine-tuning a head over a frozen backbone whose BatchNorm the user put in eval mode:
    model.train() switched it back, and its running statistics drifted although its
    weights were frozen. A model wholly in eval mode (as loaded) still trains in training
    mode."""
    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.tensor([0, 1] * 16)
    cfg = ClassifierTrainingConfig(epochs=1, batch_size=8, augment=False, reset_parameters=False)

    def model():
        net = nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(128, 2)
        )
        for p in [*net[0].parameters(), *net[1].parameters()]:
            p.requires_grad_(False)
        return net

    kept = model()
    kept.train()
    kept[1].eval()
    stats = kept[1].running_mean.clone()
    train_classifier(kept, images, labels, tmp_path / "kept", cfg, show_progress=False)
    assert torch.equal(kept[1].running_mean, stats)
    loaded = model().eval()  # wholly in eval mode: trained in training mode
    stats = loaded[1].running_mean.clone()
    train_classifier(loaded, images, labels, tmp_path / "loaded", cfg, show_progress=False)
    assert not torch.equal(loaded[1].running_mean, stats)
    assert not loaded.training and not kept.training  # both returned in eval mode


def test_unit_range_training_images_are_noticed(tmp_path, caplog):
    """[0, 1] images trained a model that every explainer then fed [-1, 1] images, without
    a word from Python (the command line said it)."""
    labels = torch.tensor([0, 1] * 8)
    unit = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    cfg = ClassifierTrainingConfig(epochs=1, augment=False)
    with caplog.at_level("WARNING"):
        _linear_run(tmp_path / "a", unit, labels, cfg)
    assert caplog.text.count("no pixel of the 16 training images is below 0") == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        _linear_run(tmp_path / "b", unit * 2 - 1, labels, cfg)
    assert "is below 0" not in caplog.text


def test_a_model_still_guessing_is_said_as_such(tmp_path, caplog):
    """Without validation data nothing said that a model ended no better than answering the
    commonest class (300 images at batch 64 ended 8 epochs at 0.54; a user review)."""
    x = torch.zeros(16, 1, 64, 64)  # one image, either label: one answer for all, right on half
    y = torch.arange(16) % 2
    cfg = ClassifierTrainingConfig(epochs=1, batch_size=16, lr=1e-9, augment=False, seed=0)
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        train_classifier(BrainCNN(BrainCNNConfig(width=4)), x, y, tmp_path / "a", cfg)
    assert "about as often as always answering class 0 (50% of the labels)" in caplog.text
    assert "train again into a new folder" in caplog.text
    caplog.clear()
    # the same labels, learnt: the two classes told apart by brightness
    x = torch.where(y[:, None, None, None] == 1, 0.8, -0.8).expand(16, 1, 64, 64).clone()
    learnt = ClassifierTrainingConfig(epochs=20, batch_size=4, lr=1e-2, augment=False, seed=0)
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        _, report = train_classifier(
            BrainCNN(BrainCNNConfig(width=4)), x, y, tmp_path / "b", learnt
        )
    assert report.history[-1]["train_acc"] > 0.9
    assert "about as often" not in caplog.text


@pytest.mark.parametrize(("accuracy", "said"), [(1.0, False), (0.99, False), (0.98, True)])
def test_the_guess_is_judged_by_its_error_rate(caplog, accuracy, said):
    """50 labels of class 0 and 1 of class 1: a perfect model was told it was guessing (the
    bar was the commonest class's share, 0.98, plus 0.02; a review)."""
    labels = torch.tensor([0] * 50 + [1])
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        classifier_module._chance_notice({"train_acc": accuracy}, labels)
    assert ("always answering class 0 (98% of the labels)" in caplog.text) == said
