"""BrainGAN: a small VAE-GAN (encoder + generator) for 64x64 grayscale slices.

Architecture in the spirit of Larsen et al., "Autoencoding beyond pixels using a learned
similarity metric" (ICML 2016) with the encoder-as-inverter idea of Zhu et al., "In-Domain GAN
Inversion for Real Image Editing" (ECCV 2020): a convolutional encoder maps an image to a
Gaussian posterior over a ``latent_dim`` vector, the generator decodes latents to images, and a
spectral-norm discriminator (training only, :class:`BrainDiscriminator`) makes both prior
samples and reconstructions realistic. Because the generator is trained on prior samples
``z ~ N(0, I)`` too, it is a proper generator; because it is trained to reconstruct through
the encoder, inversion is accurate.

Images are ``(B, C, 64, 64)`` in [-1, 1]; latents are ``(B, latent_dim)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from cfx.errors import check_int
from cfx.zoo.pretrained import PretrainedMixin


@dataclass(frozen=True)
class BrainGANConfig:
    """Architecture of :class:`BrainGAN` and its :class:`BrainDiscriminator`; checked when built.

    Attributes:
        image_size: side of the square images; must be 64 (images ``(B, C, 64, 64)``).
        channels: image channels ``C`` (1 = grayscale).
        latent_dim: size ``d`` of the latents ``(B, d)``, ~N(0, I) under the prior.
        width: channels at full resolution; doubles at each halving (even).
    """

    image_size: int = 64
    channels: int = 1
    latent_dim: int = 128
    width: int = 32  # channels at full resolution; doubles at each halving

    def __post_init__(self) -> None:
        size = check_int("image_size", self.image_size)  # "64" was "must be 64, got 64"
        if size != 64:
            raise ValueError(f"`image_size` must be 64, got {size}")
        object.__setattr__(self, "image_size", size)
        for name in ("channels", "latent_dim", "width"):  # bools refused, numpy ints kept as ints
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        if self.width % 2:
            raise ValueError(f"`width` must be even, got {self.width}")
        # GroupNorm splits each layer's channels, width / 2 to 8 x width, into min(8, C) groups
        bad = [c for c in (self.width // 2 * 2**k for k in range(5)) if c % min(8, c)]
        if bad:
            raise ValueError(
                f"`width` must give layers of channels GroupNorm can split into min(8, "
                f"channels) groups (width / 2 to 8 x width, each under 8 or a multiple of 8: "
                f"2, 4, 8 or a multiple of 16 always does), got {self.width}, whose layers have "
                f"{bad[0]} channels"
            )


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class _Up(nn.Module):
    """Transposed 4x4 conv (x2), then optionally a 3x3 refinement conv; GroupNorm + LeakyReLU."""

    def __init__(self, cin: int, cout: int, *, refine: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cin, cout, 4, 2, 1),
            _norm(cout),
            nn.LeakyReLU(0.2),
        ]
        if refine:
            layers += [nn.Conv2d(cout, cout, 3, padding=1), _norm(cout), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class BrainGAN(PretrainedMixin, nn.Module):
    """Encoder + generator; satisfies :class:`cfx.types.Invertible`."""

    config_class = BrainGANConfig

    def __init__(self, config: BrainGANConfig | None = None) -> None:
        super().__init__()
        self.config = config or BrainGANConfig()
        w, c, d = self.config.width, self.config.channels, self.config.latent_dim
        # encoder: 64 -> 32 -> 16 -> 8 -> 4
        self.encoder = nn.Sequential(
            nn.Conv2d(c, w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            _norm(2 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
            _norm(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 8 * w, 4, 2, 1),
            _norm(8 * w),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(8 * w * 16, 2 * d),
        )
        # generator: 4 -> 8 -> 16 -> 32 -> 64
        self.stem = nn.Linear(d, 8 * w * 16)
        self.blocks = nn.Sequential(
            _Up(8 * w, 4 * w),  # (B, 4w, 8, 8)
            _Up(4 * w, 2 * w),  # (B, 2w, 16, 16)
            _Up(2 * w, w),  # (B, w, 32, 32)
            _Up(w, w // 2, refine=False),  # (B, w/2, 64, 64)
        )
        self.to_image = nn.Conv2d(w // 2, c, 3, padding=1)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """``(latent_dim,)``: the shape of one latent."""
        return (self.config.latent_dim,)

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` -> images ``(B, C, 64, 64)`` in [-1, 1]."""
        h = self.stem(z).view(z.shape[0], 8 * self.config.width, 4, 4)  # (B, 8w, 4, 4)
        h = nn.functional.leaky_relu(h, 0.2)
        return torch.tanh(self.to_image(self.blocks(h)))  # (B, C, 64, 64)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance ``(B, latent_dim)`` of q(z | x) for images in [-1, 1]."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 6.0)

    def encode(self, x: Tensor) -> Tensor:
        """Images in [-1, 1] -> latents (posterior mean), the starting point for inversion."""
        return self.posterior(x)[0]

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z)


class BrainDiscriminator(nn.Module):
    """Spectral-norm convolutional critic used only while training :class:`BrainGAN`."""

    def __init__(self, config: BrainGANConfig | None = None) -> None:
        super().__init__()
        cfg = config or BrainGANConfig()
        w, c = cfg.width, cfg.channels
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(c, w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * w, 8 * w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = spectral_norm(nn.Linear(8 * w * 16, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))[:, 0]  # (B,)
