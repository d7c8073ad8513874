"""load_classifier / load_generator on folders written by save_pretrained and on hub ids."""

import json
import logging
from pathlib import Path

import pytest
import torch

from cfx.errors import CheckpointError, UnknownNameError
from cfx.models.brain_gan import BrainGAN, BrainGANConfig
from cfx.models.classifiers import BrainCNN, BrainCNNConfig
from cfx.training.init import reset_parameters
from cfx.zoo import load_classifier, load_generator, model_source
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
    source = model_source(tmp_path / "run")
    assert source.folder == tmp_path / "run" / "model" and source.role == "classifier"
    assert source.expected_sha256 is None  # no model card, nothing to check against


def test_a_folder_is_checked_against_its_model_card(tmp_path):
    folder = _cnn().save_pretrained(tmp_path / "m")
    digest = sha256(folder / "model.safetensors")
    (folder / "README.md").write_text(f"# my cnn\n\nsha256: {digest}\n")
    assert model_source(folder).expected_sha256 == digest
    load_classifier(folder)
    _cnn(seed=1).save_pretrained(folder)  # other weights under the same card
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(folder)


def test_other_digests_in_a_card_are_not_taken_for_the_weights(tmp_path):
    folder = _cnn().save_pretrained(tmp_path / "m")
    digest = sha256(folder / "model.safetensors")
    prose = f"Trained on data with sha256 {'a' * 64}.\n"
    (folder / "README.md").write_text(prose)
    assert model_source(folder).expected_sha256 is None
    load_classifier(folder)  # was refused as "corrupt or changed"
    (folder / "README.md").write_text(prose + f"- sha256 of model.safetensors: `{digest}`\n")
    assert model_source(folder).expected_sha256 == digest
    # a field for another file, above the weights' line, is not the weights' either
    data_field = f"- sha256 of train.npy: {'b' * 64}\n| sha256 (data) | {'c' * 64} |\n"
    (folder / "README.md").write_text(data_field + f"sha256 of model.safetensors: {digest}\n")
    assert model_source(folder).expected_sha256 == digest
    (folder / "README.md").write_text(f"SHA256 = {digest}\n")  # a bare field
    assert model_source(folder).expected_sha256 == digest


def test_a_digest_in_capitals_is_checked_and_one_that_cannot_be_is_refused(tmp_path):
    """A card's digest in capitals, cut short, or beside a second one turned the check off
    without a word, and tampered weights loaded (session 44 audit)."""
    folder = _cnn().save_pretrained(tmp_path / "m")
    digest = sha256(folder / "model.safetensors")
    card = folder / "README.md"
    card.write_text(f"sha256 of model.safetensors: {digest.upper()}\n")
    assert model_source(folder).expected_sha256 == digest
    _cnn(seed=1).save_pretrained(folder)  # other weights under the same card
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(folder)
    card.write_text(f"sha256 of model.safetensors: {digest[:40]}\n")
    with pytest.raises(CheckpointError, match=r"line 1: the sha256 of model.safetensors must "
                       r"be 64 hex digits, got '[0-9a-f]{40}' \(40\)"):  # fmt: skip
        model_source(folder)
    card.write_text(
        f"sha256 of model.safetensors: {digest}\n\nsha256 of model.safetensors: {'d' * 64}\n"
    )
    with pytest.raises(CheckpointError, match=r"records 2 different sha256 digests .*line 3"):
        model_source(folder)
    card.write_text(f"sha256 of model.safetensors: {digest}\nSHA256 of model.safetensors: "
                    f"{digest.upper()}\n")  # fmt: skip
    assert model_source(folder).expected_sha256 == digest  # one digest, written twice


def test_truncated_weights_are_a_checkpoint_error(tmp_path):
    folder = _cnn().save_pretrained(tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"not a readable safetensors file .* truncated"):
        load_classifier(folder)


def test_a_folder_of_the_wrong_role_is_named(tmp_path):
    cnn = _cnn().save_pretrained(tmp_path / "cnn")
    gan = BrainGAN(BrainGANConfig(latent_dim=8, width=4)).save_pretrained(tmp_path / "gan")
    with pytest.raises(UnknownNameError, match="is a classifier; use load_classifier"):
        load_generator(cnn)
    with pytest.raises(UnknownNameError, match="is a generator; use load_generator"):
        load_classifier(gan)
    assert isinstance(load_generator(gan), BrainGAN)
    assert isinstance(load_generator(model_source(gan)), BrainGAN)  # a resolved source too
    with pytest.raises(UnknownNameError, match=f"'{cnn}' is a classifier"):
        load_generator(model_source(cnn))  # named by its folder, not the dataclass


