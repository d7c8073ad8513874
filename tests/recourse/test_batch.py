"""``explain_to_file``: a resumable batch for your own model, refused when what made its lines
changed."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from cfx.recourse import BatchReport, Constraints, Recourse, explain_to_file
from cfx.recourse.batch import columns, input_digests, record

from .conftest import HandLogistic, strict_one_hot


def _applicants():
    """Four applicants by id; each needs 1.2 log-odds more than it has (logit -1.2), which
    x2 + 1.2 buys cheapest (cost 1.8), as in test_milp's closed form."""
    return pd.DataFrame(
        {"x1": [2, 2, 0, 4], "x2": [1.0, 1.0, 2.0, 0.0], "c": ["a", "a", "a", "a"]},
        index=pd.Index(["ann", "bob", "cy", "dee"], name="applicant_id"),
    )


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def fitted(hand):
    model, schema, X = hand
    return Recourse(model, schema, k=2, support=0.0).fit(X)


def test_lines_are_the_plans_of_explain_and_a_rerun_resumes(tmp_path, fitted):
    out = tmp_path / "plans.csv"
    first = explain_to_file(fitted, _applicants(), out, limit=2, progress=False)
    assert first == BatchReport(out, total=4, done_before=0, new=2) and first.remaining == 2
    rest = explain_to_file(fitted, _applicants(), out, progress=False)
    assert (rest.done_before, rest.new, rest.remaining) == (2, 2, 0)
    rows = _rows(out)
    assert list(rows[0]) == columns(2)
    assert [r["index"] for r in rows] == ["ann", "bob", "cy", "dee"]
    for row in rows:  # the closed form: x2 up by 1.2 at cost 1.8, then x1 whole steps
        assert row["status"] == "recourse" and row["usable_1"] == "True"
        assert float(row["cost_1"]) == pytest.approx(1.8, abs=1e-6)
    assert rows[0]["changes_1"] == "x2: 1 -> 2.2" and rows[2]["changes_1"] == "x2: 2 -> 3.2"
    (res,) = fitted.explain(_applicants().iloc[[3]])
    assert rows[3]["plan_1"] == res.counterfactuals[0].plan
    assert rows[3]["plan_2"] == res.counterfactuals[1].plan
    again = explain_to_file(fitted, _applicants(), out, progress=False)
    assert again.new == 0 and len(_rows(out)) == 4


