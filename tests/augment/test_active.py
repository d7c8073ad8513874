import json
import re
import shutil

import numpy as np
import pytest
import torch

from cfx.augment import ActiveLearner, LabelsPending, OracleLabeller, TaskLabeller
from cfx.augment.rounds import CANDIDATES_FILE
from cfx.label import pending, read_task, record_label
from tests.augment.toy import CFG, BoundedGenerator, CountingOracle
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


class Refuses:
    """The labeller of the finished rounds, as far as the run's key can tell (who labels is in
    the key), which must never be asked."""

    def __init__(self, like=None):
        self.like = CountingOracle() if like is None else like

    def run_key(self):
        return self.like.run_key()

    def label(self, images, **kw):
        raise AssertionError("a finished round must not ask for labels again")


@pytest.mark.parametrize(("budget", "rounds"), [(7, 2), (5, 3), (4, 1)])
def test_the_loop_never_exceeds_its_label_budget(world, tmp_path, budget, rounds):
    g, f, pool, train, labels = world
    oracle = CountingOracle()
    learner = ActiveLearner(g, f, oracle, budget=budget, rounds=rounds, finetune=CFG, steps=4)
    res = learner.augment(pool, train, labels, out=tmp_path)
    assert oracle.given == res.labels_used == budget
    assert sum(r.labelled for r in res.rounds) == budget
    assert len(res.rounds) == rounds
    starts = torch.cat([r.starts for r in res.rounds])
    assert starts.unique().numel() == starts.numel()  # never the same start twice


def test_margin_selection_picks_the_least_certain_starts(world, tmp_path):
    g, f, pool, train, labels = world
    with torch.no_grad():
        p = torch.softmax(f(pool), 1)[:, 1]
    expected = (p - 0.5).abs().argsort()[:3]
    learner = ActiveLearner(g, f, CountingOracle(), budget=6, rounds=1, finetune=CFG, steps=4)
    res = learner.augment(pool, train, labels, out=tmp_path)
    assert torch.equal(res.rounds[0].starts, expected)


