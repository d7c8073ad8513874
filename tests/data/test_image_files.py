"""cfx.data.image_files: users' image and mask files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cfx.data.image_files import (
    check_input_path,
    file_channels,
    load_masks_for,
    mask_files,
    read_image,
    read_images,
    read_mask,
)


def _save(path, array):
    Image.fromarray(array).save(path)
    return path


def test_a_mask_file_is_true_where_it_is_not_zero_whatever_its_one_value(tmp_path):
    region = np.zeros((4, 5), dtype=bool)
    region[1:3, 2:4] = True
    for value, dtype in ((1, np.uint8), (255, np.uint8), (65535, np.uint16)):
        path = _save(tmp_path / f"m{value}.png", (region * value).astype(dtype))
        m = read_mask(path, (4, 5))
        assert m.shape == (1, 1, 4, 5) and m.dtype == torch.bool
        assert np.array_equal(m[0, 0].numpy(), region), value
    rgb = np.stack([region * 255] * 3, axis=-1).astype(np.uint8)  # a colour PNG of a mask
    assert np.array_equal(read_mask(_save(tmp_path / "c.png", rgb), (4, 5))[0, 0].numpy(), region)
    empty = read_mask(_save(tmp_path / "e.png", np.zeros((4, 5), np.uint8)), (4, 5))
    assert not empty.any()


def test_a_mask_file_with_more_values_or_another_size_is_refused(tmp_path):
    soft = np.zeros((4, 5), dtype=np.uint8)
    soft[1, 1], soft[2, 2] = 128, 255  # an anti-aliased edge, or JPEG's compression
    with pytest.raises(ValueError, match=r"soft.png holds 3 distinct values"):
        read_mask(_save(tmp_path / "soft.png", soft), (4, 5))
    flat = np.full((4, 5), 7, dtype=np.uint8)
    read_mask(_save(tmp_path / "flat.png", flat), (4, 5))  # all region: one value is fine
    two = np.full((4, 5), 7, dtype=np.uint8)
    two[0, 0] = 9  # two values, neither of them 0: which is the background?
    with pytest.raises(ValueError, match=r"two.png holds 7 and 9, neither 0"):
        read_mask(_save(tmp_path / "two.png", two), (4, 5))
    with pytest.raises(ValueError, match=r"flat.png is 5x4 pixels; its image is 6x4"):
        read_mask(tmp_path / "flat.png", (4, 6))


def test_mask_files_are_matched_to_images_by_name(tmp_path, caplog):
    images, masks = tmp_path / "img", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    grey = np.zeros((4, 4), np.uint8)
    files = [_save(images / n, grey) for n in ("b.jpg", "a.png")]
    for n in ("a.png", "b.png", "c.png"):  # c has no image: not asked for
        _save(masks / n, grey)
    with caplog.at_level("WARNING"):
        assert [f.name for f in mask_files(files, masks)] == ["b.png", "a.png"]
    said = [r.getMessage() for r in caplog.records]  # c.png was ignored in silence
    assert len(said) == 1 and "has 1 mask file(s) named as no image, not used: c.png" in said[0]
    _save(images / "d.png", grey)
    with pytest.raises(ValueError, match=r"no mask file named as d.png"):
        mask_files([*files, images / "d.png"], masks)
    _save(masks / "a.bmp", grey)
    with pytest.raises(ValueError, match=r"two masks for one image: a.bmp and a.png"):
        mask_files(files, masks)
    assert mask_files(files[:1], masks / "c.png") == [masks / "c.png"]  # one file, one image
    with pytest.raises(ValueError, match="is one file, for 2 images"):
        mask_files(files, masks / "c.png")


def test_images_read_at_their_own_size_must_agree(tmp_path):
    a = _save(tmp_path / "a.png", np.full((4, 6), 255, np.uint8))
    b = _save(tmp_path / "b.png", np.zeros((4, 6), np.uint8))
    x = read_images([a, b], channels=1)
    assert x.shape == (2, 1, 4, 6)
    assert x[0].unique().tolist() == [1.0] and x[1].unique().tolist() == [-1.0]
    rgb = read_images([a], channels=3)  # grey repeated into the three channels
    assert rgb.shape == (1, 3, 4, 6) and bool((rgb == 1.0).all())
    c = _save(tmp_path / "c.png", np.zeros((6, 4), np.uint8))
    with pytest.raises(ValueError, match=r"a.png is 6x4 pixels, c.png is 4x6"):
        read_images([a, c], channels=1)
    assert read_images([a, c], channels=1, size=(4, 6)).shape == (2, 1, 4, 6)  # resized


def test_file_channels_tells_grey_from_colour(tmp_path):
    assert file_channels(_save(tmp_path / "g.png", np.zeros((4, 4), np.uint8))) == 1
    assert file_channels(_save(tmp_path / "w.png", np.zeros((4, 4), np.uint16))) == 1
    assert file_channels(_save(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint8))) == 3


def test_a_mask_drawn_at_the_scans_size_follows_them_to_the_generators(tmp_path):
    """With resize, an 8x8 mask of 2x2 blocks is the 4x4 mask of those blocks (nearest);
    without it, another size is an error."""
    small = np.zeros((4, 4), dtype=bool)
    small[0, 3] = small[2, 1] = small[3, 3] = True
    big = small.repeat(2, 0).repeat(2, 1)
    path = _save(tmp_path / "m.png", big.astype(np.uint8) * 255)
    assert np.array_equal(read_mask(path, (4, 4), resize=True)[0, 0].numpy(), small)
    with pytest.raises(ValueError, match=r"m\.png is 8x8 pixels; its image is 4x4"):
        read_mask(path, (4, 4))


def test_a_folder_of_stretched_masks_is_warned_about_once(tmp_path, caplog):
    from cfx.data.image_files import load_masks_for

    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir(), masks.mkdir()
    files = [_save(scans / f"s{i}.png", np.zeros((64, 64), np.uint8)) for i in range(3)]
    for i in range(3):
        _save(masks / f"s{i}.png", np.eye(48, dtype=np.uint8) * 255)
    images = torch.zeros(3, 1, 32, 32)  # read at the generator's 32x32
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        got = load_masks_for(masks, images, files, "--lesion-masks", resize=True)
    assert got.shape == (3, 1, 32, 32)
    assert [r.getMessage() for r in caplog.records] == [
        "`--lesion-masks`: 3 mask file(s) are of neither their image's size nor the size read "
        "at (32x32) and were stretched as ones of the same shape: s0.png, s1.png, s2.png; "
        "check they were drawn for these images"
    ]


def test_a_mask_of_neither_size_is_stretched_with_a_warning(tmp_path, caplog):
    """A 48x48 mask for 64x64 scans passed for one 'drawn at the scans' size' because its
    shape fits, and was stretched in silence; drawn at the scans' size it says nothing."""
    path = _save(tmp_path / "box.png", np.eye(48, dtype=np.uint8) * 255)
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_mask(path, (32, 32), "--marker-mask", resize=True, drawn_on=(48, 48))
    assert not caplog.records
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        mask = read_mask(path, (32, 32), "--marker-mask", resize=True, drawn_on=(64, 64))
    assert mask.shape == (1, 1, 32, 32)
    assert [r.getMessage() for r in caplog.records] == [
        "`--marker-mask` box.png is 48x48 pixels, neither its image's size (64x64) nor the "
        "size read at (32x32): stretched to 32x32 as one of the same shape; check it was "
        "drawn for these images"
    ]


