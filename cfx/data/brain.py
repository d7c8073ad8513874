"""Semi-synthetic brain MRI: FLAIR-like 64x64 axial slices with glioma-like lesions.

Real anatomy comes from the MNI ICBM152 2009a template (grey matter, white matter and derived
CSF maps; see ``cfx/data/anatomy/NOTICE.md``). Each slice is one "patient":

* **Anatomy**: a continuous axial level between z = -14 and +64 mm (neighbouring template slices
  interpolated), a random rotation (+-10 deg), scale (0.86-1.0), shift and a smooth elastic
  deformation.
* **FLAIR-like contrast**: CSF dark, grey matter brighter than white matter, per-patient
  intensity scale, multiplicative smooth bias field, Rician noise (so the background has the
  usual noise floor), skull-stripped.
* **Lesion** (label 1): placed in white matter well inside the brain; irregular outline
  (random harmonics and anisotropy) with a hyperintense, slightly heterogeneous core and a
  fainter oedema halo (1.4-2.2x the core radius, confined to tissue), plus a mild mass effect
  that pushes surrounding anatomy outwards. Core radii are log-uniform in 1.8-7 px and contrasts
  uniform in 0.2-0.6 (white matter ~0.45 on a [0, 1] scale), so small, faint lesions occur.
  ``masks`` is the **whole lesion: core plus oedema** (soft membership > 0.5, inside tissue).
* **Tag** (``tagged=True``): a small bright L-shaped "scanner marker" in the top-right corner
  (inside :data:`MARKER_BOX`), present with ``P(tag == label) = tag_correlation``.

Images are float32 ``(N, 1, 64, 64)`` in the cfx range [-1, 1]. Everything is drawn from one
``torch.Generator`` seeded with ``seed``: same ``(n, seed, ...)``, same data. Use different
seeds for train/val/test (see :data:`SPLIT_SEEDS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.errors import check_flag, check_integer, shape_or_type
from cfx.images import from_unit
from cfx.reprs import short_repr

SIZE = 64
_CHUNK = 256
#: rows, cols (half-open) of the corner region that holds the scanner marker.
MARKER_BOX: tuple[slice, slice] = (slice(1, 12), slice(53, 64))
#: conventional seeds for splits; any other integers work too.
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class BrainSlices:
    """A batch of rendered slices. Images are in [-1, 1]; masks are boolean."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    images: Tensor  # (N, 1, 64, 64) float32 in [-1, 1]
    labels: Tensor  # (N,) int64, 1 = tumour
    masks: Tensor  # (N, 1, 64, 64) bool, lesion (core + oedema)
    tags: Tensor  # (N,) bool, scanner marker present
    brain_masks: Tensor  # (N, 1, 64, 64) bool, intracranial region

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: Tensor | slice) -> BrainSlices:
        """Rows selected by a boolean/integer index or a slice."""
        return BrainSlices(
            images=self.images[index],
            labels=self.labels[index],
            masks=self.masks[index],
            tags=self.tags[index],
            brain_masks=self.brain_masks[index],
        )

    def __getitem__(self, index: int | Tensor | slice) -> BrainSlices:
        """``slices[0:8]``, ``slices[slices.labels == 1]``: :meth:`subset`; an int keeps the
        batch axis (``slices[3]`` holds one slice), as a TrajectoryResult's does."""
        if isinstance(index, Integral) and not isinstance(index, bool):
            n = len(self)
            if not -n <= int(index) < n:
                raise IndexError(f"slice {index} of a batch of {n}")
            i = int(index) % n
            return self.subset(slice(i, i + 1))
        if isinstance(index, int):  # a bool
            raise TypeError(f"index a batch with an int, slice or tensor, got {index!r}")
        return self.subset(index)


def marker_mask(size: int = SIZE) -> Tensor:
    """Boolean ``(1, 1, size, size)`` mask of :data:`MARKER_BOX` (for shortcut analysis)."""
    m = torch.zeros(1, 1, size, size, dtype=torch.bool)
    m[..., MARKER_BOX[0], MARKER_BOX[1]] = True
    return m


MIRROR_MIN_PIXELS = 10  # a mirrored lesion smaller than this leaves no usable fake target


