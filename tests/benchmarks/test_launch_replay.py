"""The launch replay (issue 12, item 7) on the sample: a model trained before the cut forecasts the
next launches through the service's predictor, their actuals arrive day by day into a real forecast
log, and the report's numbers are checked against that log. The loop is closed for real: a retrain
on the pre-cut catalogue picks the replayed launches up from the log, and a second one is a no-op."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import launch_replay
from features.config import Settings
from features.ledger import open_ledger, store
from features.ledger.live import LIVE_REASON
from features.ledger.track import tracking

LAUNCHES = 120


def replay_settings(home: Path, **overrides) -> Settings:
    cache = os.environ.get("TRIALCAST_TEST_CACHE")
    return Settings(home=home, cache_file=Path(cache) if cache else None, live_cache_seconds=1e9, **overrides)


@pytest.fixture(scope="module")
def prepared(sample_dir, tmp_path_factory):
    """The sample embedded, cut where its holdout starts, and a model trained on the launches before."""
    settings = replay_settings(tmp_path_factory.mktemp("replay-train"))
    return launch_replay.prepare(sample_dir / "catalogue.parquet", settings)


@pytest.fixture(scope="module")
def replayed(prepared, tmp_path_factory):
    settings = replay_settings(tmp_path_factory.mktemp("replay-home"))
    return launch_replay.replay(prepared, settings, launches=LAUNCHES), settings


def test_every_launch_is_forecast_once_before_it_sells(replayed, prepared) -> None:
    report, settings = replayed
    engine = open_ledger(settings)
    ahead = prepared.ahead.head(LAUNCHES)
    logged = store.read_forecasts(engine, set(), set(ahead["sku_id"]), launch_replay.VERSION)
    assert len(logged) == LAUNCHES and logged["sku_id"].is_unique
    assert (pd.to_datetime(logged["launch_date"]) >= pd.Timestamp(report["train_end"])).all()  # never seen in training
    assert sum(w["forecasts"] for w in report["weeks"]) == LAUNCHES
    counts = [w["n"] for w in report["weeks"]]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == LAUNCHES == report["live"]["n"]
    assert all(r["days"] == 7 for r in tracking(engine, settings.restock_threshold))


def test_updated_forecast_beats_the_prior_and_the_quantity_stocks_out_less(replayed) -> None:
    report, _ = replayed
    for update in report["updates"]:
        assert update["updated_wape"] < update["prior_wape"], update
    stock = report["stock"]
    assert stock["launches"] > 0
    assert stock["recommended"]["stock_out_rate"] < stock["p50"]["stock_out_rate"]
    for name, s in report["signals"].items():
        assert s["fired"] == sum(s["first_day_counts"].values()), name
        assert 0 <= s["bore_out"] <= min(s["fired"], s["true_cases"])
    assert "| week ending |" in launch_replay.markdown(report)


def test_the_replayed_launches_come_back_as_they_were(replayed, prepared, sample_dir, tmp_path) -> None:
    report, settings = replayed
    assert report["loop"] == {"launches": LAUNCHES, "added": LAUNCHES, "left_out": 0, "identical_to_catalogue": LAUNCHES}
    # A retrain on the catalogue as it stood before the launches adds them from the log.
    from training.jobs import run_train

    folder = tmp_path / "before"
    (folder / "images").mkdir(parents=True)
    before = pd.read_parquet(sample_dir / "catalogue.parquet")
    before = before[before["sku_id"].isin(prepared.past.frame["sku_id"])]
    for name in before["image"]:  # copied: a symlink would point out of the catalogue folder
        shutil.copyfile(sample_dir / name, folder / name)
    before.to_parquet(folder / "catalogue.parquet")
    quiet = {"progress": False, "echo": lambda *_: None}
    first = run_train(folder / "catalogue.parquet", settings, retrain=True, launches=True, **quiet)
    assert first["launches"]["added"] == LAUNCHES and not first["noop"]
    again = run_train(folder / "catalogue.parquet", settings, retrain=True, launches=True, **quiet)
    assert again["noop"] and again["version"] == first["version"]


def test_a_stream_selling_half_the_forecast_turns_answers_to_review(prepared, tmp_path) -> None:
    settings = replay_settings(tmp_path / "drift", live_min_launches=20)
    report = launch_replay.replay(prepared, settings, launches=90, drift=0.5)
    fired = [w for w in report["weeks"] if w["above_gate"]]
    assert fired and report["live"]["above_gate"] and report["live"]["bias"] > 0.5  # forecasts now run about double the sales
    after = [w for w in report["weeks"] if w["week_ending"] > fired[0]["week_ending"] and w["forecasts"]]
    assert after and all(w["live_reviews"] == w["forecasts"] for w in after)
    logged = store.read_forecasts(open_ledger(settings), set(), set(prepared.ahead["sku_id"]), launch_replay.VERSION)
    assert any(LIVE_REASON in reasons for reasons in logged["reasons"])
