"""A diffusers ``AutoencoderKL`` as a cfx generator with an encoder.

Latent-space counterfactuals need a generator ``G`` and, for inversion, an encoder; a
pretrained variational autoencoder provides both (Latent Shift, Cohen et al., "Gifsplanation
via Latent Shift", MIDL 2021, walks an autoencoder's latent space in the same way). This wraps
any ``diffusers.AutoencoderKL`` (a hub id or a folder written by its ``save_pretrained``) as an
:class:`~cfx.types.Invertible`:

* ``encode(x)`` is the posterior mean times the VAE's ``scaling_factor`` (roughly unit
  variance, so the inversion's ``||z||^2`` prior and the explainers' step sizes mean the same
  as for a GAN latent); ``decode(z)`` undoes the scaling;
* ``encoder`` is the VAE encoder's stem and down blocks as an ``nn.Sequential``, which
  :func:`~cfx.inversion.invert` uses as its perceptual loss when LPIPS is not available.

Images are ``(B, C, H, W)`` in [-1, 1], the range diffusers VAEs are trained on; decoded frames
are returned as the VAE gives them (not clamped, so gradients do not vanish at the range's
ends). Only safetensors weights are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from cfx.errors import CheckpointError


class DiffusersAutoencoder(nn.Module):
    """A diffusers ``AutoencoderKL`` (``vae``) with ``latent_shape``, ``encode`` and ``decode``
    in cfx's conventions. ``image_size`` (``(H, W)`` or one int) defaults to the VAE config's
    ``sample_size``."""

    def __init__(self, vae: Any, *, image_size: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        config = vae.config
        size = config.sample_size if image_size is None else image_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        factor = 2 ** (len(config.block_out_channels) - 1)
        if h % factor or w % factor:
            raise ValueError(
                f"`image_size` must be divisible by the VAE's downsampling factor {factor}, "
                f"got {(h, w)}"
            )
        self.vae = vae
        self.scaling = float(config.scaling_factor)
        self.image_size = (h, w)
        self._latent_shape = (int(config.latent_channels), h // factor, w // factor)
        enc = vae.encoder
        self.encoder = nn.Sequential(enc.conv_in, *enc.down_blocks)  # shared, for features

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self._latent_shape

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] -> latents ``(B, *latent_shape)``."""
        return self.vae.encode(x).latent_dist.mean * self.scaling

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, *latent_shape)`` -> images ``(B, C, H, W)``, about [-1, 1]."""
        return self.vae.decode(z / self.scaling).sample

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        subfolder: str | None = None,
        image_size: int | tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> DiffusersAutoencoder:
        """Load ``AutoencoderKL.from_pretrained(name_or_path, subfolder=...)`` (a hub id such as
        ``"stabilityai/sd-vae-ft-mse"`` or a local folder; ``kwargs`` go to diffusers) from
        safetensors only, in eval mode with frozen parameters."""
        from diffusers import AutoencoderKL

        try:
            vae = AutoencoderKL.from_pretrained(
                str(name_or_path),
                subfolder=subfolder,
                use_safetensors=True,  # never fall back to pickled .bin weights
                low_cpu_mem_usage=False,
                **kwargs,
            )
        except (OSError, ValueError) as err:
            raise CheckpointError(
                f"`{name_or_path}` could not be loaded as a diffusers AutoencoderKL from "
                f"safetensors: {err}"
            ) from err
        vae.eval()
        for p in vae.parameters():
            p.requires_grad_(False)
        return cls(vae, image_size=image_size).eval()
