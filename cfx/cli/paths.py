"""Output folders of the commands: made before the work, errors naming the option."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cfx.files import nearest_existing, probe_writable

log = logging.getLogger(__name__)


def built_in_named(name: str, flag: str) -> None:
    """Warn when ``name`` (e.g. ``brain``), which ``flag`` reads as built-in data, is also a
    file or folder here: a user's own ``brain/`` would be passed over in silence."""
    if Path(name).exists():
        log.warning(
            "`%s %s` is the built-in data; the %s ./%s here is not read (give it as ./%s to "
            "use it)",
            flag,
            name,
            "folder" if Path(name).is_dir() else "file",
            name,
            name,
        )


def out_path(text: str) -> Path:
    """``--out`` as argparse reads it: a path, never an empty one (``--out "$OUT"`` with
    ``OUT`` unset meant the current folder, whose files an earlier run's names then replaced;
    session 45 audit)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "got an empty path (an unset shell variable?); name a folder, e.g. --out ."
        )
    return Path(text)


def out_file_path(text: str) -> Path:
    """An ``--out`` that names a file (a figure, a table), as argparse reads it: never an
    empty path."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "got an empty path (an unset shell variable?); name a file, e.g. --out preview.png"
        )
    return Path(text)


def out_file(path: Path, flag: str = "--out", *, example: str = "preview.png") -> Path:
    """``path`` as a file to write, checked before the work: not an existing folder, not
    inside a file; its folder is made (and must take files). ``example``: a file name the
    refusal of a folder suggests in it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"`{flag}` must name a file, got the folder {path} (e.g. {path / example})"
        )
    parent = nearest_existing(path)
    if parent is not None and not parent.is_dir():
        raise FileExistsError(
            f"`{flag}` must be a file in a folder, got {path}, inside the file {parent}"
        )
    out_folder(path.parent, flag)
    return path


def out_text(text: str) -> str:
    """:func:`out_path`'s check, keeping the text (``results/``: Path drops the slash that
    says a folder was meant)."""
    out_path(text)
    return text


def not_a_file(path: Path, flag: str = "--out") -> Path:
    """``path``, after checking it is not an existing file (it may not exist yet): for a
    check before the models load, when the folder is made only later."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"`{flag}` must be a folder, got an existing file: {path}")
    # a/b with a a file: the folder can never be made (mkdir's bare [Errno 20] said so late)
    parent = nearest_existing(path)
    if parent is not None and not parent.is_dir():
        raise FileExistsError(f"`{flag}` must be a folder, got {path}, inside the file {parent}")
    return path


def not_the_input_folder(
    out: Path, given: Path | None, flag: str = "--input", why: str | None = None
) -> None:
    """Refuse an ``--out`` that is the ``flag`` folder (``--input``'s images, or a folder of
    masks): the figures written there would be read as images (or masks) by the next run
    (and shift every label given by position). ``why`` replaces that reason."""
    if given is not None and given.is_dir() and Path(out).resolve() == given.resolve():
        what = "masks" if flag == "--masks" else "images"
        reason = why or f"its outputs would be read as {what} by the next run"
        raise ValueError(f"`--out` must not be the `{flag}` folder: {reason}")


TRAINING_RUN_FILES = ("training.json", "checkpoint.safetensors", "model/config.json")
"""What marks a `cfx train` run's folder."""


def training_run_notice(out: Path) -> None:
    """Warn when ``out`` is a `cfx train` run's folder: the outputs went beside its model
    without a word (``--out runs/cnn`` typed for ``--classifier runs/cnn``, say)."""
    found = [name for name in TRAINING_RUN_FILES if (Path(out) / name).exists()]
    if found:
        log.warning(
            "`--out` %s is a training run's folder (%s): this command's outputs go beside its "
            "model; to explain that model pass it as --classifier, and another --out",
            out,
            ", ".join(found),
        )


def writable_later(path: Path, flag: str = "--out") -> Path:
    """``path`` checked, before any work, as a folder that can be made or written in, without
    making it (a refused run leaves no folder behind): not a file, and the folder (or, if it
    does not exist yet, the nearest folder above it that does) takes files."""
    path = not_a_file(path, flag)
    here = path if path.exists() else (nearest_existing(path) or Path("."))
    try:
        probe_writable(here)
    except OSError as err:
        what = "write in the folder" if here == path else f"create it (in {here})"
        raise OSError(f"`{flag}` {path}: cannot {what} ({err.strerror or err})") from err
    return path


def out_folder(path: Path, flag: str = "--out") -> Path:
    """Create ``path`` (and its parents) before any work is done, so a ``flag`` that names a
    file or an unwritable place fails at once, naming the option, not after minutes of
    compute with a bare ``[Errno 17]``."""
    path = not_a_file(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"`{flag}` {path}: cannot create the folder ({err.strerror or err})") from err
    try:  # a folder that takes no files failed at the run's last step
        probe_writable(path)
    except OSError as err:
        why = err.strerror or err
        raise OSError(f"`{flag}` {path}: cannot write in the folder ({why})") from err
    return path


def add_output_options(parser: argparse.ArgumentParser, default: str, holds: str) -> None:
    """``--out`` (a folder for ``holds``, ``default`` unless given) and ``--no-progress``, as
    every command that writes a folder names them."""
    parser.add_argument(
        "--out", type=out_path, default=Path(default), help=f"folder for {holds}, made if missing"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
