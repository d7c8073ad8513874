import json

import numpy as np
import pytest
import torch

from cfx.cli import main
from cfx.models.classifiers import BrainCNN, BrainSegmenter

TINY = ["--n", "48", "--val-n", "16", "--epochs", "1", "--batch-size", "16", "--width", "4"]


def test_train_classifier_on_brain_writes_model_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", "brain", "--tagged", *TINY]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "model")  # stdout: the folder alone, for scripts
    report = json.loads((out / "training.json").read_text())
    val_acc = report["history"][-1]["val_acc"]
    # the validation accuracy was in training.json only
    assert captured.err.startswith("3 steps (") and f"val_acc {val_acc:.4g}" in captured.err
    assert "%|" not in captured.err  # --no-progress: no bars
    model = BrainCNN.from_pretrained(out / "model")
    assert model.config.width == 4
    report = json.loads((out / "training.json").read_text())
    assert report["summary"]["arch"] == "brain-cnn" and report["summary"]["steps"] == 3
    assert 0.0 <= report["history"][-1]["val_acc"] <= 1.0
    assert (out / "checkpoint.safetensors").is_file()
    # a rerun on other slices is refused naming the flags, before any slice is rendered (the
    # checkpoint's digest could only say "the training images or labels")
    untagged = [a for a in argv if a != "--tagged"]
    other = [*untagged, "--data-seed", "7", "--out", str(out)]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "holds a checkpoint of a different run; use a new folder or the same data flags" in err
    assert "--data-seed: 100 before, 7 now; --tagged: true before, false now)" in err
    # --tag-correlation follows --tagged (it was listed "0.5 before, unset now", not given)
    assert "--tag-correlation" not in err
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0  # the same run resumes


def test_train_segmenter_on_brain_uses_lesion_masks(tmp_path):
    out = tmp_path / "seg"
    argv = ["train", "classifier", "--arch", "brain-segmenter", "--data", "brain", *TINY]
    assert main([*argv, "--out", str(out)]) == 0
    BrainSegmenter.from_pretrained(out / "model")
    assert "val_dice" in json.loads((out / "training.json").read_text())["history"][-1]


def test_user_files_need_labels(tmp_path, capsys):
    images = tmp_path / "x.npy"
    np.save(images, np.zeros((8, 1, 64, 64), dtype=np.uint8))
    argv = ["train", "classifier", "--arch", "brain-oracle", "--data", str(images)]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert "`--labels` is required for --arch brain-oracle" in capsys.readouterr().err
    argv[3] = "brain-segmenter"
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert "`--masks` is required for --arch brain-segmenter" in capsys.readouterr().err


