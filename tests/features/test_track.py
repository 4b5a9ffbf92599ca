"""Quick response: the signals and the updated forecast, on a replay where it must beat the prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.ledger.track import replay_gain, track_launch

CURVE = [20.0, 18.0, 15.0, 14.0, 12.0, 11.0, 10.0]  # P50 = 100


def test_restock_when_sales_run_30_percent_above_the_forecast() -> None:
    out = track_launch(CURVE, p10=60, observed=[27, 25], restock_threshold=0.3)  # 52 vs 38 to date: +37%
    assert out["signal"] == "RESTOCK" and out["updated_7d"] > out["prior_7d"]


def test_slow_below_the_p10_path() -> None:
    out = track_launch(CURVE, p10=60, observed=[8, 7, 6], restock_threshold=0.3)  # 21 < 0.6 x 53
    assert out["signal"] == "SLOW" and out["updated_7d"] < out["prior_7d"]


def test_on_track_keeps_the_forecast_near() -> None:
    out = track_launch(CURVE, p10=60, observed=[20, 18], restock_threshold=0.3)
    assert out["signal"] == "ON_TRACK" and out["updated_7d"] == pytest.approx(100, abs=0.5)


def test_the_update_beats_the_prior_on_a_replay() -> None:
    """Launches whose true level is the forecast x a lognormal surprise (sd 0.5), with Poisson days."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(400):
        level = rng.lognormal(np.log(100), 0.6)
        curve = [level * c / 100 for c in CURVE]
        actual = rng.poisson(np.array(curve) * rng.lognormal(0, 0.5)).astype(float)
        rows.append({"curve": curve, "p10": 0.5 * level, "actual": actual})
    frame = pd.DataFrame(rows)
    for days in (1, 3, 5):
        gain = replay_gain(frame, days, 0.3)
        assert gain["updated_wape"] < gain["prior_wape"], (days, gain)
