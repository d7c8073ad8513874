"""A diffusers ``AutoencoderKL`` as a cfx generator with an encoder.

Latent-space counterfactuals need a generator ``G`` and, for inversion, an encoder; a
pretrained variational autoencoder provides both (Latent Shift, Cohen et al., "Gifsplanation
via Latent Shift", MIDL 2021, walks an autoencoder's latent space in the same way). This wraps
any ``diffusers.AutoencoderKL`` (a hub id or a folder written by its ``save_pretrained``) as an
:class:`~cfx.types.Invertible`:

* ``encode(x)`` is the posterior mean times the VAE's ``scaling_factor`` (roughly unit
  variance, so the inversion's ``||z||^2`` prior and the explainers' step sizes mean the same
  as for a GAN latent); ``decode(z)`` undoes the scaling;
* ``encoder`` is the VAE encoder's stem and down blocks as an ``nn.Sequential``, whose block
  outputs :func:`~cfx.inversion.invert` compares as its perceptual loss when LPIPS is not
  available.

Images are ``(B, C, H, W)`` in [-1, 1], the range diffusers VAEs are trained on; decoded frames
are clamped to it with a straight-through gradient. A ``shift_factor`` (SD3 / Flux VAEs) is
subtracted before scaling; per-channel ``latents_mean`` / ``latents_std`` are not used.
Only safetensors weights are loaded, strictly.
"""

from __future__ import annotations

from math import isfinite
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from cfx.errors import CheckpointError

HUB_OPTIONS = frozenset(
    {"revision", "cache_dir", "token", "local_files_only", "force_download", "proxies", "variant"}
)
"""``from_pretrained`` options about fetching: with any of them diffusers fetches a hub id."""
FIXED_OPTIONS = frozenset({"use_safetensors", "low_cpu_mem_usage", "output_loading_info"})
"""Options cfx's loader sets itself (passed again, diffusers got them twice)."""


