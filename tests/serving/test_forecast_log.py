"""After launch, against the real service: every forecast served is in the log with the id it
returned; actual sales come in through POST /actuals; a version whose live error breaks the gate
turns every answer to REVIEW (a second service on its own PostgreSQL log, so the shared one is untouched)."""

from __future__ import annotations

import base64
import hashlib
import uuid

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

DRIFT_LAUNCHES = 6  # TRIALCAST_LIVE_MIN_LAUNCHES of the drift server


def candidates(server: dict) -> pd.DataFrame:
    return pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False)


def batch_items(server: dict, rows: pd.DataFrame) -> list[dict]:
    keys = ("sku_id", "title", "description", "cost_price", "list_price", "category", "launch_date", "channel")
    return [{**{k: row[k] for k in keys},
             "image_base64": base64.b64encode((server["sample"] / row["image"]).read_bytes()).decode()}
            for _, row in rows.iterrows()]


def predict_one(url: str, server: dict, row: pd.Series) -> dict:
    fields = {k: str(row[k]) for k in ("title", "description", "cost_price", "list_price", "category")}
    picture = (server["sample"] / row["image"]).read_bytes()
    response = httpx.post(url + "/predict", files={"image": ("sku.png", picture, "image/png")}, data=fields,
                          timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_served_forecast_is_in_the_log_with_its_id(server: dict) -> None:
    from features.ledger.store import engine_for, forecast_by_id

    row = candidates(server).iloc[1]
    answer = predict_one(server["url"], server, row)
    assert isinstance(answer["forecast_id"], str) and len(answer["forecast_id"]) == 32
    logged = forecast_by_id(engine_for(server["settings"].ledger_url), answer["forecast_id"])
    assert logged is not None
    assert logged["image_sha256"] == hashlib.sha256((server["sample"] / row["image"]).read_bytes()).hexdigest()
    assert logged["p50"] == answer["forecast"]["p50"] and logged["curve"] == answer["forecast"]["curve"]
    assert logged["decision"] == answer["decision"]["label"] and logged["reasons"] == answer["decision"]["reasons"]
    assert logged["model_version"] == str(answer["model"]["version"])
    assert logged["fields"]["title"] == row["title"]
    assert answer["quantity"]["if_made"]["units"] > 0 and 0 < answer["quantity"]["critical_ratio"] < 1


def test_batch_answers_each_get_their_own_id(server: dict) -> None:
    response = httpx.post(server["url"] + "/predict_batch", json={"items": batch_items(server, candidates(server).head(3))},
                          timeout=300)
    assert response.status_code == 200, response.text
    ids = [a["forecast_id"] for a in response.json()]
    assert all(ids) and len(set(ids)) == 3


def test_actuals_over_http_report_unmatched_and_bad_rows(server: dict) -> None:
    url = server["url"] + "/actuals"
    unknown = f"NEVER-{uuid.uuid4().hex[:6]}"
    rows = [{"sku_id": unknown, "date": "2025-06-01", "units": 4}, {"sku_id": unknown, "date": "2025-06-02", "units": 5}]
    first, again = httpx.post(url, json={"rows": rows}, timeout=30), httpx.post(url, json={"rows": rows}, timeout=30)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["unmatched"] == again.json()["unmatched"] == [unknown]
    bad = httpx.post(url, json={"rows": [rows[0], {"sku_id": unknown, "date": "someday", "units": "many"}]}, timeout=30)
    assert bad.status_code == 422
    assert {(e["row"], e["field"]) for e in bad.json()["errors"]} == {(2, "date"), (2, "units")}
    assert httpx.post(url, json={"not_rows": []}, timeout=30).status_code == 422


def test_model_facts_carry_the_live_error(server: dict) -> None:
    live = httpx.get(server["url"] + "/model", timeout=30).json()["live"]
    assert live["above_gate"] is False and live["min_launches"] == 30


@pytest.fixture(scope="module")
def drift_server(trained: dict, server: dict, postgres_url: str, start_server, tmp_path_factory):
    """A second service on the same champion, logging to a fresh PostgreSQL database, judging the
    live error after ``DRIFT_LAUNCHES`` launches and re-reading it on every answer."""
    name = f"drift_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    env = start_server.env(trained, database_url=url, live_min_launches=str(DRIFT_LAUNCHES), live_cache_seconds="0")
    with start_server.serving(env, tmp_path_factory.mktemp("drift-server")) as running:
        yield {**running, **trained, "database_url": url}


def test_drifted_actuals_turn_the_answers_to_review(drift_server: dict) -> None:
    """Every launched SKU sells half its forecast, day by day: live WAPE 100% >= the 15% gate."""
    rows = candidates(drift_server).head(DRIFT_LAUNCHES + 1)
    response = httpx.post(drift_server["url"] + "/predict_batch", json={"items": batch_items(drift_server, rows)},
                          timeout=300)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert all(a["ok"] and "LIVE_ERROR_ABOVE_GATE" not in a["decision"]["reasons"] for a in answers)
    days = pd.date_range("2025-07-01", periods=7).strftime("%Y-%m-%d")
    actuals = [{"sku_id": a["sku_id"], "date": day, "units": units / 2}
               for a in answers[:DRIFT_LAUNCHES] for day, units in zip(days, a["forecast"]["curve"])]
    sent = httpx.post(drift_server["url"] + "/actuals", json={"rows": actuals}, timeout=60)
    assert sent.status_code == 200, sent.text
    assert sent.json()["unmatched"] == [] and sent.json()["stored"] == 7 * DRIFT_LAUNCHES

    live = httpx.get(drift_server["url"] + "/model", timeout=30).json()["live"]
    assert live["n"] == DRIFT_LAUNCHES and live["wape"] == pytest.approx(1.0, abs=0.01)
    assert live["above_gate"] is True
    after = predict_one(drift_server["url"], drift_server, rows.iloc[DRIFT_LAUNCHES])
    assert after["decision"]["label"] == "REVIEW"
    assert after["decision"]["reasons"][0] == "LIVE_ERROR_ABOVE_GATE"
    assert "may no longer steer production" in after["decision"]["message"]
