"""``cfx recourse``: one applicant, and a batch that resumes without duplicates."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from cfx.cli import main


@pytest.fixture
def applicants_csv(tmp_path, german, split):
    path = tmp_path / "applicants.csv"
    german.X.iloc[split[1][:5]].to_csv(path, index=False)
    return path


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_single_applicant_prints_the_plan(capsys):
    assert main(["recourse", "--model", "logistic", "--applicant-index", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("applicant 4: P(approved) = ")
    assert "1. " in out and "cost" in out


def test_single_applicant_json(capsys):
    assert (
        main(["recourse", "--model", "logistic", "--applicant-index", "4", "--format", "json"]) == 0
    )
    record = json.loads(capsys.readouterr().out)
    # the id as a batch's JSON Lines write it (it was 4 here and "4" there)
    assert record["index"] == "4" and record["status"] == "recourse" and record["plan_1"]


def test_batch_resumes_without_duplicates(tmp_path, applicants_csv):
    out = tmp_path / "suggestions.csv"
    args = ["recourse", "--model", "logistic", "--input", str(applicants_csv), "--out", str(out)]
    assert main([*args, "--limit", "2", "--no-progress"]) == 0  # "interrupted" after 2 rows
    first = _rows(out)
    assert [r["index"] for r in first] == ["0", "1"]
    assert main([*args, "--no-progress"]) == 0  # rerun: only the 3 missing rows
    rows = _rows(out)
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert rows[:2] == first  # finished rows are kept as they were
    assert main([*args, "--no-progress"]) == 0  # nothing left to do
    assert len(_rows(out)) == 5


def test_batch_discards_a_line_cut_short_by_a_crash(tmp_path, applicants_csv):
    out = tmp_path / "suggestions.jsonl"
    args = ["recourse", "--model", "logistic", "--input", str(applicants_csv), "--out", str(out)]
    assert main([*args, "--format", "json", "--limit", "3", "--no-progress"]) == 0
    text = out.read_text()
    out.write_text(text + '{"index": "3", "status": "reco')  # a crash mid-write
    assert main([*args, "--format", "json", "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == ["0", "1", "2", "3", "4"]


def test_batch_errors_are_clear(tmp_path, applicants_csv, capsys):
    code = main(["recourse", "--input", str(applicants_csv)])
    assert code == 2 and "`--out` is required" in capsys.readouterr().err
    code = main(["recourse", "--model", "forest", "--applicant-index", "1"])
    assert code == 2 and "unknown credit model 'forest'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # batch options with one applicant: the plan was printed and --out never written
        (["--applicant-index", "1", "--out", "x.csv"], "--out goes with --input (a batch)"),
        (["--applicant-index", "1", "--limit", "3"], "--limit goes with --input (a batch)"),
        (["--applicant-index", "1", "--no-progress"], "--no-progress goes with --input"),
        (["--applicant-index", "1", "--limit", "3", "--no-progress"], "--no-progress go with"),
        # the Python names (`k`, `target_proba`, `max_changes`) are not what was typed
        (["--applicant-index", "1", "--k", "0"], "`--k` must be an int >= 1, got 0"),
        (["--applicant-index", "1", "--max-changes", "0"], "`--max-changes` must be an int >= 1"),
        (["--applicant-index", "1", "--target-proba", "1.5"], "`--target-proba` must be in [0.5"),
        (["--applicant-index", "1", "--support", "2"], "`--support` must be"),
        (["--applicant-index", "5000"], "`--applicant-index` must be in 0..999, got 5000"),
        (["--applicant-index", "1", "--method", "bogus"], "`--method` must be one of ("),
        (
            ["--applicant-index", "1", "--immutable", "sex"],
            "`--immutable` names features German Credit does not have: ['sex']",
        ),
    ],
)
def test_options_are_named_as_typed(capsys, argv, message, monkeypatch):
    import cfx.recourse

    # every one is refused before the model is fitted (they waited for it)
    monkeypatch.setattr(cfx.recourse.Recourse, "fit", lambda *a: pytest.fail("fitted"))
    assert main(["recourse", "--model", "logistic", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_mistyped_immutable_leaves_the_batch_file_unclaimed(tmp_path, applicants_csv, capsys):
    """The name was checked after --out and its key were written, so the corrected rerun
    was refused as 'a run with other settings (immutable)'."""
    out = tmp_path / "plans.csv"
    argv = ["recourse", "--input", str(applicants_csv), "--out", str(out), "--no-progress"]
    assert main([*argv, "--immutable", "sex"]) == 2
    assert not out.exists() and not out.with_name("plans.csv.key.json").exists()
    assert main([*argv, "--immutable", "personal_status_and_sex", "--limit", "1"]) == 0


def test_a_json_batch_file_is_json_lines_with_nulls(tmp_path, applicants_csv, capsys):
    """--out x.json wrote JSON Lines that json.load cannot read; plans a line has not were
    empty strings."""
    argv = ["recourse", "--input", str(applicants_csv), "--no-progress", "--limit", "2"]
    assert main([*argv, "--out", str(tmp_path / "p.json")]) == 2
    assert "name it .jsonl, or pass --format json" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "P.JSON")]) == 2  # wrote CSV in silence
    assert "name it .jsonl" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "p.ndjson")]) == 0  # JSON Lines by its name
    assert json.loads((tmp_path / "p.ndjson").read_text().splitlines()[0])["index"] == "0"
    assert main([*argv, "--k", "40", "--out", str(tmp_path / "p.jsonl")]) == 0
    lines = [json.loads(t) for t in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(r["plan_40"] is None and r["cost_40"] is None for r in lines)


def test_a_folder_for_the_batch_file_is_named(tmp_path, applicants_csv, capsys):
    argv = ["recourse", "--input", str(applicants_csv), "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "`--out` must be a file (csv or JSON Lines), got the folder" in capsys.readouterr().err


def test_an_input_that_is_not_a_csv_of_applicants_is_named(tmp_path, applicants_csv, capsys):
    """An empty file, a binary file and a header without rows once failed with pandas' or
    the codec's words ("No columns to parse from file", "'utf-8' codec can't decode") or
    blamed a column's dtype."""
    empty, binary, header = tmp_path / "empty.csv", tmp_path / "x.npy", tmp_path / "h.csv"
    empty.write_text("")
    binary.write_bytes(b"\x93NUMPY\x01\x00" + bytes(range(256)))
    header.write_text(applicants_csv.read_text().splitlines()[0] + "\n")
    out = str(tmp_path / "out.csv")
    for path, says in [
        (empty, "must be a CSV file of applicants"),
        (binary, "is not text cfx can read (neither UTF-8 nor Windows-1252"),
        (header, "has a header but no applicant rows"),
    ]:
        code = main(["recourse", "--input", str(path), "--out", out, "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and f"`--input` {path}" in err and says in err, err


def test_a_batch_of_other_applicants_is_refused_not_mixed(
    tmp_path, german, split, applicants_csv, capsys
):
    """Plans were resumed by row number alone: another input file into the same --out had the
    first file's plans filed under the second file's rows, and a finished file returned the
    old plans for new applicants ('5 of 5 applicants done (0 new)')."""
    out = tmp_path / "plans.csv"
    args = ["recourse", "--model", "logistic", "--out", str(out), "--no-progress"]
    assert main([*args, "--input", str(applicants_csv), "--limit", "2"]) == 0
    before = out.read_text()
    others = tmp_path / "others.csv"
    german.X.iloc[split[1][:5]].iloc[::-1].to_csv(others, index=False)  # the rows reversed
    capsys.readouterr()
    assert main([*args, "--input", str(others)]) == 2
    err = capsys.readouterr().err
    assert "holds plans for 2 applicants whose values in `--input` differ" in err
    assert "(ids ['0', '1']; another input, or edited rows?)" in err
    assert out.read_text() == before
    # the same values written otherwise (24 as 24.0) are the same applicants: it resumes
    frame = german.X.iloc[split[1][:5]].copy()
    frame["duration_in_month"] = frame["duration_in_month"].astype(float)
    frame.to_csv(tmp_path / "floats.csv", index=False)
    assert f",{frame['duration_in_month'].iloc[0]:.1f}," in (tmp_path / "floats.csv").read_text()
    assert main([*args, "--input", str(tmp_path / "floats.csv")]) == 0
    rows = _rows(out)
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert len({r["input_digest"] for r in rows}) == 5 and all(
        len(r["input_digest"]) == 16 for r in rows
    )
    assert "5 of 5 applicants done (3 new)" in capsys.readouterr().err
    # a file whose key an older cfx wrote (another layout of lines and key) is not resumed
    key = out.with_name("plans.csv.key.json")
    key.write_text(
        json.dumps({k: v for k, v in json.loads(key.read_text()).items() if k != "layout"})
    )
    assert main([*args, "--input", str(applicants_csv)]) == 2
    assert "was written by an older cfx (plans.csv.key.json)" in capsys.readouterr().err


def test_a_batch_with_other_settings_is_refused_not_mixed(tmp_path, applicants_csv, capsys):
    out = tmp_path / "suggestions.csv"
    args = ["recourse", "--input", str(applicants_csv), "--out", str(out), "--no-progress"]
    assert main([*args, "--model", "logistic", "--k", "1", "--limit", "2"]) == 0
    before = out.read_text()
    capsys.readouterr()
    assert main([*args, "--model", "gbm", "--k", "3"]) == 2
    err = capsys.readouterr().err
    assert "holds the results of a run with other settings" in err
    assert "k: 1 before, 3 now" in err and 'model: "logistic" before, "gbm" now' in err
    assert out.read_text() == before  # nothing appended under the other header
    # the defaults written out match the same settings given explicitly: it resumes
    assert main([*args, "--model", "logistic", "--k", "1", "--support", "0.8"]) == 0
    assert [r["index"] for r in _rows(out)] == ["0", "1", "2", "3", "4"]
    # a file without its key cannot say what made its lines: not resumed
    out.with_name("suggestions.csv.key.json").unlink()
    assert main([*args, "--model", "logistic", "--k", "1"]) == 2
    assert "has no readable key file (suggestions.csv.key.json)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("credit_amount", "4,870", "non-numeric values ['4,870'] (first rows ['2'])"),
        ("purpose", "Car (New)", "unknown categories ['Car (New)'] (first rows ['2'])"),
    ],
)
def test_a_bad_row_is_named_before_any_applicant_is_explained(
    tmp_path, german, split, capsys, column, value, named
):
    frame = german.X.iloc[split[1][:4]].astype({"credit_amount": str, "purpose": str})
    frame.iloc[2, frame.columns.get_loc(column)] = value  # e.g. a thousands separator
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "s.csv"
    args = ["recourse", "--input", str(tmp_path / "in.csv"), "--out", str(out), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"`--input` column `{column}`" in err and named in err
    assert not out.exists()  # rows 0 and 1 were fine, but nothing was explained


def test_out_of_range_values_are_said_once_per_batch(tmp_path, german, split, caplog):
    frame = german.X.iloc[split[1][:3]].copy()
    frame["age_in_years"] = [200, 210, 30]  # typos, as a user's file may hold
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ["recourse", "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "s.csv")]
    with caplog.at_level("WARNING"):
        assert main([*args, "--model", "logistic", "--no-progress"]) == 0
    notices = [
        r.getMessage() for r in caplog.records if "outside their feature's range" in r.getMessage()
    ]
    assert len(notices) == 1 and notices[0].startswith("2 applicant value(s)")
    assert "row '0': age_in_years = 200 (19..75); row '1': age_in_years = 210" in notices[0]


def test_an_id_column_is_read_as_written(tmp_path, german, split, capsys):
    """Ids were read as numbers: '007' became 7 (and collided with '7'); a blank id, 'nan'."""
    frame = german.X.iloc[split[1][:3]].copy()
    frame.insert(0, "ref", ["007", "7", "x1"])
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "s.csv"
    args = ["recourse", "--model", "logistic", "--input", str(tmp_path / "in.csv")]
    args += ["--id-column", "ref", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert [r["index"] for r in _rows(out)] == ["007", "7", "x1"]
    frame["ref"] = ["a", None, "c"]
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert main([*args[:-3], "--out", str(tmp_path / "t.csv")]) == 2
    assert "`--id-column` 'ref' is empty in 1 row(s) (first rows [1])" in capsys.readouterr().err


def test_a_missing_feature_is_named_without_the_id_column(tmp_path, german, split, capsys):
    """The id column was listed beside a missing feature as a column "the schema does not
    name", the hint for a misspelling; the misspelt column still is."""
    frame = german.X.iloc[split[1][:2]].copy()
    frame.insert(0, "ref", ["a", "b"])
    frame = frame.rename(columns={"purpose": "purpse"})
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ["recourse", "--model", "logistic", "--input", str(tmp_path / "in.csv")]
    args += ["--id-column", "ref", "--out", str(tmp_path / "s.csv"), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is missing columns ['purpose'] and has columns the schema does not name: " in err
    assert "['purpse'];" in err


def test_a_method_the_model_cannot_take_is_named_as_the_flag(capsys):
    """The library's `method='milp'` reached the terminal as typed in Python."""
    assert main(["recourse", "--model", "gbm", "--applicant-index", "1", "--method", "milp"]) == 2
    err = capsys.readouterr().err
    assert "error: `--method milp` needs a model whose log-odds are additive" in err
    assert "Use `--method search` (any model)" in err and "method='" not in err


def test_repeated_immutable_flags_all_hold(capsys):
    """`--immutable a --immutable b` kept only b, and plan 1 changed the checking account the
    first flag froze (session 45 audit)."""
    argv = ["recourse", "--applicant-index", "1", "--format", "json", "--k", "3"]
    frozen = ["status_of_existing_checking_account", "duration_in_month"]
    assert main([*argv, "--immutable", frozen[0], "--immutable", frozen[1]]) == 0
    twice = json.loads(capsys.readouterr().out)
    assert main([*argv, "--immutable", ",".join(frozen)]) == 0
    assert json.loads(capsys.readouterr().out) | {"seconds": 0} == twice | {"seconds": 0}
    changed = " ".join(twice[f"changes_{i}"] or "" for i in (1, 2, 3))
    assert twice["plan_1"] and not any(f in changed for f in frozen)


def test_batch_file_mistakes_are_named_before_the_model_is_fitted(
    tmp_path, applicants_csv, capsys, monkeypatch
):
    def no_fit(*args, **kwargs):
        raise AssertionError("the model was fitted before --out was checked")

    monkeypatch.setattr("cfx.cli.recourse._fitted", no_fit)
    argv = ["recourse", "--input", str(applicants_csv)]
    assert main([*argv, "--out", str(applicants_csv)]) == 2  # said "delete it to start over"
    assert "`--out` must not be the `--input` file" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "results") + "/"]) == 2  # wrote a file 'results'
    assert "got the folder name" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_batch_input_columns_and_separators_are_read_or_named(tmp_path, german, split, caplog):
    import pandas as pd

    rows = german.X.iloc[split[1][:3]].copy()
    rows.insert(0, "applicant_id", ["a", "b", "c"])
    rows.to_csv(tmp_path / "semi.csv", index=False, sep=";")  # a comma-decimal spreadsheet
    out = tmp_path / "plans.csv"
    argv = ["recourse", "--model", "logistic", "--input", str(tmp_path / "semi.csv"), "--out"]
    assert main([*argv, str(out), "--no-progress", "--id-column", "applicant_id"]) == 0
    assert [r["index"] for r in _rows(out)] == ["a", "b", "c"]
    # without --id-column the id column was dropped in silence and lines keyed by row number
    with caplog.at_level("WARNING"):
        assert main([*argv, str(tmp_path / "o2.csv"), "--no-progress", "--limit", "1"]) == 0
    assert "columns not in the schema, not read: applicant_id (an id column? pass " in caplog.text
    assert "does not name" not in caplog.text  # said once, by the command line, with the hint
    assert main([*argv, str(tmp_path / "o3.csv"), "--id-column", "ApplicantID"]) == 2
    # written by hand with a space after each separator: every column was "missing" (" b")
    spaced = (tmp_path / "semi.csv").read_text().replace(";", "; ")
    (tmp_path / "spaced.csv").write_text(spaced)
    argv[4] = str(tmp_path / "spaced.csv")
    assert (
        main([*argv, str(tmp_path / "o4.csv"), "--no-progress", "--id-column", "applicant_id"]) == 0
    )
    timeless = [[(k, v) for k, v in r.items() if k != "seconds"] for r in _rows(out)]
    assert [
        [(k, v) for k, v in r.items() if k != "seconds"] for r in _rows(tmp_path / "o4.csv")
    ] == timeless
    assert pd.read_csv(tmp_path / "semi.csv", sep=";").shape == (3, 21)


def test_batch_input_saved_as_utf16_or_windows_1252_is_read(
    tmp_path, german, split, capsys, monkeypatch
):
    """Excel's "Unicode Text" (UTF-16, tabs) and a western-locale CSV (Windows-1252) were
    refused by pandas' UTF-8 ("must be a CSV file ...: 'utf-8' codec can't decode") while
    --labels and `cfx label import` read them (session-53 CLI audit)."""
    rows = german.X.iloc[split[1][:2]].copy()
    rows.insert(0, "applicant", ["Müller", "Zoë"])  # not ASCII: the decoding matters
    plain = rows.to_csv(index=False)
    (tmp_path / "utf8.csv").write_text(plain, encoding="utf-8")
    (tmp_path / "utf16.txt").write_text(rows.to_csv(index=False, sep="\t"), encoding="utf-16")
    (tmp_path / "cp1252.csv").write_bytes(plain.encode("cp1252"))
    argv = ["recourse", "--model", "logistic", "--no-progress", "--id-column", "applicant"]
    outs = {}
    for name in ("utf8.csv", "utf16.txt", "cp1252.csv"):
        outs[name] = tmp_path / f"{name}.plans.csv"
        assert main([*argv, "--input", str(tmp_path / name), "--out", str(outs[name])]) == 0
    want = [{k: v for k, v in r.items() if k != "seconds"} for r in _rows(outs["utf8.csv"])]
    assert [r["index"] for r in want] == ["Müller", "Zoë"]
    for name in ("utf16.txt", "cp1252.csv"):
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in _rows(outs[name])] == want
    # a workbook is named as one, before the model is fitted
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04" + bytes(40))
    monkeypatch.setattr("cfx.cli.recourse._fitted", lambda *a: 1 / 0)
    capsys.readouterr()
    assert main([*argv, "--input", str(tmp_path / "book.xlsx"), "--out", str(tmp_path / "o")]) == 2
    assert "is a spreadsheet workbook (.xlsx or .ods), not a CSV file" in capsys.readouterr().err


