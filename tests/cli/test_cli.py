import re
from pathlib import Path

import pytest

from cfx.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_data_preview_brain_writes_png(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["data", "preview", "brain", "--n", "8", "--tagged", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_a_small_preview_has_no_empty_columns(tmp_path):
    from PIL import Image

    wide, narrow = tmp_path / "8.png", tmp_path / "2.png"
    assert main(["data", "preview", "brain", "--n", "8", "--out", str(wide)]) == 0
    assert main(["data", "preview", "brain", "--n", "2", "--out", str(narrow)]) == 0
    w8, w2 = Image.open(wide).size[0], Image.open(narrow).size[0]
    assert w2 / w8 == pytest.approx(2 / 8, abs=0.02)  # two columns, not eight with six empty


def test_data_preview_credit_writes_summary(tmp_path):
    out = tmp_path / "c.csv"
    assert main(["data", "preview", "credit", "--out", str(out)]) == 0
    text = out.read_text()
    assert "credit_amount" in text and "approved" in text


def test_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "preview", "mnist", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'mnist'" in err and "brain" in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["credit", "--out", "c.xlsx"], "`--out` for credit is a .csv table, got 'c.xlsx'"),
        (["brain", "--out", "p.csv"], "`--out` for brain is a figure, one of .png, .pdf, .svg"),
        (["credit", "--n", "4", "--tagged"], "`--n`, `--tagged` only shape the brain preview"),
    ],
)
def test_preview_options_that_would_do_nothing_or_mislabel_a_file(tmp_path, capsys, argv, match):
    argv = [a if a != argv[-1] or "." not in a else str(tmp_path / a) for a in argv]
    assert main(["data", "preview", *argv]) == 2
    assert match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_n_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "preview", "brain", "--n", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "`--n` must be an int >= 1, got 0" in capsys.readouterr().err
    assert (
        main(["data", "preview", "brain", "--n", "100000", "--out", str(tmp_path / "x.png")]) == 2
    )
    assert "`--n` must be at most 128 for a preview, got 100000" in capsys.readouterr().err


def test_demo_writes_report(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "r")]) == 0
    from cfx.demo import SECTIONS

    html = (tmp_path / "r" / "index.html").read_text()
    for title, _ in SECTIONS:
        assert title in html
    # the shipped models load, so no section falls back to "Skipped: <why>"
    assert "Skipped:" not in html
    # how the page was made: it said only "Generated ... by cfx." (session 45 audit)
    from cfx import __version__

    assert f"by cfx {__version__}. Seed 0 (cfx demo --seed 0 --out {tmp_path / 'r'}), " in html
    assert re.search(r"CPU thread\(s\), \d+ s in all; Python 3\.\d+\.\d+, torch ", html)
    # the zoo's classifiers with sensitivity / specificity beside accuracy (a reader's review:
    # accuracy alone hid that brain-cnn-tagged misses unmarked tumours)
    assert len(re.findall(r"<td>\d+\.\d% \(\d+\.\d% / \d+\.\d%\)</td>", html)) == 3
    # BENCHMARKS.md, cited throughout, is linked from the header (a clone has it)
    # (its text is the path from the working folder: "BENCHMARKS.md" from a clone's root)
    cited = re.search(r'<a href="([^"]+)">[^<]*BENCHMARKS\.md</a> has the benchmarks', html)
    assert cited and (tmp_path / "r" / cited[1]).resolve() == ROOT / "BENCHMARKS.md"
    assert ">nan<" not in html.lower() and "`" not in html  # n/a, and code spans are <code>
    plans = (tmp_path / "r" / "recourse_plans.csv").read_text().splitlines()
    assert plans[0].startswith("model,") and {r.split(",")[0] for r in plans[1:]} == {
        "logistic",
        "gbm",
        "mlp",
    }
    assert 'href="recourse_plans.csv"' in html and 'href="german_credit_summary.csv"' in html
    # the labelled frames' figure: a path per row, so its caption counts them
    assert re.search(r"the first 8 of the \d+ labelled paths, a row each", html)
    names = ("brain_preview.png", "traj_0.png", "traj_1_localised.gif", "saliency_grid.png")
    names += ("augment_frames.png",)
    for name in (*names, "traj_0_localised_changes.png"):
        assert (tmp_path / "r" / name).is_file(), name


def test_no_command_shows_usage(capsys):
    with pytest.raises(SystemExit):
        main([])


