"""The generator training loop: resumable to the bit, learns, and applies its adversarial knobs."""

import dataclasses
import json
import math

import pytest
import torch

from cfx.cli import main
from cfx.models.brain_gan import BrainGANConfig
from cfx.training.generator import GeneratorTrainingConfig, train_generator

TINY = BrainGANConfig(latent_dim=8, width=4)


def _images(n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 64, 64, generator=g) * 2 - 1


def _config(**kw) -> GeneratorTrainingConfig:
    base = {"batch_size": 8, "adv_start": 1, "decay_start": 1.0, "checkpoint_every": 2}
    return GeneratorTrainingConfig(model=TINY, **(base | kw))


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    x = _images()
    whole, _ = train_generator(x, tmp_path / "a", _config(steps=4), show_progress=False)
    train_generator(x, tmp_path / "b", _config(steps=2), show_progress=False)  # "interrupted"
    resumed, report = train_generator(x, tmp_path / "b", _config(steps=4), show_progress=False)
    assert report.steps == 4
    pairs = zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True)
    for (name, p), q in pairs:
        assert torch.equal(p, q), name


def test_ctrl_c_saves_the_step_it_arrived_in_and_resumes_exactly(tmp_path, monkeypatch, caplog):
    import cfx.training.generator as generator_module
    from tests.training.test_classifier import _ctrl_c_during

    x = _images()
    whole, _ = train_generator(x, tmp_path / "a", _config(steps=6), show_progress=False)
    # the discriminator's loss runs once a step from step 1 (adv_start): inside step 4, which
    # no periodic checkpoint (every 2) would keep
    _ctrl_c_during(monkeypatch, generator_module, "_hinge_d", call=3)
    cfg = _config(steps=6, checkpoint_every=100)
    warnings = caplog.at_level("WARNING", logger="cfx.training.generator")
    with warnings, pytest.raises(KeyboardInterrupt):
        train_generator(x, tmp_path / "b", cfg, show_progress=False)
    assert f"interrupted at step 4 of 6; saved in {tmp_path / 'b'}" in caplog.text
    monkeypatch.undo()
    with caplog.at_level("WARNING", logger="cfx.training.generator"):
        resumed, report = train_generator(x, tmp_path / "b", cfg, show_progress=False)
    assert f"resuming generator training in {tmp_path / 'b'} at step 4 of 6" in caplog.text
    assert report.steps == 6
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_a_rerun_asking_for_fewer_steps_says_nothing_was_trained(tmp_path, caplog):
    x = _images()
    trained, _ = train_generator(x, tmp_path, _config(steps=4), show_progress=False)
    with caplog.at_level("WARNING"):
        again, report = train_generator(x, tmp_path, _config(steps=2), show_progress=False)
    assert "is at step 4, past `steps` 2: nothing is trained" in caplog.text
    assert "at step 4 of 2" not in caplog.text  # it also said "resuming ... at step 4 of 2"
    with caplog.at_level("WARNING"):
        train_generator(x, tmp_path, _config(steps=4), show_progress=False)
    assert f"generator training in {tmp_path} already finished (4 steps)" in caplog.text
    assert report.steps == 4 and all(
        torch.equal(p, q) for p, q in zip(trained.parameters(), again.parameters(), strict=True)
    )


def test_reconstruction_improves_on_a_fixed_image(tmp_path):
    ramp = torch.linspace(-0.8, 0.8, 64)
    x = (ramp[None, :] * ramp[:, None].abs()).expand(8, 1, 64, 64).contiguous()  # one image
    cfg = _config(steps=100, adv_start=1000, lr=1e-3, checkpoint_every=1000)
    _, report = train_generator(x, tmp_path, cfg, show_progress=False)
    first, last = report.history[0]["rec_l1"], report.history[-1]["rec_l1"]
    assert last < 0.8 * first
    assert all(row["adv_weight"] == 0.0 and row["d_loss"] == 0.0 for row in report.history)


def test_adversarial_weight_is_adv_factor_times_the_gradient_ratio(tmp_path):
    # one step from the same initialisation: the gradient ratio is the same, so the weights
    # differ exactly by the factors' ratio
    weights = []
    for factor in (0.1, 0.5):
        cfg = _config(steps=1, adv_start=0, adv_factor=factor)
        _, report = train_generator(_images(), tmp_path / str(factor), cfg, show_progress=False)
        weights.append(report.history[-1]["adv_weight"])
    assert weights[0] > 0.0
    assert abs(weights[1] / weights[0] - 5.0) < 1e-4


