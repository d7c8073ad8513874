import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import cfx.label.labels as labels
from cfx.label import (
    import_csv,
    pending,
    read_labels,
    read_task,
    record_label,
    write_task,
)
from tests.label.toy import (
    IDS,
    SUGGESTED,
    known_images,
    label_lines,
)


def test_record_and_read_labels_last_one_wins(task_dir):
    record_label(task_dir, "000000", 0)
    record_label(task_dir, "000002", 1, labeller="ana")
    record_label(task_dir, "000000", 1)  # relabel
    assert read_labels(task_dir) == {"000000": 1, "000002": 1}
    assert label_lines(task_dir) == [
        ("000000", "0", "python"),  # called from Python: not credited to the web page
        ("000002", "1", "ana"),
        ("000000", "1", "python"),
    ]


def test_a_label_may_be_an_element_of_a_prediction_tensor(task_dir):
    """`record_label(task, id, pred[i])` was refused as "got tensor(0)"."""
    pred = torch.tensor([1, 0])
    record_label(task_dir, "000000", pred[0])
    record_label(task_dir, "000001", np.int64(0))
    assert read_labels(task_dir) == {"000000": 1, "000001": 0}
    write_task(task_dir.parent / "t2", known_images(), suggested=list(torch.tensor(SUGGESTED)))
    assert [i.suggested for i in read_task(task_dir.parent / "t2").items] == SUGGESTED


def test_pending_is_in_manifest_order(task_dir):
    assert pending(task_dir) == IDS
    record_label(task_dir, "000003", 1)
    record_label(task_dir, "000000", 0)
    assert pending(task_dir) == ["000001", "000002", "000004"]
    for item_id in IDS:
        record_label(task_dir, item_id, 0)
    assert pending(task_dir) == []


def test_record_label_rejects_unknown_ids_and_labels(task_dir):
    with pytest.raises(
        KeyError,
        match=r"`item_id` must be an id of the task.*'nope'; its ids: 000000, 000001, "
        r"000002 and 2 more",
    ):
        record_label(task_dir, "nope", 0)
    # an int for a numbered id: ids are text (the error said nothing of it)
    with pytest.raises(KeyError, match=r"got 2 \(ids are strings: '000002'\?\)"):
        record_label(task_dir, 2, 0)
    assert pending(task_dir) == IDS  # nothing recorded
    with pytest.raises(ValueError, match=r"`label` must be a class index 0..1 .*got 2"):
        record_label(task_dir, "000000", 2)
    with pytest.raises(ValueError, match="got True"):
        record_label(task_dir, "000000", True)
    with pytest.raises(ValueError, match=r"got tensor\(0.9000\)"):
        record_label(task_dir, "000000", torch.tensor(0.9))  # a probability, not a class
    with pytest.raises(ValueError, match="`labeller` must be a one-line"):
        record_label(task_dir, "000000", 0, labeller="a\nb")
    assert not (task_dir / "labels.csv").exists()


def test_every_label_is_fsynced(task_dir, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    record_label(task_dir, "000000", 0)  # header file (+ folder) and the line
    before = len(synced)
    record_label(task_dir, "000001", 1)
    assert len(synced) - before == 1


def test_labels_survive_a_killed_process(task_dir):
    code = (
        "import os, signal, sys\n"
        "from cfx.label import record_label\n"
        "record_label(sys.argv[1], '000001', 1)\n"
        "record_label(sys.argv[1], '000004', 0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(task_dir)], timeout=120)
    assert done.returncode == -9
    assert read_labels(task_dir) == {"000001": 1, "000004": 0}
    assert pending(task_dir) == ["000000", "000002", "000003"]


def test_a_half_written_last_line_is_ignored_then_cut(task_dir):
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "ab") as f:
        f.write(b"000003,0,we")  # the crash came mid-line
    assert read_labels(task_dir) == {"000000": 1}
    assert pending(task_dir) == ["000001", "000002", "000003", "000004"]
    record_label(task_dir, "000002", 0)
    assert label_lines(task_dir) == [("000000", "1", "python"), ("000002", "0", "python")]
    assert read_labels(task_dir) == {"000000": 1, "000002": 0}


@pytest.mark.parametrize("cut", [b"000003,uns", b"000003,unsure,pyth", b"000003,tumo"])
def test_a_label_word_cut_short_is_a_half_written_line(task_dir, cut):
    """`000003,uns` (a crash while writing "unsure") read as a hand-typed row and made every
    later read of labels.csv fail: the page, pending, augment, and further labels."""
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "ab") as f:
        f.write(cut)
    assert read_labels(task_dir) == {"000000": 1}
    record_label(task_dir, "000002", 0)
    assert read_labels(task_dir) == {"000000": 1, "000002": 0}
    # a hand-typed last row without its newline still counts
    with open(task_dir / "labels.csv", "ab") as f:
        f.write(b"000004,Tumour")
    assert read_labels(task_dir)["000004"] == 1


