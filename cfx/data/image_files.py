"""Reading users' image files (PNG, JPEG, BMP, TIFF) as cfx images, and mask files as masks.

Pictures become ``(1, C, H, W)`` floats in [-1, 1]: grey for one channel, RGB for three,
16-bit grey scaled by 65535 (with an alpha channel, at the 8 bits Pillow decodes, and said),
32-bit float files only when they hold [0, 1]. A mask file holds
0 for the background and one other value for the region (0/1, 0/255, 0/65535 alike); more
values than that (a JPEG's compression, an anti-aliased edge) are refused rather than guessed
at. Errors and warnings call the file by ``name``, the option that gave it.
"""

from __future__ import annotations

import logging
import os
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.ExifTags import Base
from torch import Tensor

from cfx.errors import check, first_names
from cfx.files import path_argument
from cfx.images import from_unit
from cfx.notices import held

log = logging.getLogger(__name__)

IMAGE_FILES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
BATCH_FILES = (".npy", ".pt")
SIDE_FILES = (".csv", ".tsv", ".txt", ".json", ".md")
"""Files that sit beside images in a folder (labels, notes) and are skipped without a word."""
GREY16_ALPHA = "cfx_grey16_alpha"  # Image.info key: a 16-bit grey+alpha PNG, decoded as RGBA
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""Pillow modes of one-channel files (LA: grey with alpha, which is dropped)."""


def _size(size: object) -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` positive ints, or None; an error naming it otherwise (64 was
    "'int' object is not iterable", (0, 32) a division by zero)."""
    if size is None:
        return None
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in size)
    ):
        raise TypeError(f"`size` must be None or (H, W), two positive ints, got {size!r}")
    if not all(int(v) > 0 for v in size):
        raise ValueError(f"`size` must be None or (H, W), two positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def image_files(folder: Path, name: str = "--input") -> list[Path]:
    """The image files of ``folder`` (by extension, sorted by name as strings, so
    ``slice_10`` comes before ``slice_2``; other files and hidden ones, such as macOS ``._``
    files, are skipped)."""
    folder = path_argument(folder, "folder")
    shown = sorted(f for f in folder.iterdir() if not f.name.startswith("."))
    files = [f for f in shown if f.is_file() and f.suffix.lower() in IMAGE_FILES]
    if not files:
        folders = [f.name + "/" for f in shown if f.is_dir()]
        layout = (  # one subfolder per class (torchvision's ImageFolder): say how cfx reads
            f": its subfolders ({', '.join(folders[:5])}{', ...' if len(folders) > 5 else ''})"
            " are not read; cfx reads one flat folder of images, with their labels in a "
            "file,label CSV (--labels)"
            if folders
            else ""
        )
        raise ValueError(
            f"`{name}` folder {folder} holds no image files ({', '.join(IMAGE_FILES)}){layout}"
        )
    # a labels table or notes next to the images are expected; a .dcm or a subfolder is not
    others = [
        f.name + ("/" if f.is_dir() else "")
        for f in shown
        if f not in files and not (f.is_file() and f.suffix.lower() in SIDE_FILES)
    ]
    if others:
        log.warning(
            "`%s` folder %s: %d entr%s that %s no image file%s skipped (%s); images are %s",
            name,
            folder,
            len(others),
            "y" if len(others) == 1 else "ies",
            "is" if len(others) == 1 else "are",
            "," if len(others) == 1 else "s,",
            first_names(others),
            ", ".join(IMAGE_FILES),
        )
    return files


def check_input_path(path: Path, name: str = "--input") -> list[Path] | None:
    """A readable-looking input: a folder of images, or a file of a known extension.
    Returns the image files it names (:func:`image_files`), or None for a batch file."""
    if path.is_dir():
        return image_files(path, name)
    known = path.suffix.lower() in IMAGE_FILES + BATCH_FILES
    if not path.exists() and (known or not path.suffix):  # a mistyped file or folder
        raise FileNotFoundError(f"`{name}` not found: {path}")
    if not known:
        raise ValueError(
            f"`{name}` must be an image file ({', '.join(IMAGE_FILES)}), a folder of them "
            f"or a batch ({', '.join(BATCH_FILES)}), got {path.name!r}"
        )
    return [path] if path.suffix.lower() in IMAGE_FILES else None


Notes = dict[str, list[tuple[str, int | str]]]
"""Notices about files that load but look wrong, by kind: ``(file name, detail)`` each."""

_NOTICES = {
    "pages": "{n} page(s) (a stack?); only the first is read: save the slices as one .npy "
    "batch to use them all",
    "eight_bits": "16-bit grey with an alpha channel, which Pillow reads at 8 bits (brightest "
    "pixel {n} of 255: 12-bit data reads nearly black); save it without the alpha channel to "
    "keep all 16",
    "clipped": "values up to {n}, above 16-bit full scale: they are clipped",
    "dark": "16-bit, brightest pixel {n} of 65535 ({bits}-bit data?): read as value / 65535, "
    "i.e. dark; rescale to the full range first",
    "stretched": "{n} pixels, stretched to {size}",
    "colour": "colour ({n}), read as grey: the model takes one channel",
    "grey": "grey ({n}), read as colour with the grey value in all three channels: the model "
    "takes three",
    "colour_first": "colour ({n}), read as grey like the first file, {first}",
    "grey_first": "grey ({n}), read as colour like the first file, {first}, with the grey value "
    "in all three channels",
}


def _bits(detail: int | str) -> int:
    """The bits a file's brightest pixel suggests its data has: 114 is 8-bit data in a
    16/32-bit file, 4000 12-bit."""
    return 8 if isinstance(detail, int) and detail <= 255 else 12


def _note(notes: Notes | None, kind: str, path: Path, detail: int | str, name: str) -> None:
    if notes is None:  # one file on its own: say it now
        text = _NOTICES[kind].format(n=detail, size="", first="", bits=_bits(detail))
        log.warning("`%s` %s: %s", name, path.name, text)
    else:
        notes.setdefault(kind, []).append((path.name, detail))


def _say(
    notes: Notes, name: str, size: tuple[int, int] | None, total: int, first: str = ""
) -> None:
    """One warning per kind of notice, naming the files (the first few) it concerns, of
    ``total`` files read."""
    to = "" if size is None else f"{size[1]}x{size[0]}"
    for kind, found in notes.items():
        names = [f for f, _ in found]
        shown = first_names(names)
        details = [d for _, d in found]
        numbers = all(isinstance(d, int) for d in details)
        # modes are listed, each once ("colour (RGB, P)"); of figures, the largest is given
        detail = max(details) if numbers else ", ".join(map(str, dict.fromkeys(details)))
        text = _NOTICES[kind].format(n=detail, size=to, first=first, bits=_bits(detail))
        if numbers and len(set(details)) > 1:  # the figure is one file's
            text += " (the largest figure)"
        if len(names) == total and total > 1:
            shown = f"all {total} files ({shown})"
        log.warning("`%s` %s: %s", name, shown, text)


def _grey16_alpha(img: Image.Image) -> bool:
    """Whether ``img`` (opened, not yet loaded: Pillow forgets the PNG's raw mode on loading) is
    a 16-bit grey PNG with alpha, which Pillow decodes as 8-bit RGBA (each value's high byte):
    grey, but at 8 bits."""
    png = getattr(img, "png", None)
    return img.format == "PNG" and getattr(png, "im_rawmode", "") == "LA;16B"


def _open(path: Path, name: str, notes: Notes | None = None) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"`{name}` file not found: {path}")
    try:
        img = Image.open(path)
        if _grey16_alpha(img):  # read as RGBA: remembered as the grey it is
            img.info[GREY16_ALPHA] = True
        told = img.size  # a TIFF's header already gives the size its orientation turns it to
        turn = img.getexif().get(Base.Orientation, 1) if img.format == "TIFF" else 1
        img.load()
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"`{name}` is not a readable image: {path} ({err})") from None
    except Image.DecompressionBombError as err:
        raise ValueError(_too_large(name, path, err)) from None
    if turn in (5, 6, 7, 8) and img.size != told:  # Pillow's reader turned it only in part
        raise ValueError(
            f"`{name}` {path.name} is an uncompressed TIFF turned a quarter by its EXIF "
            f"orientation ({turn}), which Pillow reads with its pixels shuffled: save it "
            "compressed (e.g. LZW) or with the pixels turned and no orientation flag"
        )
    pages = int(getattr(img, "n_frames", 1))
    # a phone's JPEG (MPO: a preview or gain map beside the photo) is one picture, not a stack
    if pages > 1 and img.format != "MPO":
        _note(notes, "pages", path, pages, name)
    # a camera's or a viewer's rotation flag: read the pixels the way every viewer shows them
    ImageOps.exif_transpose(img, in_place=True)
    return img


