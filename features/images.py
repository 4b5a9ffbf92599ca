"""Decode pictures safely: one place that turns bytes into an RGB image or a clear reason why not.

Every entry point (uploads, JSON batches, catalogue rows, the embedding pass) decodes through
``decode_image``, so a picture means the same in training and in serving: the camera's EXIF
orientation is applied and transparency is composited on white (a product shot on a transparent
background is a product on white, not on black). Only an allow-list of formats is opened at all:
Pillow's rarer decoders (DDS, AVIF, TGA, ...) raise ``NotImplementedError`` or ``RuntimeError`` on
odd files, and one such picture must never take a request (or a batch of other people's requests)
down with it. Any failure of the decoder is an ``ImageError``: a reason fit to show the user.

A picture is measured by its header before any pixel buffer exists: its area, its longer side and
how elongated it is each have a limit (settings ``max_image_pixels``, ``max_image_side``,
``max_image_aspect``). The area alone is not enough: a 69-byte PNG declaring 1 x 100,000 pixels has
a small area, yet a picture that long is no product shot, and every pixel spent on it is waste.
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Self

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


def check_shape(width: int, height: int, *, max_pixels: int, max_side: int, max_aspect: float) -> None:
    """Refuse a declared size over any limit, naming the size and the limit it breaks."""
    size, longer, shorter = f"{width}x{height}", max(width, height), min(width, height)
    if width * height > max_pixels:
        raise ImageError(f"the picture is {size} pixels, over the limit of {max_pixels:,}")
    if longer > max_side:
        raise ImageError(f"the picture is {size} pixels: a side is longer than the limit of {max_side:,} pixels")
    if longer > max_aspect * shorter:
        raise ImageError(f"the picture is {size} pixels: one side is more than {max_aspect:g} times the other")


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, max_side: int | None = None,
                 max_aspect: float | None = None, draft: int | None = None) -> Image.Image:
    """Decode ``data`` into an upright RGB image, refusing other formats, oversize files, bombs and
    damaged files with an ``ImageError`` (never another exception: the decoder is not trusted).

    ``max_side`` / ``max_aspect`` default to the process's settings, so every caller applies them.
    ``draft``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale while both sides stay at least this
    long (the DCT does the shrinking: less memory and time). Only for callers that keep no pixels
    for an encoder (validation, thumbnails): an embedding is always made from the full picture."""
    if not data:
        raise ImageError("the file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if max_side is None or max_aspect is None:
        from features.config import get_settings

        settings = get_settings()
        max_side = settings.max_image_side if max_side is None else max_side
        max_aspect = settings.max_image_aspect if max_aspect is None else max_aspect
    try:
        image = _open(data, {"max_pixels": max_pixels, "max_side": max_side, "max_aspect": max_aspect}, draft)
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


def _open(data: bytes, limits: dict[str, Any], draft: int | None) -> Image.Image:
    Image.init()  # registers every plugin, so the allow-list's names resolve
    allowed = [name for name in WANTED_FORMATS if name in Image.OPEN]
    with Image.open(io.BytesIO(data), formats=allowed) as probe:
        # Image.open reads the header only: the size is known before any pixel buffer exists.
        check_shape(*probe.size, **limits)
        probe.verify()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=allowed)
        if draft and image.format in ("JPEG", "MPO"):
            image.draft(None, (draft, draft))
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
