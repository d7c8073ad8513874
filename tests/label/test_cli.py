import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from cfx.cli import build_parser, main
from cfx.label import read_labels, record_label
from tests.label.toy import N, fill_sheet


def test_status_counts_per_class_and_pending(task_dir, capsys):
    record_label(task_dir, "000000", 1)
    record_label(task_dir, "000001", 1)
    record_label(task_dir, "000002", 0)
    record_label(task_dir, "000002", 1)  # relabelled: counts once, as tumour
    assert main(["label", "status", str(task_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{task_dir}: 3 of {N} labelled",
        "  healthy  0",
        "  tumour   3",
        "pending: 2",
    ]
    record_label(task_dir, "000003", -1)  # cannot call it: answered, no class
    assert main(["label", "status", str(task_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == ["  tumour   3", "  unsure   1", "pending: 1"]


def test_export_then_import_round_trip(task_dir, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    assert main(["label", "export", str(task_dir), "--csv", str(sheet)]) == 0
    assert capsys.readouterr().out.strip() == str(sheet)
    fill_sheet(sheet, {0: "tumour", 3: "0"})
    assert main(["label", "import", str(task_dir), "--csv", str(sheet), "--labeller", "bo"]) == 0
    assert "recorded 2 label(s)" in capsys.readouterr().out
    assert read_labels(task_dir) == {"000000": 1, "000003": 0}
    assert main(["label", "status", str(task_dir)]) == 0
    assert "pending: 3" in capsys.readouterr().out


def test_export_keeps_an_existing_sheet_unless_forced(task_dir, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000000,tumour\n")  # a sheet being filled in
    assert main(["label", "export", str(task_dir), "--csv", str(sheet)]) == 2
    err = capsys.readouterr().err
    assert "`--csv`" in err and "already exists" in err and "`--force`" in err
    assert "overwrite=True" not in err  # the Python argument, not the command's flag
    assert sheet.read_text() == "id,label\n000000,tumour\n"
    assert main(["label", "export", str(task_dir), "--csv", str(sheet), "--force"]) == 0
    assert sheet.read_text().startswith("id,image,suggested,label")
    labels = task_dir / "labels.csv"
    assert main(["label", "export", str(task_dir), "--csv", str(labels), "--force"]) == 2
    assert "is the task's own labels.csv" in capsys.readouterr().err
    assert main(["label", "import", str(task_dir), "--csv", str(tmp_path / "nope.csv")]) == 2
    assert "`--csv` must be a CSV file" in capsys.readouterr().err


def test_a_port_out_of_range_is_named_as_typed(task_dir, capsys):
    """It said "`port` must be an int", not the --port the user typed."""
    assert main(["label", "serve", str(task_dir), "--port", "99999"]) == 2
    assert "`--port` must be in 0..65535, got 99999" in capsys.readouterr().err


def test_export_to_a_folder_is_refused_without_leaving_a_file(task_dir, tmp_path, capsys):
    """It failed in the rename ("[Errno 21] Is a directory: 'x.tmp' -> 'x'") and left x.tmp."""
    folder = tmp_path / "sheets"
    folder.mkdir()
    assert main(["label", "export", str(task_dir), "--csv", str(folder), "--force"]) == 2
    err = capsys.readouterr().err
    assert f"`--csv` {folder} is a folder; expected a new CSV file, e.g. {folder}/" in err
    assert list(folder.iterdir()) == [] and not (tmp_path / "sheets.tmp").exists()


def test_import_bad_row_is_one_clear_line(task_dir, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,image,suggested,label\n000000,,,sick\n")
    assert main(["label", "import", str(task_dir), "--csv", str(sheet)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cfx label import: error:") and "row 2: label 'sick'" in err
    assert read_labels(task_dir) == {}


def test_status_of_a_folder_without_a_task(tmp_path, capsys):
    assert main(["label", "status", str(tmp_path)]) == 2
    assert "no labelling task in" in capsys.readouterr().err


def test_serve_defaults():
    args = build_parser().parse_args(["label", "serve", "some/dir"])
    assert (args.host, args.port, args.open) == ("127.0.0.1", 8765, False)


def test_serve_prints_its_url_serves_and_stops_on_ctrl_c(task_dir):
    code = "import sys; from cfx.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "label", "serve", str(task_dir), "--port", "0"]
    # a shell's background job inherits SIGINT ignored, and Python keeps it ignored: give the
    # server the default disposition so Ctrl-C reaches it as it would in a terminal
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("labelling page at http://127.0.0.1:"), line
            url = line.split()[3]
            with urllib.request.urlopen(url + "api/task", timeout=10) as response:
                assert json.loads(response.read())["total"] == N
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
            # it said nothing on Ctrl-C without -v; now where the task stands
            assert f"stopped: 0 of {N} items labelled, {N} pending" in proc.stderr.read()  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize("action", ["export", "import"])
def test_csv_is_required(action, task_dir):
    with pytest.raises(SystemExit):
        main(["label", action, str(task_dir)])


def test_import_says_how_many_are_left_and_refuses_an_empty_labeller(task_dir, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,label\n000000,tumour\n000001,\n")
    assert main(["label", "import", str(task_dir), "--csv", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert (
        out.strip() == f"recorded 1 label(s) from {sheet}; 1 of {N} items labelled, {N - 1} pending"
    )
    assert main(["label", "import", str(task_dir), "--csv", str(sheet), "--labeller", " "]) == 2
    assert "`--labeller` must be a one-line non-empty string, got ' '" in capsys.readouterr().err


def test_an_empty_host_is_refused(task_dir, capsys, monkeypatch):
    """--host "" served every address of the machine, printed as 0.0.0.0."""
    import cfx.label

    monkeypatch.setattr(cfx.label, "serve", lambda *a, **k: pytest.fail("served on host ''"))
    assert main(["label", "serve", str(task_dir), "--host", "", "--port", "0"]) == 2
    assert "`--host` must be an address" in capsys.readouterr().err