def file_channels(path: Path, name: str = "--input") -> int:
    """1 for a grey file (8-, 16-bit or float, with or without alpha), 3 for any other."""
    return 1 if _header(path, name)[0] in GREY_MODES else 3


def read_image(
    path: Path,
    channels: int,
    size: tuple[int, int] | None = None,
    name: str = "--input",
    notes: Notes | None = None,
    *,
    as_first: bool = False,
) -> Tensor:
    """One image file as ``(1, channels, H, W)`` in [-1, 1]; resized bilinearly to ``size``
    ``(H, W)`` when given, else at its own size. Files that load but look wrong (a 16-bit file
    using only 12 bits reads dark; a stretched aspect; a colour file read as grey, or a grey
    one as colour; a multi-page file) are warned about, or collected in ``notes`` for
    :func:`read_images` to warn about once per kind. ``as_first``: ``channels`` are the first
    file's (no model chose them), as the notices say."""
    path, size = path_argument(path, "path"), _size(size)
    if channels not in (1, 3):
        raise ValueError(
            f"`{name}` image files are read as 1 or 3 channels, and the model takes {channels}; "
            "pass a .npy batch instead"
        )
    img = _open(path, name, notes)
    mode = "LA" if img.info.get(GREY16_ALPHA) else img.mode  # Pillow's RGBA of it
    if mode != img.mode:
        _note(notes, "eight_bits", path, int(np.asarray(img.getchannel(0)).max()), name)
    if channels == 3 and mode in GREY_MODES:  # the other way is noted below
        _note(notes, "grey_first" if as_first else "grey", path, mode, name)
    unit: np.ndarray  # (C, H, W) in [0, 1], float32
    if img.mode == "F":  # 32-bit float: only [0, 1] has an unambiguous meaning
        raw = np.asarray(img, dtype=np.float32)
        if not np.isfinite(raw).all():
            raise ValueError(
                f"`{name}` {path.name} holds {int((~np.isfinite(raw)).sum())} NaN or infinite "
                "pixels"
            )
        if raw.min() < 0.0 or raw.max() > 1.0:
            raise ValueError(
                f"`{name}` {path.name} is a floating-point image with values {raw.min():.3g}.."
                f"{raw.max():.3g}; save it as 8- or 16-bit, as [0, 1] floats, or as a .npy "
                "batch in [-1, 1]"
            )
        unit = np.repeat(raw[None], channels, axis=0)  # (C, H, W)
    elif img.mode.startswith("I"):  # 16/32-bit grey (common for MRI): full scale is 65535
        raw = np.asarray(img, dtype=np.float32)
        if raw.min() < 0:  # signed data (CT in Hounsfield units): no unambiguous [0, 1]
            raise ValueError(
                f"`{name}` {path.name} is a signed integer image with values "
                f"{int(raw.min())}..{int(raw.max())} (CT in Hounsfield units?), whose negative "
                "values would all read as black; window it to the range that matters (e.g. "
                "-1000..1000 scaled to [-1, 1]) and pass a .npy batch, or save it as 8- or "
                "16-bit"
            )
        if raw.max() > 65535:
            _note(notes, "clipped", path, int(raw.max()), name)
        elif 0 < raw.max() <= 4095:
            _note(notes, "dark", path, int(raw.max()), name)
        unit = np.repeat(raw[None] / 65535.0, channels, axis=0)  # (C, H, W)
    else:
        if channels == 1 and mode not in GREY_MODES:
            colours = np.asarray(img.convert("RGB"), dtype=np.int16)
            if np.abs(np.diff(colours, axis=-1)).max() > 2:  # not grey saved as RGB
                _note(notes, "colour_first" if as_first else "colour", path, img.mode, name)
        rgb = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
        unit = (rgb[None] if channels == 1 else rgb.transpose(2, 0, 1)) / 255.0  # (C, H, W)
    x = from_unit(torch.from_numpy(np.ascontiguousarray(unit)).clamp(0, 1)[None])
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        h, w = size
        if abs(x.shape[-1] / x.shape[-2] - w / h) > 0.01:
            detail = f"{x.shape[-1]}x{x.shape[-2]}"
            if notes is None:
                log.warning("`%s` %s: %s pixels, stretched to %dx%d", name, path.name, detail, w, h)
            else:
                _note(notes, "stretched", path, detail, name)
        x = torch.nn.functional.interpolate(
            x, size=(h, w), mode="bilinear", align_corners=False, antialias=True
        ).clamp(-1, 1)
    return x


