import json

import numpy as np
import pytest
import torch
from PIL import Image

from cfx.metrics import cout
from cfx.trajectory import GradientAscent, MonotonePath, load_result, save_result
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


def _toy():
    return LinearGenerator(), LogisticClassifier()  # 4 x 4 images


@pytest.fixture
def toy_result():
    g, f = _toy()
    u = g.A.detach().T @ f.w.detach()
    z0 = -3 * (u / u.norm())[None].repeat(3, 1) + 0.1 * torch.arange(9.0).view(3, 3) / 9
    x = g.decode(z0).detach()
    ga = GradientAscent(g, f, steps=4, eta=0.05, max_iter=500, oracle=f)
    return ga.explain(x, 1, latents=z0), f


def test_every_file_holds_the_result(tmp_path, toy_result):
    res, f = toy_result
    summary = save_result(res, tmp_path / "run", classifier=f, setup={"note": "toy"})
    out = tmp_path / "run"
    with np.load(out / "result.npz") as r:
        assert set(r.files) == {
            *("frames", "probs", "latents", "source", "target", "levels", "success"),
            *("in_target", "oracle_probs"),  # no lambdas (Option 1), no edit masks
        }
        for key in r.files:
            assert np.array_equal(r[key], getattr(res, key).numpy()), key
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["setup"] == {"note": "toy"} and summary["n"] == 3
    assert summary["localisation"] is None  # the key is there without masks, as null
    # the logistic toy's own probability of class 1 on each source, worked out here
    with torch.no_grad():
        p_src = torch.sigmoid(res.source.flatten(1) @ f.w + f.b)
    assert summary["source_in_target"] == int((p_src > 0.5).sum())
    couts = cout(f, res.frames[:, 0], res.frames[:, -1], 1)  # the path's two ends
    for i, row in enumerate(summary["images"]):
        assert row["p_start"] == float(res.probs[i, 0]) and row["p_end"] == float(res.probs[i, -1])
        assert row["p_source"] == pytest.approx(float(p_src[i]), abs=1e-6)
        assert row["oracle_p_end"] == float(res.oracle_probs[i, -1])
        assert row["crossed_at"] == int(res.crossed_at[i]) and row["lambda"] is None
        assert row["optimised"] is None  # Option 1 has no joint optimisation
        # COUT of a path that climbs from ~0 to the margin is close to 1, and it is the
        # metric's value for the first and the last frame
        assert 0.5 < row["cout"] <= 1.0
        assert row["cout"] == pytest.approx(float(couts[i]), abs=1e-6)
    assert summary["cout"] == pytest.approx(np.mean([r["cout"] for r in summary["images"]]))
    gifs = sorted(p.name for p in out.glob("*.gif"))
    assert gifs == ["sequence_000.gif", "sequence_001.gif", "sequence_002.gif"]
    with Image.open(out / "sequence_001.gif") as gif:
        assert gif.n_frames == 2 * 5 - 2  # five frames played forward and back
    assert (out / "strips.png").is_file() and (out / "probabilities.png").is_file()
    assert (out / "changes.png").is_file()


def _first_source_in_class_1(res, f):
    """The result's sources with row 0 replaced by an image the toy classifier puts in class
    1 (the target) while the rest of the result is unchanged."""
    g, _ = _toy()
    u = g.A.detach().T @ f.w.detach()
    with torch.no_grad():
        source = res.source.clone()
        source[0] = g.decode(3 * (u / u.norm())[None])[0]
    return source


def test_p_source_reads_the_sources_not_frame_0(tmp_path, toy_result):
    """Sources that differ from their reconstructions: row 0's source is class 1 (the
    target) while its frame 0 is taken for one in the target too, row 1's frame 0 is in the
    target but its source is not, row 2 is in neither."""
    from dataclasses import replace

    res, f = toy_result
    source = _first_source_in_class_1(res, f)
    with torch.no_grad():
        p_src = torch.sigmoid(source.flatten(1) @ f.w + f.b)
    in_target = res.in_target.clone()
    in_target[:2, 0] = True
    summary = save_result(
        replace(res, source=source, in_target=in_target), tmp_path, classifier=f, figures=False
    )
    assert p_src[0] > 0.5 and bool((p_src[1:] < 0.5).all())
    assert [r["p_source"] for r in summary["images"]] == pytest.approx(p_src.tolist(), abs=1e-6)
    assert summary["already_in_target"] == 2 and summary["source_in_target"] == 1


