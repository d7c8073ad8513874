"""Every shipped zoo model loads, matches the sha256 in its card and runs a forward pass."""

import pytest
import torch

from cfx.errors import CheckpointError, UnknownNameError
from cfx.zoo import ZOO, card_sha256, load_classifier, load_generator, model_folder
from cfx.zoo.pretrained import sha256

X = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("name", sorted(ZOO))
def test_model_loads_matches_card_and_runs(name):
    folder = model_folder(name)
    assert sha256(folder / "model.safetensors") == card_sha256(folder)
    assert (folder / "model.safetensors").stat().st_size < 20e6  # keep the zoo light
    role = ZOO[name].role
    assert role in ("generator", "classifier", "segmenter")
    assert (role == "generator") == (ZOO[name].kind == "generators")
    if role == "generator":
        g = load_generator(name)
        z = g.encode(X)
        assert z.shape == (2, *g.latent_shape)
        x = g.decode(z)
        assert x.shape == X.shape and float(x.abs().max()) <= 1.0
    else:
        m = load_classifier(name)
        out = m(X)
        expected = (2, 1, 64, 64) if role == "segmenter" else (2, 2)  # mask logits / classes
        assert out.shape == expected and torch.isfinite(out).all()
        assert not m.training
        assert not any(p.requires_grad for p in m.parameters())


def test_changed_weights_are_refused(tmp_path, monkeypatch):
    import shutil

    src = model_folder("brain-cnn")
    dst = tmp_path / "classifiers" / "brain-cnn"
    shutil.copytree(src, dst)
    data = bytearray((dst / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # flip one byte of the last weight
    (dst / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("CFX_ZOO", str(tmp_path))
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier("brain-cnn")


def test_unknown_and_wrong_kind_names():
    with pytest.raises(UnknownNameError, match="expected one of"):
        load_classifier("resnet50")
    with pytest.raises(UnknownNameError, match="use load_generator"):
        load_classifier("brain-gan")
    with pytest.raises(UnknownNameError, match="use load_classifier"):
        load_generator("brain-cnn")