class Interrupted(HandLogistic):
    """The hand model, interrupted (Ctrl-C) on its ``after``-th call to ``predict_proba``."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.calls, self.after = 0, after

    def predict_proba(self, X):
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return super().predict_proba(X)


def test_an_interrupted_batch_loses_no_finished_line(tmp_path, hand, caplog):
    _, schema, X = hand
    model = Interrupted(after=10**9)
    rec = Recourse(model, schema, k=1, support=0.0).fit(X)
    out = tmp_path / "plans.jsonl"
    explain_to_file(rec, _applicants(), out, limit=1, progress=False)
    model.after = model.calls + 1  # the next applicant's first call
    with pytest.raises(KeyboardInterrupt):
        explain_to_file(rec, _applicants(), out, progress=False)
    lines = [json.loads(t) for t in out.read_text().splitlines()]
    assert [r["index"] for r in lines] == ["ann"]
    assert "1 of 4 applicants done (0 by this run), each line saved; rerun" in caplog.text
    report = explain_to_file(rec, _applicants(), out, progress=False)  # the same model: resumes
    assert (report.done_before, report.new) == (1, 3)
    lines = [json.loads(t) for t in out.read_text().splitlines()]
    assert [r["index"] for r in lines] == ["ann", "bob", "cy", "dee"]
    assert all(r["usable_1"] is True for r in lines)


class Steeper(HandLogistic):
    def decision_function(self, X):
        return super().decision_function(X) + 0.5 * X["x2"].to_numpy(float)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"model": Steeper()},
            "other settings (the model (its approval probabilities on the training rows))",
        ),
        ({"k": 1}, "k: 2 before, 1 now"),
        ({"target_proba": 0.6}, "target_proba: 0.5 before, 0.6 now"),
        ({"constraints": Constraints(immutable=("x2",))}, "constraints"),
        ({"key": {"model_version": "2"}}, 'model_version: "1" before, "2" now'),
    ],
)
def test_a_rerun_with_anything_else_that_made_the_lines_is_refused(tmp_path, hand, change, named):
    model, schema, X = hand
    out = tmp_path / "plans.csv"
    rec = Recourse(model, schema, k=2, support=0.0).fit(X)
    explain_to_file(rec, _applicants(), out, key={"model_version": "1"}, limit=1, progress=False)
    before = out.read_text()
    settings = {"model": model, "k": 2, "target_proba": None}
    settings.update({k: v for k, v in change.items() if k in settings})
    other = Recourse(settings.pop("model"), schema, support=0.0, **settings).fit(X)
    with pytest.raises(ValueError, match="holds the results of a run with other settings") as err:
        explain_to_file(
            other,
            _applicants(),
            out,
            constraints=change.get("constraints"),
            key=change.get("key", {"model_version": "1"}),
            progress=False,
        )
    assert named in str(err.value)
    assert out.read_text() == before  # nothing appended


def test_the_same_settings_resume_whatever_their_order_or_the_fit(tmp_path, hand):
    model, schema, X = hand
    out = tmp_path / "plans.csv"
    rules = Constraints(immutable=("x1", "c"))
    rec = Recourse(model, schema, k=2, support=0.0).fit(X)
    explain_to_file(rec, _applicants(), out, constraints=rules, limit=1, progress=False)
    refit = Recourse(HandLogistic(), schema, k=2, support=0.0, method="milp").fit(X.copy())
    assert refit.train_sha256_ == rec.train_sha256_  # the same rows
    report = explain_to_file(
        refit,
        _applicants(),
        out,
        constraints=Constraints(immutable=("c", "x1")),
        progress=False,
    )
    assert report.new == 3
    rows = _rows(out)
    assert all(r["changes_1"].startswith("x2: ") and r["plan_2"] == "" for r in rows)


def test_edited_values_under_a_finished_id_are_refused(tmp_path, fitted):
    out = tmp_path / "plans.csv"
    explain_to_file(fitted, _applicants(), out, limit=2, progress=False)
    edited = _applicants()
    edited.loc["bob", "x2"] = 2.0
    with pytest.raises(ValueError, match=r"holds plans for 1 applicant whose values in "):
        explain_to_file(fitted, edited, out, progress=False)
    as_floats = _applicants().astype({"x1": float})  # 2 and 2.0 are the same applicant
    assert explain_to_file(fitted, as_floats, out, progress=False).new == 2


def test_bad_input_is_named(tmp_path, fitted, hand):
    model, schema, _ = hand
    out = tmp_path / "plans.csv"
    twice = _applicants().rename(index={"bob": "ann"})
    with pytest.raises(ValueError, match=r"must be unique, got \['ann'\] more than once"):
        explain_to_file(fitted, twice, out)
    with pytest.raises(TypeError, match="`applicants` must be a pandas DataFrame, got Series"):
        explain_to_file(fitted, _applicants().iloc[0], out)
    with pytest.raises(ValueError, match="not fitted yet"):
        explain_to_file(Recourse(model, schema), _applicants(), out)
    with pytest.raises(ValueError, match="`limit` must be None or an int >= 0, got -1"):
        explain_to_file(fitted, _applicants(), out, limit=-1)
    with pytest.raises(TypeError, match="`limit` must be None or an int >= 0, got '5'"):
        explain_to_file(fitted, _applicants(), out, limit="5")  # a ValueError before
    with pytest.raises(IsADirectoryError, match="must be a file"):
        explain_to_file(fitted, _applicants(), tmp_path)
    with pytest.raises(ValueError, match=r"name it \.jsonl, or pass format='json'"):
        explain_to_file(fitted, _applicants(), tmp_path / "p.json")
    with pytest.raises(ValueError, match=r"not as a \.xlsx file; name it \.csv"):
        explain_to_file(fitted, _applicants(), tmp_path / "plans.xlsx")  # CSV text, before
    with pytest.raises(TypeError, match="`key` must be JSON-serialisable"):
        explain_to_file(fitted, _applicants(), out, key={"model": object()})
    with pytest.raises(TypeError, match=r"`applicants` column `x2` .* \(first rows \['cy'\]\)"):
        explain_to_file(fitted, _applicants().astype({"x2": str}).replace("2.0", "2,0"), out)
    assert not out.exists()  # nothing claimed by a refused call


def test_a_file_without_its_key_is_not_resumed(tmp_path, fitted):
    out = tmp_path / "plans.csv"
    explain_to_file(fitted, _applicants(), out, limit=1, progress=False)
    out.with_name("plans.csv.key.json").unlink()
    with pytest.raises(ValueError, match=r"has no readable key file \(plans.csv.key.json\)"):
        explain_to_file(fitted, _applicants(), out, progress=False)


def test_an_unusable_plan_is_marked_in_its_line(fitted):
    (res,) = fitted.explain(_applicants().iloc[[0]])
    cf = res.counterfactuals[0]
    broken = dataclasses.replace(cf, violations=("changes 3 features (max_changes 2)",))
    missed = dataclasses.replace(cf, valid=False)
    line = record(dataclasses.replace(res, counterfactuals=(cf, broken, missed)), 3, "d")
    assert [line[f"usable_{i}"] for i in (1, 2, 3)] == [True, False, False]
    blank = record(dataclasses.replace(res, counterfactuals=()), 1, "d", blank=None)
    assert all(blank[f"{name}_1"] is None for name in ("plan", "usable", "cost"))


def test_a_csv_line_cut_short_by_a_crash_is_redone_and_the_others_kept(tmp_path, fitted):
    """CSV lines end in \\r\\n; the cut was counted in characters read with \\n endings,
    one short per line, and ate into the finished lines (d's line merged into c's)."""
    out = tmp_path / "plans.csv"
    explain_to_file(fitted, _applicants(), out, limit=3, progress=False)
    whole = out.read_bytes()
    assert whole.count(b"\r\n") == 4  # the header and three applicants
    out.write_bytes(whole + b"dee,0123abcd,reco")  # a crash mid-line
    report = explain_to_file(fitted, _applicants(), out, progress=False)
    assert (report.done_before, report.new) == (3, 1)
    assert out.read_bytes().startswith(whole)
    assert [r["index"] for r in _rows(out)] == ["ann", "bob", "cy", "dee"]


def test_ids_that_are_not_strings_resume_as_they_were_written(tmp_path, fitted):
    """A timestamp index was matched as '2020-01-01' but written as '2020-01-01 00:00:00':
    every rerun explained every applicant again."""
    for name, index in [
        ("dates.csv", pd.date_range("2020-01-01", periods=4)),
        ("numbers.jsonl", pd.Index([7, 8, 9, 10])),
        ("pairs.csv", pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1), ("b", 2)])),
    ]:
        applicants = _applicants().set_axis(index)
        out = tmp_path / name
        explain_to_file(fitted, applicants, out, limit=2, progress=False)
        report = explain_to_file(fitted, applicants, out, progress=False)
        assert (report.done_before, report.new) == (2, 2), name
        assert explain_to_file(fitted, applicants, out, progress=False).new == 0


def test_numpy_settings_and_read_only_mappings_are_keyed(tmp_path, hand):
    """k=np.int64(2) failed as "`key` must be JSON-serialisable", and a read-only
    transitions mapping could not be copied, though explain takes both."""
    from types import MappingProxyType

    model, schema, X = hand
    rec = Recourse(model, schema, k=np.int64(2), max_changes=np.int64(2), support=0.0).fit(X)
    rules = Constraints(transitions={"c": MappingProxyType({"a": ("c", "b")})})
    out = tmp_path / "plans.csv"
    assert explain_to_file(rec, _applicants(), out, constraints=rules, progress=False).new == 4
    key = json.loads((tmp_path / "plans.csv.key.json").read_text())
    assert key["k"] == 2 and key["constraints"]["transitions"] == {"c": {"a": ["b", "c"]}}
    again = Constraints(transitions={"c": {"a": ("b", "c")}})  # the same whitelist
    assert explain_to_file(rec, _applicants(), out, constraints=again, progress=False).new == 0


class Noisy(HandLogistic):
    """The hand model with its probabilities moved by ``shift`` (float noise, or a change)."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def predict_proba(self, X):
        p = np.clip(super().predict_proba(X)[:, 1] + self.shift, 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)


