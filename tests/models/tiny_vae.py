"""A tiny diffusers AutoencoderKL for one-channel images, for tests that save it locally."""

import torch
from diffusers import AutoencoderKL


def tiny_vae(seed: int = 0, size: int = 16) -> AutoencoderKL:
    """An untrained VAE for ``(B, 1, size, size)`` images, latents ``(2, size/2, size/2)``,
    the same for the same ``seed`` (the global generator is left as it was)."""
    with torch.random.fork_rng():  # diffusers initialises from the global generator
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            in_channels=1,
            out_channels=1,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            block_out_channels=(8, 16),
            layers_per_block=1,
            latent_channels=2,
            norm_num_groups=4,
            sample_size=size,
        )
    return vae.eval()
