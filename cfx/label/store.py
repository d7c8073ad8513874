"""A labelling task on disk: images for a person to label, and their labels, crash-safe.

A task is one folder::

    manifest.json     the items (id, image file, context strip or null, suggested label,
                      sha256 of the image PNG) and the class names; written last, atomically
    images/ID.png     one PNG per item, upscaled (nearest) so it is easy to see
    context/ID.png    optional: the path of frames the image came from, as one strip
    labels.csv        id,label,labeller,timestamp: one line per label given (a class
                      index, or "unsure" for an image the person could not call), appended and
                      fsync'ed at once; relabelling appends again and the last line wins.
                      A line typed by hand may be just id,label

A line of ``labels.csv`` counts only once its newline is on disk (or, last in the file, once
it holds a whole row), so a crash half way through a write loses that one label at most and
never corrupts the file. Writers (a server, an import, another process) take turns through a
lock on the file, so two labels given at once are both kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cfx.errors import UnknownNameError
from cfx.files import appending_locked, write_atomic
from cfx.images import check_images, to_uint8
from cfx.reprs import short_repr

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LABELS = "labels.csv"
LABELS_HEADER = ("id", "label", "labeller", "timestamp")
EXPORT_HEADER = ("id", "image", "suggested", "label", "sha256")
FORMAT = "cfx-label-task"
VERSION = 1
IMAGE_SIDE = 256  # small images are upscaled by a whole factor up to this side, never shrunk
FRAME_SIDE = 128  # the same for each frame of a context strip
ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
UNSURE = -1
"""The label of an image a person could not call (page: "can't tell"; a sheet or labels.csv:
``unsure``): answered, so no longer pending, but no class; ``cfx augment`` leaves such frames
out of its fine-tuning."""
UNSURE_NAME = "unsure"
_ROW_SIZES = (2, len(LABELS_HEADER))  # fields of a line of labels.csv: typed by hand, or cfx's


@dataclass(frozen=True)
class Item:
    """One image to label. Paths are relative to the task folder."""

    id: str
    image: str
    context: str | None
    suggested: int | None
    sha256: str


@dataclass(frozen=True)
class Task:
    """A labelling task as read from ``manifest.json``."""

    directory: Path
    class_names: tuple[str, ...]
    items: tuple[Item, ...]

    __repr__ = short_repr  # its items as a count: every sha256 ran to pages in a notebook

    @property
    def ids(self) -> list[str]:
        """Item ids in manifest order."""
        return [item.id for item in self.items]

    def item(self, item_id: str) -> Item:
        """The item called ``item_id``; a ``KeyError`` naming the task when there is none."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise UnknownNameError(
            f"no item with id {item_id!r} in the labelling task {self.directory}"
        )


# ---------------------------------------------------------------------------------------------
# writing a task


