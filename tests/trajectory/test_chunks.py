import json
import logging
import re
from dataclasses import replace

import pytest
import torch

from cfx.errors import ForeignRunError
from cfx.trajectory import GradientAscent, MonotonePath, concat, explain_in_chunks
from cfx.trajectory.chunks import FORMAT
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


def _sources(n: int = 7) -> tuple[torch.Tensor, LinearGenerator, LogisticClassifier]:
    g, f = LinearGenerator(), LogisticClassifier()
    u = g.A.detach().T @ f.w.detach()
    offsets = torch.randn(n, 3, generator=torch.Generator().manual_seed(3)) * 0.3
    z0 = -3 * (u / u.norm())[None] + offsets  # every source well inside class 0
    return g.decode(z0).detach(), g, f


class Counting:
    """An explainer that counts the images it is asked for and can fail at a given call."""

    def __init__(self, inner, fail_at: int | None = None) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, []

    def explain(self, x, target):
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt  # what Ctrl-C raises mid-run
        self.calls.append(x.shape[0])
        return self.inner.explain(x, target)


def _ascent(g, f):
    return GradientAscent(g, f, steps=4, eta=0.05, max_iter=400, inversion_steps=5, oracle=f)


def _same(a, b):
    for name in ("frames", "latents", "probs", "levels", "target", "source", "in_target"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.oracle_probs, b.oracle_probs)
    assert torch.equal(a.inversion.psnr, b.inversion.psnr)
    assert a.inversion.perceptual == b.inversion.perceptual


def test_chunks_give_the_whole_batch_result(tmp_path):
    x, g, f = _sources()
    whole = _ascent(g, f).explain(x, 1)
    counting = Counting(_ascent(g, f))
    chunked = explain_in_chunks(counting, x, 1, batch_size=3)
    assert counting.calls == [3, 3, 1]
    assert len(chunked) == 7 and chunked.inversion.latents.shape == (7, 3)
    for name in ("frames", "latents", "probs", "oracle_probs"):  # images are independent
        torch.testing.assert_close(getattr(chunked, name), getattr(whole, name))
    assert torch.equal(chunked.levels, whole.levels)
    assert torch.equal(chunked.success, whole.success)


