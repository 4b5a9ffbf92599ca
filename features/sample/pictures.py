"""The SYNTHETIC sample's pictures: one PIL-drawn 128x128 product shot per SKU.

A picture is the other way (besides the copy) a model can see the hidden attributes (``world``):
the category's silhouette, filled with the SKU's colour and pattern, wider for oversize and narrower
for slim garments. Small jitter (background tint, colour, position, size) keeps two SKUs with the
same attributes from looking the same to an encoder, and a 14-bit "hang tag" code of the SKU number
in the top-left corner makes every picture unique (content-keyed caches never merge two SKUs).

Each picture has its own Generator seeded from ``(seed, 2, sku number)``, so a picture does not
depend on how many SKUs were drawn before it; the draws happen in a fixed order (placement, then the
pattern) that is part of the sample's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from features.sample.world import CATEGORIES, COLOURS, STYLES

IMAGE_SIZE = 128

RGB = tuple[int, int, int]

# Silhouettes in unit coordinates (x right, y down, about [-1, 1]); scaled per picture.
_POLYGONS: dict[str, list[list[tuple[float, float]]]] = {
    "tee": [[(-0.3, -0.75), (-0.12, -0.75), (0.0, -0.64), (0.12, -0.75), (0.3, -0.75), (0.78, -0.45),
             (0.62, -0.18), (0.42, -0.3), (0.42, 0.8), (-0.42, 0.8), (-0.42, -0.3), (-0.62, -0.18),
             (-0.78, -0.45)]],
    "hoodie": [[(-0.3, -0.62), (0.3, -0.62), (0.62, -0.48), (0.86, 0.55), (0.66, 0.6), (0.46, -0.02),
                (0.46, 0.8), (-0.46, 0.8), (-0.46, -0.02), (-0.66, 0.6), (-0.86, 0.55), (-0.62, -0.48)]],
    "shirt": [[(-0.26, -0.74), (-0.1, -0.74), (0.0, -0.6), (0.1, -0.74), (0.26, -0.74), (0.58, -0.6),
               (0.8, 0.55), (0.64, 0.58), (0.44, -0.1), (0.44, 0.8), (-0.44, 0.8), (-0.44, -0.1),
               (-0.64, 0.58), (-0.8, 0.55), (-0.58, -0.6)]],
    "coat": [[(-0.28, -0.82), (-0.1, -0.82), (0.0, -0.5), (0.1, -0.82), (0.28, -0.82), (0.62, -0.66),
              (0.84, 0.5), (0.66, 0.54), (0.5, -0.15), (0.52, 0.92), (-0.52, 0.92), (-0.5, -0.15),
              (-0.66, 0.54), (-0.84, 0.5), (-0.62, -0.66)]],
    "dress": [[(-0.22, -0.85), (-0.1, -0.85), (0.0, -0.72), (0.1, -0.85), (0.22, -0.85), (0.26, -0.2),
               (0.64, 0.86), (-0.64, 0.86), (-0.26, -0.2)]],
    "skirt": [[(-0.36, -0.6), (0.36, -0.6), (0.72, 0.7), (-0.72, 0.7)]],
    "jeans": [[(-0.4, -0.82), (0.4, -0.82), (0.5, 0.9), (0.13, 0.9), (0.0, -0.28), (-0.13, 0.9),
               (-0.5, 0.9)]],
    "sneakers": [[(-0.86, 0.02), (-0.8, -0.16), (-0.42, -0.24), (-0.12, -0.52), (0.18, -0.54),
                  (0.3, -0.3), (0.78, -0.08), (0.88, 0.26), (-0.86, 0.26)]],
    "bag": [[(-0.66, -0.28), (0.66, -0.28), (0.72, 0.74), (-0.72, 0.74)]],
    "hat": [],
}
_ACCENTS = ((220, 60, 60), (250, 200, 40), (60, 160, 90), (70, 110, 220), (250, 250, 250), (30, 30, 30),
            (240, 140, 180), (150, 90, 200))


def _shade(rgb: RGB, factor: float) -> RGB:
    """``rgb`` darkened (factor < 1) or lightened, clipped to 0..255: outlines, shadows, seams."""
    return tuple(int(max(0, min(255, round(c * factor)))) for c in rgb)  # type: ignore[return-value]


def _contrast(rgb: RGB) -> RGB:
    """The pattern's second colour: a darker shade of light colours, a lighter one of dark colours."""
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    if luminance > 110:
        return _shade(rgb, 0.55 if luminance < 200 else 0.45)
    return tuple(int(c + (255 - c) * 0.65) for c in rgb)  # type: ignore[return-value]


