"""Reading users' image files (PNG, JPEG, BMP, TIFF) as cfx images, and mask files as masks.

Pictures become ``(1, C, H, W)`` floats in [-1, 1]: grey for one channel, RGB for three,
16-bit grey scaled by 65535, 32-bit float files only when they hold [0, 1]. A mask file holds
0 for the background and one other value for the region (0/1, 0/255, 0/65535 alike); more
values than that (a JPEG's compression, an anti-aliased edge) are refused rather than guessed
at. Errors and warnings call the file by ``name``, the option that gave it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from cfx.images import from_unit

log = logging.getLogger(__name__)

IMAGE_FILES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
BATCH_FILES = (".npy", ".pt")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""Pillow modes of one-channel files (LA: grey with alpha, which is dropped)."""


def image_files(folder: Path, name: str = "--input") -> list[Path]:
    """The image files of ``folder`` (by extension, sorted by name as strings, so
    ``slice_10`` comes before ``slice_2``; other files and hidden ones, such as macOS ``._``
    files, are skipped)."""
    files = sorted(
        f
        for f in folder.iterdir()
        if f.is_file() and f.suffix.lower() in IMAGE_FILES and not f.name.startswith(".")
    )
    if not files:
        raise ValueError(
            f"`{name}` folder {folder} holds no image files ({', '.join(IMAGE_FILES)})"
        )
    return files