def test_float_noise_is_the_same_model_and_a_real_change_is_not(tmp_path, hand):
    """Another machine or thread count moves a float32 network's outputs by ~1e-7: the key
    digested rounded probabilities, which such noise flips at a rounding edge."""
    from cfx.errors import ForeignRunError

    _, schema, X = hand
    out = tmp_path / "plans.csv"
    rec = Recourse(Noisy(0.0), schema, k=1, support=0.0).fit(X)
    explain_to_file(rec, _applicants(), out, limit=1, progress=False)
    key = (tmp_path / "plans.csv.key.json").read_text()
    # within PROBE_TOLERANCE (1e-4), though it moves most probabilities' 4th decimal
    noisy = Recourse(Noisy(5e-5), schema, k=1, support=0.0).fit(X)
    assert explain_to_file(noisy, _applicants(), out, limit=1, progress=False).new == 1
    assert (tmp_path / "plans.csv.key.json").read_text() == key  # written once, at the start
    changed = Recourse(Noisy(1e-3), schema, k=1, support=0.0).fit(X)
    with pytest.raises(ForeignRunError, match=r"\(the model \(its approval probabilities"):
        explain_to_file(changed, _applicants(), out, progress=False)


def test_a_damaged_line_names_the_file(tmp_path, fitted):
    out = tmp_path / "plans.jsonl"
    explain_to_file(fitted, _applicants(), out, limit=1, progress=False)
    out.write_text(out.read_text() + "{not json}\n")
    with pytest.raises(ValueError, match=r"plans.jsonl is not a batch file cfx can resume"):
        explain_to_file(fitted, _applicants(), out, progress=False)


