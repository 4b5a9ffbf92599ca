"""Decode pictures safely: one place that turns bytes into an RGB image or a clear reason why not."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError


class ImageError(ValueError):
    """A picture that cannot be used; the message is the reason, fit to show a user."""


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode ``data`` into an RGB image, refusing oversize files, bombs and truncated files."""
    if not data:
        raise ImageError("the file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            # The header gives the size before any pixel is decoded: refuse bombs here.
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageError(
                    f"the picture is {width}x{height} pixels, over the limit of {max_pixels:,}"
                )
            probe.verify()
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # PIL's own guard fired before ours could read the size: its limit is the one that bit.
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        raise ImageError(f"the picture decodes to more than {limit:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageError("not a picture this service can read (JPEG, PNG, WebP, GIF, BMP)") from None
    except (OSError, SyntaxError, ValueError) as error:
        # PIL reports truncated or corrupt data as OSError/SyntaxError.
        raise ImageError(f"the picture is damaged or truncated ({error})") from None
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image