def read_images(
    files: list[Path],
    channels: int | None,
    size: tuple[int, int] | None = None,
    name: str = "--input",
) -> Tensor:
    """Image files as one batch ``(N, channels, H, W)``, in the order given; ``channels``
    None: the first file's (grey or colour). With ``size`` None every file must be as large
    as the first (nothing is resized). Files that look wrong are warned about once per kind
    of problem, naming them."""
    if isinstance(files, str | os.PathLike) or not isinstance(files, list | tuple):
        raise TypeError(
            f"`files` must be a list of image file paths (image_files(folder) lists a "
            f"folder's), got {type(files).__name__}"
        )
    check(len(files) > 0, ValueError, "`files` must name at least one image file, got none")
    files = [path_argument(f, "files") for f in files]
    size = _size(size)
    notes: Notes = {}
    as_first = channels is None
    c = file_channels(files[0], name) if channels is None else channels
    images = [read_image(f, c, size, name, notes, as_first=as_first) for f in files]
    _say(notes, name, size, len(files), first=files[0].name)
    first = tuple(images[0].shape[-2:])
    for f, x in zip(files, images, strict=True):
        if tuple(x.shape[-2:]) != first:
            raise ValueError(
                f"`{name}` images must all be one size: {files[0].name} is "
                f"{first[1]}x{first[0]} pixels, {f.name} is {x.shape[-1]}x{x.shape[-2]}; "
                "resize them first"
            )
    return torch.cat(images)


