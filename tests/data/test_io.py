import numpy as np
import pytest
import torch

from cfx.data.io import load_images, load_labels


def test_a_tensor_file_round_trips_and_uint8_maps_to_minus_one_one(tmp_path):
    x = torch.tensor([[[[0, 255], [51, 204]]]], dtype=torch.uint8)  # (1, 1, 2, 2)
    torch.save(x, tmp_path / "x.pt")
    got = load_images(tmp_path / "x.pt", name="--input")
    assert torch.allclose(got, torch.tensor([[[[-1.0, 1.0], [-0.6, 0.6]]]]), atol=1e-6)


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_bytes(b"not a tensor file"),  # damaged
        lambda p: torch.save(np.zeros((1, 1, 2, 2)), p),  # a pickled numpy array
        lambda p: torch.save({"x": torch.zeros(1, 1, 2, 2)}, p),  # not a single tensor
        lambda p: p.write_bytes(b"hello, not a tensor"),  # torch raises KeyError on this one
        lambda p: torch.save(torch.zeros(1, 1, 2, 2, dtype=torch.complex64), p),
    ],
    ids=["damaged", "numpy-pickle", "dict", "text", "complex"],
)
def test_a_pt_file_that_is_not_one_plain_tensor_is_named_in_the_error(tmp_path, write):
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises((ValueError, TypeError), match=r"`--input` \(.*bad\.pt\)") as err:
        load_images(path, name="--input")
    # never the advice to unpickle a user's file
    assert "weights_only" not in str(err.value) and "allow_pickle" not in str(err.value)


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda p: p.write_bytes(b"garbage"), "not a .npy file of numbers"),
        (lambda p: np.save(p, np.array([{}], dtype=object)), "not a .npy file of numbers"),
        (lambda p: np.save(p, np.array(["a", "b"])), "must hold real numbers, got dtype <U1"),
        (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00\x10\x00('descr'        \n"), "not a .npy"),
        (
            lambda p: np.savez(p.with_suffix(""), a=np.zeros(2)) or p.with_suffix(".npz").rename(p),
            "an .npz archive",
        ),
        (lambda p: np.save(p, np.zeros((1, 1, 2, 2), dtype=bool)), "got bool"),
    ],
    ids=["damaged", "objects", "strings", "bad-header", "npz", "bool"],
)
def test_a_npy_file_that_is_not_numbers_is_named_in_the_error(tmp_path, write, match):
    path = tmp_path / "bad.npy"
    write(path)
    with pytest.raises((ValueError, TypeError), match=match) as err:
        load_images(path, name="--input")
    assert "`--input`" in str(err.value) and "allow_pickle" not in str(err.value)


def test_a_big_endian_npy_loads_as_its_values(tmp_path):
    x = np.linspace(-1, 1, 4, dtype=">f4").reshape(1, 1, 2, 2)
    np.save(tmp_path / "be.npy", x)
    got = load_images(tmp_path / "be.npy", name="--input")
    assert torch.equal(got, torch.tensor([[[[-1.0, -1 / 3], [1 / 3, 1.0]]]]))


def test_an_unreadable_file_keeps_its_io_error(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 1, 2, 2), dtype=np.float32))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(np, "load", denied)
    with pytest.raises(PermissionError):  # not reworded as "not a .npy file"
        load_images(path, name="--input")


