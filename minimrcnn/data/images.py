"""Image files -> uint8[H, W, 3] RGB: the one reader of images on disk.

``predict``, the COCO reader (``CocoDataset``) and the shapes export's round trip all
read through ``read_image``; ``read_image_size`` reads only the header (and the EXIF tag).

EXIF orientation is applied, as detectron2 and ultralytics do and as image viewers and
labelling tools show a photo: a JPEG from a phone held upright comes out upright, and its
COCO ``width``/``height`` must be those of the upright image. (torchvision's
``read_image`` applies it only when asked, ``apply_exif_orientation=True``.)

What each Pillow mode becomes (every value scaled to 0..255, never clipped):

  ======================  =====================================================
  1 (1-bit)               0 -> 0, 1 -> 255, in all three channels
  L (8-bit grey)          the grey value in all three channels
  LA, PA, RGBA, RGBa      the colour; alpha is dropped, not blended with a
                          background (as torchvision's ``ImageReadMode.RGB``)
  P (palette)             the palette's colours
  RGB                     as stored (48-bit PNGs arrive here as the high bytes)
  CMYK, YCbCr, LAB, HSV   Pillow's conversion to RGB
  I;16, I;16B, I;16L,     16-bit grey (16-bit PNGs and TIFFs): round(v * 255 / 65535),
  I;16N                   so the 16-bit twin of an 8-bit image (v * 257) reads back
                          exactly as the 8-bit image
  I (32-bit integer)      from a PNG (older Pillow opens 16-bit PNGs so): as I;16.
                          Otherwise refused: 32-bit integers have no standard range
  F (32-bit float)        refused: floats have no standard range (Pillow's own
                          conversions use 0..255, most tools 0..1)
  ======================  =====================================================

A refusal, a missing file, a truncated or corrupt file: ``ImageReadError`` (a ValueError)
naming the file.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
REFUSED_MODES = {
    "I": "32-bit integer pixels have no standard range to map onto 0..255",
    "F": "32-bit float pixels have no standard range to map onto 0..255 (Pillow's conversions use 0..255, "
         "most tools 0..1)",
}
# EXIF orientations 5..8 turn the image a quarter: the upright image is H x W of the stored W x H.
_QUARTER_TURNS = (5, 6, 7, 8)
_ORIENTATION_TAG = 0x0112


class ImageReadError(ValueError):
    """An image file that cannot be read, or whose mode is refused; the message names the file."""


def _fail(path: str, reason: str) -> ImageReadError:
    return ImageReadError(f"cannot read image {path}: {reason}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    return f"{type(exc).__name__}: {exc}"


def _exif_orientation(pil: Image.Image, decoded: bool = True) -> int:
    """The EXIF orientation tag, 1 (as stored) when absent or malformed.

    Undecoded PNGs: only an eXIf chunk ahead of the pixels is seen (Pillow's ``getexif`` would
    decode the whole image to look behind them); ``CocoDataset`` checks the decoded shape.
    """
    if not decoded and pil.format == "PNG" and "exif" not in pil.info:
        return 1
    try:
        value = pil.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block: Pillow would fail to apply it too; read it as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_image_size(path: str, upright: bool = True) -> tuple[int, int]:
    """(width, height) of the upright image (``upright=False``: as stored), from the header:
    nothing is decoded.

    Raises ValueError naming ``path`` if the file is missing or not an image Pillow knows.
    """
    try:
        with Image.open(path) as pil:
            width, height = pil.size
            turned = _exif_orientation(pil, decoded=False) in _QUARTER_TURNS
    except Exception as exc:   # FileNotFoundError, UnidentifiedImageError, DecompressionBombError, ...
        raise _fail(path, _reason(exc)) from None
    return (height, width) if turned and upright else (width, height)


def read_image(path: str) -> np.ndarray:
    """uint8[H, W, 3] RGB of the image file ``path``, upright (EXIF orientation applied).

    Every pixel is decoded, so a truncated or corrupt file fails here, naming the file.
    Modes are converted as the module docstring's table says; I (outside PNG) and F are
    refused with their name.
    """
    try:
        with Image.open(path) as pil:
            pil.load()                         # decode every pixel now: truncated data fails here
            array = _to_rgb(pil, path)
            orientation = _exif_orientation(pil)
    except ImageReadError:
        raise
    except Exception as exc:   # OSError "image file is truncated", SyntaxError, zlib.error, ...
        raise _fail(path, _reason(exc)) from None
    if orientation != 1:
        array = _orient(array, orientation)
    return np.ascontiguousarray(array)


def _to_rgb(pil: Image.Image, path: str) -> np.ndarray:
    mode = pil.mode
    if mode == "I" and pil.format == "PNG":
        mode = "I;16"                          # Pillow < 11 opens 16-bit grey PNGs as I
    if mode in SIXTEEN_BIT_MODES:
        grey = np.asarray(pil).astype(np.float64)                         # [H, W] in 0..65535
        grey = np.rint(grey * (255.0 / 65535.0)).astype(np.uint8)        # scaled, not clipped
        return np.repeat(grey[:, :, None], 3, axis=2)                   # [H, W, 3]
    if mode in REFUSED_MODES:
        raise _fail(path, f"Pillow mode {mode!r}: {REFUSED_MODES[mode]}; save it as 8-bit (L or RGB) or "
                          "16-bit grey (I;16) instead")
    if mode != "RGB":
        try:
            pil = pil.convert("RGB")
        except ValueError as exc:
            raise _fail(path, f"Pillow mode {mode!r} has no conversion to RGB ({exc})") from None
    return np.asarray(pil, dtype=np.uint8)


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 2..8 to [H, W, 3], as ``PIL.ImageOps.exif_transpose``."""
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}[orientation]
    return np.asarray(Image.fromarray(array).transpose(method))


__all__ = ["ImageReadError", "read_image", "read_image_size"]
