import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cfx.label.store as store
from cfx.images import to_uint8
from cfx.label import (
    export_csv,
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
    N,
    T,
    fill_sheet,
    known_context,
    known_images,
    label_lines,
    make_task,
)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


# -- writing a task ---------------------------------------------------------------------------


def test_write_task_manifest_lists_items_in_order(task_dir):
    manifest = json.loads((task_dir / "manifest.json").read_text())
    assert manifest["class_names"] == ["healthy", "tumour"]
    assert [item["id"] for item in manifest["items"]] == IDS
    assert [item["suggested"] for item in manifest["items"]] == SUGGESTED
    first = manifest["items"][0]
    assert first["image"] == "images/000000.png"
    assert first["context"] == "context/000000.png"
    png = (task_dir / "images" / "000000.png").read_bytes()
    assert first["sha256"] == hashlib.sha256(png).hexdigest()
    task = read_task(task_dir)
    assert task.ids == IDS and task.class_names == ("healthy", "tumour")
    assert task.item("000003").suggested == 0


def test_images_are_the_pixels_upscaled_by_nearest(task_dir):
    # 8x8 images are scaled by 256 // 8 = 32 so each pixel becomes a 32x32 block
    expected = to_uint8(known_images()[2])[0]  # (8, 8)
    got = pixels(task_dir / "images" / "000002.png")
    assert got.shape == (256, 256)
    np.testing.assert_array_equal(got[::32, ::32], expected)
    np.testing.assert_array_equal(got[31::32, 31::32], expected)
    first = pixels(task_dir / "images" / "000000.png")  # the ramp -1 .. 0.5 -> 0 .. 191
    assert first[0, 0] == 0 and first[-1, -1] == 191


def test_context_strip_is_frames_side_by_side_with_grey_gaps(task_dir):
    strip = pixels(task_dir / "context" / "000001.png")
    # three 8x8 frames scaled by 128 // 8 = 16 plus two 2-pixel gaps
    assert strip.shape == (128, 3 * 128 + 2 * 2)
    frames = to_uint8(known_context()[1])  # (T, 1, 8, 8)
    for t in range(T):
        x0 = t * (128 + 2)
        assert (strip[:, x0 : x0 + 128] == frames[t, 0, 0, 0]).all()
    assert (strip[:, 128:130] == 128).all()


def test_rgb_images_and_custom_ids(tmp_path):
    images = torch.zeros(2, 3, 4, 4)
    images[:, 0] = 1.0  # red
    folder = write_task(tmp_path / "rgb", images, ids=["scan-a", "scan_b.1"])
    got = pixels(folder / "images" / "scan-a.png")
    assert got.shape == (256, 256, 3)
    assert tuple(got[5, 5]) == (255, 128, 128)
    assert pending(folder) == ["scan-a", "scan_b.1"]
    assert json.loads((folder / "manifest.json").read_text())["items"][1]["context"] is None


@pytest.mark.parametrize(
    "suggested", [torch.tensor([1, 0]), np.array([1, 0]), [1, 0], (np.int64(1), 0)]
)
def test_suggested_labels_as_tensor_array_or_list(tmp_path, suggested):
    folder = write_task(tmp_path / "s", known_images()[:2], suggested=suggested)
    assert [item.suggested for item in read_task(folder).items] == [1, 0]


def test_writing_the_same_task_again_keeps_the_labels(task_dir):
    record_label(task_dir, "000001", 1)
    again = write_task(task_dir, known_images(), context=known_context(), suggested=SUGGESTED)
    assert again == task_dir
    assert read_labels(task_dir) == {"000001": 1}


def test_the_same_task_from_another_png_encoder_keeps_the_labels(task_dir, monkeypatch):
    """Task folders compare by the PNGs' sha256: a Pillow or zlib upgrade writes other bytes
    for the same pixels, and a resumed labelling run must not be refused for it."""
    record_label(task_dir, "000001", 1)

    def other_encoder(px):
        buffer = io.BytesIO()
        Image.fromarray(px).save(buffer, format="PNG", compress_level=0)
        return buffer.getvalue()

    monkeypatch.setattr(store, "_encode", other_encoder)
    again = write_task(task_dir, known_images(), context=known_context(), suggested=SUGGESTED)
    assert again == task_dir and read_labels(task_dir) == {"000001": 1}
    other = known_images()
    other[0, 0, 0, 0] = 1.0  # one pixel differs: refused as before
    with pytest.raises(FileExistsError, match="different labelling task"):
        write_task(task_dir, other, context=known_context(), suggested=SUGGESTED)