def test_an_interrupted_run_resumes_at_the_first_unfinished_chunk(tmp_path):
    x, g, f = _sources()
    folder = tmp_path / "parts"
    key = {"method": "gradient", "steps": 4}
    first = Counting(_ascent(g, f), fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        explain_in_chunks(first, x, 1, batch_size=3, folder=folder, key=key)
    assert first.calls == [3, 3]
    assert sorted(p.name for p in folder.glob("part_*")) == [
        "part_00000.safetensors",
        "part_00001.safetensors",
    ]
    again = Counting(_ascent(g, f))
    resumed = explain_in_chunks(again, x, 1, batch_size=3, folder=folder, key=key)
    assert again.calls == [1]  # only the last chunk was left
    reference = explain_in_chunks(_ascent(g, f), x, 1, batch_size=3)
    _same(resumed, reference)  # the chunks read back are the chunks computed
    # a finished folder is read whole: nothing is computed again
    third = Counting(_ascent(g, f))
    _same(explain_in_chunks(third, x, 1, batch_size=3, folder=folder, key=key), reference)
    assert third.calls == []


def test_other_settings_or_inputs_start_over(tmp_path, caplog):
    x, g, f = _sources()
    base = {"key": {"steps": 4, "batch_size": 3}, "batch_size": 3}  # the CLI repeats it
    changes = [  # (change, images, target, what the warning names)
        ({"key": {"steps": 5, "batch_size": 3}}, x, 1, "(steps: 4 before, 5 now)"),
        ({"key": {"steps": 4, "batch_size": 3, "seed": 0}}, x, 1, "(seed: unset before, 0 now)"),
        ({}, x.flip(0), 1, "(the images or targets)"),  # other images
        # other chunks, named once though the caller's key repeats it
        (
            {"batch_size": 2, "key": {"steps": 4, "batch_size": 2}},
            x,
            1,
            "(batch_size: 3 before, 2 now)",
        ),
        ({}, x, torch.tensor([1, 1, 1, 1, 1, 1, 0]), "(the images or targets)"),
    ]
    for i, (change, inputs, target, named) in enumerate(changes):
        folder = tmp_path / f"parts{i}"
        explain_in_chunks(_ascent(g, f), x, 1, folder=folder, **base)
        caplog.clear()
        counting = Counting(_ascent(g, f))
        with caplog.at_level(logging.WARNING):
            explain_in_chunks(
                counting, inputs, target, folder=folder, foreign="restart", **{**base, **change}
            )
        assert sum(counting.calls) == 7, i  # every image computed again
        assert f"other inputs or settings {named}; starting over" in caplog.text, i
    stored = json.loads((tmp_path / "parts3" / "key.json").read_text())
    assert stored["batch_size"] == 2 and stored["n"] == 7 and stored["format"] == FORMAT


def test_a_damaged_or_foreign_chunk_is_computed_again(tmp_path, caplog):
    x, g, f = _sources()
    folder = tmp_path / "parts"
    reference = explain_in_chunks(_ascent(g, f), x, 1, batch_size=3, folder=folder)
    (folder / "part_00001.safetensors").write_bytes(b"cut short")  # e.g. a full disk
    foreign = tmp_path / "other"  # a chunk another call wrote, moved in by hand
    explain_in_chunks(_ascent(g, f), x, 1, batch_size=3, folder=foreign, key={"steps": 9})
    (foreign / "part_00002.safetensors").replace(folder / "part_00002.safetensors")
    counting = Counting(_ascent(g, f))
    with caplog.at_level(logging.WARNING):
        again = explain_in_chunks(counting, x, 1, batch_size=3, folder=folder)
    assert counting.calls == [3, 1]  # chunk 0 read back, chunks 1 and 2 computed again
    assert "cannot be read" in caplog.text and "written for other inputs" in caplog.text
    _same(again, reference)


def test_a_damaged_key_keeps_chunks_that_carry_the_runs_stamp(tmp_path, caplog):
    """An emptied key.json (a disk error, an edit) had its run's finished chunks deleted as
    another run's and every chunk computed again (session-54 resume audit); chunks that
    carry another run's stamp still start over, and so does the refusing form."""
    x, g, f = _sources()
    folder = tmp_path / "parts"
    with pytest.raises(KeyboardInterrupt):
        explain_in_chunks(Counting(_ascent(g, f), fail_at=2), x, 1, batch_size=3, folder=folder)
    (folder / "key.json").write_text("")
    again = Counting(_ascent(g, f))
    with caplog.at_level(logging.WARNING):
        resumed = explain_in_chunks(again, x, 1, batch_size=3, folder=folder, foreign="refuse")
    assert again.calls == [1] and "key.json cannot be read; its chunks carry" in caplog.text
    _same(resumed, explain_in_chunks(_ascent(g, f), x, 1, batch_size=3))
    other = tmp_path / "other"  # another run's chunks under a damaged key: not resumed
    explain_in_chunks(_ascent(g, f), x, 1, batch_size=3, folder=other, key={"steps": 9})
    (other / "key.json").write_text("{")
    counting = Counting(_ascent(g, f))
    with caplog.at_level(logging.WARNING):
        explain_in_chunks(counting, x, 1, batch_size=3, folder=other, foreign="refuse")
    assert counting.calls == [3, 3, 1] and "is missing or unreadable; starting over" in caplog.text


def test_a_chunk_of_the_same_run_copied_to_another_place_is_computed_again(tmp_path, caplog):
    # 7 images in chunks of 3: chunk 1 holds images 3-5. Copied over chunk 0 it carries the
    # same stamp (same call) but another `source`, so only the source check can refuse it:
    # chunk 0 (3 images) is computed again, chunks 1 and 2 are read back.
    x, g, f = _sources()
    folder = tmp_path / "parts"
    reference = explain_in_chunks(_ascent(g, f), x, 1, batch_size=3, folder=folder)
    (folder / "part_00000.safetensors").write_bytes(
        (folder / "part_00001.safetensors").read_bytes()
    )
    counting = Counting(_ascent(g, f))
    with caplog.at_level(logging.WARNING):
        again = explain_in_chunks(counting, x, 1, batch_size=3, folder=folder)
    assert counting.calls == [3]
    assert "part_00000.safetensors was written for other inputs" in caplog.text
    _same(again, reference)
    assert torch.equal(again.source, x)


def test_leftover_tmp_files_of_an_interrupted_write_are_removed(tmp_path):
    x, g, f = _sources(2)
    folder = tmp_path / "parts"
    folder.mkdir()
    # a chunk index this call never writes, so no write of its own replaces the file
    (folder / "part_00009.safetensors.tmp").write_bytes(b"half")
    explain_in_chunks(_ascent(g, f), x, 1, batch_size=3, folder=folder)
    assert list(folder.glob("*.tmp")) == []


def test_per_image_targets_follow_their_chunk(tmp_path):
    x, g, f = _sources(5)
    target = torch.tensor([1, 1, 0, 1, 0])
    res = explain_in_chunks(_ascent(g, f), x, target, batch_size=2)
    assert res.target.tolist() == target.tolist()
    # a list (a user's `y.tolist()`) is the same per-image target
    _same(explain_in_chunks(_ascent(g, f), x, target.tolist(), batch_size=2), res)


def test_a_numpy_integer_target_is_an_int_here_as_in_explain():
    """explain takes np.int64(1); explain_in_chunks once refused it as not an int."""
    np = pytest.importorskip("numpy")
    x, g, f = _sources(3)
    res = explain_in_chunks(_ascent(g, f), x, np.int64(1), batch_size=2)
    assert res.target.tolist() == [1, 1, 1]
    with pytest.raises(TypeError, match="`target` must be an int class"):
        explain_in_chunks(_ascent(g, f), x, 1.0, batch_size=2)


def test_every_field_survives_the_folder_nan_lambdas_and_masks_included(tmp_path):
    x, g, f = _sources(4)
    path = MonotonePath(g, f, steps=3, iterations=3, inversion_steps=5, oracle=f)

    class Marked:  # a NaN lambda (warm start kept) and an edit mask per image, as localised
        def explain(self, x, target):
            res = path.explain(x, target)
            lambdas = res.lambdas.clone()
            lambdas[0] = float("nan")
            masks = torch.rand(len(res), 1, 4, 4, generator=torch.Generator().manual_seed(0))
            return replace(res, lambdas=lambdas, edit_masks=masks)

    res = explain_in_chunks(Marked(), x, 1, batch_size=2, folder=tmp_path / "p")
    counting = Counting(Marked())
    again = explain_in_chunks(counting, x, 1, batch_size=2, folder=tmp_path / "p")
    assert counting.calls == []
    _same(again, res)
    assert res.lambdas.isnan().tolist() == [True, False, True, False]
    assert torch.equal(res.lambdas.isnan(), again.lambdas.isnan())
    assert torch.equal(res.lambdas.nan_to_num(), again.lambdas.nan_to_num())
    assert torch.equal(res.edit_masks, again.edit_masks)
    assert again.seconds == res.seconds and again.inversion.steps == 5


def test_bad_arguments_are_named(tmp_path):
    x, g, f = _sources(3)
    with pytest.raises(ValueError, match="`batch_size` must be"):
        explain_in_chunks(_ascent(g, f), x, 1, batch_size=0)
    # the classifier for the explainer: a bare AttributeError about `explain` before
    with pytest.raises(TypeError, match=r"`explainer` must have an `explain\(x, target\)` meth"):
        explain_in_chunks(f, x, 1)
    # the class itself: "explain() missing 1 required positional argument: 'target'" before
    with pytest.raises(TypeError, match=r"not the class GradientAscent: make one first, e.g."):
        explain_in_chunks(GradientAscent, x, 1)
    # the same rules and messages as the explainers' (resolve_target), before any chunk
    with pytest.raises(
        ValueError, match=r"`target` must be an int or an integer tensor of shape \(3,\)"
    ):
        explain_in_chunks(_ascent(g, f), x, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"`target` must be a class index in \[0, K - 1\], got -1"):
        explain_in_chunks(_ascent(g, f), x, -1)
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, C, H, W\)"):
        explain_in_chunks(_ascent(g, f), x[0], 1)
    with pytest.raises(ValueError, match="`x` must hold at least one image"):
        explain_in_chunks(_ascent(g, f), x[:0], 1)
    bad = x.clone()
    bad[2, 0, 0, 0] = float("nan")  # named by its row in x, before any chunk is computed
    with pytest.raises(ValueError, match=r"NaN or infinite values \(row 2 of 3\)"):
        explain_in_chunks(Counting(_ascent(g, f), fail_at=0), bad, 1, batch_size=2)
    with pytest.raises(ValueError, match="`target` must be an int or an integer tensor"):
        explain_in_chunks(_ascent(g, f), x, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="`target` must be an int class"):
        explain_in_chunks(_ascent(g, f), x, "healthy")
    with pytest.raises(TypeError, match="`batch_size` must be"):
        explain_in_chunks(_ascent(g, f), x, 1, batch_size=2.0)
    with pytest.raises(TypeError, match="`key` must hold JSON values"):
        explain_in_chunks(_ascent(g, f), x, 1, folder=tmp_path / "p", key={"f": f})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="`folder` must be a folder"):
        explain_in_chunks(_ascent(g, f), x, 1, folder=tmp_path / "file")