def _header(path: Path, name: str) -> tuple[str, tuple[int, int]]:
    """``(mode, (H, W))`` of an image file, read from its header (the pixels are not
    decoded)."""
    if not path.is_file():
        raise FileNotFoundError(f"`{name}` file not found: {path}")
    try:
        with Image.open(path) as img:
            mode = "LA" if _grey16_alpha(img) else img.mode  # before getexif() decodes it
            width, height = img.size
            # shown turned a quarter (Pillow's TIFF reader reports the turned size itself)
            if img.format != "TIFF" and img.getexif().get(Base.Orientation, 1) in (5, 6, 7, 8):
                width, height = height, width
            return mode, (height, width)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"`{name}` is not a readable image: {path} ({err})") from None
    except Image.DecompressionBombError as err:
        raise ValueError(_too_large(name, path, err)) from None


def _too_large(name: str, path: Path, err: Exception) -> str:
    """Pillow's refusal of a file above its pixel limit (a guard against decompression
    bombs), as one line: it came out as a traceback from every command reading images."""
    return (
        f"`{name}` {path.name} is too large for Pillow to open ({err}); cfx resizes images to "
        "the model's size anyway: downsample it first (or tile a whole-slide image)"
    )


def image_size(path: Path, name: str = "--input") -> tuple[int, int]:
    """``(H, W)`` of an image file, read from its header (the pixels are not decoded)."""
    return _header(path, name)[1]


