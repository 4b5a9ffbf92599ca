"""The season plan's replay (benchmarks/plan_replay.py): success = a launch in the top quarter of its
period by 7-day units; the success rate of the plan's picks against launching all, the kNN rule's
picks and random picks. First on launches whose answers are made up (every number known), then on
the sample's holdout, forecast by a model trained on the launches before it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import launch_replay, plan_replay
from features.config import Settings


def made_up_answer(sku: str, p50: float, knn: float) -> dict:
    return {"ok": True, "sku_id": sku, "forecast": {"p10": p50 * 0.7, "p50": p50, "p90": p50 * 1.4},
            "decision": {"label": "GO", "economics": {"list_price": 100.0, "cost_price": 40.0, "launch_cost": 600.0}},
            "analogs": [{"sales": knn, "similarity": 0.9}]}


def test_success_rates_of_plan_knn_random_and_all_are_counted_per_period() -> None:
    rows = []
    for period in ("2025-01", "2025-02"):
        for i in range(8):
            actual = 10.0 * (i + 1)  # SKUs 6 and 7 of each period are its top quarter
            # The forecast ranks by the truth; the kNN rule by its reverse (it picks SKUs 0 and 1).
            rows.append({"sku_id": f"{period}-{i}", "period": pd.Period(period, "M"), "actual": actual,
                         "answer": made_up_answer(f"{period}-{i}", actual, 100.0 - actual)})
    report = plan_replay.success_table(pd.DataFrame(rows), share=0.25, salvage_share=0.3)
    assert report["picks"] == {"plan": 4, "knn": 4, "random": 4, "all": 16}
    assert report["success_rate"] == {"plan": 1.0, "knn": 0.0, "random": 0.25, "all": 0.25}
    assert [p["budget"] for p in report["periods"]] == [2, 2]
    assert "| plan | 4 | 100.0% |" in plan_replay.markdown({**report, "catalogue": "c", "trained_on": 1})


@pytest.fixture(scope="module")
def replayed(sample_dir: Path, tmp_path_factory) -> dict:
    cache = os.environ.get("TRIALCAST_TEST_CACHE")
    settings = Settings(home=tmp_path_factory.mktemp("plan-replay"), cache_file=Path(cache) if cache else None)
    return plan_replay.replay(launch_replay.prepare(sample_dir / "catalogue.parquet", settings), settings)


def test_on_the_sample_holdout_the_plan_beats_random_and_makes_more_margin_than_knn(replayed: dict) -> None:
    """The plan's picks succeed about twice as often as random ones; the kNN rule, which ranks by
    units (the measure of success here), succeeds more often still, but its picks made less margin:
    the plan maximises margin, and high-unit SKUs are not always the ones that pay."""
    rates, picks = replayed["success_rate"], replayed["picks"]
    assert replayed["launches"] == picks["all"] > 0
    for period in replayed["periods"]:
        assert period["plan"]["picks"] <= period["budget"] and period["knn"]["picks"] <= period["budget"]
    assert rates["random"] == pytest.approx(rates["all"], abs=0.02)  # a quarter, up to ties and rounding
    assert rates["plan"] > 1.5 * rates["random"]
    assert replayed["realised_margin"]["plan"] > replayed["realised_margin"]["knn"]