def test_user_files_train(tmp_path, caplog):
    images, labels = tmp_path / "x.pt", tmp_path / "y.npy"
    x = torch.rand(16, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.save(x, images)
    np.save(labels, np.arange(16) % 2)
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(images)]
    argv += ["--labels", str(labels), "--epochs", "1", "--width", "4", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert BrainCNN.from_pretrained(tmp_path / "model").config.channels == 1
    card = (tmp_path / "model" / "README.md").read_text()
    record = (tmp_path / "training.json").read_text()
    # the same labels spelled another way (a rerun resumes the same data): nothing trained
    np.savetxt(tmp_path / "y.csv", np.arange(16) % 2, fmt="%d")
    argv[argv.index(str(labels))] = str(tmp_path / "y.csv")
    with caplog.at_level("WARNING"):  # a rerun of a finished run says so, not "resuming"
        assert main(argv) == 0
    assert "already finished (1 step)" in caplog.text and "resuming" not in caplog.text
    # the card records what trained the weights, not the rerun's spelling (user review)
    assert (tmp_path / "model" / "README.md").read_text() == card and "y.npy" in card
    assert (tmp_path / "training.json").read_text() == record  # this_run_seconds included


def test_a_trained_model_folder_carries_a_card_whose_digest_loading_checks(tmp_path):
    """A run's model folder had no card: nothing said what trained it, and loading it could
    not check its weights as the zoo's are checked."""
    from cfx.errors import CheckpointError
    from cfx.zoo import load_classifier
    from cfx.zoo.pretrained import sha256

    images, labels = tmp_path / "x.pt", tmp_path / "y.npy"
    torch.save(torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1, images)
    np.save(labels, np.arange(8) % 2)
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(images), "--labels"]
    argv += [str(labels), "--epochs", "1", "--width", "4", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    folder = tmp_path / "run" / "model"
    card = (folder / "README.md").read_text()
    assert card.startswith("# brain-cnn trained by `cfx train`")
    settings = json.loads(card.split("```json")[1].split("```")[0])
    assert settings["data"] == str(images) and settings["epochs"] == 1 and settings["width"] == 4
    # the built-in slices' options did not shape this run: they were listed with their
    # defaults (n 20000 for 8 images of a file: session 44 audit); the count is given
    assert not {"n", "data_seed", "val_n", "val_seed", "tag_correlation"} & set(settings)
    assert settings["images"] == 8
    assert f"sha256 of model.safetensors: {sha256(folder / 'model.safetensors')}" in card
    load_classifier(folder)  # the card's digest matches
    other = BrainCNN(BrainCNN.from_pretrained(folder).config)  # other weights, same config
    other.save_pretrained(tmp_path / "other")
    (folder / "model.safetensors").write_bytes(
        (tmp_path / "other" / "model.safetensors").read_bytes()
    )
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(folder)
    # a fine-tune saved into the folder replaces the weights the card describes: the card
    # goes with them (it kept checking the old digest, and the folder no longer loaded)
    other.save_pretrained(folder)
    assert not (folder / "README.md").exists()
    load_classifier(folder)
    (folder / "README.md").write_text("my notes\nsha256: " + "0" * 64 + "\n")  # a card of yours
    other.save_pretrained(folder)
    assert (folder / "README.md").exists()  # kept, and checked as before


def test_validation_seed_must_differ(tmp_path, capsys):
    argv = ["train", "classifier", "--arch", "brain-cnn", *TINY, "--val-seed", "100"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "`--val-seed` must differ from `--data-seed` (100)" in capsys.readouterr().err


def test_user_labels_with_three_classes_train_a_three_class_model(tmp_path):
    x = torch.rand(12, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", np.arange(12) % 3)
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(tmp_path / "x.npy")]
    argv += ["--labels", str(tmp_path / "y.npy"), "--epochs", "1", "--width", "4"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert BrainCNN.from_pretrained(tmp_path / "r" / "model").config.num_classes == 3


def test_a_stray_label_that_makes_a_third_class_is_warned_about(tmp_path, caplog):
    """One label 2 among 0/1 labels made a 3-class model in silence; cfx augment refused it
    later."""
    x = torch.rand(120, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    y = np.arange(120) % 2
    y[7] = 2
    np.save(tmp_path / "y.npy", y)
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(tmp_path / "x.npy")]
    argv += ["--labels", str(tmp_path / "y.npy"), "--epochs", "1", "--width", "4"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    assert (
        "`--labels` make a 3-class model, and class 2 has only 1 of the 120 images: a stray "
        "label? check the labels if you meant 2 classes"
    ) in caplog.text
    caplog.clear()
    np.save(tmp_path / "y.npy", np.arange(120) % 3)  # three real classes: no warning
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert "stray label" not in caplog.text


def test_the_model_keeps_the_size_of_its_training_images(tmp_path):
    """Other commands warn when a model is given images of another size than it was trained
    on, so the size goes into its config; the built-in slices are 64x64."""
    x = torch.rand(8, 1, 48, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", np.arange(8) % 2)
    argv = ["train", "classifier", "--arch", "brain-oracle", "--data", str(tmp_path / "x.npy")]
    argv += ["--labels", str(tmp_path / "y.npy"), "--epochs", "1", "--width", "4"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    config = json.loads((tmp_path / "r" / "model" / "config.json").read_text())
    assert config["image_size"] == [48, 32]  # (H, W)
    argv = ["train", "classifier", "--arch", "brain-segmenter", "--data", "brain", *TINY]
    assert main([*argv, "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert BrainSegmenter.from_pretrained(tmp_path / "s" / "model").config.image_size == (64, 64)


def test_a_checkpoint_from_before_image_size_still_resumes():
    """The size is in the model's config but not in the run's fingerprint (the training
    images' digest covers it), so checkpoints written before the field resume."""
    from functools import partial

    from cfx.models.classifiers import BrainCNNConfig
    from cfx.training.classifier import ClassifierTrainingConfig, _fingerprint

    x, y = torch.zeros(2, 1, 64, 64), torch.tensor([0, 1])
    run = ClassifierTrainingConfig(epochs=1)
    key = partial(_fingerprint, task="classify", images=x, targets=y, cfg=run, val=None)
    old = key(BrainCNN(BrainCNNConfig(width=4)), dtype=torch.float32)
    new = BrainCNN(BrainCNNConfig(width=4, image_size=(64, 64)))
    assert key(new, dtype=torch.float32) == old
    wider = BrainCNN(BrainCNNConfig(width=8, image_size=(64, 64)))
    assert key(wider, dtype=torch.float32) != old  # the rest still counts


def test_a_batch_of_grey_images_without_a_channel_axis_trains(tmp_path):
    """(N, H, W) was refused as "must have shape (B, C, H, W)" while `cfx trajectory --input`
    reads it (session 44 audit). Known answer: the same model as from (N, 1, H, W)."""
    x = torch.rand(8, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "nhw.npy", x.numpy())
    np.save(tmp_path / "nchw.npy", x[:, None].numpy())
    np.save(tmp_path / "y.npy", np.arange(8) % 2)
    argv = ["train", "classifier", "--arch", "brain-cnn", "--labels", str(tmp_path / "y.npy")]
    argv += ["--epochs", "1", "--width", "4", "--no-progress"]
    for name in ("nhw", "nchw"):
        assert (
            main([*argv, "--data", str(tmp_path / f"{name}.npy"), "--out", str(tmp_path / name)])
            == 0
        )
    a = (tmp_path / "nhw" / "model" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "nchw" / "model" / "model.safetensors").read_bytes()


def test_data_options_are_named(tmp_path, capsys):
    x = torch.zeros(4, 1, 64, 64)
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "bad.npy", np.full((4, 1, 64, 64), 3.0, dtype=np.float32))
    np.save(tmp_path / "y.npy", np.arange(4) % 2)
    gen = ["train", "generator", "--steps", "1", "--out", str(tmp_path / "g")]
    assert main([*gen, "--data", "brian"]) == 2
    assert (  # a typed name that is not there: said so (it was "must be 'brain', ..." alone)
        "`--data` folder not found: brian (it takes 'brain', a .npy/.pt image file or a folder "
        "of image files)" in capsys.readouterr().err
    )
    (tmp_path / "notes.txt").write_text("x")  # there, but no image data
    assert main([*gen, "--data", str(tmp_path / "notes.txt")]) == 2
    assert "`--data` must be 'brain', a .npy/.pt image file" in capsys.readouterr().err
    assert main([*gen, "--data", str(tmp_path / "x.npy"), "--labels", "y.npy"]) == 2
    assert "`--labels` does nothing here" in capsys.readouterr().err
    clf = ["train", "classifier", "--arch", "brain-cnn", "--out", str(tmp_path / "c")]
    assert main([*clf, "--data", str(tmp_path / "bad.npy"), "--labels", "y.npy"]) == 2
    assert "`--data` must have values in [-1, 1]" in capsys.readouterr().err
    assert main([*clf, "--labels", str(tmp_path / "y.npy")]) == 2  # --data brain
    assert "`--labels`/`--masks` go with your own --data file" in capsys.readouterr().err


def test_options_a_run_would_ignore_are_refused(tmp_path, capsys):
    """Built-in slice options with a --data file, and blur or noise with --no-augment, trained
    without a word; --val-n -1 meant no validation; an --out file gave a bare [Errno 17]."""
    np.save(tmp_path / "x.npy", np.zeros((4, 1, 64, 64), dtype=np.float32))
    varied = np.random.default_rng(0).uniform(-1, 1, (4, 1, 64, 64)).astype(np.float32)
    np.save(tmp_path / "varied.npy", varied)
    np.save(tmp_path / "y.npy", np.arange(4) % 2)
    np.save(tmp_path / "pm.npy", np.array([-1, 1, -1, 1]))
    user = ["--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    clf = ["train", "classifier", "--arch", "brain-cnn", "--out", str(tmp_path / "c")]
    gen = ["train", "generator", "--out", str(tmp_path / "g")]
    cases = [
        ([*clf, *user, "--tagged", "--n", "500"], "--n, --tagged describe the built-in brain"),
        ([*clf, *user, "--val-n", "5", "--data-seed", "7"], "--data-seed, --val-n describe the"),
        ([*clf, "--n", "8", "--no-augment", "--blur", "1.5"], "`--blur` and `--noise` are aug"),
        ([*clf, "--n", "8", "--val-n", "-1"], "`--val-n` must be an int >= 0, got -1"),
        ([*clf, "--n", "0"], "`--n` must be an int >= 1, got 0"),
        (
            [*clf, "--n", "8", "--tagged", "--tag-correlation", "2"],
            "`--tag-correlation` must be a number in",
        ),
        ([*clf, "--n", "8", "--batch-size", "0"], "`--batch-size` must be an int >= 1, got 0"),
        # said "none of the images is in class 0" for labels of -1/1
        ([*clf, "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "pm.npy")], "-1/1"),
        (
            [*gen, "--data", str(tmp_path / "x.npy"), "--n", "9"],
            "--n describes the built-in brain slices; drop it with --data",
        ),
        # named as typed, before the slices are rendered (the config said `batch_size`, and
        # --epochs 0 rendered 22,000 slices first)
        ([*gen, "--batch-size", "0"], "`--batch-size` must be an int >= 1, got 0"),
        ([*gen, "--steps", "0"], "`--steps` must be an int >= 1, got 0"),
        ([*clf, "--epochs", "0"], "`--epochs` must be an int >= 1, got 0"),
        # the configs' own checks said `width`, `lr`; a width GroupNorm cannot split met
        # PyTorch's error after the data was read
        ([*clf, "--n", "8", "--width", "12"], "`--width` must give layers of channels"),
        ([*clf, "--n", "8", "--lr", "-1"], "`--lr` must be a number in (0, inf), got -1.0"),
        ([*clf, "--n", "8", "--lr", "inf"], "`--lr` must be a number in (0, inf), got inf"),
        ([*gen, "--width", "12"], "`--width` must give layers of channels"),
        ([*gen, "--latent-dim", "0"], "`--latent-dim` must be an int >= 1, got 0"),
        # validation on the training images was accepted (the built-in slices refuse it)
        (
            [
                *clf,
                "--data",
                str(tmp_path / "varied.npy"),
                "--labels",
                str(tmp_path / "y.npy"),
                "--val-data",
                str(tmp_path / "varied.npy"),
                "--val-targets",
                str(tmp_path / "y.npy"),
            ],
            "`--val-data` holds only images of --data",
        ),
        # a folder path that does not exist was "must be 'brain', a .npy/.pt file or a folder"
        ([*gen, "--data", str(tmp_path / "nope") + "/"], "`--data` folder not found:"),
        ([*gen, "--data", str(tmp_path / "nope" / "x.png")], "`--data` file not found:"),
        ([*clf, "--n", "8", "--tag-correlation", "0.9"], "`--tag-correlation` sets how often"),
        ([*clf, "--n", "8", "--tag-correlation", "0.5"], "`--tag-correlation` sets how often"),
        ([*clf, "--n", "8", "--val-data", "v.npy"], "`--val-data`/`--val-targets` go with your"),
        # your own data: flags the run would not read trained without a word (no validation
        # at all for --val-targets alone; masks for a classifier, labels for a segmenter)
        ([*clf, *user, "--val-targets", str(tmp_path / "y.npy")], "`--val-targets` go with"),
        # and --val-data alone said "`--val-targets` is required for --arch brain-cnn"
        (
            [*clf, *user, "--val-data", str(tmp_path / "varied.npy")],
            "`--val-data` needs --val-targets, its images' labels (as --labels are --data's)",
        ),
        ([*clf, *user, "--masks", str(tmp_path / "y.npy")], "`--masks` go with --arch brain-seg"),
        (
            [
                "train",
                "classifier",
                "--arch",
                "brain-segmenter",
                "--out",
                str(tmp_path / "s"),
                *user,
                "--masks",
                str(tmp_path / "y.npy"),
            ],
            "`--labels` go with a classifier; --arch brain-segmenter learns masks",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*clf[:-1], str(tmp_path / "file"), "--n", "8"]) == 2
    assert "`--out` must be a folder, got an existing file" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_labels_must_name_classes_0_to_k_minus_1(tmp_path, capsys):
    x = torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", np.array([1, 2, 3, 1, 2, 3]))  # 1-indexed: no class 0
    np.save(tmp_path / "vy.npy", np.array([0, 1, 4, 0, 1, 2]))
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(tmp_path / "x.npy")]
    argv += ["--epochs", "1", "--width", "4", "--out", str(tmp_path / "r")]
    assert main([*argv, "--labels", str(tmp_path / "y.npy")]) == 2
    assert "none of the images is in class 0; labels must be 0..K-1" in capsys.readouterr().err
    np.save(tmp_path / "y.npy", np.zeros(6, dtype=np.int64))  # said "none is in class 1"
    assert main([*argv, "--labels", str(tmp_path / "y.npy")]) == 2
    assert "`--labels` put all 6 images in class 0: a classifier learns from images of two" in (
        capsys.readouterr().err
    )
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 0, 1, 2]))
    np.save(tmp_path / "vx.npy", (-x).numpy())  # held-out images
    val = ["--val-data", str(tmp_path / "vx.npy"), "--val-targets", str(tmp_path / "vy.npy")]
    assert main([*argv, "--labels", str(tmp_path / "y.npy"), *val]) == 2
    assert "`--val-targets` hold class 4, which no training label names" in (
        capsys.readouterr().err
    )


def test_cli_defaults_are_the_training_configs_defaults():
    # `cfx train` without options trains what GeneratorTrainingConfig() / ClassifierTrainingConfig()
    # describe (the generator's --steps once said 8000 against the config's 6000).
    from cfx.cli import build_parser
    from cfx.models.brain_gan import BrainGANConfig
    from cfx.training.classifier import ClassifierTrainingConfig
    from cfx.training.generator import GeneratorTrainingConfig

    parser = build_parser()
    gen = parser.parse_args(["train", "generator", "--out", "x"])
    g, model = GeneratorTrainingConfig(), BrainGANConfig()
    assert (gen.steps, gen.batch_size, gen.adv_factor, gen.adv_start, gen.seed) == (
        g.steps,
        g.batch_size,
        g.adv_factor,
        g.adv_start,
        g.seed,
    )
    assert (gen.latent_dim, gen.width) == (model.latent_dim, model.width)
    clf = parser.parse_args(["train", "classifier", "--arch", "brain-cnn", "--out", "x"])
    c = ClassifierTrainingConfig()
    assert (clf.epochs, clf.batch_size, clf.lr, clf.blur, clf.noise, clf.seed) == (
        c.epochs,
        c.batch_size,
        c.lr,
        c.blur,
        c.noise,
        c.seed,
    )
    assert clf.balanced == c.balanced


def test_imbalanced_labels_are_noticed_and_balanced_trains_with_class_weights(tmp_path, caplog):
    x = torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", (np.arange(40) % 5 == 0).astype(np.int64))  # 32 to 8
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(tmp_path / "x.npy")]
    argv += ["--labels", str(tmp_path / "y.npy"), "--epochs", "1", "--width", "4"]
    argv += ["--no-progress"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert "the training labels are imbalanced (class 0: 32, class 1: 8)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*argv, "--balanced", "--out", str(tmp_path / "bal")]) == 0
    assert "imbalanced" not in caplog.text
    card = (tmp_path / "bal" / "model" / "README.md").read_text()
    assert json.loads(card.split("```json")[1].split("```")[0])["balanced"] is True
    # another run, not a resume of the unweighted one
    assert main([*argv, "--balanced", "--out", str(tmp_path / "plain")]) == 2


def test_balanced_is_refused_for_the_segmenter(tmp_path, capsys):
    argv = ["train", "classifier", "--arch", "brain-segmenter", "--n", "8", "--balanced"]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "`--balanced` weights a classifier's classes; brain-segmenter's targets are masks" in err
    assert not (tmp_path / "s").exists()


def test_user_images_channels_last_are_named_and_unit_range_noticed(tmp_path, capsys, caplog):
    """(N, H, W, C) images crashed inside the first convolution with a traceback; [0, 1]
    images trained without the notice every other command gives."""
    np.save(tmp_path / "y.npy", np.arange(16) % 2)
    np.save(tmp_path / "last.npy", np.zeros((16, 64, 64, 1), dtype=np.float32))
    argv = ["train", "classifier", "--arch", "brain-cnn", "--labels", str(tmp_path / "y.npy")]
    argv += ["--epochs", "1", "--width", "4", "--no-progress"]
    assert main([*argv, "--data", str(tmp_path / "last.npy"), "--out", str(tmp_path / "a")]) == 2
    assert "`--data` holds (16, 64, 64, 1): images saved channels last" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((16, 1, 64, 64), dtype=np.float32) - 0.5)
    np.save(tmp_path / "small.npy", np.zeros((16, 1, 32, 32), dtype=np.float32) - 0.5)
    mine = [*argv, "--data", str(tmp_path / "x.npy"), "--val-data", str(tmp_path / "small.npy")]
    assert (
        main([*mine, "--val-targets", str(tmp_path / "y.npy"), "--out", str(tmp_path / "c")]) == 2
    )
    assert "`--val-data` must hold images shaped like --data's (1, 64, 64), got (1, 32, 32)" in (
        capsys.readouterr().err
    )  # was named `val[0]`, a Python argument
    unit = torch.rand(16, 1, 64, 64, generator=torch.Generator().manual_seed(0))  # [0, 1]
    np.save(tmp_path / "unit.npy", unit.numpy())
    with caplog.at_level("WARNING"):
        assert (
            main([*argv, "--data", str(tmp_path / "unit.npy"), "--out", str(tmp_path / "b")]) == 0
        )
    assert "no pixel of the 16 --data images is below 0" in caplog.text
    assert caplog.text.count("is below 0") == 1  # by its flag, not again as `training`


def test_a_generator_needs_64x64_images_and_says_so_by_its_flag(tmp_path, capsys):
    """The error named `images` (the library's argument), and the failed run left its
    data_flags.json behind."""
    np.save(tmp_path / "x.npy", np.zeros((4, 1, 48, 48), dtype=np.float32))
    argv = ["train", "generator", "--data", str(tmp_path / "x.npy"), "--steps", "1"]
    assert main([*argv, "--out", str(tmp_path / "g")]) == 2
    assert "`--data` must hold 64x64 images, the size the generator's architecture makes, got " in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "g").exists()


def test_an_interrupted_rerun_says_the_model_folder_is_the_earlier_runs(tmp_path, caplog):
    import cfx.training.classifier as training

    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", "brain", *TINY]
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch, caplog.at_level("WARNING"):
        patch.setattr(training, "train_classifier", interrupted)
        assert main([*argv, "--epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 130
    assert f"{tmp_path / 'model'} still holds the model of the last finished run" in caplog.text


def test_a_refused_rerun_names_the_commands_flags(tmp_path, capsys):
    """The library's names came through: "`out` (...) ... (config.batch_size: 16 before, 8
    now)"; a generator of another --latent-dim was a truncated state_dict error."""
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", "brain", *TINY]
    assert main([*argv, "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert main([*argv, "--batch-size", "8", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert f"`--out` ({tmp_path / 'c'}) holds a checkpoint of a different run" in err
    assert "(--batch-size: 16 before, 8 now)" in err
    assert main([*argv, "--no-augment", "--out", str(tmp_path / "c")]) == 2
    assert "(augmentation (--no-augment): true before, false now)" in capsys.readouterr().err
    # another --arch was said as the model's class and its config's keys ("arch.blocks: 4
    # before, unset now; model: "BrainCNN" before, "BrainOracle" now")
    oracle = [*argv[:3], "brain-oracle", *argv[4:], "--out", str(tmp_path / "c")]
    assert main([*oracle, "--batch-size", "8"]) == 2
    err = capsys.readouterr().err
    assert "(--arch: brain-cnn before, brain-oracle now; --batch-size: 16 before, 8 now)" in err
    assert "arch." not in err and "BrainCNN" not in err
    folder = tmp_path / "config.seed1"  # a path that looks like a setting stays as it is
    assert main([*argv, "--out", str(folder), "--no-progress"]) == 0
    assert main([*argv, "--seed", "3", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"`--out` ({folder}) holds" in err and "(--seed: 0 before, 3 now)" in err
    gen = ["train", "generator", "--n", "8", "--steps", "1", "--batch-size", "4", "--width", "4"]
    assert main([*gen, "--latent-dim", "8", "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    assert main([*gen, "--latent-dim", "16", "--out", str(tmp_path / "g")]) == 2
    assert "(--latent-dim: 8 before, 16 now)" in capsys.readouterr().err
    # more steps go on; then fewer train nothing, and the card keeps the steps the weights
    # have (it said "Trained for 2 steps" beside settings "steps": 1: session 44 audit)
    two = [*gen[:5], "2", *gen[6:], "--latent-dim", "8", "--out", str(tmp_path / "g")]
    assert main([*two, "--no-progress"]) == 0
    assert main([*gen, "--latent-dim", "8", "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    card = (tmp_path / "g" / "model" / "README.md").read_text()
    assert "Trained for 2 steps" in card and '"steps": 2,' in card


def test_a_folder_of_image_files_trains_with_labels_by_file_name(tmp_path):
    """Training took .npy/.pt batches only, while every other command read image folders and
    file-name,label tables. Known answer: the labels follow the files, not the rows, so the
    model trained on the folder equals the one trained on the same batch in name order."""
    from PIL import Image

    from cfx.data.brain import make_dataset
    from cfx.images import to_uint8

    data = make_dataset(8, seed=3)
    folder = tmp_path / "scans"
    folder.mkdir()
    pixels = to_uint8(data.images)
    for i in range(8):
        Image.fromarray(pixels[i, 0]).save(folder / f"s{i}.png")
    rows = [f"s{i}.png,{int(data.labels[i])}" for i in reversed(range(8))]  # any row order
    (tmp_path / "y.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    np.save(tmp_path / "x.npy", pixels)  # the same pixels, in name order s0..s7
    np.save(tmp_path / "y.npy", data.labels.numpy())
    common = ["train", "classifier", "--arch", "brain-cnn", "--epochs", "1", "--width", "4"]
    common += ["--batch-size", "4", "--no-progress"]
    folder_run = [*common, "--data", str(folder), "--labels", str(tmp_path / "y.csv")]
    assert main([*folder_run, "--out", str(tmp_path / "a")]) == 0
    batch_run = [*common, "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main([*batch_run, "--out", str(tmp_path / "b")]) == 0
    a = BrainCNN.from_pretrained(tmp_path / "a" / "model").state_dict()
    b = BrainCNN.from_pretrained(tmp_path / "b" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_segmenter_trains_on_a_folder_of_images_and_one_of_masks(tmp_path):
    from PIL import Image

    from cfx.data.brain import make_dataset
    from cfx.images import to_uint8

    data = make_dataset(4, seed=3)
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir()
    masks.mkdir()
    for i in range(4):
        Image.fromarray(to_uint8(data.images)[i, 0]).save(scans / f"s{i}.png")
        Image.fromarray(data.masks[i, 0].numpy().astype(np.uint8) * 255).save(masks / f"s{i}.png")
    argv = ["train", "classifier", "--arch", "brain-segmenter", "--data", str(scans)]
    argv += ["--masks", str(masks), "--epochs", "1", "--width", "4", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "seg")]) == 0
    assert BrainSegmenter.from_pretrained(tmp_path / "seg" / "model").config.image_size == (64, 64)


def test_a_folder_of_grey_and_colour_files_is_read_as_its_first_file(tmp_path, caplog):
    """With no model yet, the notice said "the model takes three": the first file decided."""
    from PIL import Image

    folder = tmp_path / "scans"
    folder.mkdir()
    colour = np.zeros((64, 64, 3), dtype=np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(folder / "a.png")
    Image.fromarray(np.full((64, 64), 90, dtype=np.uint8)).save(folder / "b.png")
    (tmp_path / "y.txt").write_text("0\n1\n")
    argv = ["train", "classifier", "--arch", "brain-cnn", "--data", str(folder), "--labels"]
    argv += [str(tmp_path / "y.txt"), "--epochs", "1", "--width", "4", "--no-progress"]
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert [r.getMessage() for r in caplog.records if r.name == "cfx.data.image_files"] == [
        "`--data` b.png: grey (L), read as colour like the first file, a.png, with the grey "
        "value in all three channels"
    ]
    assert BrainCNN.from_pretrained(tmp_path / "r" / "model").config.channels == 3


GEN = ["train", "generator", "--n", "16", "--steps", "1", "--batch-size", "8", "--width", "4"]
GEN += ["--latent-dim", "8", "--no-progress"]


def test_a_folder_holding_a_model_or_log_but_no_checkpoint_is_not_overwritten(tmp_path, capsys):
    """Without a checkpoint, --out's model/ and training.json were replaced in silence: a folder
    of one's own, a finished run whose checkpoint was deleted (it retrained from step 0 over
    the good model), a cfx augment folder (session 47 audit)."""
    mine = tmp_path / "mine"
    (mine / "model").mkdir(parents=True)
    (mine / "model" / "config.json").write_text('{"mine": 1}')
    (mine / "training.json").write_text('{"my": "log"}')
    assert main([*GEN, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "holds model and training.json and no checkpoint to resume: the run would" in err
    assert "cannot be trained on: start it again in a new folder" in err
    assert (mine / "model" / "config.json").read_text() == '{"mine": 1}'
    assert (mine / "training.json").read_text() == '{"my": "log"}'
    assert sorted(p.name for p in mine.iterdir()) == ["model", "training.json"]
    # a finished run whose checkpoint was deleted: refused, its model kept
    run = tmp_path / "run"
    assert main([*GEN, "--out", str(run)]) == 0
    capsys.readouterr()
    card = (run / "model" / "README.md").read_text()
    settings = json.loads(card.split("```json")[1].split("```")[0])
    # untagged slices have no marker to correlate: the card said tag_correlation 0.5 beside
    # tagged false (session 47 audit)
    assert settings["tagged"] is False and "tag_correlation" not in settings
    assert json.loads((run / "training.json").read_text())["summary"]["steps"] == 1
    (run / "checkpoint.safetensors").unlink()
    weights = (run / "model" / "model.safetensors").read_bytes()
    assert main([*GEN[:5], "2", *GEN[6:], "--out", str(run)]) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err
    assert (run / "model" / "model.safetensors").read_bytes() == weights
    # other files are no model of anyone's: a data folder's neighbours train as before
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("x")
    assert main([*GEN, "--out", str(tmp_path / "data")]) == 0


def test_out_is_checked_before_the_slices_are_rendered(tmp_path, capsys, monkeypatch):
    """An unwritable --out failed with a bare [Errno 13] after every slice was rendered; --out
    as the --data folder put the checkpoint among the images the next run reads."""
    import cfx.cli.train as train_module

    def never(*args, **kwargs):
        raise AssertionError("slices rendered before --out was checked")

    monkeypatch.setattr(train_module, "_brain", never)

    def refuses(folder):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("cfx.cli.paths.probe_writable", refuses)
    assert main([*GEN, "--out", str(tmp_path / "new" / "sub")]) == 2
    err = capsys.readouterr().err
    assert f"`--out` {tmp_path / 'new' / 'sub'}: cannot create it (in {tmp_path})" in err
    assert "Permission denied" in err and not (tmp_path / "new").exists()
    monkeypatch.undo()
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for i in range(4):
        Image.fromarray(np.full((64, 64), 40 * i, np.uint8)).save(images / f"s{i}.png")
    argv = ["train", "generator", "--data", str(images), "--steps", "1", "--out", str(images)]
    assert main(argv) == 2
    assert "`--out` must not be the `--data` folder: the run's checkpoint and model would" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in images.iterdir()) == [f"s{i}.png" for i in range(4)]


def test_a_folder_of_the_other_kind_of_training_is_named_as_such(tmp_path, capsys, caplog):
    """A generator run into a classifier's folder was told to use "the same data flags (--n:
    300 before, 200 now)"; a classifier run into a generator's warned "resuming on trust"."""
    gen, clf = tmp_path / "gen", tmp_path / "clf"
    assert main([*GEN, "--out", str(gen)]) == 0
    assert main(["train", "classifier", "--arch", "brain-cnn", *TINY, "--out", str(clf)]) == 0
    capsys.readouterr()
    assert main(["train", "classifier", "--arch", "brain-cnn", *TINY, "--out", str(gen)]) == 2
    assert "holds a generator's training run, not a classifier's" in capsys.readouterr().err
    assert main([*GEN[:2], "--n", "20", *GEN[4:], "--out", str(clf)]) == 2
    assert "holds a classifier's training run, not a generator's" in capsys.readouterr().err
    # a folder of an older cfx records no kind, and the same data flags pass: the checkpoint
    # itself is named as another kind's, with no "resuming on trust" warning before it
    record = gen / "data_flags.json"
    record.write_text(
        json.dumps({k: v for k, v in json.loads(record.read_text()).items() if k != "kind"})
    )
    same_slices = ["--n", "16", "--val-n", "16", "--epochs", "1", "--batch-size", "16"]
    with caplog.at_level("WARNING"):
        argv = ["train", "classifier", "--arch", "brain-cnn", *same_slices, "--width", "4"]
        assert main([*argv, "--out", str(gen)]) == 2
    assert "holds the checkpoint of another kind of training" in capsys.readouterr().err
    assert "on trust" not in caplog.text


def test_generator_messages_name_the_flags(tmp_path, capsys, caplog):
    """The short-run warning said `adv_start`/`steps`/adv_factor=0 and a grey run given
    colour images was refused naming config.model.channels (session 47 audit)."""
    grey = np.random.default_rng(0).uniform(-1, 1, (8, 1, 64, 64)).astype(np.float32)
    np.save(tmp_path / "grey.npy", grey)
    np.save(tmp_path / "colour.npy", np.repeat(grey, 3, axis=1))
    argv = ["train", "generator", "--steps", "1", "--batch-size", "4", "--width", "4"]
    argv += ["--latent-dim", "4", "--no-progress", "--out", str(tmp_path / "g")]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--data", str(tmp_path / "grey.npy")]) == 0
    assert "--adv-start 500 is not below --steps 1: the adversarial loss never" in caplog.text
    assert "(lower --adv-start, or give --adv-factor 0 to say so)" in caplog.text
    assert "`adv_start`" not in caplog.text  # the library's wording, held
    assert main([*argv, "--data", str(tmp_path / "colour.npy")]) == 2
    err = capsys.readouterr().err
    assert "image channels of --data (1 grey, 3 colour): 1 before, 3 now" in err
    # the built-in slices into a file's run: --data alone (each slice flag was "unset before")
    assert main([*argv, "--n", "8"]) == 2
    err = capsys.readouterr().err
    assert 'the same data flags (--data: "a file" before, "brain" now)' in err


def test_a_validation_seed_with_no_validation_slices_is_refused(tmp_path, capsys):
    """--val-seed 7 with --val-n 0 was ignored without a word (session-53 audit)."""
    argv = ["train", "classifier", "--arch", "brain-cnn", "--n", "16", "--val-n", "0"]
    assert main([*argv, "--val-seed", "7", "--out", str(tmp_path / "r")]) == 2
    assert "`--val-seed` chooses the validation slices, and --val-n 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