def test_cli_passes_the_adversarial_knobs(tmp_path):
    argv = ["train", "generator", "--n", "16", "--steps", "1", "--batch-size", "8"]
    argv += ["--latent-dim", "8", "--width", "4"]
    assert main([*argv, "--adv-start", "0", "--out", str(tmp_path / "on")]) == 0
    assert main([*argv, "--out", str(tmp_path / "off")]) == 0  # default start: step 500
    on = json.loads((tmp_path / "on" / "training.json").read_text())["summary"]["last"]
    off = json.loads((tmp_path / "off" / "training.json").read_text())["summary"]["last"]
    assert on["adv_weight"] > 0.0 and on["d_loss"] > 0.0
    assert off["adv_weight"] == 0.0 and off["d_loss"] == 0.0


def test_same_seed_same_weights_whatever_the_global_rng(tmp_path):
    # the discriminator's spectral-norm vectors used to come from torch's global RNG
    x = _images()
    torch.manual_seed(1)
    a, _ = train_generator(x, tmp_path / "a", _config(steps=2), show_progress=False)
    torch.manual_seed(2)
    b, _ = train_generator(x, tmp_path / "b", _config(steps=2), show_progress=False)
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_negative_adversarial_knobs_are_refused(tmp_path, capsys):
    argv = ["train", "generator", "--n", "16", "--steps", "1", "--out", str(tmp_path)]
    assert main([*argv, "--adv-factor", "-0.5"]) == 2
    assert "`--adv-factor` must be a number in [0, inf), got -0.5" in capsys.readouterr().err
    # NaN and inf trained an all-NaN model and exited 0 (session 47 audit)
    for bad in ("nan", "inf"):
        assert main([*argv, "--adv-factor", bad]) == 2
        assert f"`--adv-factor` must be a number in [0, inf), got {bad}" in capsys.readouterr().err
    assert main([*argv, "--adv-start", "-1"]) == 2
    assert "`--adv-start` must be an int >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_resuming_another_run_is_refused_naming_what_changed(tmp_path):
    x = _images()
    train_generator(x, tmp_path, _config(steps=2), show_progress=False)
    with pytest.raises(ValueError, match=r"different run.*\(the training images\)"):
        train_generator(-x, tmp_path, _config(steps=4), show_progress=False)  # same count
    with pytest.raises(ValueError, match=r"different run.*batch_size: 8 before, 4 now"):
        train_generator(x, tmp_path, _config(steps=4, batch_size=4), show_progress=False)
    other = GeneratorTrainingConfig(model=BrainGANConfig(latent_dim=16, width=4), steps=4)
    # another architecture is named by what changed, not by the state_dict mismatch it causes
    with pytest.raises(ValueError, match=r"different run.*config\.model\.latent_dim: 8 before, 16"):
        train_generator(x, tmp_path, other, show_progress=False)
    # more steps and another checkpoint interval extend the same run
    _, report = train_generator(
        x, tmp_path, _config(steps=3, checkpoint_every=1), show_progress=False
    )
    assert report.steps == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "`steps` must be an int >= 1, got 0"),
        ({"batch_size": -3}, "`batch_size` must be an int >= 1, got -3"),
        ({"lr": 0.0}, r"`lr` must be a number in \(0, inf\), got 0.0"),
        ({"lr": math.inf}, r"`lr` must be a number in \(0, inf\), got inf"),
        ({"kl_weight": -1.0}, r"`kl_weight` must be a number in \[0, inf\), got -1.0"),
        ({"latent_weight": math.nan}, r"`latent_weight` must be a number in \[0, inf\), got nan"),
        ({"decay_start": 1.5}, r"`decay_start` must be a number in \[0, 1\], got 1.5"),
        ({"adv_start": -1}, "`adv_start` must be an int >= 0, got -1"),
        ({"seed": -1}, r"`seed` must be an int in \[0, 2\*\*64\), got -1"),  # was taken
        ({"seed": 2**70}, r"`seed` must be an int in \[0, 2\*\*64\)"),  # failed at the first draw
    ],
)
def test_bad_settings_are_refused_at_once(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GeneratorTrainingConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # each was taken: a fractional or True step to start the adversarial loss at
        ({"adv_start": 2.5}, "`adv_start` must be an int >= 0, got 2.5"),
        ({"adv_start": True}, "`adv_start` must be an int >= 0, got True"),
        ({"decay_start": True}, r"`decay_start` must be a number in \[0, 1\], got True"),
        ({"seed": 1.0}, r"`seed` must be an int in \[0, 2\*\*64\), got 1.0"),
        # each failed comparing a str with a number, naming no setting
        ({"adv_start": "500"}, "`adv_start` must be an int >= 0, got '500'"),
        ({"decay_start": "0.7"}, r"`decay_start` must be a number in \[0, 1\], got '0.7'"),
        # a dict or None failed at the first use of the architecture, naming no setting
        ({"model": {"width": 4}}, r"`model` must be a BrainGANConfig, got dict \{'width': 4\}"),
        ({"model": None}, "`model` must be a BrainGANConfig, got NoneType None"),
    ],
)
def test_settings_of_another_type_are_named(kwargs, match):
    with pytest.raises(TypeError, match=match):
        GeneratorTrainingConfig(**kwargs)


