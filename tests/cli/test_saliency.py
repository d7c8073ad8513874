import csv
import json

import pytest
import torch

from cfx.cli import main
from cfx.cli.saliency_attack import parse_fraction
from cfx.errors import UnknownNameError


def test_compare_writes_table_grid_and_attack_figures(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "saliency",
            "compare",
            "--n",
            "2",
            "--methods",
            "gradient,gradcam,occlusion",
            "--fast",
            "--attack-n",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    for name in (
        "table.csv",
        "table.md",
        "grid.png",
        "attack_gradient.png",
        "attack_integrated_gradients.png",
    ):
        assert (out / name).is_file()
    csv = (out / "table.csv").read_text().splitlines()
    assert csv[0].startswith("method,pointing_game,pointing_game_ci95")
    assert [row.split(",")[0] for row in csv[1:]] == ["gradient", "gradcam", "occlusion"]
    table = (out / "table.md").read_text()
    assert "± " in table
    # what the figures were made with, and what the grid leaves out (neither was said)
    assert "--fast: the perturbation methods' small budgets" in table
    assert "grid.png shows 2 of the 2 images (those with a mask first)" in table
    assert "best Dice" in capsys.readouterr().out
    # a rerun without attacks leaves no attack figure of the run before beside its table
    (out / "notes.txt").write_text("mine")  # not the command's: kept
    again = ["saliency", "compare", "--n", "2", "--methods", "gradient", "--fast"]
    assert main([*again, "--attack-n", "0", "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "grid.png",
        "notes.txt",
        "table.csv",
        "table.md",
    ]


def test_compare_gives_its_table_before_the_slow_attack_figures(tmp_path, capsys, monkeypatch):
    """The table was printed and table.md written after the attack figures (minutes, without
    a bar): Ctrl-C during them kept table.csv but no table.md, and printed nothing (session
    45 audit)."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("cfx.cli.saliency_compare.attack_figure_for", interrupted)
    out = tmp_path / "cmp"
    argv = ["saliency", "compare", "--n", "2", "--methods", "gradient", "--fast", "--out"]
    assert main([*argv, str(out), "--no-progress", "--attack-n", "1"]) == 130
    printed = capsys.readouterr()
    assert "best Dice: gradient" in printed.out and "attack figures (gradient" in printed.err
    assert ", 1 slice; --attack-n 0 skips them" in printed.err  # it said "1 slices"
    assert "gradient" in (out / "table.md").read_text()


def test_attack_writes_per_image_rows_and_summary(tmp_path):
    out = tmp_path / "atk"
    code = main(
        ["saliency", "attack", "--n", "2", "--steps", "2", "--out", str(out), "--no-progress"]
    )
    assert code == 0
    rows = (out / "attack.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("image,top_k_intersection")
    assert rows[0].endswith(",file") and all(r.endswith(",") for r in rows[1:])  # no files
    summary = json.loads((out / "attack.json").read_text())
    assert summary["label_kept"] == 1.0 and summary["max_linf"] <= 8 / 255 + 1e-6
    assert summary["classifier"] == "brain-cnn" and summary["steps"] == 2
    assert set(summary["top_k_intersection"]) == {"mean", "ci95"}  # labelled, not a pair
    means = [float(r.split(",")[1]) for r in rows[1:]]
    assert summary["top_k_intersection"]["mean"] == pytest.approx(sum(means) / 2, abs=1e-4)
    assert (out / "attack.png").is_file()
    # the perturbed images themselves, to check the budget or reuse them (were not written)
    import numpy as np

    from cfx.saliency.compare import tumour_slices

    attacked = torch.from_numpy(np.load(out / "attacked.npy"))
    x, _ = tumour_slices(2, seed=2)  # the command's built-in slices
    assert attacked.shape == x.shape and attacked.abs().max() <= 1
    moved = (attacked - x).abs().amax()  # [-1, 1] pixels: twice the range's fraction
    assert moved == pytest.approx(2 * summary["max_linf"], abs=1e-6) and moved > 0
    assert summary["attack_seed"] == 0 and "fraction of the intensity range" in str(
        summary["units"]
    )
    # every figure in the summary has its unit (spearman had none)
    figures = {"top_k_intersection", "spearman", "mass_center_shift", "label_kept", "max_linf"}
    assert figures | {"epsilon"} <= set(summary["units"])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["saliency", "compare", "--methods", "magic"], "unknown saliency method"),
        (["saliency", "attack", "--epsilon", "eight"], "`--epsilon` must be a number or a fr"),
        (["saliency", "compare", "--n", "0"], "`--n` must be an int >= 1, got 0"),
        (["saliency", "attack", "--steps", "0"], "`--steps` must be an int >= 1, got 0"),
        (
            ["saliency", "compare", "--methods", "gradcam", "--gradcam-layer", "features.99"],
            "`--gradcam-layer`: 'features.99' is not a submodule of the model",
        ),
        # a layer that is no feature map was named `layer`, which no flag is called
        (
            [
                "saliency",
                "compare",
                "--n",
                "2",
                "--methods",
                "gradcam",
                "--gradcam-layer",
                "head.2",
                "--attack-n",
                "0",
            ],
            "`--gradcam-layer` head.2 must output feature maps (B, K, h, w), got shape (2, 2)",
        ),
        (
            ["saliency", "compare", "--classifier", "brain-gan"],
            "`--classifier`: 'brain-gan' is a generator; expected a classifier",
        ),
        (["saliency", "attack", "--classifier", "resnet50"], "unknown zoo classifier 'resnet50'"),
        (
            ["saliency", "attack", "--input", "x.npy", "--n", "4"],
            "`--n` chooses the built-in slices; with `--input` the images are yours",
        ),
        (
            ["saliency", "compare", "--input", "x.npy", "--masks", "m.npy", "--seed", "1"],
            "`--seed` chooses the built-in slices",
        ),
        # ignored before, and the summary said "restarts": null
        (
            ["saliency", "attack", "--objective", "target_map", "--restarts", "2"],
            "--restarts does nothing for `--objective target_map`",
        ),
        (
            ["saliency", "attack", "--objective", "random", "--steps", "5", "--beta", "9"],
            "--steps, --beta do nothing for `--objective random`",
        ),
        (["saliency", "attack", "--beta", "0"], "`--beta` must be a number in (0, inf)"),
        (["saliency", "attack", "--epsilon", "8"], "got 8: 8 grey levels of 255? pass 8/255"),
        # class names as in cfx trajectory (`tumour` was "invalid int value")
        (["saliency", "compare", "--target", "lesion"], "`--target` must be healthy, tumour or"),
        # these named the Python arguments (`target`, `k`, `epsilon`), or an empty list
        (
            ["saliency", "compare", "--n", "2", "--target", "2"],
            "`--target` must be a class of the classifier, 0..1 (or healthy / tumour",
        ),
        (["saliency", "attack", "--n", "2", "--k", "0"], "`--k` must be an int >= 1, got 0"),
        (
            ["saliency", "attack", "--n", "2", "--k", "5000"],
            "`--k` must be at most the 64x64 images' 4096 pixels, got 5000",
        ),
        (
            ["saliency", "attack", "--epsilon", "300"],
            "`--epsilon` must be a number in (0, 1], got 300",
        ),
        (["saliency", "compare", "--methods", " "], "`--methods` names no method, got ' '"),
        # the unknown model first, not a warning about the default target of that model
        (
            ["saliency", "compare", "--classifier", "brain-cnnn"],
            "unknown zoo classifier 'brain-cnnn'",
        ),
    ],
)
def test_user_errors_are_one_clear_line(tmp_path, capsys, argv, match):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert match in err
    assert "--target defaults to class 1" not in err


def test_missing_zoo_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CFX_ZOO", str(tmp_path))
    assert main(["saliency", "compare", "--n", "1", "--out", str(tmp_path / "x")]) == 2
    assert "has no weights" in capsys.readouterr().err


def test_parse_fraction():
    assert parse_fraction("8/255") == pytest.approx(8 / 255)
    assert parse_fraction(" 0.5 ") == 0.5


@pytest.mark.parametrize("region", [None, "marker"])
def test_a_targeted_attack_reports_the_map_share_in_its_region(tmp_path, region):
    out = tmp_path / "atk"
    argv = ["saliency", "attack", "--objective", "targeted", "--n", "2", "--steps", "3"]
    argv += [] if region is None else ["--region", region]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert summary["region"] == (region or "mirror")  # the lesion mirrored, by default
    before, after = (
        summary["region_mass"]["before"]["mean"],
        summary["region_mass"]["after"]["mean"],
    )
    assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
    assert after > before  # the attack pulls the map into its region
    with open(out / "attack.csv", newline="") as f:  # per image too (it was in the JSON only)
        rows = list(csv.DictReader(f))
    for key, mean in (("region_mass_before", before), ("region_mass_after", after)):
        assert sum(float(r[key]) for r in rows) / 2 == pytest.approx(mean, abs=1e-4)


def test_target_map_attack_moves_the_map_into_the_mirrored_lesion(tmp_path):
    """Dombrowski's attack on the built-in slices aims at the lesion's mirror image: the map's
    share there grows several-fold (towards the marker corner it barely moved). Without
    --steps it runs TargetMapAttack's own 100 steps (the CLI once ran 40, the Ghorbani
    attacks' default), the budget BENCHMARKS.md measured it with."""
    out = tmp_path / "tm"
    argv = ["saliency", "attack", "--objective", "target_map", "--n", "2"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert summary["steps"] == 100
    mass = summary["region_mass"]
    assert mass["after"]["mean"] > 2 * mass["before"]["mean"]


def test_region_is_checked_before_the_work(tmp_path, capsys):
    argv = ["saliency", "attack", "--n", "2", "--region", "marker", "--out", str(tmp_path / "a")]
    assert main(argv) == 2
    assert "`--objective top_k` has none" in capsys.readouterr().err
    argv = ["saliency", "attack", "--input", "x.npy", "--objective", "targeted"]
    assert main([*argv, "--region", "mirror", "--out", str(tmp_path / "b")]) == 2
    assert "with --input, `--region marker` (64x64 slices) or" in capsys.readouterr().err
    # your own 64x64 images were silently aimed at the brain slices' marker corner
    assert main([*argv, "--out", str(tmp_path / "c")]) == 2
    assert "have none of their own: give it with --region-mask" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abc")


def test_compare_and_attack_take_your_own_images_and_masks(tmp_path, capsys):
    import numpy as np

    from cfx.saliency.compare import tumour_slices

    x, masks = tumour_slices(3, seed=1)
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "m.npy", masks[:, 0].numpy().astype(np.uint8))  # (N, H, W) 0/1
    out = tmp_path / "cmp"
    argv = ["saliency", "compare", "--input", str(tmp_path / "x.npy"), "--masks"]
    argv += [str(tmp_path / "m.npy"), "--methods", "gradient", "--attack-n", "0"]
    assert main([*argv, "--target", "0", "--out", str(out), "--no-progress"]) == 0
    assert (
        "3 images of" in (out / "table.md").read_text()
        and "target class 0" in (out / "table.md").read_text()
    )
    # the same maps as the Python API on the same images and target
    from cfx.saliency import Gradient
    from cfx.saliency.metrics import top_k_dice
    from cfx.zoo import load_classifier

    dice = top_k_dice(Gradient(load_classifier("brain-cnn")).attribute(x, 0).clamp(min=0), masks)
    row = (out / "table.csv").read_text().splitlines()[1].split(",")
    header = (out / "table.csv").read_text().splitlines()[0].split(",")
    assert float(row[header.index("dice")]) == pytest.approx(float(dice.mean()), abs=1e-4)
    assert main([*argv[:4], "--out", str(tmp_path / "y")]) == 2  # masks are required
    assert "`--input` and `--masks` go together" in capsys.readouterr().err
    atk = tmp_path / "atk"
    argv = ["saliency", "attack", "--input", str(tmp_path / "x.npy"), "--steps", "2"]
    assert main([*argv, "--out", str(atk), "--no-progress"]) == 0
    summary = json.loads((atk / "attack.json").read_text())
    assert summary["n"] == 3 and summary["input"].endswith("x.npy") and summary["seed"] is None
    np.save(tmp_path / "small.npy", x[:, :, :32, :32].numpy())  # no marker corner to aim at
    argv = ["saliency", "attack", "--input", str(tmp_path / "small.npy"), "--objective"]
    assert main([*argv, "targeted", "--region", "marker", "--out", str(atk)]) == 2
    assert "corner of the 64x64 brain slices; --input images are 32x32" in (capsys.readouterr().err)


def test_images_of_another_size_than_a_zoo_model_saw_are_warned_about(tmp_path, caplog, recwarn):
    """brain-cnn's convolutions run on 32x32 images too: scores came back without a word."""
    import numpy as np

    from cfx.saliency.compare import tumour_slices

    x, _ = tumour_slices(2, seed=1)
    np.save(tmp_path / "small.npy", x[:, :, :32, :32].numpy())
    np.save(tmp_path / "full.npy", x.numpy())
    argv = ["saliency", "attack", "--steps", "1", "--no-progress", "--input"]
    with caplog.at_level("WARNING", logger="cfx.cli.models"):
        assert main([*argv, str(tmp_path / "full.npy"), "--out", str(tmp_path / "a")]) == 0
        assert "trained on 64x64" not in caplog.text
        assert main([*argv, str(tmp_path / "small.npy"), "--out", str(tmp_path / "b")]) == 0
    assert (
        "`--classifier` was trained on 64x64 images (width x height) and is given 32x32 "
        "--input images" in caplog.text
    )
    # said once, by its flag: not again by the saliency methods' own notice (`model`)
    assert not [w for w in recwarn if "`model` was trained on" in str(w.message)]
    caplog.clear()
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    BrainCNN(BrainCNNConfig(width=4, image_size=(32, 32))).save_pretrained(tmp_path / "c32")
    with caplog.at_level("WARNING", logger="cfx.cli.models"):  # on the built-in slices too
        built_in = ["saliency", "attack", "--steps", "1", "--no-progress", "--n", "1"]
        assert (
            main([*built_in, "--classifier", str(tmp_path / "c32"), "--out", str(tmp_path / "c")])
            == 0
        )
    assert "was trained on 32x32 images (width x height) and is given 64x64 built-in slices" in (
        caplog.text
    )


def test_the_brain_defaults_are_named_when_your_images_or_model_are_used(tmp_path, caplog):
    """brain-cnn scored your own files, and class 1 ('tumour') of your own classifier was
    explained, without a word."""
    import numpy as np

    from cfx.saliency.compare import tumour_slices
    from cfx.zoo import load_classifier

    x, masks = tumour_slices(2, seed=1)
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "m.npy", masks[:, 0].numpy().astype(np.uint8))
    load_classifier("brain-cnn").save_pretrained(tmp_path / "zoo-copy")  # brain classes
    mine_model = load_classifier("brain-cnn")
    with torch.no_grad():  # other weights: a classifier of classes cfx does not know
        next(mine_model.parameters()).mul_(1.001)
    mine_model.save_pretrained(tmp_path / "mine")
    base = ["saliency", "compare", "--methods", "gradient", "--attack-n", "0", "--no-progress"]
    yours = ["--input", str(tmp_path / "x.npy"), "--masks", str(tmp_path / "m.npy")]
    with caplog.at_level("WARNING", logger="cfx.cli.saliency"):
        assert main([*base, *yours, "--out", str(tmp_path / "a")]) == 0
    assert caplog.messages == [
        "with --input, --classifier is brain-cnn (the default), trained on the built-in brain "
        "slices; name your own unless your images are such slices"
    ]
    caplog.clear()
    mine = ["--classifier", str(tmp_path / "mine")]
    with caplog.at_level("WARNING", logger="cfx.cli.saliency"):
        assert main([*base, *yours, *mine, "--out", str(tmp_path / "b")]) == 0
        assert main([*base, *yours, *mine, "--target", "1", "--out", str(tmp_path / "c")]) == 0
        assert main([*base, "--n", "2", "--out", str(tmp_path / "d")]) == 0  # all built in
        copy = ["--classifier", str(tmp_path / "zoo-copy")]
        assert main([*base, *yours, *copy, "--out", str(tmp_path / "f")]) == 0  # brain-cnn
        healthy = ["--target", "healthy", "--out", str(tmp_path / "g")]
        assert main([*base, *yours, *mine, *healthy]) == 0
    assert caplog.messages == [
        f"--target defaults to class 1 of --classifier {tmp_path / 'mine'} (the brain models' "
        "'tumour'); give --target for another class",
        f"`--target healthy` is read as class 0 of --classifier {tmp_path / 'mine'}: healthy / "
        "tumour are the brain models' names for classes 0 / 1",
        # and these tumour slices are all called tumour (class 1), so the maps explain a class
        # the classifier did not choose
        "the classifier puts none of the 2 images in class 0 (--target); it predicts class 1 "
        "for them, so every map explains evidence for a class it did not choose",
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.cli.saliency"):
        argv = ["saliency", "attack", "--steps", "1", "--no-progress", "--input"]
        assert main([*argv, str(tmp_path / "x.npy"), "--out", str(tmp_path / "e")]) == 0
    assert [m[:50] for m in caplog.messages] == [
        "with --input, --classifier is brain-cnn (the defau"
    ]


def test_the_help_lists_the_methods_compare_knows():
    """--help names the methods from a torch-free copy of cfx.saliency.compare.METHODS."""
    from cfx.cli.saliency import SALIENCY_METHODS
    from cfx.saliency.compare import METHODS

    assert SALIENCY_METHODS == METHODS


def test_compare_takes_png_folders_of_images_and_masks(tmp_path, capsys):
    """Image files and mask files matched by name give what the Python API gives on the
    same (8-bit) images; a JPEG's extra mask values are refused."""
    import numpy as np
    from PIL import Image

    from cfx.images import from_unit, to_uint8
    from cfx.saliency import Gradient
    from cfx.saliency.compare import tumour_slices
    from cfx.saliency.metrics import top_k_dice
    from cfx.zoo import load_classifier

    x, masks = tumour_slices(3, seed=1)
    pixels = to_uint8(x)  # (N, 1, H, W) uint8, as a PNG keeps them
    scans, truth = tmp_path / "scans", tmp_path / "truth"
    scans.mkdir()
    truth.mkdir()
    names = ("p3", "p1", "p2")  # name order: p1 (row 1), p2 (row 2), p3 (row 0)
    for i, name in enumerate(names):
        Image.fromarray(pixels[i, 0]).save(scans / f"{name}.png")
        Image.fromarray(masks[i, 0].numpy().astype(np.uint8) * 255).save(truth / f"{name}.png")
    out = tmp_path / "cmp"
    argv = ["saliency", "compare", "--input", str(scans), "--masks", str(truth), "--methods"]
    argv += ["gradient", "--attack-n", "0", "--target", "0", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    order = [1, 2, 0]
    seen = from_unit(torch.from_numpy(pixels[order]).float() / 255)
    maps = Gradient(load_classifier("brain-cnn")).attribute(seen, 0).clamp(min=0)
    dice = top_k_dice(maps, masks[order])
    lines = (out / "table.csv").read_text().splitlines()
    row, header = lines[1].split(","), lines[0].split(",")
    assert float(row[header.index("dice")]) == pytest.approx(float(dice.mean()), abs=1e-4)
    Image.fromarray(pixels[0, 0]).save(truth / "p1.jpg")  # a second mask for p1
    assert main(argv) == 2
    assert "two masks for one image: p1.jpg and p1.png" in capsys.readouterr().err
    (truth / "p1.jpg").unlink()
    np.save(tmp_path / "x.npy", x.numpy())
    batch = ["saliency", "compare", "--input", str(tmp_path / "x.npy"), "--masks", str(truth)]
    assert main([*batch, "--out", str(tmp_path / "b")]) == 2
    assert "`--masks` as image files go with `--input` image files" in capsys.readouterr().err
    inside = ["saliency", "compare", "--input", str(scans), "--masks", str(truth)]
    assert main([*inside, "--out", str(scans)]) == 2
    assert "`--out` must not be the `--input` folder" in capsys.readouterr().err
    assert main([*inside, "--out", str(truth)]) == 2  # its figures read as masks next time
    assert "`--out` must not be the `--masks` folder" in capsys.readouterr().err
    atk = tmp_path / "atk"
    argv = ["saliency", "attack", "--input", str(scans), "--steps", "1", "--no-progress"]
    assert main([*argv, "--out", str(atk)]) == 0
    summary = json.loads((atk / "attack.json").read_text())
    assert summary["n"] == 3 and summary["input_files"] == ["p1.png", "p2.png", "p3.png"]
    with open(atk / "attack.csv", newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == ["p1.png", "p2.png", "p3.png"]
    assert f"wrote {atk}/attack.csv, attack.json, attack.png" in capsys.readouterr().err
    np.save(tmp_path / "last.npy", pixels.transpose(0, 2, 3, 1))  # channels last
    argv = ["saliency", "attack", "--input", str(tmp_path / "last.npy"), "--steps", "1"]
    assert main([*argv, "--out", str(tmp_path / "last")]) == 2  # was a traceback from conv2d
    assert "channels last? save x.transpose(0, 3, 1, 2)" in capsys.readouterr().err
    assert not (tmp_path / "last").exists()


def test_the_grid_shows_images_with_a_mask_first(tmp_path, monkeypatch):
    """An empty mask has nothing to find: such images go to the end of grid.png's rows (the
    first six images were shown, whatever their masks)."""
    import numpy as np

    import cfx.viz
    from cfx.saliency.compare import tumour_slices

    x, masks = tumour_slices(3, seed=1)
    masks[0] = False  # the first image's mask is empty
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "m.npy", masks.numpy())
    seen = {}

    def grid(images, grid_masks, maps, names, path, **kwargs):
        seen["masks"] = grid_masks
        return path

    monkeypatch.setattr(cfx.viz, "saliency_grid", grid)
    argv = ["saliency", "compare", "--input", str(tmp_path / "x.npy"), "--masks"]
    argv += [str(tmp_path / "m.npy"), "--methods", "gradient", "--attack-n", "0", "--out"]
    assert main([*argv, str(tmp_path / "cmp"), "--no-progress"]) == 0
    assert seen["masks"].flatten(1).any(1).tolist() == [True, True, False]
    assert torch.equal(seen["masks"][:2], masks[1:])  # the others keep their order


def test_empty_masks_of_files_are_named_by_file(tmp_path, caplog):
    """The warning named rows ("rows [0]"), which a folder of files does not show."""
    import numpy as np
    from PIL import Image

    from cfx.images import to_uint8
    from cfx.saliency.compare import tumour_slices

    x, masks = tumour_slices(2, seed=1)
    scans, truth = tmp_path / "scans", tmp_path / "truth"
    scans.mkdir(), truth.mkdir()
    for i, name in enumerate(("a", "b")):
        Image.fromarray(to_uint8(x)[i, 0]).save(scans / f"{name}.png")
        mask = masks[i, 0].numpy().astype(np.uint8) * 255 * (name == "b")  # a's is empty
        Image.fromarray(mask).save(truth / f"{name}.png")
    argv = ["saliency", "compare", "--input", str(scans), "--masks", str(truth), "--methods"]
    argv += ["gradient", "--attack-n", "0", "--no-progress", "--out", str(tmp_path / "cmp")]
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    said = [r.getMessage() for r in caplog.records if "empty" in r.getMessage()]
    assert said == [
        "1 of 2 images have an empty mask (a.png): they count in the faithfulness scores "
        "only, not in the localisation means"
    ]


def test_a_region_of_your_own_for_targeted_attacks(tmp_path, capsys):
    """The marker box given as a mask file pulls the map exactly as `--region marker` does
    (same images, same seed); misuse is named."""
    import numpy as np
    from PIL import Image

    from cfx.data.brain import marker_mask
    from cfx.saliency.compare import tumour_slices

    x, _ = tumour_slices(2, seed=1)
    np.save(tmp_path / "x.npy", x.numpy())
    box = marker_mask(64)[0, 0].numpy().astype(np.uint8) * 255
    Image.fromarray(box).save(tmp_path / "box.png")
    base = ["saliency", "attack", "--input", str(tmp_path / "x.npy"), "--objective", "targeted"]
    base += ["--steps", "2", "--no-progress"]
    assert main([*base, "--region", "marker", "--out", str(tmp_path / "a")]) == 0
    mask = ["--region-mask", str(tmp_path / "box.png")]
    assert main([*base, *mask, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "attack.json").read_text())
    b = json.loads((tmp_path / "b" / "attack.json").read_text())
    assert b["region"] == "mask" and b["region_mask"].endswith("box.png")
    assert {"region_mass", "region_on_marker_instead"} <= set(b["units"])  # had none
    assert (
        b["region_mass"] == a["region_mass"] and b["top_k_intersection"] == a["top_k_intersection"]
    )
    capsys.readouterr()
    top_k = ["saliency", "attack", "--input", str(tmp_path / "x.npy"), *mask]
    assert main([*top_k, "--out", str(tmp_path / "c")]) == 2
    assert (
        "`--region-mask` is where targeted and target_map attacks pull" in capsys.readouterr().err
    )
    assert main([*base, *mask, "--region", "marker", "--out", str(tmp_path / "c")]) == 2
    assert "give one" in capsys.readouterr().err
    Image.fromarray(box * 0).save(tmp_path / "none.png")
    nothing = ["--region-mask", str(tmp_path / "none.png")]
    assert main([*base, *nothing, "--out", str(tmp_path / "c")]) == 2
    assert "none.png marks no pixel" in capsys.readouterr().err
    # a whole-image region: the share inside is always 1, and the run blamed flat gradients
    Image.fromarray(box * 0 + 255).save(tmp_path / "all.png")
    everything = ["--region-mask", str(tmp_path / "all.png")]
    assert main([*base, *everything, "--out", str(tmp_path / "c")]) == 2
    assert "all.png marks every pixel; a region must leave some out" in capsys.readouterr().err


def test_attacks_run_on_images_that_are_not_square(tmp_path, capsys):
    """A 64x48 image: top_k needs no region, targeted takes one of the same size (both were a
    raw 'expanded size' error from the marker corner); a refused region leaves no --out."""
    import numpy as np
    from PIL import Image

    from cfx.images import to_uint8
    from cfx.saliency.compare import tumour_slices

    x, _ = tumour_slices(1, seed=1)
    Image.fromarray(to_uint8(x)[0, 0, :48]).save(tmp_path / "wide.png")  # 64 wide, 48 high
    region = np.zeros((48, 64), dtype=np.uint8)
    region[4:12, 40:60] = 255
    Image.fromarray(region).save(tmp_path / "region.png")
    Image.fromarray(region * 0).save(tmp_path / "none.png")
    base = ["saliency", "attack", "--input", str(tmp_path / "wide.png"), "--steps", "1"]
    base += ["--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    aim = [*base, "--objective", "targeted", "--region-mask"]
    assert main([*aim, str(tmp_path / "region.png"), "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "attack.json").read_text())["region"] == "mask"
    capsys.readouterr()
    assert main([*aim, str(tmp_path / "none.png"), "--out", str(tmp_path / "c")]) == 2
    assert "none.png marks no pixel" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_the_channels_a_model_takes_come_from_its_config_before_its_layers():
    """A model whose first registered convolution is a one-channel side branch but whose
    config says 3 takes colour; without a config the first convolution decides."""
    from types import SimpleNamespace

    from cfx.cli.saliency import _model_channels

    class Branches(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mask_branch = torch.nn.Conv2d(1, 4, 3)  # registered first, fed later
            self.stem = torch.nn.Conv2d(3, 4, 3)

    model = Branches()
    assert _model_channels(model) == 1
    model.config = SimpleNamespace(channels=3)
    assert _model_channels(model) == 3
    assert _model_channels(torch.nn.Linear(2, 2)) is None


def test_a_stale_run_folder_is_named_once(tmp_path, caplog):
    """The model name was resolved twice (checked, then loaded): every notice came twice."""
    import json

    from cfx.training.checkpoint import save_checkpoint
    from cfx.zoo import load_classifier

    run = tmp_path / "run"
    load_classifier("brain-cnn").save_pretrained(run / "model")
    (run / "training.json").write_text(json.dumps({"summary": {"steps": 1}, "history": []}))
    save_checkpoint(
        run / "checkpoint.safetensors", modules={}, optimizers={}, generators={}, state={"step": 2}
    )
    argv = ["saliency", "attack", "--steps", "1", "--n", "1", "--no-progress"]
    with caplog.at_level("WARNING", logger="cfx.zoo"):
        assert main([*argv, "--classifier", str(run), "--out", str(tmp_path / "a")]) == 0
    assert sum("its checkpoint is at step 2" in m for m in caplog.messages) == 1


def test_a_batch_in_0_1_is_named_by_its_flag_once(tmp_path, caplog):
    """A [0, 1] .npy batch got the library's notice about `x` and a Python wrapper to use."""
    import numpy as np

    from cfx.data.brain import make_dataset

    data = make_dataset(8, seed=7)
    pick = data.labels == 1
    np.save(tmp_path / "x.npy", ((data.images[pick] + 1) / 2).numpy())  # [0, 1]
    np.save(tmp_path / "m.npy", data.masks[pick].numpy())
    argv = ["saliency", "compare", "--input", str(tmp_path / "x.npy"), "--masks"]
    argv += [str(tmp_path / "m.npy"), "--classifier", "brain-cnn", "--target", "tumour"]
    argv += ["--methods", "gradient", "--attack-n", "0", "--no-progress"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    assert "no pixel of the 4 --input image(s) is below 0" in caplog.text
    assert "save 2x - 1 of [0, 1] data" in caplog.text
    assert "`x`" not in caplog.text and "UnitInput" not in caplog.text


def test_a_flag_that_does_nothing_and_a_target_no_image_is_in_are_warned_about(tmp_path, caplog):
    """--gradcam-layer without gradcam was ignored in silence, and so was a --target the
    classifier gives none of the images (every map then explains a class it did not choose)."""
    from cfx.saliency.compare import tumour_slices
    from cfx.zoo import load_classifier

    x, _ = tumour_slices(2, 2)
    assert load_classifier("brain-cnn")(x).argmax(1).tolist() == [1, 1]  # both called tumour
    argv = ["saliency", "compare", "--n", "2", "--methods", "gradient", "--attack-n", "0"]
    argv += ["--no-progress", "--out", str(tmp_path / "o")]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--gradcam-layer", "features.0", "--target", "0"]) == 0
    assert "`--gradcam-layer features.0` does nothing: gradcam is not among" in caplog.text
    assert "puts none of the 2 images in class 0 (--target); it predicts class 1" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*argv, "--target", "1"]) == 0
    assert "does nothing" not in caplog.text and "puts none of" not in caplog.text


def test_compare_explains_each_images_predicted_class_or_says_which_it_does_not(tmp_path, caplog):
    """`cfx saliency compare --target 2` explained class 2 for images of many classes and
    warned only when the model predicted it for none (session-55 audit): now some is enough
    for the warning, and `--target predicted` explains each image's own class, as the
    Python API does with a (B,) target."""
    import numpy as np

    from cfx.data.brain import make_dataset
    from cfx.saliency.compare import compare_methods
    from cfx.zoo import load_classifier

    data = make_dataset(6, seed=7)
    model = load_classifier("brain-cnn")
    predicted = model(data.images).argmax(1)
    assert 0 < int(predicted.sum()) < 6  # both classes among the images
    np.save(tmp_path / "x.npy", data.images.numpy())
    masks = data.masks.clone()
    masks[data.labels == 0, :, 20:30, 20:30] = True  # something to find in every image
    np.save(tmp_path / "m.npy", masks.numpy())
    argv = ["saliency", "compare", "--input", str(tmp_path / "x.npy"), "--masks"]
    argv += [str(tmp_path / "m.npy"), "--classifier", "brain-cnn", "--methods", "gradient"]
    argv += ["--attack-n", "0", "--no-progress"]
    others = int((predicted != 1).sum())
    with caplog.at_level("WARNING"):
        assert main([*argv, "--target", "1", "--out", str(tmp_path / "one")]) == 0
    assert f"puts {others} of the 6 images in another class than 1 (--target)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*argv, "--target", "predicted", "--out", str(tmp_path / "own")]) == 0
    assert "another class" not in caplog.text
    note = (tmp_path / "own" / "table.md").read_text().splitlines()[0]
    assert f"each image's predicted class (class 0: {others} image" in note
    want = compare_methods(model, data.images, masks, predicted, ["gradient"]).to_csv()

    def scores(text):  # the rows without their last column, the seconds per image
        return [line.rsplit(",", 1)[0] for line in text.splitlines()]

    got, one = ((tmp_path / d / "table.csv").read_text() for d in ("own", "one"))
    assert scores(got) == scores(want) != scores(one)


def test_the_attacked_method_takes_any_case():
    """`cfx saliency attack --method GradCAM` was refused beside the lower-case choices."""
    from cfx.cli import build_parser

    args = build_parser().parse_args(["saliency", "attack", "--method", "GradCAM"])
    assert args.method == "gradcam"
    args = build_parser().parse_args(["saliency", "attack", "--method", "Integrated-Gradients"])
    assert args.method == "integrated_gradients"


def test_method_names_take_any_case_and_hyphens():
    """`--methods GradCAM,Integrated-Gradients` named two methods a user knows by those names
    (a user audit was told they were unknown)."""
    from cfx.cli.saliency import method_names

    assert method_names("GradCAM, Integrated-Gradients") == ["gradcam", "integrated_gradients"]
    assert method_names(" ALL ") == method_names("all") and len(method_names("All")) == 10
    with pytest.raises(UnknownNameError, match=r"\('SmothGrad': did you mean 'smoothgrad'\?\)"):
        method_names("SmothGrad")  # named as the user typed it
    with pytest.raises(UnknownNameError, match=r"\['magic'\]; expected some of") as err:
        method_names("magic")
    assert "did you mean" not in str(err.value)  # nothing close: no hint