def test_a_float_image_with_nan_pixels_is_refused(tmp_path):
    unit = np.full((4, 4), 0.5, dtype=np.float32)
    unit[1, 2] = np.nan
    Image.fromarray(unit, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match=r"nan\.tif holds 1 NaN or infinite pixels"):
        read_images([tmp_path / "nan.tif"], channels=1)


def test_files_that_look_wrong_are_warned_about_once_naming_them(tmp_path, caplog):
    """Four 12-bit scans give one warning naming three and the count of the rest (it was one
    unnamed line per file); a colour photo read as grey is named, a grey one saved as RGB is
    not."""
    dark = np.zeros((4, 4), dtype=np.uint16)
    dark[1, 1] = 4000
    files = [_save(tmp_path / f"s{i}.png", dark) for i in range(4)]
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images(files, channels=1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "`--input` all 4 files (s0.png, s1.png, s2.png and 1 more): 16-bit, brightest pixel "
        "4000 of 65535 (12-bit data?): read as value / 65535, i.e. dark; rescale to the full "
        "range first"
    ]
    caplog.clear()
    dark[1, 1] = 114  # 8-bit values in a 16-bit file: the hint says so, not 12-bit
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([_save(tmp_path / "e.png", dark)], channels=1)
    assert "brightest pixel 114 of 65535 (8-bit data?)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):  # one file on its own
        read_image(tmp_path / "e.png", 1)
    assert "e.png: 16-bit, brightest pixel 114 of 65535 (8-bit data?)" in caplog.text
    caplog.clear()
    grey_rgb = np.repeat(np.arange(16, dtype=np.uint8).reshape(4, 4, 1), 3, axis=2)
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 200
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([_save(tmp_path / "g.png", grey_rgb), _save(tmp_path / "r.png", red)], 1)
    assert [r.getMessage() for r in caplog.records] == [
        "`--input` r.png: colour (RGB), read as grey: the model takes one channel"
    ]
    caplog.clear()  # two colour modes: both named (it said "RGB ... (r.png's)", dangling)
    Image.fromarray(np.dstack([red, np.full((4, 4), 255, np.uint8)])).save(tmp_path / "a.png")
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([tmp_path / "g.png", tmp_path / "r.png", tmp_path / "a.png"], 1)
    assert [r.getMessage() for r in caplog.records] == [
        "`--input` r.png, a.png: colour (RGB, RGBA), read as grey: the model takes one channel"
    ]


