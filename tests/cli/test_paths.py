"""``--out`` folders: made before the work, and one that cannot take files named at once."""

import tempfile
from pathlib import Path

import pytest

from cfx.cli.paths import out_folder


def test_out_folder_makes_the_folder_and_its_parents(tmp_path):
    assert out_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()


def test_a_folder_that_takes_no_files_is_named_before_the_work(tmp_path, monkeypatch):
    """An existing read-only --out ran the whole audit, then failed with a bare
    "[Errno 30] Read-only file system: 'rofs/examples.png'" (session 46 audit). The probe is
    faked here: tests run as root, whom a read-only mode does not stop."""

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(OSError, match=r"`--out` .*rofs: cannot write in the folder \(Read-only"):
        out_folder(tmp_path / "rofs")


def test_a_file_given_as_the_folder_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises((ValueError, OSError), match="`--report`"):
        out_folder(Path(tmp_path / "f"), "--report")