def test_a_different_task_is_refused(task_dir):
    other = known_images()
    other[0, 0, 0, 0] = 1.0  # one pixel differs
    with pytest.raises(FileExistsError, match=r"`directory`.*different labelling task.*expected"):
        write_task(task_dir, other, context=known_context(), suggested=SUGGESTED)
    with pytest.raises(FileExistsError, match="5 items"):
        write_task(task_dir, known_images()[:2])
    assert len(read_task(task_dir).items) == N  # untouched


def test_what_differs_from_the_task_on_disk_is_named(task_dir):
    """Both tasks were described alike ("5 items, ids 000000..000004, classes [...]")."""
    other = list(SUGGESTED)
    other[2] = 0
    with pytest.raises(FileExistsError, match="item 000002's suggested label differs: 1 there, 0"):
        write_task(task_dir, known_images(), context=known_context(), suggested=other)
    with pytest.raises(FileExistsError, match="item 000000's image differs"):
        write_task(task_dir, known_images().flip(-1), context=known_context(), suggested=SUGGESTED)
    with pytest.raises(FileExistsError, match=r"class names \['healthy', 'tumour'\] there"):
        write_task(task_dir, known_images(), class_names=("a", "b"))


def test_a_folder_of_ones_own_files_is_not_written_into(tmp_path):
    """A folder holding a user's images/000000.png and notes was written over."""
    folder = tmp_path / "my_scans"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "scan.png").write_bytes(b"mine")
    (folder / "notes.txt").write_text("mine")
    (folder / "images" / "Thumbs.db").write_bytes(b"")  # a file manager's: passed over
    (folder / ".DS_Store").write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"does not write \(images/scan.png, notes.txt\)"):
        write_task(folder, known_images())
    (folder / "notes.txt").unlink()  # one's own PNG files alone are not written over either
    (folder / "images" / "000000.png").write_bytes(b"mine too")
    with pytest.raises(FileExistsError, match=r"does not write \(images/scan.png\)"):
        write_task(folder, known_images())
    assert (folder / "images" / "000000.png").read_bytes() == b"mine too"
    assert sorted(p.name for p in folder.rglob("*")) == [
        ".DS_Store",
        "000000.png",
        "Thumbs.db",
        "images",
        "scan.png",
    ]
    # an interrupted write (pictures and its mark, no manifest yet) is completed, even one
    # of other ids or count
    make_task(tmp_path / "t")
    (tmp_path / "t" / "manifest.json").unlink()
    (tmp_path / "t" / "images" / "000004.png").unlink()
    assert read_task(make_task(tmp_path / "t")).ids == IDS  # its own pictures' names
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / store.WRITING).touch()
    (tmp_path / "u" / "images").mkdir()
    (tmp_path / "u" / "images" / "000099.png").write_bytes(b"left by a larger task")
    assert read_task(make_task(tmp_path / "u")).ids == IDS
    assert not (tmp_path / "u" / store.WRITING).exists()