def test_a_damaged_or_repeated_line_in_the_middle_is_named_not_resumed(tmp_path, fitted):
    """A half-quoted line was read as an applicant (id 'garbage') and swallowed the next, which
    was redone; two runs writing one file at once left each applicant twice, resumed in
    silence (session 45 audit)."""
    from cfx.errors import ForeignRunError

    out = tmp_path / "plans.csv"
    explain_to_file(fitted, _applicants(), out, limit=3, progress=False)
    lines = out.read_text().splitlines(keepends=True)  # header, ann, bob, cy
    out.write_text("".join([lines[0], lines[1], 'garbage,"unterminated\r\n', lines[3]]))
    with pytest.raises(ForeignRunError, match=r"line 3 is damaged or edited"):
        explain_to_file(fitted, _applicants(), out, progress=False)
    out.write_text("".join([*lines, lines[1]]))  # ann again, as line 5
    with pytest.raises(ForeignRunError, match=r"holds applicant 'ann' twice \(lines 2 and 5\)"):
        explain_to_file(fitted, _applicants(), out, progress=False)
    out.write_text("".join(lines))  # mended: resumes
    assert explain_to_file(fitted, _applicants(), out, progress=False).new == 1
    jsonl = tmp_path / "plans.jsonl"  # JSON Lines: nulls of missing plans are no damage
    explain_to_file(fitted, _applicants(), jsonl, limit=2, progress=False)
    jsonl.write_text(jsonl.read_text().replace('"status": "recourse"', '"status": "?"', 1))
    with pytest.raises(ForeignRunError, match=r"line 1 is damaged or edited"):
        explain_to_file(fitted, _applicants(), jsonl, progress=False)


