"""A labelling task's spreadsheet round trip: :func:`export_csv` writes a sheet of the items
and the labels so far, :func:`import_csv` records the labels filled in it."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from cfx.data.io import table_text
from cfx.files import path_argument, write_atomic
from cfx.label.classes import UNSURE_NAME, label_name, parse_label
from cfx.label.labels import append_labels, check_labeller, label_rows
from cfx.label.store import LABELS, MANIFEST, Item, Task, TaskFolder, read_task

logger = logging.getLogger(__name__)

EXPORT_HEADER = ("id", "image", "suggested", "label", "sha256")


def export_csv(
    directory: TaskFolder, path: str | Path, *, overwrite: bool = False, name: str = "path"
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
    out = path_argument(path, name)
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
    done = dict(label_rows(task))  # labelled on the page (or imported): shown, not blank
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
    own = (MANIFEST, LABELS)  # and their temporaries, <name>.<writer>.tmp (cfx.files)
    if not parts or (
        len(parts) == 1
        and (parts[0] in own or (parts[0].endswith(".tmp") and parts[0].startswith(own)))
    ):
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


_SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def import_csv(
    directory: TaskFolder, path: str | Path, *, labeller: str = "csv", name: str = "path"
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
    source = path_argument(path, name)
    if not source.is_file():
        found = "a folder" if source.is_dir() else "not a file" if source.exists() else "not found"
        raise FileNotFoundError(f"`{name}` must be a CSV file, got {source} ({found})")
    given = _sheet_labels(task, source, name)
    current = dict(label_rows(task))
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
        append_labels(task, new, labeller)
    return len(new)


def _sheet_labels(task: Task, source: Path, name: str) -> list[tuple[str, int]]:
    """``(id, label)`` for each row of the sheet ``source`` that gives a label, every row
    checked (an id in two rows counts once, with one label); errors call the file ``name``."""
    names, known = task.class_names, set(task.ids)
    numbers = [int(i) for i in task.ids if i.isascii() and i.isdigit()]
    ids_by_number = (  # only when every id is a number and no two share one
        {int(i): i for i in task.ids}
        if len(numbers) == len(task.ids) and len(set(numbers)) == len(numbers)
        else None
    )
    given: list[tuple[str, int]] = []
    rows_of: dict[str, tuple[int, int]] = {}  # id -> (first row giving it, its label)
    text = table_text(source.read_bytes(), f"`{name}` {source}")
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
            label = parse_label(text, names)
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
    return given
