"""The README's Python examples run as written (sizes cut for CI) and say what they return.

Each ```python block is executed in order in one namespace, as a reader pasting them would;
block 6 loads a diffusers VAE from "path/to/vae", here a tiny one saved with save_pretrained;
block 3 trains into "runs/mine", here a temporary folder.
"""

import re
import textwrap
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
# brain slices, epochs and saliency images: the examples' sizes are for a real run
CUT = {
    "20_000": "400",
    "2_000": "400",
    "epochs=8": "epochs=2",
    "tumour_slices(16)": "tumour_slices(6)",
    "[:4]  # four tumour slices": "[:2]  # two tumour slices",
    # the default 100 inversion steps and walk to the 0.99 margin took 14 s on four slices
    "GradientAscent(vae, clf)": "GradientAscent(vae, clf, max_iter=10, inversion_steps=5)",
}


def _blocks() -> list[str]:
    found = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    blocks = []
    for block in found:
        code = textwrap.dedent(re.sub(r"^ +$", "", block, flags=re.M))
        for old, new in CUT.items():
            code = code.replace(old, new)
        blocks.append(code)
    return blocks


@pytest.fixture(scope="module")
def after(tmp_path_factory) -> list[dict[str, object]]:
    """The names defined after each block (``after[i]`` for block ``i + 1``)."""
    from tests.models.tiny_vae import tiny_vae

    folder = tmp_path_factory.mktemp("readme")
    vae_folder = folder / "vae"
    tiny_vae(size=64).save_pretrained(vae_folder)  # brain-cnn's 1 x 64 x 64 slices
    ns: dict[str, object] = {}
    snapshots = []
    for i, code in enumerate(_blocks(), 1):
        code = code.replace("path/to/vae", str(vae_folder))
        code = code.replace("runs/mine", str(folder / "mine"))
        exec(compile(code, f"README.md python block {i}", "exec"), ns)
        snapshots.append(dict(ns))
    return snapshots


def test_the_readme_has_the_examples_this_test_runs():
    blocks = _blocks()
    assert len(blocks) == 9, "a block was added or removed: check it here too"
    assert "path/to/vae" in blocks[5]
    text = README.read_text(encoding="utf-8")
    assert [old for old in CUT if old not in text] == []  # a cut that no longer applies


def test_brain_data(after):
    train, test = after[0]["train"], after[0]["test"]
    assert tuple(train.images.shape) == (400, 1, 64, 64) and train.images.dtype == torch.float32
    assert float(train.images.min()) >= -1 and float(train.images.max()) <= 1
    assert train.labels.dtype == torch.int64 and float(train.labels.float().mean()) == 0.5
    assert train.masks.shape == train.brain_masks.shape == (400, 1, 64, 64)
    assert train.masks.dtype == torch.bool and train.tags.dtype == torch.bool
    assert 0.3 < float(test.tags.float().mean()) < 0.7  # "marker independent"


def test_german_credit(after):
    data = after[1]["data"]
    assert data.X.shape == (1000, 20) and set(data.y.unique()) == {0, 1}


def test_training_a_classifier_on_your_tensors(after):
    ns = after[2]
    report, model, mine = ns["report"], ns["model"], ns["mine"]
    assert report.steps == 2 * 7  # 2 epochs of 400 slices (cut for CI) in batches of 64
    assert [row["epoch"] for row in report.history] == [1, 2]
    assert 0 <= report.history[-1]["val_acc"] <= 1  # scored on `val` (14 steps learn little)
    x = after[0]["test"].images[:8]
    with torch.no_grad():
        assert torch.equal(mine(x), model(x))  # the saved folder loads as the trained model


def test_a_monotone_path(after):
    res = after[3]["res"]
    assert tuple(res.frames.shape) == (2, 11, 1, 64, 64)  # four in the README
    assert tuple(res.probs.shape) == tuple(res.oracle_probs.shape) == (2, 11)
    assert bool((res.probs.diff(dim=1) > 0).all())  # "climbing through t/T"


def test_an_inversion_passed_as_latents(after):
    inv, res = after[4]["inv"], after[4]["res"]
    assert tuple(inv.psnr.shape) == (2,) and inv.perceptual in ("lpips", "encoder", "none")
    assert torch.equal(res.latents[:, 0], inv.latents)  # the path starts at the given latents


def test_a_diffusers_vae(after):
    res = after[5]["res"]
    assert res.frames.shape[0] == 2 and tuple(res.frames.shape[2:]) == (1, 64, 64)


def test_loan_recourse(after):
    res = after[6]["res"]
    assert res.status == "recourse" and 1 <= len(res.counterfactuals) <= 3  # k=3
    assert res.plan.startswith("change the checking account from")  # as the comment shows


def test_your_own_schema(after):
    schema = after[7]["schema"]
    assert schema.names == ("income", "age", "housing") and schema.target == "approved"
    assert [f.mutable for f in schema.features] == [True, False, True]


def test_saliency(after):
    ns = after[8]
    assert tuple(ns["maps"].shape) == (6, 1, 64, 64)  # 16 in the README
    method, dice = ns["table"].best("dice")
    assert f"| {method} |" in ns["table"].to_markdown() and 0 < dice <= 1
    assert tuple(ns["attack"].label_kept.shape) == (4,)
