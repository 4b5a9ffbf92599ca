"""The loop closes (issue 12, item 6): launched SKUs whose first 7 days are in the forecast log join
the training history, with the picture and copy they were forecast from, checked by the catalogue
contract; SQLite and the PostgreSQL server alike. No embedding, no training: the data step only."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest

from features.catalogue import load_catalogue
from features.config import Settings
from features.ledger import open_ledger
from features.ledger.actuals import ingest
from features.ledger.store import now, write_forecasts
from training.data import fingerprint, with_launches

START = date(2025, 3, 3)


def served(i: int, picture: bytes | None, *, sku: str | None, category: str | None = "shoes",
           sha: str | None = None) -> dict:
    """A forecast row as serving writes it (fields as given, the picture by content hash)."""
    return {"id": f"fc{i:030d}", "created_at": now(), "model_version": "1", "sku_id": sku,
            "image_sha256": sha or (hashlib.sha256(picture).hexdigest() if picture else None),
            "fields": {"sku_id": sku, "title": f"新款皮鞋 leather shoe {i}", "description": "商务 真皮",
                       "category": category, "cost_price": 40.0 + i, "list_price": None, "channel": "app",
                       "launch_date": None, "assumed": {"launch_date": "2025-03-01"}, "override": None},
            "launch_date": date(2025, 3, 1), "p10": 20.0, "p50": 35.0, "p90": 60.0, "curve": [5.0] * 7,
            "decision": "GO", "reasons": [], "message": "", "break_even_units": 10.0, "quantity": None}


def sold(key: str, value: str, days: int, units: float = 4.0, start: date = START) -> list[dict]:
    return [{key: value, "date": (start + timedelta(days=d)).isoformat(), "units": units + d} for d in range(days)]


@pytest.fixture
def setup(tmp_path, ledger_url, kit):
    """A 6-SKU catalogue file and a forecast log with one launch of each kind."""
    base = load_catalogue(kit.write_catalogue(tmp_path / "cat", kit.catalogue_rows(6, start="2024-06-01")))
    settings = Settings(home=tmp_path / "home", database_url=ledger_url)
    engine = open_ledger(settings)
    pics = [kit.picture_bytes(kit.draw_picture(shape, "red")) for shape in ("circle", "square", "triangle")]
    write_forecasts(engine, [
        served(0, pics[0], sku="NEW-1"),                    # complete, by sku id
        served(1, pics[1], sku="upload"),                   # complete, by forecast id, placeholder id
        served(2, pics[2], sku="upload"),                   # complete, by forecast id, placeholder id
        served(3, pics[0], sku="NEW-4"),                    # 5 days only: not yet history
        served(4, pics[1], sku="SKU0001"),                  # already in the catalogue
        served(5, pics[2], sku="NEW-6", category=None),     # category was assumed: the contract refuses
        served(6, None, sku="NEW-7", sha="f" * 64),         # its picture was never kept
    ], pics)
    rows = (sold("sku_id", "NEW-1", 7) + sold("forecast_id", f"fc{1:030d}", 8)
            + sold("forecast_id", f"fc{2:030d}", 7, units=9) + sold("sku_id", "NEW-4", 5)
            + sold("sku_id", "SKU0001", 7) + sold("sku_id", "NEW-6", 7) + sold("sku_id", "NEW-7", 7))
    assert not ingest(engine, rows)["errors"]
    return base, settings, engine, pics


def test_complete_launches_join_the_history_as_they_sold(setup) -> None:
    base, settings, _, pics = setup
    merged, report = with_launches(base, settings)
    new = merged.frame[~merged.frame["sku_id"].isin(base.frame["sku_id"])].set_index("sku_id")
    assert sorted(new.index) == sorted(["NEW-1", f"Ffc{1:030d}", f"Ffc{2:030d}"])
    row = new.loc["NEW-1"]
    assert row["launch_date"].date() == START  # the first day with sales, not the assumed date
    assert [row[f"sales_d{d}"] for d in range(1, 8)] == [4.0 + d for d in range(7)]
    assert row["sales_7d"] == sum(4.0 + d for d in range(7))
    assert row["title"] == "新款皮鞋 leather shoe 0" and row["cost_price"] == 40.0
    assert row["list_price"] != row["list_price"]  # absent stays absent (NaN): training gives it its one meaning
    from pathlib import Path

    assert Path(row["image_path"]).read_bytes() == pics[0]  # the very picture it was forecast from
    assert new.loc[f"Ffc{1:030d}", "sales_7d"] == sum(4.0 + d for d in range(7))  # the 7 earliest of 8 days
    assert merged.frame["launch_date"].is_monotonic_increasing
    assert report["in_catalogue"] == 1 and report["added"] == 3
    kept = merged.frame.set_index("sku_id").loc["SKU0001"]
    assert kept["title"] == base.frame.set_index("sku_id").loc["SKU0001", "title"]  # the file beats the log


def test_launches_that_cannot_be_history_are_reported_with_why(setup) -> None:
    base, settings, _, _ = setup
    _, report = with_launches(base, settings)
    why = {item["sku_id"]: item["reason"] for item in report["left_out"]}
    assert set(why) == {"NEW-6", "NEW-7"}
    assert why["NEW-6"].startswith("category:")  # the catalogue contract's own reason
    assert "picture" in why["NEW-7"]
    assert report["launches"] == 6  # NEW-4 has 5 days: not a launch yet


def test_the_snapshot_changes_only_when_a_launch_completes(setup) -> None:
    base, settings, engine, _ = setup
    first = fingerprint(with_launches(base, settings)[0])
    assert fingerprint(with_launches(base, settings)[0]) == first  # nothing new: a retrain is a no-op
    assert first != fingerprint(base)
    assert not ingest(engine, sold("sku_id", "NEW-4", 7))["errors"]  # its last two days arrive
    merged, _ = with_launches(base, settings)
    assert "NEW-4" in set(merged.frame["sku_id"]) and fingerprint(merged) != first


def test_launches_join_a_history_with_attribute_columns_as_absent(setup, tmp_path, kit) -> None:
    """The forecast log keeps no attribute columns: a launch joins a history that has them, with
    them absent (the one meaning of an absent attribute), not refused for a missing column."""
    _, settings, _, _ = setup
    rows = kit.catalogue_rows(6, start="2024-06-01")
    for i, row in enumerate(rows):
        row["colour"] = ("red", "blue")[i % 2]
    base = load_catalogue(kit.write_catalogue(tmp_path / "with-colour", rows))
    assert base.spec.attributes == ("colour",)
    merged, report = with_launches(base, settings)
    new = merged.frame[~merged.frame["sku_id"].isin(base.frame["sku_id"])]
    assert report["added"] == 3 and new["colour"].isna().all()
    assert merged.frame.set_index("sku_id").loc["SKU0001", "colour"] == "blue"
