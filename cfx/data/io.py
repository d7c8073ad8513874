"""Reading users' image and label files (``.npy`` or ``.pt`` tensors; labels also as CSV or
text), with clear errors."""

from __future__ import annotations

import csv
import logging
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cfx.calls import not_whole
from cfx.errors import check, check_flag, check_int, first_names, shape_or_type
from cfx.files import path_argument
from cfx.images import binary_masks, check_images, from_uint8, int_range

log = logging.getLogger(__name__)


def _load_array(path: str | Path, name: str) -> Tensor:
    p = path_argument(path, name)
    if p.is_dir():  # "file not found" for a folder that exists sent users looking for it
        raise IsADirectoryError(f"`{name}` must be a .npy/.pt file here, got the folder {p}")
    if not p.is_file():
        raise FileNotFoundError(f"`{name}` file not found: {p}")
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except OSError:  # unreadable: the CLI reports the I/O error as it is
            raise
        except Exception as err:  # a user's file: damaged, pickled or not .npy at all
            raise ValueError(
                f"`{name}` ({p}) is not a .npy file of numbers (numpy could not read it "
                "without unpickling); save a numeric array with numpy.save"
            ) from err
        if not isinstance(arr, np.ndarray):  # an .npz archive under a .npy name
            arr.close()
            raise ValueError(f"`{name}` ({p}) is an .npz archive, not one .npy array")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` ({p}) must hold real numbers, got dtype {arr.dtype}")
        return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=False))
    if p.suffix.lower() == ".pt":
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except OSError:
            raise
        except Exception as err:
            # damaged, or holding objects other than tensors (torch's message then suggests
            # weights_only=False, which cfx never does with a user's file; -v shows it)
            raise ValueError(
                f"`{name}` ({p}) is not a file of tensors torch can load without unpickling "
                "code; save a torch.Tensor with torch.save, or a numeric array as .npy"
            ) from err
        if not isinstance(obj, Tensor):
            raise TypeError(f"`{name}` ({p}) must hold a single tensor, got {type(obj).__name__}")
        if obj.dtype.is_complex:
            raise TypeError(f"`{name}` ({p}) must hold real numbers, got dtype {obj.dtype}")
        return obj
    raise ValueError(f"`{name}` must be a .npy or .pt file, got {p.name!r}")


TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
"""Label files read as tables (comma, semicolon or tab separated)."""


def _sizes(value: object, n: int) -> bool:
    """Whether ``value`` is ``n`` positive ints (a tuple or list): an image shape or size."""
    return (
        isinstance(value, tuple | list)
        and len(value) == n
        and all(isinstance(v, Integral) and not isinstance(v, bool) and int(v) > 0 for v in value)
    )


def load_images(
    path: str | Path,
    *,
    name: str = "images",
    shape: tuple[int, int, int] | None = None,
    channels: int | None = None,
    batch: bool = False,
) -> Tensor:
    """Images ``(N, C, H, W)`` from ``.npy``/``.pt``: floats in [-1, 1], or uint8 (0..255).

    ``shape`` ``(C, H, W)``, if given, is what every image must be; a file may then also hold
    one image ``(C, H, W)`` and, for one-channel images (``C = 1``), one ``(H, W)`` image or
    a batch without its channel axis ``(N, H, W)``. (A three-channel ``(3, H, W)`` array is
    one colour image, never three grey ones.) ``channels`` alone (the model's, when the size
    is free) checks ``C``, naming a channels-last ``(N, H, W, C)`` layout, and takes one image
    ``(C, H, W)`` too, and for ``C = 1`` ``(N, H, W)`` and ``(H, W)``. ``batch`` alone (a
    training set, whose channels the data decide) reads a 3-D array as grey images without
    their channel axis ``(N, H, W)``, and a 2-D one as one grey image. Errors call the file
    ``name`` (e.g. the command-line option that gave it)."""
    check_flag("batch", batch)
    check(
        shape is None or _sizes(shape, 3),
        TypeError,
        f"`shape` must be None or (C, H, W), got {shape!r}",
    )
    if shape is not None:  # numpy ints (an array's shape) too
        c, h, w = (int(v) for v in shape)
        shape = (c, h, w)
    if channels is not None:
        channels = check_int("channels", channels)
    x = _load_array(path, name)
    # (not one (H, W, C) image: a last axis of 1, 3 or 4 reads as channels, refused below)
    if batch and shape is None and channels is None and x.ndim == 3 and x.shape[-1] > 4:
        x = x[:, None]  # (N, H, W): grey images, as the other commands read such a file
    if batch and shape is None and channels is None and x.ndim == 2 and min(x.shape) > 4:
        x = x[None, None]  # (H, W): one grey image, as --input reads it with channels=1
    if x.dtype == torch.bool:
        raise TypeError(f"`{name}` ({path}) must hold images (floats or uint8), got bool")
    if shape is None and channels is not None:
        if x.ndim == 3 and x.shape[-1] == channels and x.shape[0] != channels:
            raise ValueError(
                f"`{name}` holds {tuple(x.shape)}: one image saved channels last (H, W, C)? "
                "save x.transpose(2, 0, 1), or a batch as (N, C, H, W)"
            )
        if channels == 1 and x.ndim == 2:
            x = x[None, None]  # one grey image without a channel axis
        elif channels == 1 and x.ndim == 3:
            x = x[:, None]  # grey images without a channel axis
        elif x.ndim == 3 and x.shape[0] == channels:
            x = x[None]  # one image (C, H, W)
        if x.ndim == 4 and x.shape[1] != channels:
            last = x.shape[-1] == channels
            raise ValueError(
                f"`{name}` must hold images shaped (N, {channels}, H, W) for a model taking "
                f"{channels} channel(s), got {tuple(x.shape)}"
                + ("; channels last? save x.transpose(0, 3, 1, 2)" if last else "")
            )
    if shape is not None:
        c, h, w = shape
        if tuple(x.shape) == tuple(shape):
            x = x[None]  # one image
        elif c == 1 and tuple(x.shape) == (h, w):
            x = x[None, None]  # one grey image without its channel axis
        elif c == 1 and x.ndim == 3 and tuple(x.shape[1:]) == (h, w):
            x = x[:, None]  # grey images without a channel axis
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
            hint = ""
            if x.ndim == 4 and tuple(x.shape[1:]) == (h, w, c):
                hint = ": channels last? move them with x.transpose(0, 3, 1, 2)"
            elif x.ndim == 4 and x.shape[1] == c:
                hint = (
                    f": resize them to {w}x{h} (image files are resized when read; a batch "
                    "is taken as it is)"
                )
            elif c == 1 and x.ndim == 4 and x.shape[1] == 3 and tuple(x.shape[-2:]) == (h, w):
                # colour images for a grey model: files are converted, a batch is not
                hint = (
                    ": colour images for a model taking 1 channel? average their channels "
                    "(numpy: x.mean(axis=1, keepdims=True))"
                )
            elif c != 1 and x.ndim in (3, 4) and tuple(x.shape[-2:]) == (h, w):
                # grey images for a colour model: files are converted, a batch is not
                hint = (
                    f": grey images for a model taking {c} channels? repeat them "
                    f"(numpy: x[:, None].repeat({c}, axis=1) for (N, H, W))"
                    if x.ndim == 3
                    else f": repeat a grey channel (numpy: x.repeat({c}, axis=1))"
                    if x.shape[1] == 1
                    else ""
                )
            raise ValueError(
                f"`{name}` must hold images shaped (N, {c}, {h}, {w}), got {tuple(x.shape)}" + hint
            )
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] > 4:
        # (N, H, W, C) read as N images of H channels, W x C pixels: a 4-pixel-wide image
        # of dozens of channels is no one's data
        raise ValueError(
            f"`{name}` holds {tuple(x.shape)}: images saved channels last (N, H, W, C)? save "
            "x.transpose(0, 3, 1, 2), a batch (N, C, H, W)"
        )
    wide = not x.is_floating_point() and x.dtype != torch.uint8 and x.numel()
    lo, hi = int_range(x) if wide else (0, 0)  # uint16 too: torch's min does not take it
    if lo < -1 or hi > 1:  # -1/0/1 integers are read as floats; the float range error said
        raise TypeError(  # "divide by the data's full scale" to 8-bit pixels as int64
            f"`{name}` ({path}) must hold images (floats in [-1, 1] or uint8), got {x.dtype} "
            f"values {lo}..{hi}"
            + (
                "; 8-bit pixels? save them as uint8 (numpy: x.astype(np.uint8))"
                if lo >= 0 and hi <= 255
                else "; divide by the data's full scale (4095 for 12-bit, 65535 for 16-bit) "
                "and map [0, 1] to [-1, 1] (2 u - 1)"
            )
        )
    if x.dtype == torch.uint8:
        x = from_uint8(x)
    return check_images(x.float(), name)


def load_labels(
    path: str | Path,
    n: int,
    *,
    name: str = "labels",
    files: list[Path] | None = None,
    words: dict[str, int] | None = None,
) -> Tensor:
    """Integer labels ``(N,)`` matching ``n`` images; errors call the file ``name``.

    ``.npy``/``.pt``: an array of ``n`` integers. ``.csv``/``.tsv``/``.txt`` (comma,
    semicolon or tab separated; a header row is skipped): one label per row in the images'
    order, or two columns, a file name and its label, matched to ``files`` (the images read
    from files, by name or by name without its extension; rows naming other files are
    ignored). ``words`` (lower case) are labels too in a table: ``{"yes": 1, "no": 0}`` for a
    yes/no column. Labels are class indices, never negative."""
    n = check_int("n", n, minimum=0)  # '4' was said as "must have shape (4,), got (4,)"
    suffix = path_argument(path, name).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _class_indices(_labels_from_table(Path(path), n, name, files, words or {}), name)
    if Path(path).is_dir():  # the array loader's words would leave out the tables
        raise IsADirectoryError(
            f"`{name}` must be a file (.npy/.pt, or .csv/.tsv/.txt), got the folder {path}"
        )
    if suffix not in (".npy", ".pt"):  # "must be a .npy or .pt file" hid the tables
        raise ValueError(
            f"`{name}` must be a .npy/.pt array or a .csv/.tsv/.txt table of labels, got "
            f"{Path(path).name!r}"
        )
    if files is not None:  # an array, in the order the files were read
        from cfx.data.image_files import position_notice

        position_notice(files, name)
    y = _load_array(path, name)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"`{name}` must have shape ({n},), one per image, got {tuple(y.shape)}")
    bad = not_whole(y)  # a fraction, NaN or inf
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten().tolist()
        raise ValueError(
            f"`{name}` must be integers (class indices), got {y[rows[0]].item():g} in row "
            f"{rows[0]}" + (f" and {len(rows) - 1} more rows" if len(rows) > 1 else "")
        )
    return _class_indices(y.long(), name)


def _class_indices(y: Tensor, name: str) -> Tensor:
    """``y`` when no label is negative; else an error naming the first such row (a -1 was
    read as a class and failed later, or trained on, as it went)."""
    rows = torch.nonzero(y < 0).flatten().tolist()
    if rows:
        raise ValueError(
            f"`{name}` must be class indices 0..K-1, got {int(y[rows[0]])} in row {rows[0]}"
            + (f" and {len(rows) - 1} more rows" if len(rows) > 1 else "")
            + (" (labels of -1/1? map them to 0/1)" if bool((y == -1).any()) else "")
        )
    return y


def _number(cell: str) -> float | None:
    """``cell`` as a number (``"1"``, ``" 1.0 "``, ``"nan"``), or None when it is text."""
    try:
        return float(cell.strip())
    except ValueError:
        return None


def _integer(cell: str) -> int | None:
    """``cell`` as an integer a label can be (``"1"``, ``" 1.0 "``), or None."""
    value = _number(cell)
    if value is None or not value.is_integer() or abs(value) >= 2**62:
        return None
    return int(value)


def table_text(raw: bytes, what: str) -> str:
    """A table's bytes as text (a label sheet, a labels file): UTF-8 (with or without a
    BOM), UTF-16 with its BOM (Excel's "Unicode Text", PowerShell 5's ``>``) or, failing
    UTF-8, Windows-1252 (Excel's CSV in western locales); a workbook or any other file is an
    error naming ``what``."""
    if raw.startswith(b"PK\x03\x04"):
        raise ValueError(
            f"{what} is a spreadsheet workbook (.xlsx or .ods), not a CSV file; save it as "
            "CSV (UTF-8) from the spreadsheet and pass that"
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")  # -sig: spreadsheets add a BOM
    except UnicodeDecodeError:  # a spreadsheet saved in its locale's code page (Excel's)
        pass
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{what} is not text cfx can read (neither UTF-8 nor Windows-1252: byte "
            f"{raw[err.start]:#04x} at {err.start}); save it as CSV (UTF-8)"
        ) from None
    log.warning("%s is not UTF-8: read as Windows-1252 (Excel's)", what)
    return text


LABEL_HEADERS = ("label", "labels", "class", "target", "y")
"""Column headers that name a table's labels (a header of a two-column table naming them first
says its columns are swapped)."""


def _labels_from_table(
    p: Path, n: int, name: str, files: list[Path] | None, words: dict[str, int]
) -> Tensor:
    if not p.is_file():
        raise FileNotFoundError(f"`{name}` file not found: {p}")
    # UTF-16 too (Excel's "Unicode Text", PowerShell 5's `>`): it was refused here while
    # `cfx label import` read it
    text = table_text(p.read_bytes(), f"`{name}` ({p})")
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise ValueError(f"`{name}` ({p}) is empty: give one label per image")
    sep = next((s for s in ("\t", ";", ",") if s in lines[0][1]), None)
    # a spreadsheet quotes a name holding the separator: "a,b.png",1
    split = (lambda line: next(csv.reader([line], delimiter=sep))) if sep else (lambda line: [line])
    pairs = [line.split() for _, line in lines]
    if (
        sep is None
        and len(pairs) > 1
        and all(len(w) == 2 and _number(w[0]) is None for w in pairs[1:])
    ):
        split = str.split  # "s00.png 0": a file name and its label, spaces between (Caffe's)
    rows = [(i, [c.strip() for c in split(line)]) for i, line in lines]
    if len(rows[0][1]) > 1 and all(cells[-1] == "" for _, cells in rows):
        rows = [(i, cells[:-1]) for i, cells in rows]  # "0," / "a.png,1,": an empty last column
    width = len(rows[0][1])
    if width > 2 or any(len(cells) != width for _, cells in rows):
        bad = next((i for i, cells in rows if len(cells) != width), rows[0][0])
        raise ValueError(
            f"`{name}` ({p}) must have one column (a label per image, in order) or two (file "
            f"name, label) on every row; line {bad} does not"
        )
    side = [len(cells[-1].split()) for _, cells in rows]
    numeric = [all(_number(w) is not None for w in cells[-1].split()) for _, cells in rows]
    if len(rows) > 1 and all(k == 2 and ok for k, ok in zip(side[1:], numeric[1:], strict=True)):
        raise ValueError(  # "0 1" on every line under any header: index and label
            f"`{name}` ({p}) has two columns separated by spaces or tabs: an index column? keep "
            "only the labels, one per line (or separate a file name and its label by a comma)"
        )
    for (i, _), k, ok in zip(rows, side, numeric, strict=True):  # "0 1 1 0" side by side
        if k > 1 and ok:
            raise ValueError(
                f"`{name}` ({p}) line {i} holds several numbers separated by spaces: put one "
                "label per line"
            )

    def integer(cell: str) -> int | None:
        return words.get(cell.strip().lower(), _integer(cell))

    header = ""
    first = rows[0][1][-1]
    swapped = ""  # a header naming the labels' column first: "label,file"
    if _number(first) is None and first.strip().lower() not in words:  # a header: text
        header = f" (line {rows[0][0]}, {rows[0][1][-1]!r}, was read as a header)"
        if width == 2 and rows[0][1][0].strip().lower() in LABEL_HEADERS:
            swapped = (
                f" (the header, line {rows[0][0]}, puts {rows[0][1][0]!r} first: the columns "
                "are read as file name, then label)"
            )
        rows = rows[1:]
    labels: list[int] = []
    for i, cells in rows:
        label = integer(cells[-1])
        if label is None and cells[-1] == "":  # "the label '' is no integer (class names..."
            raise ValueError(f"`{name}` ({p}) line {i} has no label (an empty cell)")
        if label is None or (words and label < 0):
            raise ValueError(
                (  # a yes/no attribute's file (which images carry a marker) holds no classes
                    f"`{name}` ({p}) line {i}: {cells[-1]!r} is none of "
                    f"{', '.join(['0', '1', *words])} (one per image)"
                    if words
                    else f"`{name}` ({p}) line {i}: the label {cells[-1]!r} is no integer; "
                    "labels are classes 0..K-1"
                    + (
                        swapped or f" (class names such as {cells[-1]!r}: map each to its number)"
                        if _number(cells[-1]) is None
                        else ""
                    )
                )
                + ("" if swapped else header)
            )
        if label < 0:  # named by its line here: "row 2" was the images' order, no line
            below = [j for j, c in rows if (integer(c[-1]) or 0) < 0]
            raise ValueError(
                f"`{name}` ({p}) line {i}: the label {label} is negative; labels are classes "
                "0..K-1"
                + (f" ({len(below) - 1} more lines hold one)" if len(below) > 1 else "")
                + (" (labels of -1/1? map them to 0/1)" if label == -1 else "")
            )
        labels.append(label)
    if width == 1:
        if len(rows) != n:
            first_row = lines[0]
            maybe = (  # pandas' Series.to_csv(index=False) writes the column name, 0, first
                f" (is line {first_row[0]}, {first_row[1].strip()!r}, a header? drop it)"
                if len(rows) == n + 1 and not header
                else ""
            )
            raise ValueError(
                f"`{name}` ({p}) has {len(rows)} labels, one per image needs {n}{header}{maybe}"
            )
        if files is not None:  # one label per line, in the order the files were read
            from cfx.data.image_files import position_notice

            position_notice(files, name)
        return torch.tensor(labels, dtype=torch.long)
    if files is None:
        raise ValueError(
            f"`{name}` ({p}) has two columns, a file name and its label, but the images "
            "came from one array file: give one label per line, in the array's order (drop "
            "an index column)"
        )
    by_name: dict[str, tuple[int, int]] = {}  # key -> (line, label)
    paths: list[tuple[str, int, int]] = []  # rows naming a path: (its file name, line, label)
    for (i, (key, _)), label in zip(rows, labels, strict=True):
        if key in by_name:
            raise ValueError(f"`{name}` ({p}) line {i}: {key!r} is listed twice")
        by_name[key] = (i, label)
        tail = key.replace("\\", "/").rsplit("/", 1)[-1]  # images/a.png -> a.png
        if tail != key:
            paths.append((tail, i, label))
    tails = [t for t, _, _ in paths]
    for tail, i, label in paths:  # a path row stands for its file when no row names that
        shorts = dict.fromkeys((tail, Path(tail).stem))  # file directly, nor another path
        if tails.count(tail) == 1 and not any(k in by_name for k in shorts):
            by_name |= {k: (i, label) for k in shorts}
    out: list[int] = []
    missing: list[str] = []
    used_by: dict[str, str] = {}  # row key -> the file it labelled
    for f in files:
        hits = [k for k in dict.fromkeys((f.name, f.stem)) if k in by_name]
        if len({by_name[k][0] for k in hits}) == 1:  # one row, by name and by stem (a path's)
            hits = hits[:1]
        if len(hits) > 1:
            raise ValueError(
                f"`{name}` ({p}) labels {f.name} twice, as {hits[0]!r} (line "
                f"{by_name[hits[0]][0]}) and as {hits[1]!r} (line {by_name[hits[1]][0]})"
            )
        if not hits:
            missing.append(f.name)
            continue
        if hits[0] in used_by:
            raise ValueError(
                f"`{name}` ({p}) line {by_name[hits[0]][0]}: {hits[0]!r} matches both "
                f"{used_by[hits[0]]} and {f.name}; name the files with their extensions"
            )
        used_by[hits[0]] = f.name
        out.append(by_name[hits[0]][1])
    used = {by_name[k][0] for k in used_by}
    unmatched = [(i, key) for i, (key, _) in rows if i not in used]  # a typo, most likely
    listed = ", ".join(f"line {i} ({key!r})" for i, key in unmatched[:3]) + (
        f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
    )
    if missing:
        hint = (
            f"; {listed} {'matches' if len(unmatched) == 1 else 'match'} no image"
            if unmatched
            else ""
        )
        raise ValueError(
            f"`{name}` ({p}) has no row for {first_names(missing)}: every image needs "
            f"a label (rows match by file name, with or without its extension){hint}"
        )
    if unmatched:  # images missing from the folder went unnoticed
        log.warning(
            "`%s` (%s): %d row(s) name no image in the folder (%s); their labels are not used",
            name,
            p,
            len(unmatched),
            listed,
        )
    return torch.tensor(out, dtype=torch.long)


def load_masks(path: str | Path, images: Tensor, *, name: str = "masks") -> Tensor:
    """Boolean masks ``(N, 1, H, W)`` for ``images`` ``(N, C, H, W)``; files hold bool or 0/1
    (``(N, H, W)`` without the channel axis too). Errors call the file ``name``."""
    m = _load_array(path, name)
    check(
        isinstance(images, Tensor) and images.ndim == 4,
        TypeError,
        f"`images` must be the images the masks are for, (N, C, H, W), got {shape_or_type(images)}",
    )
    want = (images.shape[0], 1, *images.shape[2:])
    if m.ndim == 3 and tuple(m.shape) == (want[0], *want[2:]):
        m = m[:, None]
    if tuple(m.shape) != want:
        raise ValueError(f"`{name}` must have shape {want}, one per image, got {tuple(m.shape)}")
    return binary_masks(m, name)


def load_region(path: str | Path, size: tuple[int, int], *, name: str = "region") -> Tensor:
    """One boolean mask ``(1, 1, H, W)`` of ``size`` ``(H, W)`` shared by every image, from a
    file of bool or 0/1 shaped ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``."""
    check(
        _sizes(size, 2),
        TypeError,
        f"`size` must be the images' (H, W), got {size!r}",
    )
    m = _load_array(path, name)
    h, w = (int(v) for v in size)  # numpy ints too
    if m.ndim > 4 or tuple(m.shape[-2:]) != (h, w) or any(d != 1 for d in m.shape[:-2]):
        raise ValueError(f"`{name}` must have shape ({h}, {w}), one mask, got {tuple(m.shape)}")
    return binary_masks(m, name).reshape(1, 1, h, w)