def test_concat_is_the_inverse_of_indexing():
    x, g, f = _sources(5)
    res = _ascent(g, f).explain(x, 1)
    back = concat([res[0:2], res[2:5]])
    _same(back, res)
    assert back.seconds == pytest.approx(2 * res.seconds)  # each slice keeps the batch's time
    with pytest.raises(ValueError, match="at least one"):
        concat([])
    with pytest.raises(TypeError, match=r"got one: pass \[result\]"):
        concat(res)  # read row by row, its seconds counted once per row
    with pytest.raises(TypeError, match="must hold TrajectoryResult objects, got Tensor"):
        concat([res.frames])
    path = MonotonePath(g, f, steps=4, iterations=2, inversion_steps=5, oracle=f).explain(x, 1)
    with pytest.raises(ValueError, match="differ in having lambdas"):
        concat([res, path])
    other = _ascent(g, f)
    other.steps = 3
    with pytest.raises(ValueError, match=r"result 1 has levels \[0.0, 0.333"):
        concat([res, other.explain(x, 1)])
    with pytest.raises(ValueError, match="frames of result 1 has per-image shape, dtype"):
        concat([res, res.to(torch.float64)])


def _start_notices(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "start in the target class" in r.getMessage()]


def test_notices_name_rows_of_the_whole_input_once_chunks_read_back_included(tmp_path, caplog):
    x, g, f = _sources()
    x[[4, 6]] = -x[[4, 6]]  # the linear toy's class flips with the image's sign
    explainer = _ascent(g, f)
    assert explainer.explain(x[[4, 6]], 1).already_in_target.all()
    caplog.clear()
    caplog.set_level(logging.WARNING)
    folder = tmp_path / "parts"
    with pytest.raises(KeyboardInterrupt):
        explain_in_chunks(Counting(explainer, fail_at=2), x, 1, batch_size=3, folder=folder)
    assert _start_notices(caplog) == []  # nothing said about a run that did not finish
    res = explain_in_chunks(explainer, x, 1, batch_size=3, folder=folder)  # chunks 0, 1 read back
    assert res.already_in_target.nonzero().flatten().tolist() == [4, 6]
    (notice,) = _start_notices(caplog)
    assert notice.startswith("2 of 7 paths") and "rows [4, 6]" in notice