def test_grey_files_read_as_colour_and_skipped_entries_are_named(tmp_path, caplog):
    """Colour read as grey was named, grey expanded to colour was not; a folder's other
    files and subfolders were skipped without a word."""
    folder = tmp_path / "scans"
    folder.mkdir()
    grey = _save(folder / "g.png", np.arange(16, dtype=np.uint8).reshape(4, 4))
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[..., 1] = 90
    _save(folder / "c.png", colour)
    (folder / "labels.csv").write_text("g.png,0\n")  # a table beside them: expected, quiet
    (folder / "scan.dcm").write_bytes(b"DICM")
    (folder / "more").mkdir()
    (folder / ".DS_Store").write_text("hidden: skipped quietly")
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        files = check_input_path(folder)
        x = read_images(files, channels=3)
    assert [f.name for f in files] == ["c.png", "g.png"]
    assert torch.equal(x[1, 0], x[1, 2])  # the grey value in every channel
    assert [r.getMessage() for r in caplog.records] == [
        f"`--input` folder {folder}: 2 entries that are no image files, skipped (more/, "
        "scan.dcm); images are .png, .jpg, .jpeg, .bmp, .tif, .tiff",
        "`--input` g.png: grey (L), read as colour with the grey value in all three channels: "
        "the model takes three",
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([grey], channels=1)
    assert caplog.records == []


def test_mask_files_that_cannot_be_the_masks_meant_are_named(tmp_path, caplog):
    label_map = np.zeros((4, 4), dtype=np.uint8)
    label_map[0, 0], label_map[1, 1] = 1, 2
    with pytest.raises(ValueError, match="a label map or a soft mask"):
        read_mask(_save(tmp_path / "map.png", label_map), (4, 4))
    Image.fromarray(label_map * 100).save(tmp_path / "m.jpg")
    with pytest.raises(ValueError, match="JPEG's compression adds values"):
        read_mask(tmp_path / "m.jpg", (4, 4))
    wide = _save(tmp_path / "wide.png", np.zeros((4, 8), np.uint8))
    with pytest.raises(ValueError, match=r"wide\.png is 8x4 pixels; its image is 4x4"):
        read_mask(wide, (4, 4), resize=True)  # another shape than the image it belongs to
    with pytest.raises(ValueError, match=r"its image is 6x4 \(read at 4x4\)"):
        read_mask(wide, (4, 4), resize=True, drawn_on=(4, 6))
    # drawn on its 8x4 scan, read at 4x4 (stretched, as the scan was): follows it
    assert read_mask(wide, (4, 4), resize=True, drawn_on=(4, 8)).shape == (1, 1, 4, 4)
    scans = tmp_path / "scans"
    scans.mkdir()
    files = [_save(scans / "a.png", np.zeros((4, 4), np.uint8))]
    with pytest.raises(ValueError, match="must be another folder than `--input`'s"):
        load_masks_for(scans, torch.zeros(1, 1, 4, 4), files)
    inverted = tmp_path / "inverted"
    inverted.mkdir()
    background = np.full((4, 4), 255, dtype=np.uint8)
    background[0, 0] = 0  # 255 = background: the 'region' is 15 of 16 pixels
    _save(inverted / "a.png", background)
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        masks = load_masks_for(inverted, torch.zeros(1, 1, 4, 4), files)
    assert int(masks.sum()) == 15
    assert "a.png covers more than half of the image: inverted (0 = region)?" in caplog.text


def test_a_missing_input_is_not_found_whatever_its_name(tmp_path):
    for missing in ("scans", "scan.png", "x.npy"):
        with pytest.raises(FileNotFoundError, match="`--input` not found"):
            check_input_path(tmp_path / missing)
    with pytest.raises(ValueError, match="must be an image file"):
        check_input_path(tmp_path / "scan.gif")  # a format cfx does not read, present or not


def test_an_exif_rotation_is_read_as_viewers_show_it(tmp_path):
    """A camera JPEG stored 6 wide x 4 high with orientation 6 (turn 90 degrees clockwise to
    show) is the 4 x 6 image every viewer shows: its top-right pixel lands bottom-right, and
    the size read from the header agrees."""
    from PIL.ExifTags import Base

    from cfx.data.image_files import image_size

    stored = np.zeros((4, 6), dtype=np.uint8)
    stored[0, 5] = 255
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[Base.Orientation] = 6
    extra = {"jpg": {"quality": 100}, "tif": {"compression": "tiff_lzw"}}
    for suffix in ("png", "jpg", "tif"):  # Pillow turns a TIFF itself, at open
        path = tmp_path / f"turned.{suffix}"
        img.save(path, exif=exif, **extra.get(suffix, {}))
        x = read_images([path], 1)
        assert x.shape == (1, 1, 6, 4) and image_size(path) == (6, 4)
        assert (x[0, 0] > 0).nonzero().tolist() == [[5, 3]]
    # a mask drawn on the shown image reads on the same pixels
    turned = np.zeros((6, 4), dtype=np.uint8)
    turned[5, 3] = 255
    mask = read_mask(_save(tmp_path / "mask.png", turned), (6, 4))
    assert mask[0, 0].nonzero().tolist() == [[5, 3]]
    # uncompressed, Pillow turns the header's size but not the pixels: refused, not shuffled
    img.save(tmp_path / "raw.tif", exif=exif, compression="raw")
    with pytest.raises(ValueError, match=r"raw\.tif is an uncompressed TIFF turned a quarter"):
        read_images([tmp_path / "raw.tif"], 1)
    exif[Base.Orientation] = 3  # half a turn: read right
    img.save(tmp_path / "half.tif", exif=exif, compression="raw")
    assert (read_images([tmp_path / "half.tif"], 1)[0, 0] > 0).nonzero().tolist() == [[3, 0]]


@pytest.mark.parametrize(
    ("orientation", "shown"),
    [(5, [5, 0]), (6, [5, 3]), (7, [0, 3]), (8, [0, 0])],
    ids=["transpose", "cw", "transverse", "ccw"],
)
def test_every_exif_quarter_turn_is_read_as_shown(tmp_path, orientation, shown):
    """Stored 6 wide x 4 high with its top-right pixel lit: each of the four EXIF orientations
    that turn a quarter shows 4 wide x 6 high, the pixel where a viewer puts it (5: transpose,
    (r, c) -> (c, r); 6: 90 degrees clockwise, -> (c, 3 - r); 7: transverse, -> (5 - c, 3 - r);
    8: counter-clockwise, -> (5 - c, r))."""
    from PIL.ExifTags import Base

    from cfx.data.image_files import image_size

    stored = np.zeros((4, 6), dtype=np.uint8)
    stored[0, 5] = 255
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[Base.Orientation] = orientation
    path = tmp_path / "turned.png"
    img.save(path, exif=exif)
    assert image_size(path) == (6, 4)
    x = read_images([path], 1)
    assert x.shape == (1, 1, 6, 4)
    assert (x[0, 0] > 0).nonzero().tolist() == [shown]


def test_file_channels_counts_every_grey_mode_as_one(tmp_path):
    grey = np.zeros((4, 4), np.uint8)
    assert file_channels(_save(tmp_path / "la.png", np.stack([grey, grey + 255], -1))) == 1  # LA
    Image.fromarray(grey).convert("1").save(tmp_path / "bw.png")  # bilevel
    assert file_channels(tmp_path / "bw.png") == 1
    Image.fromarray(grey.astype(np.float32), mode="F").save(tmp_path / "f.tif")
    assert file_channels(tmp_path / "f.tif") == 1
    assert file_channels(_save(tmp_path / "rgba.png", np.zeros((4, 4, 4), np.uint8))) == 3


def test_image_files_are_read_as_one_or_three_channels_only(tmp_path):
    path = _save(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"read as 1 or 3 channels, and the model takes 4"):
        read_images([path], channels=4)


def test_sixteen_bit_files_full_scale_and_twelve_bit_full_scale(tmp_path, caplog):
    """65535 is white (1.0) and no warning; 4095, the brightest 12-bit value, reads dark and is
    warned about; a 32-bit file above 65535 is clipped to white, with a warning."""
    full = np.zeros((4, 4), np.uint16)
    full[0, 0] = 65535
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        x = read_images([_save(tmp_path / "full.png", full)], 1)
    assert caplog.records == []
    assert float(x[0, 0, 0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(x[0, 0, 1, 1]) == -1.0
    twelve = np.zeros((4, 4), np.uint16)
    twelve[0, 0] = 4095
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([_save(tmp_path / "twelve.png", twelve)], 1)
    assert "twelve.png: 16-bit, brightest pixel 4095 of 65535" in caplog.text
    caplog.clear()
    big = np.zeros((4, 4), np.int32)
    big[0, 0] = 70000
    Image.fromarray(big, mode="I").save(tmp_path / "big.tif")
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        x = read_images([tmp_path / "big.tif"], 1)
    assert "big.tif: values up to 70000, above 16-bit full scale: they are clipped" in caplog.text
    assert float(x[0, 0, 0, 0]) == 1.0


def test_colour_read_as_grey_is_named_but_rounding_noise_is_not(tmp_path, caplog):
    near = np.zeros((4, 4, 3), np.uint8)
    near[...] = (100, 101, 102)  # a grey saved by a JPEG encoder: channels 2 apart at most
    tint = np.zeros((4, 4, 3), np.uint8)
    tint[...] = (120, 150, 120)  # a pale green: colour
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([_save(tmp_path / "near.png", near), _save(tmp_path / "tint.png", tint)], 1)
    assert [r.getMessage() for r in caplog.records] == [
        "`--input` tint.png: colour (RGB), read as grey: the model takes one channel"
    ]


def test_a_file_resized_to_its_own_aspect_is_not_called_stretched(tmp_path, caplog):
    # 16 wide x 8 high read at (H, W) = (4, 8): halved, same shape; at (8, 8) it is stretched
    wide = _save(tmp_path / "wide.png", np.zeros((8, 16), np.uint8))
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        assert read_images([wide], 1, size=(4, 8)).shape == (1, 1, 4, 8)
    assert "stretched" not in caplog.text
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([wide], 1, size=(8, 8))
    assert "`--input` wide.png: 16x8 pixels, stretched to 8x8" in caplog.text


def test_a_file_is_resized_by_averaging_not_by_picking_pixels(tmp_path):
    # a 2x2 checkerboard of black and white halved to one pixel is mid-grey: 0 in [-1, 1]
    board = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    x = read_images([_save(tmp_path / "board.png", board)], 1, size=(1, 1))
    assert x.shape == (1, 1, 1, 1) and float(x) == pytest.approx(0.0, abs=1e-6)


def test_a_float_file_below_zero_is_refused_not_clipped(tmp_path):
    unit = np.full((4, 4), 0.5, dtype=np.float32)
    unit[0, 0] = -0.5  # [-1, 1] data saved as a float TIFF: not [0, 1]
    Image.fromarray(unit, mode="F").save(tmp_path / "signed.tif")
    want = r"signed\.tif is a floating-point image with values -0\.5\.\.0\.5"
    with pytest.raises(ValueError, match=want):
        read_images([tmp_path / "signed.tif"], 1)


def test_a_signed_integer_file_is_refused_not_clipped(tmp_path):
    """A CT slice in Hounsfield units (32-bit signed TIFF) read every value below 0 as black,
    with only a notice that the file looked dark."""
    hu = np.tile(np.linspace(-1000, 1000, 8), (8, 1)).astype(np.int32)
    Image.fromarray(hu, mode="I").save(tmp_path / "ct.tif")
    want = r"ct\.tif is a signed integer image with values -1000\.\.1000 \(CT"
    with pytest.raises(ValueError, match=want):
        read_images([tmp_path / "ct.tif"], 1)


def test_a_grey_mask_with_alpha_reads_its_grey_not_its_alpha(tmp_path):
    region = np.zeros((4, 4), dtype=np.uint8)
    region[1:3, 0:2] = 255
    path = _save(tmp_path / "la.png", np.stack([region, np.full_like(region, 255)], -1))
    assert Image.open(path).mode == "LA"
    assert np.array_equal(read_mask(path, (4, 4))[0, 0].numpy(), region > 0)


def test_a_sixteen_bit_label_map_is_refused_as_a_mask(tmp_path):
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[0, 0], labels[1, 1] = 1000, 2000  # two regions: not one mask
    with pytest.raises(ValueError, match=r"map\.png holds 3 distinct values"):
        read_mask(_save(tmp_path / "map.png", labels), (4, 4))


def test_a_mask_of_exactly_half_the_image_is_not_called_inverted(tmp_path, caplog):
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir(), masks.mkdir()
    files = [_save(scans / "a.png", np.zeros((4, 4), np.uint8))]
    half = np.zeros((4, 4), np.uint8)
    half[:2] = 255  # 8 of 16 pixels: half, not more
    _save(masks / "a.png", half)
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        assert int(load_masks_for(masks, torch.zeros(1, 1, 4, 4), files).sum()) == 8
    assert "inverted" not in caplog.text


def test_the_warning_for_several_files_quotes_the_largest_figure(tmp_path, caplog):
    dim, dimmer = np.zeros((4, 4), np.uint16), np.zeros((4, 4), np.uint16)
    dim[0, 0], dimmer[0, 0] = 1000, 4000
    files = [_save(tmp_path / "a.png", dim), _save(tmp_path / "b.png", dimmer)]
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images(files, channels=1)
    assert [r.getMessage() for r in caplog.records] == [
        "`--input` all 2 files (a.png, b.png): 16-bit, brightest pixel 4000 of 65535 (12-bit "
        "data?): read as value / 65535, i.e. dark; rescale to the full range first (the "
        "largest figure)"
    ]


def test_masks_drawn_on_the_image_files_follow_them_when_resized(tmp_path):
    """An 8 wide x 4 high scan read at 4x4 (stretched): its 8x4 mask of the left half is the
    4x4 mask of the left half (nearest), not an error."""
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir(), masks.mkdir()
    files = [_save(scans / "a.png", np.zeros((4, 8), np.uint8))]
    left = np.zeros((4, 8), np.uint8)
    left[:, :4] = 255
    _save(masks / "a.png", left)
    got = load_masks_for(masks, torch.zeros(1, 1, 4, 4), files, resize=True)
    want = np.zeros((4, 4), dtype=bool)
    want[:, :2] = True
    assert got.shape == (1, 1, 4, 4) and np.array_equal(got[0, 0].numpy(), want)


def test_three_files_are_named_in_full(tmp_path, caplog):
    dark = np.zeros((4, 4), np.uint16)
    dark[0, 0] = 4000
    files = [_save(tmp_path / f"s{i}.png", dark) for i in range(3)]
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images(files, channels=1)
    assert [r.getMessage() for r in caplog.records] == [
        "`--input` all 3 files (s0.png, s1.png, s2.png): 16-bit, brightest pixel 4000 of 65535 "
        "(12-bit data?): read as value / 65535, i.e. dark; rescale to the full range first"
    ]


def test_a_mask_batch_for_numbered_files_is_warned_about(tmp_path, caplog):
    """Masks given as one .npy batch go to a folder's files by position, in text order."""
    from cfx.data.image_files import load_masks_for

    files = [tmp_path / f"s{i}.png" for i in sorted(range(11), key=str)]  # s0, s1, s10, s2
    images = torch.zeros(11, 1, 4, 4)
    np.save(tmp_path / "m.npy", np.zeros((11, 1, 4, 4), dtype=np.uint8))
    with caplog.at_level("WARNING"):
        load_masks_for(tmp_path / "m.npy", images, files, "--masks")
    assert "`--masks` is matched to the image files by position" in caplog.text
    # the remedy is one for masks: a CSV of file names and labels cannot hold them
    assert "a folder of files named like the images" in caplog.text
    assert "file name,label" not in caplog.text


def test_a_colour_mask_is_read_by_its_colours_not_their_brightness(tmp_path):
    """A region stored as (1, 0, 0) or (0, 0, 3), or painted black on a transparent layer,
    turned 0 in grey: an empty mask, read as 'no region' without a word."""
    region = np.zeros((4, 5), dtype=bool)
    region[1:3, 2:4] = True
    for k, colour in enumerate([(1, 0, 0), (0, 0, 3), (200, 10, 10)]):
        rgb = np.zeros((4, 5, 3), np.uint8)
        rgb[region] = colour
        got = read_mask(_save(tmp_path / f"c{k}.png", rgb), (4, 5))[0, 0].numpy()
        assert np.array_equal(got, region), colour
    painted = np.zeros((4, 5, 4), np.uint8)
    painted[region] = (0, 0, 0, 255)  # black paint on a transparent layer
    got = read_mask(_save(tmp_path / "layer.png", painted), (4, 5))[0, 0].numpy()
    assert np.array_equal(got, region)
    two = np.zeros((4, 5, 3), np.uint8)
    two[:] = (0, 0, 9)
    two[region] = (5, 0, 0)
    with pytest.raises(ValueError, match=r"two.png holds the colours .* neither black"):
        read_mask(_save(tmp_path / "two.png", two), (4, 5))
    three = np.zeros((4, 5, 3), np.uint8)
    three[0, 0], three[1, 1] = (1, 0, 0), (0, 1, 0)
    with pytest.raises(ValueError, match=r"three.png holds 3 distinct colours"):
        read_mask(_save(tmp_path / "three.png", three), (4, 5))


def test_the_readmes_python_calls_take_str_paths_and_name_bad_arguments(tmp_path):
    """image_files('scans'), read_images(['a.png'], None) and load_masks_for('truth', ...)
    failed with "'str' object has no attribute ..."; size=64 with "'int' object is not
    iterable", (0, 32) with a division by zero, [] with an IndexError."""
    from cfx.data.image_files import image_files

    (tmp_path / "scans").mkdir()
    (tmp_path / "truth").mkdir()
    for k in range(2):
        _save(tmp_path / "scans" / f"s{k}.png", np.full((8, 8), 60 * k, np.uint8))
        _save(tmp_path / "truth" / f"s{k}.png", np.eye(8, dtype=np.uint8) * 255)
    files = image_files(str(tmp_path / "scans"))
    x = read_images([str(f) for f in files], None)
    assert x.shape == (2, 1, 8, 8)
    masks = load_masks_for(str(tmp_path / "truth"), x, [str(f) for f in files])
    assert masks.shape == (2, 1, 8, 8) and int(masks.sum()) == 16
    with pytest.raises(
        TypeError,
        match=r"`size` must be None or \(H, W\), two positive ints, "
        "got 64",
    ):
        read_images(files, 1, 64)
    with pytest.raises(ValueError, match=r"`size` must be .* got \(0, 32\)"):
        read_images(files, 1, (0, 32))
    with pytest.raises(ValueError, match="`files` must name at least one image file, got none"):
        read_images([], 1)
    with pytest.raises(TypeError, match="`files` must be a list of image file paths"):
        read_images(str(files[0]), 1)
    assert read_images(files, 1, (np.int64(4), np.int64(4))).shape == (2, 1, 4, 4)


def test_a_phones_two_frame_jpeg_is_not_called_a_stack(tmp_path, caplog):
    """An MPO JPEG (a photo with its preview or gain map) was warned about as "2 page(s)
    (a stack?)" with advice to save the slices as a .npy batch."""
    first = Image.fromarray(np.full((8, 8, 3), 100, np.uint8))
    second = Image.fromarray(np.full((8, 8, 3), 20, np.uint8))
    path = tmp_path / "phone.jpg"
    first.save(path, format="MPO", save_all=True, append_images=[second])
    assert Image.open(path).format == "MPO" and Image.open(path).n_frames == 2
    with caplog.at_level("WARNING"):
        x = read_image(path, 3)
    assert x.shape == (1, 3, 8, 8) and "page" not in caplog.text


def _grey16_alpha_png(path, grey):
    """A 16-bit grey PNG with an opaque alpha channel (colour type 4), which Pillow cannot
    write: ``grey`` (H, W) uint16, stored big-endian as PNG asks."""
    import struct
    import zlib

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    h, w = grey.shape
    pixels = np.stack([grey, np.full_like(grey, 65535)], -1).astype(">u2").reshape(h, 2 * w)
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter 0 on every row
    header = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def test_a_sixteen_bit_grey_png_with_alpha_is_grey_at_eight_bits_and_says_so(tmp_path, caplog):
    """Pillow opens a 16-bit grey+alpha PNG as 8-bit RGBA (each value's high byte): it was
    called colour (file_channels 3; 'grey read as colour' notices did not fire) and 12-bit data
    read nearly black in silence, where the same data without alpha is warned about."""
    grey = np.zeros((4, 4), np.uint16)
    grey[0, 0], grey[0, 1] = 4095, 65535
    path = _grey16_alpha_png(tmp_path / "la16.png", grey)
    assert file_channels(path) == 1
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        x = read_images([path], 1)
    assert (
        "la16.png: 16-bit grey with an alpha channel, which Pillow reads at 8 bits (brightest "
        "pixel 255 of 255" in caplog.text
    )
    # the high bytes: 4095 -> 15, 65535 -> 255, read on the 8-bit scale
    assert float(x[0, 0, 0, 0]) == pytest.approx(15 / 255 * 2 - 1, abs=1e-6)
    assert float(x[0, 0, 0, 1]) == 1.0
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.data.image_files"):
        read_images([path], 3)
    assert "la16.png: grey (LA), read as colour" in caplog.text


def test_a_file_above_pillows_pixel_limit_and_a_folder_of_class_folders_are_named(
    tmp_path, monkeypatch
):
    """A whole-slide-sized image failed with a DecompressionBombError traceback in every
    command reading images; a folder of one subfolder per class said only 'holds no image
    files' (session-53 audit)."""
    from PIL import Image as PILImage

    big = _save(tmp_path / "big.png", np.zeros((40, 40), np.uint8))
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 500)  # 1,600 pixels: over twice it
    for read in (lambda: file_channels(big), lambda: read_image(big, 1)):
        with pytest.raises(ValueError, match=r"big\.png is too large for Pillow to open"):
            read()
    monkeypatch.undo()
    classes = tmp_path / "classes"
    for name in ("healthy", "tumour"):
        (classes / name).mkdir(parents=True)
        _save(classes / name / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"its subfolders \(healthy/, tumour/\) are not read"):
        read_images(check_input_path(classes), 1)
