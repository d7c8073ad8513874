import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cfx.label.store as store
from cfx.images import to_uint8
from cfx.label import (
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
    known_context,
    known_images,
    make_task,
)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


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
        # [Errno 36] File name too long, after the pictures before it were written
        ({"ids": ["a", "b", "c", "d", "e" * 201]}, ValueError, "at most 200 characters"),
        ({"suggested": [0, 1, 2, 0, 1]}, ValueError, r"`suggested` labels .* 0..1, got 2"),
        ({"suggested": [0, 1]}, ValueError, r"`suggested` must hold one label per image"),
        ({"suggested": torch.rand(5)}, TypeError, r"`suggested` must be an integer tensor"),
        ({"suggested": torch.zeros(5, 1).long()}, ValueError, r"integer tensor of shape \(5,\)"),
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


def test_a_task_repr_counts_its_items(task_dir):
    shown = repr(read_task(task_dir))
    assert "items=<5 x Item>" in shown and "sha256" not in shown


def test_missing_task_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no labelling task in .*manifest.json"):
        read_labels(tmp_path)
    # a cfx augment run folder, given for its round's task, names the tasks it holds
    write_task(tmp_path / "run" / "round_00" / "task", known_images()[:2])
    with pytest.raises(FileNotFoundError, match=r"this folder holds the tasks .*round_00.task$"):
        read_labels(tmp_path / "run")


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
        # ids write_task refuses: the first label given to one made labels.csv unreadable
        (
            lambda m: m | {"items": [m["items"][0] | {"id": "scan 1 "}, *m["items"][1:]]},
            r"ids \['scan 1 '\] are not file-name-safe",
        ),
        (
            lambda m: m | {"items": [m["items"][0] | {"image": "../x.png"}, *m["items"][1:]]},
            r"image paths \['\.\./x\.png'\] are not inside the task folder",
        ),
    ],
)
def test_a_manifest_write_task_would_refuse_is_not_read(task_dir, edit, match):
    """A hand-made manifest with one class or no items was served as a page (session 44)."""
    path = task_dir / "manifest.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(ValueError, match="is not a cfx labelling manifest: .*" + match):
        read_task(task_dir)


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


def test_a_task_read_is_taken_wherever_its_folder_is(task_dir, tmp_path):
    """`record_label(read_task(d), ...)`, as the LabelsPending message and the README write
    it, failed with "expected str, bytes or os.PathLike object, not Task"."""
    from cfx.label import export_csv, import_csv, make_server

    task = read_task(task_dir)
    record_label(task, "000001", 1)
    assert read_labels(task) == {"000001": 1}
    assert pending(task) == ["000000", "000002", "000003", "000004"]
    assert read_task(task) == read_task(task_dir)
    export_csv(task, tmp_path / "sheet.csv")
    import_csv(task, tmp_path / "sheet.csv")  # nothing filled in: nothing imported
    make_server(task).server_close()
    with pytest.raises(
        TypeError,
        match=r"`directory` must be a task folder \(str or Path\) "
        "or a cfx.label.Task, got NoneType",
    ):
        read_labels(None)
    with pytest.raises(TypeError, match="`directory` must be a folder to write the task in"):
        write_task(task, known_images())


def test_write_task_into_a_file_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"`directory` must be a folder .*got the file"):
        write_task(tmp_path / "notes.txt", known_images())
    with pytest.raises(ValueError, match=r"`directory` must be a folder, got .* inside the file"):
        write_task(tmp_path / "notes.txt" / "task", known_images())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_task_read_through_a_relative_folder_keeps_its_place(tmp_path, monkeypatch):
    """A server started on "task" wrote into another project's task/ after a chdir: every
    request read the relative folder again."""
    for project in ("a", "b"):
        write_task(tmp_path / project / "task", known_images())
    monkeypatch.chdir(tmp_path / "a")
    task = read_task("task")
    monkeypatch.chdir(tmp_path / "b")
    record_label(task, "000000", 1)
    assert read_labels(tmp_path / "a" / "task") == {"000000": 1}
    assert read_labels(tmp_path / "b" / "task") == {}


def test_suggested_numpy_arrays_of_every_layout_are_read(tmp_path):
    """A reversed view (negative strides) and an object array holding None failed with
    torch's words; a read-only broadcast array gave torch's non-writable warning."""
    import warnings

    cases = [
        (np.array([0, 1])[::-1], [1, 0]),
        (np.array([1, None], dtype=object), [1, None]),
        (np.broadcast_to(np.int64(1), (2,)), [1, 1]),
    ]
    for k, (suggested, want) in enumerate(cases):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            folder = write_task(tmp_path / str(k), known_images()[:2], suggested=suggested)
        assert [item.suggested for item in read_task(folder).items] == want
    with pytest.raises(
        TypeError,
        match=r"`suggested` must be an integer array of shape \(2,\), "
        "got dtype float64",
    ):
        write_task(tmp_path / "f", known_images()[:2], suggested=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"got dtype int64 and shape \(2, 1\)"):
        write_task(tmp_path / "s", known_images()[:2], suggested=np.array([[1], [0]]))


def test_images_in_0_1_are_noticed(tmp_path, caplog):
    """[0, 1] images were drawn washed out for the labeller (black as mid-grey) without a
    word, where every other entry point warns."""
    images = (known_images() + 1) / 2  # [0, 1]
    with caplog.at_level("WARNING"):
        write_task(tmp_path / "unit", images)
    assert f"no pixel of the {N} task images is below 0" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        write_task(tmp_path / "signed", known_images())
    assert "below 0" not in caplog.text