def test_fractional_labels_are_refused_not_truncated(tmp_path):
    # 1.5 is no class index; .long() would silently make it 1
    p = tmp_path / "y.npy"
    np.save(p, np.array([0.0, 1.5], dtype=np.float32))
    with pytest.raises(ValueError, match=r"must be integers \(class indices\), got 1\.5 in row 1$"):
        load_labels(p, 2)
    np.save(p, np.array([0.7, 1.0, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match=r"got 0\.7 in row 0 and 1 more rows$"):
        load_labels(p, 3)


def test_a_batch_of_the_wrong_shape_says_what_to_do(tmp_path):
    """Channels last or another size got the bare shape error (image files are resized when
    read, a batch is not)."""
    np.save(tmp_path / "last.npy", np.zeros((2, 8, 8, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"channels last\? move them with x\.transpose"):
        load_images(tmp_path / "last.npy", name="--input", shape=(1, 8, 8))
    np.save(tmp_path / "small.npy", np.zeros((2, 1, 6, 6), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"got \(2, 1, 6, 6\): resize them to 8x8 \(image"):
        load_images(tmp_path / "small.npy", name="--input", shape=(1, 8, 8))
    # grey images for a colour model (a grey PNG is converted, a batch is not)
    np.save(tmp_path / "grey.npy", np.zeros((2, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"grey images for a model taking 3 channels\? repeat"):
        load_images(tmp_path / "grey.npy", name="--input", shape=(3, 8, 8))
    np.save(tmp_path / "grey.npy", np.zeros((2, 1, 8, 8), dtype=np.uint8))
    with pytest.raises(
        ValueError, match=r"repeat a grey channel \(numpy: x\.repeat\(3, axis=1\)\)"
    ):
        load_images(tmp_path / "grey.npy", name="--input", shape=(3, 8, 8))
    # and colour images for a grey model (a bare shape error before)
    np.save(tmp_path / "rgb.npy", np.zeros((2, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"colour images for a model taking 1 channel\? average"):
        load_images(tmp_path / "rgb.npy", name="--input", shape=(1, 8, 8))


def test_whole_float_labels_are_read_as_int64(tmp_path):
    p = tmp_path / "y.npy"
    np.save(p, np.array([0.0, 1.0, 1.0], dtype=np.float32))
    y = load_labels(p, 3)
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 1]


def test_load_region_takes_one_mask_with_or_without_leading_axes(tmp_path):
    from cfx.data.io import load_region

    m = np.zeros((4, 6), dtype=np.uint8)
    m[1, 2] = 1
    for i, array in enumerate((m, m[None], m[None, None], m.astype(bool))):
        np.save(tmp_path / f"r{i}.npy", array)
        region = load_region(tmp_path / f"r{i}.npy", (4, 6), name="--marker-mask")
        assert region.shape == (1, 1, 4, 6) and region.dtype == torch.bool
        assert region.nonzero().tolist() == [[0, 0, 1, 2]]
    np.save(tmp_path / "two.npy", np.stack([m, m]))
    with pytest.raises(ValueError, match=r"`--marker-mask` must have shape \(4, 6\), one mask"):
        load_region(tmp_path / "two.npy", (4, 6), name="--marker-mask")
    np.save(tmp_path / "grey.npy", m * 7)
    with pytest.raises(
        ValueError,
        match=r"`--marker-mask` must be bool or hold only 0 and 1, got values 0, 7 \(a 0/7 "
        r"mask image: save it as 0/1\)",
    ):
        load_region(tmp_path / "grey.npy", (4, 6), name="--marker-mask")


def test_images_for_a_model_of_known_channels(tmp_path):
    """(N, H, W) grey images get their channel axis; a channels-last batch is named as such."""
    grey = np.zeros((2, 5, 6), dtype=np.uint8)
    np.save(tmp_path / "grey.npy", grey)
    assert load_images(tmp_path / "grey.npy", name="--input", channels=1).shape == (2, 1, 5, 6)
    np.save(tmp_path / "one.npy", grey[0])  # (H, W)
    assert load_images(tmp_path / "one.npy", name="--input", channels=1).shape == (1, 1, 5, 6)
    np.save(tmp_path / "rgb.npy", np.zeros((3, 5, 6), dtype=np.uint8))  # one colour image
    assert load_images(tmp_path / "rgb.npy", name="--input", channels=3).shape == (1, 3, 5, 6)
    np.save(tmp_path / "last.npy", grey[..., None])  # (N, H, W, 1)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\) .* got \(2, 5, 6, 1\); channels last"):
        load_images(tmp_path / "last.npy", name="--input", channels=1)


def test_one_image_saved_channels_last_is_named(tmp_path):
    """(8, 6, 1) read as eight grey images one pixel wide, silently; (H, W, 3) got a generic
    shape error."""
    for shape, channels in (((8, 6, 1), 1), ((8, 6, 3), 3)):
        np.save(tmp_path / "img.npy", np.zeros(shape, dtype=np.uint8))
        with pytest.raises(ValueError, match=r"one image saved channels last"):
            load_images(tmp_path / "img.npy", name="--input", channels=channels)


def test_csv_labels_one_per_line_in_order_with_or_without_a_header(tmp_path):
    (tmp_path / "plain.txt").write_text("1\n0\n\n1.0\n")  # blank lines skipped, 1.0 is 1
    assert load_labels(tmp_path / "plain.txt", 3).tolist() == [1, 0, 1]
    (tmp_path / "head.csv").write_text("label\n0\n1\n")
    assert load_labels(tmp_path / "head.csv", 2).tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"has 2 labels, one per image needs 3"):
        load_labels(tmp_path / "head.csv", 3, name="--labels")
    (tmp_path / "frac.csv").write_text("label\n0\n0.5\n")
    with pytest.raises(ValueError, match=r"`--labels` .* line 3: the label '0.5' is no integer"):
        load_labels(tmp_path / "frac.csv", 2, name="--labels")


def test_words_a_caller_names_are_labels_and_no_header(tmp_path):
    """A yes/no column (which images carry a marker): "yes" on the first line was taken for a
    header and "no" below refused as a class name."""
    yes_no = {"yes": 1, "no": 0}
    (tmp_path / "flags.txt").write_text("Yes\nno\n1\n")
    assert load_labels(tmp_path / "flags.txt", 3, words=yes_no).tolist() == [1, 0, 1]
    (tmp_path / "head.csv").write_text("has_tag\nno\nyes\n")  # a header is still a header
    assert load_labels(tmp_path / "head.csv", 2, words=yes_no).tolist() == [0, 1]
    (tmp_path / "maybe.txt").write_text("yes\nmaybe\n")
    with pytest.raises(  # no "labels are classes 0..K-1": a yes/no file holds no classes
        ValueError,
        match=r"`--marker-present` \(\S+\) line 2: 'maybe' is none of 0, 1, yes, no "
        r"\(one per image\)$",
    ):
        load_labels(tmp_path / "maybe.txt", 2, name="--marker-present", words=yes_no)
    with pytest.raises(ValueError, match=r"line 2: the label 'no' is no integer"):  # not asked
        load_labels(tmp_path / "flags.txt", 3)


def test_csv_labels_by_file_name_follow_the_files_order_not_the_rows(tmp_path):
    from pathlib import Path

    files = [Path("scans/a.png"), Path("scans/b.png"), Path("scans/c.jpg")]
    # rows in another order, names with and without extension, a row for another file, ';'
    (tmp_path / "y.csv").write_text("file;tumour\nc;1\nb.png;0\nzzz.png;1\na.png;1\n")
    got = load_labels(tmp_path / "y.csv", 3, name="--labels", files=files)
    assert got.tolist() == [1, 0, 1] and got.dtype == torch.int64
    (tmp_path / "tab.csv").write_text("a.png\t0\nb\t1\nc.jpg\t0\n")
    assert load_labels(tmp_path / "tab.csv", 3, files=files).tolist() == [0, 1, 0]


def test_csv_labels_by_file_name_name_what_is_wrong(tmp_path):
    from pathlib import Path

    files = [Path("a.png"), Path("b.png")]
    (tmp_path / "short.csv").write_text("a.png,1\n")
    with pytest.raises(ValueError, match=r"`--labels` .* has no row for b\.png"):
        load_labels(tmp_path / "short.csv", 2, name="--labels", files=files)
    (tmp_path / "typo.csv").write_text("name,y\na.png,1\nb.pgn,0\n")  # the row went unnamed
    with pytest.raises(ValueError, match=r"no row for b\.png: .*; line 3 \('b\.pgn'\) matches no"):
        load_labels(tmp_path / "typo.csv", 2, name="--labels", files=files)
    (tmp_path / "twice.csv").write_text("a.png,1\nb.png,0\na.png,0\n")
    with pytest.raises(ValueError, match=r"line 3: 'a\.png' is listed twice"):
        load_labels(tmp_path / "twice.csv", 2, files=files)
    (tmp_path / "ragged.csv").write_text("a.png,1\nb.png,0,7\n")
    with pytest.raises(ValueError, match=r"one column .* or two .* line 2 does not"):
        load_labels(tmp_path / "ragged.csv", 2, files=files)
    with pytest.raises(ValueError, match=r"a file name and its label, but the images came from"):
        load_labels(tmp_path / "short.csv", 1, name="--labels")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(ValueError, match="is empty"):
        load_labels(tmp_path / "empty.csv", 2)
    with pytest.raises(FileNotFoundError, match="`--labels` file not found"):
        load_labels(tmp_path / "none.csv", 2, name="--labels")


def test_csv_labels_a_number_on_the_first_line_is_a_label_not_a_header(tmp_path):
    """Only text where the label goes makes a header: 1.5 or nan on line 1 is a wrong label
    (it was dropped as a header, and the count or a missing file was blamed instead)."""
    for text, bad in (("1.5\n0\n", "'1.5'"), ("nan\n1\n0\n", "'nan'"), ("1e20\n0\n", "'1e20'")):
        (tmp_path / "y.txt").write_text(text)
        with pytest.raises(ValueError, match=f"line 1: the label {bad} is no integer"):
            load_labels(tmp_path / "y.txt", 2, name="--labels")


def test_csv_labels_by_file_name_read_quoted_names_and_refuse_ambiguous_rows(tmp_path):
    from pathlib import Path

    (tmp_path / "q.csv").write_text('file,label\n"a,b.png",1\ns1.png,0\n')
    files = [Path("a,b.png"), Path("s1.png")]
    assert load_labels(tmp_path / "q.csv", 2, files=files).tolist() == [1, 0]
    (tmp_path / "both.csv").write_text("file,label\ns0.png,1\ns0,0\n")
    with pytest.raises(ValueError, match=r"labels s0\.png twice, as 's0\.png' \(line 2\) and as"):
        load_labels(tmp_path / "both.csv", 1, files=[Path("s0.png")])
    (tmp_path / "stem.csv").write_text("file,label\nscan,1\n")
    with pytest.raises(ValueError, match=r"line 2: 'scan' matches both scan\.png and scan\.tif"):
        load_labels(tmp_path / "stem.csv", 2, files=[Path("scan.png"), Path("scan.tif")])


def test_csv_labels_common_layouts_get_errors_that_say_what_to_do(tmp_path):
    """All labels on one line read as a header and then 'has 0 labels'; an index column read
    as file names; a typo on line 1 read as a header without a word."""
    cases = [
        ("1 0 1 1\n", 4, r"line 1 holds several numbers separated by spaces: put one label per"),
        ("lbl\n0\n1\n", 3, r"has 2 labels, one per image needs 3 \(line 1, 'lbl', was read as a"),
        ("id,label\n0,1\n1,0\n", 2, r"has two columns, a file name and its label, .* index column"),
        ("label\n0 1\n1 0\n2 1\n", 3, r"two columns separated by spaces or tabs: an index column"),
        ("label\n0\t1\n1\t0\n", 2, r"two columns separated by spaces or tabs: an index col"),
    ]
    for text, n, message in cases:
        (tmp_path / "y.csv").write_text(text)
        with pytest.raises(ValueError, match=message):
            load_labels(tmp_path / "y.csv", n, name="--labels")
    (tmp_path / "y.csv").write_text("my label\n0\n1\n")  # words in a header are fine
    assert load_labels(tmp_path / "y.csv", 2).tolist() == [0, 1]


def test_an_array_of_labels_must_hold_one_per_image(tmp_path):
    # three labels for two images: which two? refused, not truncated or passed on
    np.save(tmp_path / "y.npy", np.array([0, 1, 1]))
    want = r"`--labels` must have shape \(2,\), one per image, got \(3,\)"
    with pytest.raises(ValueError, match=want):
        load_labels(tmp_path / "y.npy", 2, name="--labels")


def test_csv_labels_one_per_line_more_rows_than_images_is_an_error(tmp_path):
    (tmp_path / "y.txt").write_text("0\n1\n1\n")
    with pytest.raises(ValueError, match=r"has 3 labels, one per image needs 2"):
        load_labels(tmp_path / "y.txt", 2, name="--labels")


def test_csv_labels_too_large_for_int64_are_no_integers(tmp_path):
    # 1e19 and -1e20 are whole numbers, but no int64 holds them: named, not an overflow
    for text, bad in (("1e19\n0\n", "'1e19'"), ("-1e20\n0\n", "'-1e20'")):
        (tmp_path / "y.txt").write_text(text)
        with pytest.raises(ValueError, match=f"line 1: the label {bad} is no integer"):
            load_labels(tmp_path / "y.txt", 2, name="--labels")


def test_csv_labels_from_a_spreadsheet_with_a_byte_order_mark(tmp_path):
    # Excel's "CSV UTF-8" starts with a BOM; the first label is still a label, not a header
    (tmp_path / "y.csv").write_bytes(b"\xef\xbb\xbf1\r\n0\r\n1\r\n")
    assert load_labels(tmp_path / "y.csv", 3).tolist() == [1, 0, 1]


def test_csv_labels_lines_of_only_spaces_are_blank(tmp_path):
    (tmp_path / "y.txt").write_text("1\n   \n0\n\t\n")
    assert load_labels(tmp_path / "y.txt", 2).tolist() == [1, 0]


def test_csv_labels_tab_separated_names_may_hold_commas(tmp_path):
    from pathlib import Path

    # a tab on the first line makes the table tab-separated, whatever else the names hold
    (tmp_path / "y.tsv.txt").write_text("a,b.png\t1\nc;d.png\t0\n")
    files = [Path("a,b.png"), Path("c;d.png")]
    assert load_labels(tmp_path / "y.tsv.txt", 2, files=files).tolist() == [1, 0]


def test_csv_labels_three_columns_on_every_row_are_refused(tmp_path):
    from pathlib import Path

    (tmp_path / "y.csv").write_text("a.png,1,7\nb.png,0,7\n")
    with pytest.raises(ValueError, match=r"one column .* or two .* line 1 does not"):
        load_labels(tmp_path / "y.csv", 2, name="--labels", files=[Path("a.png"), Path("b.png")])


def test_csv_labels_two_numbers_on_the_first_line_are_not_a_header(tmp_path):
    # "0 1" on line 1 only: read as a header it silently dropped a label
    (tmp_path / "y.txt").write_text("0 1\n1\n")
    with pytest.raises(ValueError, match=r"line 1 holds several numbers separated by spaces"):
        load_labels(tmp_path / "y.txt", 1, name="--labels")


def test_csv_labels_a_header_naming_a_class_number_is_a_header(tmp_path):
    # a header with words and a number ("tumour 1") is text where the label goes
    (tmp_path / "y.csv").write_text("tumour 1\n0\n1\n")
    assert load_labels(tmp_path / "y.csv", 2).tolist() == [0, 1]


def test_csv_labels_by_file_name_names_with_spaces(tmp_path):
    from pathlib import Path

    (tmp_path / "y.csv").write_text("scan a.png,1\nscan b.png,0\n")
    files = [Path("scan b.png"), Path("scan a.png")]
    assert load_labels(tmp_path / "y.csv", 2, files=files).tolist() == [0, 1]


def test_csv_labels_by_file_name_for_a_file_without_extension(tmp_path):
    from pathlib import Path

    # its name is its stem: one row, matched once
    (tmp_path / "y.csv").write_text("scan,1\nother,0\n")
    assert load_labels(tmp_path / "y.csv", 1, files=[Path("scan")]).tolist() == [1]


def test_csv_labels_a_file_labelled_twice_names_both_lines(tmp_path):
    from pathlib import Path

    (tmp_path / "y.csv").write_text("file,label\ns0.png,1\nx.png,0\ns0,0\n")
    with pytest.raises(ValueError, match=r"as 's0\.png' \(line 2\) and as 's0' \(line 4\)"):
        load_labels(tmp_path / "y.csv", 1, files=[Path("s0.png")])


def test_csv_labels_only_a_header_counts_no_labels(tmp_path):
    (tmp_path / "y.csv").write_text("label\n")
    with pytest.raises(ValueError, match=r"has 0 labels, one per image needs 2 \(line 1, 'label'"):
        load_labels(tmp_path / "y.csv", 2, name="--labels")


def test_labels_by_position_for_numbered_files_are_warned_about(tmp_path, caplog):
    """A folder is read in name order as text (img_0, img_1, img_10, img_2, ...): labels
    written one per line in the numbers' order landed on other images without a word."""
    from pathlib import Path

    numbered = [Path(f"img_{i}.png") for i in sorted(range(12), key=str)]  # text order
    np.save(tmp_path / "y.npy", np.arange(12) % 2)
    (tmp_path / "y.txt").write_text("".join(f"{i % 2}\n" for i in range(12)))
    for labels in ("y.npy", "y.txt"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            load_labels(tmp_path / labels, 12, name="--labels", files=numbered)
        assert "`--labels` is matched to the image files by position" in caplog.text
        assert "(img_10.png before img_2.png)" in caplog.text and "from the 3rd on" in caplog.text
    caplog.clear()
    padded = [Path(f"img_{i:02d}.png") for i in range(12)]  # text and numbers agree
    # names that differ by more than their numbers have no numbers' order to disagree with
    # (a case-insensitive sort, names with and without a number)
    others = [Path(n) for n in ("B2.png", "a1.png", "c3.png", "scan.png", "scan1.png", "x")]
    others += [Path(f"y{i}.png") for i in range(6)]
    with caplog.at_level("WARNING"):
        load_labels(tmp_path / "y.npy", 12, name="--labels", files=padded)
        load_labels(tmp_path / "y.npy", 12, name="--labels", files=others)
    assert caplog.text == ""


def test_csv_labels_name_class_names_and_rows_that_hold_paths(tmp_path):
    """Class names gave "the label 'square' is no integer" with line 1 silently taken for a
    header; rows naming paths (images/a.png) were never matched to the files."""
    from pathlib import Path

    files = [Path("scans/a.png"), Path("scans/b.png")]
    (tmp_path / "names.csv").write_text("a.png,circle\nb.png,square\n")
    with pytest.raises(
        ValueError, match=r"line 2: .*map each to its number\) \(line 1, 'circle', was read as"
    ):
        load_labels(tmp_path / "names.csv", 2, name="--labels", files=files)
    (tmp_path / "paths.csv").write_text("images/a.png,1\nC:\\data\\b.png,0\n")
    assert load_labels(tmp_path / "paths.csv", 2, files=files).tolist() == [1, 0]
    # a row naming the file itself wins over a path row (which was ignored before); two path
    # rows of one file name stand for neither
    (tmp_path / "mixed.csv").write_text("a.png,0\nold/a.png,1\nb.png,1\n")
    assert load_labels(tmp_path / "mixed.csv", 2, files=files).tolist() == [0, 1]
    (tmp_path / "splits.csv").write_text("train/a.png,0\nval/a.png,1\nb.png,1\n")
    with pytest.raises(ValueError, match=r"has no row for a\.png"):
        load_labels(tmp_path / "splits.csv", 2, files=files)


def test_a_folder_given_for_labels_names_every_kind_of_file_they_may_be(tmp_path):
    """The array loader's error ("must be a .npy/.pt file here") left out the CSV and text
    files that labels may be."""
    with pytest.raises(IsADirectoryError, match=r"`--train-labels` must be a file \(\.npy/\.pt, "
                       r"or \.csv/\.tsv/\.txt\), got the folder"):  # fmt: skip
        load_labels(tmp_path, 3, name="--train-labels")


def test_negative_labels_are_refused_from_arrays_and_tables(tmp_path):
    """load_labels returned -1 and -3 as classes ("labels are classes 0..K-1" was its own
    word): they failed later, or were trained on."""
    np.save(tmp_path / "y.npy", np.array([-1, 1, 1, 0]))
    with pytest.raises(ValueError, match=r"`labels` must be class indices 0..K-1, got -1 in row 0"):
        load_labels(tmp_path / "y.npy", 4)
    (tmp_path / "y.csv").write_text("label\n0\n-3\n1\n-3\n")
    with pytest.raises(  # by its line: "row 1" was the images' order, not the sheet's line
        ValueError,
        match=r"line 3: the label -3 is negative; labels are classes 0..K-1 \(1 "
        r"more lines hold one\)$",
    ):
        load_labels(tmp_path / "y.csv", 4)
    files = [tmp_path / f"img_{i}.png" for i in range(3)]
    (tmp_path / "named.csv").write_text("file,label\nimg_2.png,1\nimg_0.png,-1\nimg_1.png,0\n")
    with pytest.raises(ValueError, match=r"line 3: the label -1 is negative.*map them to 0/1"):
        load_labels(tmp_path / "named.csv", 3, files=files)
    np.save(tmp_path / "ok.npy", np.array([0, 1, 1, 0]))
    assert load_labels(tmp_path / "ok.npy", 4).tolist() == [0, 1, 1, 0]


def test_an_empty_label_and_swapped_columns_are_said_as_such(tmp_path):
    """A blank cell read "the label '' is no integer ... (class names such as '': map each to
    its number)"; a label,file sheet called its file names class names (a user review)."""
    files = [tmp_path / f"img_{i}.png" for i in range(2)]
    (tmp_path / "blank.csv").write_text("file,label\nimg_0.png,1\nimg_1.png,\n")
    with pytest.raises(ValueError, match=r"line 3 has no label \(an empty cell\)$"):
        load_labels(tmp_path / "blank.csv", 2, files=files)
    (tmp_path / "swapped.csv").write_text("label,file\n1,img_0.png\n0,img_1.png\n")
    with pytest.raises(
        ValueError,
        match=r"line 2: the label 'img_0.png' is no integer; labels are classes 0..K-1 \(the "
        r"header, line 1, puts 'label' first: the columns are read as file name, then label\)$",
    ):
        load_labels(tmp_path / "swapped.csv", 2, files=files)


def test_counts_shapes_and_sizes_are_checked_before_the_file_is_read(tmp_path):
    """n='4' said "must have shape (4,), one per image, got (4,)"; shape=(64, 64) failed as
    "not enough values to unpack"; load_region(p, 8) as "cannot unpack non-iterable int"."""
    from cfx.data.io import load_masks, load_region

    np.save(tmp_path / "y.npy", np.array([0, 1]))
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), dtype=np.float32))
    with pytest.raises(TypeError, match=r"`n` must be an int >= 0, got '2'"):
        load_labels(tmp_path / "y.npy", "2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`shape` must be None or \(C, H, W\), got \(8, 8\)"):
        load_images(tmp_path / "x.npy", shape=(8, 8))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`channels` must be an int >= 1, got '1'"):
        load_images(tmp_path / "x.npy", channels="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`size` must be the images' \(H, W\), got 8"):
        load_region(tmp_path / "x.npy", 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`images` must be the images the masks are for"):
        load_masks(tmp_path / "x.npy", torch.zeros(2, 8, 8))
    assert load_images(tmp_path / "x.npy", shape=(1, 8, 8), channels=1).shape == (2, 1, 8, 8)


def test_a_batch_saved_channels_last_is_named_without_shape_or_channels(tmp_path):
    """(4, 64, 64, 3) came back as 4 images of 64 channels, 64 x 3 pixels, in silence: the
    hint needed `channels`."""
    np.save(tmp_path / "x.npy", np.zeros((4, 64, 64, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"holds \(4, 64, 64, 3\): images saved channels last"):
        load_images(tmp_path / "x.npy")
    np.save(tmp_path / "ok.npy", np.zeros((4, 3, 64, 64), dtype=np.float32))
    assert load_images(tmp_path / "ok.npy").shape == (4, 3, 64, 64)
    np.save(tmp_path / "small.npy", np.zeros((4, 3, 8, 3), dtype=np.float32))  # 8x3 colour
    assert load_images(tmp_path / "small.npy").shape == (4, 3, 8, 3)


def test_labels_in_a_tsv_table_are_read_and_other_kinds_name_the_tables(tmp_path):
    """A .tsv label file was refused as "must be a .npy or .pt file", hiding the tables."""
    (tmp_path / "y.tsv").write_text("file\tlabel\na.png\t1\nb.png\t0\n")
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    assert load_labels(tmp_path / "y.tsv", 2, files=files).tolist() == [1, 0]
    (tmp_path / "y.xlsx").write_text("")
    with pytest.raises(ValueError, match=r"`labels` must be a \.npy/\.pt array or a "
                       r"\.csv/\.tsv/\.txt table of labels, got 'y\.xlsx'"):  # fmt: skip
        load_labels(tmp_path / "y.xlsx", 2)


def test_numpy_sizes_are_taken(tmp_path):
    import numpy as np

    from cfx.data.io import load_images, load_region

    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), np.float32))
    got = load_images(tmp_path / "x.npy", shape=tuple(np.array([1, 8, 8])))
    assert got.shape == (2, 1, 8, 8)
    np.save(tmp_path / "r.npy", np.ones((8, 8), bool))
    assert load_region(tmp_path / "r.npy", tuple(np.array([8, 8]))).shape == (1, 1, 8, 8)


def test_a_batch_read_takes_one_grey_image_without_axes(tmp_path):
    """cfx data preview refused a (H, W) .npy that --input reads as one grey image."""
    np.save(tmp_path / "one.npy", np.full((16, 16), -0.5, np.float32))
    x = load_images(tmp_path / "one.npy", batch=True)
    assert x.shape == (1, 1, 16, 16)
    assert torch.equal(x, load_images(tmp_path / "one.npy", channels=1))


def test_label_files_in_common_export_layouts_are_read_or_explained(tmp_path, caplog):
    """Session-53 audit: a spreadsheet's trailing commas ('0,') read as 'the label '' is no
    integer ... was read as a header'; 'name label' lines separated by a space (Caffe's
    lists) as one column; pandas' Series.to_csv(index=False), whose first line is the
    column name 0, as one label too many with no hint; label rows naming no image in the
    folder were dropped without a word."""
    files = [tmp_path / f"s{i}.png" for i in range(3)]
    (tmp_path / "y.csv").write_text("0,\n1,\n1,\n")
    assert load_labels(tmp_path / "y.csv", 3).tolist() == [0, 1, 1]
    (tmp_path / "y.csv").write_text("s0.png,1,\ns1.png,0,\ns2.png,1,\n")
    assert load_labels(tmp_path / "y.csv", 3, files=files).tolist() == [1, 0, 1]
    (tmp_path / "y.txt").write_text("s2.png 0\ns0.png 1\ns1.png 1\n")
    assert load_labels(tmp_path / "y.txt", 3, files=files).tolist() == [1, 1, 0]
    (tmp_path / "y.csv").write_text("0\n1\n0\n1\n")
    with pytest.raises(ValueError, match=r"needs 3 \(is line 1, '0', a header\? drop it\)"):
        load_labels(tmp_path / "y.csv", 3, name="--labels")
    (tmp_path / "y.csv").write_text("s0.png,1\ns1.png,0\ns2.png,1\ns9.png,0\n")
    with caplog.at_level("WARNING", logger="cfx.data.io"):
        assert load_labels(tmp_path / "y.csv", 3, files=files, name="--labels").tolist() == [
            1,
            0,
            1,
        ]
    assert "1 row(s) name no image in the folder (line 4 ('s9.png'))" in caplog.text


def test_a_labels_file_saved_as_utf16_is_read_as_cfx_label_import_reads_it(tmp_path):
    """PowerShell 5's `>` and Excel's 'Unicode Text' write UTF-16: `--labels` refused it as
    'not a text file (UTF-8)' while `cfx label import` read the same file (session-53 audit)."""
    files = [tmp_path / f"s{i}.png" for i in range(2)]
    (tmp_path / "y.csv").write_text("file,label\ns1.png,0\ns0.png,1\n", encoding="utf-16")
    assert load_labels(tmp_path / "y.csv", 2, files=files).tolist() == [1, 0]


def test_integer_pixels_other_than_uint8_are_named_with_their_range(tmp_path):
    """An int64 array of 0..255 (np.array(image) + arithmetic) was refused as "raw pixel values
    (up to 255): divide by the data's full scale" (a user review): 8-bit pixels, as int64."""
    from cfx.data.io import load_images

    np.save(tmp_path / "x.npy", np.full((2, 1, 8, 8), 200, dtype=np.int64))
    with pytest.raises(
        TypeError, match=r"got torch.int64 values 200..200; 8-bit pixels\? save them as uint8"
    ):
        load_images(tmp_path / "x.npy")
    for dtype in (np.int32, np.uint16):  # uint16 crashed in torch's min (a review)
        np.save(tmp_path / "x16.npy", np.full((2, 1, 8, 8), 4000, dtype=dtype))
        with pytest.raises(TypeError, match=r"values 4000..4000; divide by the data's full"):
            load_images(tmp_path / "x16.npy")
    np.save(tmp_path / "u8.npy", np.full((2, 1, 8, 8), 200, dtype=np.uint8))
    assert load_images(tmp_path / "u8.npy").flatten()[0].item() == pytest.approx(2 * 200 / 255 - 1)
    np.save(tmp_path / "pm1.npy", np.full((2, 1, 8, 8), -1, dtype=np.int64))  # still read
    assert load_images(tmp_path / "pm1.npy").min().item() == -1
