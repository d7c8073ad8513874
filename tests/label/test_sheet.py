import hashlib
from pathlib import Path

import pytest

from cfx.label import (
    UNSURE,
    export_csv,
    import_csv,
    pending,
    read_labels,
    record_label,
    write_task,
)
from tests.label.toy import (
    N,
    fill_sheet,
    known_images,
    label_lines,
)


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
    record_label(task_dir, "000002", UNSURE)
    lines = export_csv(task_dir, tmp_path / "sheet.csv").read_text().splitlines()
    assert lines[1] == f"000000,task/images/000000.png,healthy,tumour,{digest(task_dir, 0)}"
    assert lines[2] == f"000001,task/images/000001.png,tumour,,{digest(task_dir, 1)}"
    assert lines[3].endswith(f",unsure,{digest(task_dir, 2)}")
    # imported back unchanged, the sheet records nothing new
    assert import_csv(task_dir, tmp_path / "sheet.csv") == 0
    assert read_labels(task_dir) == {"000000": 1, "000002": UNSURE}


def test_export_csv_never_overwrites_labels_or_a_sheet_being_filled(task_dir, tmp_path):
    record_label(task_dir, "000000", 1)
    own_files = ("labels.csv", "Labels.CSV", "manifest.json", "labels.csv.tmp", "images/new.csv")
    for own in (*own_files, "manifest.json.41-0a1b2c3d.tmp"):  # (a writer's temporary)
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


def test_an_id_given_twice_with_one_label_counts_once(task_dir, tmp_path):
    """It recorded 3 labels from a sheet labelling 2 items."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000000,tumour\n0,1\n000001,healthy\n")
    assert import_csv(task_dir, sheet) == 2
    assert read_labels(task_dir) == {"000000": 1, "000001": 0}
    assert len(label_lines(task_dir)) == 2


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
