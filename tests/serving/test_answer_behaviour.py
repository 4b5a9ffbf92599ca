"""Behaviour of whole answers against the real service on the trained sample (Made-With-ML style:
minimum functionality, invariance, direction): every reason at once, a buy quantity only where
production is allowed, the far-launch warning for typed dates, and junk pictures never raising the
forecast."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from tests.serving.test_behaviour import black_square, png

FAR = "2099-07-02"


def blank_white() -> bytes:
    return png(Image.new("RGB", (320, 320), (255, 255, 255)))


def text_page() -> bytes:
    image = Image.new("RGB", (480, 640), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i in range(24):
        draw.text((20, 20 + 25 * i), f"Quarterly report line {i}: revenue +{i}% against plan", fill=(0, 0, 0))
    return png(image)


def noise() -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    return png(Image.fromarray(pixels))


JUNK = {"black-square": black_square, "blank-white": blank_white, "text-page": text_page, "noise": noise}


def predict(url: str, picture: bytes, fields: dict, lang: str = "en") -> dict:
    response = httpx.post(f"{url}/predict?lang={lang}", files={"image": ("sku.png", picture, "image/png")},
                          data=fields, timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def jeans(server: dict) -> pd.Series:
    """A real sample SKU (jeans), whose copy reads like the catalogue's."""
    frame = pd.read_parquet(server["sample"] / "catalogue.parquet")
    return frame[frame["category"] == "牛仔裤"].iloc[-1]


def fields(row: pd.Series, **changes: str | None) -> dict[str, str]:
    base = {"title": row["title"], "description": row["description"], "cost_price": str(row["cost_price"]),
            "list_price": str(row["list_price"]), "category": row["category"], "launch_date": "2025-07-01"}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def own_picture(server: dict, row: pd.Series) -> bytes:
    return (server["sample"] / row["image"]).read_bytes()


# ---------------------------------------------------------------- 1. every reason at once
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_missing_launch_date_does_not_hide_that_the_picture_is_unlike_history(server: dict, jeans: pd.Series,
                                                                               lang: str) -> None:
    """The README's case: a black square with jeans copy and no launch date or description."""
    answer = predict(server["url"], black_square(), fields(jeans, launch_date=None, description=None), lang)
    reasons = answer["decision"]["reasons"]
    assert answer["decision"]["label"] == "REVIEW" and "PICTURE_UNLIKE_HISTORY" in reasons, reasons
    assert {"ASSUMED_LAUNCH_DATE", "ASSUMED_DESCRIPTION"} <= set(reasons), reasons
    facts = httpx.get(server["url"] + "/model", timeout=60).json()  # the holdout says which absences break the gate
    costly = {name for name in ("launch_date", "description")
              if (facts["absence"].get(name) or {}).get(facts["gate_metric"], 0) >= facts["gate_threshold"]}
    assert ("INPUT_NEEDED" in reasons) == bool(costly), (reasons, facts["absence"])
    if costly:
        assert reasons.index("INPUT_NEEDED") < reasons.index("PICTURE_UNLIKE_HISTORY")
        missing = answer["decision"]["extra"]["missing"]
        assert {m["field"] for m in missing} == costly, missing
        named = answer["display"]["reasons"][reasons.index("INPUT_NEEDED")]
        for m in missing:
            assert {"launch_date": "上新日期" if lang == "zh" else "launch date",
                    "description": "描述" if lang == "zh" else "description"}[m["field"]] in named, named
        assert "launch_date" not in named


def test_the_novelty_reasons_are_the_same_whether_or_not_inputs_are_missing(server: dict, jeans: pd.Series) -> None:
    """Invariance: leaving out the launch date and description adds reasons, never removes one."""
    novel = {"NO_SIMILAR_HISTORY", "PICTURE_UNLIKE_HISTORY", "COPY_UNLIKE_HISTORY", "CATEGORY_PICTURE_MISMATCH"}
    full = predict(server["url"], black_square(), fields(jeans, category="帽子"))
    bare = predict(server["url"], black_square(), fields(jeans, category="帽子", launch_date=None, description=None))
    assert novel & set(full["decision"]["reasons"]) <= set(bare["decision"]["reasons"]), (full["decision"],
                                                                                            bare["decision"])


