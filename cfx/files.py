"""Files written whole or not at all: a run killed mid-write leaves the old file or the new
one, never half of either (the resumable jobs read these files back on the next run)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a sibling ``<name>.<unique>.tmp``
    that is fsync'ed and renamed over it, then fsync the folder, so the rename itself
    survives a power cut. The temporary name is the writer's own (two writers of one file
    shared ``<name>.tmp`` and could rename each other's half-written bytes into place) and
    is removed when the write fails; only a killed process leaves one behind."""
    path = Path(path)
    # created here (mode from the umask, as any new file; mkstemp's would be 0600)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        return _replace_synced(tmp, path)
    except BaseException:  # Ctrl-C too: no temporary left beside the file
        tmp.unlink(missing_ok=True)
        raise


def save_tensors_atomic(
    tensors: Mapping[str, Tensor], path: str | Path, metadata: Mapping[str, str] | None = None
) -> Path:
    """:func:`safetensors.torch.save_file` made atomic as :func:`write_atomic` is. The file
    gets the permissions of any file the process creates (``save_file`` itself makes its
    files owner-only, 0600, so a shared model folder was unreadable to colleagues)."""
    from safetensors.torch import save

    meta = None if metadata is None else dict(metadata)
    return write_atomic(path, save(dict(tensors), metadata=meta))


def _replace_synced(tmp: Path, path: Path) -> Path:
    """fsync the written ``tmp``, rename it over ``path`` and fsync the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_folder(path.parent)
    return path


def fsync_folder(folder: str | Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk; a no-op off POSIX, where a
    folder cannot be opened for fsync."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def probe_writable(folder: str | Path) -> None:
    """Make and drop an unnamed file in ``folder``: the ``OSError`` of a folder that exists
    but takes no files (a read-only disk, another user's), raised before the work rather than
    at its first output."""
    import tempfile

    with tempfile.TemporaryFile(dir=folder):
        pass


def nearest_existing(path: Path) -> Path | None:
    """The nearest of ``path``'s parents that exists (None: none does)."""
    return next((p for p in path.parents if p.exists()), None)


def path_argument(value: object, name: str, expected: str = "a path (str or Path)") -> Path:
    """``value`` as a Path, or a ``TypeError`` naming ``name``: "`name` must be ``expected``,
    got <type>" (``Path(None)`` named no argument, and bytes are no path cfx writes)."""
    if not isinstance(value, str | os.PathLike) or isinstance(value, bytes):
        raise TypeError(f"`{name}` must be {expected}, got {type(value).__name__}")
    return Path(value)


def make_folder(path: object, name: str) -> Path:
    """The folder ``path``, made (with its parents) if missing; a ``TypeError`` naming
    ``name`` for anything but a str or Path, a ``ValueError`` for an existing file or a path
    inside one (mkdir's bare ``[Errno 17]``/``[Errno 20]`` named no argument)."""
    folder = path_argument(path, name, "a folder path (str or Path)")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`{name}` must be a folder (made if missing), got the file {folder}")
    above = nearest_existing(folder)
    if above is not None and not above.is_dir():
        raise ValueError(f"`{name}` must be a folder, got {folder}, inside the file {above}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # no permission, a read-only disk
        raise OSError(f"`{name}` {folder}: cannot make the folder ({err.strerror or err})") from err
    return folder


def lock_exclusive(fd: int, busy: str) -> None:
    """Hold an exclusive advisory lock on the open file or folder ``fd`` until it is closed
    (also when the process dies), so that a second run writing the same output is refused:
    :class:`BlockingIOError` with the message ``busy`` while another holds it. No lock where
    there are none (Windows, which has no ``fcntl``; a network mount without locks)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BlockingIOError(busy) from None
    except OSError:  # a file system without locks: written unlocked, as before
        return


@contextmanager
def appending_locked(path: str | Path) -> Iterator[int]:
    """Open ``path`` for appending (created when missing) and hold an exclusive advisory lock
    on it while the block runs, waiting for another holder (process or thread) to finish; the
    block gets the file descriptor. Unlocked where there are no locks (Windows, a mount
    without them)."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # pragma: no cover - no locks here: unlocked, as before
            pass
        yield fd
    finally:
        os.close(fd)


@contextmanager
def locked_folder(folder: str | Path, busy: str) -> Iterator[None]:
    """Hold :func:`lock_exclusive` on ``folder`` (which must exist) while the block runs."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        lock_exclusive(fd, busy)
        yield
    finally:
        os.close(fd)