def write_task(
    directory: str | Path,
    images: Tensor,
    *,
    ids: Sequence[str] | None = None,
    context: Tensor | None = None,
    class_names: Sequence[str] = ("healthy", "tumour"),
    suggested: Sequence[int | None] | Tensor | np.ndarray | None = None,
) -> Path:
    """Write a labelling task folder and return its path.

    ``images`` ``(N, C, H, W)`` float in [-1, 1] with C = 1 or 3; ``context`` optional
    ``(N, T, C, H, W)`` float in [-1, 1], the frames each image came from (one strip each);
    ``ids`` N unique file-name-safe strings (default ``"000000"``, ``"000001"``, ...);
    ``suggested`` the N class indices the classifier predicted (a sequence, which may hold
    None, or an integer tensor/array), shown to the labeller as a hint. Writing the same task
    again is a no-op that keeps the labels; a folder holding a different task is refused
    (``FileExistsError``).
    """
    folder = Path(directory)
    names = check_class_names(class_names)
    check_images(images, "images")
    n, c = images.shape[0], images.shape[1]
    if c not in (1, 3):
        raise ValueError(
            f"`images` must have 1 (grey) or 3 (RGB) channels, got shape {tuple(images.shape)}"
        )
    item_ids = _check_ids(ids, n)
    hints = _check_suggested(suggested, n, len(names))

    pixels = {f"images/{i}.png": _picture(images[k], IMAGE_SIDE) for k, i in enumerate(item_ids)}
    pictures = {rel: _encode(p) for rel, p in pixels.items()}
    strips: dict[str, bytes] = {}
    if context is not None:
        frames = _check_context(context, n)  # (N, T, C, H, W)
        strips = {f"context/{i}.png": _strip(frames[k]) for k, i in enumerate(item_ids)}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "class_names": list(names),
        "items": [
            {
                "id": i,
                "image": f"images/{i}.png",
                "context": f"context/{i}.png" if context is not None else None,
                "suggested": hints[k],
                "sha256": hashlib.sha256(pictures[f"images/{i}.png"]).hexdigest(),
            }
            for k, i in enumerate(item_ids)
        ],
    }

    old = folder / MANIFEST
    if old.is_file():
        existing = json.loads(old.read_text(encoding="utf-8"))
        if existing == manifest or _same_pixels(folder, existing, manifest, pixels):
            logger.info("labelling task %s already written; labels kept", folder)
            return folder
        raise FileExistsError(
            f"`directory` {folder} already holds a different labelling task "
            f"({_describe(existing)}; {_difference(existing, manifest)}); expected an empty "
            f"folder or the same task. Pick a new folder or delete the old task."
        )
    if (folder / LABELS).exists():
        raise FileExistsError(
            f"`directory` {folder} has a {LABELS} but no {MANIFEST}; expected an empty folder "
            "or a complete task, got labels without their task. Pick a new folder."
        )
    foreign = _not_ours(folder, set(pictures) | set(strips))
    if foreign:  # a folder of one's own: its files would be overwritten or mixed in
        raise FileExistsError(
            f"`directory` {folder} holds files a labelling task does not write "
            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); expected an "
            "empty folder, or one a write_task call was interrupted in. Pick a new folder."
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WRITING).touch()  # the pictures below are a task's until the manifest is written
    for rel, data in (pictures | strips).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # the manifest goes last: a task exists only once all its images are on disk
    write_atomic(old, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    (folder / WRITING).unlink(missing_ok=True)
    logger.info("wrote labelling task %s (%d items)", folder, n)
    return folder


def _same_pixels(folder: Path, existing: object, manifest: dict, pixels: dict) -> bool:
    """Whether a task that differs from ``manifest`` only in its images' sha256 holds the
    same pixels (``pixels``: relative path -> uint8 array): another PNG encoder (a Pillow or
    zlib upgrade) writes other bytes for the same images, and the task must still resume."""

    def without_digests(m: object) -> object:
        if not isinstance(m, dict) or not isinstance(m.get("items"), list):
            return m
        items = [{k: v for k, v in it.items() if k != "sha256"} for it in m["items"]]
        return {**m, "items": items}

    if without_digests(existing) != without_digests(manifest):
        return False
    from PIL import Image

    try:
        for rel, want in pixels.items():
            with Image.open(folder / rel) as img:
                if not np.array_equal(np.asarray(img), want):
                    return False
    except (OSError, ValueError):  # a missing or damaged picture: not the same task
        return False
    return True


_SYSTEM_FILES = {"thumbs.db", "desktop.ini"}
"""Files a file manager leaves in a folder it showed (hidden ``.DS_Store`` and the like are
passed over by their leading dot)."""


WRITING = ".cfx-writing"
"""Marks a task folder whose pictures :func:`write_task` is writing (removed once the manifest
is written): PNG files left there by an interrupted write are the task's to replace."""


def _not_ours(folder: Path, ours: set[str]) -> list[str]:
    """The entries of ``folder`` (an existing one without a manifest) that no interrupted
    :func:`write_task` can have left: anything but the manifest's temporary file and, in
    ``images/`` and ``context/``, this task's picture files (``ours``), or any PNG file when
    the folder bears the :data:`WRITING` mark of an interrupted write; hidden and
    file-manager files aside (a folder of one's own PNG files is never written over)."""
    if not folder.is_dir():
        return []
    interrupted = (folder / WRITING).is_file()

    def system(p: Path) -> bool:
        return p.name.startswith(".") or p.name.lower() in _SYSTEM_FILES

    found = []
    for entry in sorted(folder.iterdir()):
        if system(entry) or entry.name == MANIFEST + ".tmp":
            continue
        if entry.name in ("images", "context") and entry.is_dir():
            found += [
                f"{entry.name}/{f.name}"
                for f in sorted(entry.iterdir())
                if not system(f)
                and f"{entry.name}/{f.name}" not in ours
                and not (interrupted and f.suffix == ".png" and f.is_file())
            ]
            continue
        found.append(entry.name + ("/" if entry.is_dir() else ""))
    return found


def _difference(existing: object, manifest: dict) -> str:
    """What first tells the task on disk from ``manifest``: the class names, the ids, an
    item's image, suggestion or context strip."""
    if not isinstance(existing, dict) or not isinstance(existing.get("items"), list):
        return "the new one differs"
    if existing.get("class_names") != manifest["class_names"]:
        return f"class names {existing.get('class_names')} there, {manifest['class_names']} now"
    old, new = existing["items"], manifest["items"]
    if not all(isinstance(i, dict) for i in old):
        return "the new one differs"
    if [i.get("id") for i in old] != [i["id"] for i in new]:
        return "other item ids now"
    # the image last: another PNG encoder writes other bytes for the same pixels
    said_as = {"suggested": "suggested label", "context": "context strip", "sha256": "image"}
    for before, now in zip(old, new, strict=False):
        for key, what in said_as.items():
            if before.get(key) != now[key]:
                said = f": {before.get(key)} there, {now[key]} now" if key == "suggested" else ""
                return f"item {now['id']}'s {what} differs{said}"
    return "its manifest differs (another cfx version?)"


def _describe(manifest: object) -> str:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), list):
        return "an unreadable manifest"
    items = manifest["items"]
    ids = [str(item.get("id")) for item in items if isinstance(item, dict)]
    span = f"ids {ids[0]}..{ids[-1]}" if ids else "no ids"
    return f"{len(items)} items, {span}, classes {manifest.get('class_names')}"