def test_a_mistyped_last_row_is_named_not_cut(task_dir):
    """`000001,tumor` typed without a newline was taken for a half-written line and cut off
    by the next label, silently."""
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "ab") as f:
        f.write(b"000001,tumor")
    with pytest.raises(ValueError, match=r"labels\.csv line 3"):
        read_labels(task_dir)
    with pytest.raises(ValueError, match=r"labels\.csv line 3"):
        record_label(task_dir, "000002", 0)
    assert (task_dir / "labels.csv").read_text().endswith("000001,tumor")


def test_a_broken_complete_line_is_a_clear_error(task_dir):
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "a") as f:
        f.write("000001,7,hand,2024-01-01\n")
    with pytest.raises(ValueError, match=r"labels.csv line 3: label must be a class index"):
        read_labels(task_dir)


def test_hand_edits_that_keep_the_meaning_still_read(task_dir):
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "a") as f:  # a person edits the file by hand
        f.write("\n 000001 , 0 ,hand,2024-01-01\n000002,Tumour,hand,2024-01-01\n\n")
    assert read_labels(task_dir) == {"000000": 1, "000001": 0, "000002": 1}
    record_label(task_dir, "000003", 0)  # and the tool goes on appending to it
    assert read_labels(task_dir) == {"000000": 1, "000001": 0, "000002": 1, "000003": 0}


def test_an_emptied_labels_file_gets_its_header_back(task_dir):
    record_label(task_dir, "000000", 1)
    for emptied in ("", "\n", "  \n\n"):  # "starting over" by hand; editors keep a newline
        (task_dir / "labels.csv").write_text(emptied)
        record_label(task_dir, "000001", 0)
        assert label_lines(task_dir) == [("000001", "0", "python")]


def test_nothing_is_appended_to_a_labels_file_that_no_longer_reads(task_dir, tmp_path):
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "a") as f:
        f.write("000001,maybe,hand,2024-01-01\n")
    before = (task_dir / "labels.csv").read_bytes()
    with pytest.raises(ValueError, match=r"labels.csv line 3: label must be a class index"):
        record_label(task_dir, "000002", 0)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000003,1\n")
    with pytest.raises(ValueError, match=r"labels.csv line 3"):
        import_csv(task_dir, sheet)
    assert (task_dir / "labels.csv").read_bytes() == before


def test_a_whole_last_row_saved_without_its_newline_is_kept(task_dir):
    """Editors that save without a final newline: the hand-added last row was taken for half
    a row, ignored, and cut away by the next label."""
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "ab") as f:
        f.write(b"000003,tumour,me,2024")  # four fields, no newline
    assert read_labels(task_dir) == {"000000": 1, "000003": 1}
    record_label(task_dir, "000002", 0)
    assert read_labels(task_dir) == {"000000": 1, "000003": 1, "000002": 0}


def test_a_labels_file_saved_with_a_bom_still_reads(task_dir):
    record_label(task_dir, "000000", 1)
    path = task_dir / "labels.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Notepad, Excel "CSV UTF-8"
    assert read_labels(task_dir) == {"000000": 1}