def test_labels_without_a_manifest_are_refused(tmp_path):
    (tmp_path / "labels.csv").write_text("id,label,labeller,timestamp\n")
    with pytest.raises(FileExistsError, match="labels without their task"):
        write_task(tmp_path, known_images())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": known_images() * 3}, ValueError, r"`images` must have values in \[-1, 1\]"),
        ({"images": torch.zeros(2, 2, 4, 4)}, ValueError, "`images` must have 1 .* or 3"),
        ({"images": torch.zeros(2, 4, 4)}, ValueError, r"`images` must have shape \(B, C, H, W\)"),
        ({"ids": ["a", "b"]}, ValueError, r"`ids` must hold one id per image \(5\), got 2"),
        ({"ids": ["a", "b", "c", "d", "a"]}, ValueError, r"`ids` must be unique.*\['a'\]"),
        ({"ids": ["a", "b", "c", "d", "../x"]}, ValueError, "`ids` must be file-name-safe"),
        ({"suggested": [0, 1, 2, 0, 1]}, ValueError, r"`suggested` labels .* 0..1, got 2"),
        ({"suggested": [0, 1]}, ValueError, r"`suggested` must hold one label per image"),
        ({"class_names": ("only",)}, ValueError, "`class_names` must name at least 2"),
        ({"class_names": ("a", "A")}, ValueError, "`class_names` must differ ignoring case"),
        ({"class_names": ("0", "1")}, ValueError, "`class_names` must not be plain numbers"),
        ({"context": torch.zeros(5, 1, 4, 4)}, ValueError, r"`context` must have shape \(N=5"),
        ({"context": torch.zeros(4, 2, 1, 4, 4)}, ValueError, r"`context` must have shape"),
        ({"context": torch.full((5, 2, 1, 4, 4), 2.0)}, ValueError, r"`context` must have val"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path, kwargs, error, match):
    args = {"images": known_images()} | kwargs
    with pytest.raises(error, match=match):
        write_task(tmp_path / "t", args.pop("images"), **args)
    assert not (tmp_path / "t" / "manifest.json").exists()


# -- labels -----------------------------------------------------------------------------------


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


def test_a_task_repr_counts_its_items(task_dir):
    shown = repr(read_task(task_dir))
    assert "items=<5 x Item>" in shown and "sha256" not in shown


def test_pending_is_in_manifest_order(task_dir):
    assert pending(task_dir) == IDS
    record_label(task_dir, "000003", 1)
    record_label(task_dir, "000000", 0)
    assert pending(task_dir) == ["000001", "000002", "000004"]
    for item_id in IDS:
        record_label(task_dir, item_id, 0)
    assert pending(task_dir) == []


def test_record_label_rejects_unknown_ids_and_labels(task_dir):
    with pytest.raises(KeyError, match=r"`item_id` must be an id of the task.*'nope'"):
        record_label(task_dir, "nope", 0)
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
    real = store.os.fsync
    monkeypatch.setattr(store.os, "fsync", lambda fd: synced.append(fd) or real(fd))
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


def test_missing_task_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no labelling task in .*manifest.json"):
        read_labels(tmp_path)
    # a cfx augment run folder, given for its round's task, names the tasks it holds
    write_task(tmp_path / "run" / "round_00" / "task", known_images()[:2])
    with pytest.raises(FileNotFoundError, match=r"this folder holds the tasks .*round_00.task$"):
        read_labels(tmp_path / "run")


# -- spreadsheet round trip -------------------------------------------------------------------


def digest(task_dir: Path, k: int) -> str:
    """The first 16 hex digits of the sha256 of item k's picture file, as written."""
    return hashlib.sha256((task_dir / "images" / f"{k:06d}.png").read_bytes()).hexdigest()[:16]