@pytest.mark.parametrize(
    "argv",
    [
        ["shortcuts", "--n", "2"],
        ["trajectory", "--target", "healthy", "--n", "2"],
        ["saliency", "compare", "--n", "2"],
        ["saliency", "attack", "--n", "2"],
        ["saliency", "randomise", "--n", "2"],
        ["augment"],
        ["demo"],
    ],
)
def test_an_out_that_is_a_file_fails_before_the_work(tmp_path, capsys, monkeypatch, argv):
    import cfx.data.brain

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before --out was checked")

    monkeypatch.setattr(cfx.data.brain, "make_dataset", no_work)
    monkeypatch.setattr(cfx.data.brain, "make_slices", no_work, raising=False)
    monkeypatch.setattr("cfx.saliency.compare.tumour_slices", no_work)
    taken = tmp_path / "report.html"
    taken.write_text("not a folder")
    assert main([*argv, "--out", str(taken)]) == 2
    assert f"`--out` must be a folder, got an existing file: {taken}" in capsys.readouterr().err
    # a folder inside the file can never be made: said before the work too, not as Errno 20
    assert main([*argv, "--out", str(taken / "sub")]) == 2
    assert f"got {taken / 'sub'}, inside the file {taken}" in capsys.readouterr().err
    assert taken.read_text() == "not a folder"


@pytest.mark.parametrize(
    "argv",
    [
        ["saliency", "randomise"],
        ["saliency", "compare"],
        ["trajectory", "--target", "healthy"],
        ["train", "classifier", "--arch", "brain-cnn"],
        ["data", "preview", "brain"],
        ["recourse", "--input", "applicants.csv"],
    ],
)
def test_an_empty_out_is_refused_not_read_as_the_current_folder(capsys, argv):
    """`--out "$OUT"` with OUT unset meant the current folder, where `saliency randomise`
    then removed files an earlier run's names matched (session 45 audit)."""
    with pytest.raises(SystemExit) as info:
        main([*argv, "--out", ""])
    assert info.value.code == 2
    assert "argument --out: got an empty path (an unset shell variable?)" in (
        capsys.readouterr().err
    )