def test_labelled_frames_sit_near_the_boundary(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(
        g,
        f,
        CountingOracle(),
        budget=8,
        rounds=1,
        finetune=CFG,
        steps=10,
        frame_levels=(0.4, 0.6),
    )
    res = learner.augment(pool, train, labels, out=tmp_path)
    with torch.no_grad():
        p_any = torch.softmax(f(res.images), 1)  # the untouched original classifier
    # each frame was placed at p(target) = 0.4 or 0.6, so its top probability is <= ~0.6
    assert float(p_any.max(1).values.max()) < 0.62


class TowardClassOne(BoundedGenerator):
    """Its encoder errs towards class 1 of the toy classifier: the reconstructions of the
    least certain class-0 slices already lie past the boundary."""

    shift = 2.0

    def encode(self, x):
        f = LogisticClassifier()
        u = (self.A.T @ f.w).detach()
        return super().encode(x) + self.shift * u / u.norm()


def test_every_labelled_pair_straddles_the_boundary_and_one_sided_starts_are_skipped(
    world, tmp_path
):
    """A start whose reconstruction the classifier already put in the target class gave two
    frames on one side (0.76 and 0.78 for "0.4" and "0.6", the same suggested label): the
    budget paid for near-duplicates. Such starts are now skipped for the next ones."""
    _, f, pool, train, labels = world
    g = TowardClassOne()
    oracle = CountingOracle()
    learner = ActiveLearner(
        g, f, oracle, budget=12, rounds=1, finetune=CFG, steps=10, frame_levels=(0.4, 0.6)
    )
    res = learner.augment(pool, train, labels, out=tmp_path)
    assert oracle.given == res.labels_used == 12
    with torch.no_grad():
        cls = f(res.images).argmax(1).view(-1, 2)  # (paths, (0.4 frame, 0.6 frame))
    assert bool((cls[:, 0] != cls[:, 1]).all())  # one frame on each side, every path
    assert len(res.rounds[0].starts) > 6  # more starts tried than the 6 paths labelled


def test_frames_cross_into_the_other_class_and_suggestions_are_the_models(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(
        g, f, OracleLabeller(f), budget=6, rounds=1, finetune=CFG, steps=10, frame_levels=(0.6,)
    )
    res = learner.augment(pool, train, labels, out=tmp_path)
    with torch.no_grad():
        src = f(pool[res.rounds[0].starts]).argmax(1)
        frm = f(res.images).argmax(1)
    # a frame at p(target) = 0.6 is in the target class, the class its start is not in
    assert bool((frm != src).all())
    # labelled by the explained classifier itself: it agrees with every suggestion
    assert res.rounds[0].disagreement == 0.0


def test_user_classifier_is_unchanged(world, tmp_path):
    g, f, pool, train, labels = world
    before = [p.detach().clone() for p in f.parameters()]
    f.train()
    res = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG).augment(
        pool, train, labels, out=tmp_path
    )
    assert f.training
    assert all(torch.equal(a, b) for a, b in zip(before, f.parameters(), strict=True))
    assert res.model is not f


def test_a_person_labels_through_the_task_and_the_run_resumes(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, TaskLabeller(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(LabelsPending, match="4 of 4 images wait for labels"):
        learner.augment(pool, train, labels, out=tmp_path)
    task_dir = tmp_path / "round_00" / "task"
    assert len(read_task(task_dir).items) == 4
    for i, item_id in enumerate(pending(task_dir)):
        record_label(task_dir, item_id, i % 2)
    res = learner.augment(pool, train, labels, out=tmp_path)
    assert res.labels.tolist() == [0, 1, 0, 1]
    # finished rounds are read back, not labelled again
    again = ActiveLearner(g, f, Refuses(TaskLabeller()), budget=4, rounds=1, finetune=CFG, steps=4)
    res2 = again.augment(pool, train, labels, out=tmp_path)
    assert torch.equal(res2.labels, res.labels)
    for a, b in zip(res.model.parameters(), res2.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rounds_are_never_labelled_by_someone_else(world, tmp_path):
    """Who labels was not in the run's key: a rerun without the person's labeller had the
    oracle label the round the person was asked for, and another oracle's labels were mixed
    in silently."""
    g, f, pool, train, labels = world
    args = {"budget": 4, "rounds": 2, "finetune": CFG, "steps": 4}
    by_person = ActiveLearner(g, f, TaskLabeller(), **args)
    with pytest.raises(LabelsPending):
        by_person.augment(pool, train, labels, out=tmp_path)
    task_dir = tmp_path / "round_00" / "task"
    for item_id in pending(task_dir):
        record_label(task_dir, item_id, 0)
    with pytest.raises(LabelsPending):  # round 0 done, round 1 waits for the person
        by_person.augment(pool, train, labels, out=tmp_path)
    oracle = ActiveLearner(g, f, CountingOracle(), **args)
    with pytest.raises(ValueError, match=r'labeller.kind: "person" before, "oracle" now'):
        oracle.augment(pool, train, labels, out=tmp_path)
    assert oracle.labeller.given == 0 and not (tmp_path / "round_01" / "round.json").exists()

    other_dir = tmp_path / "oracles"
    ActiveLearner(g, f, CountingOracle(), **args | {"rounds": 1, "budget": 2}).augment(
        pool, train, labels, out=other_dir
    )
    weighed = LogisticClassifier()
    with torch.no_grad():
        next(weighed.parameters()).add_(1.0)
    # (another class than the Identity the first oracle is: its modules are named too)
    named = r"\(1 finished; the oracle's modules or their settings; labeller.oracle_sha256\)"
    with pytest.raises(ValueError, match=named):
        ActiveLearner(g, f, OracleLabeller(weighed), **args | {"rounds": 1, "budget": 2}).augment(
            pool, train, labels, out=other_dir
        )


def test_a_task_for_other_images_is_not_read_as_these_labels(world, tmp_path):
    pool = world[2]
    task_dir = tmp_path / "task"
    with pytest.raises(LabelsPending):
        TaskLabeller().label(pool[:2], workdir=task_dir)
    for item_id in pending(task_dir):
        record_label(task_dir, item_id, 1)
    assert TaskLabeller().label(pool[:2], workdir=task_dir).tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"holds a labelling task for other images than these 2"):
        TaskLabeller().label(pool[2:4], workdir=task_dir)


def test_a_persons_class_names_are_checked_when_the_labeller_is_made():
    """They were checked when a round's task was written, after its paths were walked."""
    assert TaskLabeller(class_names=["normal", "lesion"]).class_names == ("normal", "lesion")
    with pytest.raises(ValueError, match="`class_names` must not hold 'unsure'"):
        TaskLabeller(class_names=("healthy", "Unsure"))
    with pytest.raises(ValueError, match="`class_names` must differ ignoring case"):
        TaskLabeller(class_names=("a", "A"))


def test_a_damaged_round_is_computed_again_keeping_the_persons_labels(world, tmp_path, caplog):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, TaskLabeller(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(LabelsPending):
        learner.augment(pool, train, labels, out=tmp_path)
    task_dir = tmp_path / "round_00" / "task"
    for i, item_id in enumerate(pending(task_dir)):
        record_label(task_dir, item_id, i % 2)
    first = learner.augment(pool, train, labels, out=tmp_path)
    key_written = (tmp_path / "key.json").stat().st_mtime_ns
    done = tmp_path / "round_00" / "round.safetensors"
    done.write_bytes(done.read_bytes()[:100])  # what a kill mid-write left under older cfx
    with caplog.at_level("WARNING", logger="cfx.augment"):
        again = learner.augment(pool, train, labels, out=tmp_path)  # no LabelsPending
    assert "cannot be read" in caplog.text and "computing the round again" in caplog.text
    assert torch.equal(again.labels, first.labels) and again.labels.tolist() == [0, 1, 0, 1]
    assert (tmp_path / "key.json").stat().st_mtime_ns == key_written  # not rewritten
    # a round.json missing a field (a hand edit, another cfx) is damage too: computed again,
    # where reading it back raised a KeyError at every later run
    (tmp_path / "round_00" / "round.json").write_text('{"index": 0}')
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.augment"):
        third = learner.augment(pool, train, labels, out=tmp_path)
    assert "computing the round again" in caplog.text
    assert third.labels.tolist() == [0, 1, 0, 1] and third.rounds[0].labelled == 4
    # so is a tensors file that reads but lacks a field (it raised KeyError at every rerun)
    from safetensors.torch import load_file, save_file

    saved = load_file(str(done))
    save_file({k: v for k, v in saved.items() if k != "images"}, str(done))
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.augment"):
        fourth = learner.augment(pool, train, labels, out=tmp_path)
    assert "computing the round again" in caplog.text and fourth.labels.tolist() == [0, 1, 0, 1]


def test_keys_without_a_labeller_are_adopted_with_a_warning(world, tmp_path, caplog):
    import json

    g, f, pool, train, labels = world
    args = {"budget": 4, "rounds": 1, "finetune": CFG, "steps": 4}
    first = ActiveLearner(g, f, CountingOracle(), **args).augment(pool, train, labels, out=tmp_path)
    key = json.loads((tmp_path / "key.json").read_text())
    del key["labeller"]  # a key an older cfx wrote
    (tmp_path / "key.json").write_text(json.dumps(key))
    with caplog.at_level("WARNING", logger="cfx.augment"):
        again = ActiveLearner(g, f, Refuses(), **args).augment(pool, train, labels, out=tmp_path)
    assert "did not record who labels them; resuming them as labelled by oracle" in caplog.text
    assert torch.equal(again.labels, first.labels)
    assert "labeller" in json.loads((tmp_path / "key.json").read_text())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget": 0}, "`budget` must be an int >= 1"),
        ({"budget": 2, "rounds": 3}, "`rounds` must not exceed `budget`"),
        ({"frame_levels": (0.5, 1.2)}, "`frame_levels` must be distinct levels in"),
        ({"selection": "best"}, "`selection` must be 'margin' or 'random'"),
    ],
)
def test_bad_arguments_are_named(world, tmp_path, kwargs, match):
    g, f, pool, train, labels = world
    with pytest.raises(ValueError, match=match):
        ActiveLearner(g, f, CountingOracle(), **kwargs).augment(pool, train, labels, out=tmp_path)


@pytest.mark.parametrize("bad", [-1, 2, 0.5])
def test_training_labels_outside_the_classes_are_refused_before_any_labelling(world, tmp_path, bad):
    g, f, pool, train, labels = world
    wrong = labels.clone().double()
    wrong[3] = bad
    with pytest.raises(ValueError, match=r"`train_labels` must be classes .* whole numbers 0\.\.1"):
        ActiveLearner(g, f, Refuses(), budget=4, rounds=1, finetune=CFG).augment(
            pool, train, wrong, out=tmp_path / "a"
        )
    assert not (tmp_path / "a").exists()  # nothing claimed, nothing asked of a person
    # whole-number float labels are classes too: the run gets as far as asking for labels
    with pytest.raises(AssertionError, match="must not ask for labels"):
        ActiveLearner(g, f, Refuses(), budget=4, rounds=1, finetune=CFG).augment(
            pool, train, labels.float(), out=tmp_path / "b"
        )


def test_inputs_the_loop_cannot_use_are_named_before_any_work(world, tmp_path):
    """numpy labels, images the classifier cannot take, a pool of other images and a model
    passed as the labeller once failed inside torch or nn.Module (some after a round)."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Refuses(), budget=4, rounds=1, finetune=CFG)
    with pytest.raises(TypeError, match=r"`train_labels` must be a torch tensor .* got ndarray"):
        learner.augment(pool, train, labels.numpy(), out=tmp_path / "a")
    with pytest.raises(ValueError, match=r"`pool` and `train_images` must hold images of one"):
        learner.augment(pool[:, :, :2, :2], train, labels, out=tmp_path / "b")
    wide = train.repeat(1, 1, 2, 1)  # (1, 8, 4): the toy classifier's weights fit 16 pixels
    with pytest.raises(ValueError, match=r"`classifier` failed on `train_images` shaped"):
        learner.augment(pool.repeat(1, 1, 2, 1), wide, labels, out=tmp_path / "c")
    # images the classifier takes (16 pixels) but the generator does not make (1, 4, 4): the
    # explainer called them `x`, after the round's folder was claimed
    # (the pool's own shape is named, not its first image's: "got (1, 1, 2, 8)" before)
    with pytest.raises(
        ValueError, match=r"`pool` must have the generator's image shape .*got \(40, 1, 2, 8\)"
    ):
        learner.augment(pool.view(-1, 1, 2, 8), train.view(-1, 1, 2, 8), labels, out=tmp_path / "e")
    # the toy classifier casts its inputs; the generator does not, and its error names `pool`
    with pytest.raises(TypeError, match=r"^`pool` is torch.float64 on cpu but the generator's"):
        learner.augment(pool.double(), train.double(), labels, out=tmp_path / "f")
    with pytest.raises(TypeError, match=r"`labeller` must have a `label\(images\)` method"):
        ActiveLearner(g, f, LogisticClassifier(), budget=4, rounds=1).augment(
            pool, train, labels, out=tmp_path / "d"
        )
    assert not any((tmp_path / n).exists() for n in "abcdef")  # nothing claimed


@pytest.mark.parametrize(
    ("budget", "rounds", "levels", "need"),
    [
        (7, 2, (0.4, 0.6), 4),  # rounds of 3 and 4 labels: 2 paths each
        (7, 2, (0.5,), 8),  # 4 paths in the larger round, twice
        (5, 1, (0.3, 0.5, 0.7), 2),
        (4, 4, (0.4, 0.6), 4),  # one label a round still takes a path
    ],
)
def test_the_pool_a_budget_needs(world, budget, rounds, levels, need):
    g, f, *_ = world
    learner = ActiveLearner(
        g, f, CountingOracle(), budget=budget, rounds=rounds, frame_levels=levels
    )
    assert learner.pool_needed() == need


def test_too_small_a_pool_is_a_clear_error(world, tmp_path):
    g, f, pool, train, labels = world
    with pytest.raises(ValueError, match="`pool` must hold at least"):
        ActiveLearner(g, f, CountingOracle(), budget=200).augment(
            pool[:5], train, labels, out=tmp_path
        )


def test_a_folder_of_another_run_is_refused_naming_what_changed(world, tmp_path):
    g, f, pool, train, labels = world

    def learner(classifier=f, **kw):
        args = {"budget": 4, "rounds": 1, "finetune": CFG, "steps": 4} | kw
        return ActiveLearner(g, classifier, CountingOracle(), **args)

    first = learner().augment(pool, train, labels, out=tmp_path)
    other_f = LogisticClassifier()
    with torch.no_grad():
        next(other_f.parameters()).add_(1.0)
    others = [  # (learner, pool, seed, what the error names)
        (learner(budget=6), pool, 0, "budget: 4 before, 6 now"),
        (learner(), pool, 1, "seed: 0 before, 1 now"),
        (learner(), pool.flip(0), 0, "the pool images"),
        (learner(other_f), pool, 0, "the classifier's weights"),
        (learner(finetune=CFG.__class__(epochs=2, batch_size=16)), pool, 0, "finetune.epochs"),
    ]
    for other, images, seed, named in others:
        with pytest.raises(ValueError, match=rf"holds 1 round\(s\) of another run \(.*{named}"):
            other.augment(images, train, labels, out=tmp_path, seed=seed)
    # refused, not deleted: the same run still resumes without a label
    again = ActiveLearner(g, f, Refuses(), budget=4, rounds=1, finetune=CFG, steps=4)
    assert torch.equal(again.augment(pool, train, labels, out=tmp_path).labels, first.labels)
    (tmp_path / "key.json").write_text("{cut short")
    # it said "pass the arguments of the run that wrote them", which no arguments satisfy
    with pytest.raises(ValueError, match=r"its key\.json cannot be read, so which run") as err:
        learner().augment(pool, train, labels, out=tmp_path)
    assert f"delete {tmp_path / 'key.json'} to resume them as this run's" in str(err.value)
    (tmp_path / "key.json").unlink()  # as it advises: the rounds are resumed
    assert torch.equal(learner().augment(pool, train, labels, out=tmp_path).labels, first.labels)


class _Tempered(LogisticClassifier):
    """The toy classifier with a setting that changes its outputs, not its weights (as
    TwoLogits' `outputs` does)."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) / self.temperature


def test_a_classifier_of_other_settings_is_another_run(world, tmp_path, caplog):
    """The key held the classifier's weights alone: a rerun with TwoLogits(net,
    outputs="probability") for TwoLogits(net) returned the first run's frames and weights
    fine-tuned for the other reading (session-54 audit). Keys from before the settings
    were recorded still resume."""
    g, _, pool, train, labels = world
    args = {"budget": 4, "rounds": 1, "finetune": CFG, "steps": 4}
    first = ActiveLearner(g, _Tempered(1.0), CountingOracle(), **args)
    done = first.augment(pool, train, labels, out=tmp_path)
    other = ActiveLearner(g, _Tempered(2.0), Refuses(), **args)
    with pytest.raises(ValueError, match=r"another run \(1 finished; the classifier's modules or"):
        other.augment(pool, train, labels, out=tmp_path)
    stored = json.loads((tmp_path / "key.json").read_text())
    old = {k: v for k, v in stored.items() if not k.endswith("_settings")}  # session 53's
    (tmp_path / "key.json").write_text(json.dumps(old))
    again = ActiveLearner(g, _Tempered(1.0), Refuses(), **args)
    assert torch.equal(again.augment(pool, train, labels, out=tmp_path).labels, done.labels)
    assert json.loads((tmp_path / "key.json").read_text()) == stored  # recorded from now on


def test_an_oracle_is_the_classifier_only_when_it_is_or_copies_it(world, tmp_path, caplog):
    """Equal weights alone said so of two models of other classes that disagreed on half
    the pool (session-54 audit); the same model or a copy of it is still said."""
    import copy

    g, f, pool, train, labels = world

    class Other(LogisticClassifier):  # the same weights by name, another forward
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -super().forward(x)

    said = "`labeller`'s oracle is the classifier being fine-tuned"
    for i, (oracle, expected) in enumerate(((Other(), False), (f, True), (copy.deepcopy(f), True))):
        caplog.clear()
        learner = ActiveLearner(g, f, OracleLabeller(oracle), budget=2, rounds=1, finetune=CFG)
        with caplog.at_level("WARNING", logger="cfx.augment"):
            learner.augment(pool, train, labels, out=tmp_path / str(i))
        assert (said in caplog.text) is expected, i


def test_rounds_without_a_key_are_adopted_with_a_warning(world, tmp_path, caplog):
    g, f, pool, train, labels = world
    args = {"budget": 4, "rounds": 1, "finetune": CFG, "steps": 4}
    first = ActiveLearner(g, f, CountingOracle(), **args).augment(pool, train, labels, out=tmp_path)
    (tmp_path / "key.json").unlink()  # rounds an older cfx wrote, before run keys
    with caplog.at_level("WARNING", logger="cfx.augment"):
        again = ActiveLearner(g, f, Refuses(), **args).augment(pool, train, labels, out=tmp_path)
    assert "without a key.json (an older cfx wrote them); resuming" in caplog.text
    assert torch.equal(again.labels, first.labels)  # read back, not labelled again
    assert (tmp_path / "key.json").is_file()  # from now on the folder is keyed
    with pytest.raises(ValueError, match="seed: 0 before, 3 now"):
        ActiveLearner(g, f, Refuses(), **args).augment(pool, train, labels, out=tmp_path, seed=3)


def test_the_demo_starts_its_own_run_afresh_where_a_user_is_refused(world, tmp_path):
    from cfx.demo import augment_afresh
    from cfx.errors import ForeignRunError

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    learner.augment(pool, train, labels, out=tmp_path / "run", seed=0)
    with pytest.raises(ForeignRunError):  # a user's folder: refused
        learner.augment(pool, train, labels, out=tmp_path / "run", seed=1)
    oracle = CountingOracle()
    again = ActiveLearner(g, f, oracle, budget=4, rounds=1, finetune=CFG, steps=4)
    res = augment_afresh(again, pool, train, labels, tmp_path / "run", seed=1)  # the demo's
    assert oracle.given == 4 and res.labels_used == 4  # labelled anew, for seed 1
    assert '"seed": 1' in (tmp_path / "run" / "key.json").read_text()


def test_rounds_read_back_are_scored_by_the_rerun(world, tmp_path):
    g, f, pool, train, labels = world
    args = {"budget": 4, "rounds": 1, "finetune": CFG, "steps": 4}
    ActiveLearner(g, f, CountingOracle(), **args).augment(
        pool, train, labels, out=tmp_path, eval_fn=lambda m: {"old_test": 0.5}
    )
    res = ActiveLearner(g, f, Refuses(), **args).augment(
        pool, train, labels, out=tmp_path, eval_fn=lambda m: {"new_test": 0.25}
    )
    assert res.rounds[0].metrics == {"new_test": 0.25}  # one test set in the result


def test_a_resumed_run_does_not_reuse_the_starts_of_rounds_read_back(world, tmp_path):
    g, f, pool, train, labels = world
    args = {"budget": 4, "rounds": 2, "finetune": CFG, "steps": 4}
    first = ActiveLearner(g, f, CountingOracle(), **args).augment(pool, train, labels, out=tmp_path)
    shutil.rmtree(tmp_path / "round_01")  # round 0 is read back, round 1 computed again
    again = ActiveLearner(g, f, CountingOracle(), **args).augment(pool, train, labels, out=tmp_path)
    assert torch.equal(again.rounds[1].starts, first.rounds[1].starts)
    assert not set(again.rounds[1].starts.tolist()) & set(again.rounds[0].starts.tolist())


def test_an_oracle_labeller_needs_a_positive_batch_size():
    """batch_size 0 once failed at labelling time with "range() arg 3 must not be zero"."""
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1, got 0"):
        OracleLabeller(LogisticClassifier(), batch_size=0)


def test_a_finetune_seed_that_augment_replaces_is_said(world, tmp_path, caplog):
    """`finetune.seed` was replaced by augment's seed + round without a word."""
    from dataclasses import replace

    g, f, pool, train, labels = world
    mine = replace(CFG, seed=5)
    learner = ActiveLearner(g, f, CountingOracle(), budget=2, rounds=1, finetune=mine, steps=2)
    with caplog.at_level("WARNING"):
        learner.augment(pool, train, labels, out=tmp_path / "a", seed=1)
    assert "`finetune.seed` (5) is not used: round k fine-tunes with augment's `seed` + k" in (
        caplog.text
    )
    caplog.clear()
    same = ActiveLearner(g, f, CountingOracle(), budget=2, rounds=1, finetune=CFG, steps=2)
    with caplog.at_level("WARNING"):
        same.augment(pool, train, labels, out=tmp_path / "b", seed=1)  # the default: silent
    assert "finetune.seed" not in caplog.text


def test_the_remainder_of_the_budget_goes_to_the_last_round(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=7, rounds=2, finetune=CFG, steps=4)
    res = learner.augment(pool, train, labels, out=tmp_path)
    assert [r.labelled for r in res.rounds] == [3, 4]  # 7 // 2 = 3, and the 1 left over last


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repeat_new": 0}, "`repeat_new` must be an int >= 1, got 0"),
        ({"batch_size": 0}, "`batch_size` must be an int >= 1, got 0"),
        ({"frame_levels": ()}, r"`frame_levels` must be distinct levels in \(0, 1\), got \(\)"),
        ({"frame_levels": (0.0, 0.5)}, r"`frame_levels` must be distinct levels in \(0, 1\)"),
        ({"frame_levels": (0.5, 1.0)}, r"`frame_levels` must be distinct levels in \(0, 1\)"),
        ({"frame_levels": (0.4, 0.4)}, r"`frame_levels` must be distinct levels in \(0, 1\)"),
    ],
)
def test_more_bad_arguments_are_named_before_any_work(world, tmp_path, kwargs, match):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Refuses(), **{"budget": 4, "rounds": 1} | kwargs)
    with pytest.raises(ValueError, match=match):
        learner.augment(pool, train, labels, out=tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kwargs", [{"rounds": True}, {"steps": 2.0}])
def test_a_count_of_the_wrong_type_is_a_type_error(world, tmp_path, kwargs):
    """A bool or float count was a ValueError here and a TypeError elsewhere (check_int)."""
    g, f, pool, train, labels = world
    ((name, value),) = kwargs.items()
    learner = ActiveLearner(g, f, Refuses(), **{"budget": 4, "rounds": 1} | kwargs)
    with pytest.raises(TypeError, match=f"`{name}` must be an int >= 1, got {value}"):
        learner.augment(pool, train, labels, out=tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_classifier_that_is_no_module_is_named(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, lambda x: f(x), Refuses(), budget=4, rounds=1, finetune=CFG)
    with pytest.raises(TypeError, match=r"`classifier` must be an nn\.Module .* got function"):
        learner.augment(pool, train, labels, out=tmp_path / "a")


def test_pool_and_training_images_of_other_channels_or_counts_are_named(world, tmp_path):
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Refuses(), budget=4, rounds=1, finetune=CFG)
    with pytest.raises(ValueError, match=r"`pool` and `train_images` must hold images of one"):
        learner.augment(pool.repeat(1, 2, 1, 1), train, labels, out=tmp_path / "a")
    with pytest.raises(ValueError, match=r"`train_labels` must have shape \(30,\), got \(29,\)"):
        learner.augment(pool, train, labels[:29], out=tmp_path / "b")
    with pytest.raises(ValueError, match=r"`pool` must have values in \[-1, 1\]"):
        learner.augment(pool * 3, train, labels, out=tmp_path / "c")
    assert not any((tmp_path / n).exists() for n in "abc")


def test_the_edges_of_the_checks_are_allowed(world, tmp_path):
    """One round per label (rounds == budget) and a pool of exactly pool_needed() images are
    enough: the run gets as far as asking for labels."""
    g, f, pool, train, labels = world
    one_each = ActiveLearner(g, f, Refuses(), budget=2, rounds=2, finetune=CFG, steps=2)
    with pytest.raises(AssertionError, match="must not ask for labels"):
        one_each.augment(pool, train, labels, out=tmp_path / "a")
    learner = ActiveLearner(g, f, Refuses(), budget=4, rounds=1, finetune=CFG, steps=2)
    assert learner.pool_needed() == 2  # 4 labels, 2 levels a path: 2 paths
    with pytest.raises(AssertionError, match="must not ask for labels"):
        learner.augment(pool[:2], train, labels, out=tmp_path / "b")


def test_a_finetune_seed_equal_to_augments_is_not_warned_about(world, tmp_path, caplog):
    from dataclasses import replace

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Refuses(), budget=2, rounds=1, finetune=replace(CFG, seed=5))
    with caplog.at_level("WARNING"), pytest.raises(AssertionError, match="must not ask"):
        learner.augment(pool, train, labels, out=tmp_path, seed=5)  # the same seed: no news
    assert "finetune.seed" not in caplog.text