def check_class_names(class_names: object) -> tuple[str, ...]:
    """``class_names`` as a task holds them: at least two distinct (ignoring case), non-empty
    names without surrounding spaces, none a plain number or ``unsure``."""
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(
            f"`class_names` must be a sequence of strings, got {type(class_names).__name__}"
        )
    names = tuple(class_names)
    if len(names) < 2:
        raise ValueError(f"`class_names` must name at least 2 classes, got {list(names)}")
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(
                f"`class_names` must be non-empty strings without surrounding spaces, got {name!r}"
            )
        if name.isdigit():
            raise ValueError(
                f"`class_names` must not be plain numbers (they read as class indices), "
                f"got {name!r}"
            )
        if name.lower() == UNSURE_NAME:
            raise ValueError(
                f"`class_names` must not hold {UNSURE_NAME!r}: it is the label of an image a "
                "person could not call"
            )
    if len({name.lower() for name in names}) != len(names):
        raise ValueError(f"`class_names` must differ ignoring case, got {list(names)}")
    return names


def _check_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    if ids is None:
        return [f"{k:06d}" for k in range(n)]
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise TypeError(f"`ids` must be a sequence of {n} strings, got {type(ids).__name__}")
    if len(ids) != n:
        raise ValueError(f"`ids` must hold one id per image ({n}), got {len(ids)}")
    for item_id in ids:
        if not isinstance(item_id, str) or not ID_PATTERN.fullmatch(item_id):
            raise ValueError(
                "`ids` must be file-name-safe strings (letters, digits, '.', '_', '-', not "
                f"starting with '.'), got {item_id!r}"
            )
    if len(set(ids)) != n:
        dupes = sorted({i for i in ids if list(ids).count(i) > 1})
        raise ValueError(f"`ids` must be unique, got duplicates {dupes}")
    return list(ids)


def _as_index(value: object) -> int | None:
    """``value`` as a class index when it is a whole number's type: a Python or numpy int, or
    a 0-d integer tensor (``pred[i]``); None otherwise (a bool, a float, anything else)."""
    if isinstance(value, Tensor) and value.ndim == 0 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        return None
    return int(value)


