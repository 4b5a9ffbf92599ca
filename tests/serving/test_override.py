"""The merchandiser's say over the analogs, through the real service: excluded analogs disappear,
pinned ones count, the forecast is recomputed through the same feature path, and the answer says so."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest


def predict(url: str, picture: bytes, fields: dict) -> httpx.Response:
    return httpx.post(url + "/predict", files={"image": ("sku.png", picture, "image/png")}, data=fields, timeout=180)


@pytest.fixture(scope="module")
def sku(server: dict) -> tuple[bytes, dict]:
    row = pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False).iloc[1]
    keys = ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")
    return (server["sample"] / row["image"]).read_bytes(), {k: row[k] for k in keys}


def test_excluding_and_pinning_analogs_recomputes_the_forecast(server: dict, sku) -> None:
    picture, fields = sku
    plain = predict(server["url"], picture, fields).json()
    assert plain["override"] is None and "ANALOGS_OVERRIDDEN" not in plain["decision"]["reasons"]
    shown = [a["sku_id"] for a in plain["analogs"]]
    history = pd.read_parquet(server["sample"] / "catalogue.parquet")
    other = history[history["category"] != plain["analogs"][0]["category"]]
    pin = str(other.sort_values("sales_7d").iloc[0]["sku_id"])  # a poor seller of another category
    changed = predict(server["url"], picture, {**fields, "exclude_analogs": ",".join(shown[:2]),
                                               "pin_analogs": pin}).json()
    ids = [a["sku_id"] for a in changed["analogs"]]
    assert not set(shown[:2]) & set(ids) and pin in ids
    assert next(a for a in changed["analogs"] if a["sku_id"] == pin)["pinned"] is True
    assert changed["override"] == {"excluded": shown[:2], "pinned": [pin], "not_usable": []}
    assert "ANALOGS_OVERRIDDEN" in changed["decision"]["reasons"]
    # Recomputed through the feature path: the analogs' evidence moved. (On the synthetic sample the
    # read-out of picture and copy carries most of the forecast, so P50 and the analogs' factor may
    # move by less than their rounding; tests/features/test_analogs.py checks the features move.)
    assert changed["why"]["analogs"] != plain["why"]["analogs"]
    # The override is on record with the forecast.
    from features.ledger.store import engine_for, forecast_by_id

    logged = forecast_by_id(engine_for(server["settings"].ledger_url), changed["forecast_id"])
    assert logged["fields"]["override"] == changed["override"]


def test_an_unknown_analog_is_refused_by_name(server: dict, sku) -> None:
    picture, fields = sku
    response = predict(server["url"], picture, {**fields, "pin_analogs": "NOT-A-SKU"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["pin_analogs"]
    assert "unknown past SKU NOT-A-SKU" in response.json()["detail"][0]["msg"]
