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