def test_an_input_without_dark_pixels_is_warned_about_once(caplog):
    x, g, f = _sources()
    x = (x - x.min()).clamp(max=1.0)  # no pixel below 0
    caplog.set_level(logging.WARNING)
    explain_in_chunks(_ascent(g, f), x, 1, batch_size=3)
    (notice,) = [r.getMessage() for r in caplog.records if "is below 0" in r.getMessage()]
    assert notice.startswith("no pixel of the 7 input images")


class Softmaxed(torch.nn.Module):
    """The toy classifier with a final softmax: cfx warns that its outputs look like
    probabilities."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).softmax(1)


def test_a_notice_about_the_models_is_given_once_per_run(caplog):
    x, g, f = _sources()
    explainer = GradientAscent(g, Softmaxed(f), steps=2, max_iter=3, inversion_steps=0)
    caplog.set_level(logging.WARNING)
    explain_in_chunks(explainer, x, 1, batch_size=3)  # three chunks
    said = [r for r in caplog.records if "look like probabilities" in r.getMessage()]
    assert len(said) == 1


def test_another_explainer_or_setting_in_the_same_folder_starts_over(tmp_path, caplog):
    """Without a `key`, Option 2 in a folder of Option 1's chunks got Option 1's result back
    ("resuming: 3 of 3 chunks were finished by an earlier run"); so did another margin."""
    x, g, f = _sources(5)
    for i, (other, named) in enumerate(
        (
            (MonotonePath(g, f, steps=4, iterations=2), "(explainer.GradientAscent; explainer.M"),
            (replace_margin(_ascent(g, f), 0.95), "(margin: 0.99 before, 0.95 now)"),
        )
    ):
        first = explain_in_chunks(_ascent(g, f), x, 1, batch_size=2, folder=tmp_path / str(i))
        counting = Counting(other)
        with caplog.at_level(logging.WARNING):
            with pytest.raises(ForeignRunError, match=re.escape(named)):  # the default
                explain_in_chunks(counting, x, 1, batch_size=2, folder=tmp_path / str(i))
            assert counting.calls == []  # refused before any work, the chunks kept
            res = explain_in_chunks(
                counting, x, 1, batch_size=2, folder=tmp_path / str(i), foreign="restart"
            )
        assert sum(counting.calls) == 5 and named in caplog.text
        assert not torch.equal(res.probs, first.probs)
        caplog.clear()
    again = Counting(replace_margin(_ascent(g, f), 0.95))  # the same explainer: read back
    explain_in_chunks(again, x, 1, batch_size=2, folder=tmp_path / "1")
    assert again.calls == []


def replace_margin(explainer, margin):
    explainer.margin = margin
    return explainer


def test_a_wrapped_explainer_still_gets_the_short_of_margin_notice(caplog):
    """explain_in_chunks held the explainer's own notice and gave it again with the wrapper's
    margin, which a wrapper has not: the short paths went unnamed. A custom explainer whose
    `margin` is no probability (1.0) crashed after the work."""
    g, f = LinearGenerator(), LogisticClassifier()
    u = g.A.detach().T @ f.w.detach()
    offsets = torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.1]])
    x = g.decode(0.5 * (u / u.norm())[None] + offsets).detach()  # p = 0.48, 0.49, 0.47
    short = GradientAscent(g, f, steps=4, eta=0.05, max_iter=3, inversion_steps=0)
    with caplog.at_level(logging.WARNING):
        res = explain_in_chunks(Counting(short), x, 1, batch_size=2)
    assert res.success.tolist() == [True, True, False]  # 3 steps of 0.05 reach p ~ 0.51
    assert "1 of 3 paths end outside the target class (rows [2])" in caplog.text
    assert "2 of 3 paths end in the target class but short of the margin 0.99" in caplog.text
    assert "rows [0, 1]" in caplog.text

    class OddMargin(Counting):
        margin = 1.0

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        explain_in_chunks(OddMargin(short), x, 1, batch_size=2)  # no ZeroDivisionError


def test_paths_that_reach_the_margin_are_not_called_short(caplog):
    """The short-of-margin notice reads the last frames' probabilities: every source starts
    well inside class 0 (frame 0 far below the margin) and every path ends past 0.99, so
    nothing is short."""
    x, g, f = _sources(5)
    with caplog.at_level(logging.WARNING):
        res = explain_in_chunks(_ascent(g, f), x, 1, batch_size=2)
    assert bool(res.success.all()) and float(res.probs[:, -1].min()) >= 0.99
    assert float(res.probs[:, 0].max()) < 0.5  # the premise: the first frames are far below
    assert "short of the margin" not in caplog.text
    assert "end outside" not in caplog.text


class _UnitGenerator(LinearGenerator):
    """The toy generator ending in a sigmoid: G(0) = 0.5 everywhere, no pixel below 0."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().decode(z))