def test_a_second_run_on_the_same_file_at_once_is_refused(tmp_path, fitted):
    import fcntl

    out = tmp_path / "plans.csv"
    explain_to_file(fitted, _applicants(), out, limit=1, progress=False)
    with out.open("a") as other:  # another run holding the file
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError, match=r"`out` .*plans.csv is being written by"):
            explain_to_file(fitted, _applicants(), out, progress=False)
    assert explain_to_file(fitted, _applicants(), out, progress=False).new == 3  # released
    assert len(_rows(out)) == 4


def test_a_full_disk_keeps_the_lines_done_and_says_so(tmp_path, fitted, monkeypatch):
    import errno
    import os

    out = tmp_path / "plans.csv"
    real, calls = os.fsync, []

    def full(fd):
        calls.append(fd)
        if len(calls) == 6:  # the key's two (file, folder), the header's, ann's, bob's, cy's
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(
        OSError,
        match=r"`out` .*plans.csv: cannot write \(No space left on "
        r"device\); the lines of the 2 applicants done before it are kept",
    ):
        explain_to_file(fitted, _applicants(), out, progress=False)
    monkeypatch.setattr(os, "fsync", real)
    report = explain_to_file(fitted, _applicants(), out, progress=False)
    assert [r["index"] for r in _rows(out)] == ["ann", "bob", "cy", "dee"]
    assert report.done_before == 3  # the third line was written before its fsync failed


def test_a_line_is_written_whole_through_partial_writes_or_named_when_it_fails(
    tmp_path, monkeypatch
):
    """A full disk fails the write itself: with a buffered file the line stayed in the buffer
    and closing the file raised a second, bare [Errno 28] over the message (session 45
    review). Lines go out unbuffered, in as many writes as the file takes."""
    import errno
    import os

    from cfx.recourse.batch import _append

    class Raw:  # a raw file: takes at most 5 bytes a write, then fails at 12
        def __init__(self):
            self.data = b""

        def write(self, view):
            if len(self.data) >= 12:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.data += bytes(view[:5])
            return min(5, len(view))

        def fileno(self):
            return 0

    monkeypatch.setattr(os, "fsync", lambda fd: None)
    raw, path = Raw(), tmp_path / "p.csv"
    _append(raw, "ann,1,ok\r\n", path, "--out", 0)  # type: ignore[arg-type]
    assert raw.data == b"ann,1,ok\r\n"
    said = r"`--out` .*p.csv: cannot write \(No space .*the lines of the 1 applicant done"
    with pytest.raises(OSError, match=said):
        _append(raw, "bob,2,ok\r\n", path, "--out", 1)  # type: ignore[arg-type]


def test_a_blank_id_is_refused_before_any_line(tmp_path, fitted):
    """A blank id was written, then its line refused as damaged on every rerun (session 45
    review)."""
    blank = _applicants().rename(index={"bob": " "})
    out = tmp_path / "plans.csv"
    said = r"ids must not be blank, got 1 blank id .*\(rows \[1\], counted from 0\)"
    with pytest.raises(ValueError, match=said):
        explain_to_file(fitted, blank, out, progress=False)
    assert not out.exists()


def test_an_out_named_as_a_folder_is_refused(tmp_path, fitted):
    with pytest.raises(IsADirectoryError, match=r"got the folder name '.*results/'"):
        explain_to_file(fitted, _applicants(), str(tmp_path / "results") + "/", progress=False)
    assert not (tmp_path / "results").exists()


