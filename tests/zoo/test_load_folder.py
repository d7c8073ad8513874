"""load_classifier / load_generator on folders written by save_pretrained and on hub ids."""

import json

import pytest
import torch

from cfx.errors import CheckpointError, UnknownNameError
from cfx.models.brain_gan import BrainGAN, BrainGANConfig
from cfx.models.classifiers import BrainCNN, BrainCNNConfig
from cfx.training.init import reset_parameters
from cfx.zoo import describe, load_classifier, load_generator
from cfx.zoo.pretrained import sha256


def _cnn(seed: int = 0) -> BrainCNN:
    model = BrainCNN(BrainCNNConfig(width=4, blocks=2))
    reset_parameters(model, torch.Generator().manual_seed(seed))
    return model.eval()


def _images() -> torch.Tensor:
    return torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_a_model_folder_and_its_run_folder_load_the_saved_classifier(tmp_path):
    model = _cnn()
    model.save_pretrained(tmp_path / "run" / "model")  # the layout `cfx train --out run` writes
    x = _images()
    with torch.no_grad():
        want = model(x)
    for where in (tmp_path / "run" / "model", tmp_path / "run", str(tmp_path / "run")):
        loaded = load_classifier(where)
        assert isinstance(loaded, BrainCNN) and not loaded.training
        assert not any(p.requires_grad for p in loaded.parameters())
        with torch.no_grad():
            assert torch.equal(loaded(x), want)
    source = describe(tmp_path / "run")
    assert source.folder == tmp_path / "run" / "model" and source.role == "classifier"
    assert source.expected_sha256 is None  # no model card, nothing to check against


def test_a_folder_is_checked_against_its_model_card(tmp_path):
    folder = _cnn().save_pretrained(tmp_path / "m")
    digest = sha256(folder / "model.safetensors")
    (folder / "README.md").write_text(f"# my cnn\n\nsha256: {digest}\n")
    assert describe(folder).expected_sha256 == digest
    load_classifier(folder)
    _cnn(seed=1).save_pretrained(folder)  # other weights under the same card
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(folder)


def test_a_folder_of_the_wrong_role_is_named(tmp_path):
    cnn = _cnn().save_pretrained(tmp_path / "cnn")
    gan = BrainGAN(BrainGANConfig(latent_dim=8, width=4)).save_pretrained(tmp_path / "gan")
    with pytest.raises(UnknownNameError, match="is a classifier; use load_classifier"):
        load_generator(cnn)
    with pytest.raises(UnknownNameError, match="is a generator; use load_generator"):
        load_classifier(gan)
    assert isinstance(load_generator(gan), BrainGAN)


def test_unknown_architectures_names_and_missing_files_are_clear(tmp_path):
    folder = _cnn().save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "_class_name": "ResNet50"}))
    with pytest.raises(CheckpointError, match=r"holds a 'ResNet50'; cfx loads .*BrainCNN"):
        load_classifier(folder)
    del config["_class_name"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not name its architecture"):
        load_classifier(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_classifier(folder)
    with pytest.raises(UnknownNameError, match=r"unknown zoo model 'resnet50'.*a folder written"):
        load_classifier("resnet50")
    with pytest.raises(UnknownNameError, match="unknown zoo model"):
        load_classifier(tmp_path / "a" / "b" / "c")  # neither a folder nor 'owner/name'
    # a missing folder next to existing ones is a typo, not a hub id to fetch
    with pytest.raises(CheckpointError, match=r"no folder .*not read as a hub id"):
        load_classifier(tmp_path / "typo")


def test_a_hub_id_is_fetched_and_an_offline_fetch_is_named(tmp_path, monkeypatch):
    folder = _cnn().save_pretrained(tmp_path / "cache")
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename):
        calls.append((repo_id, filename))
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert isinstance(load_classifier("someone/brain-cnn"), BrainCNN)
    assert calls == [
        ("someone/brain-cnn", "config.json"),
        ("someone/brain-cnn", "model.safetensors"),
    ]

    def offline(repo_id, filename):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(CheckpointError, match=r"could not be fetched from the hub.*no network"):
        load_classifier("someone/brain-cnn")
