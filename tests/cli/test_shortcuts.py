import json

import pytest
import torch

from cfx.cli import main


def groups_of(summary):
    return [*summary["accuracy_by_group"].values(), summary["marker_rate"]]


def test_shortcuts_writes_summary_report_and_figure(tmp_path, capsys):
    out = tmp_path / "sc"
    args = ["shortcuts", "--classifier", "brain-cnn", "--n", "4", "--steps", "3"]
    code = main([*args, "--inversion-steps", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    assert (out / "examples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("classifier", "method", "n", "marker_rate", "flagged", "verdict", "directions"):
        assert key in summary
    assert summary["classifier"] == "brain-cnn" and summary["n"] == 4
    assert isinstance(summary["flagged"], bool)
    assert summary["verdict"].startswith("brain-cnn: ")
    assert summary["status"] in ("flagged", "clean", "inconclusive", "no verdict")
    assert (summary["status"] == "flagged") == summary["flagged"]
    assert 0 <= summary["n_counted"] <= 4
    assert summary["marker_rate"] is None or 0.0 <= summary["marker_rate"] <= 1.0
    shares = [p["marker_share_of_change"] for p in summary["paths"]]
    shares += [v for v in groups_of(summary) if v is not None]
    assert all(len(repr(v)) <= 9 for v in shares)  # 6 digits: no float32 tail (0.16666667163)
    assert set(summary["directions"]) == {"tumour->healthy", "healthy->tumour"}
    groups = summary["accuracy_by_group"]
    assert (
        {"accuracy", "worst_group"}
        <= set(groups)
        <= {
            "accuracy",
            "worst_group",
            "healthy_no_marker",
            "healthy_marker",
            "tumour_no_marker",
            "tumour_marker",
        }
    )
    assert groups["worst_group"] <= groups["accuracy"]
    n_paths = 0
    for direction in summary["directions"].values():
        n_paths += direction["n_paths"]
        assert isinstance(direction["n_paths"], int)  # a count, not 3.0
        assert direction["n_counted"] <= direction["n_started_outside"] <= direction["n_paths"]
        assert isinstance(direction["verdict"], str)
        for region in ("lesion", "marker", "elsewhere"):
            share = direction[f"median_saliency_{region}"]
            assert share is None or 0.0 <= share <= 1.0
            area = direction[f"median_area_{region}"]
            assert 0.0 <= area <= 1.0
        assert abs(direction["median_area_marker"] - 121 / 4096) < 1e-6  # the 11x11 box
    assert n_paths == 4
    cells = summary["cells"]
    assert summary["min_paths"] == 3 and summary["flag_rate"] == 0.5
    assert [(c["direction"], c["marker_present"]) for c in cells] == [
        ("tumour->healthy", True),
        ("tumour->healthy", False),
        ("healthy->tumour", True),
        ("healthy->tumour", False),
    ]
    assert sum(c["n_paths"] for c in cells) == 4
    assert sum(c["n_counted"] for c in cells) == summary["n_counted"]
    assert summary["flagged"] == any(c["flagged"] for c in cells)
    for c in cells:
        assert c["n_via_marker"] <= c["n_counted"] <= c["n_paths"]
        assert c["enough_paths"] == (c["n_counted"] >= 3)
    report = (out / "report.md").read_text()
    assert "# Shortcut report: `brain-cnn`" in report
    assert "## tumour->healthy" in report and "## healthy->tumour" in report
    assert "| marker region |" in report
    assert "| tumour->healthy | tumour images with the marker |" in report
    assert summary["verdict"] in capsys.readouterr().out
    # the paths stop past 0.95, not at it: where they end is said
    end = summary["p_target_end_median"]
    counted = [p["p_target_end"] for p in summary["paths"] if p["counted"]]
    assert end is None if not counted else end >= 0.95
    assert "Paths stop once the target probability passes 0.95, close to the boundary" in report


def test_shortcuts_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["shortcuts", "--n", "0", "--out", str(tmp_path)]) == 2
    assert "`--n` must be an int >= 1, got 0" in capsys.readouterr().err
    # the audit's own checks called these `flag_rate` and `min_paths`
    assert main(["shortcuts", "--flag-rate", "1.5", "--out", str(tmp_path)]) == 2
    assert "`--flag-rate` must be a number in (0, 1], got 1.5" in capsys.readouterr().err
    assert main(["shortcuts", "--min-paths", "0", "--out", str(tmp_path)]) == 2
    assert "`--min-paths` must be an int >= 1, got 0" in capsys.readouterr().err
    assert main(["shortcuts", "--generator", "brain-cnn", "--out", str(tmp_path)]) == 2
    assert "`--generator`: 'brain-cnn' is a classifier" in capsys.readouterr().err
    assert main(["shortcuts", "--saliency", "magic", "--out", str(tmp_path)]) == 2
    assert "unknown saliency method 'magic'" in capsys.readouterr().err
    # the built-in box is 121 of 4096 pixels: 33.9x is the most a path can give it
    assert main(["shortcuts", "--min-enrichment", "50", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "`--min-enrichment` 50 cannot be reached: the built-in slices' marker box covers " in err
    assert "gets 33.9x its area share at most" in err and not (tmp_path / "e").exists()


def test_a_classifier_the_command_cannot_audit_is_named(tmp_path, capsys):
    """A 3-class classifier was refused as "`class_names` must name each of the classifier's
    3 classes", which --class-names (two names) cannot; a colour classifier of the grey
    generator's frames failed with a traceback from inside torch (session 46 audit)."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    BrainCNN(BrainCNNConfig(num_classes=3, width=4, blocks=2)).save_pretrained(tmp_path / "k3")
    BrainCNN(BrainCNNConfig(channels=3, width=4, blocks=2)).save_pretrained(tmp_path / "rgb")
    argv = ["shortcuts", "--n", "4", *FAST, "--out", str(tmp_path / "o")]
    assert main([*argv, "--classifier", str(tmp_path / "k3")]) == 2
    assert "k3 has 3 classes; cfx shortcuts walks each image into the other of two classes" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--classifier", str(tmp_path / "rgb")]) == 2
    err = capsys.readouterr().err
    assert "`classifier` cannot read `x` of shape (4, 1, 64, 64), the generator's frames'" in err
    assert "Traceback" not in err


FAST = ["--method", "gradient", "--steps", "3", "--inversion-steps", "0", "--no-progress"]
SAME = ("cells", "directions", "n_counted", "marker_rate", "flagged", "verdict", "n")


def _built_in_files(tmp_path, n=4):
    """The built-in run's slices, labels, marker flags, lesion masks and marker box as files."""
    import numpy as np

    from cfx.data.brain import make_dataset, marker_mask

    data = make_dataset(n, seed=2, tagged=True, tag_correlation=0.5)
    files = {
        "--input": ("x.npy", data.images.numpy()),
        "--labels": ("y.npy", data.labels.numpy()),
        "--marker-present": ("tags.npy", data.tags.numpy()),
        "--lesion-masks": ("lesions.npy", data.masks.numpy()),
        "--marker-mask": ("box.npy", marker_mask(64)[0, 0].numpy().astype(np.uint8)),
    }
    argv = []
    for flag, (name, array) in files.items():
        np.save(tmp_path / name, array)
        argv += [flag, str(tmp_path / name)]
    return data, argv


def test_your_own_images_give_the_built_in_report_on_the_same_slices(tmp_path):
    """The built-in slices passed as files, with the built-in marker box, lesion masks and
    marker flags, give the built-in run's paths, cells, verdict and group accuracies."""
    _, argv = _built_in_files(tmp_path)
    base = ["shortcuts", "--classifier", "brain-cnn", *FAST]
    assert main([*base, "--n", "4", "--out", str(tmp_path / "built-in")]) == 0
    named = ["--marker-name", "scanner marker"]  # the built-in slices' name for it
    assert main([*base, *argv, *named, "--out", str(tmp_path / "mine")]) == 0
    built_in = json.loads((tmp_path / "built-in" / "summary.json").read_text())
    mine = json.loads((tmp_path / "mine" / "summary.json").read_text())
    for key in (*SAME, "accuracy_by_group"):
        assert mine[key] == built_in[key], key
    assert mine["seed"] is None and mine["input"].endswith("x.npy")
    assert mine["marker_mask"].endswith("box.npy") and built_in["marker_mask"] is None
    report = (tmp_path / "mine" / "report.md").read_text()
    assert "4 images of `" in report and "(121 of 4096 pixels)" in report
    # the region is named in the report only when --marker-name names it
    assert "The marker below is the scanner marker." in report
    assert "The marker below" not in (tmp_path / "built-in" / "report.md").read_text()


def test_your_own_image_and_mask_files_and_class_names(tmp_path):
    """PNG scans at twice the generator's size with a marker mask drawn at that size: both are
    brought to 64x64 (the 22x22 box becomes the 11x11 one); directions take --class-names."""
    import numpy as np
    from PIL import Image

    from cfx.data.brain import marker_mask
    from cfx.images import to_uint8

    data, _ = _built_in_files(tmp_path)
    scans, lesions = tmp_path / "scans", tmp_path / "lesions"
    scans.mkdir()
    lesions.mkdir()
    big = torch.nn.functional.interpolate(data.images, scale_factor=2, mode="nearest")
    for i, pixels in enumerate(to_uint8(big)):
        Image.fromarray(pixels[0]).save(scans / f"s{i}.png")
        lesion = data.masks[i, 0].repeat_interleave(2, 0).repeat_interleave(2, 1)
        Image.fromarray(lesion.numpy().astype(np.uint8) * 255).save(lesions / f"s{i}.png")
    box = marker_mask(64)[0, 0].repeat_interleave(2, 0).repeat_interleave(2, 1)
    Image.fromarray(box.numpy().astype(np.uint8) * 255).save(tmp_path / "box.png")
    np.save(tmp_path / "y.npy", data.labels.numpy())
    np.save(tmp_path / "tags.npy", data.tags.numpy().astype(np.uint8))  # 0/1 works too
    argv = ["shortcuts", "--classifier", "brain-cnn", *FAST, "--input", str(scans)]
    argv += ["--labels", str(tmp_path / "y.npy"), "--marker-mask", str(tmp_path / "box.png")]
    argv += ["--marker-present", str(tmp_path / "tags.npy"), "--lesion-masks", str(lesions)]
    argv += ["--class-names", "normal,lesion", "--marker-name", "hospital tag"]
    argv += ["--out", str(tmp_path / "sc")]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "sc" / "summary.json").read_text())
    assert summary["marker_name"] == "hospital tag"
    # the class "lesion" and the lesion region no longer read alike in the region table
    report = (tmp_path / "sc" / "report.md").read_text()
    assert "| lesion mask (+3 px) |" in report
    # the tables say "marker": the report says which region that is
    assert "The marker below is the hospital tag. A path goes via the marker" in report
    assert set(summary["directions"]) == {"lesion->normal", "normal->lesion"}
    for direction in summary["directions"].values():
        assert direction["median_area_marker"] == pytest.approx(121 / 4096)
    assert summary["class_names"] == ["normal", "lesion"]
    groups = set(summary["accuracy_by_group"]) - {"accuracy", "worst_group"}
    assert groups and all(g.split("_")[0] in ("normal", "lesion") for g in groups)
    assert summary["lesion_masks"] == str(lesions)
    assert summary["input_files"] == ["s0.png", "s1.png", "s2.png", "s3.png"]  # the rows
    # per image (there was no way to tell which scan flipped via the marker): named, with its
    # class and marker as given, walked into the other class; the counts add up to the cells'
    paths = summary["paths"]
    assert [p["image"] for p in paths] == summary["input_files"]
    names = ["normal", "lesion"]
    assert [p["label"] for p in paths] == [names[int(y)] for y in data.labels]
    assert [p["target"] for p in paths] == [names[1 - int(y)] for y in data.labels]
    assert [p["marker_present"] for p in paths] == data.tags.tolist()
    for key, cell_key in (("counted", "n_counted"), ("via_marker", "n_via_marker")):
        assert sum(p[key] for p in paths) == sum(c[cell_key] for c in summary["cells"])
    assert sum(p["undone"] for p in paths) == sum(c["n_undone"] for c in summary["cells"])
    assert all(0 <= p["p_target_start"] <= 1 and 0 <= p["p_target_end"] <= 1 for p in paths)
    argv[argv.index("--out") + 1] = str(scans)
    assert main(argv) == 2  # its report would be read as scans by the next run
    assert summary["directions"]["lesion->normal"]["median_area_lesion"] > 0  # the PNG masks
    assert summary["directions"]["normal->lesion"]["median_area_lesion"] == 0
    # the same classes as CSV rows by file name (reversed, no extensions) and the marker flags
    # one per line as yes/n (the first was read as a header, the rest as class names): the
    # same report
    rows = [f"s{i},{int(y)}" for i, y in enumerate(data.labels)][::-1]
    (tmp_path / "y.csv").write_text("scan,class\n" + "\n".join(rows) + "\n")
    (tmp_path / "tags.txt").write_text("".join("Yes\n" if t else "N\n" for t in data.tags))
    argv[argv.index("--labels") + 1] = str(tmp_path / "y.csv")
    argv[argv.index("--marker-present") + 1] = str(tmp_path / "tags.txt")
    argv[argv.index("--out") + 1] = str(tmp_path / "sc-csv")
    assert main(argv) == 0
    from_csv = json.loads((tmp_path / "sc-csv" / "summary.json").read_text())
    for key in (*SAME, "accuracy_by_group"):
        assert from_csv[key] == summary[key], key


def test_your_own_images_need_what_describes_them(tmp_path, capsys):
    import numpy as np

    _, argv = _built_in_files(tmp_path)
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    out = ["--out", str(tmp_path / "sc")]
    cases = [
        (
            ["--input", flags["--input"]],
            "`--input` needs --labels (the images' classes, each walked into the other) and "
            "--marker-mask (the region suspected of being a shortcut) and --marker-present",
        ),
        (  # only what is missing is asked for
            ["--input", flags["--input"], "--labels", flags["--labels"]],
            "`--input` needs --marker-mask (the region suspected of being a shortcut) and "
            "--marker-present (which images carry that region)",
        ),
        ([*argv, "--n", "4"], "`--n` chooses the built-in slices; with `--input` the images"),
        (["--labels", flags["--labels"]], "--labels describes your images: give them with"),
        ([*argv, "--class-names", "a,b,c"], "`--class-names` must be 2 names separated by commas"),
    ]
    for extra, message in cases:
        assert main(["shortcuts", *extra, *out]) == 2, extra
        assert message in capsys.readouterr().err, extra
    np.save(tmp_path / "y3.npy", np.array([0, 1, 2, 1]))
    np.save(tmp_path / "none.npy", np.zeros((64, 64), dtype=bool))
    np.save(tmp_path / "wide.npy", np.zeros((64, 32), dtype=bool))
    later = [  # checked once the generator says the images' size
        (  # which image holds the stray value (a user had to search a CSV for it)
            {"--labels": str(tmp_path / "y3.npy")},
            "`--labels` must be 0 or 1 per image, got values [0, 1, 2]: row 2 (2)",
        ),
        ({"--marker-mask": str(tmp_path / "none.npy")}, "none.npy marks no pixel"),
        ({"--marker-mask": str(tmp_path / "wide.npy")}, "must have shape (64, 64), one mask"),
    ]
    np.save(tmp_path / "half.npy", np.arange(64 * 64).reshape(64, 64) % 2 == 0)
    later.append(  # 50% of the image can never hold 4x its share of the change
        (
            {"--marker-mask": str(tmp_path / "half.npy")},
            "`--min-enrichment` 4 cannot be reached: `--marker-mask` covers 50.0% of the image, "
            "so a path changing only it gets 2x its area share at most",
        )
    )
    box = np.zeros((64, 64), dtype=bool)
    box[:8, :8] = True
    np.save(tmp_path / "inverted.npy", ~box)  # the region drawn 0, the rest 1
    later.append(
        (
            {"--marker-mask": str(tmp_path / "inverted.npy")},
            "covers 98.4% of the image, so a path changing only it gets 1.02x its area share at "
            "most, and none could go via the marker; mark the suspected region only (inverted, "
            "0 = region?)",
        )
    )
    for change, message in later:
        given = [x for flag, value in {**flags, **change}.items() for x in (flag, value)]
        assert main(["shortcuts", *FAST, *given, *out]) == 2, change
        assert message in capsys.readouterr().err, change
    assert not (tmp_path / "sc").exists()  # refused before any folder was made


def test_what_a_run_warned_is_in_its_report(tmp_path):
    """Images in [0, 1] are warned about (on stderr, or pytest's log here); a report read later
    said nothing of it.
    Without lesion masks the region table says none were given."""
    import numpy as np

    _, argv = _built_in_files(tmp_path)
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    x = np.load(flags.pop("--input"))
    np.save(tmp_path / "unit.npy", (x + 1) / 2)  # [0, 1]: no pixel below 0
    del flags["--lesion-masks"]
    given = [v for flag, value in flags.items() for v in (flag, value)]
    out = tmp_path / "sc"
    argv = ["shortcuts", "--classifier", "brain-cnn", *FAST, "--input", str(tmp_path / "unit.npy")]
    assert main([*argv, *given, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    below = [w for w in summary["warnings"] if "is below 0" in w]
    assert len(below) == 1
    report = (out / "report.md").read_text()
    assert f"**Warnings of this run:**\n\n- {below[0]}" in report
    assert "| lesion mask (none given) |" in report
    assert summary["marker_name"] == "marker"  # not "scanner marker" for your own images


def test_a_marker_accuracy_gap_is_said_in_words():
    """Healthy images with the marker 1 of 9 right, without it 15 of 15 (the session 46
    audit's run with its marker mask in the wrong corner): said, with the group sizes, though
    a group has under 10 images (the old minimum kept it silent; Fisher's p is 1e-5). Tumour
    images (75% and 67% right: a gap of 8 points) are not."""
    from cfx.cli.shortcuts import marker_accuracy_gaps

    labels = torch.tensor([0] * 24 + [1] * 7)
    present = torch.tensor([True] * 9 + [False] * 15 + [True] * 4 + [False] * 3)
    pred = torch.tensor([0] + [1] * 8 + [0] * 15 + [1, 1, 1, 0, 1, 1, 0])
    names = ("healthy", "tumour")
    assert marker_accuracy_gaps(pred, labels, present, names) == [
        "healthy images with the marker are classified right in 11% (9 images), without it "
        "in 100% (15)"
    ]


def test_a_gap_as_likely_as_chance_is_not_said():
    """0 of 4 against 3 of 3 right: a gap of 100 points, but one a marker that plays no part
    gives 3% of the time (Fisher's p 0.029 > 0.01)."""
    from cfx.cli.shortcuts import marker_accuracy_gaps

    labels = torch.zeros(7, dtype=torch.long)
    present = torch.tensor([True] * 4 + [False] * 3)
    pred = torch.tensor([1, 1, 1, 1, 0, 0, 0])
    assert marker_accuracy_gaps(pred, labels, present, ("healthy", "tumour")) == []