def test_the_generator_range_notice_is_given_once_per_run(caplog):
    """The generator notice (tagged cfx_models, logged by cfx.inversion) is the same for every
    chunk: three chunks must give it once, as the other notices about the models."""
    g, f = _UnitGenerator(), LogisticClassifier()
    x = torch.full((5, 1, 4, 4), 0.5)
    x[:, :, 0, 0] = -0.5
    explainer = GradientAscent(g, f, steps=2, max_iter=5, inversion_steps=1)
    with caplog.at_level(logging.WARNING):
        explain_in_chunks(explainer, x, 1, batch_size=2)  # three chunks
    assert caplog.text.count("the generator's decoded images have no pixel below 0") == 1


class _AttrDict(dict):
    """A config object whose attribute lookup is its item lookup (a KeyError, not an
    AttributeError, for a missing name): ``getattr(cfg, "explain", None)`` raises."""

    __getattr__ = dict.__getitem__


class _ClfWithExplain:
    """A classifier wrapper (no nn.Module) with an ``explain`` method of its own."""

    def __init__(self, net) -> None:
        self.net = net

    def __call__(self, x):
        return self.net(x)

    def explain(self, x):
        return x


class _GenAdapter:
    """A generator adapted by an object with decode/encode, not callable, not a module."""

    def __init__(self, g) -> None:
        self.g = g
        self.latent_shape = g.latent_shape

    def decode(self, z):
        return self.g.decode(z)


