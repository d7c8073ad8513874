"""train_classifier on models of one's own: layers that draw at random (dropout), BatchNorm,
fine-tuning another model's weights into a run's folder, another dtype, one logit."""

import copy

import pytest
import torch
from torch import nn

import cfx.training.classifier as classifier_module
from cfx.errors import ForeignRunError
from cfx.training.classifier import ClassifierTrainingConfig, train_classifier
from cfx.training.init import reset_parameters


def _toy(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 8x8 images in [-1, 1], class 1 brighter than class 0."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.5 - 0.75 + 0.5 * y[:, None, None, None]
    return x, y


def _net(*, dropout: float = 0.0, batchnorm: bool = False, outputs: int = 2) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, outputs)]
    return nn.Sequential(*layers)


def _config(**kwargs) -> ClassifierTrainingConfig:
    return ClassifierTrainingConfig(**{"epochs": 2, "batch_size": 16, "augment": False, **kwargs})


def _fit(model, x, y, out, config, **kwargs):
    return train_classifier(model, x, y, out, config, show_progress=False, **kwargs)


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        assert torch.equal(value, sb[key]), key


def test_dropout_draws_from_the_seed_not_from_the_global_rng(tmp_path):
    """Dropout drew its masks from torch's global RNG, which the config's seed did not set:
    the same seed after another torch.manual_seed trained other weights."""
    x, y = _toy(64)
    models = []
    for global_seed in (1, 2):
        with torch.random.fork_rng():
            torch.manual_seed(global_seed)
            model = _net(dropout=0.5)
            before = torch.random.get_rng_state()
            _fit(model, x, y, tmp_path / str(global_seed), _config(seed=3))
            assert torch.equal(torch.random.get_rng_state(), before)  # put back
        models.append(model)
    _assert_same_weights(*models)
    with torch.random.fork_rng():
        other = _net(dropout=0.5)
        _fit(other, x, y, tmp_path / "other", _config(seed=4))
    assert not torch.equal(other.state_dict()["4.weight"], models[0].state_dict()["4.weight"])


def _crash_after_checkpoint(monkeypatch, at_step):
    real = classifier_module.save_checkpoint

    def save(path, **kwargs):
        real(path, **kwargs)
        if kwargs["state"]["step"] == at_step:
            raise RuntimeError("killed")

    monkeypatch.setattr(classifier_module, "save_checkpoint", save)


def test_a_resumed_dropout_run_ends_with_the_uninterrupted_runs_weights(tmp_path, monkeypatch):
    """The dropout stream was not in the checkpoint: a resumed run drew other masks."""
    x, y = _toy(64)
    config = _config(epochs=3, checkpoint_every=2, seed=5)
    whole = _net(dropout=0.5)
    _fit(whole, x, y, tmp_path / "whole", config)

    _crash_after_checkpoint(monkeypatch, at_step=6)  # mid-epoch 2 of 3 (4 steps each)
    with pytest.raises(RuntimeError, match="killed"):
        _fit(_net(dropout=0.5), x, y, tmp_path / "split", config)
    monkeypatch.undo()
    with torch.random.fork_rng():
        torch.manual_seed(123)  # the global stream elsewhere by now: not what a resume reads
        resumed = _net(dropout=0.5)
        _fit(resumed, x, y, tmp_path / "split", config)
    _assert_same_weights(whole, resumed)


def test_a_checkpoint_without_the_dropout_stream_resumes(tmp_path, monkeypatch, caplog):
    """Checkpoints of an earlier cfx hold no stream for random layers (nor the newer run-key
    entries): they resume, taken on trust, rather than being refused as another run."""
    from tests.training.legacy import rewrite_layout

    x, y = _toy(64)
    config = _config(epochs=2, checkpoint_every=2)
    _crash_after_checkpoint(monkeypatch, at_step=2)
    with pytest.raises(RuntimeError, match="killed"):
        _fit(_net(), x, y, tmp_path, config)
    monkeypatch.undo()

    def as_before(layout):
        del layout["generators"]["layers"]
        for key in ("start_sha256", "dtype"):
            del layout["state"]["fingerprint"][key]

    rewrite_layout(tmp_path / "checkpoint.safetensors", as_before)
    _, report = _fit(_net(), x, y, tmp_path, config)
    assert report.steps == 8
    assert "resuming on trust" in caplog.text


def test_a_single_image_left_over_joins_the_last_batch(tmp_path):
    """65 images in batches of 16 left one image for a step of its own, where BatchNorm
    fails ("Expected more than 1 value per channel"), at the same step of every rerun."""
    x, y = _toy(65)
    model = _net(batchnorm=True)
    _, report = _fit(model, x, y, tmp_path, _config())
    assert report.steps == 8  # 4 a epoch: 16, 16, 16 and 17 images
    assert [row["step"] for row in report.history] == [4.0, 8.0]