def test_a_refused_rerun_names_the_flags_not_the_settings_names(tmp_path, applicants_csv, capsys):
    out = tmp_path / "plans.csv"
    argv = ["recourse", "--model", "logistic", "--input", str(applicants_csv), "--out", str(out)]
    assert main([*argv, "--no-progress", "--limit", "1"]) == 0
    capsys.readouterr()
    assert main([*argv, "--k", "2", "--max-changes", "2", "--immutable", "purpose"]) == 2
    err = capsys.readouterr().err
    for said in ("--k: 3 before, 2 now", "--max-changes: null before, 2 now", "--immutable: "):
        assert said in err
    assert "max_changes" not in err and " k:" not in err
    # a long value is named without it, by its flag too (the rewrite missed those)
    long = "--immutable=personal_status_and_sex,number_of_existing_credits_at_this_bank"
    assert main([*argv, long]) == 2
    assert "other settings (--immutable); pass another `--out`" in capsys.readouterr().err


def test_a_closed_pipe_stops_quietly(capsys, monkeypatch):
    """`cfx recourse ... --format json | head` ended with 'error: [Errno 32] Broken pipe'."""

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    class Gone(io.StringIO):  # stdout whose reader has gone
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("cfx.cli.recourse.run_recourse", closed)
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", Gone())
        assert main(["recourse", "--applicant-index", "1"]) == 141
    assert capsys.readouterr().err == ""
    # another pipe (a worker's) broken while stdout is fine: an error like any other
    assert main(["recourse", "--applicant-index", "1"]) == 2
    assert "cfx recourse: error: [Errno 32] Broken pipe" in capsys.readouterr().err