def test_a_labeller_name_with_any_line_break_is_refused(task_dir):
    """Only \\r and \\n were refused; a U+2028 made a row that no longer read."""
    for name in ("a\u2028b", "a\x0bb", "a\x85b"):
        with pytest.raises(ValueError, match="`labeller` must be a one-line"):
            record_label(task_dir, "000000", 1, labeller=name)
    assert read_labels(task_dir) == {}


def test_a_writer_waits_for_another_holding_the_labels_file(task_dir):
    """Two first labels at once each wrote the header through one labels.csv.tmp: one
    failed, and now and then one label was lost. Writers now take turns through a lock."""
    import os
    import threading

    from cfx.files import appending_locked

    with appending_locked(task_dir / "labels.csv") as fd:  # another writer, mid-write
        writer = threading.Thread(target=record_label, args=(task_dir, "000001", 1))
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive()  # waiting for the lock, not writing over this one
        os.write(fd, b"id,label,labeller,timestamp\n000000,0,other,2026-12-06\n")
    writer.join(timeout=30)
    assert read_labels(task_dir) == {"000000": 0, "000001": 1}
    assert label_lines(task_dir) == [("000000", "0", "other"), ("000001", "1", "python")]


def test_labels_typed_by_hand_as_id_label_count_and_are_kept(task_dir):
    """A hand-typed last line `000001,healthy` without a newline was taken for crash debris,
    ignored, then cut from the file by the next label."""
    path = task_dir / "labels.csv"
    path.write_text("id,label\n000000,tumour\n000001,healthy")  # an editor's file, no newline
    assert read_labels(task_dir) == {"000000": 1, "000001": 0}
    record_label(task_dir, "000002", 1)
    assert read_labels(task_dir) == {"000000": 1, "000001": 0, "000002": 1}
    assert path.read_text().startswith("id,label\n000000,tumour\n000001,healthy\n000002,1,python,")
    path.write_text("id,label\n000000,tumour,me\n")  # three fields: not a row cfx can read
    with pytest.raises(ValueError, match=r"line 2: expected the 4 fields .* \(or just id,label\)"):
        read_labels(task_dir)


def test_a_short_write_is_completed(task_dir, monkeypatch):
    """os.write may write part of its bytes; the labels are written whole (5 bytes a call)."""
    import os

    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:5])))
    record_label(task_dir, "000003", 1)
    import_csv_rows = [("000000", 0), ("000001", 1)]
    labels.append_labels(read_task(task_dir), import_csv_rows, "csv")
    assert read_labels(task_dir) == {"000003": 1, "000000": 0, "000001": 1}
    assert label_lines(task_dir)[-1] == ("000001", "1", "csv")


def test_an_index_cut_short_to_another_class_is_a_half_written_line(tmp_path):
    """With 12 classes a crash while writing ``000001,10,...`` could leave ``000001,1``,
    which read as class 1 (never given) and was made permanent by the next label."""
    names = tuple(f"c{k}" for k in range(12))
    task = write_task(tmp_path / "t", torch.zeros(2, 1, 4, 4), class_names=names)
    record_label(task, "000000", 11)
    with open(task / "labels.csv", "ab") as f:
        f.write(b"000001,1")
    assert read_labels(task) == {"000000": 11}
    record_label(task, "000000", 11)
    assert [line[:2] for line in label_lines(task)] == [("000000", "11"), ("000000", "11")]
    with open(task / "labels.csv", "ab") as f:
        f.write(b"000001,2")  # no longer index begins with 2: a whole hand-typed row
    assert read_labels(task) == {"000000": 11, "000001": 2}


def test_a_labels_file_in_another_encoding_is_named_with_its_line(task_dir):
    record_label(task_dir, "000000", 1)
    path = task_dir / "labels.csv"
    path.write_bytes(path.read_bytes() + "000001,0,Jos\u00e9,2024\n".encode("cp1252"))
    with pytest.raises(
        ValueError,
        match=r"labels\.csv line 3: not UTF-8 text \(byte 0xe9\); "
        "save the file as UTF-8",
    ):
        read_labels(task_dir)