def mirrored_lesion(masks: Tensor) -> Tensor:
    """Boolean ``(B, 1, H, W)``: each lesion mask mirrored left-right, minus the lesion itself.

    A fake reason inside the brain (the same shape in the healthy hemisphere), for attacks that
    steer an explanation towards a region: unlike the marker corner, it lies on brain tissue,
    where gradients are not near zero. A lesion on the midline leaves little or nothing (below
    :data:`MIRROR_MIN_PIXELS`, callers aim elsewhere or leave the image out)."""
    if not isinstance(masks, Tensor) or masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"`masks` must be (B, 1, H, W), got {shape_or_type(masks)}")
    lesion = masks != 0
    return lesion.flip(-1) & ~lesion


def load_anatomy() -> Tensor:
    """The committed template slices as a float32 ``(3, S, 128, 128)`` tensor (GM, WM, CSF)."""
    ref = resources.files("cfx.data").joinpath("anatomy/icbm152_axial.npz")
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as npz:
        maps = np.stack([npz["gm"], npz["wm"], npz["csf"]]).astype(np.float32) / 255.0
    return torch.from_numpy(maps)


def make_dataset(
    n: int,
    *,
    seed: int,
    tagged: bool = False,
    tag_correlation: float | None = None,
    show_progress: bool = False,
) -> BrainSlices:
    """Render ``n`` slices, half with a lesion (label 1), deterministically in ``seed``.

    Args:
        n: number of slices (positive int); labels are balanced (``n // 2`` tumours, plus one
            more healthy slice when ``n`` is odd), in random order.
        seed: integer seed of the generator that draws everything.
        tagged: add the scanner marker to some slices (otherwise ``tags`` is all False).
        tag_correlation: ``P(tag == label)`` in [0, 1], with ``tagged`` only (None: 0.5); 0.5
            makes tag and label independent, 0.95 gives a biased (shortcut) training set.
        show_progress: show a tqdm bar over chunks.
    """
    check_flag("show_progress", show_progress)
    if isinstance(n, bool) or not isinstance(n, Integral):  # "4" or 2.0: a type, not a value
        raise TypeError(f"`n` must be a positive int, got {n!r}")
    if n <= 0:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    n, seed = int(n), check_integer("seed", seed)  # numpy integers too
    tagged = check_flag("tagged", tagged)  # 'no' would tag every slice
    if tag_correlation is not None and not tagged:  # untagged slices have no marker
        raise ValueError(
            f"`tag_correlation` ({tag_correlation}) sets how often the scanner marker goes with "
            "the label: it needs tagged=True"
        )
    tag_correlation = 0.5 if tag_correlation is None else tag_correlation
    if (
        isinstance(tag_correlation, bool)
        or not isinstance(tag_correlation, Real)
        or not 0.0 <= float(tag_correlation) <= 1.0
    ):
        raise ValueError(f"`tag_correlation` must be a float in [0, 1], got {tag_correlation!r}")

    gen = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, dtype=torch.int64)
    labels[: n // 2] = 1
    labels = labels[torch.randperm(n, generator=gen)]
    if tagged:
        agree = torch.rand(n, generator=gen) < float(tag_correlation)
        tags = torch.where(agree, labels.bool(), ~labels.bool())
    else:
        tags = torch.zeros(n, dtype=torch.bool)

    anatomy = load_anatomy()
    images, masks, brains = [], [], []
    starts = range(0, n, _CHUNK)
    if show_progress:
        from cfx.progress import tqdm

        starts = tqdm(starts, desc="rendering brain slices", unit="chunk")
    for s in starts:
        img, mask, brain = _render(anatomy, labels[s : s + _CHUNK], tags[s : s + _CHUNK], gen)
        images.append(img)
        masks.append(mask)
        brains.append(brain)
    return BrainSlices(
        images=torch.cat(images),
        labels=labels,
        masks=torch.cat(masks),
        tags=tags,
        brain_masks=torch.cat(brains),
    )


_OUTLINE_DRAWS = ((0.0, 0.12), (0.0, 2 * math.pi)) * 2
"""The lesion outlines' draws, in order: the core's wobble amplitudes and phases, then the
oedema's."""


def _uniform(gen: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def _smooth_field(gen: torch.Generator, b: int, ch: int, grid: int, size: int) -> Tensor:
    """Smooth random field ``(b, ch, size, size)`` with unit-ish amplitude."""
    coarse = torch.randn(b, ch, grid, grid, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)


def _render(
    anatomy: Tensor, labels: Tensor, tags: Tensor, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    b = labels.shape[0]
    lesion = labels.bool()

    # --- geometry: output pixel -> template coordinates (normalised [-1, 1]) -----------------
    lin = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / SIZE * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    base = torch.stack([xx, yy], -1).expand(b, -1, -1, -1)  # (B, 64, 64, 2) as (x, y)
    angle = _uniform(gen, (b,), -10.0, 10.0) * math.pi / 180
    scale = _uniform(gen, (b,), 0.86, 1.0)
    shift = _uniform(gen, (b, 2), -0.05, 0.05)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    src = torch.einsum("bij,bhwj->bhwi", rot, base) - shift[:, None, None, :]
    elastic = _smooth_field(gen, b, 2, 5, SIZE) * 0.025  # (B, 2, 64, 64)
    src = src + elastic.permute(0, 2, 3, 1)
    level = _uniform(gen, (b,), 0.0, 1.0) * 2 - 1  # slice level in normalised depth

    def sample(points: Tensor, depth: Tensor) -> Tensor:  # (b', 64, 64, 2) -> (b', 3, 64, 64)
        grid3 = torch.cat([points, depth[:, None, None, None].expand(-1, SIZE, SIZE, 1)], -1)
        vol = anatomy[None].expand(points.shape[0], -1, -1, -1, -1)  # (b', 3, S, 128, 128)
        return F.grid_sample(vol, grid3[:, None], mode="bilinear", align_corners=False)[:, :, 0]

    maps = sample(src, level)  # (B, 3, 64, 64): GM, WM, CSF

    # --- lesion centre: white matter well inside the tissue (for label-1 slices) -----------
    tissue = (maps[:, 0] + maps[:, 1]).clamp(0, 1)
    inner = -F.max_pool2d(-tissue[:, None], (7, 1), 1, (3, 0))  # erosion by 3 px, separable
    inner = -F.max_pool2d(inner, (1, 7), 1, (0, 3))[:, 0]
    weight = (maps[:, 1] * (inner > 0.85)).flatten(1) + 1e-6 * (tissue > 0.5).flatten(1) + 1e-12
    centre_idx = torch.multinomial(weight, 1, generator=gen)[:, 0]
    cy = (centre_idx // SIZE).float() + 0.5
    cx = (centre_idx % SIZE).float() + 0.5
    radius = torch.exp(_uniform(gen, (b,), math.log(1.8), math.log(7.0)))  # core radius, px
    oedema_ratio = _uniform(gen, (b,), 1.4, 2.2)

    # --- mass effect: resample anatomy from closer to the lesion centre ---------------------
    push = _uniform(gen, (b,), 0.25, 0.5)
    rho = radius * oedema_ratio * 0.9 / (SIZE / 2)  # normalised units
    c_norm = torch.stack([cx, cy], -1) / (SIZE / 2) - 1  # (B, 2)
    ix = torch.nonzero(lesion).flatten()
    rel = base[ix] - c_norm[ix, None, None, :]
    fall = torch.exp(-(rel**2).sum(-1, keepdim=True) / (2 * rho[ix, None, None, None] ** 2))
    moved = base[ix] - push[ix, None, None, None] * rel * fall
    src_m = torch.einsum("bij,bhwj->bhwi", rot[ix], moved) - shift[ix, None, None, :]
    src_m = src_m + F.grid_sample(elastic[ix], moved, align_corners=False).permute(0, 2, 3, 1)
    maps = maps.index_copy(0, ix, sample(src_m, level[ix]))
    gm, wm, csf = maps[:, 0], maps[:, 1], maps[:, 2]
    tissue = (gm + wm).clamp(0, 1)
    brain = (gm + wm + csf) > 0.5

    # --- FLAIR-like tissue contrast ------------------------------------------------------------
    w_wm = _uniform(gen, (b, 1, 1), 0.40, 0.50)
    w_gm = w_wm + _uniform(gen, (b, 1, 1), 0.08, 0.16)
    w_csf = _uniform(gen, (b, 1, 1), 0.04, 0.12)
    img = w_gm * gm + w_wm * wm + w_csf * csf  # (B, 64, 64)

    # --- lesion: irregular core + oedema halo ---------------------------------------------------
    # every slice's draws are made (the stream stays the same), but only the lesion slices'
    # pixels are computed: per-slice elementwise work, so their values are as for the batch
    # L = len(ix) lesion slices
    orient = _uniform(gen, (b, 1, 1), 0.0, math.pi)[ix]  # (L, 1, 1)
    aspect = _uniform(gen, (b, 1, 1), 1.0, 1.5)[ix]  # (L, 1, 1)
    wobbles = [_uniform(gen, (b, 4, 1, 1), *span)[ix] for span in _OUTLINE_DRAWS]  # (L, 4, 1, 1)
    contrast = _uniform(gen, (b, 1, 1), 0.2, 0.6)[ix]  # (L, 1, 1)
    coarse = torch.randn(b, 1, 8, 8, generator=gen)[ix]  # (L, 1, 8, 8), the texture's field
    mix = _uniform(gen, (b, 1, 1), 0.35, 0.65)[ix]  # (L, 1, 1)
    mask = torch.zeros(b, SIZE, SIZE, dtype=torch.bool)
    if len(ix):
        pix = torch.arange(SIZE, dtype=torch.float32) + 0.5
        dy = pix[None, :, None] - cy[ix, None, None]
        dx = pix[None, None, :] - cx[ix, None, None]
        u = (dx * torch.cos(orient) + dy * torch.sin(orient)) / aspect.sqrt()
        v = (-dx * torch.sin(orient) + dy * torch.cos(orient)) * aspect.sqrt()
        r = torch.sqrt(u**2 + v**2)
        theta = torch.atan2(v, u)
        k = torch.arange(2, 6, dtype=torch.float32)[None, :, None, None]

        def outline(rad: Tensor, amp: Tensor, phase: Tensor) -> Tensor:  # r(theta), (L, 64, 64)
            wobble = (amp * torch.cos(k * theta[:, None] + phase)).sum(1)
            return rad[:, None, None] * (1 + wobble)

        on_tissue = tissue[ix]
        core = torch.sigmoid((outline(radius[ix], *wobbles[:2]) - r) / 0.5) * on_tissue
        halo = outline((radius * oedema_ratio)[ix], *wobbles[2:])
        oedema = torch.sigmoid((halo - r) / 0.8) * on_tissue
        field = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
        texture = 1 + 0.12 * field[:, 0]
        core_val = (w_wm[ix] + contrast) * texture
        oedema_val = w_wm[ix] + contrast * mix
        sub = img[ix]
        sub = sub + oedema * (torch.maximum(sub, oedema_val) - sub)
        sub = sub + core * (core_val - sub)
        img = img.index_copy(0, ix, sub)
        lesion_mask = (torch.maximum(core, oedema) > 0.5) & (on_tissue > 0.3)
        mask = mask.index_copy(0, ix, lesion_mask)

    # --- scanner marker: an L-shaped glyph in the top-right corner -------------------------------
    glyph = torch.zeros(b, SIZE, SIZE)
    oy = torch.randint(0, 2, (b,), generator=gen)
    ox = torch.randint(0, 2, (b,), generator=gen)
    level_tag = _uniform(gen, (b,), 0.75, 0.95)
    for i in torch.nonzero(tags).flatten().tolist():
        y0, x0 = 2 + int(oy[i]), 55 + int(ox[i])
        glyph[i, y0 : y0 + 7, x0 : x0 + 2] = level_tag[i]  # vertical bar
        glyph[i, y0 + 5 : y0 + 7, x0 : x0 + 6] = level_tag[i]  # foot

    # --- acquisition: intensity scale, bias field, Rician noise ---------------------------------
    img = img * _uniform(gen, (b, 1, 1), 0.85, 1.15)
    img = img * torch.exp(0.15 * _smooth_field(gen, b, 1, 3, SIZE)[:, 0])
    img = torch.maximum(img, glyph)
    sigma = _uniform(gen, (b, 1, 1), 0.01, 0.035)
    n1 = torch.randn(b, SIZE, SIZE, generator=gen) * sigma
    n2 = torch.randn(b, SIZE, SIZE, generator=gen) * sigma
    img = torch.sqrt((img + n1) ** 2 + n2**2).clamp(0, 1)
    return from_unit(img)[:, None].float(), mask[:, None], brain[:, None]
