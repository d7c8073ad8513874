import json

import pytest
import torch

from cfx.cli import main
from cfx.label import pending, record_label

SMALL = [
    "--train-n",
    "64",
    "--pool-n",
    "16",
    "--budget",
    "4",
    "--rounds",
    "1",
    "--epochs",
    "1",
    "--no-progress",
]
# SMALL scored on 200 built-in test slices: the 2,000 of the default were most of a run's time
FAST = [*SMALL, "--test-n", "200"]


def test_augment_with_the_oracle_writes_summary_and_model(tmp_path):
    out = tmp_path / "aug"
    assert main(["augment", *SMALL, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels_used"] == 4
    assert summary["test_images"] == 2000  # the built-in test set, as --help says
    assert summary["rounds"][0]["labelled"] == 4
    assert 0.0 <= summary["rounds"][0]["test"]["worst_group"] <= 1.0
    assert (out / "model" / "model.safetensors").is_file()
    # label_counts in the order of class_names; the labelled frames drawn, not only saved
    assert summary["class_names"] == ["healthy", "tumour"]
    assert sum(summary["rounds"][0]["label_counts"]) == 4 and summary["rounds"][0]["unsure"] == 0
    assert (out / "round_00" / "labelled.png").is_file()


def test_control_scores_the_same_fine_tuning_without_labels(tmp_path, capsys):
    """summary.json compared the tuned copy with the untouched classifier only, so more
    epochs on the training set passed for the labels' gain (session 44 audit: 36 of 58
    points). --control runs them without the labels; the card says how the copy was made."""
    from cfx.zoo import load_classifier
    from cfx.zoo.pretrained import sha256

    out = tmp_path / "aug"
    assert main(["augment", *FAST, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "(part of the gain may be the fine-tuning itself: --control measures it" in err
    assert json.loads((out / "summary.json").read_text())["without_labels"] is None
    assert main(["augment", *FAST, "--control", "--out", str(out)]) == 0  # the same run
    summary = json.loads((out / "summary.json").read_text())
    (without,) = summary["without_labels"]
    assert without["round"] == 0 and 0.0 <= without["test"]["worst_group"] <= 1.0
    worst = [summary[k]["worst_group"] for k in ("start",)] + [
        summary["rounds"][0]["test"]["worst_group"],
        without["test"]["worst_group"],
    ]
    line = (
        f"test worst group: {worst[0]:.2f} at the start, {worst[1]:.2f} fine-tuned with 4 "
        f"labels, {worst[2]:.2f} fine-tuned the same way without them: the labels add "
        f"{worst[1] - worst[2]:+.2f} (one seed: a worst group moves by about 0.1 between "
        "equally fair controls)"
    )
    assert line in capsys.readouterr().err
    assert (out / "control" / "round_00" / "model.safetensors").is_file()
    card = (out / "model" / "README.md").read_text()
    assert card.startswith("# brain-cnn-tagged fine-tuned by `cfx augment`")
    assert f"sha256 of model.safetensors: {sha256(out / 'model' / 'model.safetensors')}" in card
    assert '"control": true' in card and '"budget": 4' in card
    load_classifier(str(out / "model"))  # the card's digest is checked on loading


def test_a_budget_of_no_whole_number_of_paths_finishes_with_its_figure(tmp_path):
    """A last path cut short by the budget (5 labels, 2 frames a path) failed the figure at
    the very end, after every round, and again on every rerun: no summary.json ever."""
    odd = [*SMALL[:4], "--budget", "5", *FAST[6:]]
    assert main(["augment", *odd, "--out", str(tmp_path / "aug")]) == 0
    summary = json.loads((tmp_path / "aug" / "summary.json").read_text())
    assert summary["labels_used"] == 5
    assert summary["test_images"] == 200  # --test-n
    assert (tmp_path / "aug" / "round_00" / "labelled.png").is_file()
    # a budget of one label, less than a path, drew no figure (session 44 audit)
    one = [*SMALL[:4], "--budget", "1", *FAST[6:]]
    assert main(["augment", *one, "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "round_00" / "labelled.png").is_file()


def test_a_rerun_with_other_arguments_is_refused_not_resumed(tmp_path, capsys):
    out = tmp_path / "aug"
    assert main(["augment", *FAST, "--out", str(out)]) == 0
    summary = (out / "summary.json").read_text()
    capsys.readouterr()
    # before, this finished at once with the first run's round and fine-tuned weights
    assert main(["augment", *FAST, "--seed", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "`--out` " in err
    assert "holds 1 round(s) of another run (1 finished; --seed: 0 before, 5 now)" in err
    assert (out / "summary.json").read_text() == summary  # nothing of the first run is lost
    small_pool = [*SMALL[:2], "--pool-n", "48", *SMALL[4:]]
    assert main(["augment", *small_pool, "--out", str(out)]) == 2
    assert "(1 finished; the pool (--pool, or --pool-n / --pool-seed))" in capsys.readouterr().err
    # the library's key paths were shown: finetune.epochs, labeller.oracle_sha256
    longer = [*SMALL[:-2], "2", "--no-progress"]
    assert main(["augment", *longer, "--oracle", "brain-cnn", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--epochs: 1 before, 2 now" in err and "--oracle (its weights)" in err
    # a person instead of the oracle: named by the flags typed, not the key's "person"
    assert main(["augment", *FAST, "--labeller", "csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert '(1 finished; --labeller: "oracle" before, "web" or "csv" now)' in err
    # what follows from the kind of labeller is not listed as changed besides it
    assert "class names" not in err and "--oracle (its weights)" not in err


def test_image_files_are_checked_against_the_generator(tmp_path, capsys):
    import numpy as np

    cases = [
        ((8, 3, 64, 64), "`--pool` must hold images shaped (N, 1, 64, 64), got (8, 3, 64, 64)"),
        ((8, 1, 32, 32), "`--pool` must hold images shaped (N, 1, 64, 64), got (8, 1, 32, 32)"),
    ]
    for name in ("x", "tx"):
        np.save(tmp_path / f"{name}.npy", np.zeros((4, 1, 64, 64), dtype=np.float32))
        np.save(tmp_path / f"{name[:-1]}y.npy", np.zeros(4, dtype=np.int64))
    mine = [*_YOURS, "--train-data", str(tmp_path / "x.npy"), "--train-labels"]
    mine += [str(tmp_path / "y.npy"), "--test-data", str(tmp_path / "tx.npy"), "--test-labels"]
    mine += [str(tmp_path / "ty.npy"), *SMALL[4:]]
    for shape, message in cases:
        np.save(tmp_path / "pool.npy", np.zeros(shape, dtype=np.float32))
        args = ["augment", *mine, "--pool", str(tmp_path / "pool.npy")]
        assert main([*args, "--out", str(tmp_path / "a")]) == 2
        assert message in capsys.readouterr().err
    args = ["augment", *mine, "--pool", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "b")]
    assert main(args) == 2
    assert "`--pool`" in capsys.readouterr().err


# the models named, as a user with images of their own must (brain slices here)
_YOURS = [
    "--classifier",
    "brain-cnn-tagged",
    "--generator",
    "brain-gan",
    "--oracle",
    "brain-oracle",
]


def test_your_own_images_need_your_own_models_and_all_your_data(tmp_path, capsys, monkeypatch):
    """A pool of other images went through brain-gan (redrawn as brain slices) and was
    labelled by brain-oracle, and built-in slices joined the training or test set, without a
    word: with images of one's own, every built-in piece must be named or replaced."""
    monkeypatch.chdir(tmp_path)
    for name in ("p.npy", "x.npy", "y.npy", "t.npy"):  # the files exist; what is missing is
        (tmp_path / name).touch()  # the other pieces
    argv = ["augment", "--pool", "p.npy", "--train-data", "x.npy", "--train-labels", "y.npy"]
    argv += ["--out", str(tmp_path / "a")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "with your own images (--pool, --train-data) give --test-data, --classifier, " in err
    assert "--generator, --oracle too" in err
    assert main(["augment", "--pool", "p.npy", *_YOURS, "--out", str(tmp_path / "a")]) == 2
    assert "give --train-data, --test-data too" in capsys.readouterr().err
    argv = ["augment", "--test-data", "t.npy", "--test-labels", "t.npy"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert "with your own --test-data give --classifier too" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_out_may_not_hold_a_model_the_run_reads(tmp_path, capsys):
    """--out set to the classifier's own folder overwrote the trained model with the
    fine-tuned copy, and the same command could not be run again."""
    from cfx.zoo import load_classifier

    mine = tmp_path / "mine"
    load_classifier("brain-cnn-tagged").save_pretrained(mine / "model")
    for out in (mine, mine / "model"):
        argv = ["augment", *FAST, "--classifier", str(mine), "--out", str(out)]
        assert main(argv) == 2
        assert f"`--out` {out} holds the `--classifier` model ({mine})" in capsys.readouterr().err
    assert sorted(p.name for p in (mine / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


def test_augment_with_a_person_stops_for_labels_then_continues(tmp_path, capsys, caplog):
    out = tmp_path / "aug"
    two = [*SMALL[:6], "--rounds", "2", *FAST[8:]]  # 2 labels in each of 2 rounds
    args = ["augment", *two, "--labeller", "web", "--out", str(out)]
    assert main(args) == 3
    tasks = [out / "round_00" / "task", out / "round_01" / "task"]
    err = capsys.readouterr().err
    assert "cfx label serve" in err and "then run again: the same command goes on" in err
    assert "augment(...)" not in err  # the Python call is no advice on the command line
    for item in pending(tasks[0]):
        record_label(tasks[0], item, 1)
    with caplog.at_level("WARNING"):
        assert main(args) == 3  # round 1 waits for its labels
    assert f"resuming the run in {out}: 0 of 2 rounds done" in caplog.text
    # the finished round is drawn while the run waits (only a finished run drew its rounds)
    assert (out / "round_00" / "labelled.png").is_file()
    assert not (out / "round_01" / "labelled.png").exists()
    for item in pending(tasks[1]):
        record_label(tasks[1], item, 1)
    assert main(args) == 0
    rounds = json.loads((out / "summary.json").read_text())["rounds"]
    assert [r["label_counts"] for r in rounds] == [[0, 2], [0, 2]]
    # a correction made after the round finished was ignored in silence
    record_label(tasks[0], "000001", 0)
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main(args) == 0
    assert f"the run in {out} already finished (2 rounds)" in caplog.text
    assert "1 label now differs from the labels round_00 was given (ids 000001)" in caplog.text
    assert "copy the task folders of round_00 into a new output folder" in caplog.text
    # the advice works: round 0 reads every label from its copied task, none asked again; the
    # later round, whose frames follow the corrected model, is labelled again
    import shutil

    again = tmp_path / "again"
    shutil.copytree(tasks[0], again / "round_00" / "task")
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*args[:-1], str(again)]) == 3
    assert "an older cfx wrote them" not in caplog.text  # a copied task is no older run
    assert pending(again / "round_00" / "task") == []
    assert len(pending(again / "round_01" / "task")) == 2


def test_models_are_checked_before_any_data_is_rendered(tmp_path, capsys, monkeypatch):
    import cfx.data.brain

    def no_rendering(*args, **kwargs):
        raise AssertionError("slices were rendered before the models were checked")

    monkeypatch.setattr(cfx.data.brain, "make_dataset", no_rendering)
    cases = [
        (["--generator", "brain-cnn"], "`--generator`: 'brain-cnn' is a classifier"),
        (["--classifier", "brain-gan"], "`--classifier`: 'brain-gan' is a generator"),
        (["--oracle", "none"], "`--oracle`: unknown zoo classifier 'none'"),
    ]
    for extra, message in cases:
        assert main(["augment", *extra, "--out", str(tmp_path / "a")]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "or 'none'" not in err, extra


def test_rounds_are_scored_on_your_own_test_data(tmp_path):
    import numpy as np

    from cfx.data.brain import make_dataset
    from cfx.metrics import group_accuracies
    from cfx.training.classifier import predict
    from cfx.zoo import load_classifier

    test = make_dataset(24, seed=7, tagged=True, tag_correlation=0.5)
    np.save(tmp_path / "tx.npy", test.images.numpy())
    np.save(tmp_path / "ty.npy", test.labels.numpy())
    np.save(tmp_path / "tg.npy", test.tags.numpy().astype(np.int64))
    out = tmp_path / "aug"
    argv = ["augment", *SMALL, "--test-data", str(tmp_path / "tx.npy"), "--test-labels"]
    argv += [str(tmp_path / "ty.npy"), "--test-groups", str(tmp_path / "tg.npy")]
    argv += ["--classifier", "brain-cnn-tagged"]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    pred = predict(load_classifier("brain-cnn-tagged"), test.images).argmax(1)
    # the built-in pool and training slices: a brain classifier's class names (the scores
    # said class0/class1 beside labels counted as healthy/tumour: session 44 audit)
    want = group_accuracies(
        pred, test.labels, test.tags, class_names=("healthy", "tumour"),
        attribute_names=("group0", "group1"),
    )  # fmt: skip
    assert summary["start"] == pytest.approx(want)  # the classifier before, on these images
    assert set(summary["rounds"][0]["test"]) == set(want)
    assert summary["class_names"] == ["healthy", "tumour"]


def test_test_data_in_zero_one_is_warned_about_and_the_warning_kept(tmp_path):
    """Only the pool's range was checked: [0, 1] test images were scored without a word."""
    import numpy as np

    from cfx.data.brain import make_dataset

    test = make_dataset(24, seed=7)
    np.save(tmp_path / "tx.npy", ((test.images + 1) / 2).numpy())
    np.save(tmp_path / "ty.npy", test.labels.numpy())
    argv = ["augment", *SMALL, "--test-data", str(tmp_path / "tx.npy"), "--test-labels"]
    argv += [str(tmp_path / "ty.npy"), "--classifier", "brain-cnn-tagged"]
    assert main([*argv, "--out", str(tmp_path / "aug")]) == 0
    summary = json.loads((tmp_path / "aug" / "summary.json").read_text())
    assert any("no pixel of the 24 --test-data images is below 0" in w for w in summary["warnings"])


def test_folders_of_image_files_are_read_with_labels_by_file_name(tmp_path):
    """--pool/--train-data/--test-data took .npy/.pt only, and a folder was reported as
    "file not found" although it existed; cfx train and cfx shortcuts read folders."""
    import numpy as np
    from PIL import Image

    from cfx.data.brain import make_dataset
    from cfx.images import to_uint8

    def folder(name, data):
        (tmp_path / name).mkdir()
        rows = ["file,label"]
        for i, (img, y) in enumerate(zip(to_uint8(data.images), data.labels.tolist(), strict=True)):
            Image.fromarray(img[0]).save(tmp_path / name / f"s{i:02d}.png")
            rows.append(f"s{i:02d}.png,{y}")
        # labels listed in reverse: matched by file name, not by row
        (tmp_path / f"{name}.csv").write_text("\n".join([rows[0], *rows[:0:-1]]) + "\n")

    folder("pool", make_dataset(12, seed=12, tagged=True, tag_correlation=0.95))
    folder("train", make_dataset(16, seed=11, tagged=True, tag_correlation=0.95))
    test = make_dataset(12, seed=7, tagged=True, tag_correlation=0.5)
    folder("test", test)
    out = tmp_path / "aug"
    argv = ["augment", *_YOURS, "--budget", "4", "--rounds", "1", "--epochs", "1"]
    for flag, name in (("--pool", "pool"), ("--train-data", "train"), ("--test-data", "test")):
        argv += [flag, str(tmp_path / name)]
    argv += ["--train-labels", str(tmp_path / "train.csv")]
    argv += ["--test-labels", str(tmp_path / "test.csv"), "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels_used"] == 4
    # the start is scored on the test folder's images with their own labels
    from cfx.training.classifier import evaluate_classifier
    from cfx.zoo import load_classifier

    pngs = np.stack(
        [np.asarray(Image.open(tmp_path / "test" / f"s{i:02d}.png")) for i in range(12)]
    )
    x = torch.from_numpy(pngs[:, None].astype(np.float32) / 127.5 - 1.0)
    want = evaluate_classifier(load_classifier("brain-cnn-tagged"), x, test.labels)
    assert summary["start"]["accuracy"] == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # make_dataset's own check said "`n` must be a positive int", naming no flag
        (["--pool-n", "0"], "`--pool-n` must be an int >= 1, got 0"),
        (["--train-n", "-3"], "`--train-n` must be an int >= 1, got -3"),
        (["--budget", "0"], "`--budget` must be an int >= 1, got 0"),
        (["--rounds", "0"], "`--rounds` must be an int >= 1, got 0"),
        (["--rounds", "5", "--budget", "3"], "`--rounds` must not exceed `--budget` (3), got 5"),
        # silently ignored before: the pool came from the file
        (["--pool", "p.npy", "--pool-n", "50"], "`--pool-n` and `--pool-seed` choose the built-in"),
        (
            ["--pool", "p.npy", "--pool-seed", "3"],
            "`--pool-n` and `--pool-seed` choose the built-in",
        ),
        (
            ["--train-data", "x.npy", "--train-labels", "y.npy", "--train-n", "9"],
            "`--train-n` chooses built-in training slices; drop it with --train-data",
        ),
        (["--labeller", "web", "--oracle", "brain-cnn"], "`--oracle` labels for --labeller oracle"),
        # the test slices: frames labelled from them were scored on themselves (session 46)
        (["--pool-seed", "2"], "`--pool-seed` 2 draws the built-in test slices (seed 2)"),
    ],
)
def test_numbers_and_ignored_options_are_named_by_their_flags(tmp_path, capsys, argv, message):
    assert main(["augment", *argv, "--out", str(tmp_path / "a")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # before any work


def test_a_data_file_that_is_not_there_is_named_first(tmp_path, capsys):
    """A missing --pool was reported only once every other piece was given: first came the
    long list of what else your own images need."""
    assert (
        main(["augment", "--pool", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "a")])
        == 2
    )
    assert f"`--pool` not found: {tmp_path / 'missing.npy'}" in capsys.readouterr().err


def test_too_small_a_pool_is_named_by_its_flags(tmp_path, capsys):
    """ActiveLearner's own error said `pool`, which the command line has no flag for."""
    argv = ["augment", "--train-n", "16", "--pool-n", "3", "--budget", "8", "--rounds", "1"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert (
        "the pool must hold at least 4 images for --budget 8 in --rounds 1 (2 labelled frames "
        "per path, one path per pool image), got 3: raise --pool-n" in capsys.readouterr().err
    )
    assert not (tmp_path / "a").exists()  # before any round


def test_test_data_options_are_checked(tmp_path, capsys):
    assert main(["augment", "--test-data", "x.npy", "--out", str(tmp_path)]) == 2
    assert "`--test-data` and `--test-labels` must be given together" in capsys.readouterr().err
    assert main(["augment", "--test-groups", "g.npy", "--out", str(tmp_path)]) == 2
    assert "`--test-groups` describes --test-data images" in capsys.readouterr().err
    both = ["--test-data", "x.npy", "--test-labels", "y.npy", "--test-n", "100"]
    assert main(["augment", *both, "--out", str(tmp_path)]) == 2
    assert "`--test-n` chooses built-in test slices; drop it with --test-data" in (
        capsys.readouterr().err
    )
    assert main(["augment", "--test-n", "0", "--out", str(tmp_path / "a")]) == 2
    assert "`--test-n` must be an int >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_test_labels_must_be_classes_of_the_classifier(tmp_path, capsys):
    import numpy as np

    from cfx.data.brain import make_dataset

    test = make_dataset(8, seed=7)
    np.save(tmp_path / "tx.npy", test.images.numpy())
    np.save(tmp_path / "ty.npy", (test.labels + 1).numpy())  # 1..2, a two-class model
    argv = ["augment", *SMALL, "--test-data", str(tmp_path / "tx.npy"), "--test-labels"]
    argv += [str(tmp_path / "ty.npy"), "--classifier", "brain-cnn-tagged"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert "`--test-labels` must be classes of the classifier, 0..1, got 1..2" in (
        capsys.readouterr().err
    )
    train = make_dataset(8, seed=8)
    np.save(tmp_path / "x.npy", train.images.numpy())
    np.save(tmp_path / "y.npy", (train.labels + 1).numpy())  # 1..2: a third class
    np.save(tmp_path / "ty0.npy", test.labels.numpy())
    argv = ["augment", *SMALL[4:], *_YOURS, "--train-data", str(tmp_path / "x.npy")]
    argv += ["--train-labels", str(tmp_path / "y.npy"), "--pool", str(tmp_path / "x.npy")]
    argv += ["--test-data", str(tmp_path / "tx.npy"), "--test-labels", str(tmp_path / "ty0.npy")]
    assert main([*argv, "--out", str(tmp_path / "b")]) == 2
    assert "`--train-labels` must be classes of the classifier, 0..1, got 1..2" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "b").exists()  # no key, no round, no folder: nothing claimed
    # groups other than 0/1 are named with a value and its row (they were not)
    groups = np.array([0, 1, 0, 2, 1, 0, 1, 0])
    np.save(tmp_path / "tg.npy", groups)
    np.save(tmp_path / "y.npy", train.labels.numpy())
    mine = [*argv, "--test-groups", str(tmp_path / "tg.npy"), "--out", str(tmp_path / "c")]
    assert main(mine) == 2
    assert "`--test-groups` must hold 0 or 1 per image, got 2 at row(s) [3]" in (
        capsys.readouterr().err
    )
    # yes/no read as 1/0, as cfx shortcuts' --marker-present reads them: 'yes' on line 1 was
    # "no integer; labels are classes 0..K-1 (class names such as 'yes': map each ...)"
    (tmp_path / "tg.txt").write_text("yes\nno\nYes\nmaybe\nno\nyes\nno\nno\n")
    mine[-3] = str(tmp_path / "tg.txt")
    assert main(mine) == 2
    err = capsys.readouterr().err
    assert "line 4: 'maybe' is none of 0, 1, yes, no, y, n, true, false (one per image)" in err


def test_the_classifier_as_its_own_oracle_is_warned_about(tmp_path, caplog):
    """--oracle brain-cnn-tagged labelled the classifier's frames with its own predictions,
    in silence (disagreement 0.0)."""
    argv = ["augment", *FAST, "--classifier", "brain-cnn-tagged", "--oracle"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "brain-cnn-tagged", "--out", str(tmp_path / "a")]) == 0
    assert "`labeller`'s oracle is the classifier being fine-tuned" in caplog.text
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["rounds"][0]["disagreement"] == 0.0  # what the warning foretells
    own = [w for w in summary["warnings"] if "oracle is the classifier being fine-tuned" in w]
    assert len(own) == 1  # kept for whoever reads the summary later


def test_labels_are_the_classifiers_two_classes(tmp_path, capsys, caplog):
    """A 2-class oracle labelled a 3-class classifier's frames without complaint, and a
    person's task on your own images offered healthy/tumour: the walk crosses a two-class
    boundary, so a classifier of three classes is refused, an oracle must tell the same two
    classes apart, and a person's task on your own images names class0/class1."""
    import numpy as np
    import torch

    from cfx.data.brain import make_dataset
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    torch.manual_seed(0)
    # trained on 32x32 images, as a `cfx train` config records: given the 64x64 pool, it is
    # warned about as the oracle (before the class count refuses it); as the classifier the
    # explainer names it when the paths start (tests/trajectory/test_start.py)
    config = BrainCNNConfig(width=4, num_classes=3, image_size=(32, 32))
    BrainCNN(config).save_pretrained(tmp_path / "three")
    data = make_dataset(12, seed=7)
    for name, array in (("x", data.images), ("y", data.labels)):
        np.save(tmp_path / f"{name}.npy", array.numpy())
    argv = ["augment", "--generator", "brain-gan"]
    for flag in ("--pool", "--train-data", "--test-data"):
        argv += [flag, str(tmp_path / "x.npy")]
    argv += ["--train-labels", str(tmp_path / "y.npy"), "--test-labels", str(tmp_path / "y.npy")]
    argv += ["--budget", "3", "--rounds", "1", "--epochs", "1", "--no-progress"]
    out = ["--out", str(tmp_path / "a")]
    three = ["--classifier", str(tmp_path / "three")]
    small = "was trained on 32x32 images (width x height) and is given 64x64"
    with caplog.at_level("WARNING", logger="cfx.cli.models"):
        assert main([*argv, *three, "--oracle", "brain-oracle", *out]) == 2
    err = capsys.readouterr().err
    assert "`--classifier` must tell two classes apart (cfx augment walks" in err
    assert "`--oracle`" not in caplog.text  # refused before it loads
    caplog.clear()
    two = ["--classifier", "brain-cnn-tagged"]
    with caplog.at_level("WARNING", logger="cfx.cli.models"):
        assert main([*argv, *two, "--oracle", str(tmp_path / "three"), *out]) == 2
    err = capsys.readouterr().err
    assert "`--oracle` must tell the classifier's 2 classes apart (it labels them), got 3" in err
    sizes = [r.getMessage() for r in caplog.records if r.name == "cfx.cli.models"]
    assert len(sizes) == 1  # brain-cnn-tagged is 64x64
    assert sizes[0].startswith(f"`--oracle` {small} frames to label (the generator's size)")
    assert main([*argv, *two, "--labeller", "csv", *out]) == 3
    manifest = json.loads((tmp_path / "a" / "round_00" / "task" / "manifest.json").read_text())
    assert manifest["class_names"] == ["class0", "class1"]
    # names of one's own: the paused run showed class0/class1, so renaming is refused by flag
    named = ["--class-names", "normal, lesion"]
    assert main([*argv, *two, "--labeller", "csv", *named, *out]) == 2
    err = capsys.readouterr().err
    assert "--class-names (what a person labels with)" in err and "normal" in err
    assert main([*argv, *two, "--labeller", "csv", *named, "--out", str(tmp_path / "b")]) == 3
    manifest = json.loads((tmp_path / "b" / "round_00" / "task" / "manifest.json").read_text())
    assert manifest["class_names"] == ["normal", "lesion"]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("normal", "must be 2 names separated by commas, class 0 first, got 'normal'"),
        ("a,b,c", "must be 2 names separated by commas"),
        ("normal,", "must be 2 names separated by commas"),
        ("Normal,normal", "must name 2 different classes"),
        ("normal,unsure", "`--class-names` must not hold 'unsure'"),
        ("0,1", "`--class-names` must not be plain numbers"),
    ],
)
def test_class_names_are_checked_before_anything_loads(tmp_path, capsys, given, says):
    """A task's class names are checked when it is written, after the round's paths were
    walked: `--class-names` is refused at once, naming the flag."""
    out = tmp_path / "a"
    argv = ["augment", "--labeller", "web", "--class-names", given, "--out", str(out)]
    assert main(argv) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_a_paused_run_keeps_the_class_names_its_person_was_shown(tmp_path):
    """A run on your own images paused by an older cfx showed healthy/tumour; its rerun must
    show them again (the names are part of the run key) instead of class0/class1."""
    from cfx.augment.claim import KEY_FILE
    from cfx.cli.augment import _class_names

    assert _class_names(tmp_path, 2) == ("class0", "class1")  # a new run
    key = {"labeller": {"kind": "person", "class_names": ["healthy", "tumour"]}}
    (tmp_path / KEY_FILE).write_text(json.dumps(key))
    assert _class_names(tmp_path, 2) == ("healthy", "tumour")
    assert _class_names(tmp_path, 3) == ("class0", "class1", "class2")  # another model


def test_the_fine_tuned_copy_records_the_size_it_was_tuned_at(tmp_path):
    """A classifier trained at 32x32 and fine-tuned on 64x64 frames kept image_size [32, 32]
    in its config, so every later use warned about a size mismatch."""
    import shutil

    from cfx.zoo import model_folder

    mine = tmp_path / "cnn32"
    shutil.copytree(model_folder("brain-cnn-tagged"), mine)
    config = json.loads((mine / "config.json").read_text())
    (mine / "config.json").write_text(json.dumps(config | {"image_size": [32, 32]}))
    out = tmp_path / "aug"
    assert main(["augment", *FAST, "--classifier", str(mine), "--out", str(out)]) == 0
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["image_size"] == [64, 64]
    assert {k: v for k, v in saved.items() if k != "image_size"} == {
        k: v for k, v in config.items() if k != "image_size"
    }


def test_a_folder_of_something_else_is_not_overwritten(tmp_path, capsys):
    """A `cfx train classifier` folder given as --out had its model/model.safetensors and
    README replaced by the fine-tuned model's (session 46 audit)."""
    out = tmp_path / "mine"
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.safetensors").write_bytes(b"weights")
    (out / "training.json").write_text("{}")
    assert main(["augment", *FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds files that are not a cfx augment run's (model, training.json)" in err
    assert f"`--out` {out} holds" in err  # the flag, not the Python argument
    assert (out / "model" / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in out.iterdir()) == ["model", "training.json"]


def test_a_run_that_labels_nothing_is_an_error_without_a_model(tmp_path, capsys, monkeypatch):
    """No path crossed: the run exited 0 and wrote a "fine-tuned" model that was the
    classifier unchanged (session 46 audit)."""
    from cfx.augment.active import ActiveLearner, AugmentResult

    def nothing(self, pool, train_images, train_labels, **kwargs):
        return AugmentResult(self.classifier, pool[:0], train_labels[:0], rounds=())

    monkeypatch.setattr(ActiveLearner, "augment", nothing)
    out = tmp_path / "aug"
    assert main(["augment", *FAST, "--out", str(out)]) == 2
    assert "no round was labelled, so nothing was fine-tuned and no model is written" in (
        capsys.readouterr().err
    )
    assert not (out / "model").exists() and not (out / "summary.json").exists()


def test_ctrl_c_in_the_walk_says_what_is_kept(tmp_path, caplog, monkeypatch):
    """Ctrl-C while a round's paths were walked printed only "interrupted" (session 46 audit)."""
    from cfx.augment.active import ActiveLearner

    def walk_then_stop(self, pool, train_images, train_labels, *, out, **kwargs):
        (out / "round_00").mkdir(parents=True)
        (out / "round_00" / "round.safetensors").write_bytes(b"")  # round 0 finished
        raise KeyboardInterrupt

    monkeypatch.setattr(ActiveLearner, "augment", walk_then_stop)
    argv = [*SMALL, "--rounds", "2", "--out", str(tmp_path / "aug")]
    with caplog.at_level("WARNING"):
        assert main(["augment", *argv]) == 130
    assert "1 round of 2 finished (kept in " in caplog.text
    assert "the same command resumes after the last finished one" in caplog.text
