"""The after-launch commands on a temporary home: `trialcast actuals` (idempotent, errors per row,
unmatched SKUs), `trialcast track` and the live section of `trialcast status --json`."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from trialcast.cli import app


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home whose forecast log holds 3 served forecasts of version 1 (P50 70, 10 a day)."""
    from features.config import Settings
    from features.ledger import open_ledger
    from features.ledger.store import now, write_forecasts

    monkeypatch.setenv("TRIALCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRIALCAST_DATABASE_URL", raising=False)
    write_forecasts(open_ledger(Settings()), [
        {"id": f"f{i}", "created_at": now(), "model_version": "1", "sku_id": f"S{i}", "image_sha256": None,
         "fields": {}, "launch_date": date(2025, 6, 1), "p10": 40.0, "p50": 70.0, "p90": 120.0,
         "curve": [10.0] * 7, "decision": "GO", "reasons": [], "message": "", "break_even_units": 50.0,
         "quantity": None} for i in range(3)])
    return tmp_path


def write_actuals(folder, per_day: dict[str, float], days: int = 7, name: str = "actuals.csv"):
    rows = [{"sku_id": sku, "date": (date(2025, 6, 1) + timedelta(days=d)).isoformat(), "units": units}
            for sku, units in per_day.items() for d in range(days)]
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def answer(result) -> dict:
    """The JSON a command printed (MLflow's own log lines may come before it)."""
    return json.loads(result.output[result.output.index("{\n"):])


def test_actuals_command_is_idempotent_and_reports_unmatched(home) -> None:
    path = write_actuals(home, {"S0": 20, "S1": 5, "S2": 10, "NEW": 3})
    runner = CliRunner()
    first = runner.invoke(app, ["actuals", str(path)])
    second = runner.invoke(app, ["actuals", str(path)])
    assert first.exit_code == second.exit_code == 0, first.output
    assert answer(first) == answer(second)
    assert answer(first)["unmatched"] == ["NEW"]
    shown = runner.invoke(app, ["status", "--json"])
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.output[shown.output.index("{\n"):])
    live = status["live"]["1"]
    assert live["n"] == 3  # sent twice, counted once
    assert live["wape"] == pytest.approx((70 + 35 + 0) / (140 + 35 + 70))


def test_actuals_command_names_bad_rows(home) -> None:
    path = home / "bad.csv"
    pd.DataFrame([{"sku_id": "S0", "date": "2025-13-01", "units": "2"},
                  {"sku_id": "", "date": "2025-06-01", "units": "x"}]).to_csv(path, index=False)
    done = CliRunner().invoke(app, ["actuals", str(path)])
    assert done.exit_code == 2
    assert "row 1, date" in done.output and "row 2, units" in done.output and "nothing stored" in done.output


def test_track_flags_restock_and_slow(home) -> None:
    path = write_actuals(home, {"S0": 20, "S1": 2, "S2": 10}, days=3)
    assert CliRunner().invoke(app, ["actuals", str(path)]).exit_code == 0
    done = CliRunner().invoke(app, ["track", "--json"])
    assert done.exit_code == 0, done.output
    signals = {r["sku_id"]: r["signal"] for r in json.loads(done.output)}
    assert signals == {"S0": "RESTOCK", "S1": "SLOW", "S2": "ON_TRACK"}


def test_actuals_publish_the_live_error_to_mlflow(home) -> None:
    """The live error lands on the registered version (tags live.*) and in a monitoring run."""
    from mlflow import MlflowClient

    from features.config import Settings, tracking_uri

    settings = Settings()
    uri = tracking_uri(settings)
    client = MlflowClient(uri, uri)
    client.create_registered_model(settings.model_name)
    source = home / "model"
    source.mkdir()
    client.create_model_version(settings.model_name, source.as_uri())  # version 1, as the log's forecasts
    path = write_actuals(home, {"S0": 20, "S1": 5, "S2": 10})
    done = CliRunner().invoke(app, ["actuals", str(path)])
    assert done.exit_code == 0, done.output
    assert answer(done)["mlflow_versions"] == ["1"]
    tags = client.get_model_version(settings.model_name, "1").tags
    expected = (70 + 35 + 0) / (140 + 35 + 70)
    assert float(tags["live.wape"]) == pytest.approx(expected, rel=1e-5) and tags["live.n"] == "3"
    experiment = client.get_experiment_by_name(f"{settings.model_name}-live")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["live_wape"] == pytest.approx(expected) and run.data.tags["model_version"] == "1"
    quiet = CliRunner().invoke(app, ["actuals", str(path), "--no-mlflow"])
    assert quiet.exit_code == 0 and "mlflow_versions" not in quiet.output