class SigmoidGenerator(LinearGenerator):
    """The toy generator ending in a sigmoid: no pixel below 0, which cfx warns about."""

    def decode(self, z):
        return torch.sigmoid(super().decode(z))


def test_the_generator_range_notice_is_given_once_per_run(world, tmp_path, caplog):
    """The notice about the generator's range was repeated every round (the generator is the
    same in each): one run of two rounds of two chunks must give it once."""
    _, f, pool, train, labels = world
    learner = ActiveLearner(
        SigmoidGenerator(),
        f,
        CountingOracle(),
        budget=8,
        rounds=2,
        finetune=CFG,
        steps=4,
        batch_size=1,
        frame_levels=(0.4, 0.6),
    )
    with caplog.at_level("WARNING"):
        learner.augment(pool, train, labels, out=tmp_path)
    assert caplog.text.count("the generator's decoded images have no pixel below 0") == 1


def test_a_unit_range_pool_is_noticed_once_per_run(world, tmp_path, caplog):
    """Each chunk of each round said "no pixel of the 1 input image is below 0": once for
    the pool now, with its size."""
    g, f, pool, train, labels = world
    unit = (pool + 1) / 2  # every pixel in [0, 1]
    learner = ActiveLearner(
        g, f, CountingOracle(), budget=8, rounds=2, finetune=CFG, steps=4, batch_size=1
    )
    with caplog.at_level("WARNING"):
        learner.augment(unit, train, labels, out=tmp_path)
    assert caplog.text.count("is below 0 (values") == 1
    assert "no pixel of the 40 pool images is below 0" in caplog.text