def _mask_values(img: Image.Image, path: Path, name: str) -> np.ndarray:
    """A mask file's pixels as ``(H, W)``, 0 for the background. A colour (or palette, or
    transparent) mask is read by its colours, not their brightness: a region stored as
    (1, 0, 0), or painted black on a transparent layer, turned 0 in grey and the mask empty.
    More than two colours, or two of which neither is black (transparent), are refused."""
    raw = np.asarray(img if img.mode in GREY_MODES else img.convert("RGBA"))
    if img.mode in GREY_MODES:
        return raw[..., 0] if raw.ndim == 3 else raw  # grey with alpha: the grey
    alpha = raw[..., 3]
    key = raw if alpha.min() != alpha.max() else raw[..., :3]  # alpha only when it varies
    colours = np.unique(key.reshape(-1, key.shape[-1]), axis=0)
    if colours.shape[0] > 2:
        raise ValueError(
            f"`{name}` {path.name} holds {colours.shape[0]} distinct colours; a mask file "
            "holds black (or transparent) for the background and one colour for the region "
            "(a label map or a soft mask? save one region per file as 0 and 255)"
        )
    if colours.shape[0] == 2 and colours.any(1).all():
        raise ValueError(
            f"`{name}` {path.name} holds the colours {tuple(colours[0])} and "
            f"{tuple(colours[1])}, neither black: a mask file holds 0 for the background "
            "and one value for the region"
        )
    return np.where(key.any(-1), 255, 0).astype(np.uint8)  # (H, W): 0 background, 255 region


def read_mask(
    path: Path,
    size: tuple[int, int],
    name: str = "--masks",
    *,
    resize: bool = False,
    drawn_on: tuple[int, int] | None = None,
) -> Tensor:
    """A mask file as ``(1, 1, H, W)`` bool: True where the file is not 0. It may hold 0 and
    one other value only. Its size must be ``size`` ``(H, W)``, its image's. With ``resize``
    (its image was resized to a generator's ``size``) a mask of the size of the image file it
    was drawn on, ``drawn_on`` ``(H, W)``, or of ``size``'s shape is resized to ``size`` by
    nearest neighbour, as its image was."""
    img = _open(path, name)
    raw = _mask_values(img, path, name)
    h, w = size
    same_shape = abs(raw.shape[1] / raw.shape[0] - w / h) <= 0.01
    fits = tuple(raw.shape) == tuple(size) or (
        resize and (same_shape or tuple(raw.shape) == drawn_on)
    )
    if not fits:
        image = f"{w}x{h}" if drawn_on is None else f"{drawn_on[1]}x{drawn_on[0]}"
        raise ValueError(
            f"`{name}` {path.name} is {raw.shape[1]}x{raw.shape[0]} pixels; its image is {image}"
            + (f" (read at {w}x{h})" if resize and drawn_on not in (None, size) else "")
        )
    values = np.unique(raw)
    if values.size == 2 and values[0] != 0:
        raise ValueError(
            f"`{name}` {path.name} holds {values[0]} and {values[1]}, neither 0: a mask file "
            "holds 0 for the background and one value for the region"
        )
    if values.size > 2:
        why = (
            "JPEG's compression adds values: save masks as PNG"
            if path.suffix.lower() in (".jpg", ".jpeg")
            else "a label map or a soft mask? save one region per file as 0 and 255"
        )
        raise ValueError(
            f"`{name}` {path.name} holds {values.size} distinct values; a mask file holds 0 "
            f"for the background and one value for the region ({why})"
        )
    mask = torch.from_numpy(raw != 0)[None, None]
    if tuple(raw.shape) not in (tuple(size), drawn_on):  # only its shape fits: said
        log.warning(
            "`%s` %s is %s pixels, %s: stretched to %dx%d as one of the same shape; check it "
            "was drawn for these images",
            name,
            path.name,
            f"{raw.shape[1]}x{raw.shape[0]}",
            _sizes_meant(size, drawn_on),
            w,
            h,
            extra={"cfx_mask_stretch": True},  # a batch of masks says it once
        )
    if tuple(raw.shape) != tuple(size):
        mask = torch.nn.functional.interpolate(mask.float(), size=size, mode="nearest") > 0.5
    return mask


