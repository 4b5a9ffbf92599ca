"""``features.images.decode_image``: an allow-list of formats, every decoder failure an
``ImageError``, EXIF orientation applied and transparency on white (the same photo rotated by its
EXIF tag, or cut out on a transparent background, must look like itself to the encoder)."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from features.images import ImageError, decode_image

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def product() -> Image.Image:
    """A non-symmetric picture: a red block in the top-left corner of a grey field."""
    image = Image.new("RGB", (60, 40), (128, 128, 128))
    image.paste((220, 20, 20), (0, 0, 20, 10))
    return image


def dds() -> bytes:
    pixel_format = struct.pack("<IIIIIIII", 32, 0x4000_0000, 0, 0, 0, 0, 0, 0)
    return b"DDS " + struct.pack("<IIIIIII", 124, 0x1007, 8, 8, 0, 0, 0) + bytes(44) + pixel_format + bytes(276)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    image = decode_image(encoded(product(), fmt), **LIMITS)
    assert image.mode == "RGB" and image.size == (60, 40)


@pytest.mark.parametrize("fmt", ["AVIF", "TIFF", "TGA", "ICO", "PPM"])
def test_formats_outside_the_allow_list_are_refused(fmt: str) -> None:
    data = encoded(product(), fmt)
    assert Image.open(io.BytesIO(data)).format is not None  # Pillow itself would open it
    with pytest.raises(ImageError, match="not a picture this service can read"):
        decode_image(data, **LIMITS)


def test_a_decoder_that_raises_not_implemented_is_an_image_error() -> None:
    with pytest.raises(NotImplementedError):  # what Pillow does with it, unguarded
        Image.open(io.BytesIO(dds())).load()
    with pytest.raises(ImageError):
        decode_image(dds(), **LIMITS)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_files_of_every_allowed_format_are_image_errors(cut: float) -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP"):
        data = encoded(product(), fmt)
        try:
            decode_image(data[: max(8, int(len(data) * cut))], **LIMITS)
        except ImageError:
            pass  # anything else (OSError, SyntaxError, ...) fails the test


def test_exif_orientation_is_applied() -> None:
    upright = product()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote (portrait sensor)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    decoded = decode_image(encoded(stored, "JPEG", exif=exif, quality=95), **LIMITS)
    assert decoded.size == upright.size
    error = np.abs(np.asarray(decoded, float) - np.asarray(upright, float)).mean()
    assert error < 6, error  # JPEG noise only


def test_transparency_is_composited_on_white_not_black() -> None:
    cut_out = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    cut_out.paste((20, 20, 220, 255), (10, 10, 30, 30))
    for fmt in ("PNG", "WEBP", "GIF"):
        image = decode_image(encoded(cut_out, fmt, **({"lossless": True} if fmt == "WEBP" else {})), **LIMITS)
        assert image.getpixel((0, 0)) == (255, 255, 255), fmt
        assert image.getpixel((20, 20))[2] > 150, fmt
    grey_alpha = Image.new("LA", (8, 8), (0, 0))
    assert decode_image(encoded(grey_alpha, "PNG"), **LIMITS).getpixel((0, 0)) == (255, 255, 255)