class DiffusersAutoencoder(nn.Module):
    """A diffusers ``AutoencoderKL`` (``vae``) with ``latent_shape``, ``encode`` and ``decode``
    in cfx's conventions. ``image_size`` (``(H, W)`` or one int) defaults to the VAE config's
    ``sample_size``."""

    vae: Any  # the diffusers AutoencoderKL (untyped: diffusers' stubs are lazy)

    def __init__(self, vae: Any, *, image_size: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        config: Any = getattr(vae, "config", None)
        needed = ("latent_channels", "block_out_channels", "scaling_factor", "sample_size")
        if not isinstance(vae, nn.Module) or any(not hasattr(config, k) for k in needed):
            raise TypeError(f"`vae` must be a diffusers AutoencoderKL, got {type(vae).__name__}")
        size: Any = config.sample_size if image_size is None else image_size
        hw = [size, size] if isinstance(size, Integral) else list(size or [])
        if len(hw) != 2 or not all(isinstance(v, Integral) and int(v) > 0 for v in hw):
            raise ValueError(f"`image_size` must be a positive int or (H, W), got {size!r}")
        h, w = int(hw[0]), int(hw[1])
        self.vae = vae
        blocks: Any = self.vae.encoder.down_blocks
        factor = 2 ** sum(b.downsamplers is not None for b in blocks)
        if h % factor or w % factor:
            raise ValueError(
                f"`image_size` must be divisible by the VAE's downsampling factor {factor}, "
                f"got {(h, w)}"
            )
        scaling, shift = config.scaling_factor, getattr(config, "shift_factor", None) or 0.0
        for field, value in (("scaling_factor", scaling), ("shift_factor", shift)):
            if isinstance(value, bool) or not isinstance(value, Real) or not isfinite(value):
                raise ValueError(  # null failed as float(None), naming nothing
                    f"the VAE config's `{field}` must be a finite number, got {value!r}"
                )
        if scaling <= 0:
            raise ValueError(f"the VAE config's `scaling_factor` must be > 0, got {scaling!r}")
        self.scaling = float(scaling)
        self.shift = float(shift)  # SD3 / Flux VAEs
        self.image_size = (h, w)
        self._latent_shape = (int(config.latent_channels), h // factor, w // factor)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """``(latent_channels, H / f, W / f)`` for the VAE's downsampling factor ``f``."""
        return self._latent_shape

    @property
    def encoder(self) -> nn.Sequential:
        """The VAE encoder's stem and down blocks (shared, not copied; not registered twice)."""
        enc: Any = self.vae.encoder
        return nn.Sequential(enc.conv_in, *enc.down_blocks)

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] -> latents ``(B, *latent_shape)``."""
        return (self.vae.encode(x).latent_dist.mean - self.shift) * self.scaling

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, *latent_shape)`` -> images ``(B, C, H, W)`` in [-1, 1]: clamped in
        the forward pass, the gradient passed straight through (so it does not vanish where
        the VAE overshoots the range)."""
        y = self.vae.decode(z / self.scaling + self.shift).sample
        return y + (y.clamp(-1.0, 1.0) - y).detach()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        subfolder: str | None = None,
        image_size: int | tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> DiffusersAutoencoder:
        """Load ``AutoencoderKL.from_pretrained(name_or_path, subfolder=...)`` from safetensors
        only, strictly (every weight present and used), in eval mode with frozen parameters.

        ``name_or_path``: a local folder its ``save_pretrained`` wrote (``~`` expanded) or a
        hub id such as ``"stabilityai/sd-vae-ft-mse"``; the VAE of a pipeline repo is
        ``subfolder="vae"``. ``kwargs`` go to diffusers (e.g. ``torch_dtype``; SD-family VAEs
        overflow in float16, so keep them in float32 on CPU).

        A hub id's config and weights are fetched (or found in the local cache) as cfx's other
        hub models are, one reachability check and no retries, and diffusers reads the local
        copy: given the hub id, diffusers probed for files the cache does not hold, retrying
        an unreachable hub for about 25 s. With hub options in ``kwargs`` (``revision``,
        ``cache_dir``, ``token``, ...) diffusers fetches.
        """
        from diffusers import AutoencoderKL

        from cfx.zoo import CONFIG_NAME, DIFFUSERS_WEIGHTS
        from cfx.zoo.pretrained import resolve_folder

        fixed = sorted(FIXED_OPTIONS & kwargs.keys())
        if fixed:  # diffusers' "got multiple values for keyword argument" named no reason
            raise TypeError(
                f"{', '.join(f'`{k}`' for k in fixed)} cannot be passed: cfx loads VAEs from "
                "safetensors only, fully in memory, and reads diffusers' loading info itself"
            )
        where = str(name_or_path)
        path = Path(where).expanduser()
        if path.exists() or isinstance(name_or_path, Path) or where.startswith((".", "/", "~")):
            if not path.is_dir():
                raise CheckpointError(f"`{name_or_path}`: no such folder ({path.absolute()})")
            pipeline = (path / "model_index.json").is_file() and not (path / CONFIG_NAME).is_file()
            if subfolder is None and pipeline:  # its VAE is a subfolder
                raise CheckpointError(
                    f"`{name_or_path}` is a diffusers pipeline folder (model_index.json): "
                    'pass its VAE, subfolder="vae" (or load_generator, which finds it)'
                )
            if subfolder is not None and not (path / subfolder / CONFIG_NAME).is_file():
                raise CheckpointError(  # diffusers named the parent folder's missing config
                    f"`{name_or_path}` has no {CONFIG_NAME} in its subfolder {subfolder!r} "
                    f"({path / subfolder}); its subfolders: "
                    f"{sorted(p.name for p in path.iterdir() if p.is_dir()) or 'none'}"
                )
            where = str(path)
        elif not HUB_OPTIONS & kwargs.keys():  # a hub id: its two files, as cfx fetches
            files = tuple(
                f if subfolder is None else f"{subfolder}/{f}"
                for f in (CONFIG_NAME, DIFFUSERS_WEIGHTS)
            )
            where, subfolder = str(resolve_folder(where, files=files)), None
        try:
            vae, info = AutoencoderKL.from_pretrained(
                where,
                subfolder=subfolder,
                use_safetensors=True,  # never fall back to pickled .bin weights
                low_cpu_mem_usage=False,
                output_loading_info=True,
                **kwargs,
            )
        # a damaged config.json fails inside diffusers' constructors: a missing
        # block_out_channels as IndexError, "block_out_channels": 8 as TypeError
        except (OSError, ValueError, RuntimeError, TypeError, IndexError, KeyError) as err:
            raise CheckpointError(
                f"`{name_or_path}` could not be loaded as a diffusers AutoencoderKL from "
                f"safetensors (is its config.json damaged?): {type(err).__name__}: {err}"
            ) from err
        problems = {k: v for k, v in info.items() if v}  # missing, unexpected, mismatched keys
        if problems:
            raise CheckpointError(
                f"`{name_or_path}`: the weights do not match the VAE's config: {problems}"
            )
        vae.eval()
        for p in vae.parameters():
            p.requires_grad_(False)
        return cls(vae, image_size=image_size).eval()