class _SlottedAscent:
    __slots__ = ("inner_steps", "margin")

    def __init__(self, margin, steps) -> None:
        self.margin, self.inner_steps = margin, steps

    def explain(self, x, target):
        raise AssertionError("not called")


def test_the_key_reads_through_odd_attributes_and_model_wrappers():
    """Review findings: a config attribute whose lookup raises KeyError crashed the run after
    all the work (the margin lookup probed every attribute); a classifier wrapper with an
    explain method, taken for a wrapped explainer, hid every setting; a generator adapter
    was keyed by its type alone (retrained weights went unnoticed); slotted settings were
    left out."""
    from cfx.trajectory.identity import explainer_key

    x, g, f = _sources(3)
    e = _ascent(g, f)
    e.config = _AttrDict(run="a")
    res = explain_in_chunks(e, x, 1, batch_size=2)  # no KeyError
    assert len(res) == 3 and explainer_key(e)["GradientAscent"]["config"] == {"run": "a"}

    wrapped = [GradientAscent(g, _ClfWithExplain(f), margin=m) for m in (0.9, 0.6)]
    assert explainer_key(wrapped[0]) != explainer_key(wrapped[1])

    other = LinearGenerator(seed=5)
    adapters = [GradientAscent(_GenAdapter(gen), f, steps=3) for gen in (g, other)]
    keys = [explainer_key(a)["GradientAscent"]["generator"] for a in adapters]
    assert keys[0] != keys[1] and keys[0][0] == "<_GenAdapter>"

    assert explainer_key(_SlottedAscent(0.9, 3)) == {
        "_SlottedAscent": {"inner_steps": 3, "margin": 0.9}
    }