# ---------------------------------------------------------------- 5. a quantity only where production is allowed
def test_a_buy_quantity_only_where_production_is_allowed(server: dict) -> None:
    """Every candidate: GO makes its batch, a REVIEW leaning GO (no novelty) only on approval, the
    rest make 0 with a reason; each says its horizon and how it was chosen."""
    rows = pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False)
    keys = ("sku_id", "title", "description", "cost_price", "list_price", "category", "launch_date", "channel")
    items = [{**{k: row[k] for k in keys}, "image_base64": base64.b64encode(own_picture(server, row)).decode()}
             for _, row in rows.iterrows()]
    response = httpx.post(server["url"] + "/predict_batch?lang=zh", json={"items": items}, timeout=600)
    assert response.status_code == 200, response.text
    answers = [a for a in response.json() if a["ok"]]
    labels = set()
    for a in answers:
        d, q = a["decision"], a["quantity"]
        labels.add(d["label"])
        assert q["horizon"] == "first_batch" and q["sentence"] and q["sentence_en"], q
        if d["label"] == "GO" and q["status"] == "make":
            assert q["units"] > 0 and q["expected_profit"] > 0, q
        elif q["status"] == "on_approval":
            assert d["label"] == "REVIEW" and "LEANS_GO" in d["reasons"] and q["units"] > 0, (d, q)
        else:
            assert q["units"] == 0 and q["reason"], (d, q)
            assert "0 件" in q["sentence"] and "0 units" in q["sentence_en"]
        if d["label"] == "NO_GO":
            assert q["units"] == 0 and q["reason"] == "NO_GO", (d, q)
    assert {"GO", "NO_GO"} <= labels, labels


# ---------------------------------------------------------------- 6. warnings from the request
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_typed_launch_date_far_from_history_is_warned_about(server: dict, jeans: pd.Series, lang: str) -> None:
    far = predict(server["url"], own_picture(server, jeans), fields(jeans, launch_date=FAR), lang)
    codes = [w["code"] for w in far["warnings"]]
    assert codes == ["LAUNCH_FAR_FROM_HISTORY"] and FAR in far["warnings"][0]["message"], far["warnings"]
    near = predict(server["url"], own_picture(server, jeans), fields(jeans), lang)
    assert near["warnings"] == [] and near["launch_date"] == "2025-07-01"


# ---------------------------------------------------------------- 2. junk is not demand
def last_of(server: dict, category: str) -> pd.Series:
    frame = pd.read_parquet(server["sample"] / "catalogue.parquet")
    return frame[frame["category"] == category].iloc[-1]


@pytest.mark.parametrize("category", ["牛仔裤", "T恤", "帽子"])
def test_a_picture_unlike_every_product_never_forecasts_above_a_real_picture(server: dict, category: str) -> None:
    """Direction: black square, blank white, a page of text, noise, each with real copy, never
    above the same copy with its real picture; invariance: which junk it is does not matter."""
    row = last_of(server, category)
    real = predict(server["url"], own_picture(server, row), fields(row))
    assert real["novelty"]["stood_in"] == [], real["novelty"]
    p50 = {}
    for name, picture in JUNK.items():
        answer = predict(server["url"], picture(), fields(row))
        d, q = answer["decision"], answer["quantity"]
        assert "PICTURE_UNLIKE_HISTORY" in d["reasons"] and answer["novelty"]["stood_in"] == ["picture"], (name, d)
        assert "LEANS_GO" not in d["reasons"] and q["units"] == 0 and q["reason"] == "UNLIKE_HISTORY", (name, d, q)
        p50[name] = answer["forecast"]["p50"]
    assert max(p50.values()) <= real["forecast"]["p50"], (p50, real["forecast"])
    assert len(set(p50.values())) == 1, p50


def test_copy_unlike_every_product_never_forecasts_above_the_real_copy(server: dict, jeans: pd.Series) -> None:
    real = predict(server["url"], own_picture(server, jeans), fields(jeans))
    junk = predict(server["url"], own_picture(server, jeans),
                   fields(jeans, title="zxq vbn plork 7734", description="lorem ipsum dolor sit amet qwerty asdf"))
    assert "COPY_UNLIKE_HISTORY" in junk["decision"]["reasons"] and junk["novelty"]["stood_in"] == ["copy"]
    assert "LEANS_GO" not in junk["decision"]["reasons"] and junk["quantity"]["units"] == 0
    assert junk["forecast"]["p50"] <= real["forecast"]["p50"], (junk["forecast"], real["forecast"])


def test_junk_is_read_the_same_alone_and_in_a_batch(server: dict, jeans: pd.Series) -> None:
    """Invariance: a junk picture's stand-in depends on its own row only."""
    keys = ("title", "description", "cost_price", "list_price", "category", "launch_date")
    item = {k: fields(jeans)[k] for k in keys}
    items = [{**item, "sku_id": "REAL", "image_base64": base64.b64encode(own_picture(server, jeans)).decode()},
             {**item, "sku_id": "BLACK", "image_base64": base64.b64encode(black_square()).decode()}]
    response = httpx.post(server["url"] + "/predict_batch", json={"items": items}, timeout=300)
    assert response.status_code == 200, response.text
    batch = {a["sku_id"]: a["forecast"]["p50"] for a in response.json()}
    alone = predict(server["url"], black_square(), fields(jeans))["forecast"]["p50"]
    assert batch["BLACK"] == pytest.approx(alone, rel=1e-6) and batch["BLACK"] <= batch["REAL"], (batch, alone)
