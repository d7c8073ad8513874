"""The diffusers AutoencoderKL adapter, on a tiny VAE saved locally with save_pretrained."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from cfx.errors import CheckpointError, UnknownNameError
from cfx.inversion import _encoder_fn, invert
from cfx.models.diffusers_vae import DiffusersAutoencoder
from cfx.trajectory import GradientAscent
from cfx.zoo import load_classifier, load_generator, model_source
from cfx.zoo.pretrained import sha256
from tests.models.tiny_vae import tiny_vae


@pytest.fixture
def folder(tmp_path):
    tiny_vae().save_pretrained(tmp_path / "vae")
    return tmp_path / "vae"


def _images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_encode_and_decode_are_the_vaes_up_to_its_scaling(folder):
    vae = AutoencoderKL.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
    g = DiffusersAutoencoder.from_pretrained(folder)
    x = _images()
    with torch.no_grad():
        mean = vae.encode(x).latent_dist.mean  # (B, 2, 8, 8)
        assert torch.equal(g.encode(x), mean * 0.18215)  # the config's scaling_factor
        want = vae.decode(mean * 0.18215 / 0.18215).sample.clamp(-1, 1)
        assert torch.equal(g.decode(g.encode(x)), want)
    assert g.latent_shape == (2, 8, 8) and g.image_size == (16, 16)
    assert not g.training and not any(p.requires_grad for p in g.parameters())
    assert DiffusersAutoencoder(vae, image_size=32).latent_shape == (2, 16, 16)
    with pytest.raises(ValueError, match="`image_size` must be divisible by the VAE's"):
        DiffusersAutoencoder(vae, image_size=15)


def test_pickled_mismatched_and_missing_weights_are_refused(folder, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    torch.save(tiny_vae().state_dict(), pickled / "diffusion_pytorch_model.bin")
    with pytest.raises(
        CheckpointError, match=r"no file named diffusion_pytorch_model\.safetensors"
    ):
        DiffusersAutoencoder.from_pretrained(pickled)
    # a config the weights do not fit: diffusers alone would leave the extra layers random
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "layers_per_block": 2}))
    with pytest.raises(CheckpointError, match="the weights do not match the VAE's config"):
        DiffusersAutoencoder.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="no such folder"):
        DiffusersAutoencoder.from_pretrained(tmp_path / "nothing")
    with pytest.raises(TypeError, match="`vae` must be a diffusers AutoencoderKL"):
        DiffusersAutoencoder(torch.nn.Linear(2, 2))


def test_the_zoo_loader_takes_a_vae_folder_and_checks_a_card(folder):
    source = model_source(folder)
    assert source.role == "generator" and source.weights == "diffusion_pytorch_model.safetensors"
    assert isinstance(load_generator(folder), DiffusersAutoencoder)
    with pytest.raises(UnknownNameError, match="is a generator; use load_generator"):
        load_classifier(folder)
    (folder / "README.md").write_text(f"sha256: {'0' * 64}\n")  # a card that does not match
    with pytest.raises(CheckpointError, match="expected 0000"):
        load_generator(folder)
    digest = sha256(folder / "diffusion_pytorch_model.safetensors")
    (folder / "README.md").write_text(f"sha256: {digest}\n")
    assert isinstance(load_generator(folder), DiffusersAutoencoder)
    (folder / "README.md").write_text("# a hub card\n\nlicense: mit\n")  # records no sha256
    assert model_source(folder).expected_sha256 is None
    assert isinstance(load_generator(folder), DiffusersAutoencoder)


def test_a_card_recording_another_weights_file_is_said(folder, caplog):
    """The README's own card line, `sha256 of model.safetensors: HEX`, in a VAE folder (whose
    weights are diffusion_pytorch_model.safetensors) was passed over without a word, and a
    wrong file loaded."""
    (folder / "README.md").write_text(f"- sha256 of model.safetensors: {'0' * 64}\n")
    with caplog.at_level("WARNING"):
        assert model_source(folder).expected_sha256 is None
    assert "records the sha256 of model.safetensors, not of this folder's weights" in caplog.text
    assert "write `sha256 of diffusion_pytorch_model.safetensors: HEX`" in caplog.text
    caplog.clear()
    (folder / "README.md").write_text(
        f"sha256 of diffusion_pytorch_model.safetensors: {'0' * 64}\n"
    )
    with pytest.raises(CheckpointError, match="expected 0000"):
        load_generator(folder)
    assert "records the sha256 of" not in caplog.text


def test_decoded_frames_stay_in_range_and_still_pass_gradients(folder):
    g = DiffusersAutoencoder.from_pretrained(folder)
    z = 3 * torch.randn(2, *g.latent_shape, generator=torch.Generator().manual_seed(0))
    z.requires_grad_(True)
    y = g.decode(z)
    raw = g.vae.decode(z / g.scaling).sample
    assert float(raw.detach().abs().max()) > 1.0  # this VAE overshoots the range
    assert float(y.detach().abs().max()) <= 1.0
    torch.testing.assert_close(y, raw.clamp(-1, 1))
    (grad,) = torch.autograd.grad(y.sum(), z)
    (grad_raw,) = torch.autograd.grad(raw.sum(), z)
    torch.testing.assert_close(grad, grad_raw)  # straight through, also where clamped


def test_inversion_and_gradient_ascent_run_through_the_vae(folder):
    g = DiffusersAutoencoder.from_pretrained(folder)
    x = _images(4)
    # the offline perceptual term compares the encoder's block outputs: zero only for equal
    # images, so choosing it changes the inversion
    dist = _encoder_fn(g.encoder)
    assert bool((dist(x, x) == 0).all()) and bool((dist(x, -x) > 0).all())
    inv = invert(g, x, steps=20, perceptual="encoder", perceptual_weight=10.0)
    plain = invert(g, x, steps=20, perceptual="none")
    assert inv.perceptual == "encoder" and inv.latents.shape == (4, 2, 8, 8)
    assert not torch.equal(inv.latents, plain.latents)

    class Brightness(torch.nn.Module):  # class 1 = brighter than mid-grey, in closed form
        def forward(self, x):
            s = 20 * x.mean((1, 2, 3))
            return torch.stack([torch.zeros_like(s), s], 1)

    f = Brightness()
    z0 = inv.latents
    with torch.no_grad():
        start = torch.sigmoid(f(g.decode(z0))[:, 1])
    res = GradientAscent(g, f, steps=4, eta=0.5, max_iter=200, margin=0.9).explain(x, 1, latents=z0)
    assert bool(res.success[start < 0.9].all())
    assert bool((res.probs[:, -1] >= 0.9).all())
    assert bool((res.probs.diff(dim=1) >= -1e-6).all())  # frames climb through their levels


def test_cfx_trajectory_walks_brain_slices_through_a_vae_folder(tmp_path):
    from cfx.cli import main

    tiny_vae(size=64).save_pretrained(tmp_path / "vae64")  # brain-cnn's 1 x 64 x 64 slices
    out = tmp_path / "t"
    argv = ["trajectory", "--no-figures", "--target", "healthy", "--method", "gradient", "--n", "1"]
    argv += ["--generator", str(tmp_path / "vae64"), "--steps", "2", "--inversion-steps", "3"]
    assert main([*argv, "--oracle", "none", "--no-progress", "--out", str(out)]) == 0
    with np.load(out / "result.npz") as r:
        assert r["frames"].shape == (1, 3, 1, 64, 64) and r["latents"].shape == (1, 3, 2, 32, 32)
    summary = json.loads((out / "summary.json").read_text())
    weights = tmp_path / "vae64" / "diffusion_pytorch_model.safetensors"
    assert summary["setup"]["weights_sha256"]["generator"] == sha256(weights)
    assert summary["perceptual_loss"] in ("lpips", "encoder")


def _pipeline(root, components):
    """A diffusers pipeline folder: ``model_index.json`` naming ``components``, the VAE in
    ``vae/`` (what Stable Diffusion repos hold; the other components are left out)."""
    tiny_vae().save_pretrained(root / "vae")
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0"}
    (root / "model_index.json").write_text(json.dumps(index | components))
    return root


SD_COMPONENTS = {
    "vae": ["diffusers", "AutoencoderKL"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "scheduler": ["diffusers", "PNDMScheduler"],
}


def test_a_pipeline_folder_loads_its_vae(tmp_path):
    pipe = _pipeline(tmp_path / "sd", SD_COMPONENTS)
    source = model_source(pipe)
    assert source.folder == pipe / "vae" and source.role == "generator"
    loaded, direct = load_generator(pipe), load_generator(pipe / "vae")
    z = torch.randn(2, *direct.latent_shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.decode(z), direct.decode(z))
    # the same subfolder through diffusers, as a hub pipeline is loaded
    sub = DiffusersAutoencoder.from_pretrained(pipe, subfolder="vae")
    assert torch.equal(sub.decode(z), direct.decode(z))
    # a typo in the subfolder named the pipeline folder's own missing config (session 53)
    with pytest.raises(CheckpointError, match=r"no config\.json in its subfolder 'vea' .*'vae'"):
        DiffusersAutoencoder.from_pretrained(pipe, subfolder="vea")
    two = _pipeline(tmp_path / "two", SD_COMPONENTS | {"vae2": ["diffusers", "AutoencoderKL"]})
    with pytest.raises(CheckpointError, match=r"lists 2 AutoencoderKL components"):
        model_source(two)
    import shutil

    shutil.rmtree(pipe / "vae")  # a pipeline copied without its VAE
    with pytest.raises(CheckpointError, match=r"lists its VAE in `vae/`, which .* does not have"):
        model_source(pipe)


def test_a_hub_pipeline_is_described_and_loaded_by_its_vae(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import RemoteEntryNotFoundError

    from cfx.cli.trajectory import weights_sha256

    snapshot = _pipeline(tmp_path / "snapshot", SD_COMPONENTS)  # the repo as the hub holds it
    monkeypatch.chdir(tmp_path)  # no local folder named `someone`
    calls = []

    def fake_download(repo_id, filename):
        calls.append(filename)
        if not (snapshot / filename).is_file():
            response = SimpleNamespace(status_code=404, headers={}, request=None)
            raise RemoteEntryNotFoundError(f"404: {filename}", response=response)
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    source = model_source("someone/sd")
    assert calls == ["config.json", "model_index.json", "vae/config.json"]
    assert source.hub_id == "someone/sd" and source.subfolder == "vae"
    assert source.role == "generator" and source.folder is None
    weights = snapshot / "vae" / "diffusion_pytorch_model.safetensors"
    assert weights_sha256(source) == sha256(weights)

    loads, real = [], DiffusersAutoencoder.from_pretrained

    def fake_from_pretrained(name_or_path, *, subfolder=None):
        loads.append((name_or_path, subfolder))  # diffusers fetches `subfolder` of the repo
        return real(snapshot, subfolder=subfolder)

    monkeypatch.setattr(DiffusersAutoencoder, "from_pretrained", fake_from_pretrained)
    assert isinstance(load_generator("someone/sd"), DiffusersAutoencoder)
    assert loads == [("someone/sd", "vae")]
    # a repo with neither file: the error is about config.json, as before pipelines
    calls.clear()
    (snapshot / "model_index.json").unlink()
    with pytest.raises(CheckpointError, match=r"could not be fetched.*404: config.json"):
        model_source("someone/sd")
    assert calls == ["config.json", "model_index.json"]


def test_a_hub_vae_is_fetched_as_cfx_fetches_and_diffusers_reads_the_copy(
    folder, tmp_path, monkeypatch
):
    """Given the hub id, diffusers probed the hub for files the cache does not hold (a
    sharded-weights index), retrying an unreachable hub for about 25 s per load, with a
    screenful of warnings, though the cache held the VAE."""
    import diffusers
    import huggingface_hub

    monkeypatch.chdir(tmp_path)  # no local folder named `someone`
    calls, reads = [], []

    repos = {"someone/vae": folder, "someone/sd": _pipeline(tmp_path / "sd", SD_COMPONENTS)}

    def fake_download(repo_id, filename):
        calls.append((repo_id, filename))
        return str(repos[repo_id] / filename)

    real = diffusers.AutoencoderKL.from_pretrained

    def reading(where, **kwargs):
        reads.append((where, kwargs.get("subfolder")))
        return real(where, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(diffusers.AutoencoderKL, "from_pretrained", reading)
    vae = DiffusersAutoencoder.from_pretrained("someone/vae")
    files = ["config.json", "diffusion_pytorch_model.safetensors"]
    assert calls == [("someone/vae", f) for f in files]
    assert reads == [(str(folder), None)]  # the local copy, not the hub id
    z = torch.randn(1, *vae.latent_shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(vae.decode(z), DiffusersAutoencoder.from_pretrained(folder).decode(z))
    calls.clear()
    reads.clear()
    DiffusersAutoencoder.from_pretrained("someone/sd", subfolder="vae")  # a pipeline's VAE
    assert calls == [("someone/sd", f"vae/{f}") for f in files]
    assert reads == [(str(tmp_path / "sd" / "vae"), None)]
    calls.clear()
    import warnings

    # a revision: diffusers fetches (here: no hub at all), its own deprecation warning aside
    with pytest.raises(CheckpointError), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        DiffusersAutoencoder.from_pretrained("someone/vae", revision="main", local_files_only=True)
    assert calls == []


def test_a_pipeline_folder_or_a_raw_autoencoder_get_a_hint(tmp_path):
    pipe = _pipeline(tmp_path / "sd", SD_COMPONENTS)
    with pytest.raises(CheckpointError, match=r'is a diffusers pipeline folder .*subfolder="vae"'):
        DiffusersAutoencoder.from_pretrained(pipe)
    with pytest.raises(
        TypeError, match=r"a diffusers AutoencoderKL: wrap it, .*DiffusersAutoencoder"
    ):
        GradientAscent(tiny_vae(), lambda x: x.flatten(1)[:, :2], steps=2).explain(_images(1), 1)


def test_cfx_trajectory_runs_a_vae_at_the_image_size_asked(tmp_path, capsys):
    """The command line ran a VAE only at its config's sample_size (256-1024 px for Stable
    Diffusion's), upscaling smaller images to it; --image-size sets the frames' size."""
    from PIL import Image

    from cfx.cli import main

    tiny_vae(size=64).save_pretrained(tmp_path / "vae64")
    pic = np.linspace(0, 255, 32 * 48, dtype=np.float32).reshape(32, 48).astype(np.uint8)
    Image.fromarray(pic).save(tmp_path / "scan.png")
    argv = ["trajectory", "--target", "healthy", "--method", "gradient", "--steps", "2"]
    argv += ["--generator", str(tmp_path / "vae64"), "--inversion-steps", "0", "--no-progress"]
    argv += ["--input", str(tmp_path / "scan.png"), "--classifier", "brain-cnn"]
    out = tmp_path / "t"
    assert main([*argv, "--image-size", "48x32", "--out", str(out)]) == 0  # W x H, as cfx prints
    with np.load(out / "result.npz") as r:  # at the file's own size, latents a half of it
        assert r["frames"].shape == (1, 3, 1, 32, 48) and r["latents"].shape == (1, 3, 2, 16, 24)
    assert json.loads((out / "summary.json").read_text())["setup"]["image_size"] == [32, 48]
    capsys.readouterr()
    assert main([*argv, "--image-size", "33", "--out", str(out)]) == 2
    assert "`--image-size`: `image_size` must be divisible by the VAE's" in capsys.readouterr().err
    assert main([*argv, "--image-size", "32by48", "--out", str(out)]) == 2
    assert "`--image-size` must be one side or WxH in pixels" in capsys.readouterr().err
    zoo = ["trajectory", "--target", "healthy", "--image-size", "32", "--out", str(out)]
    assert main(zoo) == 2
    assert "--generator brain-gan draws one size: drop --image-size" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change",
    [
        {"block_out_channels": None},  # deleted: IndexError inside diffusers
        {"block_out_channels": 8},  # TypeError inside diffusers
        {"latent_channels": "4"},
    ],
    ids=["no-block-out-channels", "int-block-out-channels", "str-latent-channels"],
)
def test_a_damaged_vae_config_is_a_checkpoint_error(folder, change):
    """A damaged config.json escaped from inside diffusers as IndexError or TypeError, naming
    neither the folder nor the file (session-53 audit)."""
    config = json.loads((folder / "config.json").read_text())
    for key, value in change.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"could not be loaded .* config\.json damaged"):
        DiffusersAutoencoder.from_pretrained(folder)


def test_a_scaling_factor_that_is_no_number_and_options_cfx_sets_are_named(folder):
    vae = tiny_vae()
    vae.register_to_config(scaling_factor=None)
    with pytest.raises(ValueError, match=r"config's `scaling_factor` must be a finite number"):
        DiffusersAutoencoder(vae)
    with pytest.raises(TypeError, match=r"`low_cpu_mem_usage`, `use_safetensors` cannot be"):
        DiffusersAutoencoder.from_pretrained(folder, use_safetensors=False, low_cpu_mem_usage=True)
