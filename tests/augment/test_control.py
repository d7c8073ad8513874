"""The control arm: the learner's fine-tuning without labels (cfx.augment.control)."""

import pytest
import torch

import cfx.augment.control as control
from cfx.augment import ActiveLearner, finetune_without_labels
from cfx.errors import ForeignRunError
from cfx.label import UNSURE
from tests.augment.toy import CFG, CountingOracle


class Unsure(CountingOracle):
    """Answers "can't tell" to every frame: a run that trains on no label."""

    def label(self, images, **kw):
        self.given += images.shape[0]
        return torch.full((images.shape[0],), UNSURE)


def _weights(model):
    return {n: v.clone() for n, v in model.state_dict().items()}


def test_the_control_is_the_runs_fine_tuning_without_its_labels(world, tmp_path):
    """Known answer: a run whose every frame was answered unsure trains on the training set
    alone, round after round with seed + k: exactly what the control does."""
    g, f, pool, train, labels = world
    before = _weights(f)
    learner = ActiveLearner(g, f, Unsure(), budget=4, rounds=2, finetune=CFG, steps=4)
    unlabelled = learner.augment(pool, train, labels, out=tmp_path / "run", seed=3)
    ctl = finetune_without_labels(
        learner,
        train,
        labels,
        out=tmp_path / "ctl",
        seed=3,
        eval_fn=lambda m: {"mean_weight": float(next(m.parameters()).detach().mean())},
    )
    for name, value in unlabelled.model.state_dict().items():
        assert torch.equal(value, ctl.model.state_dict()[name]), name
    assert len(ctl.metrics) == 2
    assert ctl.metrics[-1]["mean_weight"] == float(next(ctl.model.parameters()).detach().mean())
    assert not any(torch.equal(v, before[n]) for n, v in ctl.model.state_dict().items())
    for name, value in f.state_dict().items():  # the user's classifier is left as it was
        assert torch.equal(value, before[name]), name
    # with real labels the run ends elsewhere: the control is not the run itself
    labelled = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=4)
    other = labelled.augment(pool, train, labels, out=tmp_path / "run2", seed=3)
    assert not all(
        torch.equal(v, ctl.model.state_dict()[n]) for n, v in other.model.state_dict().items()
    )


def test_a_finished_control_is_read_back_and_another_is_refused(world, tmp_path, monkeypatch):
    g, f, _, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=4)
    first = finetune_without_labels(learner, train, labels, out=tmp_path, rounds=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json", "round_00"]
    assert not (tmp_path / "round_00" / "train" / "checkpoint.safetensors").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished round was trained again")

    monkeypatch.setattr(control, "train_classifier", no_training)
    again = finetune_without_labels(learner, train, labels, out=tmp_path, rounds=1)
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name
    with pytest.raises(ForeignRunError, match="seed: 0 before, 1 now"):
        finetune_without_labels(learner, train, labels, out=tmp_path, seed=1)
    with pytest.raises(ForeignRunError, match="the training images or labels"):
        finetune_without_labels(learner, train, 1 - labels, out=tmp_path)
    with pytest.raises(ValueError, match=r"`rounds` must be an int >= 1 or None, got 0"):
        finetune_without_labels(learner, train, labels, out=tmp_path, rounds=0)
    with pytest.raises(ValueError, match=r"`train_labels` must be a tensor of shape \(30,\)"):
        finetune_without_labels(learner, train, labels[:3], out=tmp_path)


def test_the_demo_starts_its_own_control_afresh_where_a_user_is_refused(world, tmp_path):
    from cfx.demo import control_afresh

    g, f, _, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    control_afresh(learner, train, labels, tmp_path / "run", seed=0)
    with pytest.raises(ForeignRunError):  # a user's folder: refused
        finetune_without_labels(learner, train, labels, out=tmp_path / "run" / "control", seed=1)
    res = control_afresh(learner, train, labels, tmp_path / "run", seed=1)  # the demo's
    assert '"seed": 1' in (tmp_path / "run" / "control" / "key.json").read_text()
    assert len(res.metrics) == 1