def check_input_path(path: Path, name: str = "--input") -> list[Path] | None:
    """A readable-looking input: a folder of images, or a file of a known extension.
    Returns the image files it names (:func:`image_files`), or None for a batch file."""
    if path.is_dir():
        return image_files(path, name)
    if path.suffix.lower() not in IMAGE_FILES + BATCH_FILES:
        raise ValueError(
            f"`{name}` must be an image file ({', '.join(IMAGE_FILES)}), a folder of them "
            f"or a batch ({', '.join(BATCH_FILES)}), got {path.name!r}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"`{name}` file not found: {path}")
    return [path] if path.suffix.lower() in IMAGE_FILES else None


def _open(path: Path, name: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"`{name}` is not a readable image: {path} ({err})") from None
    pages = int(getattr(img, "n_frames", 1))
    if pages > 1:
        log.warning(
            "`%s` %s holds %d pages (a stack?); only the first is read: save the slices as "
            "one .npy batch to use them all",
            name,
            path.name,
            pages,
        )
    return img


def file_channels(path: Path, name: str = "--input") -> int:
    """1 for a grey file (8-, 16-bit or float, with or without alpha), 3 for any other."""
    return 1 if _open(path, name).mode in GREY_MODES else 3


def read_image(
    path: Path, channels: int, size: tuple[int, int] | None = None, name: str = "--input"
) -> Tensor:
    """One image file as ``(1, channels, H, W)`` in [-1, 1]; resized bilinearly to ``size``
    ``(H, W)`` when given (with a warning when that stretches its aspect), else at its own
    size. Warns when a 16-bit file uses only 12 bits (it then reads dark)."""
    if channels not in (1, 3):
        raise ValueError(
            f"`{name}` image files are read as 1 or 3 channels, and the model takes {channels}; "
            "pass a .npy batch instead"
        )
    img = _open(path, name)
    if img.mode == "F":  # 32-bit float: only [0, 1] has an unambiguous meaning
        raw = np.asarray(img, dtype=np.float32)
        if not np.isfinite(raw).all():
            raise ValueError(
                f"`{name}` {path.name} holds {int((~np.isfinite(raw)).sum())} NaN or infinite "
                "pixels"
            )
        if raw.min() < 0.0 or raw.max() > 1.0:
            raise ValueError(
                f"`{name}` is a floating-point image with values {raw.min():.3g}.."
                f"{raw.max():.3g}; save it as 8- or 16-bit, as [0, 1] floats, or as a .npy "
                "batch in [-1, 1]"
            )
        unit = np.repeat(raw[None], channels, axis=0)  # (C, H, W)
    elif img.mode.startswith("I"):  # 16/32-bit grey (common for MRI): full scale is 65535
        raw = np.asarray(img, dtype=np.float32)
        if raw.max() > 65535:
            log.warning(
                "`%s` has values up to %d, above 16-bit full scale: they are clipped",
                name,
                int(raw.max()),
            )
        elif 0 < raw.max() <= 4095:
            log.warning(
                "`%s` is a 16-bit image whose brightest pixel is %d of 65535 (12-bit data?); "
                "it is read as value / 65535, i.e. dark; rescale it to the full range first",
                name,
                int(raw.max()),
            )
        unit = np.repeat(raw[None] / 65535.0, channels, axis=0)  # (C, H, W)
    else:
        rgb = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
        unit = (rgb[None] if channels == 1 else rgb.transpose(2, 0, 1)) / 255.0  # (C, H, W)
    x = from_unit(torch.from_numpy(np.ascontiguousarray(unit)).clamp(0, 1)[None])
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        h, w = size
        if abs(x.shape[-1] / x.shape[-2] - w / h) > 0.01:
            log.warning(
                "`%s` is %dx%d pixels; it is stretched to %dx%d",
                name,
                x.shape[-1],
                x.shape[-2],
                w,
                h,
            )
        x = torch.nn.functional.interpolate(
            x, size=(h, w), mode="bilinear", align_corners=False, antialias=True
        ).clamp(-1, 1)
    return x


def read_images(
    files: list[Path], channels: int, size: tuple[int, int] | None = None, name: str = "--input"
) -> Tensor:
    """Image files as one batch ``(N, channels, H, W)``, in the order given. With ``size``
    None every file must be as large as the first (nothing is resized)."""
    images = [read_image(f, channels, size, name) for f in files]
    first = tuple(images[0].shape[-2:])
    for f, x in zip(files, images, strict=True):
        if tuple(x.shape[-2:]) != first:
            raise ValueError(
                f"`{name}` images must all be one size: {files[0].name} is "
                f"{first[1]}x{first[0]} pixels, {f.name} is {x.shape[-1]}x{x.shape[-2]}; "
                "resize them first"
            )
    return torch.cat(images)


def read_mask(
    path: Path, size: tuple[int, int], name: str = "--masks", *, resize: bool = False
) -> Tensor:
    """A mask file as ``(1, 1, H, W)`` bool: True where the file is not 0. It may hold 0 and
    one other value only. Its size must be ``size`` ``(H, W)``, its image's; with ``resize``
    a mask of another size is resized to it by nearest neighbour, as its image was resized
    (bilinearly) to a generator's size."""
    img = _open(path, name)
    raw = np.asarray(img if img.mode in GREY_MODES else img.convert("L"))
    if raw.ndim == 3:  # grey with alpha
        raw = raw[..., 0]
    if tuple(raw.shape) != tuple(size) and not resize:
        raise ValueError(
            f"`{name}` {path.name} is {raw.shape[1]}x{raw.shape[0]} pixels; its image is "
            f"{size[1]}x{size[0]}"
        )
    values = np.unique(raw)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        raise ValueError(
            f"`{name}` {path.name} holds {values.size} distinct values; a mask file holds 0 "
            "for the background and one value for the region (save masks as PNG: JPEG's "
            "compression adds values)"
        )
    mask = torch.from_numpy(raw != 0)[None, None]
    if tuple(raw.shape) != tuple(size):
        mask = torch.nn.functional.interpolate(mask.float(), size=size, mode="nearest") > 0.5
    return mask


def load_masks_for(
    path: Path,
    images: Tensor,
    files: list[Path] | None,
    name: str = "--masks",
    *,
    images_name: str = "--input",
    resize: bool = False,
) -> Tensor:
    """Masks ``(N, 1, H, W)`` bool for ``images`` ``(N, C, H, W)``: mask files matched by
    name (:func:`mask_files`; ``resize`` as for :func:`read_mask`) to the image ``files``
    the images were read from (the option ``images_name`` gave), or a .npy/.pt batch in the
    images' order (:func:`cfx.data.io.load_masks`)."""
    if path.is_dir() or path.suffix.lower() in IMAGE_FILES:
        if files is None:
            raise ValueError(
                f"`{name}` as image files go with `{images_name}` image files (a folder or "
                f"one file); for a .npy/.pt `{images_name}` give `{name}` as a .npy/.pt "
                "batch too"
            )
        if not path.exists():
            raise FileNotFoundError(f"`{name}` file not found: {path}")
        size = (int(images.shape[-2]), int(images.shape[-1]))
        return torch.cat(
            [read_mask(f, size, name, resize=resize) for f in mask_files(files, path, name)]
        )
    from cfx.data.io import load_masks

    return load_masks(path, images, name=name)


def mask_files(images: list[Path], masks: Path, name: str = "--masks") -> list[Path]:
    """The mask file of each image file: the file of ``masks`` (a folder) with the image's
    name up to its extension (``scan_1.jpg`` -> ``scan_1.png``), or ``masks`` itself when it
    is one file for one image."""
    if masks.is_file():
        if len(images) != 1:
            raise ValueError(
                f"`{name}` is one file, for {len(images)} images; give a folder with a mask "
                "file per image, named as the image"
            )
        return [masks]
    by_stem: dict[str, list[Path]] = {}
    for f in image_files(masks, name):
        by_stem.setdefault(f.stem, []).append(f)
    twice = [by_stem[f.stem] for f in images if len(by_stem.get(f.stem, ())) > 1]
    if twice:
        raise ValueError(
            f"`{name}` folder {masks} has two masks for one image: "
            f"{' and '.join(p.name for p in twice[0])}"
        )
    missing = [f.name for f in images if f.stem not in by_stem]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ValueError(
            f"`{name}` folder {masks} has no mask file named as {shown} (a mask file takes "
            "its image's name, any image extension)"
        )
    return [by_stem[f.stem][0] for f in images]