def test_refuse_keeps_another_runs_chunks_and_names_what_changed(tmp_path):
    """foreign="refuse" (the command line's choice): a rerun with other settings raised
    nothing and deleted the finished chunks; now they stay and the change is named once
    (the explainer's settings and the caller's key both hold `steps`)."""
    from cfx.errors import ForeignRunError
    from cfx.trajectory.chunks import finished_chunks

    x, g, f = _sources(3)
    folder = tmp_path / "parts"
    explain_in_chunks(_ascent(g, f), x, 1, folder=folder, batch_size=2, key={"steps": 4})
    other = GradientAscent(g, f, steps=5, eta=0.05, max_iter=400, inversion_steps=5, oracle=f)
    with pytest.raises(ForeignRunError) as err:
        explain_in_chunks(
            other, x, 1, folder=folder, batch_size=2, key={"steps": 5}, foreign="refuse"
        )
    assert f"{folder} holds 2 finished chunks of a run with other inputs or settings" in str(
        err.value
    )
    assert str(err.value).count("steps: 4 before, 5 now") == 1
    assert len(finished_chunks(folder)) == 2  # kept
    with pytest.raises(ValueError, match=r"`foreign` must be 'restart' or 'refuse', got 'keep'"):
        explain_in_chunks(other, x, 1, folder=folder, foreign="keep")  # type: ignore[arg-type]
    # chunks of another cfx version: no arguments resume them, so they are not refused
    stored = json.loads((folder / "key.json").read_text())
    (folder / "key.json").write_text(json.dumps(stored | {"cfx": "0.0.1"}))
    res = explain_in_chunks(
        other, x, 1, folder=folder, batch_size=2, key={"steps": 5}, foreign="refuse"
    )
    assert len(res) == 3 and res.steps == 5


def test_the_resume_and_refuse_messages_count_chunks_right(tmp_path, caplog):
    """3 images in chunks of 2 are 2 chunks (a count rounded down says 1), and one finished
    chunk is "1 finished chunk", not "1 finished chunks"."""
    from cfx.errors import ForeignRunError

    x, g, f = _sources(3)
    folder = tmp_path / "parts"
    first = Counting(_ascent(g, f), fail_at=1)
    with pytest.raises(KeyboardInterrupt):
        explain_in_chunks(first, x, 1, batch_size=2, folder=folder, key={"steps": 4})
    with pytest.raises(ForeignRunError, match="holds 1 finished chunk of a run with other"):
        explain_in_chunks(
            _ascent(g, f), x, 1, batch_size=2, folder=folder, key={"steps": 5}, foreign="refuse"
        )
    with caplog.at_level(logging.WARNING):
        explain_in_chunks(_ascent(g, f), x, 1, batch_size=2, folder=folder, key={"steps": 4})
    assert "resuming: 1 of 2 batches was finished by an earlier run" in caplog.text


def test_the_same_oracle_and_trained_size_notices_are_given_once_per_run(caplog):
    """They are notices about the models, the same for every chunk: with the classifier
    passed as its own oracle and a recorded training size other than the frames', each
    chunk would say both again."""
    from types import SimpleNamespace

    x, g, f = _sources(3)
    f.config = SimpleNamespace(image_size=(32, 32))
    explainer = GradientAscent(g, f, steps=2, max_iter=3, inversion_steps=0, oracle=f)
    caplog.set_level(logging.WARNING)
    explain_in_chunks(explainer, x, 1, batch_size=1)  # three chunks
    assert caplog.text.count("`oracle` is the classifier being explained") == 1
    assert caplog.text.count("the classifier was trained on 32x32 images") == 1
    assert caplog.text.count("the oracle was trained on 32x32 images") == 1


