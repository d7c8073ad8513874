import torch
from torch import nn

from cfx.training.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_restores_modules_optimizers_and_generators(tmp_path):
    gen = torch.Generator().manual_seed(3)
    model = nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 4, generator=gen)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(
        path,
        modules={"m": model},
        optimizers={"o": opt},
        generators={"g": gen},
        state={"step": 7, "history": [{"a": 1.0}]},
    )
    expected_next = torch.randn(3, generator=gen)

    model2 = nn.Linear(4, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    gen2 = torch.Generator().manual_seed(999)
    state = load_checkpoint(
        path, modules={"m": model2}, optimizers={"o": opt2}, generators={"g": gen2}
    )
    assert state == {"step": 7, "history": [{"a": 1.0}]}
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(torch.randn(3, generator=gen2), expected_next)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for k in s1["state"]:
        assert torch.equal(s1["state"][k]["exp_avg"], s2["state"][k]["exp_avg"])
    assert s1["param_groups"] == s2["param_groups"]
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed


def test_a_damaged_checkpoint_is_named_not_a_raw_safetensors_error(tmp_path):
    import pytest

    from cfx.errors import CheckpointError
    from cfx.training.checkpoint import resume_checkpoint

    model = nn.Linear(4, 2)
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, modules={"m": model}, optimizers={}, generators={}, state={"step": 1})
    path.write_bytes(path.read_bytes()[:50])  # what a power cut could leave
    with pytest.raises(CheckpointError, match=r"checkpoint.safetensors cannot be read .*damaged"):
        resume_checkpoint(
            path,
            fingerprint={},
            names={},
            added_later=(),
            modules={"m": model},
            optimizers={},
            generators={},
        )


def test_a_byte_changed_since_saving_is_refused_not_resumed(tmp_path):
    """A flipped byte inside a tensor read happily: the finished run resumed from it and
    saved the damaged weights as its model, with a fresh sha256 (session 44 audit)."""
    import pytest

    from cfx.errors import CheckpointError, ForeignRunError
    from cfx.training.checkpoint import resume_checkpoint

    model = nn.Linear(4, 2)
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, modules={"m": model}, optimizers={}, generators={}, state={"step": 1})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # the last tensor's bytes: still a readable file
    path.write_bytes(bytes(data))
    args = {"names": {}, "added_later": (), "optimizers": {}, "generators": {}}
    with pytest.raises(CheckpointError, match="does not match the digest it was saved with"):
        resume_checkpoint(path, fingerprint={}, modules={"m": nn.Linear(4, 2)}, **args)
    # another run's checkpoint is a ForeignRunError, as the README names that refusal
    save_checkpoint(path, modules={"m": model}, optimizers={}, generators={}, state={"step": 1})
    with pytest.raises(ForeignRunError, match="the same model"):
        resume_checkpoint(path, fingerprint={}, modules={"m": nn.Linear(4, 3)}, **args)


def test_a_checkpoint_of_another_kind_of_training_is_named_as_such(tmp_path, caplog):
    """A generator run into a classifier's folder listed ~20 'settings' that differed (every
    one of both configs) where the cause is one: another kind of training (session 44 audit)."""
    import pytest

    from cfx.errors import ForeignRunError
    from cfx.training.checkpoint import resume_checkpoint

    path = tmp_path / "checkpoint.safetensors"
    classifier = {"model": "BrainCNN", "task": "classify", "n": 4, "config": {"lr": 0.002}}
    generator = {"n": 4, "config": {"lr": 0.0002, "adv_start": 500}}
    args = {"names": {}, "added_later": (), "optimizers": {}, "generators": {}}
    for saved, now, said in [
        (classifier, generator, "another kind of training: it trained a BrainCNN; use a new"),
        (generator, classifier, "another kind of training, not a BrainCNN's; use a new folder"),
    ]:
        model = nn.Linear(4, 2)
        state = {"step": 1, "fingerprint": saved}
        save_checkpoint(path, modules={"m": model}, optimizers={}, generators={}, state=state)
        with pytest.raises(ForeignRunError, match=said):
            resume_checkpoint(path, fingerprint=now, modules={"m": model}, **args)
    # the classifier's fingerprint has entries a generator's older checkpoint could lack: the
    # folder was warned about ("resuming on trust") before it was refused (session 47 audit)
    save_checkpoint(
        path, modules={"m": model}, optimizers={}, generators={}, state={"fingerprint": generator}
    )
    later = {**args, "added_later": ("model",)}
    kind = "another kind of training, not a BrainCNN's"
    with (
        caplog.at_level("WARNING", logger="cfx.training.checkpoint"),
        pytest.raises(ForeignRunError, match=kind),
    ):
        resume_checkpoint(path, fingerprint=classifier, modules={"m": model}, **later)
    assert "resuming on trust" not in caplog.text
    # the same kind with other settings still lists what changed
    save_checkpoint(
        path, modules={"m": model}, optimizers={}, generators={}, state={"fingerprint": generator}
    )
    other = {**generator, "config": {"lr": 0.001, "adv_start": 500}}
    with pytest.raises(ForeignRunError, match=r"same settings and data \(config.lr: 0.0002 before"):
        resume_checkpoint(path, fingerprint=other, modules={"m": model}, **args)