def test_per_applicant_constraints_are_each_applicants_and_keyed_per_line(tmp_path, fitted):
    """Freezing x2 for bob alone leaves him x1 (0.5 log-odds a step): three steps, cost 3,
    where everyone else keeps the closed form's x2 + 1.2 at cost 1.8."""
    frozen = {"bob"}

    def rules(row):
        return Constraints(immutable=("x2",)) if row.name in frozen else None

    out = tmp_path / "plans.csv"
    assert explain_to_file(fitted, _applicants(), out, constraints=rules, progress=False).new == 4
    rows = {r["index"]: r for r in _rows(out)}
    assert rows["bob"]["changes_1"] == "x1: 2 -> 5"
    assert float(rows["bob"]["cost_1"]) == pytest.approx(3.0, abs=1e-6)
    for name in ("ann", "cy", "dee"):
        assert rows[name]["changes_1"].startswith("x2: ")
        assert float(rows[name]["cost_1"]) == pytest.approx(1.8, abs=1e-6)
    key = json.loads((tmp_path / "plans.csv.key.json").read_text())
    assert key["constraints"] == "per applicant"
    # the same function resumes; one that gives a finished applicant other rules is refused
    assert explain_to_file(fitted, _applicants(), out, constraints=rules, progress=False).new == 0
    frozen.add("cy")
    with pytest.raises(ValueError, match=r"1 applicant whose values .* \(or the constraints"):
        explain_to_file(fitted, _applicants(), out, constraints=rules, progress=False)
    frozen.discard("cy")
    # a bound computed from the row reads 3 or 3.0 as the frame's dtypes go: the same rules

    def bound(row):
        return Constraints(bounds={"x1": (None, row["x1"] + 1)})

    floats = tmp_path / "bounds.csv"
    assert explain_to_file(fitted, _applicants(), floats, constraints=bound, progress=False).new
    as_floats = _applicants().astype({"x1": float})
    assert explain_to_file(fitted, as_floats, floats, constraints=bound, progress=False).new == 0
    # a shared Constraints is another key: not resumed in a per-applicant file
    with pytest.raises(ValueError, match="other settings"):
        explain_to_file(fitted, _applicants(), out, constraints=Constraints(), progress=False)


def test_per_applicant_constraints_are_checked_before_any_applicant(tmp_path, fitted):
    out = tmp_path / "plans.csv"

    def typo(row):
        return Constraints(immutable=("x9",)) if row.name == "cy" else None

    with pytest.raises(KeyError, match="x9") as err:
        explain_to_file(fitted, _applicants(), out, constraints=typo, progress=False)
    assert "applicant 'cy'" in "".join(getattr(err.value, "__notes__", []))

    def wrong(row):
        return {"immutable": ("x2",)}

    with pytest.raises(TypeError, match="got dict for applicant 'ann'"):
        explain_to_file(fitted, _applicants(), out, constraints=wrong, progress=False)

    def broken(row):
        return Constraints(bounds={"x2": (None, row["missing"])})

    with pytest.raises(KeyError) as err:
        explain_to_file(fitted, _applicants(), out, constraints=broken, progress=False)
    assert "called for applicant 'ann'" in "".join(err.value.__notes__)
    with pytest.raises(TypeError, match="a function of an applicant's row"):
        explain_to_file(fitted, _applicants(), out, constraints={"x2": "frozen"})
    assert not out.exists()  # nothing claimed by a refused call