def test_a_stray_argument_is_named_by_its_command_with_a_hint_for_lists(capsys):
    """cfx's top usage line said it, naming no command; a list given with a space (`--methods
    gradient gradcam`) got no hint (session 45 audit)."""
    with pytest.raises(SystemExit) as info:
        main(["saliency", "compare", "--methods", "gradient", "gradcam"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: cfx saliency compare" in err
    assert err.endswith(
        "cfx saliency compare: error: unrecognized arguments: gradcam (a list is one "
        "argument, comma-separated: a,b)\n"
    )
    with pytest.raises(SystemExit):
        main(["saliency", "randomise", "--masks", "m"])
    assert "cfx saliency randomise: error: unrecognized arguments: --masks m\n" in (
        capsys.readouterr().err
    )


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cfx {version('cfx')}"


def test_every_option_has_help_and_shows_one_kind_of_default():
    """Options without help (--out, --no-progress of some commands), three ways of writing a
    default, and `(default: None)` on required options, from argparse's own formatter."""
    import argparse

    from cfx.cli import build_parser

    def parsers(p, name):
        yield name, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for k, child in a.choices.items():
                    yield from parsers(child, f"{name} {k}")

    for name, p in parsers(build_parser(), "cfx"):
        text = p.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, name
        assert "(default: )" not in text, name  # an empty-string default (recourse --immutable)
        assert "(default " not in text.replace("\n", " ").replace("  ", " "), name
        for a in p._actions:
            if a.option_strings and a.dest != "help" and not isinstance(a, argparse._VersionAction):
                assert a.help, f"{name} {a.option_strings[0]} has no help"
    helps = {n: p.format_help().replace("\n", " ") for n, p in parsers(build_parser(), "cfx")}
    assert "(default: brain-cnn-tagged)" in helps["cfx shortcuts"]
    assert "(default: 0.0)" in " ".join(helps["cfx trajectory"].split())  # 0 is not "no default"
    assert "(default: cfx-report)" in helps["cfx demo"]


def test_verbose_works_before_or_after_the_command():
    from cfx.cli import build_parser

    parser = build_parser()
    for argv in (
        ["-v", "demo"],
        ["demo", "-v"],
        ["saliency", "compare", "--verbose"],
        ["saliency", "-v", "compare"],
        ["train", "-v", "generator", "--out", "x"],
    ):
        assert parser.parse_args(argv).verbose is True, argv
    assert parser.parse_args(["demo"]).verbose is False


def test_given_flags_counts_a_given_zero_and_skips_defaults():
    import argparse

    from cfx.cli.options import given_flags

    args = argparse.Namespace(pool_n=0, pool_seed=None, tagged=False, no_progress=True)
    assert given_flags(args, "pool_n", "pool_seed", "tagged", "no_progress", "absent") == [
        "--pool-n",
        "--no-progress",
    ]


def test_python_m_cfx_runs_the_command():
    """``python -m cfx`` for environments whose scripts folder is not on PATH (it said 'No
    module named cfx.__main__')."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cfx", "data", "nonsense"], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert "usage: cfx data" in done.stderr and "invalid choice: 'nonsense'" in done.stderr


def test_help_and_mistyped_flags_answer_without_importing_torch():
    """torch takes ~1.5 s to import: `cfx --help`, `--version` and argparse's errors came after
    it (and Ctrl-C during it printed a traceback); commands import it when they run."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from cfx.cli import build_parser\n"
        "build_parser().format_help()\n"
        "import cfx\n"
        "print(sorted(m for m in ('torch', 'pandas', 'scipy') if m in sys.modules))\n"
        "cfx.invert\n"  # the top-level names still load on first use
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


@pytest.mark.parametrize(
    "argv",
    [
        ["trajectory", "--classifier", "{m}", "--target", "healthy"],
        ["trajectory", "--oracle", "{m}", "--target", "healthy"],
        ["saliency", "compare", "--classifier", "{m}"],
        ["shortcuts", "--classifier", "{m}"],
    ],
    ids=["trajectory", "oracle", "saliency", "shortcuts"],
)
def test_weights_that_are_not_their_cards_are_named_by_the_flag(tmp_path, capsys, argv):
    """The sha256 refusal named only the weights file, where every other error about a model
    names the option that gave it (session 44 audit)."""
    from cfx.models.classifiers import BrainCNN, BrainCNNConfig
    from cfx.zoo.pretrained import sha256

    folder = BrainCNN(BrainCNNConfig(width=4, blocks=2)).save_pretrained(tmp_path / "m")
    (folder / "README.md").write_text(f"sha256 of model.safetensors: {'0' * 64}\n")
    assert sha256(folder / "model.safetensors") != "0" * 64
    args = [a.replace("{m}", str(folder)) for a in argv]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    flag = "--oracle" if "--oracle" in argv else "--classifier"
    assert f"`{flag}`: `" in err and "has sha256" in err


def test_data_preview_shows_your_own_images_as_cfx_reads_them(
    tmp_path, capsys, monkeypatch, caplog
):
    """`cfx data preview` took only the built-in datasets: your own scans could be looked at
    as cfx reads them (range, channels, labels matched by file name, masks) nowhere."""
    import numpy as np
    import torch
    from PIL import Image

    import cfx.viz

    folder = tmp_path / "scans"
    folder.mkdir()
    grey = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    for name in ("b.png", "a.png", "c.png"):
        Image.fromarray(grey).save(folder / name)
    (tmp_path / "labels.csv").write_text("file,label\nc.png,1\na.png,0\nb.png,1\n")
    drawn = {}

    def capture(images, path, *, titles=None, masks=None, columns=8):
        drawn.update(images=images, titles=titles, masks=masks)
        return path

    monkeypatch.setattr(cfx.viz, "image_preview", capture)
    argv = ["data", "preview", str(folder), "--labels", str(tmp_path / "labels.csv")]
    assert main([*argv, "--n", "2", "--out", str(tmp_path / "p.png")]) == 0
    assert drawn["titles"] == ["a.png, label 0", "b.png, label 1"]  # name order, the first 2
    assert drawn["images"].shape == (2, 1, 64, 64)
    assert drawn["images"].min() == -1 and drawn["images"].max() == 1  # uint8 0..255 read
    err = capsys.readouterr().err
    assert "scans: 3 images (labels: 1 of class 0, 2 of class 1); the 2 shown: 1 channel" in err
    assert "64x64 (width x height), values -1.00 to 1.00 as cfx reads them" in err
    assert "differ in size" not in err
    # a file of another size past the ones shown: the preview passed a folder `cfx train`
    # then refused (it decoded the first --n only; a user review)
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(folder / "d.png")
    (tmp_path / "labels.csv").write_text("file,label\nc.png,1\na.png,0\nb.png,1\nd.png,0\n")
    with caplog.at_level("WARNING"):
        assert main([*argv, "--n", "2", "--out", str(tmp_path / "p.png")]) == 0
    assert (
        "1 of the 2 files not shown differs in size from a.png (64x64 pixels), d.png first "
        "(80x64): `cfx train` refuses images of several sizes"
    ) in caplog.text
    # a batch with masks in its order: the first --n of each
    x = torch.linspace(-1, 1, 5 * 16 * 16).reshape(5, 1, 16, 16)
    m = torch.zeros(5, 1, 16, 16, dtype=torch.bool)
    m[3, 0, 2:5, 2:5] = True
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "m.npy", m.numpy())
    argv = ["data", "preview", str(tmp_path / "x.npy"), "--masks", str(tmp_path / "m.npy")]
    assert main([*argv, "--n", "4", "--out", str(tmp_path / "q.png")]) == 0
    assert drawn["titles"] == ["#0", "#1", "#2", "#3"]
    assert torch.equal(drawn["masks"], m[:4]) and torch.equal(drawn["images"], x[:4])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["brain", "--labels", "y.csv"], "`--labels`/`--masks` go with your own images"),
        (["{tmp}", "--seed", "3"], "`--seed` only shapes the brain preview"),
        (["{tmp}/none.npy"], "`dataset` file not found: .*none.npy"),
        (
            ["scans/"],
            "unknown dataset .scans/.*a folder of image files, an image file "
            ".*\\(no such file or folder\\)",
        ),
        (["{tmp}", "--out", "p.csv"], "`--out` for images is a figure, one of .png"),
    ],
)
def test_data_preview_of_your_images_names_its_mistakes(tmp_path, capsys, argv, match):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), dtype=np.float32))
    argv = [a.replace("{tmp}", str(tmp_path / "x.npy")) if a == "{tmp}" else a for a in argv]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["data", "preview", *argv]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_data_preview_refuses_before_drawing_and_reads_masks_of_unshown_images(
    tmp_path, capsys, caplog
):
    """Session 47 audit: -1/1 labels crashed in bincount after the figure was written; a masks
    folder warned that the masks of images past the first --n matched no image; --out as a
    folder, inside a file or in the previewed folder was a bare errno or accepted."""
    import numpy as np
    from PIL import Image

    folder, masks = tmp_path / "scans", tmp_path / "masks"
    folder.mkdir()
    masks.mkdir()
    for i in range(5):
        Image.fromarray(np.full((8, 8), 50 * i, np.uint8)).save(folder / f"s{i}.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / f"s{i}.png")
    np.save(tmp_path / "pm1.npy", np.array([-1, 1, 1, -1, 1]))
    base = ["data", "preview", str(folder)]
    out = tmp_path / "p.png"
    assert main([*base, "--labels", str(tmp_path / "pm1.npy"), "--out", str(out)]) == 2
    said = capsys.readouterr().err
    assert "`--labels` must be class indices 0..K-1, got -1 in row 0" in said
    assert "(labels of -1/1? map them to 0/1)" in said
    assert not out.exists()
    with caplog.at_level("WARNING"):
        assert main([*base, "--n", "2", "--masks", str(masks), "--out", str(out)]) == 0
    assert "named as no image" not in caplog.text and out.is_file()
    (masks / "stray.png").write_bytes((masks / "s0.png").read_bytes())
    with caplog.at_level("WARNING"):
        assert main([*base, "--n", "2", "--masks", str(masks), "--out", str(out)]) == 0
    assert "1 mask file(s) named as no image, not used: stray.png" in caplog.text
    (tmp_path / "afile.txt").write_text("x")
    for given, said in [
        (tmp_path, f"`--out` must name a file, got the folder {tmp_path}"),
        (tmp_path / "afile.txt" / "p.png", "must be a file in a folder, got .* inside the file"),
        (folder / "p.png", "must not be in the folder of images previewed"),
    ]:
        assert main([*base, "--out", str(given)]) == 2
        assert re.search(said, capsys.readouterr().err), said
    assert sorted(p.name for p in folder.iterdir()) == [f"s{i}.png" for i in range(5)]
    # one image file is shown as a folder of one (it was "unknown dataset")
    assert main(["data", "preview", str(folder / "s3.png"), "--out", str(out)]) == 0
    assert f"{folder / 's3.png'}: 1 image; the 1 shown: 1 channel(s), 8x8" in (
        capsys.readouterr().err
    )
    # two channels (two MRI sequences, say) train and explain; only the preview cannot show
    # them: it said "channels last? save x.transpose(0, 3, 1, 2)" of a (5, 2, 8, 8) batch
    np.save(tmp_path / "two.npy", np.zeros((5, 2, 8, 8), np.float32))
    assert main(["data", "preview", str(tmp_path / "two.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "these have 2 (the commands take them): save one channel, x[:, :1]" in err
    assert "transpose" not in err
    # the credit table into a folder not made yet, as the figures' folders are made
    table = tmp_path / "new" / "c.csv"
    assert main(["data", "preview", "credit", "--out", str(table)]) == 0 and table.is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["shortcuts", "--seed", "99999999999999999999"],
        ["trajectory", "--target", "healthy", "--seed", "-3"],
        ["saliency", "compare", "--seed", "4294967296"],
        ["train", "classifier", "--arch", "brain-cnn", "--seed", "-1"],
        # the data seeds too: -1 drew a training set no preview (--seed) could show, and a
        # huge one failed late (session 47 audit)
        ["train", "generator", "--data-seed", "-1"],
        ["train", "classifier", "--arch", "brain-cnn", "--val-seed", "99999999999999999999"],
        ["augment", "--pool-seed", "-5"],
    ],
)
def test_a_seed_out_of_range_is_named_before_any_work(argv, tmp_path, capsys):
    """cfx shortcuts --seed 99999999999999999999 said only "Overflow when unpacking long long"
    after loading its models (session 46 audit); every command's --seed is checked at once."""
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    flag = argv[-2]
    assert f"`{flag}` must be an int in [0, 2**32), got {argv[-1]}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_folder_named_like_the_built_in_data_is_warned_about(tmp_path, monkeypatch, caplog):
    """`--data brain` with a brain/ folder of one's own here trained on the built-in slices
    without a word (session 47 audit)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "brain").mkdir()
    said = "the folder ./brain here is not read (give it as ./brain to use it)"
    with caplog.at_level("WARNING", logger="cfx.cli.paths"):
        assert main(["data", "preview", "brain", "--n", "1", "--out", "p.png"]) == 0
    assert "`preview brain` is the built-in data; " + said in caplog.text
    # the folder is not the one previewed: a figure may go into it (it was refused as such)
    assert main(["data", "preview", "brain", "--n", "1", "--out", "brain/p.png"]) == 0
    caplog.clear()
    argv = ["train", "generator", "--n", "8", "--steps", "1", "--batch-size", "4", "--width", "4"]
    with caplog.at_level("WARNING", logger="cfx.cli.paths"):
        assert main([*argv, "--latent-dim", "4", "--no-progress", "--out", "g"]) == 0
    assert "`--data brain` is the built-in data; " + said in caplog.text


def test_the_program_ignores_a_second_ctrl_c_after_the_first_stopped_it(monkeypatch):
    """Two quick Ctrl-Cs printed "interrupted" and then a traceback from an atexit callback
    the second landed in (session-53 CLI audit). The program (script, python -m cfx) ignores
    Ctrl-C once a command has been interrupted; main(), called from Python, leaves it alone."""
    import signal

    import cfx.cli

    before = signal.getsignal(signal.SIGINT)
    try:
        monkeypatch.setattr(cfx.cli, "main", lambda: 0)
        assert cfx.cli.entry() == 0 and signal.getsignal(signal.SIGINT) is before
        monkeypatch.setattr(cfx.cli, "main", lambda: 130)
        assert cfx.cli.entry() == 130 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_full_disk_says_where_and_that_a_rerun_resumes(monkeypatch, capsys):
    """A full disk printed only "error: [Errno 28] No space left on device" though the runs
    kept their finished work and resume when rerun (session-54 resume audit)."""
    import errno

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/part_00002.tmp")

    monkeypatch.setattr("cfx.cli.recourse.run_recourse", full)
    assert main(["recourse", "--applicant-index", "1"]) == 2
    err = capsys.readouterr().err
    assert "error: [Errno 28] No space left on device: '/data/out/part_00002.tmp'; the disk " in err
    assert "holding /data/out is full: free space and rerun the same command" in err

    def denied(args):  # other errors as they were
        raise PermissionError(errno.EACCES, "Permission denied", "/data/out")

    monkeypatch.setattr("cfx.cli.recourse.run_recourse", denied)
    assert main(["recourse", "--applicant-index", "1"]) == 2
    assert capsys.readouterr().err.endswith("Permission denied: '/data/out'\n")
