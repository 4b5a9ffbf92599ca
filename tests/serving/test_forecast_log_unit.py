"""The serving side of the forecast log without a server: rows are written with their ids, and a
log that cannot be written leaves the answers intact (forecast_id None) instead of failing them."""

from __future__ import annotations

from features.config import Settings
from features.ledger.store import engine_for, forecast_by_id
from serving.forecast_log import ForecastLog


def answer() -> dict:
    return {"ok": True, "assumed": {}, "quantity": {"units": 90.0},
            "forecast": {"p10": 50.0, "p50": 80.0, "p90": 130.0, "curve": [80 / 7] * 7},
            "decision": {"label": "GO", "reasons": ["CLEARS_BREAK_EVEN"], "message": "m", "break_even_units": 60.0}}


ROW = {"sku_id": "S1", "title": "白色T恤", "cost_price": 40.0, "list_price": float("nan"), "launch_date": None}


def test_answers_are_written_with_their_ids(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    answers = [answer(), answer()]
    ForecastLog(settings, "7").record([ROW, ROW], [b"picture", None], answers)
    ids = [a["forecast_id"] for a in answers]
    assert all(ids) and ids[0] != ids[1]
    logged = forecast_by_id(engine_for(settings.ledger_url), ids[0])
    assert logged["model_version"] == "7" and logged["p50"] == 80.0 and logged["fields"]["title"] == "白色T恤"
    assert logged["fields"]["list_price"] is None and logged["quantity"] == {"units": 90.0}
    assert len(logged["image_sha256"]) == 64 and forecast_by_id(engine_for(settings.ledger_url), ids[1])["image_sha256"] is None


def test_a_broken_log_never_fails_the_forecast(tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'file' / 'log.sqlite'}")
    answers = [answer()]
    log = ForecastLog(settings, "7")
    log.record([ROW], [b"picture"], answers)  # must not raise
    assert answers[0]["forecast_id"] is None and answers[0]["forecast"]["p50"] == 80.0
    assert log.live() is None


def test_single_forecasts_are_kept_for_who_asked_with_128_bit_ids(tmp_path) -> None:
    import re

    from serving.forecast_log import recent, reopen

    settings = Settings(home=tmp_path)
    single = {**ROW, "sku_id": "upload"}  # what /predict gives its one SKU
    answers = [answer(), answer()]
    ForecastLog(settings, "7").record([single, single], [b"a", b"b"], answers, ["alice", "bob"])
    ids = [a["forecast_id"] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)  # secrets.token_hex(16), not a 122-bit UUID
    assert [f["id"] for f in recent(settings, 10, "en", "alice")] == [ids[0]]
    assert [f["id"] for f in recent(settings, 10, "en", "bob")] == [ids[1]]
    assert recent(settings, 10, "en", None) == []
    assert reopen(settings, ids[1])["reopened"]["forecast_id"] == ids[1]  # the share link opens for anyone
