import json

import numpy as np

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