def test_an_immutable_flag_for_a_feature_immutable_already_is_said(capsys, caplog):
    with caplog.at_level("WARNING"):
        argv = ["recourse", "--applicant-index", "1", "--immutable", "credit_history,purpose"]
        assert main(argv) == 0
    assert "`--immutable` credit_history: immutable already (German Credit's schema)" in (
        caplog.text
    )
    assert "purpose" not in caplog.text  # a real constraint: nothing to say


def test_a_reader_gone_before_the_output_ends_the_command_quietly():
    """`cfx ... | head` ended in 'error: [Errno 32] Broken pipe', exit 2, about half the time:
    after the failed write Python had dropped its buffer, so flushing again succeeded and the
    pipe was taken for open (session-53 audit). A real pipe, its reader closed first."""
    import os
    import subprocess

    read, write = os.pipe()
    os.close(read)  # the reader has gone before cfx writes a byte
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "cfx", "recourse", "--applicant-index", "1", "--format", "json"]
    done = subprocess.run(argv, stdout=write, stderr=subprocess.PIPE, env=env, timeout=300)
    os.close(write)
    assert done.returncode == 141, done.stderr.decode()
    assert b"Broken pipe" not in done.stderr


def test_a_folder_given_as_the_input_is_named_as_a_folder(tmp_path, capsys):
    argv = ["recourse", "--input", str(tmp_path), "--out", str(tmp_path / "plans.csv")]
    assert main(argv) == 2
    assert f"`--input` must be a CSV file of applicants, got the folder {tmp_path}" in (
        capsys.readouterr().err
    )
