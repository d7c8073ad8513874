"""The control arm: a run's fine-tuning without its labels (cfx.augment.control)."""

import dataclasses

import pytest
import torch

import cfx.augment.active as active
import cfx.augment.control as control
from cfx.augment import ActiveLearner, AugmentResult, finetune_without_labels
from cfx.errors import ForeignRunError
from cfx.label import UNSURE
from tests.augment.toy import CFG, CountingOracle


class Unsure(CountingOracle):
    """Answers "can't tell" to every frame: a run that trains on no label."""

    def label(self, images, **kw):
        self.given += images.shape[0]
        return torch.full((images.shape[0],), UNSURE)


class HalfUnsure(CountingOracle):
    """The true rule, but "can't tell" for every other frame."""

    def label(self, images, **kw):
        labels = super().label(images)
        labels[::2] = UNSURE
        return labels


def _weights(model):
    return {n: v.clone() for n, v in model.state_dict().items()}


def test_the_control_is_the_runs_fine_tuning_without_its_labels(world, tmp_path):
    """Known answer: a run whose every frame was answered unsure trains on the training set
    alone, round after round with seed + k: exactly what the control does."""
    g, f, pool, train, labels = world
    before = _weights(f)
    learner = ActiveLearner(g, f, Unsure(), budget=4, rounds=2, finetune=CFG, steps=4)
    unlabelled = learner.augment(pool, train, labels, out=tmp_path / "run", seed=3)
    ctl = finetune_without_labels(learner, unlabelled, train, labels, out=tmp_path / "c", seed=3)
    for name, value in unlabelled.model.state_dict().items():
        assert torch.equal(value, ctl.model.state_dict()[name]), name
    assert ctl.metrics == ({}, {})  # one per round; no eval_fn
    assert not any(torch.equal(v, before[n]) for n, v in ctl.model.state_dict().items())
    for name, value in f.state_dict().items():  # the user's classifier is left as it was
        assert torch.equal(value, before[name]), name


def test_the_seed_defaults_to_the_runs(world, tmp_path):
    """A control without `seed` fine-tuned with seed 0 + k against a run at seed 3 + k."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Unsure(), budget=4, rounds=1, finetune=CFG, steps=4)
    unlabelled = learner.augment(pool, train, labels, out=tmp_path / "run", seed=3)
    assert unlabelled.seed == 3
    ctl = finetune_without_labels(learner, unlabelled, train, labels, out=tmp_path / "c")
    for name, value in unlabelled.model.state_dict().items():  # the run's own fine-tuning
        assert torch.equal(value, ctl.model.state_dict()[name]), name
    assert '"seed": 3' in (tmp_path / "c" / "key.json").read_text()
    other = finetune_without_labels(learner, unlabelled, train, labels, out=tmp_path / "d", seed=0)
    assert not torch.equal(other.model.w, ctl.model.w)


def test_another_training_set_than_the_runs_is_refused(world, tmp_path):
    """A test split or another subset gave a control of another fine-tuning, compared with
    the run as if it were its own."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run")
    out = tmp_path / "c"
    for images, targets in [(train[:20], labels[:20]), (train, 1 - labels), (pool[:30], labels)]:
        with pytest.raises(ValueError, match=r"must be the training set `result`'s augment run"):
            finetune_without_labels(learner, run, images, targets, out=out)
    assert not out.exists()  # refused before the folder is claimed
    # the same values in another dtype are the same set (the digest read int32 labels apart)
    same = finetune_without_labels(learner, run, train.double(), labels.int(), out=out)
    assert len(same.metrics) == 1
    out = tmp_path / "c2"
    by_hand = dataclasses.replace(run, train_sha256=None)  # a result built by hand: unchecked
    assert len(finetune_without_labels(learner, by_hand, pool[:30], labels, out=out).metrics) == 1


