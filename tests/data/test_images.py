"""read_image: every Pillow mode to uint8[H, W, 3] (scaled, never clipped) or refused by name; EXIF
orientation; truncated, corrupt and missing files named. Known answers computed here from the pixels."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from minimrcnn.data.images import ImageReadError, read_image, read_image_size

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (6, 9), dtype=np.uint8)            # [H, W]
RGB = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)          # [H, W, 3]


def grey3(grey):
    return np.repeat(grey[:, :, None], 3, axis=2)


def save(tmp_path, image, name):
    path = str(tmp_path / name)
    image.save(path)
    return path


# mode -> (the image, the file name to save it as, the expected uint8[H, W, 3])
BITS = GREY > 127
PALETTE = Image.fromarray(RGB).quantize(16)


def cases():
    rgba = np.concatenate([RGB, GREY[:, :, None]], axis=2)
    la = np.stack([GREY, 255 - GREY], axis=2)
    return {
        "1": (Image.fromarray(BITS), "a.png", grey3(BITS.astype(np.uint8) * 255)),
        "L": (Image.fromarray(GREY), "a.png", grey3(GREY)),
        "LA": (Image.fromarray(la, "LA"), "a.png", grey3(GREY)),                    # alpha dropped
        "P": (PALETTE, "a.png", np.asarray(PALETTE.convert("RGB"))),                # the palette's colours
        "RGB": (Image.fromarray(RGB), "a.png", RGB),
        "RGBA": (Image.fromarray(rgba, "RGBA"), "a.png", RGB),                      # alpha dropped, not blended
        "CMYK": (Image.fromarray(RGB).convert("CMYK"), "a.tif", RGB),               # Pillow's naive CMYK is exact
        # the 16-bit twin of an 8-bit image (v * 257) reads back as the 8-bit image, not as white
        "I;16": (Image.fromarray(GREY.astype(np.uint16) * 257), "a.png", grey3(GREY)),
        "I;16 TIFF": (Image.fromarray(GREY.astype(np.uint16) * 257), "a.tif", grey3(GREY)),
    }


@pytest.mark.parametrize("mode", list(cases()))
def test_each_mode_reads_as_rgb_uint8(tmp_path, mode):
    image, name, expected = cases()[mode]
    assert image.mode == mode.split()[0]
    path = save(tmp_path, image, name)
    assert Image.open(path).mode == mode.split()[0]        # the file really holds that mode
    got = read_image(path)
    assert got.dtype == np.uint8 and got.shape == (6, 9, 3) and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, expected)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 128, 257, 32767, 32768, 65535]], dtype=np.uint16)
    got = read_image(save(tmp_path, Image.fromarray(values), "a.png"))[0, :, 0]
    # round(v * 255 / 65535); Pillow's own convert("RGB") would give 0, 128, 255, 255, 255, 255
    assert got.tolist() == [0, 0, 1, 127, 128, 255]


@pytest.mark.parametrize("mode,array", [("I", GREY.astype(np.int32) * 257), ("F", GREY.astype(np.float32) / 255)])
def test_modes_without_a_standard_range_are_refused_by_name(tmp_path, mode, array):
    path = save(tmp_path, Image.fromarray(array), "a.tif")
    assert Image.open(path).mode == mode
    with pytest.raises(ImageReadError, match=rf"cannot read image .*a\.tif: Pillow mode '{mode}': .*no standard range"):
        read_image(path)


def test_sixteen_bit_png_opened_as_mode_I_reads_as_sixteen_bit(tmp_path, monkeypatch):
    """Pillow before 11 opens 16-bit grey PNGs as mode I; such a file is read as I;16."""
    path = save(tmp_path, Image.fromarray(GREY.astype(np.uint16) * 257), "a.png")
    original = Image.open

    def open_as_mode_i(p, *args, **kwargs):
        pil = original(p, *args, **kwargs)
        pil.load()
        widened = Image.fromarray(np.asarray(pil).astype(np.int32))       # mode I, as old Pillow gives
        widened.format = pil.format
        return widened

    monkeypatch.setattr(Image, "open", open_as_mode_i)
    np.testing.assert_array_equal(read_image(path), grey3(GREY))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    image = Image.fromarray(RGB)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = str(tmp_path / "a.png")
    image.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = read_image(path)
    np.testing.assert_array_equal(got, expected)
    turned = orientation >= 5
    assert got.shape[:2] == ((9, 6) if turned else (6, 9))
    assert read_image_size(path) == ((6, 9) if turned else (9, 6))          # (W, H) upright
    assert read_image_size(path, upright=False) == (9, 6)


def test_exif_orientation_of_a_jpeg(tmp_path):
    image = Image.fromarray(np.kron(RGB, np.ones((4, 4, 1), np.uint8)))     # 24 x 36, blocks survive JPEG
    exif = image.getexif()
    exif[0x0112] = 6                                                        # "rotate 90 CW to view"
    path = str(tmp_path / "a.jpg")
    image.save(path, exif=exif, quality=95)
    stored = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(read_image(path), np.rot90(stored, -1))   # clockwise
    assert read_image_size(path) == (24, 36)


def test_truncated_png_is_named(tmp_path):
    path = save(tmp_path, Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "cut.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])           # header intact, pixel data cut off
    assert read_image_size(path) == (64, 64)                  # the header alone cannot tell
    with pytest.raises(ImageReadError, match=r"cannot read image .*cut\.png: OSError: .*truncated"):
        read_image(path)


@pytest.mark.parametrize("content,reason", [(None, "no such file"), (b"not an image at all", "UnidentifiedImageError"),
                                            ("folder", "it is a folder")])
def test_missing_and_non_image_files_are_named(tmp_path, content, reason):
    path = tmp_path / "x.png"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    for read in (read_image, read_image_size):
        with pytest.raises(ImageReadError, match=rf"cannot read image .*x\.png: {reason}"):
            read(str(path))
