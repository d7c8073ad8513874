import json

import numpy as np
import pytest
import torch

from cfx.cli import main

RUN = ("trajectory", "--no-figures")
"""The command without its figures where a test reads none: drawing them took most of a
small run's time (the figures are tested by the tests that read them, and in tests/test_viz.py)."""


def test_localised_method_writes_its_regions(tmp_path, capsys, caplog):
    out = tmp_path / "t"
    out.mkdir()
    (out / "strips.png").write_text("mine")  # a user's file of a figure's name
    argv = [*RUN, "--target", "healthy", "--method", "localised", "--n", "2"]
    argv += ["--inversion-steps", "0"]  # the encoder's latents: the regions are tested
    with caplog.at_level("WARNING"):
        assert main([*argv, "--steps", "3", "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        frames, masks = r["frames"], r["edit_masks"]
    assert frames.shape == (2, 4, 1, 64, 64) and masks.shape == (2, 1, 64, 64)
    # pixels outside a (binary part of the) region never move
    outside = masks[:, None] == 0
    change = np.abs(frames - frames[:, :1])
    assert float(change[np.broadcast_to(outside, change.shape)].max(initial=0.0)) < 1e-6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["method"] == "localised" and summary["flip_rate"] == 1.0
    # --no-figures: the arrays and the summary alone, said so; the user's strips.png is
    # neither replaced nor called replaced
    assert sorted(p.name for p in out.iterdir()) == ["result.npz", "strips.png", "summary.json"]
    assert f"wrote {out}/: result.npz, summary.json\n" in capsys.readouterr().err
    assert (out / "strips.png").read_text() == "mine"
    assert "holds files this run writes" not in caplog.text


def test_localise_needs_the_monotone_method(tmp_path, capsys):
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--localise"]
    assert main([*argv, "--n", "1", "--out", str(tmp_path / "t")]) == 2
    assert "`--localise` goes with --method monotone" in capsys.readouterr().err


def test_default_method_writes_every_output(tmp_path, capsys):
    out = tmp_path / "t"
    argv = ["trajectory", "--target", "tumour", "--n", "2", "--steps", "3", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        assert set(r.files) == {
            *("frames", "probs", "latents", "source", "target", "levels", "success"),
            *("in_target", "oracle_probs", "lambdas"),
        }
        frames, probs, source = r["frames"], r["probs"], r["source"]
        oracle_probs, success, target = r["oracle_probs"], r["success"], r["target"]
        assert np.allclose(r["levels"], [0, 1 / 3, 2 / 3, 1])
    assert frames.shape == (2, 4, 1, 64, 64) and probs.shape == (2, 4)
    assert source.shape == (2, 1, 64, 64) and oracle_probs.shape == (2, 4)
    assert target.tolist() == [1, 1] and success.dtype == bool
    assert (out / "strips.png").is_file() and (out / "probabilities.png").is_file()
    assert (out / "changes.png").is_file()
    assert sorted(p.name for p in out.glob("*.gif")) == ["sequence_000.gif", "sequence_001.gif"]
    summary = json.loads((out / "summary.json").read_text())
    setup = summary["setup"]
    assert setup["method"] == "monotone" and setup["target"] == 1 and setup["seed"] == 2
    assert setup["margin"] == 0.999  # the default towards tumour
    assert summary["n"] == 2 and -1.0 <= summary["cout"] <= 1.0
    # one row per image, agreeing with the arrays
    rows = summary["images"]
    assert len(rows) == 2
    for i, row in enumerate(rows):
        assert row["p_start"] == float(probs[i, 0]) and row["p_end"] == float(probs[i, -1])
        assert row["oracle_p_end"] == float(oracle_probs[i, -1])
        assert row["success"] == bool(success[i])
        past = np.nonzero(probs[i] > 0.5)[0]
        assert row["crossed_at"] == (int(past[0]) if past.size else None)
        assert row["lambda"] is None or row["lambda"] > 0  # NaN (warm start kept) -> null
        assert row["optimised"] == (row["lambda"] is not None)
        # the largest step's share of the pixel change, from the frames themselves
        step = np.abs(np.diff(frames[i].astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
        assert row["largest_step_share"] == pytest.approx(step.max() / step.sum(), rel=1e-5)
    shares = [row["largest_step_share"] for row in rows]
    assert summary["largest_step_share"] == pytest.approx(np.mean(shares), rel=1e-6)
    kept = [i for i, row in enumerate(rows) if not row["optimised"]]
    assert summary["optimised_share"] == pytest.approx(1 - len(kept) / 2)
    said = "Option 2's joint optimisation kept the warm start (Option 1's path"
    assert (said in capsys.readouterr().err) == bool(kept)  # identical frames were silent
    assert summary["localisation"] is None  # walked to tumour: no masks to measure against
    # the default inversion (100 steps) reconstructs brain slices at well over 20 dB
    assert summary["inversion_psnr_db"] > 20.0
    assert summary["perceptual_loss"] in ("lpips", "encoder")


def test_an_image_file_is_converted_to_the_generators_shape(tmp_path):
    from PIL import Image

    from cfx.cli.trajectory import builtin_sources
    from cfx.images import to_uint8

    x, _ = builtin_sources(1, 2, target=0)  # one tumour slice, 64 x 64
    png = tmp_path / "slice.png"
    Image.fromarray(to_uint8(x)[0, 0]).convert("RGB").resize((96, 96)).save(png)
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--input", str(png)]
    argv += ["--inversion-steps", "0"]  # the encoder's latents: the file's reading is tested
    assert main([*argv, "--steps", "3", "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        source = r["source"]
    assert source.shape == (1, 1, 64, 64)
    # back at 64 x 64 the picture is the slice it came from, up to resampling
    assert float(np.abs(source[0, 0] - x[0, 0].numpy()).mean()) < 0.05


def test_an_upper_case_npy_batch_is_read(tmp_path):
    from cfx.cli.trajectory import builtin_sources

    x, _ = builtin_sources(1, 2, target=0)
    batch = tmp_path / "BATCH.NPY"
    np.save(tmp_path / "batch.npy", x.numpy())
    (tmp_path / "batch.npy").rename(batch)
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--input", str(batch)]
    argv += ["--inversion-steps", "0"]
    assert main([*argv, "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        assert np.array_equal(r["source"], x.numpy())


def test_input_errors_name_the_option(tmp_path, capsys):
    bad = tmp_path / "wrong.npy"
    np.save(bad, np.zeros((1, 1, 32, 32), dtype=np.float32))
    base = [*RUN, "--target", "healthy", "--out", str(tmp_path / "t")]
    assert main([*base, "--input", str(bad)]) == 2
    assert "`--input` must hold images shaped (N, 1, 64, 64)" in capsys.readouterr().err
    assert main([*base, "--input", str(tmp_path / "scan.gif")]) == 2
    assert "`--input` must be an image file (.png" in capsys.readouterr().err
    np.save(bad, np.full((1, 1, 64, 64), 3.0, dtype=np.float32))
    assert main([*base, "--input", str(bad)]) == 2
    assert "`--input` must have values in [-1, 1]" in capsys.readouterr().err
    assert main([*base, "--input", str(bad), "--n", "4", "--seed", "1"]) == 2
    assert "`--n` and `--seed` choose built-in slices; drop them" in capsys.readouterr().err
    assert main([*base, "--input", str(bad), "--seed", "3"]) == 2  # named --n, not given
    assert "`--seed` chooses built-in slices; drop it with --input" in capsys.readouterr().err


def test_a_generator_of_other_images_needs_input(tmp_path, capsys):
    """Without --input the built-in slices were fed to an RGB generator, and the error named
    `x`, an argument the user never gave."""
    from cfx.models.brain_gan import BrainGAN, BrainGANConfig

    BrainGAN(BrainGANConfig(channels=3, latent_dim=8, width=4)).save_pretrained(tmp_path / "rgb")
    argv = [*RUN, "--target", "healthy", "--generator", str(tmp_path / "rgb")]
    assert main([*argv, "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "`--input` is needed: --generator" in err
    assert "draws images shaped (3, 64, 64) and the built-in brain slices" in err


def test_load_input_converts_colour_and_16_bit_files(tmp_path):
    from PIL import Image

    from cfx.cli.trajectory import load_input

    rgb = np.zeros((6, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 51  # pure red with a little blue: (1, 0, 0.2) in [0, 1]
    Image.fromarray(rgb).save(tmp_path / "c.png")
    x = load_input(tmp_path / "c.png", (3, 6, 4))
    assert x.shape == (1, 3, 6, 4)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([1.0, -1.0, -0.6]))
    grey16 = np.full((6, 4), 65535 // 4, dtype=np.uint16)  # a quarter of full scale
    Image.fromarray(grey16).save(tmp_path / "g.png")
    x = load_input(tmp_path / "g.png", (1, 3, 2))  # also halved in size
    assert x.shape == (1, 1, 3, 2)
    assert torch.allclose(x, torch.full_like(x, -0.5), atol=1e-3)


def test_sources_already_in_the_target_class_are_flagged(tmp_path, caplog):
    from cfx.cli.trajectory import builtin_sources

    healthy, _ = builtin_sources(2, 2, target=1)  # two healthy slices, walked to healthy
    batch = tmp_path / "healthy.npy"
    np.save(batch, healthy.numpy())
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--input", str(batch)]
    assert main([*argv, "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    assert "2 of 2 paths start in the target class" in caplog.text and "rows [0, 1]" in caplog.text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["already_in_target"] == 2
    assert [row["crossed_at"] for row in summary["images"]] == [0, 0]
    assert summary["setup"]["input"] == str(batch.resolve()) and summary["setup"]["seed"] is None


def test_checks_that_need_no_model_fail_first(tmp_path, capsys, monkeypatch):
    import cfx.zoo

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(cfx.zoo, "load_generator", no_loading)
    monkeypatch.setattr(cfx.zoo, "load_classifier", no_loading)
    taken = tmp_path / "taken.txt"
    taken.write_text("x")
    base = [*RUN, "--target", "healthy", "--n", "1"]
    cases = [
        (["--out", str(taken)], "`--out` must be a folder, got an existing file"),
        (["--steps", "0"], "`--steps` must be"),
        (["--margin", "1"], "`--margin` must be"),
        (["--classifier", "brain-gan"], "'brain-gan' is a generator (pass it as --generator)"),
        (["--classifier", "brain-oracle-seg"], "'brain-oracle-seg' is a segmenter"),
        (
            ["--generator", "brain-cnn"],
            "`--generator`: 'brain-cnn' is a classifier (pass it as --classifier)",
        ),
        (["--target", "2"], "`--target` must be healthy (0) or tumour (1) for the built-in"),
        (["--inversion-steps", "-1"], "`--inversion-steps` must be"),
        (["--inversion-classifier-weight", "-0.1"], "`--inversion-classifier-weight` must be"),
        (
            ["--inversion-classifier-weight", "0.01", "--inversion-steps", "0"],
            "it needs `--inversion-steps` > 0, got 0",
        ),
        (["--batch-size", "0"], "`--batch-size` must be"),
        (["--iterations", "-2"], "`--iterations` must be"),
        (["--method", "gradient", "--iterations", "4"], "`--iterations` goes with --method"),
        (["--background", "source"], "`--background` applies to localised paths"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert main([*base, "--classifier", "resnet50"]) == 2
    err = capsys.readouterr().err
    assert "unknown zoo classifier 'resnet50'" in err and "brain-gan" not in err
    missing = [*RUN, "--target", "healthy", "--input", str(tmp_path / "scan.png")]
    assert main(missing) == 2
    assert "`--input` not found" in capsys.readouterr().err


def test_input_files_that_are_no_image_or_look_misscaled(tmp_path, capsys, caplog):
    from PIL import Image

    from cfx.cli.trajectory import load_input

    fake = tmp_path / "notes.png"
    fake.write_text("not an image")
    base = [*RUN, "--target", "healthy", "--out", str(tmp_path / "t")]
    assert main([*base, "--input", str(fake)]) == 2
    assert "`--input` is not a readable image" in capsys.readouterr().err
    twelve_bit = np.zeros((8, 8), dtype=np.uint16)
    twelve_bit[2:6, 2:6] = 4000
    Image.fromarray(twelve_bit).save(tmp_path / "scan.png")
    load_input(tmp_path / "scan.png", (1, 8, 8))
    assert "scan.png: 16-bit, brightest pixel 4000 of 65535" in caplog.text
    caplog.clear()
    Image.fromarray(np.zeros((8, 16), dtype=np.uint8)).save(tmp_path / "wide.png")
    assert load_input(tmp_path / "wide.png", (1, 8, 8)).shape == (1, 1, 8, 8)
    assert "stretched" in caplog.text
    caplog.clear()
    pages = [Image.fromarray(np.full((8, 8), v, dtype=np.uint8)) for v in (0, 255)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    x = load_input(tmp_path / "stack.tif", (1, 8, 8))
    assert "stack.tif: 2 page(s)" in caplog.text and float(x.max()) == -1.0  # the first page
    unit = np.full((8, 8), 0.75, dtype=np.float32)
    Image.fromarray(unit, mode="F").save(tmp_path / "unit.tif")
    x = load_input(tmp_path / "unit.tif", (1, 8, 8))
    assert torch.allclose(x, torch.full_like(x, 0.5))  # 0.75 in [0, 1] is 0.5 in [-1, 1]
    Image.fromarray(unit * 1000, mode="F").save(tmp_path / "raw.tif")
    with pytest.raises(ValueError, match=r"floating-point image with values 750\.\.750"):
        load_input(tmp_path / "raw.tif", (1, 8, 8))


def test_npy_inputs_may_be_one_image_or_lack_the_channel_axis(tmp_path):
    from cfx.cli.trajectory import load_input

    grey = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    np.save(tmp_path / "slice.npy", grey)  # one (H, W) slice
    x = load_input(tmp_path / "slice.npy", (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and np.array_equal(x[0, 0].numpy(), grey)
    batch = np.stack([grey, -grey, grey])  # (N, H, W): three grey images
    np.save(tmp_path / "grey.npy", batch)
    x = load_input(tmp_path / "grey.npy", (1, 8, 8))
    assert x.shape == (3, 1, 8, 8) and np.array_equal(x[:, 0].numpy(), batch)
    # for a colour generator the same array is one RGB image, not three grey ones
    x = load_input(tmp_path / "grey.npy", (3, 8, 8))
    assert x.shape == (1, 3, 8, 8) and np.array_equal(x[0].numpy(), batch)
    np.save(tmp_path / "odd.npy", np.zeros((2, 2, 1, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shaped \(N, 1, 8, 8\), got \(2, 2, 1, 8, 8\)"):
        load_input(tmp_path / "odd.npy", (1, 8, 8))


def test_files_of_the_outputs_names_in_a_foreign_folder_are_said(tmp_path, caplog):
    """--out at a folder of the user's own with a strips.png and a sequence_000.gif: both were
    replaced without a word (a user audit); files the run does not write are not named."""
    out = tmp_path / "mine"
    out.mkdir()
    for name in ("strips.png", "sequence_000.gif", "sequence_001.gif", "notes.txt"):
        (out / name).write_text("old")
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--inversion-steps", "0"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    assert (
        f"{out} holds files this run writes (strips.png, sequence_000.gif), which no cfx run "
        "wrote: they are replaced" in caplog.text
    )
    assert (out / "sequence_001.gif").read_text() == "old"  # one image: not this run's


def test_a_rerun_into_the_same_folder_leaves_no_stale_outputs(tmp_path):
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress", "--out"]
    earlier, foreign = tmp_path / "earlier", tmp_path / "foreign"
    for out in (earlier, foreign):
        out.mkdir()
        for name in ("sequence_007.gif", "strips_02.png", "changes_02.png", "sequence_7.gif"):
            (out / name).write_text("old")
        (out / "notes.txt").write_text("old")
        (out / "sequence_009.gif").mkdir()  # a folder, whatever its name, is never deleted
    earlier_summary = {"setup": {}, "images": [], "flip_rate": 1.0}  # as cfx writes them
    (earlier / "summary.json").write_text(json.dumps(earlier_summary))
    for out in (earlier, foreign):
        assert main([*argv, str(out)]) == 0
    # the earlier run's numbered figures beyond this run's one image and one page are gone
    assert not (earlier / "sequence_007.gif").exists()
    assert not (earlier / "strips_02.png").exists()
    assert not (earlier / "changes_02.png").exists()
    left = {"sequence_000.gif", "sequence_7.gif", "sequence_009.gif", "notes.txt", "changes.png"}
    assert {p.name for p in earlier.iterdir()} >= left
    # a folder no cfx run wrote before keeps every file it had
    kept = ("sequence_007.gif", "strips_02.png", "changes_02.png", "sequence_7.gif", "notes.txt")
    for name in kept:
        assert (foreign / name).read_text() == "old"


def test_a_finished_run_replaced_by_one_with_other_settings_is_said(tmp_path, caplog):
    """A finished run's outputs were overwritten without a word by a rerun with other
    arguments; the same command again computed the whole run again without a word, where
    "a rerun resumes and says so" led a user to expect nothing to do."""
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--inversion-steps", "0", "--no-progress", "--out", str(tmp_path / "run")]
    assert main([*argv, "--steps", "2"]) == 0
    with caplog.at_level("WARNING"):
        assert main([*argv, "--steps", "2"]) == 0
    assert "holds the outputs of a finished run with these settings: it is computed again" in (
        caplog.text
    )
    assert "other settings" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*argv, "--steps", "3"]) == 0
    assert "holds the outputs of a finished run with other settings (steps: 2 before, 3 now)" in (
        caplog.text
    )
    caplog.clear()  # another --n draws other images: it said "with these settings"
    more = [a if a != "1" else "2" for a in argv]
    with caplog.at_level("WARNING"):
        assert main([*more, "--steps", "3"]) == 0
    assert "with other settings (n: 1 before, 2 now)" in caplog.text


def test_a_folder_of_images_is_one_batch_in_name_order(tmp_path):
    from PIL import Image

    from cfx.cli.trajectory import load_input

    folder = tmp_path / "scans"
    folder.mkdir()
    for name, value in (("b.png", 255), ("a.png", 0), ("c.bmp", 128)):
        Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")  # skipped
    (folder / "._a.png").write_text("macOS metadata")  # hidden: skipped
    x = load_input(folder, (1, 8, 8))
    assert x.shape == (3, 1, 8, 8)
    assert x[:, 0, 0, 0].tolist() == pytest.approx(
        [-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6
    )  # a, b, c
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"`--input` folder .* holds no image files"):
        load_input(empty, (1, 8, 8))


def test_the_summary_names_the_files_of_an_input_folder(tmp_path):
    from PIL import Image

    from cfx.cli.trajectory import builtin_sources
    from cfx.images import to_uint8

    x, _ = builtin_sources(2, 2, target=0)  # two tumour slices
    folder = tmp_path / "scans"
    folder.mkdir()
    for i, name in enumerate(("slice_2.png", "slice_1.png")):
        Image.fromarray(to_uint8(x)[i, 0]).save(folder / name)
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--input", str(folder)]
    argv += ["--inversion-steps", "0"]
    assert main([*argv, "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["input_files"] == ["slice_1.png", "slice_2.png"]
    with np.load(out / "result.npz") as r:  # slice_1.png (the second slice) comes first
        assert float(np.abs(r["source"][0, 0] - x[1, 0].numpy()).max()) < 0.01


def test_background_and_inversion_steps_reach_the_explainer(tmp_path):
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "localised", "--n", "1"]
    argv += ["--background", "source", "--inversion-steps", "0", "--steps", "2"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        frames, masks, source = r["frames"], r["edit_masks"], r["source"]
    # outside the region the frames show the input itself, not its reconstruction
    outside = np.broadcast_to(masks[:, None] == 0, frames.shape)
    assert outside.any()
    shown = np.broadcast_to(source[:, None], frames.shape)
    assert float(np.abs(frames - shown)[outside].max()) < 1e-6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["background"] == "source"
    assert summary["inversion_steps"] == 0  # what the inversion ran, read off the result
    assert summary["setup"]["iterations"] is None


def test_the_inversion_classifier_weight_reaches_the_inversion(tmp_path, monkeypatch):
    import cfx.trajectory.start as start_module

    seen = []
    real = start_module.invert

    def spy(generator, x, **kw):
        seen.append((kw["classifier"] is not None, kw["classifier_weight"]))
        return real(generator, x, **kw)

    monkeypatch.setattr(start_module, "invert", spy)
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--inversion-steps", "2", "--steps", "2", "--no-progress", "--oracle", "none"]
    assert main([*argv, "--inversion-classifier-weight", "0.05", "--out", str(out)]) == 0
    assert seen == [(True, 0.05)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["inversion_classifier_weight"] == 0.05
    assert main([*argv, "--out", str(tmp_path / "u")]) == 0  # off by default
    assert seen[1] == (False, 0.0)


def test_iterations_reach_option_2(tmp_path):
    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--n", "2", "--iterations", "0"]
    argv += ["--inversion-steps", "0"]
    assert main([*argv, "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["iterations"] == 0
    # no iteration ran, so every image keeps its warm start and no lambda shaped it
    assert [row["lambda"] for row in summary["images"]] == [None, None]


def test_out_may_not_be_the_input_folder(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(tmp_path / "a.png")
    argv = [*RUN, "--target", "healthy", "--input", str(tmp_path), "--out"]
    assert main([*argv, str(tmp_path)]) == 2
    assert "`--out` must not be the `--input` folder" in capsys.readouterr().err


def test_a_model_folder_explains_like_the_zoo_model_it_holds(tmp_path, capsys):
    from cfx.zoo import load_classifier, load_generator

    load_classifier("brain-cnn").save_pretrained(tmp_path / "run" / "model")  # a `cfx train` run
    base = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    base += ["--steps", "2", "--inversion-steps", "0", "--oracle", "none", "--no-progress"]
    outs = {}
    for name in ("brain-cnn", str(tmp_path / "run")):
        out = tmp_path / f"t{len(outs)}"
        assert main([*base, "--classifier", name, "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        # a run folder as the model folder in it: `run` and `run/model` are one run's model
        want = name if name == "brain-cnn" else str(tmp_path / "run" / "model")
        assert summary["setup"]["classifier"] == want
        with np.load(out / "result.npz") as r:
            outs[name] = r["frames"], r["probs"]
    (zoo_frames, zoo_probs), (dir_frames, dir_probs) = outs.values()
    assert np.array_equal(zoo_frames, dir_frames) and np.array_equal(zoo_probs, dir_probs)

    gan = load_generator("brain-gan").save_pretrained(tmp_path / "gan")
    assert main([*base, "--classifier", str(gan), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert f"`--classifier`: '{gan}' is a generator (pass it as --generator)" in err
    (tmp_path / "empty").mkdir()
    assert main([*base, "--oracle", str(tmp_path / "empty"), "--out", str(tmp_path / "e")]) == 2
    assert "`--oracle`: `" in (err := capsys.readouterr().err)
    assert "is missing ['config.json', 'model.safetensors']; nor a model/ folder" in err


def test_a_rerun_with_other_arguments_keeps_the_finished_batches(tmp_path, monkeypatch, capsys):
    """The README promises a rerun with other settings is refused, naming what changed; the
    command deleted the finished batches instead ("starting over"): one typo in a rerun
    of a long job lost its work."""
    import cfx.trajectory

    out = tmp_path / "t"
    argv = [*RUN, "--target", "Tumor", "--method", "gradient", "--n", "3"]
    argv += ["--inversion-steps", "0", "--oracle", "none", "--no-progress"]
    argv += ["--batch-size", "2", "--out", str(out)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(cfx.trajectory, "save_result", interrupted)
        assert main([*argv, "--steps", "2"]) == 130
    capsys.readouterr()
    assert main([*argv, "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "holds 2 finished chunks of a run with other inputs or settings" in err
    assert err.count("steps: 2 before, 3 now") == 1
    assert len(list((out / ".unfinished").glob("part_*.safetensors"))) == 2  # kept
    assert main([*argv, "--steps", "2"]) == 0  # the earlier arguments resume it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["target_name"] == "tumour"  # one spelling, not "Tumor"


def test_an_input_spelt_another_way_resumes_its_run(tmp_path, monkeypatch, capsys, caplog):
    """The run's key held --input and model folders as typed: the same file from another
    folder (or as ./x.npy, or clf/ for ./clf) was refused as a run with other arguments, its
    finished batches unusable."""
    import cfx.trajectory

    batch = tmp_path / "x.npy"
    np.save(batch, np.zeros((3, 1, 64, 64), dtype=np.float32))
    out = tmp_path / "t"
    argv = [*RUN, "--target", "tumour", "--method", "gradient", "--steps", "2"]
    argv += ["--inversion-steps", "0", "--oracle", "none", "--no-progress", "--batch-size", "2"]
    argv += ["--out", str(out)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from cfx.zoo import load_classifier

    load_classifier("brain-cnn").save_pretrained(tmp_path / "clf")
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(cfx.trajectory, "save_result", interrupted)
        assert main([*argv, "--input", "x.npy", "--classifier", "./clf"]) == 130
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    capsys.readouterr()
    assert main([*argv, "--input", "../x.npy", "--classifier", "../clf/"]) == 0
    assert "resuming: 2 of 2 batches were finished" in caplog.text
    setup = json.loads((out / "summary.json").read_text())["setup"]
    assert setup["input"] == str(batch) and setup["classifier"] == str(tmp_path / "clf")
    assert setup["generator"] == "brain-gan"  # a zoo name as given


def test_an_interrupted_run_resumes_from_its_finished_batches(
    tmp_path, monkeypatch, capsys, caplog
):
    import cfx.trajectory
    from cfx.trajectory import GradientAscent

    out = tmp_path / "t"
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "3"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--oracle", "none", "--no-progress"]
    argv += ["--batch-size", "2", "--out", str(out)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # stopped after the work, before any output is written
        m.setattr(cfx.trajectory, "save_result", interrupted)
        assert main(argv) == 130  # Ctrl-C: one line and the shell's code, no traceback
    assert capsys.readouterr().err.strip() == "cfx trajectory: interrupted"
    assert "rerun the same command to resume" in caplog.text
    parts = sorted(p.name for p in (out / ".unfinished").glob("part_*.safetensors"))
    assert parts == ["part_00000.safetensors", "part_00001.safetensors"]
    assert not (out / "result.npz").exists()
    first = GradientAscent.explain

    def no_work(self, *args, **kwargs):
        raise AssertionError("a finished batch was computed again")

    with monkeypatch.context() as m:
        m.setattr(GradientAscent, "explain", no_work)
        assert main(argv) == 0
    assert not (out / ".unfinished").exists()  # the outputs are written: nothing to resume
    caplog.clear()  # stopped before any batch finished: said so, no empty folder left
    early = tmp_path / "early"
    with monkeypatch.context() as m:
        m.setattr(GradientAscent, "explain", interrupted)
        assert main([*argv[:-1], str(early)]) == 130
    assert "interrupted before the first of 2 batches finished: nothing was kept" in caplog.text
    assert "0 finished batches" not in caplog.text
    assert not (early / ".unfinished").exists()
    with np.load(out / "result.npz") as r:
        resumed = r["frames"]
    assert GradientAscent.explain is first  # the context restored it
    fresh = tmp_path / "f"
    assert main([*argv[:-1], str(fresh)]) == 0
    with np.load(fresh / "result.npz") as r:
        assert np.array_equal(r["frames"], resumed)
    assert json.loads((fresh / "summary.json").read_text())["setup"]["n"] == 3


def test_a_zoo_name_shadowing_a_local_folder_is_warned_about_once(tmp_path, monkeypatch, caplog):
    import logging

    (tmp_path / "brain-cnn").mkdir()  # e.g. a training run named after the zoo model
    monkeypatch.chdir(tmp_path)
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--oracle", "none", "--no-progress"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--out", str(tmp_path / "t")]) == 0
    assert caplog.text.count("names a zoo model and a local path") == 1
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert set(summary["setup"]["weights_sha256"]) == {"generator", "classifier"}


def test_a_class_of_your_own_classifier_with_your_images(tmp_path, capsys):
    import json

    from cfx.cli.trajectory import builtin_sources
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    model = BrainCNN(BrainCNNConfig(num_classes=3, width=4))
    model.save_pretrained(tmp_path / "three")
    x, _ = builtin_sources(1, 2, target=0)
    np.save(tmp_path / "x.npy", x.numpy())
    argv = [*RUN, "--classifier", str(tmp_path / "three"), "--oracle", "none"]
    argv += ["--input", str(tmp_path / "x.npy"), "--method", "gradient", "--steps", "2"]
    argv += ["--inversion-steps", "0", "--no-progress"]
    assert main([*argv, "--target", "2", "--out", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["setup"]["target"] == 2
    with np.load(tmp_path / "t" / "result.npz") as r:  # the probabilities are class 2's
        frames, probs = torch.from_numpy(r["frames"][0]), r["probs"][0]
    with torch.no_grad():
        own = torch.softmax(model.eval()(frames), 1)[:, 2].numpy()
    np.testing.assert_allclose(probs, own, atol=1e-5)
    assert main([*argv, "--target", "3", "--out", str(tmp_path / "u")]) == 2
    assert (
        "`--target` must be a class of the classifier, 0..2 (or healthy / tumour for 0 / 1), "
        "got '3'" in capsys.readouterr().err
    )


def test_models_trained_on_another_size_than_the_frames_are_named(tmp_path, caplog):
    """brain-cnn answers 98.6 % of test slices right at 64x64 and 84 % at 32x32 or 128x128:
    a model whose config records another training size than the generator's frames is
    warned about (by the explainer, for Python users too); the zoo's (64x64) and unrecorded
    sizes are not."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig, BrainOracle, BrainOracleConfig

    BrainCNN(BrainCNNConfig(width=4, image_size=(32, 32))).save_pretrained(tmp_path / "c32")
    BrainOracle(BrainOracleConfig(width=4, image_size=(64, 128))).save_pretrained(tmp_path / "o")
    BrainCNN(BrainCNNConfig(width=4)).save_pretrained(tmp_path / "unrecorded")
    argv = [*RUN, "--target", "healthy", "--n", "1", "--method", "gradient"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress"]
    with caplog.at_level("WARNING", logger="cfx.trajectory.start"):
        assert (
            main(
                [
                    *argv,
                    "--classifier",
                    str(tmp_path / "c32"),
                    "--oracle",
                    str(tmp_path / "o"),
                    "--out",
                    str(tmp_path / "a"),
                ]
            )
            == 0
        )
    sizes = [
        r.getMessage()
        for r in caplog.records
        if r.name == "cfx.trajectory.start" and "was trained on" in r.getMessage()
    ]
    assert sizes == [
        "the classifier was trained on 32x32 images (width x height) and is given 64x64 "
        "images (the generator's); a classifier's answers change with the scale it sees: "
        "train it on 64x64 images, the size the generator makes",
        "the oracle was trained on 128x64 images (width x height) and is given 64x64 images "
        "(the generator's); a classifier's answers change with the scale it sees: train it "
        "on 64x64 images, the size the generator makes",
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.trajectory.start"):
        unrecorded = ["--classifier", str(tmp_path / "unrecorded")]
        assert main([*argv, *unrecorded, "--out", str(tmp_path / "b")]) == 0  # brain-oracle
    assert not [
        r
        for r in caplog.records
        if r.name == "cfx.trajectory.start" and "was trained on" in r.getMessage()
    ]


def test_your_images_with_the_default_models_and_inputs_already_in_the_target(tmp_path, caplog):
    """With --input, brain-gan and brain-cnn were used without a word (brain-gan redraws any
    image as a brain slice), and an input already in the target class made a 'successful'
    path that nothing flagged (only frame 0, its reconstruction, was looked at)."""
    from PIL import Image

    from cfx.cli.trajectory import builtin_sources
    from cfx.images import to_uint8

    tumour, _ = builtin_sources(1, 2, target=0)
    healthy, _ = builtin_sources(1, 2, target=1)
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(to_uint8(tumour)[0, 0]).save(folder / "t.png")
    Image.fromarray(to_uint8(healthy)[0, 0]).save(folder / "h.png")
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--input", str(folder)]
    argv += ["--steps", "2", "--inversion-steps", "0", "--oracle", "none", "--no-progress"]
    with caplog.at_level("WARNING", logger="cfx.cli.trajectory"):
        assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert (
        "with --input, --generator is brain-gan and --classifier is brain-cnn (the defaults), "
        "trained on the built-in brain slices: brain-gan redraws any image as a brain slice and "
        "brain-cnn judges any image as one" in caplog.text
    )
    # the healthy input's reconstruction is healthy too: the start notice names it, once
    assert "1 of 2 paths start in the target class" in caplog.text
    assert "inputs are already in the target class" not in caplog.text
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert [r["file"] for r in summary["images"]] == ["h.png", "t.png"]
    assert [r["input_in_target"] for r in summary["images"]] == [True, False]
    assert summary["input_in_target"] == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.cli.trajectory"):  # named: no word about it
        named = ["--generator", "brain-gan", "--classifier", "brain-cnn"]
        assert main([*argv, *named, "--out", str(tmp_path / "b")]) == 0
    assert "the default" not in caplog.text


def test_inputs_in_the_target_whose_reconstruction_is_not_are_named(caplog):
    """A class-1 input whose reconstruction lost its square walked back into class 1 as a
    'successful' path; rows whose frame 0 is in the target (crossed_at 0) were named by the
    start notice already, by row only: their files are named here (the README said so, a
    user audit found rows only)."""
    from cfx.cli.trajectory import inputs_in_target_notice

    rows = [
        {"input_in_target": True, "crossed_at": 3},  # named
        {"input_in_target": True, "crossed_at": 0},  # the start notice's
        {"input_in_target": False, "crossed_at": 2},
        {"input_in_target": None, "crossed_at": 2},  # no classifier verdict
        {"input_in_target": True, "crossed_at": None},  # never reached it: named
    ]
    with caplog.at_level("WARNING", logger="cfx.cli.trajectory"):
        inputs_in_target_notice(rows, ["a.png", "b.png", "c.png", "d.png", "e.png"])
    assert caplog.messages == [
        "the inputs already in the target class whose paths start there (rows [1]) are b.png",
        "2 of 5 inputs are already in the target class for the classifier (rows [0, 4]: a.png, "
        "e.png), while their reconstructions are not: their paths walk back into the class the "
        "input is in, not across the boundary (flip_rate counts those that end in it; "
        "crossed_rate counts none of them); "
        "give only inputs outside the target class",
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.cli.trajectory"):
        inputs_in_target_notice(rows, None)  # built-in slices: the rows are all there is
    assert len(caplog.messages) == 1 and "rows [0, 4])" in caplog.messages[0]


def test_the_tumour_margin_is_brain_cnns_not_any_class_1(tmp_path):
    """0.999 is brain-cnn's confidence on real tumour slices; another classifier's class 1
    got it too (slower paths pushed to exploded frames)."""
    from cfx.zoo import load_classifier

    load_classifier("brain-cnn").save_pretrained(tmp_path / "mine")
    argv = [*RUN, "--target", "1", "--method", "gradient", "--n", "1", "--steps", "2"]
    argv += ["--inversion-steps", "0", "--oracle", "none", "--no-progress"]
    margins = {}
    for name in ("brain-cnn", str(tmp_path / "mine")):
        out = tmp_path / f"t{len(margins)}"
        assert main([*argv, "--classifier", name, "--out", str(out)]) == 0
        margins[name] = json.loads((out / "summary.json").read_text())["setup"]["margin"]
    assert list(margins.values()) == [0.999, 0.99]


def test_the_default_oracle_is_brain_oracle_only_with_the_zoos_generator(tmp_path, caplog, capsys):
    """brain-oracle was the default with any generator: with an RGB VAE every first run
    loaded the models and then failed, the oracle taking one channel."""
    from cfx.models.brain_gan import BrainGAN, BrainGANConfig

    BrainGAN(BrainGANConfig(latent_dim=8, width=4)).save_pretrained(tmp_path / "gan")
    argv = [*RUN, "--target", "healthy", "--n", "1", "--method", "gradient"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress"]
    mine = ["--generator", str(tmp_path / "gan")]
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    with caplog.at_level("WARNING"):  # a refused run: the error alone (a user review)
        bad = [*argv[: argv.index("--target")], "--target", "7", *argv[argv.index("--n") + 2 :]]
        bad += ["--input", str(tmp_path / "x.npy")]  # past the built-in slices' own check
        assert main([*bad, *mine, "--out", str(tmp_path / "a")]) == 2
        assert main([*argv, *mine, "--image-size", "64", "--out", str(tmp_path / "a")]) == 2
    assert "`--target` must be a class of the classifier, 0..1" in caplog.text + str(
        capsys.readouterr().err
    )
    assert "no oracle" not in caplog.text
    with caplog.at_level("WARNING"):
        assert main([*argv, *mine, "--out", str(tmp_path / "a")]) == 0
    assert (
        "no oracle: --oracle defaults to brain-oracle only with the zoo's generator" in caplog.text
    )
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["setup"]["oracle"] is None and summary["oracle_agreement"] is None
    assert summary["oracle_agreement_along_path"] is None
    caplog.clear()
    with caplog.at_level("WARNING"):  # named: used, without a word
        assert main([*argv, *mine, "--oracle", "brain-oracle", "--out", str(tmp_path / "b")]) == 0
    assert "oracle" not in caplog.text
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["setup"]["oracle"] == "brain-oracle" and summary["oracle_agreement"] is not None
    assert 0 <= summary["oracle_agreement_along_path"] <= 1
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "c")]) == 0  # the zoo's own generator
    assert "no oracle" not in caplog.text
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["setup"]["oracle"] == "brain-oracle"


def test_the_default_oracle_and_a_classifier_of_your_own(tmp_path, caplog):
    """With the zoo's generator, brain-oracle was the default for any --classifier: a model of
    three classes failed after loading ("`oracle` returns 2 class logits"), and one of two
    classes got an agreement figure with no word that it means healthy / tumour."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    BrainCNN(BrainCNNConfig(width=4, num_classes=3)).save_pretrained(tmp_path / "three")
    BrainCNN(BrainCNNConfig(width=4)).save_pretrained(tmp_path / "two")
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    argv = [*RUN, "--target", "2", "--input", str(tmp_path / "x.npy"), "--method"]
    argv += ["gradient"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress"]
    with caplog.at_level("WARNING"):
        assert (
            main([*argv, "--classifier", str(tmp_path / "three"), "--out", str(tmp_path / "a")])
            == 0
        )
    assert "no oracle: --oracle defaults to brain-oracle, which judges healthy (0)" in caplog.text
    assert f"--classifier {tmp_path / 'three'} scores 3 classes" in caplog.text
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["setup"]["oracle"] is None and "oracle" not in summary["setup"]["weights_sha256"]
    caplog.clear()
    argv[3] = "1"
    with caplog.at_level("WARNING"):
        assert (
            main([*argv, "--classifier", str(tmp_path / "two"), "--out", str(tmp_path / "b")]) == 0
        )
    assert "its agreement says something about --classifier" in caplog.text
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["setup"]["oracle"] == "brain-oracle"
    caplog.clear()
    argv[3] = "tumour"  # a brain name for another model's class: said, as summary.json says 1
    with caplog.at_level("WARNING"):
        assert (
            main([*argv, "--classifier", str(tmp_path / "two"), "--out", str(tmp_path / "c")]) == 0
        )
    assert "`--target tumour` is read as class 1 of --classifier" in caplog.text
    # a model trained on the built-in slices (its run's data flags say so) or a zoo model
    # given by its folder has brain-oracle's classes: no word (the README's own example
    # warned on every run)
    from cfx.zoo import load_classifier

    BrainCNN(BrainCNNConfig(width=4)).save_pretrained(tmp_path / "run" / "model")
    (tmp_path / "run" / "data_flags.json").write_text(json.dumps({"--data": "brain"}))
    load_classifier("brain-cnn").save_pretrained(tmp_path / "copy")
    for i, folder in enumerate((tmp_path / "run", tmp_path / "copy")):
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert main([*argv, "--classifier", str(folder), "--out", str(tmp_path / f"d{i}")]) == 0
        assert "brain-oracle" not in caplog.text and "--target tumour" not in caplog.text


def test_paths_that_miss_the_target_are_said_and_the_outputs_named(tmp_path, caplog, capsys):
    """A classifier that never flipped left only `"flip_rate": 0.0` in the JSON, and nothing
    said where the files went."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    deaf = BrainCNN(BrainCNNConfig())  # blind to its input: always healthy
    with torch.no_grad():
        for param in deaf.parameters():
            param.zero_()
        last = [m for m in deaf.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.copy_(torch.tensor([5.0, -5.0]))
    deaf.save_pretrained(tmp_path / "deaf")
    out = tmp_path / "t"
    argv = [*RUN, "--classifier", str(tmp_path / "deaf"), "--target", "tumour"]
    argv += ["--method", "gradient", "--n", "2", "--steps", "2", "--inversion-steps", "0"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--oracle", "none", "--no-progress", "--out", str(out)]) == 0
    assert "2 of 2 paths end outside the target class (rows [0, 1])" in caplog.text
    captured = capsys.readouterr()
    assert json.loads(captured.out)["flip_rate"] == 0.0  # stdout is still the JSON alone
    assert f"wrote {out}/" in captured.err


def test_size_notice_compares_height_with_height_and_width_with_width(caplog):
    """A model trained on 48 high x 32 wide images is given images of that size (silent) or
    turned a quarter, 32 high x 48 wide (warned, sizes as width x height)."""
    from types import SimpleNamespace

    from cfx.cli.models import size_notice

    for recorded in ((48, 32), [48, 32]):  # another library's config may keep a list
        model = SimpleNamespace(config=SimpleNamespace(image_size=recorded))
        with caplog.at_level("WARNING", logger="cfx.cli.models"):
            size_notice(model, (5, 1, 48, 32), "--classifier", "--input images")
        assert caplog.records == [], recorded
        with caplog.at_level("WARNING", logger="cfx.cli.models"):
            size_notice(model, (5, 1, 32, 48), "--classifier", "--input images")
        assert [r.getMessage() for r in caplog.records] == [
            "`--classifier` was trained on 32x48 images (width x height) and is given 48x32 "
            "--input images; a classifier's answers change with the scale it sees: resize the "
            "images to 32x48 or train a model on this size"
        ]
        caplog.clear()


def test_the_explained_classifier_as_the_oracle_is_named(tmp_path, caplog):
    """`--oracle` naming the same model as `--classifier` (two copies, equal weights) made
    oracle agreement 1.0 by construction, without a word."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    BrainCNN(BrainCNNConfig(width=4)).save_pretrained(tmp_path / "c")
    argv = [*RUN, "--target", "healthy", "--n", "1", "--method", "gradient"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress"]
    argv += ["--classifier", str(tmp_path / "c"), "--out", str(tmp_path / "a")]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--oracle", str(tmp_path / "c")]) == 0
    assert caplog.text.count("is the classifier being explained") == 1
    assert f"--oracle is the classifier being explained (--classifier {tmp_path / 'c'})" in (
        caplog.text
    )


def test_a_second_run_into_the_same_out_at_once_is_refused(tmp_path, capsys):
    """Two runs in one --out shared its resume folder, overwrote each other's batches, and
    the second failed at the end with a bare Errno 2 (session 45 audit)."""
    import fcntl
    import os

    out = tmp_path / "t"
    out.mkdir()
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress", "--out", str(out)]
    fd = os.open(out, os.O_RDONLY)  # another run holding the folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(argv) == 2
        assert "is being written by another cfx trajectory run right now" in (
            capsys.readouterr().err
        )
        assert list(out.iterdir()) == []  # nothing of its own written
    finally:
        os.close(fd)
    assert main(argv) == 0  # released: runs


def test_outputs_of_a_run_interrupted_while_writing_them_are_not_called_foreign(tmp_path, caplog):
    """summary.json comes last: a run interrupted among its figures leaves outputs without
    one beside its resume folder, which its rerun rewrites without calling them files 'no
    cfx run wrote'."""
    out = tmp_path / "t"
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    (out / "summary.json").unlink()  # as an interruption while writing the figures leaves it
    (out / ".unfinished").mkdir()
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    assert "which no cfx run wrote" not in caplog.text
    (out / "summary.json").unlink()  # a folder of such files without a resume folder: said
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    assert "which no cfx run wrote" in caplog.text


def test_an_oracle_of_other_classes_is_named_by_its_flag(tmp_path, capsys):
    """The explainer's error said `oracle`, a Python argument (session 45 audit)."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig

    BrainCNN(BrainCNNConfig(num_classes=3, width=4)).save_pretrained(tmp_path / "o3")
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress"]
    assert main([*argv, "--oracle", str(tmp_path / "o3"), "--out", str(tmp_path / "t")]) == 2
    assert "error: `--oracle` returns 3 class logits but the classifier 2" in (
        capsys.readouterr().err
    )


def test_oracle_none_in_any_case_is_no_oracle(tmp_path):
    argv = [*RUN, "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--steps", "2", "--inversion-steps", "0", "--no-progress", "--oracle", "NONE"]
    assert main([*argv, "--out", str(tmp_path / "t")]) == 0  # "unknown zoo classifier"
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["setup"]["oracle"] is None and summary["oracle_agreement"] is None


def test_an_out_that_is_a_training_run_is_warned_about(tmp_path, caplog):
    """`--out runs/cnn` (typed for --classifier runs/cnn) put the outputs beside the run's
    model without a word (a user review)."""
    run = tmp_path / "cnn"
    run.mkdir()
    (run / "training.json").write_text("{}")
    argv = [*RUN, "--target", "healthy", "--image-size", "64"]  # refused after the notice
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(run)]) == 2
    assert f"`--out` {run} is a training run's folder (training.json)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "plain")]) == 2
    assert "training run" not in caplog.text
