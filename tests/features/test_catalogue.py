"""The catalogue contract: typed load, every violation reported with row, column and reason."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from features.catalogue import (
    CatalogueError,
    CatalogueSpec,
    Problem,
    load_catalogue,
    read_table,
    validate_frame,
)
from features.images import ImageError, decode_image

CURVE = [f"sales_d{d}" for d in range(1, 8)]


def assert_typed(frame: pd.DataFrame, *, target: bool = True) -> None:
    assert pd.api.types.is_datetime64_any_dtype(frame["launch_date"])
    for column in ("cost_price", "list_price", *(["sales_7d"] if target else [])):
        assert frame[column].dtype == np.float64, column
    for column in ("sku_id", "category", "title", "description", "channel"):
        assert all(isinstance(v, str) for v in frame[column]), column
    for path in frame["image_path"]:
        assert Path(path).is_absolute() and Path(path).is_file()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_good_catalogue_loads_with_typed_columns(make_catalogue, kit, fmt):
    rows = kit.catalogue_rows(6)
    path = make_catalogue(rows=rows, fmt=fmt)
    catalogue = load_catalogue(path)
    frame = catalogue.frame
    assert len(catalogue) == 6
    assert "row_error" not in frame.columns
    assert_typed(frame)
    assert frame["sku_id"].tolist() == [r["sku_id"] for r in rows]
    assert frame["cost_price"].tolist() == [float(r["cost_price"]) for r in rows]
    assert frame["sales_7d"].tolist() == [float(r["sales_7d"]) for r in rows]
    assert frame["launch_date"].iloc[1] == pd.Timestamp(rows[1]["launch_date"])
    assert catalogue.root == path.parent.resolve()
    assert frame["image_path"].iloc[0] == str((path.parent / rows[0]["image"]).resolve())
    assert catalogue.curve_columns == CURVE


def test_parquet_with_native_types_loads(tmp_path, kit):
    """Parquet keeps its own dtypes (dates, floats, ints); the contract accepts them as well."""
    rows = kit.catalogue_rows(4)
    kit.write_catalogue(tmp_path, rows, draw=True, name="unused")
    frame = pd.DataFrame(rows)
    frame["launch_date"] = pd.to_datetime(frame["launch_date"])
    frame["cost_price"] = frame["cost_price"].astype(float)
    frame["list_price"] = frame["list_price"].astype(float)
    for c in ["sales_7d", *CURVE]:
        frame[c] = frame[c].astype(int)
    frame.to_parquet(tmp_path / "typed.parquet", index=False)
    catalogue = load_catalogue(tmp_path / "typed.parquet")
    assert_typed(catalogue.frame)
    assert catalogue.frame["sales_d3"].dtype == np.float64
    assert catalogue.frame["launch_date"].tolist() == frame["launch_date"].tolist()


def test_curve_columns_found_in_numeric_order_and_typed(make_catalogue, kit):
    rows = kit.catalogue_rows(3, curve=True)
    for row in rows:  # a longer curve, columns deliberately shuffled: d10 must sort after d9
        row.update({"sales_d10": "1", "sales_d8": "2", "sales_d9": "0"})
    path = make_catalogue(rows=rows)
    catalogue = load_catalogue(path)
    assert catalogue.curve_columns == [f"sales_d{d}" for d in range(1, 11)]
    for c in catalogue.curve_columns:
        assert catalogue.frame[c].dtype == np.float64
    assert catalogue.frame["sales_d10"].tolist() == [1.0, 1.0, 1.0]
    assert CatalogueSpec(curve_prefix="week_").curve_columns(
        ["week_2", "week_1", "weekly", "week_x"]
    ) == [
        "week_1",
        "week_2",
    ]


def test_bad_curve_value_reported(make_catalogue, kit):
    rows = kit.catalogue_rows(3)
    rows[2]["sales_d4"] = "x"
    rows[0]["sales_d7"] = "-1"
    with pytest.raises(CatalogueError) as info:
        load_catalogue(make_catalogue(rows=rows))
    assert [(p.row, p.column) for p in info.value.problems] == [(1, "sales_d7"), (3, "sales_d4")]


def test_new_sku_table_loads_without_sales(make_catalogue, kit):
    rows = kit.catalogue_rows(5, curve=True)
    for row in rows:
        for c in ["sales_7d", *CURVE]:
            del row[c]
    path = make_catalogue(rows=rows)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)  # a training table needs the target
    assert info.value.problems == [Problem(None, "sales_7d", "required column is missing")]
    catalogue = load_catalogue(path, require_target=False)
    assert len(catalogue) == 5
    assert_typed(catalogue.frame, target=False)
    assert "sales_7d" not in catalogue.frame.columns
    assert catalogue.curve_columns == []


def test_new_sku_table_ignores_sales_columns_it_does_not_need(make_catalogue, kit):
    rows = kit.catalogue_rows(2)
    rows[0]["sales_7d"] = "not used"  # not checked when no target is required
    catalogue = load_catalogue(make_catalogue(rows=rows), require_target=False)
    assert len(catalogue) == 2


def test_missing_columns_reported_together(make_catalogue, kit):
    rows = kit.catalogue_rows(3)
    for row in rows:
        del row["category"]
        del row["title"]
        del row["cost_price"]  # a history may lack it altogether (features.schema.ABSENT)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(make_catalogue(rows=rows))
    problems = info.value.problems
    assert {(p.row, p.column) for p in problems} == {(None, "category"), (None, "title")}
    assert all(p.reason == "required column is missing" for p in problems)
    assert "table, column 'title': required column is missing" in str(info.value)


def _png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of one colour: tiny on disk, ``width*height`` pixels once decoded.

    Written by hand (PIL would need the whole bitmap in memory to save it).
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_every_violation_reported_at_once_with_row_column_reason(tmp_path, kit):
    folder = tmp_path / "shop"
    rows = kit.catalogue_rows(17)
    kit.write_catalogue(folder, rows, name="unused")
    good_png = kit.picture_bytes(kit.draw_picture("circle", "red", size=(120, 90)))
    good_jpeg = kit.picture_bytes(kit.draw_picture("square", "blue", size=(120, 90)), "JPEG")
    (folder / "img" / "random.png").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "img" / "half.png").write_bytes(good_png[: len(good_png) // 2])
    (folder / "img" / "half.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (tmp_path / "outside.png").write_bytes(good_png)  # exists, but outside the catalogue folder
    (folder / "img" / "bomb.png").write_bytes(_png_bomb(20_000, 20_000))

    # row numbers are 1-based data rows: rows[i] is row i+1
    rows[1]["sku_id"] = rows[0]["sku_id"]
    rows[2]["cost_price"] = "0"
    rows[3]["cost_price"] = "-4.5"
    rows[4]["cost_price"] = "abc"
    rows[5]["cost_price"] = "nan"
    rows[6]["cost_price"] = "inf"
    rows[7]["sales_7d"] = "-3"
    rows[8]["image"] = "img/nope.png"
    rows[9]["image"] = "img/random.png"
    rows[10]["image"] = "img/half.png"
    rows[11]["image"] = "img/half.jpg"
    rows[12]["image"] = "../outside.png"
    rows[13]["image"] = str((tmp_path / "outside.png").resolve())
    rows[14]["title"] = "   "
    rows[15]["description"] = "长" * 5_001
    rows[16]["image"] = "img/bomb.png"
    rows[16]["cost_price"] = ""  # absent in a history: allowed (features.schema.ABSENT)
    rows[16]["title"] = ""  # two problems in one row: both reported
    path = folder / "catalogue.csv"
    pd.DataFrame(rows).to_csv(path, index=False)

    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    problems = info.value.problems
    expected = [
        (2, "sku_id", "duplicate id 'SKU0000' (first seen in row 1)"),
        (3, "cost_price", "must be positive"),
        (4, "cost_price", "must be positive, got -4.5"),
        (5, "cost_price", "must be a number written with the digits 0-9"),
        (6, "cost_price", "must be a finite number"),
        (7, "cost_price", "must be a finite number"),
        (8, "sales_7d", "must not be negative"),
        (9, "image", "does not exist"),
        (10, "image", "not a picture"),
        (11, "image", "damaged or truncated"),
        (12, "image", "damaged or truncated"),
        (13, "image", "escapes the catalogue folder"),
        (14, "image", "must be a path relative to the catalogue folder"),
        (15, "title", "is empty"),
        (16, "description", "5,001 characters, over the limit of 5,000"),
        (17, "title", "is empty"),
        (17, "image", "pixels"),
    ]
    assert [(p.row, p.column) for p in problems] == [(r, c) for r, c, _ in expected]
    for problem, (_, _, reason) in zip(problems, expected):
        assert reason in problem.reason, (problem, reason)
    message = str(info.value)
    assert message.startswith("17 problem(s) in the catalogue")
    assert "row 5, column 'cost_price': must be a number written with the digits 0-9" in message
    # the good row survives untouched next to the bad ones
    assert all(p.row != 1 for p in problems)


def test_bad_rows_never_disappear(tmp_path, kit):
    rows = kit.catalogue_rows(6)
    kit.write_catalogue(tmp_path, rows, name="unused")
    rows[1]["cost_price"] = "abc"
    rows[3]["image"] = "img/missing.png"
    rows[3]["title"] = ""
    rows[4]["launch_date"] = "not a date"
    frame, problems = validate_frame(pd.DataFrame(rows).astype(str), tmp_path)
    assert len(frame) == len(rows)  # one frame row per input row, in order
    assert frame["sku_id"].tolist() == [r["sku_id"] for r in rows]
    errors = frame["row_error"].tolist()
    assert pd.isna(errors[0]) and pd.isna(errors[2]) and pd.isna(errors[5])
    assert "cost_price: must be a number" in errors[1]
    assert (
        "title: is empty" in errors[3]
        and "image: file 'img/missing.png' does not exist" in errors[3]
    )
    assert "launch_date: is not a date" in errors[4]
    assert np.isnan(frame["cost_price"].iloc[1])
    assert pd.isna(frame["image_path"].iloc[3])
    assert pd.isna(frame["launch_date"].iloc[4])
    assert sorted({p.row for p in problems}) == [2, 4, 5]
    # the good rows are fully typed
    assert frame["cost_price"].iloc[0] == float(rows[0]["cost_price"])


def test_validate_frame_without_image_check_skips_decoding(tmp_path, kit):
    rows = kit.catalogue_rows(2)
    kit.write_catalogue(tmp_path, rows, name="unused")
    (tmp_path / rows[1]["image"]).write_bytes(b"not a picture")
    _, problems = validate_frame(pd.DataFrame(rows), tmp_path, check_images=False)
    assert problems == []
    _, problems = validate_frame(pd.DataFrame(rows), tmp_path)
    assert [(p.row, p.column) for p in problems] == [(2, "image")]


def test_spec_may_allow_missing_picture_and_cost(tmp_path, kit):
    rows = kit.catalogue_rows(3)
    kit.write_catalogue(tmp_path, rows, name="unused")
    rows[0]["image"] = ""
    rows[1]["cost_price"] = ""
    spec = CatalogueSpec(require_image=False, require_cost_price=False)
    frame, problems = validate_frame(pd.DataFrame(rows), tmp_path, spec=spec, require_target=False)
    assert problems == []
    assert pd.isna(frame["image_path"].iloc[0]) and np.isnan(frame["cost_price"].iloc[1])
    _, problems = validate_frame(pd.DataFrame(rows), tmp_path, require_target=False)  # candidates need both
    assert [(p.row, p.column, p.reason) for p in problems] == [
        (1, "image", "is missing"),
        (2, "cost_price", "is missing"),
    ]
    frame, problems = validate_frame(pd.DataFrame(rows), tmp_path)  # a history may lack them
    assert problems == [] and pd.isna(frame["image_path"].iloc[0]) and np.isnan(frame["cost_price"].iloc[1])


def test_unknown_file_type_and_missing_file(tmp_path):
    (tmp_path / "table.docx").write_bytes(b"x")
    with pytest.raises(CatalogueError, match=r"expected a .csv, .xlsx or .parquet"):
        read_table(tmp_path / "table.docx")
    (tmp_path / "table.xlsx").write_bytes(b"x")
    with pytest.raises(CatalogueError, match="not a readable Excel file"):
        read_table(tmp_path / "table.xlsx")
    with pytest.raises(CatalogueError, match="does not exist"):
        load_catalogue(tmp_path / "nothing.csv")


def test_empty_catalogue_refused(tmp_path, kit):
    rows = kit.catalogue_rows(1)
    pd.DataFrame(columns=list(rows[0])).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(CatalogueError, match="no rows"):
        load_catalogue(tmp_path / "empty.csv")


# ---------------------------------------------------------------- features.images.decode_image
LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


def test_decode_image_gives_rgb(kit):
    rgba = Image.new("RGBA", (30, 20), (10, 20, 30, 128))
    image = decode_image(kit.picture_bytes(rgba), **LIMITS)
    assert image.mode == "RGB" and image.size == (30, 20)
    jpeg = decode_image(kit.picture_bytes(kit.draw_picture("circle", "red"), "JPEG"), **LIMITS)
    assert jpeg.mode == "RGB" and jpeg.size == (96, 96)


def test_decompression_bomb_refused_by_pixel_limit():
    bomb = _png_bomb(20_000, 20_000)
    assert len(bomb) < 100_000  # small on disk
    with pytest.raises(ImageError) as info:
        decode_image(bomb, **LIMITS)
    assert "pixels" in str(info.value) and "40,000,000" in str(info.value)


def test_pixel_limit_is_ours_not_only_pils(kit):
    """A picture within PIL's own limit but over ours is refused, naming its size."""
    picture = kit.picture_bytes(Image.new("L", (300, 200), 255))
    with pytest.raises(ImageError, match=r"300x200 pixels, over the limit of 50,000"):
        decode_image(picture, max_bytes=10**6, max_pixels=50_000)
    assert decode_image(picture, max_bytes=10**6, max_pixels=60_000).size == (300, 200)


def test_bomb_message_never_claims_a_limit_that_was_not_applied():
    """With a setting above PIL's own guard, the message names the limit that actually refused it."""
    with pytest.raises(ImageError) as info:
        decode_image(_png_bomb(20_000, 20_000), max_bytes=10**7, max_pixels=10**10)
    assert "10,000,000,000" not in str(info.value)
    assert f"{Image.MAX_IMAGE_PIXELS:,}" in str(info.value)


def test_oversize_and_empty_bytes_refused(kit):
    picture = kit.picture_bytes(kit.draw_picture("square", "green"))
    with pytest.raises(ImageError, match=rf"{len(picture):,} bytes, over the limit of 100"):
        decode_image(picture, max_bytes=100, max_pixels=10**6)
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", **LIMITS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_picture_refused(kit, fmt):
    data = kit.picture_bytes(kit.draw_picture("triangle", "purple", size=(128, 128)), fmt)
    with pytest.raises(ImageError, match="damaged or truncated|not a picture"):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_random_bytes_refused():
    with pytest.raises(ImageError, match="not a picture this service can read"):
        decode_image(os.urandom(2048), **LIMITS)