class ThreeClass(torch.nn.Module):
    """The toy classifier's two logits plus a third, constant one."""

    def __init__(self):
        super().__init__()
        self.f = LogisticClassifier()

    def forward(self, x):
        out = self.f(x)
        return torch.cat([out, torch.zeros_like(out[:, :1])], 1)


def test_classes_are_checked_before_any_frame_or_label(world, tmp_path):
    """A labeller of three classes stopped the first fine-tune after a person had labelled
    the round ("`targets` must be class indices below the model's 2 outputs"); a 3-class
    classifier was accepted although the paths cross a two-class boundary."""
    g, f, pool, train, labels = world
    cases = [
        (
            f,
            TaskLabeller(class_names=("healthy", "tumour", "other")),
            r"`labeller` must offer the classifier's 2 classes, got 3 \(healthy, tumour, other",
        ),
        (f, OracleLabeller(ThreeClass()), "`labeller`'s oracle must tell the classifier's 2 "),
        (ThreeClass(), CountingOracle(), "`classifier` must tell two classes apart"),
    ]
    for clf, labeller, match in cases:
        learner = ActiveLearner(g, clf, labeller, budget=4, rounds=1, finetune=CFG, steps=4)
        with pytest.raises(ValueError, match=match):
            learner.augment(pool, train, labels, out=tmp_path / "run")
        assert not (tmp_path / "run").exists()  # nothing claimed, no task written


