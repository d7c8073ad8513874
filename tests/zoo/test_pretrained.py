import json

import pytest
import torch

from cfx.errors import CheckpointError
from cfx.models.brain_gan import BrainGAN, BrainGANConfig
from cfx.zoo.pretrained import sha256


@pytest.fixture
def small():
    return BrainGAN(BrainGANConfig(latent_dim=8, width=4)).eval()


def test_round_trip_reproduces_outputs_exactly(small, tmp_path):
    folder = small.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = BrainGAN.from_pretrained(folder)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(small.decode(z), loaded.decode(z))
        assert torch.equal(small.encode(x), loaded.encode(x))
    assert loaded.config == small.config
    assert not loaded.training


def test_sha256_checked(small, tmp_path):
    folder = small.save_pretrained(tmp_path / "m")
    good = sha256(folder / "model.safetensors")
    BrainGAN.from_pretrained(folder, expected_sha256=good)
    with pytest.raises(CheckpointError, match="sha256"):
        BrainGAN.from_pretrained(folder, expected_sha256="0" * 64)


def test_pickled_checkpoint_refused(small, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"latent_dim": 8, "width": 4}))
    torch.save(small.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickled"):
        BrainGAN.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="pickled"):
        BrainGAN.from_pretrained(folder / "pytorch_model.bin")


def test_wrong_class_and_mismatched_weights(small, tmp_path):
    folder = small.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["width"] = 8  # weights no longer fit
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match"):
        BrainGAN.from_pretrained(folder)
    cfg["_class_name"] = "SomethingElse"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="SomethingElse"):
        BrainGAN.from_pretrained(folder)


def test_missing_folder_is_clear(tmp_path):
    with pytest.raises(CheckpointError, match="neither a folder"):
        BrainGAN.from_pretrained(tmp_path / "nope")


def test_hub_id_goes_through_hub_download(small, tmp_path, monkeypatch):
    """A hub id is fetched with huggingface_hub, then loaded like a local folder."""
    folder = small.save_pretrained(tmp_path / "cache")
    calls = []

    def fake_download(repo_id, filename):
        calls.append((repo_id, filename))
        return str(folder / filename)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = BrainGAN.from_pretrained("someone/brain-gan")
    assert calls == [
        ("someone/brain-gan", "config.json"),
        ("someone/brain-gan", "model.safetensors"),
    ]
    assert loaded.config == small.config


def test_from_pretrained_checks_the_folders_card_and_digests_in_capitals(small, tmp_path):
    """from_pretrained skipped the card the zoo's loaders check, and refused the right
    digest in capitals (as PowerShell's Get-FileHash prints it) as corrupt."""
    folder = small.save_pretrained(tmp_path / "m")
    good = sha256(folder / "model.safetensors")
    BrainGAN.from_pretrained(folder, expected_sha256=good.upper())
    (folder / "README.md").write_text(f"sha256 of model.safetensors: {good}\n")
    BrainGAN.from_pretrained(folder)
    (folder / "README.md").write_text("sha256 of model.safetensors: " + "0" * 64 + "\n")
    with pytest.raises(CheckpointError, match="sha256"):
        BrainGAN.from_pretrained(folder)
    BrainGAN.from_pretrained(folder, expected_sha256=good)  # given: it decides
    with pytest.raises(ValueError, match="`expected_sha256` must be 64 hex digits or None"):
        BrainGAN.from_pretrained(folder, expected_sha256="abc")


def test_a_damaged_config_is_a_checkpoint_error_naming_it_and_a_utf16_card_is_read(small, tmp_path):
    """from_pretrained raised JSONDecodeError / 'pop expected at most 1 argument' / a bare
    UnicodeDecodeError for a damaged config.json (load_classifier named the file); a card
    saved as UTF-16 (PowerShell 5's `>`) refused the model with a UnicodeDecodeError, and
    its digest must still be checked (session-53 audit)."""
    from cfx.zoo import load_generator

    folder = small.save_pretrained(tmp_path / "m")
    config = folder / "config.json"
    good_config = config.read_text()
    for bad, match in (
        (b"{not json", "is not valid JSON"),
        (b"\xe9", "is not valid JSON"),
        (b"[1, 2]", "must hold a JSON object of config fields, got a list"),
    ):
        config.write_bytes(bad)
        with pytest.raises(CheckpointError, match=match) as caught:
            BrainGAN.from_pretrained(folder)
        assert str(config) in str(caught.value)
    config.write_text(good_config)
    card = folder / "README.md"
    good = sha256(folder / "model.safetensors")
    card.write_text(f"sha256 of model.safetensors: {good}\n", encoding="utf-16")
    BrainGAN.from_pretrained(folder)
    load_generator(folder)
    card.write_text("sha256 of model.safetensors: " + "0" * 64 + "\n", encoding="utf-16")
    with pytest.raises(CheckpointError, match="sha256"):
        BrainGAN.from_pretrained(folder)