def test_refuse_starts_over_chunks_no_arguments_could_resume(tmp_path):
    """Chunks of another chunk layout (FORMAT), or beside a missing key.json, cannot be
    resumed by any rerun: refusing them would tell the user to rerun "with those" settings,
    which cannot help, so they are computed again as without refuse."""
    x, g, f = _sources(3)
    for i, damage in enumerate(("format", "key")):
        folder = tmp_path / f"parts{i}"
        explain_in_chunks(_ascent(g, f), x, 1, folder=folder, batch_size=2, key={"steps": 4})
        if damage == "format":
            stored = json.loads((folder / "key.json").read_text())
            (folder / "key.json").write_text(json.dumps(stored | {"format": FORMAT - 1}))
        else:  # (and the chunks another run's: this run's own are resumed, as above)
            (folder / "key.json").unlink()
        counting = Counting(_ascent(g, f))
        rerun = {"steps": 4 if damage == "format" else 5}
        res = explain_in_chunks(
            counting, x, 1, folder=folder, batch_size=2, key=rerun, foreign="refuse"
        )
        assert sum(counting.calls) == 3 and len(res) == 3, damage  # every image again
        assert json.loads((folder / "key.json").read_text())["format"] == FORMAT


def test_chunks_from_before_lpips_was_cached_are_another_runs(tmp_path, monkeypatch):
    """The explainers invert with perceptual="auto": LPIPS once its weights are in the torch
    hub cache, the generator's encoder before. A run interrupted offline and resumed after
    the weights arrived mixed chunks of the two losses under one key."""
    import cfx.trajectory.chunks as chunks
    from cfx.errors import ForeignRunError

    x, g, f = _sources(3)
    folder = tmp_path / "parts"
    monkeypatch.setattr(chunks, "lpips_available", lambda: False)
    explain_in_chunks(_ascent(g, f), x, 1, folder=folder, batch_size=2)
    stored = json.loads((folder / "key.json").read_text())
    assert stored["inversion_perceptual"] == "not lpips"
    monkeypatch.setattr(chunks, "lpips_available", lambda: True)
    with pytest.raises(ForeignRunError, match="the inversion's perceptual loss"):
        explain_in_chunks(_ascent(g, f), x, 1, folder=folder, batch_size=2, foreign="refuse")
    monkeypatch.setattr(chunks, "lpips_available", lambda: False)  # as before: resumed
    res = explain_in_chunks(_ascent(g, f), x, 1, folder=folder, batch_size=2, foreign="refuse")
    assert len(res) == 3
    # a key from before the entry existed says nothing of the loss: its chunks resume, with
    # LPIPS cached or not (they were refused, and no arguments could resume them)
    del stored["inversion_perceptual"]
    (folder / "key.json").write_text(json.dumps(stored))
    monkeypatch.setattr(chunks, "lpips_available", lambda: True)
    res = explain_in_chunks(_ascent(g, f), x, 1, folder=folder, batch_size=2, foreign="refuse")
    assert len(res) == 3


def test_numpy_inversion_steps_and_key_values_are_written_and_read_back(tmp_path):
    """inversion_steps=np.int64(3) worked in explain and failed writing the first chunk
    ("Object of type int64 is not JSON serializable"), after computing it; a key of numpy
    values was refused though save_result's setup takes them."""
    import numpy as np

    from cfx.inversion import invert

    x, g, f = _sources(4)
    assert type(invert(g, x, steps=np.int64(3)).steps) is int
    explainer = GradientAscent(g, f, steps=4, eta=0.05, max_iter=400, inversion_steps=np.int64(3))
    key = {"steps": np.int64(4), "levels": np.array([0.5])}
    first = explain_in_chunks(explainer, x, 1, batch_size=2, folder=tmp_path, key=key)
    again = explain_in_chunks(explainer, x, 1, batch_size=2, folder=tmp_path, key=key)
    assert torch.equal(first.frames, again.frames) and again.inversion.steps == 3