def test_a_fine_tune_interrupted_before_a_label_changed_starts_again(tmp_path, caplog):
    """Its checkpoint was refused as 'a different run; use a new folder', costing every other
    round; the round's own fine-tune now starts again, and only when its labels changed."""
    from cfx.augment.rounds import LABELS_STAMP, restart_if_relabelled

    train = tmp_path / "round_00" / "train"
    labels = torch.tensor([0, 1, 1, 0])
    restart_if_relabelled(train, labels, 0)  # the first attempt records its labels
    (train / "checkpoint.safetensors").write_bytes(b"interrupted")
    restart_if_relabelled(train, labels, 0)  # the same labels: resumed as it is
    assert (train / "checkpoint.safetensors").exists()
    stamp = (train / LABELS_STAMP).read_text()
    with caplog.at_level("WARNING"):
        restart_if_relabelled(train, torch.tensor([0, 1, 0, 0]), 0)
    assert not (train / "checkpoint.safetensors").exists()
    assert "round 0's labels changed since its fine-tune was interrupted" in caplog.text
    assert (train / LABELS_STAMP).read_text() != stamp


def test_a_round_without_a_crossing_path_asks_no_labeller_and_ends_the_run(world, tmp_path, caplog):
    """When no start crossed from its near side, the labeller was asked about zero images and
    the run failed ("`images` must hold at least one image")."""
    _, f, _, train, labels = world
    g = TowardClassOne()
    g_far = TowardClassOne()
    g_far.shift = 8.0
    gen = torch.Generator().manual_seed(0)
    pool = g.decode(torch.randn(200, 3, generator=gen) * 3).detach().clamp(-1, 1)
    with torch.no_grad():
        pool = pool[torch.softmax(f(pool), 1)[:, 1] < 0.5][:12]  # all in class 0
    learner = ActiveLearner(g_far, f, OracleLabeller(f), budget=4, rounds=2, finetune=CFG, steps=6)
    with caplog.at_level("WARNING"):
        res = learner.augment(pool, train, labels, out=tmp_path / "run")
    assert res.labels_used == 0 and res.rounds == ()
    assert "round 0: no pool image left gives a path that crosses the boundary" in caplog.text


def test_unit_range_training_images_are_noticed(world, tmp_path, caplog):
    """Only the pool was checked: [0, 1] training images were fine-tuned on beside the
    [-1, 1] frames without a word."""
    g, f, pool, train, labels = world
    assert float(train.min()) < 0  # the toy world's own images are in [-1, 1]
    learner = ActiveLearner(g, f, CountingOracle(), budget=2, rounds=1, finetune=CFG, steps=2)
    with caplog.at_level("WARNING"):
        learner.augment(pool, (train + 1) / 2, labels, out=tmp_path)
    assert caplog.text.count("is below 0 (values") == 1
    assert f"no pixel of the {len(train)} training images is below 0" in caplog.text


def test_frames_a_person_cannot_call_are_kept_but_not_trained_on(world, tmp_path, monkeypatch):
    import cfx.augment.active as active
    from cfx.label import UNSURE

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, TaskLabeller(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(LabelsPending):
        learner.augment(pool, train, labels, out=tmp_path)
    task_dir = tmp_path / "round_00" / "task"
    first, *rest = pending(task_dir)
    record_label(task_dir, first, UNSURE)
    for item_id in rest:
        record_label(task_dir, item_id, 1)
    seen = {}
    real = active.train_classifier

    def spy(model, xs, ys, *args, **kwargs):
        seen["xs"], seen["ys"] = xs.clone(), ys.clone()
        return real(model, xs, ys, *args, **kwargs)

    monkeypatch.setattr(active, "train_classifier", spy)
    res = learner.augment(pool, train, labels, out=tmp_path)
    (r,) = res.rounds
    assert (r.labelled, r.unsure, r.label_counts) == (4, 1, (0, 3))  # a label spent all the same
    assert res.labels.tolist() == [UNSURE, 1, 1, 1]  # kept with the round, as answered
    # trained on the training set and the three frames with a class, each repeat_new times
    n = len(train) + learner.repeat_new * 3
    assert seen["ys"].shape == (n,) and bool((seen["ys"] >= 0).all())
    assert not any(torch.equal(x, res.images[0]) for x in seen["xs"][len(train) :])
    # read back from disk as it was
    again = ActiveLearner(g, f, TaskLabeller(), budget=4, rounds=1, finetune=CFG, steps=4)
    (back,) = again.augment(pool, train, labels, out=tmp_path).rounds
    assert (back.unsure, back.label_counts) == (1, (0, 3))


def test_a_labeller_answering_outside_the_classes_is_named(world, tmp_path):
    class Wild:
        def label(self, images, **kwargs):
            return torch.full((images.shape[0],), 2)

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Wild(), budget=2, rounds=1, finetune=CFG, steps=2)
    with pytest.raises(ValueError, match=r"must return class indices 0 or 1, or -1 .* got \[2\]"):
        learner.augment(pool, train, labels, out=tmp_path)


def test_the_walks_of_a_round_show_progress(world, tmp_path, capsys):
    """Only the fine-tune had bars: a round's walks took minutes without a sign of life."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(
        g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=2, show_progress=True
    )
    learner.augment(pool, train, labels, out=tmp_path)
    err = capsys.readouterr().err
    assert "round 0: paths across the boundary" in err
    # the bar sat at 0/1 while a batch was walked (30 s in the audit): it says what it walks
    assert re.search(r"walking starts 1-\d+ of \d+", err)
    quiet = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=2)
    quiet.augment(pool, train, labels, out=tmp_path / "quiet")
    assert "paths across the boundary" not in capsys.readouterr().err


def test_a_finished_round_keeps_no_fine_tune_checkpoint(world, tmp_path):
    """Each round left its fine-tune's resume point (model and optimiser, ~3x the model's
    size) beside round.safetensors, which holds the round's weights."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=2, finetune=CFG, steps=2)
    first = learner.augment(pool, train, labels, out=tmp_path)
    assert list(tmp_path.glob("round_*/train/checkpoint.safetensors")) == []
    # the rounds are read back whole without it
    again = learner.augment(pool, train, labels, out=tmp_path)
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name