def test_unknown_architectures_names_and_missing_files_are_clear(tmp_path, monkeypatch):
    folder = _cnn().save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "_class_name": "ResNet50"}))
    with pytest.raises(
        CheckpointError, match=r"names the architecture 'ResNet50'; cfx loads .*BrainCNN"
    ):
        load_classifier(folder)
    del config["_class_name"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="has no `_class_name`, so neither cfx nor"):
        load_classifier(folder)
    hf = {"architectures": ["ViTForImageClassification"], "model_type": "vit"}
    (folder / "config.json").write_text(json.dumps(hf))  # a transformers model's config
    with pytest.raises(CheckpointError, match=r"ViTForImageClassification'\]: a transformers"):
        load_classifier(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load_classifier(folder)
    (folder / "config.json").write_text(json.dumps({**config, "_class_name": "BrainCNN"}))
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"missing \['model.safetensors'\]; nor a model/"):
        load_classifier(folder)
    with pytest.raises(UnknownNameError, match=r"unknown zoo model 'resnet50'.*a folder written"):
        load_classifier("resnet50")
    with pytest.raises(CheckpointError, match="no folder"):
        load_classifier(tmp_path / "a" / "b" / "c")
    (folder / "model.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is a file; .*refuses pickled") as err:
        load_classifier(folder / "model.pt")
    # converting would not help a model of one's own: said at once (an audit converted, and
    # only then learnt that the folder must name one of cfx's architectures)
    said = str(err.value)
    assert "loads only its own architectures by name" in said and "'BrainCNN'" in said
    assert "a model of yours goes to the explainers in Python" in said
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"no folder `typo` \(relative to "):
        load_classifier("./typo")
    # `m/other` looks like a hub id, but `m` is a folder here: a local typo, not a fetch
    with pytest.raises(CheckpointError, match=r"no folder `m/other`.*write hf:m/other"):
        load_classifier("m/other")


def test_a_zoo_name_wins_over_a_folder_of_that_name_with_a_warning(tmp_path, monkeypatch, caplog):
    _cnn().save_pretrained(tmp_path / "brain-cnn")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        zoo = model_source("brain-cnn")
    assert zoo.folder is not None and zoo.folder.parent.name == "classifiers"
    assert "pass ./brain-cnn for the local one" in caplog.text
    for local in ("./brain-cnn", Path("brain-cnn")):
        assert model_source(local).folder == Path("brain-cnn")
        assert model_source(local).expected_sha256 is None  # the run, not the zoo model


def test_a_hub_id_is_fetched_and_an_offline_fetch_is_named(tmp_path, monkeypatch):
    folder = _cnn().save_pretrained(tmp_path / "cache")
    monkeypatch.chdir(tmp_path)  # no local folder named `someone`
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename):
        calls.append((repo_id, filename))
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    source = model_source("someone/brain-cnn")
    assert calls == [("someone/brain-cnn", "config.json")]  # no weights to describe it
    assert source.hub_id == "someone/brain-cnn" and source.role == "classifier"
    assert source.folder is None and source.expected_sha256 is None
    assert isinstance(load_classifier("someone/brain-cnn"), BrainCNN)
    assert ("someone/brain-cnn", "model.safetensors") in calls
    # with a local folder `cache`, `cache/x` is a path; `hf:` makes it a hub id
    calls.clear()
    assert model_source("hf:cache/x").hub_id == "cache/x" and calls[0][0] == "cache/x"
    with pytest.raises(CheckpointError, match="expected hf:owner/name"):
        model_source("hf:nothing")

    def offline(repo_id, filename):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(CheckpointError, match=r"could not be fetched from the hub.*no network"):
        load_classifier("someone/brain-cnn")


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_model_name_is_named_not_read_as_the_working_directory(name):
    """load_classifier('') once read the working directory: "`.` is missing config.json"."""
    from cfx.zoo import load_classifier

    with pytest.raises(UnknownNameError, match="a model name must not be empty"):
        load_classifier(name)


