"""Behaviour of the decision against the real service (metamorphic tests): pictures unlike any
product never get a GO, the same SKU gets the same answer, a dearer SKU at the same cost does not
sell more units, and a picture that contradicts its category is said to."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def black_square() -> bytes:
    return png(Image.new("RGB", (320, 320), (0, 0, 0)))


def text_picture() -> bytes:
    image = Image.new("RGB", (640, 480), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(CJK_FONT), 48) if CJK_FONT.exists() else ImageFont.load_default()
    for i, line in enumerate(("季度报告", "quarterly report", "Q3 2025 收入 +12%", "目录 contents")):
        draw.text((30, 40 + 100 * i), line, fill=(0, 0, 0), font=font)
    return png(image)


def predict(url: str, picture: bytes, fields: dict) -> dict:
    response = httpx.post(url + "/predict", files={"image": ("sku.png", picture, "image/png")}, data=fields,
                          timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def catalogue_row(server: dict) -> pd.Series:
    """A real sample SKU (jeans), whose copy reads like the catalogue's."""
    frame = pd.read_parquet(server["sample"] / "catalogue.parquet")
    return frame[frame["category"] == "牛仔裤"].iloc[-1]


def fields(row: pd.Series, **changes: str) -> dict[str, str]:
    base = {"title": row["title"], "description": row["description"], "cost_price": str(row["cost_price"]),
            "list_price": str(row["list_price"]), "category": row["category"], "launch_date": "2025-07-01"}
    return {**base, **changes}


@pytest.mark.parametrize("picture", [black_square, text_picture], ids=["black-square", "text-picture"])
def test_a_picture_unlike_any_product_never_gets_a_go(server: dict, catalogue_row: pd.Series, picture) -> None:
    answer = predict(server["url"], picture(), fields(catalogue_row))
    decision = answer["decision"]
    assert decision["label"] == "REVIEW", decision
    assert "PICTURE_UNLIKE_HISTORY" in decision["reasons"], decision


def test_a_picture_that_contradicts_its_category_is_said_to(server: dict, catalogue_row: pd.Series) -> None:
    picture = (server["sample"] / catalogue_row["image"]).read_bytes()
    answer = predict(server["url"], picture, fields(catalogue_row, category="帽子"))
    decision = answer["decision"]
    assert decision["label"] != "GO" and "CATEGORY_PICTURE_MISMATCH" in decision["reasons"], decision
    own = predict(server["url"], picture, fields(catalogue_row))
    assert "CATEGORY_PICTURE_MISMATCH" not in own["decision"]["reasons"], own["decision"]


def test_the_same_sku_twice_gets_the_same_answer(server: dict, catalogue_row: pd.Series) -> None:
    picture = (server["sample"] / catalogue_row["image"]).read_bytes()
    first, second = (predict(server["url"], picture, fields(catalogue_row)) for _ in range(2))
    for answer in (first, second):
        answer.pop("forecast_id", None)
    assert first == second


def test_a_higher_list_price_at_the_same_cost_does_not_sell_more(server: dict, catalogue_row: pd.Series) -> None:
    picture = (server["sample"] / catalogue_row["image"]).read_bytes()
    cost = float(catalogue_row["cost_price"])
    p50 = [predict(server["url"], picture, fields(catalogue_row, list_price=str(round(cost * m, 2))))["forecast"]["p50"]
           for m in (2.0, 2.5, 3.0)]
    assert p50[0] >= p50[1] >= p50[2], p50