def test_the_control_takes_the_runs_steps_with_training_images_for_the_frames(
    world, tmp_path, monkeypatch
):
    """The control trained on the training set alone, so a run on few training images took
    more steps (and a longer schedule) than its control, which the labels were credited
    with (session 44 review). Each round now fits a set of the run's size: the training set
    plus, in place of the frames trained on so far (unsure ones are not), training rows."""
    g, f, pool, train, labels = world
    sizes = {"run": [], "control": []}

    def spy(arm, real):
        def fit(model, images, targets, out, config, **kw):
            sizes[arm].append((images.shape[0], config.seed, config.epochs))
            if arm == "control":  # the stand-ins are training rows with their labels
                rows = {
                    tuple(x.flatten().tolist()): int(y) for x, y in zip(train, labels, strict=True)
                }
                assert all(
                    rows.get(tuple(x.flatten().tolist())) == int(y)
                    for x, y in zip(images, targets, strict=True)
                )
            return real(model, images, targets, out, config, **kw)

        return fit

    monkeypatch.setattr(active, "train_classifier", spy("run", active.train_classifier))
    monkeypatch.setattr(control, "train_classifier", spy("control", control.train_classifier))
    learner = ActiveLearner(g, f, HalfUnsure(), budget=8, rounds=2, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run", seed=3)
    finetune_without_labels(learner, run, train, labels, out=tmp_path / "c", seed=3)
    # 30 training images; 4 frames a round, 2 of them unsure, each sure one repeated 4x
    assert sizes["run"] == sizes["control"] == [(30 + 8, 3, 1), (30 + 16, 3 + 1, 1)]


def test_a_run_that_stopped_before_its_first_round_has_an_empty_control(world, tmp_path):
    """The command crashed after a run with no round ("`rounds` must be an int >= 1")."""
    g, f, _, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=4)
    empty = AugmentResult(
        model=f, images=train[:0], labels=labels[:0].long(), rounds=()
    )  # what augment returns when no pool image gives a path
    ctl = finetune_without_labels(learner, empty, train, labels, out=tmp_path)
    assert ctl.metrics == ()
    for name, value in f.state_dict().items():
        assert torch.equal(value, ctl.model.state_dict()[name]), name


def test_a_finished_control_is_read_back_and_another_is_refused(world, tmp_path, monkeypatch):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run")
    out = tmp_path / "c"
    first = finetune_without_labels(learner, run, train, labels, out=out)
    assert sorted(p.name for p in out.iterdir()) == ["key.json", "round_00"]
    assert not (out / "round_00" / "train" / "checkpoint.safetensors").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished round was trained again")

    monkeypatch.setattr(control, "train_classifier", no_training)
    again = finetune_without_labels(learner, run, train, labels, out=out)
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name
    with pytest.raises(ForeignRunError, match="seed: 0 before, 1 now"):
        finetune_without_labels(learner, run, train, labels, out=out, seed=1)
    unchecked = dataclasses.replace(run, train_sha256=None)  # built by hand: the key tells
    with pytest.raises(ForeignRunError, match="the training images or labels"):
        finetune_without_labels(learner, unchecked, train, 1 - labels, out=out)
    fewer = dataclasses.replace(
        run, rounds=(dataclasses.replace(run.rounds[0], unsure=run.rounds[0].labelled),)
    )
    with pytest.raises(ForeignRunError, match="the run's labelled frames per round"):
        finetune_without_labels(learner, fewer, train, labels, out=out)
    with pytest.raises(ValueError, match=r"`train_labels` must have shape \(30,\), got \(3,\)"):
        finetune_without_labels(learner, run, train, labels[:3], out=out)
    learner.repeat_new = 0
    with pytest.raises(ValueError, match="`repeat_new` must be an int >= 1, got 0"):
        finetune_without_labels(learner, run, train, labels, out=out)


def test_the_demo_starts_its_own_control_afresh_where_a_user_is_refused(world, tmp_path):
    from cfx.demo import control_afresh

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "aug")
    control_afresh(learner, run, train, labels, tmp_path / "run", seed=0)
    with pytest.raises(ForeignRunError):  # a user's folder: refused
        finetune_without_labels(
            learner, run, train, labels, out=tmp_path / "run" / "control", seed=1
        )
    res = control_afresh(learner, run, train, labels, tmp_path / "run", seed=1)  # the demo's
    assert '"seed": 1' in (tmp_path / "run" / "control" / "key.json").read_text()
    assert len(res.metrics) == 1