def _check_suggested(
    suggested: Sequence[int | None] | Tensor | np.ndarray | None, n: int, k: int
) -> list[int | None]:
    if suggested is None:
        return [None] * n
    if isinstance(suggested, np.ndarray):
        suggested = torch.from_numpy(suggested)
    if isinstance(suggested, Tensor):
        if suggested.is_floating_point() or suggested.ndim != 1:
            raise TypeError(
                f"`suggested` must be an integer tensor of shape ({n},), got dtype "
                f"{suggested.dtype} and shape {tuple(suggested.shape)}"
            )
        values: list[object] = list(suggested.tolist())
    elif isinstance(suggested, Sequence) and not isinstance(suggested, str):
        values = list(suggested)
    else:
        raise TypeError(
            f"`suggested` must be a sequence of class indices, got {type(suggested).__name__}"
        )
    if len(values) != n:
        raise ValueError(f"`suggested` must hold one label per image ({n}), got {len(values)}")
    out: list[int | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        index = _as_index(v)
        if index is None or not 0 <= index < k:
            raise ValueError(f"`suggested` labels must be class indices 0..{k - 1}, got {v!r}")
        out.append(index)
    return out


def _check_context(context: object, n: int) -> Tensor:
    if not isinstance(context, Tensor):
        raise TypeError(f"`context` must be a torch.Tensor, got {type(context).__name__}")
    if context.ndim != 5 or context.shape[0] != n or context.shape[1] == 0:
        raise ValueError(
            f"`context` must have shape (N={n}, T, C, H, W) with T >= 1, got {tuple(context.shape)}"
        )
    if context.shape[2] not in (1, 3):
        raise ValueError(
            f"`context` frames must have 1 or 3 channels, got shape {tuple(context.shape)}"
        )
    check_images(context.flatten(0, 1), "context")  # (N*T, C, H, W)
    return context


def _picture(image: Tensor, side: int) -> np.ndarray:
    """One ``(C, H, W)`` image in [-1, 1] -> uint8 ``(H', W')`` or ``(H', W', 3)``, upscaled."""
    pixels = to_uint8(image)  # (C, H, W)
    scale = max(1, side // max(pixels.shape[1:]))
    pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)  # (C, sH, sW)
    return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


def _encode(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _strip(frames: Tensor, gap: int = 2) -> bytes:
    """``(T, C, H, W)`` frames in [-1, 1] side by side, separated by ``gap`` grey pixels."""
    pics = [_picture(f, FRAME_SIDE) for f in frames]
    spacer = np.full((pics[0].shape[0], gap, *pics[0].shape[2:]), 128, dtype=np.uint8)
    parts = [p for pic in pics for p in (pic, spacer)][:-1]
    return _encode(np.concatenate(parts, axis=1))


# ---------------------------------------------------------------------------------------------
# reading a task and its labels


def read_task(directory: str | Path) -> Task:
    """The task in ``directory``; ``FileNotFoundError`` when there is none."""
    folder = Path(directory)
    path = folder / MANIFEST
    if not folder.is_dir():
        state = "is a file" if folder.exists() else "does not exist"
        raise FileNotFoundError(
            f"no labelling task in {folder}: it {state}; expected a task folder (with {MANIFEST})"
        )
    if not path.is_file():
        # a cfx augment run folder (its tasks are in round_KK/task) or one of its rounds
        found = [*folder.glob(f"task/{MANIFEST}"), *folder.glob(f"*/task/{MANIFEST}")]
        inside = sorted(m.parent for m in found)
        hint = (
            f"; this folder holds the tasks {', '.join(str(t) for t in inside[:3])}"
            + (", ..." if len(inside) > 3 else "")
            if inside
            else " (`cfx augment --labeller web` or `csv` writes one per round, in its "
            "--out's round_KK/task; from Python, cfx.label.write_task)"
        )
        raise FileNotFoundError(f"no labelling task in {folder}: {MANIFEST} is missing{hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"expected format {FORMAT!r} version {VERSION}")
        items = tuple(
            Item(
                id=str(d["id"]),
                image=str(d["image"]),
                context=None if d["context"] is None else str(d["context"]),
                suggested=None if d["suggested"] is None else int(d["suggested"]),
                sha256=str(d["sha256"]),
            )
            for d in data["items"]
        )
        # what write_task would refuse: a hand-made or damaged manifest served a page of
        # nothing, or asked for one class (session 44 audit)
        names = check_class_names(data["class_names"])
        if not items:
            raise ValueError("it lists no items")
        twice = sorted(i for i, n in Counter(item.id for item in items).items() if n > 1)
        if twice:
            raise ValueError(f"ids {twice[:5]} are listed more than once")
        wrong = [
            i.id for i in items if i.suggested is not None and not 0 <= i.suggested < len(names)
        ]
        if wrong:
            raise ValueError(f"items {wrong[:5]} suggest a class outside 0..{len(names) - 1}")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a cfx labelling manifest: {err}") from None
    return Task(directory=folder, class_names=names, items=items)


def _complete_lines(path: Path, names: tuple[str, ...]) -> tuple[list[str], int]:
    """The complete lines of ``path`` and the byte size they take. A last line without its
    newline is complete when it holds a whole row, four fields or the two ``id,label`` of a
    hand-typed one (an editor that saves without a final newline, as many do) whose label
    reads as one of the class ``names`` (``000001,uns``, cfx's ``unsure`` cut short, failed
    every later read of the file); otherwise it is half of one a crash cut short, ignored."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        tail = data[end:].decode("utf-8", errors="replace")
        fields = [f.strip() for f in next(csv.reader([tail]), [])]
        if len(fields) in _ROW_SIZES and all(fields[:2]) and not _cut_short(fields, names):
            return data.decode("utf-8").splitlines(), len(data)
        logger.warning("%s: ignoring a half-written last line %r", path, data[end:][:80])
    return data[:end].decode("utf-8").splitlines(), end


def _cut_short(fields: list[str], names: tuple[str, ...]) -> bool:
    """Whether a two-field last line is a label cfx was writing, cut short by a crash: a label
    that does not read but begins what cfx writes (``uns`` of ``unsure``, the start of a class
    name or index). A mistyped one (``tumor``) is kept, for the read to name its line."""
    if len(fields) != 2 or _parse_label(fields[1], names) is not None:
        return False
    written = [UNSURE_NAME, *(n.lower() for n in names), *(str(k) for k in range(len(names)))]
    return any(w.startswith(fields[1].lower()) for w in written)


def _label_rows(task: Task) -> list[tuple[str, int]]:
    """(id, label) for every complete line of ``labels.csv``, in the order given."""
    return _scan(task)[0]


def _scan(task: Task) -> tuple[list[tuple[str, int]], bool]:
    """:func:`_label_rows`, and whether the file has its header (not when it is missing,
    or holds only blank lines).

    Forgiving of hand edits that keep the meaning: blank lines are skipped, fields may carry
    surrounding spaces, and a label may be a class name (any case) as well as an index."""
    path = task.directory / LABELS
    if not path.is_file():
        return [], False
    lines, _ = _complete_lines(path, task.class_names)
    rows: list[tuple[str, int]] = []
    known = set(task.ids)
    names = task.class_names
    header_seen = False
    if lines and lines[0].startswith("\ufeff"):  # saved by an editor that adds a BOM
        lines = [lines[0][1:], *lines[1:]]
    for number, row in enumerate(csv.reader(lines), start=1):
        fields = [field.strip() for field in row]
        if not any(fields):
            continue  # a blank line, e.g. the one many editors add at the end
        if not header_seen:
            if tuple(fields) not in (LABELS_HEADER, LABELS_HEADER[:2]):
                raise ValueError(
                    f"{path} line {number}: expected the header {','.join(LABELS_HEADER)} "
                    f"(or just id,label), got {row}"
                )
            header_seen = True
            continue
        if len(fields) not in _ROW_SIZES:
            raise ValueError(
                f"{path} line {number}: expected the 4 fields {','.join(LABELS_HEADER)} (or "
                f"just id,label), got {len(fields)}: {row}"
            )
        item_id, text = fields[0], fields[1]
        if item_id not in known:
            raise ValueError(f"{path} line {number}: id {item_id!r} is not in {MANIFEST}")
        label = _parse_label(text, names)
        if label is None:
            raise ValueError(
                f"{path} line {number}: label must be a class index 0..{len(names) - 1}, a "
                f"class name ({', '.join(names)}) or {UNSURE_NAME}, got {text!r}"
            )
        rows.append((item_id, label))
    return rows, header_seen


def read_labels(directory: str | Path) -> dict[str, int]:
    """``{id: class index}`` for every labelled item, :data:`UNSURE` (-1) where the person
    could not call it (so ``class_names[label]`` needs a check); when an id was labelled
    twice the last label given wins. A half-written last line (a crash while writing) is ignored."""
    return dict(_label_rows(read_task(directory)))


def pending(directory: str | Path) -> list[str]:
    """Ids of items without a label, in manifest order."""
    task = read_task(directory)
    labels = dict(_label_rows(task))
    return [i for i in task.ids if i not in labels]


def record_label(
    directory: str | Path, item_id: str, label: int, *, labeller: str = "python"
) -> None:
    """Append one label to ``labels.csv`` and fsync it before returning.

    ``label`` is a class index ``0..K-1`` (an int, numpy int or 0-d integer tensor such as
    ``pred[i]``), or :data:`UNSURE` for an image the person could not call; ``item_id`` must
    be in the task; ``labeller`` is recorded beside it (the web page records ``"web"``, an
    import ``"csv"``). The file is read
    first: a ``labels.csv`` that no longer reads (a hand edit gone wrong) is an error naming
    the line, and nothing is appended to it. A half-written last line left by a crash is cut
    off, so the file stays well formed.
    """
    _record(read_task(directory), [(item_id, label)], labeller)


def _last_byte(fd: int, size: int) -> bytes:
    """The last byte of the open file ``fd`` of ``size`` bytes (``os.pread`` is POSIX only;
    an ``O_APPEND`` descriptor still writes at the end wherever it was read)."""
    os.lseek(fd, size - 1, os.SEEK_SET)
    return os.read(fd, 1)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def check_labeller(labeller: object, name: str = "labeller") -> None:
    """An error naming ``name`` unless ``labeller`` is a one-line non-empty string (it is a
    field of ``labels.csv``)."""
    if (
        not isinstance(labeller, str)
        or not labeller.strip()
        or len(f"x{labeller}x".splitlines()) > 1
    ):
        raise ValueError(f"`{name}` must be a one-line non-empty string, got {labeller!r}")


def _record(task: Task, labels: Sequence[tuple[str, int]], labeller: str) -> None:
    """Append ``(id, label)`` pairs for a task already read, in one write and one fsync."""
    k = len(task.class_names)
    known = set(task.ids)
    indexed: list[tuple[str, int]] = []  # the labels as class indices, once checked
    for item_id, label in labels:
        if not isinstance(item_id, str) or item_id not in known:
            raise UnknownNameError(
                f"`item_id` must be an id of the task in {task.directory}, got {item_id!r}"
            )
        index = _as_index(label)
        if index is None or not (0 <= index < k or index == UNSURE):
            raise ValueError(
                f"`label` must be a class index 0..{k - 1} ({', '.join(task.class_names)}) or "
                f"{UNSURE} (unsure), got {label!r}"
            )
        indexed.append((item_id, index))
    check_labeller(labeller)
    path = task.directory / LABELS
    lines = io.StringIO()
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    writer = csv.writer(lines, lineterminator="\n")
    for item_id, index in indexed:
        # unsure in words: a class index of -1 would read as a typo in the file
        writer.writerow([item_id, UNSURE_NAME if index == UNSURE else index, labeller, stamp])
    # one writer at a time, across processes too: two first labels at once each wrote the
    # header through one .tmp file, and one label could be lost (session 46 audit)
    with appending_locked(path) as fd:
        _, has_header = _scan(task)  # a file that no longer reads gets nothing more appended
        size = os.fstat(fd).st_size
        if not has_header:  # new, or emptied by hand (blank lines at most): start it afresh
            os.truncate(path, 0)
            header = io.StringIO()
            csv.writer(header, lineterminator="\n").writerow(LABELS_HEADER)
            lines = io.StringIO(header.getvalue() + lines.getvalue())
        elif size and _last_byte(fd, size) != b"\n":
            kept = _complete_lines(path, task.class_names)[1]
            if kept == size:  # a whole row saved without its final newline: end it
                os.write(fd, b"\n")
            else:  # a crash left half a line: drop it, it never counted
                os.truncate(path, kept)
        _write_all(fd, lines.getvalue().encode("utf-8"))  # O_APPEND: at the end
        os.fsync(fd)
    for item_id, index in indexed:
        logger.debug("label %s = %s by %s", item_id, label_name(index, task.class_names), labeller)


# ---------------------------------------------------------------------------------------------
# spreadsheet round trip


def export_csv(
    directory: str | Path, path: str | Path, *, overwrite: bool = False, name: str = "path"
) -> Path:
    """Write ``id,image,suggested,label,sha256`` for every item, for a spreadsheet: ``label``
    holds the item's label so far (its class name, or ``unsure``; from the page or an
    import) and is empty for the items still to label. Importing the sheet back changes only
    what was edited in it.

    ``image`` is the image file's path relative to the CSV's folder (absolute when there is
    no relative path, e.g. another drive); ``suggested`` is a class name or empty;
    ``sha256`` the first 16 hex digits of the picture's, by which :func:`import_csv` tells
    the sheet of another task with the same ids. An existing file is kept
    (``FileExistsError``: it may be a sheet half filled in) unless ``overwrite``; the task's
    own files are never written. Errors call the file ``name``.
    """
    task = read_task(directory)
    out = Path(path)
    inside = _task_file(task, out)
    if inside is not None:
        raise ValueError(
            f"`{name}` {out} is the task's own {inside}; expected a new CSV file, e.g. "
            f"{task.directory.name}-labels.csv next to the task folder"
        )
    if out.is_dir():  # even with overwrite: a folder is no sheet to replace
        raise IsADirectoryError(
            f"`{name}` {out} is a folder; expected a new CSV file, e.g. "
            f"{out / (task.directory.name + '-labels.csv')}"
        )
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"`{name}` {out} already exists (perhaps a sheet being filled in); expected a new "
            "file name, or overwrite it on purpose ("
            + ("`--force`" if name.startswith("--") else "`overwrite=True`")  # a flag: the CLI
            + ")"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(EXPORT_HEADER)
    done = dict(_label_rows(task))  # labelled on the page (or imported): shown, not blank
    for item in task.items:
        hint = "" if item.suggested is None else task.class_names[item.suggested]
        given = "" if item.id not in done else label_name(done[item.id], task.class_names)
        image = _relative(task.directory / item.image, out.parent)
        writer.writerow([item.id, image, hint, given, item.sha256[:SHEET_DIGITS]])
    write_atomic(out, rows.getvalue().encode("utf-8"))
    return out


def _task_file(task: Task, path: Path) -> str | None:
    """What ``path`` is within the task folder when it is one of the task's files, else None."""
    try:
        rel = path.resolve().relative_to(task.directory.resolve())
    except ValueError:
        return None
    parts = tuple(part.lower() for part in rel.parts)  # case-insensitive disks (macOS)
    own = (MANIFEST, LABELS, MANIFEST + ".tmp", LABELS + ".tmp")
    if not parts or (len(parts) == 1 and parts[0] in own):
        return str(rel) if parts else "folder"
    if parts[0] in ("images", "context"):
        return f"{parts[0]} folder"
    return None


def _relative(target: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
    except ValueError:  # no relative path between them (Windows drives)
        return str(target.resolve())


def _find_id(text: str, known: set[str], ids_by_number: dict[int, str] | None) -> str | None:
    """The task id ``text`` names: itself, or, for digits, the one id with that number
    (a spreadsheet turns ``000005`` into ``5``)."""
    if text in known:
        return text
    if ids_by_number is not None and text.isascii() and text.isdigit():
        return ids_by_number.get(int(text))
    return None


SHEET_DIGITS = 16
"""Hex digits of a picture's sha256 an exported sheet carries."""


def _same_picture(item: Item, written: str, where: str) -> None:
    """An error naming ``where`` when a sheet row's ``sha256`` (``written``, as
    :func:`export_csv` writes it: the picture's first digits) is not the item's picture's:
    the sheet of another task with the same ids (every round of ``cfx augment`` numbers its
    items from 000000). A cell emptied or turned into a number by a spreadsheet says
    nothing: the row is matched by id alone, as a sheet without the column is."""
    digest = written.lower()
    if len(digest) != SHEET_DIGITS or not all(c in "0123456789abcdef" for c in digest):
        return
    if digest.isdigit():  # a spreadsheet may have read it as a number and rounded it
        return
    if not item.sha256.startswith(digest):
        raise ValueError(
            f"{where}: its sha256 {written} is not that of item {item.id!r}'s picture in this "
            "task (the sheet of another task? each cfx augment round numbers its items from "
            "000000); import each task's own sheet, or delete the sha256 column to match by "
            "id alone"
        )


def label_name(label: int, names: Sequence[str]) -> str:
    """A label in words: its class name, or ``unsure``."""
    return UNSURE_NAME if label == UNSURE else names[label]


def _parse_label(text: str, names: tuple[str, ...]) -> int | None:
    """A class index from ``"1"``, ``"1.0"`` or ``"1,0"`` (as a spreadsheet may save it) or
    ``"Tumour"``, or :data:`UNSURE` from ``"unsure"`` (any case); None when it is none of
    these."""
    if text.lower() == UNSURE_NAME:
        return UNSURE
    whole = text[:-2] if text.endswith((".0", ",0")) else text  # 1,0 in comma-decimal locales
    if whole.isascii() and whole.isdigit():
        index = int(whole)
        return index if index < len(names) else None
    lowered = [name.lower() for name in names]
    return lowered.index(text.lower()) if text.lower() in lowered else None


_SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _sheet_text(raw: bytes, what: str) -> str:
    """A sheet's bytes as text: UTF-8 (with or without a BOM), UTF-16 with its BOM (Excel's
    "Unicode Text") or, failing UTF-8, Windows-1252 (Excel's CSV in western locales); a
    workbook or any other file is an error naming ``what``."""
    if raw.startswith(b"PK\x03\x04"):
        raise ValueError(
            f"{what} is a spreadsheet workbook (.xlsx or .ods), not a CSV file; save it as "
            "CSV (UTF-8) from the spreadsheet and import that"
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
    logger.warning("%s is not UTF-8: read as Windows-1252 (Excel's)", what)
    return text


def import_csv(
    directory: str | Path, path: str | Path, *, labeller: str = "csv", name: str = "path"
) -> int:
    """Record the labels filled in a CSV with columns ``id`` and ``label`` (as written by
    :func:`export_csv`, in any case); return how many were recorded. A row giving an item the
    label it already has is not recorded again (a sheet imported twice adds nothing); one
    that changes a label given before is recorded, with a warning naming them (a sheet
    filled before a correction on the page would undo it).

    Columns may be separated by commas, semicolons or tabs (the header row says which). A
    label is a class index (``1.0`` too), a class name (any case) or ``unsure`` (an image you
    cannot call: answered, no class); empty labels are skipped. A ``sha256`` column (as
    exported) must name each row's picture: the sheet of another task with the same ids is
    refused; a cell that is no 16 hex digits (emptied, or made a number by a spreadsheet)
    leaves the row matched by id alone.
    An id a spreadsheet stripped of its leading zeros (``5`` for ``000005``) is matched when
    only one id has that number. Every row is checked before any label is recorded, so a bad row
    records nothing; an id in two rows with two labels is such a row (with one label, twice, it
    counts once). Errors call the file ``name``.
    """
    task = read_task(directory)
    check_labeller(labeller)
    source = Path(path)
    if not source.is_file():
        found = "a folder" if source.is_dir() else "not a file" if source.exists() else "not found"
        raise FileNotFoundError(f"`{name}` must be a CSV file, got {source} ({found})")
    names, known = task.class_names, set(task.ids)
    numbers = [int(i) for i in task.ids if i.isascii() and i.isdigit()]
    ids_by_number = (  # only when every id is a number and no two share one
        {int(i): i for i in task.ids}
        if len(numbers) == len(task.ids) and len(set(numbers)) == len(numbers)
        else None
    )
    given: list[tuple[str, int]] = []
    rows_of: dict[str, tuple[int, int]] = {}  # id -> (first row giving it, its label)
    text = _sheet_text(source.read_bytes(), f"`{name}` {source}")
    with io.StringIO(text, newline="") as f:
        first = f.readline()
        f.seek(0)
        # spreadsheets in many locales save ';' or tab separated sheets: the header says which
        delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
        reader = csv.reader(f, delimiter=delimiter)
        written_header = [field.strip() for field in next(reader, [])]
        header = [field.lower() for field in written_header]
        if "id" not in header or "label" not in header:
            raise ValueError(
                f"`{name}` {source}: expected columns id and label in the first row "
                f"(comma, semicolon or tab separated), got {written_header}"
            )
        at_id, at_label = header.index("id"), header.index("label")
        at_digest = header.index("sha256") if "sha256" in header else None
        for row in reader:
            where = f"`{name}` {source} row {reader.line_num}"
            if not any(field.strip() for field in row):
                continue  # a blank row
            if len(row) != len(header):  # a shifted or cut row read its label from elsewhere
                raise ValueError(
                    f"{where}: expected {len(header)} fields ({', '.join(written_header)}), "
                    f"got {len(row)}: {row}; every row needs the header's columns, in order, "
                    f"separated by {_SEPARATORS[delimiter]} as the header is"
                )
            text = row[at_label].strip()
            if not text:
                continue
            written = row[at_id].strip()
            item_id = _find_id(written, known, ids_by_number)
            if item_id is None:
                raise ValueError(f"{where}: id {written!r} is not in the task {task.directory}")
            if at_digest is not None:
                _same_picture(task.item(item_id), row[at_digest].strip(), where)
            label = _parse_label(text, names)
            if label is None:
                raise ValueError(
                    f"{where}: label {text!r} must be a class index 0..{len(names) - 1}, a "
                    f"class name ({', '.join(names)}), or {UNSURE_NAME} for an image you "
                    "cannot call"
                )
            if item_id in rows_of:  # the same label twice is one answer; two are a conflict
                first_row, first_label = rows_of[item_id]
                if first_label != label:
                    raise ValueError(
                        f"{where}: id {item_id!r} is labelled {label_name(label, names)!r} "
                        f"here and {label_name(first_label, names)!r} in row {first_row}: "
                        "keep one of the two rows"
                    )
                continue
            rows_of[item_id] = (reader.line_num, label)
            given.append((item_id, label))
    current = dict(_label_rows(task))
    new = [(i, y) for i, y in given if current.get(i) != y]  # a second import adds nothing
    changed = [i for i, _ in new if i in current]
    if changed:
        logger.warning(
            "`%s` %s changes the label of %d item(s) labelled before (%s): the sheet's label "
            "now counts; if the sheet was filled before those were corrected, correct them again",
            name,
            source,
            len(changed),
            ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else ""),
        )
    if new:
        _record(task, new, labeller)
    return len(new)