def test_numpy_settings_are_kept_as_python_numbers():
    """A numpy float32 weight (a sweep over np.linspace) reached the run's fingerprint, which
    json.dumps refused when training started."""
    np = pytest.importorskip("numpy")
    cfg = GeneratorTrainingConfig(
        kl_weight=np.float32(0.5),
        decay_start=np.float64(0.5),
        adv_start=np.int64(3),
        seed=np.uint64(7),
    )
    values = (cfg.kl_weight, cfg.decay_start, cfg.adv_start, cfg.seed)
    assert values == (0.5, 0.5, 3, 7)
    assert [type(v) for v in values] == [float, float, int, int]
    json.dumps(dataclasses.asdict(cfg))  # what the checkpoint's fingerprint stores


def test_cli_names_a_zero_batch(tmp_path, capsys):
    argv = ["train", "generator", "--n", "16", "--steps", "1", "--batch-size", "0"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "`--batch-size` must be an int >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "model.safetensors").exists()


def test_a_checkpoint_written_before_fingerprints_resumes_with_a_warning(tmp_path, caplog):
    from tests.training.legacy import rewrite_state

    x = _images()
    train_generator(x, tmp_path, _config(steps=2), show_progress=False)
    rewrite_state(tmp_path / "checkpoint.safetensors", lambda state: state.pop("fingerprint"))
    with caplog.at_level("WARNING"):
        _, report = train_generator(x, tmp_path, _config(steps=3), show_progress=False)
    assert report.steps == 3 and "resuming on trust" in caplog.text


def test_the_model_follows_the_images_dtype_and_bad_images_are_named(tmp_path):
    """The models were built in float32 whatever the images (float64 images met float32
    weights at the first step), and integer or out-of-range images reached the loop."""
    x = _images().double()
    model, _ = train_generator(x, tmp_path / "a", _config(steps=1), show_progress=False)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    with pytest.raises(TypeError, match="`images`"):
        train_generator(
            (x * 127 + 128).to(torch.uint8), tmp_path / "b", _config(steps=1), show_progress=False
        )
    with pytest.raises(ValueError, match="`images`"):
        train_generator(x * 3, tmp_path / "c", _config(steps=1), show_progress=False)


def test_an_adversarial_loss_that_never_starts_is_said(tmp_path, caplog):
    """A short run at the default adv_start (500) trained without its adversarial loss in
    silence (session 44 audit)."""
    x = _images()
    with caplog.at_level("WARNING", logger="cfx.training.generator"):
        train_generator(x, tmp_path / "a", _config(steps=2, adv_start=2), show_progress=False)
    assert "`adv_start` 2 is not below `steps` 2: the adversarial loss never switches on" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.training.generator"):
        train_generator(x, tmp_path / "b", _config(steps=2, adv_factor=0.0), show_progress=False)
        train_generator(x, tmp_path / "c", _config(steps=2), show_progress=False)  # starts at 1
    assert "adversarial" not in caplog.text


def test_a_loss_that_turns_nan_stops_the_run_keeping_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    """A NaN loss (an inf --adv-factor did it) trained on to an all-NaN model and exit 0."""
    import cfx.training.generator as generator_module
    from cfx.errors import DivergedError

    real, calls = generator_module._adaptive_weight, []

    def turns_nan(rec, adv, last):
        calls.append(1)
        return real(rec, adv, last) * (math.nan if len(calls) >= 4 else 1.0)

    monkeypatch.setattr(generator_module, "_adaptive_weight", turns_nan)
    said = (
        r"nan at step 5, not a finite number: training stopped there, no checkpoint of it "
        r"saved \(\S+ keeps the last step saved before\)"
    )
    with pytest.raises(DivergedError, match=said):
        train_generator(_images(), tmp_path, _config(steps=6), show_progress=False)
    # steps 1-4 were finite and saved (checkpoint_every 2): the checkpoint is whole and finite
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "checkpoint.safetensors")
    floats = [t for t in saved.values() if t.is_floating_point()]
    assert floats and all(bool(torch.isfinite(t).all()) for t in floats)