def test_export_csv_lists_every_item_with_an_empty_label(task_dir, tmp_path):
    out = export_csv(task_dir, tmp_path / "sheet.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "id,image,suggested,label,sha256"
    # image paths are relative to the sheet's folder (task_dir is tmp_path / "task"), and
    # the picture's first 16 sha256 digits tell another task's sheet with the same ids
    assert lines[1] == f"000000,task/images/000000.png,healthy,,{digest(task_dir, 0)}"
    assert lines[2] == f"000001,task/images/000001.png,tumour,,{digest(task_dir, 1)}"
    assert len(lines) == 1 + N
    assert (tmp_path / lines[1].split(",")[1]).is_file()


def test_export_csv_shows_the_labels_given_so_far(task_dir, tmp_path):
    """Items labelled on the page came out blank in the sheet: a person filling it labelled
    them again (or left them blank, reading them as not done)."""
    record_label(task_dir, "000000", 0)
    record_label(task_dir, "000000", 1)  # relabelled: the last label counts
    record_label(task_dir, "000002", store.UNSURE)
    lines = export_csv(task_dir, tmp_path / "sheet.csv").read_text().splitlines()
    assert lines[1] == f"000000,task/images/000000.png,healthy,tumour,{digest(task_dir, 0)}"
    assert lines[2] == f"000001,task/images/000001.png,tumour,,{digest(task_dir, 1)}"
    assert lines[3].endswith(f",unsure,{digest(task_dir, 2)}")
    # imported back unchanged, the sheet records nothing new
    assert import_csv(task_dir, tmp_path / "sheet.csv") == 0
    assert read_labels(task_dir) == {"000000": 1, "000002": store.UNSURE}


def test_export_csv_never_overwrites_labels_or_a_sheet_being_filled(task_dir, tmp_path):
    record_label(task_dir, "000000", 1)
    for own in ("labels.csv", "Labels.CSV", "manifest.json", "labels.csv.tmp", "images/new.csv"):
        with pytest.raises(ValueError, match=r"`path` .* is the task's own"):
            export_csv(task_dir, task_dir / own)
    assert read_labels(task_dir) == {"000000": 1}  # labels.csv untouched
    sheet = export_csv(task_dir, tmp_path / "sheet.csv")
    sheet.write_text(sheet.read_text() + "half filled in\n")
    refused = r"`--csv` .*sheet.csv already exists.*\(`--force`\)$"
    with pytest.raises(FileExistsError, match=refused):
        export_csv(task_dir, sheet, name="--csv")
    with pytest.raises(FileExistsError, match=r"\(`overwrite=True`\)$"):  # from Python
        export_csv(task_dir, sheet)
    assert sheet.read_text().endswith("half filled in\n")
    export_csv(task_dir, sheet, overwrite=True)
    assert "half filled in" not in sheet.read_text()
    nearby = export_csv(task_dir, task_dir / "sheet.csv")  # a new file in the folder is fine
    assert nearby.read_text().splitlines()[1].startswith("000000,images/000000.png,healthy,tumour,")


def test_import_csv_matches_ids_a_spreadsheet_stripped_and_any_header_case(task_dir, tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("ID,Image,Label\n3,x,tumour\n000004,x,0\n")
    assert import_csv(task_dir, sheet) == 2
    assert read_labels(task_dir) == {"000003": 1, "000004": 0}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_import_csv_reads_semicolon_and_tab_sheets_and_labels_saved_as_floats(
    task_dir, tmp_path, sep
):
    """'ID;Label' sheets (a spreadsheet's CSV in many locales) failed with "expected columns
    id and label ..., got ['id;label']", and a label saved as 1.0 was refused."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"ID{sep}Label\n000003{sep}1.0\n4{sep}0\n000001{sep}tumour\n2{sep}1,0\n")
    assert import_csv(task_dir, sheet) == 4
    assert read_labels(task_dir) == {"000003": 1, "000004": 0, "000001": 1, "000002": 1}
    sheet.write_text("Id|Label\n000000|1\n")
    with pytest.raises(
        ValueError, match=r"\(comma, semicolon or tab separated\), got \['Id\|Label'\]"
    ):
        import_csv(task_dir, sheet)


def test_stripped_ids_are_not_guessed_when_ids_are_not_all_numbers(tmp_path):
    folder = write_task(tmp_path / "t", known_images()[:2], ids=["7", "scan-7"])
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n07,1\n")
    with pytest.raises(ValueError, match=r"row 2: id '07' is not in the task"):
        import_csv(folder, sheet)


def test_import_csv_accepts_names_and_indices(task_dir, tmp_path):
    sheet = export_csv(task_dir, tmp_path / "sheet.csv")
    labels = ["Tumour", "0", "", " HEALTHY ", "1"]
    fill_sheet(sheet, dict(enumerate(labels)))
    assert import_csv(task_dir, sheet) == 4
    assert read_labels(task_dir) == {"000000": 1, "000001": 0, "000003": 0, "000004": 1}
    assert pending(task_dir) == ["000002"]
    assert {who for _, _, who in label_lines(task_dir)} == {"csv"}


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("000001,,,maybe", r"row 3: label 'maybe' must be a class index 0..1, a class name"),
        ("000001,,,2", r"row 3: label '2'"),
        ("000001,,,-1", r"row 3: label '-1'"),
        ("nope,,,1", r"row 3: id 'nope' is not in the task"),
        # the same id again with another label: the last row won silently (session 44 audit)
        ("000000,,,0", r"row 3: id '000000' is labelled 'healthy' here and 'tumour' in row 2"),
        ("0,,,unsure", r"row 3: id '000000' is labelled 'unsure' here and 'tumour' in row 2"),
    ],
)
def test_import_csv_bad_row_names_the_row_and_records_nothing(task_dir, tmp_path, row, match):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"id,image,suggested,label\n000000,,,tumour\n{row}\n")
    with pytest.raises(ValueError, match=match):
        import_csv(task_dir, sheet)
    assert read_labels(task_dir) == {}


def test_import_csv_needs_id_and_label_columns(task_dir, tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,class\n000000,1\n")
    with pytest.raises(ValueError, match="expected columns id and label"):
        import_csv(task_dir, sheet)
    with pytest.raises(FileNotFoundError, match="`path` must be a CSV file"):
        import_csv(task_dir, tmp_path / "missing.csv")


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


def test_importing_a_sheet_twice_adds_nothing_and_a_change_is_said(task_dir, tmp_path, caplog):
    """The same sheet again appended every row again, and silently undid a correction made
    on the page since; a sheet saved in Excel's code page failed with a bare decode error."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000001,1\n000002,0\n")
    assert import_csv(task_dir, sheet) == 2
    lines = len(label_lines(task_dir))
    assert import_csv(task_dir, sheet) == 0 and len(label_lines(task_dir)) == lines
    record_label(task_dir, "000001", 0)  # corrected on the page
    with caplog.at_level("WARNING"):
        assert import_csv(task_dir, sheet) == 1
    assert "changes the label of 1 item(s) labelled before (000001)" in caplog.text
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id;label;note\n000003;1;r\xe9vis\xe9\n".encode("cp1252"))
    assert import_csv(task_dir, latin) == 1 and read_labels(task_dir)["000003"] == 1


def test_the_sheet_of_another_task_is_refused(task_dir, tmp_path):
    """Every augment round numbers its items from 000000: last round's sheet imported into
    this round's task recorded its labels against other pictures."""
    other = write_task(tmp_path / "round_01", known_images().flip(-1))
    sheet = export_csv(task_dir, tmp_path / "round_00.csv")
    rows = [line.split(",") for line in sheet.read_text().splitlines()]
    for row in rows[1:]:
        row[3] = "tumour"  # every row filled in
    sheet.write_text("\n".join(",".join(row) for row in rows) + "\n")
    with pytest.raises(ValueError, match=r"row 2: its sha256 [0-9a-f]{16} is not that of item"):
        import_csv(other, sheet)
    assert read_labels(other) == {}
    assert import_csv(task_dir, sheet) == N  # its own task takes it
    # without the column, or with cells a spreadsheet turned into numbers: matched by id
    sheet.write_text("\n".join(",".join(row[:4]) for row in rows) + "\n")
    assert import_csv(other, sheet) == N
    sheet.write_text("\n".join(",".join([*row[:4], "1.23E+15"]) for row in rows[1:]))
    sheet.write_text(
        "id,image,suggested,label,sha256\n" + sheet.read_text().replace("tumour", "healthy")
    )
    assert import_csv(other, sheet) == N


def test_unsure_is_an_answer_without_a_class(task_dir, tmp_path):
    """A person who cannot call an image says so: it is no longer pending, has no class, and
    reads back as UNSURE from labels.csv and from a sheet."""
    from cfx.label import UNSURE

    record_label(task_dir, "000000", UNSURE)
    assert read_labels(task_dir) == {"000000": -1}
    assert "000000" not in pending(task_dir)
    assert (task_dir / "labels.csv").read_text().splitlines()[1].startswith("000000,unsure,")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000001,Unsure\n000002,tumour\n")
    assert import_csv(task_dir, sheet) == 2
    assert read_labels(task_dir) == {"000000": -1, "000001": -1, "000002": 1}
    with pytest.raises(ValueError, match=r"class index 0\.\.1 \(healthy, tumour\) or -1"):
        record_label(task_dir, "000003", -2)
    with pytest.raises(ValueError, match="must not hold 'unsure'"):
        write_task(tmp_path / "other", torch.zeros(2, 1, 4, 4), class_names=("ok", "Unsure"))


def test_an_id_given_twice_with_one_label_counts_once(task_dir, tmp_path):
    """It recorded 3 labels from a sheet labelling 2 items."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000000,tumour\n0,1\n000001,healthy\n")
    assert import_csv(task_dir, sheet) == 2
    assert read_labels(task_dir) == {"000000": 1, "000001": 0}
    assert len(label_lines(task_dir)) == 2


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m | {"class_names": ["a"]}, "must name at least 2 classes"),
        (lambda m: m | {"items": []}, "it lists no items"),
        (lambda m: m | {"items": m["items"] + m["items"][:1]}, r"ids \['000000'\] are listed"),
        (
            lambda m: m | {"items": [m["items"][0] | {"suggested": 5}, *m["items"][1:]]},
            r"items \['000000'\] suggest a class outside 0\.\.1",
        ),
    ],
)
def test_a_manifest_write_task_would_refuse_is_not_read(task_dir, edit, match):
    """A hand-made manifest with one class or no items was served as a page (session 44)."""
    path = task_dir / "manifest.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(ValueError, match="is not a cfx labelling manifest: .*" + match):
        read_task(task_dir)


# -- session 46 audit -------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("sheet", "match"),
    [
        (  # a row cut short: its label was read as empty, and the row skipped in silence
            "id,image,suggested,label\n000000,tumour\n",
            r"row 2: expected 4 fields \(id, image, suggested, label\), got 2",
        ),
        (  # a column inserted in the rows only: the suggested column was read as the label
            "id,image,suggested,label\n000002,,images/000002.png,healthy,tumour\n",
            r"row 2: expected 4 fields .* got 5",
        ),
        (  # rows separated unlike the header: recorded 0 labels
            "id,label\n000000;tumour\n",
            r"row 2: expected 2 fields .* separated by commas as the header is",
        ),
    ],
)
def test_import_csv_refuses_rows_unlike_the_header(task_dir, tmp_path, sheet, match):
    path = tmp_path / "sheet.csv"
    path.write_text(sheet)
    with pytest.raises(ValueError, match=match):
        import_csv(task_dir, path)
    assert read_labels(task_dir) == {}


def test_import_csv_reads_utf16_and_names_a_workbook_or_unreadable_bytes(task_dir, tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_bytes("id\tlabel\n000000\ttumour\n".encode("utf-16"))  # Excel "Unicode Text"
    assert import_csv(task_dir, path) == 1 and read_labels(task_dir) == {"000000": 1}
    path.write_bytes(b"PK\x03\x04" + bytes(60))  # a .xlsx saved under a .csv name
    with pytest.raises(ValueError, match=r"`path` .*sheet.csv is a spreadsheet workbook"):
        import_csv(task_dir, path)
    path.write_bytes(b"id,label\n000001,tumo\x81r\n")  # neither UTF-8 nor Windows-1252
    with pytest.raises(ValueError, match=r"sheet.csv is not text cfx can read .*byte 0x81"):
        import_csv(task_dir, path)
    with pytest.raises(FileNotFoundError, match=r"must be a CSV file, got .* \(a folder\)"):
        import_csv(task_dir, tmp_path)


def test_a_missing_folder_a_file_or_a_round_folder_is_named(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"no labelling task in .*nowhere: it does not exist"
    ):
        read_task(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"file: it is a file; expected a task folder"):
        read_task(tmp_path / "file")
    write_task(tmp_path / "round_00" / "task", known_images()[:2])
    with pytest.raises(FileNotFoundError, match=r"this folder holds the tasks .*round_00.task$"):
        read_task(tmp_path / "round_00")


def test_a_short_write_is_completed(task_dir, monkeypatch):
    """os.write may write part of its bytes; the labels are written whole (5 bytes a call)."""
    import os

    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:5])))
    record_label(task_dir, "000003", 1)
    import_csv_rows = [("000000", 0), ("000001", 1)]
    store._record(read_task(task_dir), import_csv_rows, "csv")
    assert read_labels(task_dir) == {"000003": 1, "000000": 0, "000001": 1}
    assert label_lines(task_dir)[-1] == ("000001", "1", "csv")
