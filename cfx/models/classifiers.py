"""Classifiers and a segmenter for 64x64 grayscale slices: the model to explain, an oracle, a U-Net.

Three deliberately different architectures, each a plain ``nn.Module`` with a frozen dataclass
config and ``save_pretrained``/``from_pretrained`` (:class:`~cfx.zoo.pretrained.PretrainedMixin`):

* :class:`BrainCNN` - the classifier to be explained: a VGG-style stack of 3x3 conv blocks
  (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
  ICLR 2015) with GroupNorm (Wu & He, "Group Normalization", ECCV 2018) so that no output depends
  on batch statistics, ReLU as ``nn.ReLU`` modules (saliency attacks swap them for softplus),
  and global average pooling before one linear layer, the layout Grad-CAM expects (Selvaraju et
  al., "Grad-CAM", ICCV 2017): hook ``model.features[-1]``, the last conv block (8x8 maps).
* :class:`BrainOracle` - an independent judge used only for evaluation (oracle agreement,
  Frechet distances): a small residual network of basic blocks with strided convolutions and
  GELU (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016); its
  :meth:`BrainOracle.features` returns the pooled penultimate features ``(B, D)``.
* :class:`BrainSegmenter` - a small U-Net (Ronneberger et al., "U-Net: Convolutional Networks
  for Biomedical Image Segmentation", MICCAI 2015) returning lesion-mask logits.

Images are ``(B, C, 64, 64)`` float tensors in [-1, 1]; classifiers return logits ``(B, K)``,
the segmenter mask logits ``(B, 1, 64, 64)`` (probability = sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cfx.errors import check_int
from cfx.zoo.pretrained import PretrainedMixin


def _check_positive(config: object, *names: str) -> None:
    """Each of ``names`` an int >= 1 (a numpy int is stored as an int: configs go to JSON)."""
    for name in names:
        object.__setattr__(config, name, check_int(name, getattr(config, name)))


def _check_group_width(width: int, levels: int) -> None:
    """An error unless every layer's channels, ``width`` doubled up to ``levels - 1`` times,
    split into ``min(8, channels)`` GroupNorm groups (a width of 12 met PyTorch's
    "num_channels (12) must be divisible by num_groups (8)" when the model was built, after
    the data was read)."""
    bad = [c for c in (width * 2**k for k in range(levels)) if c % min(8, c)]
    if bad:
        raise ValueError(
            f"`width` must give layers of channels GroupNorm can split into min(8, channels) "
            f"groups (each under 8 or a multiple of 8: a width of 1, 2, 4 or a multiple of 8 "
            f"always does), got {width}, whose layers have {bad[0]} channels"
        )


def _check_image_size(config: Any) -> None:
    """``config.image_size`` is None or ``(H, W)``, two positive ints; a JSON list (as
    ``config.json`` holds it) becomes a tuple."""
    size = config.image_size
    if isinstance(size, list):
        size = tuple(size)
        object.__setattr__(config, "image_size", size)  # frozen: set once, while built
    if size is not None and not (
        isinstance(size, tuple)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValueError(f"`image_size` must be None or (H, W), two positive ints, got {size!r}")


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


# --- BrainCNN ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrainCNNConfig:
    """Architecture of :class:`BrainCNN`; checked when built.

    Attributes:
        channels: image channels ``C`` of the ``(B, C, 64, 64)`` inputs (1 = grayscale).
        num_classes: classes ``K`` of the ``(B, K)`` logits (>= 2).
        width: channels of the first conv block; doubles at each block.
        blocks: conv blocks, 1 to 6; all but the last halve the resolution (64 -> 8 for 4), so
            ``features[-1]`` outputs ``(B, width * 2**(blocks - 1), 64 / 2**(blocks - 1), ...)``.
        image_size: ``(H, W)`` of the images the model was trained on, recorded by ``cfx train
            classifier`` so that the command line can warn when other sizes are given (a
            convolutional model's answers change with the scale it sees); None: not recorded.
            The architecture itself takes any size of at least ``2**(blocks - 1)`` pixels a
            side (each pooling halves it).
    """

    channels: int = 1
    num_classes: int = 2
    width: int = 16  # channels of the first block; doubles at each block
    blocks: int = 4  # conv blocks; all but the last halve the resolution (64 -> 8 for 4)
    image_size: tuple[int, int] | None = None  # (H, W) trained on; None: not recorded

    def __post_init__(self) -> None:
        _check_positive(self, "channels", "num_classes", "width", "blocks")
        _check_group_width(self.width, min(self.blocks, 6))  # more blocks: refused below
        _check_image_size(self)
        if self.num_classes < 2:
            raise ValueError(f"`num_classes` must be at least 2, got {self.num_classes}")
        if self.blocks > 6:
            raise ValueError(f"`blocks` must be at most 6 for 64x64 images, got {self.blocks}")


class BrainCNN(PretrainedMixin, nn.Module):
    """Plain ReLU CNN: ``features`` (conv blocks) -> ``head`` (global average pool + linear).

    ``features[i]`` is ``Sequential(Conv2d 3x3, GroupNorm, ReLU[, MaxPool2d 2])``; the last block
    has no pooling, so ``features[-1]`` outputs the ``(B, width * 2**(blocks-1), 8, 8)`` maps
    Grad-CAM needs. Input images ``(B, channels, 64, 64)`` in [-1, 1]; output logits
    ``(B, num_classes)``. Satisfies :class:`cfx.types.Classifier`.
    """

    config_class = BrainCNNConfig

    def __init__(self, config: BrainCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or BrainCNNConfig()
        cfg = self.config
        blocks: list[nn.Module] = []
        cin = cfg.channels
        for i in range(cfg.blocks):
            cout = cfg.width * 2**i
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1), _norm(cout), nn.ReLU()]
            if i < cfg.blocks - 1:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, cfg.num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)  # (B, C', 64 / 2**(blocks-1), same)
        return self.head(h)  # (B, num_classes)


# --- BrainOracle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrainOracleConfig:
    """Architecture of :class:`BrainOracle`; checked when built.

    Attributes:
        channels: image channels ``C`` of the ``(B, C, 64, 64)`` inputs (1 = grayscale).
        num_classes: classes ``K`` of the ``(B, K)`` logits (>= 2).
        width: stem channels; the two strided stages double it, so the penultimate features
            are ``(B, D)`` with ``D = 4 * width``.
        image_size: ``(H, W)`` of the images the model was trained on, recorded by ``cfx train
            classifier`` so that the command line can warn when other sizes are given (a
            convolutional model's answers change with the scale it sees); None: not recorded.
            The architecture itself takes any size.
    """

    channels: int = 1
    num_classes: int = 2
    width: int = 24  # stem channels; the two strided stages double it, so D = 4 * width
    image_size: tuple[int, int] | None = None  # (H, W) trained on; None: not recorded

    def __post_init__(self) -> None:
        _check_positive(self, "channels", "num_classes", "width")
        _check_group_width(self.width, 3)  # width, 2x, 4x
        _check_image_size(self)
        if self.num_classes < 2:
            raise ValueError(f"`num_classes` must be at least 2, got {self.num_classes}")


class _ResBlock(nn.Module):
    """Two 3x3 convs with GroupNorm and GELU around a skip (1x1 conv when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
            _norm(cout),
            nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            _norm(cout),
        )
        self.skip: nn.Module = (
            nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else nn.Identity()
        )
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.skip(x))


class BrainOracle(PretrainedMixin, nn.Module):
    """Residual classifier with strided convs and GELU, independent of :class:`BrainCNN`.

    Images ``(B, channels, 64, 64)`` in [-1, 1]; :meth:`features` gives ``(B, feature_dim)``
    (global-average-pooled last stage, used for Frechet distances), ``forward`` the logits
    ``(B, num_classes)``.
    """

    config_class = BrainOracleConfig

    def __init__(self, config: BrainOracleConfig | None = None) -> None:
        super().__init__()
        self.config = config or BrainOracleConfig()
        w = self.config.width
        self.stem = nn.Sequential(
            nn.Conv2d(self.config.channels, w, 3, stride=2, padding=1), _norm(w), nn.GELU()
        )
        self.stages = nn.Sequential(
            _ResBlock(w, 2 * w, stride=2),  # (B, 2w, 16, 16)
            _ResBlock(2 * w, 4 * w, stride=2),  # (B, 4w, 8, 8)
            _ResBlock(4 * w, 4 * w, stride=1),  # (B, 4w, 8, 8)
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * w, self.config.num_classes)

    @property
    def feature_dim(self) -> int:
        """``D = 4 * width``, the size of :meth:`features`' ``(B, D)`` output."""
        return 4 * self.config.width

    def features(self, x: Tensor) -> Tensor:
        """Images in [-1, 1] ``(B, C, 64, 64)`` -> penultimate features ``(B, feature_dim)``."""
        h = self.stem(x)  # (B, w, 32, 32)
        h = self.stages(h)  # (B, 4w, 8, 8)
        return self.pool(h)  # (B, 4w)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))  # (B, num_classes)


# --- BrainSegmenter ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrainSegmenterConfig:
    """Architecture of :class:`BrainSegmenter`; checked when built.

    Attributes:
        channels: image channels ``C`` of the ``(B, C, 64, 64)`` inputs (1 = grayscale).
        width: channels at full resolution; doubles at each of the 2 downsamplings.
        image_size: ``(H, W)`` of the images the model was trained on, recorded by ``cfx train
            classifier`` so that the command line can warn when other sizes are given (a
            convolutional model's answers change with the scale it sees); None: not recorded.
            The architecture itself takes any height and width divisible by 4 (its two
            downsamplings and upsamplings must meet).
    """

    channels: int = 1
    width: int = 16  # channels at full resolution; doubles at each of the 2 downsamplings
    image_size: tuple[int, int] | None = None  # (H, W) trained on; None: not recorded

    def __post_init__(self) -> None:
        _check_positive(self, "channels", "width")
        _check_group_width(self.width, 3)  # width, 2x, 4x
        _check_image_size(self)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        _norm(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        _norm(cout),
        nn.ReLU(),
    )


class BrainSegmenter(PretrainedMixin, nn.Module):
    """Three-level U-Net: images ``(B, channels, 64, 64)`` in [-1, 1] -> mask logits.

    Output ``(B, 1, 64, 64)`` logits of the lesion mask (probability = sigmoid).
    """

    config_class = BrainSegmenterConfig

    def __init__(self, config: BrainSegmenterConfig | None = None) -> None:
        super().__init__()
        self.config = config or BrainSegmenterConfig()
        w = self.config.width
        self.enc1 = _double_conv(self.config.channels, w)
        self.enc2 = _double_conv(w, 2 * w)
        self.bottom = _double_conv(2 * w, 4 * w)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = _double_conv(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = _double_conv(2 * w, w)
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 4 and (x.shape[-2] % 4 or x.shape[-1] % 4):
            raise ValueError(  # torch said "Sizes of tensors must match" inside torch.cat
                f"BrainSegmenter takes images whose height and width are divisible by 4 (two "
                f"downsamplings meet two upsamplings), got {x.shape[-2]}x{x.shape[-1]}"
            )
        e1 = self.enc1(x)  # (B, w, 64, 64)
        e2 = self.enc2(self.pool(e1))  # (B, 2w, 32, 32)
        b = self.bottom(self.pool(e2))  # (B, 4w, 16, 16)
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))  # (B, 2w, 32, 32)
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))  # (B, w, 64, 64)
        return self.out(d1)  # (B, 1, 64, 64)