LABELS_BY_NAME = "give the file names with it (CSV rows: file name,label) to be sure"
MASKS_BY_NAME = (
    "give the masks as a folder of files named like the images (img_2.png's mask named "
    "img_2.png) to be sure"
)


def position_notice(files: list[Path], name: str, remedy: str = LABELS_BY_NAME) -> None:
    """Warn when ``name`` (labels or masks given in order, not by file name) is matched to
    ``files`` by position and two files named alike but for their numbers come in another
    order than their numbers (``img_10`` before ``img_2``, as text sorts them): labels
    written in the numbers' order would land on other images without a word. ``remedy``
    says how to match them by name instead (labels: a CSV of file names; masks: a folder)."""
    import re

    last: dict[str, tuple[int, ...]] = {}  # name pattern -> the numbers of its latest file
    for f in files:
        pattern = re.sub(r"\d+", "#", f.name)  # img_#.png: the same name but its numbers
        numbers = tuple(int(d) for d in re.findall(r"\d+", f.name))
        if numbers and pattern in last and numbers < last[pattern]:
            # where the numbers' order first parts from the text's, for the message (it does,
            # at the latest at this pair)
            by_number = sorted(
                files,
                key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)],
            )
            first = next(k for k, (a, b) in enumerate(zip(files, by_number, strict=True)) if a != b)
            log.warning(
                "`%s` is matched to the image files by position, in their name order as text "
                "(%s before %s): if it follows the numbers in the names instead, its entries "
                "from the %s on land on other images; %s",
                name,
                files[first].name,
                by_number[first].name,
                _ordinal(first + 1),
                remedy,
            )
            return
        last[pattern] = numbers


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def _sizes_meant(size: tuple[int, int], drawn_on: tuple[int, int] | None) -> str:
    """The sizes a mask file may have: its image's (as drawn on) or the size read at."""
    read = f"the size read at ({size[1]}x{size[0]})"
    if drawn_on is None or tuple(drawn_on) == tuple(size):
        return f"not its image's size, {size[1]}x{size[0]}"
    return f"neither its image's size ({drawn_on[1]}x{drawn_on[0]}) nor {read}"


def load_masks_for(
    path: Path,
    images: Tensor,
    files: list[Path] | None,
    name: str = "--masks",
    *,
    images_name: str = "--input",
    resize: bool = False,
    unread: list[Path] | None = None,
) -> Tensor:
    """Masks ``(N, 1, H, W)`` bool for ``images`` ``(N, C, H, W)``: mask files matched by
    name (:func:`mask_files`; ``resize`` as for :func:`read_mask`) to the image ``files``
    the images were read from (the option ``images_name`` gave), or a .npy/.pt batch in the
    images' order (:func:`cfx.data.io.load_masks`). ``unread``: the folder's other image
    files (not read here), whose masks are not warned about as matching no image."""
    path = path_argument(path, "path")
    files = None if files is None else [path_argument(f, "files") for f in files]
    if path.is_dir() or path.suffix.lower() in IMAGE_FILES:
        if files is None:
            raise ValueError(
                f"`{name}` as image files go with `{images_name}` image files (a folder or "
                f"one file); for a .npy/.pt `{images_name}` give `{name}` as a .npy/.pt "
                "batch too"
            )
        if not path.exists():
            raise FileNotFoundError(f"`{name}` file not found: {path}")
        folder = files[0].parent
        if path.is_dir() and path.resolve() == folder.resolve():
            raise ValueError(
                f"`{name}` must be another folder than `{images_name}`'s: each image would be "
                "taken for its own mask (and masks for images)"
            )
        size = (int(images.shape[-2]), int(images.shape[-1]))
        chosen = mask_files(files, path, name, unread=unread)
        drawn = [image_size(f, images_name) if resize else None for f in files]
        with held((log,), "cfx_mask_stretch"):  # one warning for the batch, below
            masks = torch.cat(
                [
                    read_mask(m, size, name, resize=resize, drawn_on=d)
                    for m, d in zip(chosen, drawn, strict=True)
                ]
            )
        stretched = [
            m.name
            for m, d in zip(chosen, drawn, strict=True)
            if resize and image_size(m, name) not in (size, d)
        ]
        if stretched:
            log.warning(
                "`%s`: %d mask file(s) are of neither their image's size nor the size read "
                "at (%dx%d) and were stretched as ones of the same shape: %s; check they were "
                "drawn for these images",
                name,
                len(stretched),
                size[1],
                size[0],
                first_names(stretched),
            )
        _warn_large(masks, [f.name for f in chosen], name)
        return masks
    from cfx.data.io import load_masks

    if files is not None:  # a batch in the order the files were read
        position_notice(files, name, MASKS_BY_NAME)
    return load_masks(path, images, name=name)