def test_values_outside_a_querys_bounds_are_said_once_for_the_file(tmp_path, fitted, caplog):
    """Every applicant's x1 (0..4) against bounds (None, 1): the three denied ones above it
    are named in one warning before the work; per applicant it said so once each (a file of
    thousands, thousands of warnings)."""
    rules = Constraints(bounds={"x1": (None, 1)})
    with caplog.at_level("WARNING"):
        explain_to_file(
            fitted, _applicants(), tmp_path / "p.csv", constraints=rules, progress=False
        )
    said = [r.getMessage() for r in caplog.records if "bounds of `constraints`" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith("3 applicant value(s) lie outside the bounds of `constraints`")
    assert "row 'ann': x1 = 2 outside [0, 1]" in said[0] and "row 'cy'" not in said[0]


def test_a_category_the_model_refuses_is_named_before_any_line(tmp_path, german, split):
    """An applicant with a category the model fails on stopped the batch at its row, and
    every rerun again; the whole file is checked first."""
    from sklearn.linear_model import LogisticRegression

    model = strict_one_hot(german, split, LogisticRegression(max_iter=2000))
    rec = Recourse(model, german.schema).fit(german.X.iloc[split[0]])
    rows = german.X.iloc[split[1][:3]].copy()
    rows.iloc[2, rows.columns.get_loc("personal_status_and_sex")] = "female : single"
    out = tmp_path / "p.csv"
    with pytest.raises(ValueError, match=r"have personal_status_and_sex = 'female : single'"):
        explain_to_file(rec, rows, out, progress=False)
    assert not out.exists()


def test_a_schema_keeps_its_digest_across_the_max_shift_field(hand):
    """FeatureSpec gained `max_shift` (session 42) and `transition_costs` (43); hashing them at
    their defaults changed the digest of every schema, so every batch begun before was refused
    as 'the schema' changed. The hand schema's digest is the one cfx computed at e269f23
    (session 41); a cap or a priced change set is a change."""
    from cfx.recourse.batch import _schema_sha256

    _, schema, _ = hand
    old = "f5d1e5f1ebeaa20416b12934848c510862c3ac458ab2bfe7deeda5d4df3643f8"
    assert _schema_sha256(schema) == old
    assert _schema_sha256(schema.replace("x1", max_shift=2)) != old
    assert _schema_sha256(schema.replace("c", transition_costs={"a": {"c": 2}})) != old


def test_an_applicants_rules_keep_their_digest_across_the_transition_costs_field():
    """Constraints gained `transition_costs` (session 44); hashing it empty would change the
    digest of every applicant with rules, and a rerun would redo them all. The digest is the
    one cfx computed at 14c5fd5 (session 43); per-query prices are a change."""
    rules = {"immutable": ("x2",), "costs": {"c": 1.0}, "transitions": {"c": {"a": ("b",)}}}
    row = np.array([[1.0, 1.0, 0.0]])
    assert input_digests(row, [Constraints(**rules)]) == ["c6698ccea1977a71"]
    priced = Constraints(**rules, transition_costs={"c": {"a": {"b": 2}}})
    assert input_digests(row, [priced]) != ["c6698ccea1977a71"]


def test_columns_the_schema_does_not_name_are_said_once(tmp_path, hand, caplog):
    """An `income` column left out of the schema was dropped in silence by fit, explain and
    explain_to_file (only the command line said so); the schema's target `y` is no surprise."""
    model, schema, X = hand
    with caplog.at_level("WARNING"):
        rec = Recourse(model, schema, k=1, support=0.0).fit(X.assign(income=1.0, y=0))
    said = [r.getMessage() for r in caplog.records if "the schema does not name" in r.getMessage()]
    assert said == [
        "`X_train` has 1 column the schema does not name, not read: income; only the "
        "schema's features reach the model and the plans"
    ]
    caplog.clear()
    people = _applicants().assign(income=2.0, notes="x")
    with caplog.at_level("WARNING"):
        rec.explain(people)
        explain_to_file(rec, people, tmp_path / "p.csv", progress=False)
    said = [r.getMessage() for r in caplog.records if "the schema does not name" in r.getMessage()]
    assert [s.split(" has ")[0] for s in said] == ["`applicants`", "`applicants`"]  # not 1 + 4
    assert "2 columns the schema does not name, not read: income, notes;" in said[0]
    caplog.clear()
    with caplog.at_level("WARNING"):
        rec.explain(_applicants())
    assert "the schema does not name" not in caplog.text
