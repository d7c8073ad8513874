import json

import numpy as np
import torch

from cfx.cli import main


def test_localised_method_writes_its_regions(tmp_path):
    out = tmp_path / "t"
    argv = ["trajectory", "--target", "healthy", "--method", "localised", "--n", "2"]
    assert main([*argv, "--steps", "3", "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        frames, masks = r["frames"], r["edit_masks"]
    assert frames.shape == (2, 4, 1, 64, 64) and masks.shape == (2, 1, 64, 64)
    # pixels outside a (binary part of the) region never move
    outside = masks[:, None] == 0
    change = np.abs(frames - frames[:, :1])
    assert float(change[np.broadcast_to(outside, change.shape)].max(initial=0.0)) < 1e-6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "localised" and summary["flip_rate"] == 1.0


def test_localise_needs_the_monotone_method(tmp_path, capsys):
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--localise"]
    assert main([*argv, "--n", "1", "--out", str(tmp_path / "t")]) == 2
    assert "`--localise` goes with --method monotone" in capsys.readouterr().err


def test_default_method_writes_every_output(tmp_path):
    out = tmp_path / "t"
    argv = ["trajectory", "--target", "tumour", "--n", "2", "--steps", "3", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        assert set(r.files) == {"frames", "probs", "latents", "source"}
        frames, probs, source = r["frames"], r["probs"], r["source"]
    assert frames.shape == (2, 4, 1, 64, 64) and probs.shape == (2, 4)
    assert source.shape == (2, 1, 64, 64)
    assert (out / "strips.png").is_file() and (out / "probabilities.png").is_file()
    assert sorted(p.name for p in out.glob("*.gif")) == ["sequence_000.gif", "sequence_001.gif"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "monotone" and summary["target"] == 1
    assert summary["n"] == 2.0 and -1.0 <= summary["cout"] <= 1.0
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
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--input", str(png)]
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
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--input", str(batch)]
    assert main([*argv, "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        assert np.array_equal(r["source"], x.numpy())


def test_input_errors_name_the_option(tmp_path, capsys):
    bad = tmp_path / "wrong.npy"
    np.save(bad, np.zeros((1, 1, 32, 32), dtype=np.float32))
    base = ["trajectory", "--target", "healthy", "--out", str(tmp_path / "t")]
    assert main([*base, "--input", str(bad)]) == 2
    assert "`--input` must hold images shaped (N, 1, 64, 64)" in capsys.readouterr().err
    assert main([*base, "--input", str(tmp_path / "scan.gif")]) == 2
    assert "`--input` must be an image file (.png" in capsys.readouterr().err
    np.save(bad, np.full((1, 1, 64, 64), 3.0, dtype=np.float32))
    assert main([*base, "--input", str(bad)]) == 2
    assert "`--input` must have values in [-1, 1]" in capsys.readouterr().err
    assert main([*base, "--input", str(bad), "--n", "4"]) == 2
    assert "`--n` and `--seed` choose built-in slices" in capsys.readouterr().err


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