def load_region_for(
    path: Path,
    size: tuple[int, int],
    name: str,
    *,
    resize: bool = False,
    drawn_on: tuple[int, int] | None = None,
) -> Tensor:
    """One region shared by every image, ``(1, 1, H, W)`` bool of ``size``: a mask file
    (:func:`read_mask`, ``resize`` and ``drawn_on`` as there) or a .npy/.pt array
    (:func:`cfx.data.io.load_region`); a region that marks no pixel is refused."""
    from cfx.data.io import load_region

    if path.is_dir():
        raise ValueError(
            f"`{name}` must be one mask file or a .npy/.pt array, got the folder {path}"
        )
    if path.suffix.lower() in IMAGE_FILES:
        if not path.is_file():
            raise FileNotFoundError(f"`{name}` file not found: {path}")
        region = read_mask(path, size, name, resize=resize, drawn_on=drawn_on)
    else:
        region = load_region(path, size, name=name)
    if not bool(region.any()):
        raise ValueError(f"`{name}` {path} marks no pixel")
    if bool(region.all()):  # a share of the map inside it would always be 1
        raise ValueError(f"`{name}` {path} marks every pixel; a region must leave some out")
    return region


def _warn_large(masks: Tensor, names: list[str], name: str) -> None:
    """Warn about masks covering more than half of their image: inverted (255 = background)?"""
    share = masks.flatten(1).float().mean(1)  # (N,)
    large = [n for n, s in zip(names, share.tolist(), strict=True) if s > 0.5]
    if large:
        shown = first_names(large)
        log.warning(
            "`%s` %s %s more than half of the image: inverted (0 = region)? A mask file holds "
            "0 for the background",
            name,
            shown,
            "covers" if len(large) == 1 else "cover",
        )


def mask_files(
    images: list[Path], masks: Path, name: str = "--masks", *, unread: list[Path] | None = None
) -> list[Path]:
    """The mask file of each image file: the file of ``masks`` (a folder) with the image's
    name up to its extension (``scan_1.jpg`` -> ``scan_1.png``), or ``masks`` itself when it
    is one file for one image. Masks named as none of ``images`` nor ``unread`` (image files
    not read, e.g. past a preview's first 16) are warned about."""
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
        shown = first_names(missing)
        raise ValueError(
            f"`{name}` folder {masks} has no mask file named as {shown} (a mask file takes "
            "its image's name, any image extension; an image without a region, e.g. a "
            "healthy one, needs an all-0 mask file)"
        )
    unused = sorted(set(by_stem) - {f.stem for f in [*images, *(unread or [])]})
    if unused:  # e.g. a mask renamed apart from its image, or the images of another folder
        log.warning(
            "`%s` folder %s has %d mask file(s) named as no image, not used: %s",
            name,
            masks,
            len(unused),
            first_names([by_stem[stem][0].name for stem in unused]),
        )
    return [by_stem[f.stem][0] for f in images]