def test_inputs_already_in_the_target_and_paths_that_crossed_are_counted(tmp_path, toy_result):
    """An input the classifier already puts in the target, whose reconstruction lost that,
    made a 'successful' path nothing flagged. Known answer: row 0's source is in the target
    and its frame 0 is not; row 1 starts in the target; row 2 crosses. Every path ends in
    the target: flip rate 1, crossed rate 1/3 (only row 2 starts outside, input and frame 0,
    and ends inside)."""
    from dataclasses import replace

    res, f = toy_result
    source = _first_source_in_class_1(res, f)
    in_target = res.in_target.clone()
    in_target[1, 0] = True
    assert bool(res.success.all()) and not bool(res.in_target[:, 0].any())
    names = ["a.png", "b.png", "c.png"]
    summary = save_result(
        replace(res, source=source, in_target=in_target),
        tmp_path,
        classifier=f,
        names=names,
        figures=False,
    )
    assert summary["flip_rate"] == 1.0 and summary["crossed_rate"] == pytest.approx(1 / 3)
    # without a classifier the inputs are not judged: rows 0 and 2 start outside (frame 0)
    alone = save_result(
        replace(res, source=source, in_target=in_target), tmp_path / "alone", figures=False
    )
    assert alone["crossed_rate"] == pytest.approx(2 / 3) and alone["input_in_target"] is None
    assert summary["input_in_target"] == 1 and summary["source_in_target"] == 0
    rows = summary["images"]
    assert [r["input_in_target"] for r in rows] == [True, False, False]
    assert [r["file"] for r in rows] == names
    with pytest.raises(ValueError, match="`names` must name the 3 images, got 2 names"):
        save_result(res, tmp_path / "b", classifier=f, names=names[:2], figures=False)


def test_without_a_classifier_cout_is_null_and_nan_lambdas_are_null(tmp_path):
    g, f = _toy()
    u = g.A.detach().T @ f.w.detach()
    z0 = -3 * (u / u.norm())[None].repeat(2, 1)
    x = g.decode(z0).detach()
    # zero iterations: every image keeps its warm start, so every lambda is NaN
    kw = {"steps": 3, "iterations": 0, "warm_start_eta": 0.05, "warm_start_iter": 500}
    res = MonotonePath(g, f, **kw).explain(x, 1, latents=z0)
    assert res.lambdas is not None and bool(res.lambdas.isnan().all())
    summary = save_result(res, tmp_path, figures=False)
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text  # JSON has no NaN: they are written as null
    assert summary["cout"] is None
    assert [row["lambda"] for row in summary["images"]] == [None, None]
    assert [row["optimised"] for row in summary["images"]] == [False, False]
    assert [row["cout"] for row in summary["images"]] == [None, None]
    assert [row["p_source"] for row in summary["images"]] == [None, None]
    assert summary["source_in_target"] is None
    assert summary["oracle_agreement"] is None and summary["localisation"] is None
    assert summary["oracle_agreement_along_path"] is None


