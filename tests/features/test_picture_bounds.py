"""Pictures are bounded by their declared size before any pixel buffer exists: a tiny PNG declaring
1 x 100,000 pixels (area within the 40-megapixel guard) is refused by its side and its shape, with
the field and the reason in English and Chinese; squaring a picture for the encoder never builds
the padded square whole, yet gives the same bits as padding it did; and a worker fed the crafted
headers and the largest accepted shapes stays within a stated memory peak."""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from features import encoders
from features import messages as m
from features.config import Settings
from features.encoders import square_rgb
from features.images import ImageError, decode_image
from serving.predictor import InvalidSku, check_record

REPO = Path(__file__).resolve().parents[2]
LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
WORKER_PEAK_MB = 200  # stated bound of the worker below (python, numpy, PIL and the pictures: ~150 MB measured)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (8-bit grey) with one row of pixels
    behind it: a few dozen bytes that a decoder trusting the header would blow up."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 2))
            + _chunk(b"IEND", b""))


def real_png(width: int, height: int) -> bytes:
    """A complete 1-bit palette PNG of one colour (cheap to build and to send at any size)."""
    row = b"\x00" + bytes((width + 7) // 8)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", bytes((200, 30, 40)))
            + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))


# (width, height, message code, words the English reason holds)
REFUSED = [
    (1, 100_000, "side_too_long", ("1x100000", "10,000")),
    (100_000, 1, "side_too_long", ("100000x1", "10,000")),
    (1, 40_000_000, "side_too_long", ("1x40000000", "10,000")),
    (400, 9_000, "too_elongated", ("400x9000", "20 times")),
]


@pytest.mark.parametrize(("width", "height", "code", "words"), REFUSED, ids=[f"{w}x{h}" for w, h, *_ in REFUSED])
def test_a_declared_size_over_a_limit_is_refused_from_the_header(width, height, code, words) -> None:
    data = declared_png(width, height)
    assert len(data) < 100
    with pytest.raises(ImageError) as info:
        decode_image(data, **LIMITS)
    reason = str(info.value)
    assert all(word in reason for word in words), reason
    assert m.parse_reason(reason) == (code, m.parse_reason(reason)[1])
    chinese = m.reason_text(*m.parse_reason(reason), "zh")
    assert "像素" in chinese and f"{width}x{height}" in chinese and "{" not in chinese


@pytest.mark.parametrize(("width", "height", "code", "words"), REFUSED[:3], ids=[f"{w}x{h}" for w, h, *_ in REFUSED[:3]])
def test_the_upload_names_the_image_field(width, height, code, words) -> None:
    with pytest.raises(InvalidSku) as info:
        check_record({"title": "白色T恤", "cost_price": "45"}, declared_png(width, height), Settings(), [])
    assert [(p.field, m.parse_reason(p.reason)[0]) for p in info.value.problems] == [("image", code)]


def test_the_limits_are_settings_and_the_edges_are_accepted() -> None:
    settings = Settings()
    assert (settings.max_image_side, settings.max_image_aspect) == (10_000, 20.0)
    tall = decode_image(real_png(500, 10_000), **LIMITS)  # the longest side and the most elongated shape allowed
    assert tall.size == (500, 10_000)
    with pytest.raises(ImageError, match="longer than the limit of 400 pixels"):
        decode_image(real_png(500, 300), **LIMITS, max_side=400, max_aspect=20)
    with pytest.raises(ImageError, match="more than 1.5 times the other"):
        decode_image(real_png(500, 300), **LIMITS, max_side=10_000, max_aspect=1.5)


def padded(image: Image.Image, size: int) -> np.ndarray:
    """The square as it was first defined: pad to side x side on white, then resize."""
    image = image.convert("RGB")
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return np.asarray(canvas.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


@pytest.mark.parametrize("strip_rows", [None, 1, 7])
def test_squaring_gives_the_bits_of_padding(monkeypatch, strip_rows) -> None:
    """Embeddings of pictures within the limits do not change: the same bits as the whole pad,
    whatever the shape, the mode and however many strips the square is made in."""
    rng = np.random.default_rng(3)
    sizes = [(96, 96), (111, 256), (256, 111), (1, 300), (300, 1), (640, 480), (97, 13), (5, 3)]
    for width, height in sizes:
        if strip_rows is not None:
            monkeypatch.setattr(encoders, "STRIP_BYTES", 3 * max(width, height) * strip_rows)
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for image in (Image.fromarray(pixels), Image.fromarray(pixels).convert("L"),
                      Image.fromarray(pixels).convert("P", palette=Image.Palette.ADAPTIVE)):
            for size in (224, 8):
                assert np.array_equal(square_rgb(image, size), padded(image, size)), (width, height, image.mode, size)


def test_a_side_past_exact_padding_is_fitted_on_white() -> None:
    line = Image.new("RGB", (1, 100_000), (0, 0, 0))
    square = square_rgb(line, 224)
    assert square.shape == (224, 224, 3)
    dark = np.flatnonzero(square.max(axis=(0, 2)) < 0.1)
    assert dark.tolist() == [111] and np.delete(square, 111, axis=1).min() == 1.0  # a black line down the middle


WORKER = r"""
import json, sys
from pathlib import Path
from PIL import Image
from features.encoders import _normalised
from features.images import ImageError, decode_image

limits = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
sent = json.loads(sys.argv[1])
refused = []
for path in sent["refused"]:
    try:
        decode_image(Path(path).read_bytes(), **limits)
    except ImageError as error:
        refused.append(str(error))
accepted = [decode_image(Path(path).read_bytes(), **limits) for path in sent["accepted"]]
accepted += [Image.new("RGB", (1, 100_000)), Image.new("RGB", (100_000, 1))]
shapes = [list(_normalised([image], 224).shape) for image in accepted]
# VmHWM: this program's own peak (ru_maxrss would count the forking parent's pages too)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"refused": refused, "shapes": shapes, "peak_mb": peak_kb / 1024}))
"""


def test_a_worker_fed_the_worst_shapes_stays_within_its_memory_bound(tmp_path: Path) -> None:
    """The decode-and-square path in its own process under a 2 GB address-space cap (padding
    1 x 100,000 as before needed 30 GB): every crafted header refused, the largest accepted
    shapes (500 x 10,000 both ways; 1 x 100,000 made in memory) squared, and the peak resident
    memory under ``WORKER_PEAK_MB``."""
    sent: dict[str, list[str]] = {"refused": [], "accepted": []}
    for kind, shapes in (("refused", [(w, h) for w, h, *_ in REFUSED]), ("accepted", [(500, 10_000), (10_000, 500)])):
        for width, height in shapes:
            path = tmp_path / f"{width}x{height}.png"
            path.write_bytes(declared_png(width, height) if kind == "refused" else real_png(width, height))
            sent[kind].append(str(path))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(sent)], cwd=REPO, preexec_fn=cap,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [m.parse_reason(r)[0] for r in report["refused"]] == [code for *_, code, _ in REFUSED], report
    assert report["shapes"] == [[1, 224, 224, 3]] * 4
    assert report["peak_mb"] < WORKER_PEAK_MB, report
