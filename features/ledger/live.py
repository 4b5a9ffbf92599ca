"""The live error: each model version's forecasts against what its launched SKUs actually sold in
their first 7 days, and the guard that stops a version whose live error breaks the gate from
steering production.

A launch is complete when its forecast has 7 daily actuals (the 7 earliest days count). Actuals sent
by ``forecast_id`` belong to that forecast; actuals sent by ``sku_id`` belong to the latest forecast
of that SKU by each version (a SKU scored by two versions is a launch of both).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features import metrics
from features.decision import Decision
from features.ledger import store

DAYS = 7
LIVE_REASON = "LIVE_ERROR_ABOVE_GATE"


def _daily(actuals: pd.DataFrame) -> pd.DataFrame:
    """Per subject: days received and units of the 7 earliest days."""
    first = actuals.sort_values("date").groupby("subject", sort=False).head(DAYS)
    return first.groupby("subject").agg(days=("date", "nunique"), actual=("units", "sum")).reset_index()


def launches(engine: Engine, version: str | None = None, *, complete: bool = True) -> pd.DataFrame:
    """One row per launched forecast with its actuals (``days``, ``actual`` units of the first 7 days)
    and its forecast; only complete launches (7 days) unless ``complete`` is False."""
    acts = store.read_actuals(engine)
    ids = set(acts["forecast_id"].dropna()) if len(acts) else set()
    skus = set(acts.loc[acts["forecast_id"].isna(), "sku_id"].dropna()) if len(acts) else set()
    fc = store.read_forecasts(engine, ids, skus, version)
    if fc.empty or acts.empty:
        return fc.assign(days=pd.Series(dtype=int), actual=pd.Series(dtype=float))
    daily = _daily(acts)
    by_id = fc[fc["id"].isin(ids)].assign(subject=lambda f: "forecast:" + f["id"])
    latest = (fc[fc["sku_id"].isin(skus) & ~fc["id"].isin(ids)].sort_values("created_at")
              .groupby(["model_version", "sku_id"], dropna=False).tail(1)
              .assign(subject=lambda f: "sku:" + f["sku_id"]))
    out = pd.concat([by_id, latest], ignore_index=True).merge(daily, on="subject", how="inner")
    return out[out["days"] >= DAYS].reset_index(drop=True) if complete else out


def wape_interval(y: np.ndarray, f: np.ndarray, level: float = 0.9) -> list[float] | None:
    """Bootstrap (percentile, paired by launch) interval of the WAPE; None under 2 launches."""
    from scipy.stats import bootstrap

    if len(y) < 2:
        return None
    result = bootstrap((y, f), metrics.wape, paired=True, vectorized=False, confidence_level=level,
                       n_resamples=999, method="percentile", rng=np.random.default_rng(0))
    low, high = result.confidence_interval
    return [float(low), float(high)]


def live_error(frame: pd.DataFrame, threshold: float, min_launches: int) -> dict[str, Any]:
    """WAPE (with its 90% interval), bias, P10-P90 coverage and GO precision over complete launches,
    and whether the version is above the gate (WAPE >= threshold over >= ``min_launches``)."""
    n = len(frame)
    if n == 0:
        return {"n": 0, "wape": None, "wape_interval": None, "bias": None, "coverage": None,
                "go_n": 0, "go_precision": None, "threshold": threshold, "min_launches": min_launches,
                "above_gate": False}
    y, f = frame["actual"].to_numpy(float), frame["p50"].to_numpy(float)
    go = frame[frame["decision"] == "GO"]
    paid = go["actual"].to_numpy(float) >= go["break_even_units"].astype(float).fillna(math.inf).to_numpy()
    wape = metrics.wape(y, f)
    return {
        "n": n, "wape": wape, "wape_interval": wape_interval(y, f), "bias": metrics.bias(y, f),
        "coverage": metrics.interval_coverage(y, frame["p10"].to_numpy(float), frame["p90"].to_numpy(float))[
            "coverage"],
        "go_n": len(go), "go_precision": float(paid.mean()) if len(go) else None,
        "threshold": threshold, "min_launches": min_launches,
        "above_gate": bool(n >= min_launches and wape >= threshold),
    }


def live_by_version(engine: Engine, threshold: float, min_launches: int, version: str | None = None
                    ) -> dict[str, dict[str, Any]]:
    """``live_error`` of every model version with complete launches (or of one)."""
    frame = launches(engine, version)
    if version is not None:
        return {version: live_error(frame, threshold, min_launches)}
    return {str(v): live_error(group, threshold, min_launches)
            for v, group in frame.groupby(frame["model_version"].astype(str))}


def guard(decision: Decision, live: dict[str, Any] | None) -> Decision:
    """The decision, turned to REVIEW when its model version's live error is above the gate: the
    holdout said the model may steer production; launches since then say it may no longer."""
    if not live or not live.get("above_gate"):
        return decision
    message = (f"This model version's live error is {live['wape']:.0%} WAPE over {live['n']} launches, at or "
               f"above the gate of {live['threshold']:.0%}: the forecast may no longer steer production; a "
               f"person decides (it said {decision.label}). {decision.message}")
    return replace(decision, label="REVIEW", reasons=[LIVE_REASON, *decision.reasons], message=message,
                   extra={**decision.extra, "label_before_live_check": decision.label})