class NormedClassifier(torch.nn.Module):
    """The toy classifier behind a BatchNorm, to see whether saving touches the model."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm2d(1)
        self.logistic = LogisticClassifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logistic(self.norm(x))


def test_the_classifier_is_left_as_it_was(tmp_path, toy_result):
    res, _ = toy_result
    clf = NormedClassifier().train()
    before = clf.norm.running_mean.clone()
    summary = save_result(res, tmp_path, classifier=clf, figures=False)
    assert clf.training and clf.norm.training
    assert torch.equal(clf.norm.running_mean, before)  # no batch statistics were taken
    assert all(p.requires_grad for p in clf.parameters())
    assert summary["cout"] is not None


def test_bad_masks_or_setup_fail_before_any_file_is_written(tmp_path, toy_result):
    res, _ = toy_result
    with pytest.raises(ValueError, match=r"`masks` must have shape \(3, 1, 4, 4\)"):
        save_result(
            res, tmp_path / "a", masks=torch.ones(1, 1, 4, 4, dtype=torch.bool), figures=False
        )
    with pytest.raises(TypeError, match="`setup` must hold JSON values"):
        save_result(res, tmp_path / "b", setup={"path": tmp_path}, figures=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    summary = save_result(res, tmp_path / "c", setup={"pair": (1, np.float32(0.5))}, figures=False)
    assert summary["setup"] == {"pair": [1, 0.5]}


def test_numbered_figures_are_replaced_only_in_a_folder_cfx_wrote(tmp_path, toy_result):
    res, _ = toy_result
    ours, foreign = tmp_path / "ours", tmp_path / "foreign"
    save_result(res, ours)
    foreign.mkdir()
    (foreign / "summary.json").write_text('{"note": "someone else\'s"}')
    for out in (ours, foreign):
        (out / "sequence_007.gif").write_text("old")
        save_result(res, out)
    assert not (ours / "sequence_007.gif").exists()  # beyond this batch of 3: stale, gone
    assert (foreign / "sequence_007.gif").read_text() == "old"


def test_without_figures_the_arrays_and_summary_are_written_and_no_earlier_figure_is_kept(
    tmp_path, toy_result
):
    res, f = toy_result
    drawn, bare, foreign = tmp_path / "drawn", tmp_path / "bare", tmp_path / "foreign"
    with_figures = save_result(res, drawn, classifier=f, setup={"note": "toy"})
    # a folder of an earlier cfx run's outputs, figures of 35 rows among them
    save_result(res, bare, figures=False)
    figures = ["strips.png", "strips_02.png", "changes.png", "changes_02.png"]
    figures += ["probabilities.png", "sequence_000.gif", "sequence_034.gif"]
    for name in figures:
        (bare / name).write_text("an earlier run's")
    summary = save_result(res, bare, classifier=f, setup={"note": "toy"}, figures=False)
    assert sorted(p.name for p in bare.iterdir()) == ["result.npz", "summary.json"]
    assert summary == with_figures
    assert json.loads((bare / "summary.json").read_text()) == summary
    with np.load(bare / "result.npz") as r, np.load(drawn / "result.npz") as d:
        assert r.files == d.files and all(np.array_equal(r[k], d[k]) for k in r.files)
    # figures of a name cfx writes in a folder no cfx run wrote are not cfx's to delete
    foreign.mkdir()
    (foreign / "strips.png").write_text("mine")
    (foreign / "sequence_000.gif").write_text("mine")
    save_result(res, foreign, figures=False)
    assert (foreign / "strips.png").read_text() == "mine"
    assert (foreign / "sequence_000.gif").read_text() == "mine"
    with pytest.raises(TypeError, match="`figures` must be True or False, got 'no'"):
        save_result(res, tmp_path / "x", figures="no")
    assert not (tmp_path / "x").exists()


def test_a_saved_result_loads_back(tmp_path, toy_result):
    res, _ = toy_result
    save_result(res, tmp_path / "run", figures=False)
    back = load_result(tmp_path / "run")
    for key in ("frames", "latents", "probs", "levels", "target", "source", "in_target"):
        assert torch.equal(getattr(back, key), getattr(res, key)), key
    assert torch.equal(back.oracle_probs, res.oracle_probs) and back.lambdas is None
    assert back.seconds == res.seconds and back.inversion is None
    assert torch.equal(back.success, res.success)
    with pytest.raises(FileNotFoundError, match=r"no result\.npz"):
        load_result(tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "result.npz").write_bytes(b"not a zip archive")  # numpy: "pickled"
    with pytest.raises(ValueError, match=r"cannot be read as save_result's result\.npz"):
        load_result(tmp_path / "junk")


def test_folder_that_is_a_file_and_numpy_arrays_in_setup(tmp_path, toy_result):
    res, _ = toy_result
    (tmp_path / "taken").write_text("")
    with pytest.raises(ValueError, match="`folder` must be a folder"):
        save_result(res, tmp_path / "taken", figures=False)
    # a file name once became a folder called r.npz with the files inside
    with pytest.raises(ValueError, match=r"got .*r\.npz, a file name: save_result writes"):
        save_result(res, tmp_path / "r.npz", figures=False)
    assert not (tmp_path / "r.npz").exists()
    summary = save_result(res, tmp_path / "run", setup={"levels": np.arange(3)}, figures=False)
    assert summary["setup"] == {"levels": [0, 1, 2]}


def test_a_folder_saved_before_in_target_existed_loads_with_the_fallback(tmp_path, toy_result):
    res, _ = toy_result
    save_result(res, tmp_path / "run", figures=False)
    npz = tmp_path / "run" / "result.npz"
    with np.load(npz) as r:
        old = {k: r[k] for k in r.files if k != "in_target"}
    old["success"] = ~old["success"]  # the last frame must come from success, not probs
    np.savez_compressed(npz, **old)
    back = load_result(tmp_path / "run")
    assert torch.equal(back.in_target[:, :-1], res.probs[:, :-1] > 0.5)
    assert torch.equal(back.success, ~res.success)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_a_result_cast_to_another_dtype_is_saved_with_the_classifier(tmp_path, toy_result, dtype):
    """`res.to(dtype)` is advertised; saving it with the (float32) classifier blamed
    `source`'s dtype. The classifier now reads the images in its own dtype."""
    res, f = toy_result
    whole = save_result(res, tmp_path / "a", classifier=f, figures=False)
    cast = save_result(res.to(dtype), tmp_path / "b", classifier=f, figures=False)
    tol = 2e-2 if dtype == torch.float16 else 1e-6
    for a, b in zip(whole["images"], cast["images"], strict=True):
        assert b["p_source"] == pytest.approx(a["p_source"], abs=tol)
        assert b["cout"] == pytest.approx(a["cout"], abs=tol)
    assert cast["flip_rate"] == whole["flip_rate"]