@pytest.mark.parametrize(
    ("n", "batch_size", "steps"),
    [(64, 16, 4), (65, 16, 4), (66, 16, 5), (17, 16, 1), (16, 16, 1), (1, 16, 1), (3, 2, 1)],
)
def test_an_epochs_batches_cover_every_example_once(n, batch_size, steps):
    assert classifier_module._steps_per_epoch(n, batch_size) == steps
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    batches = [classifier_module._batch(order, p, batch_size, steps) for p in range(steps)]
    assert torch.equal(torch.cat(batches), order)
    assert min(len(b) for b in batches) >= min(2, n)  # no batch of one (but a set of one)
    assert max(len(b) for b in batches) <= batch_size + 1


def test_fine_tuning_other_weights_into_a_run_folder_is_refused(tmp_path):
    """A second model's fine-tune into the folder of a finished one was 'already finished':
    the first model's fine-tuned weights were loaded into it, its own lost."""
    x, y = _toy(32)
    config = _config(epochs=1, reset_parameters=False)
    a = reset_parameters(_net(), torch.Generator().manual_seed(0))
    b = reset_parameters(_net(), torch.Generator().manual_seed(1))
    tuned, _ = _fit(copy.deepcopy(a), x, y, tmp_path, config)
    with pytest.raises(ForeignRunError, match=r"different run.*the model's weights to fine-tune"):
        _fit(b, x, y, tmp_path, config)
    again, _ = _fit(copy.deepcopy(a), x, y, tmp_path, config)  # the same start: finished
    _assert_same_weights(tuned, again)
    with pytest.raises(ForeignRunError, match=r"different run.*the model's dtype"):
        _fit(copy.deepcopy(a).double(), x, y, tmp_path, config)


def test_fresh_weights_are_the_seeds_whatever_the_model_held(tmp_path):
    """With reset_parameters (the default) the starting weights are the seed's: a model
    built under another global seed resumes the run, as it trains to the same weights."""
    x, y = _toy(32)
    config = _config(epochs=1)
    first, _ = _fit(_net(), x, y, tmp_path, config)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        again, _ = _fit(_net(), x, y, tmp_path, config)
    _assert_same_weights(first, again)


def test_validation_labels_beyond_the_models_classes_are_refused(tmp_path):
    """They were scored as wrong: val_acc 0.0 from a run that trained fine."""
    x, y = _toy(32)
    with pytest.raises(
        ValueError, match=r"`val\[1\]` must be class indices below the model's 2 outputs, got max 5"
    ):
        _fit(_net(), x, y, tmp_path / "run", _config(), val=(x[:4], torch.full((4,), 5)))
    assert not (tmp_path / "run").exists()


def test_a_one_logit_model_is_refused_as_such(tmp_path):
    x, y = _toy(32)
    with pytest.raises(ValueError, match=r"logits \(B, K\) for K >= 2 classes, got \(1, 1\)"):
        _fit(_net(outputs=1), x, y, tmp_path, _config())


def test_an_out_that_is_no_folder_is_named(tmp_path):
    x, y = _toy(32)
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ValueError, match=r"`out` must be a folder .*got the file"):
        _fit(_net(), x, y, file, _config())
    with pytest.raises(ValueError, match=r"`out` must be a folder, got .*inside the file"):
        _fit(_net(), x, y, file / "run", _config())
    with pytest.raises(TypeError, match="`out` must be a folder path"):
        _fit(_net(), x, y, 3, _config())
    frozen = _net().requires_grad_(False)
    with pytest.raises(ValueError, match="`model` must have trainable parameters"):
        _fit(frozen, x, y, tmp_path / "frozen", _config())
    assert not (tmp_path / "frozen").exists()  # it was made before this check


def test_label_and_channel_errors_say_what_arrived(tmp_path):
    x, y = _toy(32)
    with pytest.raises(ValueError, match="non-negative class indices, got min -1"):
        _fit(_net(), x, y - 1, tmp_path, _config())
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    images = torch.zeros(4, 64, 64, 1)  # saved channels last
    with pytest.raises(ValueError, match=r"channels last is images\.permute\(0, 3, 1, 2\)"):
        _fit(BrainCNN(BrainCNNConfig(width=4)), images, y[:4], tmp_path, _config())


def test_re_drawing_frozen_weights_is_warned_about(tmp_path, caplog):
    """The default reset_parameters=True re-drew a frozen backbone in silence: a head
    fine-tuned on random features."""
    x, y = _toy(32)
    model = _net()
    model[1].requires_grad_(False)  # the "backbone": weight and bias
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        _fit(model, x, y, tmp_path / "reset", _config(epochs=1))
    assert "the 2 parameters without requires_grad too" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.training.classifier"):
        _fit(model, x, y, tmp_path / "tune", _config(epochs=1, reset_parameters=False))
    assert "re-draws" not in caplog.text
