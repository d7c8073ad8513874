"""A task's ``labels.csv``: read forgivingly, appended crash-safely.

One line per label given (``id,label,labeller,timestamp``; a line typed by hand may be just
``id,label``), appended and fsync'ed at once; relabelling appends again and the last line wins.
A line counts only once its newline is on disk (or, last in the file, once it holds a whole
row), so a crash half way through a write loses that one label at most and never corrupts the
file. Writers (a server, an import, another process) take turns through a lock on the file,
so two labels given at once are both kept.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cfx.errors import UnknownNameError, first_names
from cfx.files import appending_locked
from cfx.label.classes import UNSURE, UNSURE_NAME, as_index, label_name, parse_label
from cfx.label.store import LABELS, MANIFEST, Task, TaskFolder, read_task

logger = logging.getLogger(__name__)

LABELS_HEADER = ("id", "label", "labeller", "timestamp")
_ROW_SIZES = (2, len(LABELS_HEADER))  # fields of a line of labels.csv: typed by hand, or cfx's


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
            return _text(path, data).splitlines(), len(data)
        logger.warning(
            "%s: ignoring a half-written last line %r (a label cut short by a crash; if you "
            "typed it, end it with a newline)",
            path,
            data[end:][:80],
        )
    return _text(path, data[:end]).splitlines(), end


def _text(path: Path, data: bytes) -> str:
    """``data`` of ``path`` as UTF-8 text, or an error naming the file and line (a file
    saved by an editor in another encoding failed with the codec's words alone)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path} line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the "
            "file as UTF-8"
        ) from None


def _cut_short(fields: list[str], names: tuple[str, ...]) -> bool:
    """Whether a two-field last line is a label cfx was writing, cut short by a crash: a label
    that does not read but begins what cfx writes (``uns`` of ``unsure``, the start of a class
    name or index), or an index that also begins a longer one cfx writes (``1`` of ``10``
    with 11 or more classes: kept, it recorded class 1 for a label of 10). A mistyped one
    (``tumor``) is kept, for the read to name its line."""
    if len(fields) != 2:
        return False
    text = fields[1].lower()
    indices = [str(k) for k in range(len(names))]
    if parse_label(fields[1], names) is not None:
        return any(k != text and k.startswith(text) for k in indices)
    written = [UNSURE_NAME, *(n.lower() for n in names), *indices]
    return any(w.startswith(text) for w in written)


def label_rows(task: Task) -> list[tuple[str, int]]:
    """(id, label) for every complete line of ``labels.csv``, in the order given."""
    return _scan(task)[0]


def _scan(task: Task) -> tuple[list[tuple[str, int]], bool]:
    """:func:`label_rows`, and whether the file has its header (not when it is missing,
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
        label = parse_label(text, names)
        if label is None:
            raise ValueError(
                f"{path} line {number}: label must be a class index 0..{len(names) - 1}, a "
                f"class name ({', '.join(names)}) or {UNSURE_NAME}, got {text!r}"
            )
        rows.append((item_id, label))
    return rows, header_seen


def read_labels(directory: TaskFolder) -> dict[str, int]:
    """``{id: class index}`` for every labelled item, :data:`UNSURE` (-1) where the person
    could not call it (so ``class_names[label]`` needs a check); when an id was labelled
    twice the last label given wins. A half-written last line (a crash while writing) is ignored."""
    return dict(label_rows(read_task(directory)))


def pending(directory: TaskFolder) -> list[str]:
    """Ids of items without a label, in manifest order."""
    task = read_task(directory)
    labels = dict(label_rows(task))
    return [i for i in task.ids if i not in labels]


def record_label(
    directory: TaskFolder, item_id: str, label: int, *, labeller: str = "python"
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
    append_labels(read_task(directory), [(item_id, label)], labeller)


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


def append_labels(task: Task, labels: Sequence[tuple[str, int]], labeller: str) -> None:
    """Append ``(id, label)`` pairs for a task already read, in one write and one fsync."""
    k = len(task.class_names)
    known = set(task.ids)
    indexed: list[tuple[str, int]] = []  # the labels as class indices, once checked
    for item_id, label in labels:
        if not isinstance(item_id, str) or item_id not in known:
            # an int for a numbered id (2 for "000002") was refused without saying ids are text
            number = as_index(item_id)
            named = [i for i in task.ids if i.isdigit() and number is not None and int(i) == number]
            raise UnknownNameError(
                f"`item_id` must be an id of the task in {task.directory}, got {item_id!r}"
                + (f" (ids are strings: {named[0]!r}?)" if len(named) == 1 else "")
                + ("" if named or not task.ids else f"; its ids: {first_names(list(task.ids))}")
            )
        index = as_index(label)
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