def test_bad_labels_or_seed_leave_no_key_that_refuses_the_corrected_call(world, tmp_path):
    """labels * 0.7 were truncated to class 0 and trained on; a refused call's key.json then
    refused the corrected call as "another control run"."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run")
    out = tmp_path / "c"
    with pytest.raises(ValueError, match=r"`train_labels` must be classes .* whole numbers"):
        finetune_without_labels(learner, run, train, labels.float() * 0.7, out=out)
    with pytest.raises(TypeError, match=r"`seed` must be an int in \[0, 2\*\*32\), got 1.5"):
        finetune_without_labels(learner, run, train, labels, out=out, seed=1.5)
    assert not out.exists()
    assert len(finetune_without_labels(learner, run, train, labels, out=out).metrics) == 1


def test_the_augment_runs_own_folder_is_named_as_such(world, tmp_path):
    """It was refused as "another control run (batch_size: 64 before, unset now; ...)"."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run")
    with pytest.raises(ValueError, match=r"is the augment run's folder, not a control's") as err:
        finetune_without_labels(learner, run, train, labels, out=tmp_path / "run")
    # not a ForeignRunError: the demo deletes a foreign control's folder and starts afresh
    assert not isinstance(err.value, ForeignRunError)


def test_a_control_goes_on_with_its_run(world, tmp_path, monkeypatch):
    """The control of a run that went on with a second round refused its own first round as
    'another control run' (the run's set sizes per round grew by one entry)."""
    g, f, pool, train, labels = world
    args = {"finetune": CFG, "steps": 4}
    one = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, **args)
    first = one.augment(pool, train, labels, out=tmp_path / "run")
    finetune_without_labels(one, first, train, labels, out=tmp_path / "control")
    fits = []
    real = control.train_classifier
    monkeypatch.setattr(
        control, "train_classifier", lambda *a, **k: fits.append(a[4].seed) or real(*a, **k)
    )
    two = ActiveLearner(g, f, CountingOracle(), budget=8, rounds=2, **args)
    longer = two.augment(pool, train, labels, out=tmp_path / "run")
    ctl = finetune_without_labels(two, longer, train, labels, out=tmp_path / "control")
    assert len(ctl.metrics) == 2 and fits == [1]  # round 0 read back, round 1 fine-tuned


def test_imbalanced_training_labels_are_noticed_once_per_control(world, tmp_path, caplog):
    g, f, pool, train, _ = world
    labels = torch.zeros(30, dtype=torch.int64)
    labels[:2] = 1  # 28 to 2; the control adds training images drawn from these
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run", seed=3)
    caplog.clear()  # the run's own notice
    with caplog.at_level("WARNING"):
        ctl = finetune_without_labels(learner, run, train, labels, out=tmp_path / "c", seed=3)
    assert len(ctl.metrics) == 2  # two fine-tunes
    assert caplog.text.count("the training labels are imbalanced") == 1


def test_a_numpy_seed_is_taken_and_leaves_no_key_that_refuses_the_int(world, tmp_path):
    import numpy as np

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run", seed=0)
    first = finetune_without_labels(
        learner, run, train, labels, out=tmp_path / "c", seed=np.int64(0)
    )
    again = finetune_without_labels(learner, run, train, labels, out=tmp_path / "c", seed=0)
    assert first.metrics == again.metrics


def test_a_swapped_or_missing_learner_or_result_is_named(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run", seed=0)
    with pytest.raises(
        TypeError,
        match=r"`learner` must be the run's ActiveLearner, got "
        r"AugmentResult \(learner and result swapped\?\)",
    ):
        finetune_without_labels(run, learner, train, labels, out=tmp_path / "c")
    with pytest.raises(TypeError, match=r"`result` must be the AugmentResult .* got tuple"):
        finetune_without_labels(learner, run.rounds, train, labels, out=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_a_damaged_round_file_is_fine_tuned_again(world, tmp_path, caplog):
    """A truncated round_00/model.safetensors stopped `cfx augment --control` with
    safetensors' traceback (exit 1), where a damaged augmentation round is warned about and
    computed again (session-54 resume audit). Known answer: the same weights as before."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    run = learner.augment(pool, train, labels, out=tmp_path / "run")
    out = tmp_path / "c"
    first = finetune_without_labels(learner, run, train, labels, out=out)
    done = out / "round_00" / "model.safetensors"
    done.write_bytes(done.read_bytes()[:40])  # cut short
    with caplog.at_level("WARNING", logger="cfx.augment"):
        again = finetune_without_labels(learner, run, train, labels, out=out)
    assert "model.safetensors cannot be read" in caplog.text and "fine-tuning the round again" in (
        caplog.text
    )
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name
