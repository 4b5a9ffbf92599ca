"""The gate at the level and stage where production is decided: per SKU, per plan (category x launch
month), per category; before launch and after a trial of the first 1 or 3 sales days. The update
after a trial is one function (``features.trial.reforecast``) that launch tracking shares; every
level x stage error is measured on the time-ordered holdout and logged; the settings choose which
one the gate reads, and the choice is stored with the model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.ledger.track import track_launch
from features.trial import STAGE_DAYS, reforecast
from training.evaluate import level_stage_metrics
from training.gate import LEVELS, STAGES, advice, bias_key, check_gate, gated_key


# ---------------------------------------------------------------- the update after a trial
def test_reforecast_keeps_the_observed_days_and_scales_the_rest_shrunk_by_what_was_seen() -> None:
    plan = np.array([[10.0, 10, 10, 10, 10, 10, 10]])
    # 3 of 7 days seen at double the forecast: ratio 2, shrunk by 3/7 -> the rest x (1 + 3/7)
    assert reforecast(plan, [[20, 20, 20]])[0] == pytest.approx(60 + 40 * (1 + 3 / 7))
    assert reforecast(plan, np.empty((1, 0)))[0] == pytest.approx(70)  # nothing seen: the forecast
    assert reforecast(plan, [[10] * 7])[0] == pytest.approx(70)  # all seen: what sold
    assert reforecast(np.zeros((1, 7)), [[5, 5]])[0] == pytest.approx(10)  # a zero forecast adds nothing


def test_launch_tracking_uses_the_same_update() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        curve = rng.gamma(2, 5, size=7).tolist()
        seen = rng.poisson(8, size=int(rng.integers(1, 7))).tolist()
        tracked = track_launch(curve, 10.0, seen, 0.3)
        assert tracked["updated_7d"] == pytest.approx(round(float(reforecast([curve], [seen])[0]), 1), abs=0.051)


# ---------------------------------------------------------------- the levels and stages
def _holdout() -> dict:
    """Four launches in two categories and two months, with daily sales and a daily forecast."""
    actual = np.array([[10, 10, 10, 10, 10, 10, 10], [2, 2, 2, 2, 2, 2, 2],
                       [5, 5, 5, 5, 5, 5, 5], [1, 1, 1, 1, 1, 1, 1]], dtype=float)
    plan = np.array([[5.0] * 7, [4.0] * 7, [5.0] * 7, [2.0] * 7])
    return {"y": actual.sum(axis=1), "p50": plan.sum(axis=1), "plan": plan, "actual": actual,
            "categories": pd.Series(["a", "a", "b", "b"]),
            "dates": pd.Series(pd.to_datetime(["2024-01-03", "2024-01-20", "2024-01-05", "2024-02-02"]))}


def test_every_level_and_stage_is_measured() -> None:
    h = _holdout()
    m = level_stage_metrics(h["y"], h["p50"], h["categories"], h["dates"], h["plan"], h["actual"])
    for level in LEVELS:
        for stage in STAGES:
            assert math.isfinite(m[f"wape_{level}_{stage}"]), (level, stage)
    y = h["y"]
    assert m["wape_sku_pre_launch"] == pytest.approx(np.abs(y - h["p50"]).sum() / y.sum())
    # plan: (a, Jan) holds launches 0 and 1 (84 sold, 63 forecast); b's two launches are in two months
    assert m["wape_plan_pre_launch"] == pytest.approx((21 + 0 + 7) / y.sum())
    assert m["wape_category_pre_launch"] == pytest.approx((21 + 7) / y.sum())
    assert m["wape_plan_pre_launch_category/a"] == pytest.approx(21 / 84)
    assert m["bias_pre_launch"] == pytest.approx((h["p50"].sum() - y.sum()) / y.sum())
    # a trial moves each forecast towards what sold; the longer, the closer
    assert m["wape_sku_trial_3d"] < m["wape_sku_trial_1d"] < m["wape_sku_pre_launch"]
    updated = reforecast(h["plan"], h["actual"][:, :3])
    assert m["wape_sku_trial_3d"] == pytest.approx(np.abs(y - updated).sum() / y.sum())
    assert set(STAGE_DAYS) == set(STAGES)


def test_without_daily_sales_the_trial_stages_are_unmeasured_and_a_missing_day_keeps_the_forecast() -> None:
    h = _holdout()
    m = level_stage_metrics(h["y"], h["p50"], h["categories"], h["dates"])
    assert math.isfinite(m["wape_plan_pre_launch"])
    assert all(math.isnan(m[f"wape_{level}_trial_3d"]) for level in LEVELS)
    actual = h["actual"].copy()
    actual[0, 1] = np.nan  # launch 0's second day is unknown: its trial forecast stays the pre-launch one
    partial = level_stage_metrics(h["y"], h["p50"], h["categories"], h["dates"], h["plan"], actual)
    others = reforecast(h["plan"][1:], h["actual"][1:, :3])
    expected = (abs(h["y"][0] - h["p50"][0]) + np.abs(h["y"][1:] - others).sum()) / h["y"].sum()
    assert partial["wape_sku_trial_3d"] == pytest.approx(expected)


# ---------------------------------------------------------------- the gate reads the one its settings name
def _metrics() -> dict:
    h = _holdout()
    return {"wape": 0.40, "bias": 0.01, "go_precision": 0.6, "go_recall": 0.7, "base_rate": 0.35,
            **level_stage_metrics(h["y"], h["p50"], h["categories"], h["dates"], h["plan"], h["actual"])}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("stage", STAGES)
def test_the_gate_reads_the_error_at_its_level_and_stage(level: str, stage: str) -> None:
    m = _metrics()
    gate = check_gate(m, "wape", 0.15, 1.0, level=level, stage=stage)
    key = gated_key("wape", level, stage)
    assert gate.value == pytest.approx(m[key]) and gate.bias == pytest.approx(m[bias_key(stage)])
    assert (gate.level, gate.stage) == (level, stage)
    assert (gate.as_tags()["gate.level"], gate.as_tags()["gate.stage"]) == (level, stage)
    assert gate.passed == (m[key] < 0.15)
    assert gated_key("wape") == "wape"  # per SKU before launch: the metric itself, as before


def test_a_trial_stage_without_daily_sales_is_refused_with_the_reason() -> None:
    h = _holdout()
    m = {"bias": 0.0, **level_stage_metrics(h["y"], h["p50"], h["categories"], h["dates"])}
    gate = check_gate(m, "wape", 0.15, 0.1, level="plan", stage="trial_3d")
    assert not gate.passed and "no daily sales" in gate.reasons[0]


def test_go_precision_is_refused_against_its_base_rate() -> None:
    gate = check_gate({**_metrics(), "go_precision": 0.3}, "wape", 0.9, 1.0, min_go_precision=0.48)
    assert gate.reasons == ("GO precision 30% is under 48% (launching everything: 35%)",)
    assert gate.base_rate == 0.35 and gate.as_tags()["gate.base_rate"] == "0.3500"


def test_the_advice_after_a_refusal_names_what_would_help_never_train_one() -> None:
    m = _metrics()
    gate = check_gate(m, "wape", 0.15, 1.0, level="sku", stage="pre_launch").as_dict()
    lines = advice(gate, m, 123)
    text = "\n".join(lines)
    assert "123 past launches" in text and "train one" not in text and "trialcast train" not in text
    passing = next((lv, st) for st in STAGES for lv in LEVELS if m[gated_key("wape", lv, st)] < 0.15)
    assert f"TRIALCAST_GATE_LEVEL={passing[0]} TRIALCAST_GATE_STAGE={passing[1]}" in text
    nowhere = advice(check_gate(m, "wape", 0.0001, 1.0).as_dict(), m, 10)
    assert any("no level or stage" in line and "trial" in line and "plan level" in line for line in nowhere)


# ---------------------------------------------------------------- on the sample
def test_the_sample_holdout_is_measured_at_every_level_and_stage(trained: dict) -> None:
    holdout = trained["summary"]["holdout"]
    for level in LEVELS:
        for stage in STAGES:
            assert math.isfinite(holdout[f"wape_{level}_{stage}"]), (level, stage)
    assert holdout["wape_plan_pre_launch"] <= holdout["wape_sku_pre_launch"] == pytest.approx(holdout["wape"])
    assert holdout["wape_sku_trial_3d"] < holdout["wape_sku_trial_1d"] < holdout["wape_sku_pre_launch"]
    assert holdout["wape_plan_trial_3d"] < holdout["wape_plan_pre_launch"]


def test_every_level_and_stage_error_is_logged_and_the_gate_s_place_stored(trained: dict) -> None:
    from training.registry import connect

    settings = trained["settings"]
    client = connect(settings)
    mv = client.get_model_version(settings.model_name, trained["summary"]["version"])
    logged = client.get_run(mv.run_id).data.metrics
    for level in LEVELS:
        for stage in STAGES:
            assert logged[f"holdout_wape_{level}_{stage}"] == pytest.approx(trained["summary"]["holdout"][f"wape_{level}_{stage}"])
    assert (mv.tags["gate.level"], mv.tags["gate.stage"]) == (settings.gate_level, settings.gate_stage)
    assert float(mv.tags["gate.value"]) == pytest.approx(
        trained["summary"]["holdout"][gated_key(settings.gate_metric, settings.gate_level, settings.gate_stage)], abs=1e-4)


def test_the_gate_s_place_is_a_setting_that_shapes_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from features.config import Settings

    default = Settings()
    assert (default.gate_level, default.gate_stage) == ("plan", "trial_3d")
    monkeypatch.setenv("TRIALCAST_GATE_LEVEL", "sku")
    monkeypatch.setenv("TRIALCAST_GATE_STAGE", "pre_launch")
    moved = Settings()
    assert (moved.gate_level, moved.gate_stage) == ("sku", "pre_launch")
    assert moved.model_hash() != default.model_hash()  # a retrain under another gate is not a no-op
    monkeypatch.setenv("TRIALCAST_GATE_STAGE", "after_lunch")
    with pytest.raises(ValueError, match="gate_stage"):
        Settings()