def _pattern_layer(rng: np.random.Generator, pattern: str, main: RGB) -> Image.Image:
    """The fabric: a full-size layer in ``main`` with the pattern drawn on it (cut out by the mask).

    Period, offset and blob positions are drawn from ``rng`` so the same pattern never repeats
    pixel for pixel; ``solid`` draws nothing (and takes no draws).
    """
    size = IMAGE_SIZE
    layer = Image.new("RGB", (size, size), main)
    draw = ImageDraw.Draw(layer)
    accent = _contrast(main)
    if pattern == "stripes":
        period = int(rng.integers(9, 14))
        band = max(3, period // 2 - 1)
        for y in range(int(rng.integers(0, period)) - period, size, period):
            draw.rectangle((0, y, size, y + band - 1), fill=accent)
    elif pattern == "plaid":
        period = int(rng.integers(13, 18))
        offset = int(rng.integers(0, period))
        for v in range(offset - period, size, period):
            draw.rectangle((0, v, size, v + 2), fill=accent)
            draw.rectangle((v, 0, v + 2, size), fill=accent)
        second = _accent_pick(rng, main)
        for v in range(offset - period + period // 2, size, period):
            draw.line((0, v, size, v), fill=second, width=1)
            draw.line((v, 0, v, size), fill=second, width=1)
    elif pattern == "dots":
        period = int(rng.integers(10, 14))
        radius = int(rng.integers(2, 4))
        ox, oy = (int(v) for v in rng.integers(0, period, 2))
        for row, y in enumerate(range(oy - period, size + period, period)):
            shift = period // 2 if row % 2 else 0
            for x in range(ox - period + shift, size + period, period):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)
    elif pattern == "print":
        blobs = int(rng.integers(16, 22))
        centres = rng.integers(size // 5, size - size // 5, (blobs, 2))
        radii = rng.integers(4, 9, blobs)
        for (x, y), r in zip(centres.tolist(), radii.tolist()):
            colour = _accent_pick(rng, main)
            draw.ellipse((x - r, y - r * 0.7, x + r, y + r * 0.7), fill=colour)
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=accent)
    return layer


def _accent_pick(rng: np.random.Generator, main: RGB) -> RGB:
    """A print / plaid accent visibly different from ``main`` (4 tries, then a shade of it)."""
    for _ in range(4):
        colour = _ACCENTS[int(rng.integers(0, len(_ACCENTS)))]
        if sum(abs(a - b) for a, b in zip(colour, main)) > 120:
            return colour
    return _contrast(main)


@dataclass(frozen=True)
class _Placement:
    """Where the silhouette sits: centre, size and horizontal stretch, in pixels."""

    cx: float
    cy: float
    radius: float
    width: float

    def px(self, x: float, y: float) -> tuple[float, float]:
        """Unit coordinates of a silhouette point -> pixel coordinates."""
        return (self.cx + x * self.radius * self.width, self.cy + y * self.radius)


def _placement(rng: np.random.Generator, shape: str, style: str) -> _Placement:
    """Jittered centre and size; garments are stretched by their style (oversize / slim)."""
    size = IMAGE_SIZE
    cx = size / 2 + float(rng.uniform(-6, 6))
    cy = size / 2 + float(rng.uniform(-5, 5))
    radius = size * 0.40 * float(rng.uniform(0.9, 1.06))
    width = STYLES[style].width if shape not in ("sneakers", "bag", "hat") else 1.0
    width *= float(rng.uniform(0.97, 1.03))
    return _Placement(cx, cy, radius, width)


def _silhouette(shape: str, at: _Placement) -> Image.Image:
    """The item's mask (255 inside): its polygon plus the parts a polygon cannot draw."""
    size = IMAGE_SIZE
    px = at.px
    mask = Image.new("L", (size, size), 0)
    m = ImageDraw.Draw(mask)
    for polygon in _POLYGONS[shape]:
        m.polygon([px(x, y) for x, y in polygon], fill=255)
    if shape == "hoodie":
        m.ellipse((*px(-0.3, -0.92), *px(0.3, -0.45)), fill=255)
    elif shape == "hat":
        m.ellipse((*px(-0.88, 0.05), *px(0.88, 0.32)), fill=255)
        m.chord((*px(-0.55, -0.55), *px(0.55, 0.55)), 180, 360, fill=255)
        m.rectangle((*px(-0.55, -0.02), *px(0.55, 0.12)), fill=255)
    if shape == "sneakers":
        m.rectangle((*px(-0.88, 0.26), *px(0.9, 0.42)), fill=255)
    return mask


def _details(draw: ImageDraw.ImageDraw, shape: str, at: _Placement, main: RGB) -> None:
    """Seams, buttons, soles, straps: the lines that make a silhouette read as its category."""
    px = at.px
    line = _shade(main, 0.6) if sum(main) > 150 else (95, 95, 100)
    if shape == "sneakers":
        draw.rectangle((*px(-0.88, 0.26), *px(0.9, 0.42)), fill=(236, 234, 228), outline=(150, 150, 150))
        for k in range(3):
            draw.line((*px(-0.2 + 0.12 * k, -0.38 + 0.06 * k), *px(-0.05 + 0.12 * k, -0.3 + 0.06 * k)),
                      fill=line, width=2)
    elif shape == "bag":
        draw.arc((*px(-0.36, -0.78), *px(0.36, 0.16)), 180, 360, fill=_shade(main, 0.7), width=5)
        draw.line((*px(-0.69, 0.05), *px(0.69, 0.05)), fill=line, width=1)
    elif shape == "hoodie":
        draw.line((*px(-0.28, 0.35), *px(0.28, 0.35)), fill=line, width=1)
        draw.line((*px(-0.05, -0.45), *px(-0.05, -0.2)), fill=line, width=1)
        draw.line((*px(0.05, -0.45), *px(0.05, -0.2)), fill=line, width=1)
    elif shape in ("shirt", "coat"):
        top = -0.6 if shape == "shirt" else -0.5
        draw.line((*px(0.0, top), *px(0.0, 0.8)), fill=line, width=1)
        for k in range(5 if shape == "shirt" else 3):
            bx, by = px(0.04, top + 0.12 + 0.25 * k)
            draw.ellipse((bx - 1.5, by - 1.5, bx + 1.5, by + 1.5), fill=line)
    elif shape == "jeans":
        draw.line((*px(-0.4, -0.68), *px(0.4, -0.68)), fill=line, width=1)
        draw.line((*px(0.0, -0.68), *px(0.0, -0.28)), fill=line, width=1)
    elif shape == "skirt":
        draw.rectangle((*px(-0.36, -0.6), *px(0.36, -0.5)), fill=_shade(main, 0.8))


def _hang_tag(draw: ImageDraw.ImageDraw, number: int) -> None:
    """The SKU number in 14+ bits, top-left, so no two pictures are the same."""
    bits = max(14, int(number).bit_length())
    for b in range(bits):
        if (number >> b) & 1:
            draw.line((3 + 2 * b, 2, 3 + 2 * b, 5), fill=(120, 120, 120))


def render_picture(
    category: str, colour: str, pattern: str, style: str, *, number: int, seed: int
) -> Image.Image:
    """Draw one product picture: the category's silhouette in its colour and pattern, jittered.

    ``number`` (the SKU's number) and ``seed`` fix the jitter and the corner hang-tag code.
    """
    rng = np.random.default_rng([seed, 2, number])
    size = IMAGE_SIZE
    shape = CATEGORIES[category].shape
    bg = tuple(int(v) for v in 242 + rng.integers(-7, 8, 3))
    main = tuple(int(v) for v in np.clip(np.array(COLOURS[colour].rgb) + rng.integers(-10, 11, 3), 0, 255))
    at = _placement(rng, shape, style)
    mask = _silhouette(shape, at)

    picture = Image.new("RGB", (size, size), bg)
    left, _, right, bottom = mask.getbbox() or (0, 0, size, size)
    floor = min(size - 4, bottom + 1)  # a soft floor shadow under the item
    ImageDraw.Draw(picture).ellipse((left + 4, floor - 3, right - 4, floor + 3), fill=_shade(bg, 0.9))
    layer = _pattern_layer(rng, pattern, main)
    picture.paste(layer, (0, 0), mask)

    edge = mask.filter(ImageFilter.FIND_EDGES)
    picture.paste(_shade(main, 0.55) if sum(main) > 150 else (90, 90, 95), (0, 0), edge)
    draw = ImageDraw.Draw(picture)
    _details(draw, shape, at, main)
    _hang_tag(draw, number)
    return picture


def save_png(picture: Image.Image, path: Path) -> None:
    """PNG with fixed settings (no optimiser pass, level 3): same picture, same bytes, and fast."""
    picture.save(path, format="PNG", optimize=False, compress_level=3)