def test_the_probability_plot_names_the_target_and_models_from_the_setup(
    tmp_path, toy_result, monkeypatch
):
    import cfx.viz

    seen = []
    monkeypatch.setattr(cfx.viz, "probability_curves", lambda *a, **k: seen.append(k))
    for other in ("trajectory_strip", "change_panels", "trajectory_gif"):  # not read here
        monkeypatch.setattr(cfx.viz, other, lambda *a, **k: None)
    res, f = toy_result
    save_result(res, tmp_path / "a", classifier=f)
    save_result(
        res,
        tmp_path / "b",
        classifier=f,
        setup={"target_name": "healthy", "classifier": "brain-cnn", "oracle": "/data/my-oracle"},
    )
    save_result(res, tmp_path / "c", classifier=f, setup={"target_name": "1", "oracle": None})
    assert "target_name" not in seen[0] and "model_names" not in seen[0]
    assert seen[1]["target_name"] == "healthy"
    assert seen[1]["model_names"] == ("brain-cnn", "my-oracle")
    assert seen[2]["target_name"] == "class 1" and "model_names" not in seen[2]
    # a cfx train run's DIR/model folder by its run's name (the legend read "model")
    save_result(res, tmp_path / "d", classifier=f, setup={"classifier": "/runs/myclf/model"})
    assert seen[3]["model_names"] == ("myclf", "oracle")


def test_figure_rows_are_labelled_as_the_warnings_count_them(tmp_path, toy_result, monkeypatch):
    """Without file names the strips, change panels and probability plot label rows "row 0",
    "row 1", ... as the warnings' rows and sequence_000.gif count them (the plot said "row
    1..3" and the strips nothing: a user audit); with names, the names."""
    import cfx.viz

    seen: dict[str, list] = {}
    for name in ("trajectory_strip", "change_panels", "probability_curves"):
        draw = getattr(cfx.viz, name)

        def record(*args, _name=name, _draw=draw, **kwargs):
            seen.setdefault(_name, []).append(kwargs["row_names"])
            return _draw(*args, **kwargs)

        monkeypatch.setattr(cfx.viz, name, record)
    res, _ = toy_result
    save_result(res, tmp_path / "a")
    rows = ["row 0", "row 1", "row 2"]
    assert seen == {name: [rows] for name in seen} and len(seen) == 3
    seen.clear()
    save_result(res, tmp_path / "b", names=["x.png", "y.png", "z.png"])
    assert all(drawn == [["x.png", "y.png", "z.png"]] for drawn in seen.values())


