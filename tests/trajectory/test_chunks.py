import json
import logging

import pytest
import torch

from cfx.trajectory import GradientAscent, MonotonePath, concat, explain_in_chunks
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
    folder = tmp_path / "parts"
    explain_in_chunks(_ascent(g, f), x, 1, batch_size=3, folder=folder, key={"steps": 4})
    changes = [
        ({"key": {"steps": 5}}, x),  # other settings
        ({"key": {"steps": 4}}, x.flip(0)),  # other images
        ({"key": {"steps": 4}, "batch_size": 2}, x),  # other chunks
    ]
    for kwargs, inputs in changes:
        caplog.clear()
        counting = Counting(_ascent(g, f))
        options = {"batch_size": 3, **kwargs}
        with caplog.at_level(logging.WARNING):
            explain_in_chunks(counting, inputs, 1, folder=folder, **options)
        assert sum(counting.calls) == 7, kwargs  # every image computed again
        assert "other inputs or settings; starting over" in caplog.text
    stored = json.loads((folder / "key.json").read_text())
    assert stored["batch_size"] == 2 and stored["n"] == 7


def test_per_image_targets_follow_their_chunk(tmp_path):
    x, g, f = _sources(5)
    target = torch.tensor([1, 1, 0, 1, 0])
    res = explain_in_chunks(_ascent(g, f), x, target, batch_size=2)
    assert res.target.tolist() == target.tolist()


def test_monotone_results_keep_their_lambdas_through_the_folder(tmp_path):
    x, g, f = _sources(4)
    path = MonotonePath(g, f, steps=3, iterations=3, inversion_steps=0, warm_start_iter=200)
    res = explain_in_chunks(path, x, 1, batch_size=2, folder=tmp_path / "p")
    again = explain_in_chunks(Counting(path), x, 1, batch_size=2, folder=tmp_path / "p")
    assert res.lambdas is not None and again.lambdas is not None
    assert torch.equal(res.lambdas.isnan(), again.lambdas.isnan())
    assert torch.equal(res.lambdas.nan_to_num(), again.lambdas.nan_to_num())


def test_bad_arguments_are_named(tmp_path):
    x, g, f = _sources(3)
    with pytest.raises(ValueError, match="`batch_size` must be"):
        explain_in_chunks(_ascent(g, f), x, 1, batch_size=0)
    with pytest.raises(ValueError, match="`target` must be one class or one per image"):
        explain_in_chunks(_ascent(g, f), x, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"`x` must be a batch \(B, C, H, W\)"):
        explain_in_chunks(_ascent(g, f), x[0], 1)
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
    path = MonotonePath(g, f, steps=4, iterations=2, inversion_steps=5, oracle=f).explain(x, 1)
    with pytest.raises(ValueError, match="differ in having lambdas"):
        concat([res, path])
    other = _ascent(g, f)
    other.steps = 3
    with pytest.raises(ValueError, match="other levels"):
        concat([res, other.explain(x, 1)])
