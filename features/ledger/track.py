"""Quick response: launched SKUs day by day against their forecast curve, with a signal and an
updated forecast of the days left.

- RESTOCK: cumulative sales to date run more than ``restock_threshold`` above the cumulative forecast.
- SLOW: cumulative sales to date are below the cumulative P10 path (P10 x the curve's shares).
- Updated forecast of the remaining days: ``features.trial.reforecast``, the one update the
  training holdout measures at each trial stage (the error the gate can read).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features.ledger import store
from features.ledger.live import DAYS, launches
from features.trial import reforecast


def track_launch(curve: list[float], p10: float, observed: list[float], restock_threshold: float) -> dict[str, Any]:
    """Signal and updated forecast of one launch from its first days' units (``observed``, day 1 first)."""
    plan = np.asarray(curve, dtype=float)[:DAYS]
    seen = np.asarray(observed, dtype=float)[:DAYS]
    k = len(seen)
    total = plan.sum()
    shares = plan / total if total > 0 else np.full(len(plan), 1 / max(len(plan), 1))
    to_date, actual = float(plan[:k].sum()), float(seen.sum())
    p10_path = float(p10 * shares[:k].sum())
    if actual > (1 + restock_threshold) * to_date:
        signal = "RESTOCK"
    elif actual < p10_path:
        signal = "SLOW"
    else:
        signal = "ON_TRACK"
    ratio = actual / to_date if to_date > 0 else 1.0
    remaining = float(reforecast(plan, seen[None, :])[0]) - actual
    return {"days": k, "actual_to_date": round(actual, 1), "forecast_to_date": round(to_date, 1),
            "p10_to_date": round(p10_path, 1), "signal": signal, "ratio": round(ratio, 3),
            "remaining_forecast": round(remaining, 1), "updated_7d": round(actual + remaining, 1),
            "prior_7d": round(float(total), 1)}


def tracking(engine: Engine, restock_threshold: float) -> list[dict[str, Any]]:
    """Every launched SKU with actuals (its latest forecast), day by day and with its signal."""
    found = launches(engine, complete=False)
    if found.empty:
        return []
    latest = found.sort_values("created_at").groupby("subject").tail(1)
    acts = store.read_actuals(engine).sort_values("date")
    out = []
    for _, row in latest.sort_values("subject").iterrows():
        daily = acts[acts["subject"] == row["subject"]].head(DAYS)
        result = track_launch(row["curve"], float(row["p10"]), daily["units"].tolist(), restock_threshold)
        out.append({"forecast_id": row["id"], "sku_id": row["sku_id"], "model_version": row["model_version"],
                    "decision": row["decision"], "dates": [str(d) for d in daily["date"]],
                    "daily_actual": daily["units"].round(1).tolist(),
                    "daily_forecast": [round(float(x), 1) for x in row["curve"][:len(daily)]], **result})
    return out


def replay_gain(launch_curves: pd.DataFrame, days_seen: int, restock_threshold: float) -> dict[str, float]:
    """WAPE of the remaining days, prior vs updated, over launches given as rows of ``curve``, ``p10``
    and ``actual`` (7 daily units): how much the update helps after ``days_seen`` days."""
    from features.metrics import wape

    prior, updated, truth = [], [], []
    for _, row in launch_curves.iterrows():
        result = track_launch(row["curve"], row["p10"], list(row["actual"][:days_seen]), restock_threshold)
        prior.append(float(np.sum(row["curve"][days_seen:])))
        updated.append(result["remaining_forecast"])
        truth.append(float(np.sum(row["actual"][days_seen:])))
    return {"prior_wape": wape(truth, prior), "updated_wape": wape(truth, updated), "n": len(truth)}