def test_a_run_folder_whose_checkpoint_is_past_its_model_is_warned_about(tmp_path, caplog):
    """A rerun interrupted at step 632 left model/ at step 600's weights, loaded silently.
    The checkpoint's step is compared with training.json's (written with model/), so a copied
    folder whose files got new times is not taken for one."""
    from cfx.training.checkpoint import save_checkpoint

    run = tmp_path / "run"
    _cnn().save_pretrained(run / "model")
    (run / "training.json").write_text(json.dumps({"summary": {"steps": 600}, "history": []}))

    def checkpoint_at(step):
        save_checkpoint(
            run / "checkpoint.safetensors", modules={}, optimizers={}, generators={},
            state={"step": step},
        )  # fmt: skip

    checkpoint_at(600)  # the finished run's
    with caplog.at_level(logging.WARNING, logger="cfx.zoo"):
        model_source(str(run))
    assert "checkpoint is at step" not in caplog.text
    checkpoint_at(632)  # an interrupted rerun saved it
    with caplog.at_level(logging.WARNING, logger="cfx.zoo"):
        model_source(str(run))
        model_source(str(run / "model"))  # the model folder itself: as asked
    assert caplog.messages == [
        f"`{run}`: its checkpoint is at step 632 and {run / 'model'} at step 600 (an "
        "interrupted or unfinished rerun of `cfx train`?), so the weights loaded are the last "
        f"finished run's; rerun the training command to finish it and update {run / 'model'}"
    ]


def test_a_float64_model_comes_back_as_float64(tmp_path):
    """from_pretrained built a float32 model and load_state_dict cast the saved float64
    weights down in silence: the outputs were no longer the saved model's."""
    model = _cnn().double()
    folder = model.save_pretrained(tmp_path / "m")
    loaded = BrainCNN.from_pretrained(folder)
    assert all(p.dtype == torch.float64 for p in loaded.parameters())
    x = _images().double()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert all(p.dtype == torch.float64 for p in load_classifier(folder).parameters())


def test_a_config_setting_the_class_refuses_names_the_file(tmp_path):
    folder = _cnn().save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "image_size": [64]}))
    with pytest.raises(CheckpointError, match=r"config\.json` is no BrainCNNConfig: `image_size`"):
        BrainCNN.from_pretrained(folder)


def test_a_run_folder_with_only_a_checkpoint_says_how_to_save_the_model(tmp_path):
    """A model trained in Python leaves a checkpoint but no model/: the hint named only
    `cfx train`."""
    from cfx.training.classifier import ClassifierTrainingConfig, train_classifier

    x = _images()
    config = ClassifierTrainingConfig(epochs=1, batch_size=3, augment=False)
    train_classifier(_cnn(), x, torch.tensor([0, 1, 0]), tmp_path, config, show_progress=False)
    with pytest.raises(CheckpointError, match=r"holds a training checkpoint but no model: .*"
                       r"model\.save_pretrained\(folder\)"):  # fmt: skip
        load_classifier(tmp_path)


@pytest.mark.parametrize(
    "line",
    [
        "- SHA-256 of model.safetensors: {}",  # the usual spelling turned the check off
        "sha_256 (model.safetensors) = {}",
        "{}  model.safetensors",  # sha256sum's layout
        "{} *model.safetensors",
    ],
)
def test_a_cards_digest_is_found_however_it_is_written(tmp_path, line):
    folder = _cnn().save_pretrained(tmp_path / "m")
    (folder / "README.md").write_text("# mine\n\n" + line.format("0" * 64) + "\n")
    assert model_source(folder).expected_sha256 == "0" * 64
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(folder)


def test_a_cards_warning_is_given_once_per_load(tmp_path, caplog):
    """load_classifier read the card for its source and from_pretrained read it again: the
    warning about another file's digest came twice."""
    folder = _cnn().save_pretrained(tmp_path / "m")
    (folder / "README.md").write_text("sha256 of unet.safetensors: " + "a" * 64 + "\n")
    with caplog.at_level("WARNING"):
        load_classifier(folder)
    assert caplog.text.count("records the sha256 of unet.safetensors") == 1