def test_a_round_answered_all_unsure_has_no_disagreement(world, tmp_path):
    """It read 0.0, as if the labels agreed with the classifier on every frame."""
    import math

    from cfx.label import UNSURE

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, TaskLabeller(), budget=2, rounds=1, finetune=CFG, steps=2)
    with pytest.raises(LabelsPending):
        learner.augment(pool, train, labels, out=tmp_path)
    for item_id in pending(tmp_path / "round_00" / "task"):
        record_label(tmp_path / "round_00" / "task", item_id, UNSURE)
    (r,) = learner.augment(pool, train, labels, out=tmp_path).rounds
    assert r.unsure == 2 and r.label_counts == (0, 0) and math.isnan(r.disagreement)
    (back,) = learner.augment(pool, train, labels, out=tmp_path).rounds  # read from disk
    assert math.isnan(back.disagreement)
    # round.json is strict JSON (it held NaN, which JSON parsers other than Python's refuse)

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    text = (tmp_path / "round_00" / "round.json").read_text()
    assert json.loads(text, parse_constant=no_constants)["disagreement"] is None


def test_a_folder_of_something_else_is_refused_and_left_as_it_was(world, tmp_path):
    """An out folder without the run's key.json but with other files (a trained model's) was
    taken as a new run's: the command then overwrote its model/ and summary.json. Not a
    ForeignRunError, on which the demo deletes another run's folder to start afresh."""
    from cfx.errors import ForeignRunError

    g, f, pool, train, labels = world
    out = tmp_path / "other"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / ".DS_Store").write_text("")  # hidden files and copied round tasks do not count
    learner = ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(
        FileExistsError, match=r"holds files that are not a cfx augment run's \(summary.json\)"
    ) as err:
        learner.augment(pool, train, labels, out=out)
    assert not isinstance(err.value, ForeignRunError)
    assert sorted(p.name for p in out.iterdir()) == [".DS_Store", "summary.json"]
    (out / "summary.json").unlink()
    assert learner.augment(pool, train, labels, out=out).labels_used == 4  # hidden files only


@pytest.mark.parametrize(
    ("kwargs", "out", "error", "match"),
    [
        ({"inversion_steps": -1}, "a", ValueError, "`inversion_steps` must be an int >= 0, got -1"),
        ({"frame_levels": "0.4"}, "a", TypeError, "`frame_levels` must be a sequence of numbers"),
        ({"frame_levels": 0.4}, "a", TypeError, "`frame_levels` must be a sequence of numbers"),
        ({"finetune": {"epochs": 1}}, "a", TypeError, "`finetune` must be None or a Classifier"),
        ({}, None, TypeError, "`out` must be a folder path"),
    ],
)
def test_arguments_checked_late_or_in_python_words_are_named_first(
    world, tmp_path, kwargs, out, error, match
):
    """inversion_steps=-1 was refused after key.json was written; frame_levels="0.4" failed
    with "'<' not supported between 'float' and 'str'", out=None inside pathlib."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Refuses(), **{"budget": 4, "rounds": 1} | kwargs)
    with pytest.raises(error, match=match):
        learner.augment(pool, train, labels, out=None if out is None else tmp_path / out)
    assert not (tmp_path / "a").exists()


class OneArgument:
    def label(self, images):  # the Protocol's keywords missing
        return torch.zeros(images.shape[0], dtype=torch.long)


@pytest.mark.parametrize(
    ("labeller", "augment_kwargs", "labels_as", "error", "match"),
    [
        (Refuses(), {"seed": 1.5}, None, TypeError, r"`seed` must be an int in \[0, 2\*\*32\)"),
        (Refuses(), {"seed": None}, None, TypeError, "`seed` must be an int"),
        (Refuses(), {"eval_fn": 0.5}, None, TypeError, "`eval_fn` must be None or a function"),
        (CountingOracle, {}, None, TypeError, "got the class .*: make one, e.g. OracleLabeller"),
        (OneArgument(), {}, None, TypeError, r"label method must take \(images, \*, context"),
        (
            Refuses(),
            {},
            torch.bool,
            TypeError,
            r"`train_labels` must be class indices \(integers\), got dtype torch.bool",
        ),
    ],
)
def test_arguments_that_failed_after_the_walk_are_named_before_it(
    world, tmp_path, labeller, augment_kwargs, labels_as, error, match
):
    """seed=1.5 was refused by the first fine-tune, after the walk (and a person's labels),
    with the seed already in key.json: the corrected call was then refused as another run.
    A labeller class, a label(images) method, bool labels failed inside the loop."""
    g, f, pool, train, labels = world
    labels = labels if labels_as is None else labels.to(labels_as)
    learner = ActiveLearner(g, f, labeller, budget=4, rounds=1, finetune=CFG, steps=2)
    with pytest.raises(error, match=match):
        learner.augment(pool, train, labels, out=tmp_path / "a", **augment_kwargs)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (lambda n: torch.full((n,), 0.9), ValueError, r"class indices \(whole numbers\), got "),
        (lambda n: torch.full((n,), float("nan")), ValueError, r"got torch.float32 values such"),
        (lambda n: torch.full((n,), float("inf")), ValueError, r"values such as \[inf"),
        (lambda n: object(), TypeError, "must return class indices as a tensor"),
        (lambda n: torch.zeros(n + 1), ValueError, r"one label per image \(\d+\), got shape"),
    ],
)
def test_a_labeller_answer_that_is_no_class_indices_is_refused(
    world, tmp_path, answer, error, match
):
    """A probability of 0.9 was truncated to class 0 and trained on."""

    class Answers:
        def label(self, images, **kwargs):
            return answer(images.shape[0])

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, Answers(), budget=2, rounds=1, finetune=CFG, steps=2)
    with pytest.raises(error, match=match):
        learner.augment(pool, train, labels, out=tmp_path)


@pytest.mark.parametrize(
    "form",
    [
        lambda y: y.numpy(),
        lambda y: y.tolist(),
        lambda y: y.bool(),  # `p > 0.5`
        lambda y: y.to(torch.uint8),
        lambda y: y.double(),  # whole numbers as floats
    ],
)
def test_a_labeller_may_answer_in_numpy_a_list_or_bools(world, tmp_path, form):
    class Answers:
        def label(self, images, **kwargs):
            return form((images.flatten(1).sum(1) > 0).long())

    g, f, pool, train, labels = world
    res = ActiveLearner(g, f, Answers(), budget=2, rounds=1, finetune=CFG, steps=2).augment(
        pool, train, labels, out=tmp_path
    )
    assert res.labels.dtype == torch.int64
    assert torch.equal(res.labels, (res.images.flatten(1).sum(1) > 0).long())


@pytest.mark.parametrize(
    "scores", [0.9, None, {"acc": [1, 2]}, {"acc": torch.ones(2)}, {"acc": "0.9"}, {1: 0.9}]
)
def test_an_eval_fn_that_returns_no_scores_is_named(world, tmp_path, scores):
    """It failed as "'float' object has no attribute 'items'", and only after the first
    round's walk, labels and fine-tune: now on the start, before any of them."""
    g, f, pool, train, labels = world
    oracle = CountingOracle()
    learner = ActiveLearner(g, f, oracle, budget=2, rounds=1, finetune=CFG, steps=2)
    with pytest.raises(TypeError, match=r"`eval_fn` must return a dict of metric name -> number"):
        learner.augment(pool, train, labels, out=tmp_path, eval_fn=lambda model: scores)
    assert oracle.given == 0 and not (tmp_path / "round_00").exists()  # nothing walked
    res = learner.augment(
        pool, train, labels, out=tmp_path, eval_fn=lambda model: {"acc": np.float64(0.5)}
    )  # a numpy scalar is a number
    assert res.rounds[0].metrics == {"acc": 0.5} and res.start_metrics == {"acc": 0.5}


def test_the_start_is_scored_on_the_classifier_before_any_round(world, tmp_path):
    """``start_metrics``: the baseline the rounds' metrics are read against, scored on the
    classifier as given (a copy: the user's model is not what eval_fn sees)."""
    g, f, pool, train, labels = world
    seen = []

    def evaluate(model):
        seen.append(model)
        return {"bias": float(next(model.parameters()).detach().sum())}

    before = {"bias": float(next(f.parameters()).detach().sum())}
    learner = ActiveLearner(g, f, CountingOracle(), budget=2, rounds=1, finetune=CFG, steps=2)
    res = learner.augment(pool, train, labels, out=tmp_path, eval_fn=evaluate)
    assert res.start_metrics == pytest.approx(before)
    assert res.rounds[0].metrics != res.start_metrics  # fine-tuned since
    assert all(model is not f for model in seen)
    plain = learner.augment(pool, train, labels, out=tmp_path)  # read back, no eval_fn
    assert plain.start_metrics == {}


def test_frame_levels_may_be_a_numpy_array(world, tmp_path):
    """A 1-d array of levels worked before frame_levels was checked to be a sequence."""
    g, f, pool, train, labels = world
    learner = ActiveLearner(
        g, f, Refuses(), budget=4, rounds=1, finetune=CFG, frame_levels=np.array([0.4, 0.6])
    )
    with pytest.raises(AssertionError, match="must not ask for labels"):  # past every check
        learner.augment(pool, train, labels, out=tmp_path)


def test_a_labeller_is_told_by_isinstance(world):
    """isinstance(x, Labeller) raised TypeError (a Protocol not runtime-checkable), as
    cfx.types' Protocols are."""
    from cfx.augment import Labeller

    _, f, *_ = world
    assert isinstance(OracleLabeller(f), Labeller) and isinstance(TaskLabeller(), Labeller)
    assert not isinstance(f, Labeller)


def test_the_oracle_labeller_sends_images_to_its_models_device_and_dtype(world):
    """Frames on the CPU with an oracle on a GPU failed after the walk: the labeller handed
    the images over as they came. A float64 oracle stands in for the other device here."""

    class Strict(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))

        def forward(self, x):
            assert x.dtype == self.w.dtype and x.device == self.w.device, "not moved"
            return torch.stack([-x.flatten(1).sum(1), x.flatten(1).sum(1)], 1) * self.w

    _, _, pool, _, _ = world
    labels = OracleLabeller(Strict()).label(pool[:6])
    assert labels.dtype == torch.int64 and labels.device == pool.device
    assert torch.equal(labels, (pool[:6].flatten(1).sum(1) > 0).long())


