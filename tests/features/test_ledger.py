"""The forecast log on SQLite and on a real PostgreSQL server (same tests, both backends):
migrations, idempotent actuals, unmatched SKUs, per-row errors, the live error and its guard."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from features.decision import Decision
from features.ledger.actuals import ingest
from features.ledger.live import LIVE_REASON, guard, launches, live_by_version
from features.ledger.store import engine_for, now, read_actuals, write_forecasts


@pytest.fixture
def engine(ledger_url):
    """A migrated, empty forecast log on SQLite and on the PostgreSQL server (tests/conftest.py)."""
    return engine_for(ledger_url)


def forecast(i: int, *, version: str = "3", p50: float = 100.0, decision: str = "GO", sku: str | None = None) -> dict:
    return {"id": f"f{version}x{i:04d}", "created_at": now(), "model_version": version,
            "sku_id": sku or f"S{i:04d}", "image_sha256": "0" * 64, "fields": {"title": "t"},
            "launch_date": date(2025, 6, 1), "p10": p50 * 0.6, "p50": p50, "p90": p50 * 1.6,
            "curve": [p50 / 7] * 7, "decision": decision, "reasons": ["CLEARS_BREAK_EVEN"], "message": "m",
            "break_even_units": 60.0, "quantity": None}


def days(sku: str, total: float, n: int = 7, start: date = date(2025, 6, 1)) -> list[dict]:
    return [{"sku_id": sku, "date": (start + timedelta(days=d)).isoformat(), "units": total / 7} for d in range(n)]


def migrations_head() -> str:
    """The newest revision shipped in features/ledger/migrations (one head: the chain never forks)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from features.ledger.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def test_migrations_reach_head_once(engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == migrations_head()
        assert {"forecasts", "actuals", "pictures"} <= set(sa.inspect(connection).get_table_names())
    from features.ledger.store import migrate

    migrate(engine)  # again: a no-op, not an error
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_same_actuals_twice_change_nothing(engine) -> None:
    write_forecasts(engine, [forecast(i) for i in range(3)])
    rows = [r for i in range(3) for r in days(f"S{i:04d}", 70)]
    first = ingest(engine, rows)
    before = read_actuals(engine).sort_values(["subject", "date"]).reset_index(drop=True)
    second = ingest(engine, rows)
    after = read_actuals(engine).sort_values(["subject", "date"]).reset_index(drop=True)
    assert first["errors"] == second["errors"] == []
    assert len(before) == 21
    assert before.equals(after)  # not a unit more, not even a new received_at
    assert launches(engine)["actual"].tolist() == pytest.approx([70.0] * 3)


def test_a_day_sent_again_replaces_it(engine) -> None:
    write_forecasts(engine, [forecast(0)])
    ingest(engine, days("S0000", 70))
    ingest(engine, [{"sku_id": "S0000", "date": "2025-06-01", "units": 30}])
    acts = read_actuals(engine)
    assert len(acts) == 7
    assert acts["units"].sum() == pytest.approx(60 + 30)


def test_a_forecast_written_again_under_its_id_replaces_its_row(engine) -> None:
    """A batch chunk scored again after a kill logs the same ids: the log keeps one row per id,
    holding what was written last (what the chunk's scores file carries), and one picture."""
    from features.ledger.jobs import forecast_answers, write_answers

    write_forecasts(engine, [forecast(i) for i in range(3)], [b"picture"])
    write_forecasts(engine, [forecast(i, p50=70.0 + i) for i in (1, 2, 3)], [b"picture"])
    with engine.connect() as connection:
        rows = dict(connection.execute(sa.text("SELECT id, p50 FROM forecasts")).all())
        assert rows == {"f3x0000": 100.0, "f3x0001": 71.0, "f3x0002": 72.0, "f3x0003": 73.0}
        assert connection.execute(sa.text("SELECT count(*) FROM pictures")).scalar() == 1
    answer = {"forecast_id": "f3x0001", "created_at": now(), "source": "predict", "title": "t", "owner": None}
    write_answers(engine, [{**answer, "answer": {"p50": 1}}])
    write_answers(engine, [{**answer, "answer": {"p50": 2}}])
    with engine.connect() as connection:
        kept = connection.execute(sa.select(forecast_answers.c.answer)).scalars().all()
    assert kept == [{"p50": 2}]


def test_unmatched_skus_are_reported_and_stored(engine) -> None:
    write_forecasts(engine, [forecast(0)])
    result = ingest(engine, days("S0000", 70) + days("NEVER-FORECAST", 14, n=2))
    assert result["unmatched"] == ["NEVER-FORECAST"]
    assert result["stored"] == 9
    assert set(read_actuals(engine)["sku_id"]) == {"S0000", "NEVER-FORECAST"}


def test_bad_rows_are_named_and_nothing_is_stored(engine) -> None:
    write_forecasts(engine, [forecast(0)])
    rows = [*days("S0000", 70, n=2), {"sku_id": "S0000", "date": "not a date", "units": 3},
            {"sku_id": "S0000", "date": "2025-06-05", "units": -2}, {"date": "2025-06-05", "units": 1},
            {"forecast_id": "no-such-forecast", "date": "2025-06-05", "units": 1}]
    result = ingest(engine, rows)
    found = {(e["row"], e["field"]) for e in result["errors"]}
    assert found == {(3, "date"), (4, "units"), (5, "sku_id"), (6, "forecast_id")}
    assert all(e["reason"] for e in result["errors"])
    assert result["stored"] == 0 and read_actuals(engine).empty


def test_actuals_by_forecast_id_belong_to_that_forecast(engine) -> None:
    write_forecasts(engine, [forecast(0, version="3", sku="upload"), forecast(1, version="3", sku="upload")])
    rows = [{**r, "sku_id": None, "forecast_id": "f3x0001"} for r in days("x", 50)]
    assert ingest(engine, rows)["errors"] == []
    done = launches(engine)
    assert done["id"].tolist() == ["f3x0001"] and done["actual"].tolist() == pytest.approx([50.0])


def test_drifted_actuals_put_the_version_above_the_gate(engine) -> None:
    """Every SKU sells half its forecast: live WAPE 100% (|50 - 100| / 50), above a 15% gate once there are enough launches."""
    write_forecasts(engine, [forecast(i) for i in range(12)] + [forecast(i, version="4") for i in range(12, 14)])
    ingest(engine, [r for i in range(14) for r in days(f"S{i:04d}", 50)])
    ingest(engine, days("S0099", 50, n=6))  # incomplete: 6 days, never counted
    live = live_by_version(engine, threshold=0.15, min_launches=10)
    v3 = live["3"]
    assert v3["n"] == 12 and v3["wape"] == pytest.approx(1.0) and v3["bias"] == pytest.approx(1.0)
    assert v3["wape_interval"] == pytest.approx([1.0, 1.0])
    assert v3["coverage"] == 0.0 and v3["go_precision"] == 0.0 and v3["go_n"] == 12  # 50 < break-even 60
    assert v3["above_gate"] is True
    assert live["4"]["n"] == 2 and live["4"]["above_gate"] is False  # too few launches to judge
    assert live_by_version(engine, 0.15, 13, version="3")["3"]["above_gate"] is False


def test_live_error_of_a_good_version_stays_under_the_gate(engine) -> None:
    write_forecasts(engine, [forecast(i) for i in range(10)])
    ingest(engine, [r for i in range(10) for r in days(f"S{i:04d}", 100 + (-5 if i % 2 else 5))])  # WAPE 5 / 100
    v3 = live_by_version(engine, 0.15, 5)["3"]
    assert v3["wape"] == pytest.approx(0.05) and v3["above_gate"] is False
    assert v3["coverage"] == 1.0 and v3["go_precision"] == 1.0
    low, high = v3["wape_interval"]
    assert low <= 0.05 <= high


def test_guard_turns_a_decision_to_review_only_above_the_gate() -> None:
    go = Decision("GO", ["CLEARS_BREAK_EVEN"], "Expected 100 units clears it.", 60.0)
    above = {"above_gate": True, "wape": 0.5, "n": 40, "threshold": 0.15}
    turned = guard(go, above)
    assert turned.label == "REVIEW" and turned.reasons[0] == LIVE_REASON
    assert "may no longer steer production" in turned.message
    assert turned.extra["label_before_live_check"] == "GO"
    assert guard(go, {**above, "above_gate": False}) is go
    assert guard(go, None) is go
