"""``cfx saliency randomise``: the library's cascading randomisation, per method, as files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from cfx.cli import main


def test_the_files_hold_the_librarys_check_of_each_method(tmp_path, capsys):
    """The command's figures are cascading_randomisation's on the same slices, layers, target
    and seed (a CLI that randomised other layers, or explained another class, would differ)."""
    from cfx.cli.saliency_randomise import RANDOMISE_SEED
    from cfx.saliency import GradCAM, Gradient
    from cfx.saliency.compare import tumour_slices
    from cfx.saliency.randomisation import cascading_randomisation
    from cfx.zoo import load_classifier

    out = tmp_path / "rnd"
    argv = ["saliency", "randomise", "--methods", "gradient,gradcam", "--n", "3", "--seed", "1"]
    assert main([*argv, "--target", "tumour", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    x, _ = tumour_slices(3, 1)
    model = load_classifier("brain-cnn")
    with (out / "randomisation.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 3 and summary["target"] == 1 and len(summary["layers"]) == 9
    for i, (name, make) in enumerate((("gradient", Gradient), ("gradcam", GradCAM))):
        res = cascading_randomisation(
            make, model, x, 1, generator=torch.Generator().manual_seed(RANDOMISE_SEED)
        )
        signed, absolute = res.mean()
        mine = [r for r in rows if r["method"] == name]
        assert [r["layer"] for r in mine] == list(res.layers) == summary["layers"]
        np.testing.assert_allclose([float(r["spearman"]) for r in mine], signed, atol=1e-4)
        np.testing.assert_allclose([float(r["spearman_abs"]) for r in mine], absolute, atol=1e-4)
        assert [int(r["blank"]) for r in mine] == res.blank.sum(1).tolist()
        kept = res.top_kept.mean(1).tolist()
        np.testing.assert_allclose([float(r["top_kept"]) for r in mine], kept, atol=1e-4)
        said = summary["methods"][i]
        assert said["method"] == name and said["verdict"] == res.verdict()
        assert said["blank_final"] == int(res.blank[-1].sum())
        assert said["spearman_final"] == pytest.approx(signed[-1], abs=1e-6)
        assert said["top_kept_final"] == pytest.approx(kept[-1], abs=1e-6)
        line = f"{name:<8}  {signed[-1]:8.3f}  {absolute[-1]:8.3f}  {kept[-1]:11.3f}  "
        assert line + res.verdict() in printed
    assert "spearman  of |map|" in printed  # the absolute maps' Spearman, which may be negative
    assert (out / "cascade.png").stat().st_size > 0


def test_an_interrupted_rerun_keeps_the_last_runs_files(tmp_path, monkeypatch):
    """The files of the run before were removed before the work began: Ctrl-C in a rerun
    left the folder empty (session 45 audit)."""
    out = tmp_path / "rnd"
    out.mkdir()
    for name in ("randomisation.csv", "summary.json", "cascade.png"):
        (out / name).write_text("the last run's")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("cfx.saliency.randomisation.randomise_methods", interrupted)
    argv = ["saliency", "randomise", "--methods", "gradient", "--n", "2", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 130
    assert {p.name: p.read_text() for p in out.iterdir()} == dict.fromkeys(
        ("randomisation.csv", "summary.json", "cascade.png"), "the last run's"
    )


def test_your_own_images_are_explained_as_their_predicted_class(tmp_path, capsys):
    from cfx.saliency.compare import tumour_slices

    x, _ = tumour_slices(2, 1)
    np.save(tmp_path / "x.npy", x.numpy())
    out = tmp_path / "rnd"
    argv = ["saliency", "randomise", "--input", str(tmp_path / "x.npy"), "--methods", "gradient"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 2 and summary["target"] is None and summary["seed"] is None
    assert summary["input"] == str(tmp_path / "x.npy")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--methods", "gradients"],
            "`--methods`: unknown saliency method(s) ['gradients']; expected some of",
        ),
        (["--methods", "gradients"], "('gradients': did you mean 'gradient'?)"),
        (
            ["--target", "7"],
            "`--target` must be a class of the classifier, 0..1 (or healthy / tumour for 0 / 1), "
            "got 7",
        ),
        (["--n", "0"], "`--n` must be an int >= 1, got 0"),
        (["--input", "x.npy", "--n", "4"], "`--n` chooses the built-in slices"),
    ],
)
def test_bad_options_are_named(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 64, 64), np.float32))
    argv = ["saliency", "randomise", "--no-progress", "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_target_no_image_is_predicted_is_warned_about(tmp_path, caplog):
    """compare warned that every map explains a class the classifier did not choose;
    randomise, given the same target, said nothing (session 45 audit)."""
    argv = ["saliency", "randomise", "--methods", "gradient", "--n", "2", "--fast"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--target", "healthy", "--no-progress", "--out", str(tmp_path)]) == 0
    assert "the classifier puts none of the 2 images in class 0 (--target)" in caplog.text