def test_a_rerun_after_a_person_labelled_does_not_walk_again(world, tmp_path, monkeypatch):
    """Each rerun while a round waited for labels walked every path again (minutes a round),
    and found the person's task only if the frames came out bit for bit the same."""

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, TaskLabeller(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(LabelsPending):
        learner.augment(pool, train, labels, out=tmp_path)
    assert (tmp_path / "round_00" / CANDIDATES_FILE).is_file()

    def no_walk(*args, **kwargs):
        raise AssertionError("the round's paths were walked again")

    monkeypatch.setattr(ActiveLearner, "_candidates", no_walk)
    with pytest.raises(LabelsPending, match="4 of 4 images wait"):
        learner.augment(pool, train, labels, out=tmp_path)
    task_dir = tmp_path / "round_00" / "task"
    for item_id in pending(task_dir):
        record_label(task_dir, item_id, 1)
    res = learner.augment(pool, train, labels, out=tmp_path)
    assert res.labels.tolist() == [1, 1, 1, 1]
    assert not (tmp_path / "round_00" / CANDIDATES_FILE).exists()  # spent
    # a damaged walk is walked again, not an error
    monkeypatch.undo()
    with pytest.raises(LabelsPending):
        learner.augment(pool, train, labels, out=tmp_path / "again")
    (tmp_path / "again" / "round_00" / CANDIDATES_FILE).write_bytes(b"half a file")
    with pytest.raises(LabelsPending, match="4 of 4 images wait"):
        learner.augment(pool, train, labels, out=tmp_path / "again")


@pytest.mark.parametrize(("levels", "margin"), [((0.4, 0.6), 0.95), ((0.4, 0.99), 0.995)])
def test_the_walk_goes_past_the_highest_level_asked_for(
    world, tmp_path, monkeypatch, levels, margin
):
    """The walk stopped at 0.95 whatever the levels: a frame for 0.99 was one at about 0.95."""
    import cfx.augment.active as active

    seen = []

    class Spy(active.GradientAscent):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs["margin"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(active, "GradientAscent", Spy)
    g, f, pool, train, labels = world
    learner = ActiveLearner(
        g, f, CountingOracle(), budget=2, rounds=1, finetune=CFG, steps=4, frame_levels=levels
    )
    learner.augment(pool, train, labels, out=tmp_path)
    assert seen == [pytest.approx(margin)]


def test_a_walk_saved_by_another_run_or_model_is_walked_again(world, tmp_path, monkeypatch):
    """The saved walk was used whatever made it: a round k-1 redone (its file lost) left
    round k asking about frames the old model had walked and suggested."""
    import pickle

    from safetensors.torch import load_file, save_file

    g, f, pool, train, labels = world
    learner = ActiveLearner(g, f, TaskLabeller(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(LabelsPending) as pending_error:
        learner.augment(pool, train, labels, out=tmp_path)
    back = pickle.loads(pickle.dumps(pending_error.value))  # it crosses processes whole
    assert (back.pending, back.total, str(back)) == (4, 4, str(pending_error.value))
    cache = tmp_path / "round_00" / CANDIDATES_FILE
    save_file(load_file(str(cache)), str(cache), metadata={"key": "another", "model": "run"})
    walks = []
    real = ActiveLearner._candidates

    def counted_walk(self, *args, **kwargs):
        walks.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ActiveLearner, "_candidates", counted_walk)
    with pytest.raises(LabelsPending, match="4 of 4 images wait"):  # the same frames again
        learner.augment(pool, train, labels, out=tmp_path)
    assert walks == [1]


def test_an_out_that_is_a_file_is_refused_before_the_run_key(world, tmp_path):
    """It was refused after the pool, training set and both models were hashed and the
    labeller's run_key() asked (whose own error then came first)."""

    class KeyFails(CountingOracle):
        def run_key(self):
            raise RuntimeError("run_key asked")

    g, f, pool, train, labels = world
    out = tmp_path / "a-file"
    out.write_text("not a folder")
    learner = ActiveLearner(g, f, KeyFails(), budget=4, rounds=1, finetune=CFG, steps=4)
    with pytest.raises(ValueError, match=r"`out` must be a folder .* got the file"):
        learner.augment(pool, train, labels, out=out)


def test_a_finished_run_goes_on_with_more_rounds_keeping_its_labels(world, tmp_path, caplog):
    """A run of 1 round could not be given a second: any other budget or rounds was another
    run, and a person's labels of the first would be asked for again in a new folder."""
    from cfx.errors import ForeignRunError

    g, f, pool, train, labels = world
    args = {"finetune": CFG, "steps": 4}
    ActiveLearner(g, f, CountingOracle(), budget=4, rounds=1, **args).augment(
        pool, train, labels, out=tmp_path / "run"
    )
    with pytest.raises(ForeignRunError, match="budget 200 in 2 rounds goes on as 400 in 4") as e:
        # 3 labels a round would relabel the first (4): refused, saying what goes on
        ActiveLearner(g, f, CountingOracle(), budget=6, rounds=2, **args).augment(
            pool, train, labels, out=tmp_path / "run"
        )
    from cfx.cli.augment import _flag_names  # the command names its flags, not the hint's words

    said = _flag_names(str(e.value))
    assert "--rounds: 1 before, 2 now" in said and "over the rounds, so budget 200" in said
    oracle = CountingOracle()
    with caplog.at_level("WARNING", logger="cfx.augment"):
        longer = ActiveLearner(g, f, oracle, budget=8, rounds=2, **args).augment(
            pool, train, labels, out=tmp_path / "run"
        )
    assert "goes on with a budget of 8 labels in 2 rounds (it had 4 in 1)" in caplog.text
    assert oracle.given == 4  # the second round's labels only
    fresh = ActiveLearner(g, f, CountingOracle(), budget=8, rounds=2, **args).augment(
        pool, train, labels, out=tmp_path / "fresh"
    )  # the same two rounds computed in one go
    assert torch.equal(longer.images, fresh.images) and torch.equal(longer.labels, fresh.labels)
    for name, value in fresh.model.state_dict().items():
        assert torch.equal(value, longer.model.state_dict()[name]), name
    assert json.loads((tmp_path / "run" / "key.json").read_text())["budget"] == 8


def test_a_round_waiting_for_labels_keeps_its_walk_when_the_run_goes_on(
    world, tmp_path, monkeypatch
):
    """key.json is rewritten with the new budget and rounds; the saved walk recorded the
    whole key's digest, so the waiting round was walked again (on a GPU, frames not bit for
    bit the same would make the person's task another's). Fewer rounds than before are
    another run."""
    from cfx.errors import ForeignRunError

    g, f, pool, train, labels = world
    args = {"finetune": CFG, "steps": 4}
    with pytest.raises(LabelsPending):
        ActiveLearner(g, f, TaskLabeller(), budget=8, rounds=2, **args).augment(
            pool, train, labels, out=tmp_path
        )

    def no_walk(*args, **kwargs):
        raise AssertionError("the waiting round's paths were walked again")

    with monkeypatch.context() as m:
        m.setattr(ActiveLearner, "_candidates", no_walk)
        with pytest.raises(LabelsPending, match="4 of 4 images wait"):
            ActiveLearner(g, f, TaskLabeller(), budget=16, rounds=4, **args).augment(
                pool, train, labels, out=tmp_path
            )
    with pytest.raises(ForeignRunError, match="rounds: 4 before, 3 now"):
        ActiveLearner(g, f, TaskLabeller(), budget=12, rounds=3, **args).augment(
            pool, train, labels, out=tmp_path
        )  # round 0 would keep its 4 labels, but a run does not go on with fewer rounds


def test_imbalanced_training_labels_are_noticed_once_per_run(world, tmp_path, caplog):
    """Each round's fine-tune said the training labels were imbalanced (the same labels,
    a few frames added): once per run now."""
    g, f, pool, train, _ = world
    train = train.repeat(3, 1, 1, 1)
    labels = torch.zeros(90, dtype=torch.int64)
    labels[:2] = 1  # 88 to 2, and each of the rounds adds 4 labelled frames
    learner = ActiveLearner(
        g, f, CountingOracle(), budget=8, rounds=2, finetune=CFG, steps=4, repeat_new=1
    )
    with caplog.at_level("WARNING"):
        result = learner.augment(pool, train, labels, out=tmp_path)
    assert len(result.rounds) == 2
    assert caplog.text.count("the training labels are imbalanced") == 1


def test_numpy_settings_and_seed_resume_as_python_ones(world, tmp_path):
    """budget=np.int64(4) was written to key.json as "4", and a rerun with budget=4 was
    refused as another run; seed=np.int64(0) failed in torch's manual_seed."""
    g, f, pool, train, labels = world

    def learner(budget, levels):
        return ActiveLearner(
            g,
            f,
            CountingOracle(),
            budget=budget,
            rounds=1,
            finetune=CFG,
            steps=4,
            frame_levels=levels,
            selection="random",
        )

    first = learner(np.int64(4), np.array([0.4, 0.6], dtype=np.float32))
    done = first.augment(pool, train, labels, out=tmp_path, seed=np.int64(0))
    key = json.loads((tmp_path / "key.json").read_text())
    assert key["budget"] == 4 and key["seed"] == 0
    again = learner(4, (float(np.float32(0.4)), float(np.float32(0.6))))
    resumed = again.augment(pool, train, labels, out=tmp_path, seed=0)
    assert torch.equal(resumed.labels, done.labels)


def test_an_oracle_labeller_around_a_function_runs(world, tmp_path):
    """OracleLabeller(lambda im: judge(im)) labelled on its own, and the learner's check
    of it failed with "'function' object has no attribute 'modules'"."""
    g, f, pool, train, labels = world

    def judge(im):  # the true rule x.sum() > 0 as two logits
        s = im.flatten(1).sum(1)
        return torch.stack([-s, s], 1)

    labeller = OracleLabeller(lambda im: judge(im))
    learner = ActiveLearner(g, f, labeller, budget=2, rounds=1, finetune=CFG, steps=4)
    result = learner.augment(pool, train, labels, out=tmp_path)
    assert result.rounds[0].labelled == 2


def test_pool_needed_checks_the_settings_first(world):
    g, f, *_ = world
    with pytest.raises(ValueError, match="`rounds` must be an int >= 1, got 0"):
        ActiveLearner(g, f, CountingOracle(), budget=2, rounds=0).pool_needed()
    with pytest.raises(TypeError, match=r"`budget` must be an int >= 1, got 2\.5"):
        ActiveLearner(g, f, CountingOracle(), budget=2.5, rounds=1).pool_needed()


class _Wrapped:
    """A generator wrapper that is no nn.Module (the Generator protocol around one)."""

    def __init__(self, g):
        self.g = g
        self.latent_shape = g.latent_shape

    def decode(self, z):
        return self.g.decode(z)

    def encode(self, x):
        return self.g.encode(x)


def test_a_wrapped_generator_or_oracle_function_is_part_of_the_runs_key(world, tmp_path, caplog):
    """A generator wrapper (no nn.Module) was recorded as None: a run went on with another
    one, round 0 walked by the first and round 1 by the second, without a word. Keys from
    before, which say None, are adopted with a warning."""
    g, f, pool, train, labels = world
    other = BoundedGenerator()
    with torch.no_grad():
        next(other.parameters()).add_(1.0)

    def learner(generator, rounds=1):
        return ActiveLearner(
            _Wrapped(generator),
            f,
            CountingOracle(),
            budget=2 * rounds,
            rounds=rounds,
            finetune=CFG,
            steps=4,
        )

    learner(g).augment(pool, train, labels, out=tmp_path)
    key = json.loads((tmp_path / "key.json").read_text())
    assert key["generator_sha256"] is not None
    with pytest.raises(ValueError, match=r"another run \(.*the generator's weights"):
        learner(other, rounds=2).augment(pool, train, labels, out=tmp_path)
    (tmp_path / "key.json").write_text(json.dumps(key | {"generator_sha256": None}))
    with caplog.at_level("WARNING"):
        learner(g).augment(pool, train, labels, out=tmp_path)
    assert "could not read the generator's weights" in caplog.text