def test_oracle_agreement_of_the_flipped_paths_is_beside_every_paths(tmp_path, toy_result):
    """oracle_agreement reads every path's last frame: 1.0 where no path flipped and the
    oracle kept the source's class (session 45 audit); of the flipped ones is its own key."""
    import dataclasses

    res, f = toy_result
    oracle = res.oracle_probs.clone()
    oracle[:, -1] = torch.tensor([0.9, 0.8, 0.2])
    in_target = res.in_target.clone()
    in_target[:, -1] = torch.tensor([True, False, True])  # success: the last frame's
    mixed = dataclasses.replace(res, in_target=in_target, oracle_probs=oracle)
    summary = save_result(mixed, tmp_path / "a", classifier=f, figures=False)
    assert summary["oracle_agreement"] == pytest.approx(2 / 3)
    assert summary["oracle_agreement_of_flipped"] == pytest.approx(1 / 2)  # rows 0 and 2
    in_target[:, -1] = False
    none = dataclasses.replace(mixed, in_target=in_target)
    assert (
        save_result(none, tmp_path / "b", classifier=f, figures=False)[
            "oracle_agreement_of_flipped"
        ]
        is None
    )


def test_an_interrupted_save_leaves_no_summary_of_another_run(tmp_path, toy_result, monkeypatch):
    """summary.json was written first: Ctrl-C among the figures left the last run's GIFs and
    strips beside a summary saying this run's steps (session 45 audit). It comes last now."""
    import cfx.viz

    res, f = toy_result
    out = tmp_path / "run"
    save_result(res, out, classifier=f)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cfx.viz, "trajectory_gif", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_result(res, out, classifier=f)
    assert (out / "result.npz").is_file() and not (out / "summary.json").exists()


def test_load_result_takes_the_folder_or_its_result_npz(tmp_path, toy_result):
    res, f = toy_result
    save_result(res, tmp_path / "run", classifier=f, figures=False)
    by_file = load_result(tmp_path / "run" / "result.npz")  # said "no result.npz in .../result.npz"
    assert torch.equal(by_file.frames, load_result(tmp_path / "run").frames)


def test_bad_arguments_are_named_before_the_folder_is_touched(tmp_path, toy_result):
    """A bfloat16 result, numpy masks or an empty result failed after the folder's earlier
    summary.json was deleted (and result.npz overwritten), naming neither argument."""
    res, _ = toy_result
    save_result(res, tmp_path, figures=False)
    before = (tmp_path / "summary.json").read_text()
    b, h, w = len(res), *res.frames.shape[-2:]
    cases = [
        ({"result": res[res.success & ~res.success]}, ValueError, "`result` holds no sequences"),
        ({"masks": np.zeros((b, 1, h, w), bool)}, TypeError, "`masks` must be a torch tensor"),
        ({"names": "abc"}, TypeError, "`names` must be a list of"),
    ]
    for kwargs, error, message in cases:
        args = {"result": res} | kwargs
        with pytest.raises(error, match=message):
            save_result(args.pop("result"), tmp_path, **args, figures=False)
        assert (tmp_path / "summary.json").read_text() == before
    save_result(res.to(torch.bfloat16), tmp_path / "half")  # numpy has no bfloat16
    assert np.load(tmp_path / "half" / "result.npz")["frames"].dtype == np.float32


def test_a_results_tensor_given_for_the_result_is_named(tmp_path, toy_result):
    """``save_result(res.frames, ...)`` failed as "'Tensor' object has no attribute 'frames'"
    (an earlier audit's left-alone item, session 57); nothing is written."""
    res, _ = toy_result
    with pytest.raises(TypeError, match=r"`result` must be the TrajectoryResult an explainer "
                       r"returned \(res, not res.frames\), got Tensor"):  # fmt: skip
        save_result(res.frames, tmp_path / "run")
    assert not (tmp_path / "run").exists()
