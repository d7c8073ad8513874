"""A labelling task on disk: the images for a person to label, and where their labels go.

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

This module writes and reads the task (manifest and pictures); :mod:`cfx.label.labels` reads
and appends ``labels.csv``, :mod:`cfx.label.sheet` is the spreadsheet round trip and
:mod:`cfx.label.classes` says what a label is (a class index or :data:`~cfx.label.UNSURE`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from cfx.errors import UnknownNameError
from cfx.files import make_folder, path_argument, write_atomic
from cfx.images import check_images, to_uint8
from cfx.label.classes import as_index, check_class_names
from cfx.reprs import short_repr

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LABELS = "labels.csv"
FORMAT = "cfx-label-task"
VERSION = 1
IMAGE_SIDE = 256  # small images are upscaled by a whole factor up to this side, never shrunk
FRAME_SIDE = 128  # the same for each frame of a context strip
ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


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
    folder = task_folder(directory)  # before any check: a bad type named no argument
    if isinstance(directory, Task):
        raise TypeError("`directory` must be a folder to write the task in, got a Task")
    names = check_class_names(class_names)
    check_images(images, "images")
    from cfx.inversion import unit_range_notice

    # [0, 1] images were drawn washed out (black as mid-grey) for the labeller, without a word
    unit_range_notice(images, "task")
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
    make_folder(folder, "directory")  # a file in the way: an error naming the argument
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
        if system(entry) or (entry.name.startswith(MANIFEST) and entry.name.endswith(".tmp")):
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


MAX_ID = 200
"""The longest item id: its picture's file name (``images/<id>.png``) stays within the 255
bytes file systems take."""


def _valid_id(item_id: object) -> bool:
    return (
        isinstance(item_id, str) and len(item_id) <= MAX_ID and bool(ID_PATTERN.fullmatch(item_id))
    )


def _inside(relative: str) -> bool:
    """Whether a manifest's picture path stays inside the task folder."""
    path = Path(relative)
    return not path.is_absolute() and ".." not in path.parts


def _check_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    if ids is None:
        return [f"{k:06d}" for k in range(n)]
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise TypeError(f"`ids` must be a sequence of {n} strings, got {type(ids).__name__}")
    if len(ids) != n:
        raise ValueError(f"`ids` must hold one id per image ({n}), got {len(ids)}")
    for item_id in ids:
        if not _valid_id(item_id):
            raise ValueError(
                "`ids` must be file-name-safe strings (letters, digits, '.', '_', '-', not "
                f"starting with '.', at most {MAX_ID} characters), got {item_id!r:.80}"
            )
    if len(set(ids)) != n:
        dupes = sorted({i for i in ids if list(ids).count(i) > 1})
        raise ValueError(f"`ids` must be unique, got duplicates {dupes}")
    return list(ids)


def _check_suggested(
    suggested: Sequence[int | None] | Tensor | np.ndarray | None, n: int, k: int
) -> list[int | None]:
    if suggested is None:
        return [None] * n
    if isinstance(suggested, np.ndarray):
        # not through torch.from_numpy: a reversed view (negative strides) or an object
        # array holding None failed with torch's words, naming no argument
        if suggested.dtype.kind == "O":
            suggested = list(suggested)  # a sequence, which may hold None
        elif suggested.dtype.kind not in "iu" or suggested.ndim != 1:
            raise (TypeError if suggested.dtype.kind not in "iu" else ValueError)(
                f"`suggested` must be an integer array of shape ({n},), got dtype "
                f"{suggested.dtype} and shape {suggested.shape}"
            )
        else:
            suggested = suggested.tolist()
    if isinstance(suggested, Tensor):
        if suggested.is_floating_point() or suggested.ndim != 1:  # a type, or a shape
            raise (TypeError if suggested.is_floating_point() else ValueError)(
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
        index = as_index(v)
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


TaskFolder = str | os.PathLike[str] | Task
"""What the functions that read a task take: its folder, or the :class:`Task` read from it
(re-read, so its labels are the file's now)."""


def task_folder(directory: object, name: str = "directory") -> Path:
    """The folder of ``directory`` (a path, or a :class:`Task`'s), made absolute: a server
    started on a relative folder wrote into another task after a ``chdir``. A ``TypeError``
    naming ``name`` for anything else (``Path(None)`` named no argument)."""
    if isinstance(directory, Task):
        return directory.directory
    expected = "a task folder (str or Path) or a cfx.label.Task"
    return path_argument(directory, name, expected).absolute()


def read_task(directory: TaskFolder) -> Task:
    """The task in ``directory`` (a folder, or a :class:`Task` to read again);
    ``FileNotFoundError`` when there is none."""
    folder = task_folder(directory)
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
        # an id write_task refuses ("scan 1 ", "a+b") was taken, and its first label made
        # labels.csv unreadable (session 52 audit)
        bad = [i.id for i in items if not _valid_id(i.id)]
        if bad:
            raise ValueError(f"ids {bad[:5]} are not file-name-safe ids write_task writes")
        outside = [
            p for i in items for p in (i.image, i.context) if p is not None and not _inside(p)
        ]
        if outside:
            raise ValueError(f"image paths {outside[:3]} are not inside the task folder")
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
