import pytest
import torch

from cfx.label import (
    UNSURE,
    import_csv,
    pending,
    read_labels,
    record_label,
    write_task,
)


def test_unsure_is_an_answer_without_a_class(task_dir, tmp_path):
    """A person who cannot call an image says so: it is no longer pending, has no class, and
    reads back as UNSURE from labels.csv and from a sheet."""

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("0", 0),
        ("1.0", 1),  # a spreadsheet's number
        ("1,0", 1),  # the same in a comma-decimal locale
        ("Tumour", 1),  # a class name in any case
        ("HEALTHY", 0),
        ("unsure", UNSURE),
        ("Unsure", UNSURE),
        ("2", None),  # no third class
        ("-1", None),  # unsure is written in words
        ("tumor", None),  # a mistyped name is no label
        ("", None),
        ("１", None),  # a full-width digit is no ASCII index
    ],
)
def test_a_label_reads_from_an_index_a_class_name_or_unsure(text, expected):
    from cfx.label.classes import parse_label

    assert parse_label(text, ("healthy", "tumour")) == expected


def test_a_label_in_words_and_a_label_from_python_values():
    import numpy as np

    from cfx.label.classes import as_index, label_name

    names = ("healthy", "tumour")
    assert [label_name(k, names) for k in (0, 1, UNSURE)] == ["healthy", "tumour", "unsure"]
    pred = torch.tensor([1, 0])
    assert as_index(pred[0]) == 1 and as_index(np.int64(1)) == 1 and as_index(0) == 0
    # a bool, a float or a float tensor is no class index, even when it holds a whole number
    for value in (True, 1.0, torch.tensor(1.0), np.float32(1), "1", torch.tensor([1])):
        assert as_index(value) is None, value


@pytest.mark.parametrize(
    ("names", "error", "match"),
    [
        ("ab", TypeError, "must be a sequence of strings, got str"),
        (("only",), ValueError, "must name at least 2 classes"),
        (("a", " b"), ValueError, "without surrounding spaces"),
        (("a", ""), ValueError, "non-empty strings"),
        (("0", "1"), ValueError, "must not be plain numbers"),
        (("a", "A"), ValueError, "must differ ignoring case"),
        (("a", "UNSURE"), ValueError, "must not hold 'unsure'"),
        (("a", 2), ValueError, "non-empty strings"),
    ],
)
def test_class_names_a_task_cannot_hold_are_refused(names, error, match):
    from cfx.label.classes import check_class_names

    with pytest.raises(error, match=match):
        check_class_names(names)
    assert check_class_names(["normal", "lesion"]) == ("normal", "lesion")
