"""Decode pictures safely: one place that turns bytes into an RGB image or a clear reason why not.

Every entry point (uploads, JSON batches, catalogue rows, the embedding pass) decodes through
``decode_image``, so a picture means the same in training and in serving: the camera's EXIF
orientation is applied and transparency is composited on white (a product shot on a transparent
background is a product on white, not on black). Only an allow-list of formats is opened at all:
Pillow's rarer decoders (DDS, AVIF, TGA, ...) raise ``NotImplementedError`` or ``RuntimeError`` on
odd files, and one such picture must never take a request (or a batch of other people's requests)
down with it. Any failure of the decoder is an ``ImageError``: a reason fit to show the user.
"""

from __future__ import annotations

import io
import warnings
from typing import Self

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format names this service opens (MPO: how older Pillows name many camera JPEGs).
WANTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP")
SHOWN_FORMATS = "JPEG, PNG, WebP, GIF, BMP"
WHITE = (255, 255, 255)


class ImageError(ValueError):
    """A picture that cannot be used; the message is the reason, fit to show a user."""


class CheckedPicture(bytes):
    """A picture's bytes that passed ``decode_image``, carrying the decoded image (``image``; None
    past the caller's memory cap) so that the encoder does not decode the same bytes again. Still
    bytes: hashed, logged and stored exactly as the upload (the cache key does not change)."""

    image: Image.Image | None

    def __new__(cls, data: bytes, image: Image.Image | None) -> Self:
        picture = super().__new__(cls, data)
        picture.image = image
        return picture


def decoded_or_decode(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The image a ``CheckedPicture`` already holds, else ``decode_image`` of the bytes."""
    image = getattr(data, "image", None)
    return image if image is not None else decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode ``data`` into an upright RGB image, refusing other formats, oversize files, bombs and
    damaged files with an ``ImageError`` (never another exception: the decoder is not trusted)."""
    if not data:
        raise ImageError("the file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    try:
        image = _open(data, max_pixels)
        return _upright_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # PIL's own guard fired before ours could read the size: its limit is the one that bit.
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        raise ImageError(f"the picture decodes to more than {limit:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"not a picture this service can read ({SHOWN_FORMATS})") from None
    except MemoryError:
        raise ImageError("the picture is too large to decode") from None
    except Exception as error:  # noqa: BLE001 - OSError, SyntaxError, NotImplementedError, RuntimeError...
        # A damaged or unusual file: whatever the decoder raised, it is this picture's problem.
        raise ImageError(f"the picture is damaged or truncated ({type(error).__name__}: {str(error)[:120]})") from None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    Image.init()  # registers every plugin, so the allow-list's names resolve
    allowed = [name for name in WANTED_FORMATS if name in Image.OPEN]
    with Image.open(io.BytesIO(data), formats=allowed) as probe:
        # The header gives the size before any pixel is decoded: refuse bombs here.
        width, height = probe.size
        if width * height > max_pixels:
            raise ImageError(f"the picture is {width}x{height} pixels, over the limit of {max_pixels:,}")
        probe.verify()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=allowed)
        image.load()
    return image


def _upright_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; alpha (or a transparent palette entry) composited on white."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
