"""Why the forecast is what it is: the point booster's per-SKU contributions (LightGBM
``pred_contrib``, exact TreeSHAP), grouped into what a merchandiser thinks in.

The point model works in log space and starts from the embedding read-out (the time-honest ridge
of picture, copy, season, price and category: ``features.projection``); each group's contribution
is a multiplicative factor on that start (``exp(contribution)``: 1.25 means "25% more units because
of this group"). The factors multiply to the forecast before the total-bias scale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

GROUPS: dict[str, tuple[str, ...]] = {
    # group -> feature-name prefixes (first match wins, in this order)
    "analogs": ("joint_wmean", "joint_log_wmean", "joint_median", "joint_top1_log", "joint_n_", "picture_wmean", "copy_wmean"),
    "picture": ("picture_",),
    "copy": ("copy_",),
    "price": ("log_cost_price", "log_list_price", "margin", "list_price_assumed", "joint_log_price_gap"),
    "category": ("category",),
    "season": ("season_",),
    "channel": ("channel",),
    "readout": ("embedding_log_sales", "joint_top1_similarity"),
    "attributes": ("attr",),  # the catalogue's attribute columns and their same-attribute analogs
}


def group_of(feature: str) -> str:
    for group, prefixes in GROUPS.items():
        if feature.startswith(prefixes):
            return group
    return "other"


def contributions(booster: Any, X: pd.DataFrame, matrix: np.ndarray | None = None) -> pd.DataFrame:
    """Log-space contribution of each group per row (columns = groups, plus ``expected``);
    ``matrix``: ``X`` as already converted for the booster (``features.forecast.lgb_matrix``)."""
    raw = booster.predict(X if matrix is None else matrix, pred_contrib=True)
    names = list(booster.feature_name())
    frame = pd.DataFrame(raw[:, :-1], columns=names)
    grouped = frame.T.groupby([group_of(n) for n in names]).sum().T
    grouped["expected"] = raw[:, -1]
    return grouped


def explain(groups: pd.Series, start_units: float, p50: float, analog_sales: list[float]) -> dict[str, Any]:
    """One SKU's answer: the start, each group's factor (largest effect first) and one sentence."""
    effects = groups.drop(labels=["expected"], errors="ignore")
    ordered = sorted(((g, float(v)) for g, v in effects.items() if abs(v) > 1e-9), key=lambda gv: -abs(gv[1]))
    factors = [{"group": g, "factor": round(math.exp(v), 3)} for g, v in ordered]
    out: dict[str, Any] = {"start_units": round(start_units, 1), "factors": factors}
    sold = np.asarray([s for s in analog_sales if s is not None and math.isfinite(s)], dtype=float)
    if len(sold):
        out["analogs"] = {"min": float(sold.min()), "median": float(np.median(sold)), "max": float(sold.max())}
    out["codes"] = [f["group"] for f in factors[:3]]
    out["sentence"] = sentence(out, p50)
    return out


def sentence(why: dict[str, Any], p50: float) -> str:
    """English sentence (the page renders its own from the numbers, in the user's language)."""
    parts = [f"{f['group']} x{f['factor']:.2f}" for f in why["factors"][:3]]
    head = ""
    if "analogs" in why:
        a = why["analogs"]
        head = f"The most similar past SKUs sold {a['min']:.0f}-{a['max']:.0f} (median {a['median']:.0f}); "
    return (f"{head}the forecast of {p50:.0f} starts from {why['start_units']:.0f} read off the picture and copy"
            + (f" and moves by {', '.join(parts)}." if parts else "."))
