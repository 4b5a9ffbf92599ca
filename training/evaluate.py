"""Metrics of a training run and its baselines: one code path for the model and every baseline.

The metric math lives in ``features.metrics`` (the one implementation, shared with the VISUELLE
benchmark); this module names the numbers a run logs, gates on and compares with its baselines.

- WAPE = sum|y - yhat| / sum y: the share of units mis-forecast (the gate metric).
- bias = (sum yhat - sum y) / sum y: error of the total; negative means stock would run short.
- screening precision: of the SKUs ranked in the top quarter by forecast (the ones the model
  would green-light), the share truly in the top quarter of actual sales. A random pick gets 25%;
  ties are shared out evenly, so the row order never matters.
- levels and stages (``level_stage_metrics``): WAPE of the 7-day totals per SKU, per category x
  launch month (the plan a buyer commits to) and per category, before launch and after a trial of
  the first 1 or 3 sales days (``features.trial.reforecast``): where production is decided.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features import metrics
from features.assemble import FeaturePipeline
from features.embed import Embeddings

# Re-exported: training code imports these names from here.
from features.metrics import SCREEN_SHARE, bias, curve_wape, screening_precision, wape
from features.trial import STAGE_DAYS, reforecast
from training.gate import LEVELS

__all__ = [
    "LEVELS", "SCREEN_SHARE", "analog_knn", "bias", "category_mean", "curve_wape", "interval_metrics",
    "level_stage_metrics", "point_metrics", "screening_precision", "stage_forecasts", "wape",
]  # fmt: skip


def point_metrics(y: np.ndarray, yhat: np.ndarray, categories: pd.Series | None = None) -> dict[str, float]:
    """The point-forecast numbers of a run (and per category WAPE, to see where the error sits)."""
    out = {
        "wape": wape(y, yhat),
        "mae": metrics.mae(y, yhat),
        "bias": bias(y, yhat),
        "screening_precision": screening_precision(y, yhat),
    }
    if categories is not None:
        for cat, idx in pd.Series(range(len(y))).groupby(categories.to_numpy()).groups.items():
            idx = np.asarray(list(idx))
            out[f"wape_category/{cat}"] = wape(np.asarray(y)[idx], np.asarray(yhat)[idx])
    return out


def interval_metrics(y: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    """How honest the P10-P90 band is: coverage (target 80%) and the miss on each side."""
    shares = metrics.interval_coverage(y, p10, p90)
    return {
        "coverage_p10_p90": shares["coverage"],
        "below_p10": shares["below"],
        "above_p90": shares["above"],
    }


Update = Callable[[np.ndarray, np.ndarray], np.ndarray]


def stage_forecasts(p50: np.ndarray, daily_plan: np.ndarray | None, daily_actual: np.ndarray | None,
                    stages: dict[str, int] = STAGE_DAYS, update: Update = reforecast) -> dict[str, np.ndarray]:
    """The 7-day forecast at each stage: P50 before launch, updated (``update``) with the first k
    actual days after a trial (NaN when the history has no daily sales to replay). A launch with a
    day missing among its first k keeps its pre-launch forecast: nothing was observed to update it with."""
    out = {}
    for stage, days in stages.items():
        if days == 0:
            out[stage] = np.asarray(p50, dtype=float)
        elif daily_plan is None or daily_actual is None or daily_actual.shape[1] < days:
            out[stage] = np.full(len(p50), np.nan)
        else:
            seen = daily_actual[:, :days]
            known = np.isfinite(seen).all(axis=1)
            updated = update(daily_plan, np.nan_to_num(seen))
            out[stage] = np.where(known, updated, p50)
    return out


def _totals(y: np.ndarray, f: np.ndarray, keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame({"y": y, "f": f})
    summed = frame.groupby([pd.Series(k) for k in keys], sort=False)[["y", "f"]].sum(min_count=1)
    return summed["y"].to_numpy(), summed["f"].to_numpy()


def level_stage_metrics(y: np.ndarray, p50: np.ndarray, categories: pd.Series, launch_dates: pd.Series,
                        daily_plan: np.ndarray | None = None, daily_actual: np.ndarray | None = None, *,
                        stages: dict[str, int] = STAGE_DAYS, update: Update = reforecast) -> dict[str, float]:
    """``wape_{level}_{stage}`` for every level (``LEVELS``) and stage (``STAGE_DAYS``),
    ``bias_{stage}`` (the total's, the same at every level), and the plan level's WAPE per category
    (``wape_plan_{stage}_category/{name}``: where the plan's error sits). ``daily_plan`` is the
    forecast per sales day (the curve x P50), ``daily_actual`` the units sold per day; ``stages``
    and ``update`` are the product's unless a study (``benchmarks/visuelle/levels.py``) asks otherwise."""
    y = np.asarray(y, dtype=float)
    cats = categories.astype(str).to_numpy()
    month = pd.to_datetime(launch_dates).dt.strftime("%Y-%m").to_numpy()
    keys = dict(zip(LEVELS, (None, [cats, month], [cats]), strict=True))
    out: dict[str, float] = {}
    for stage, forecast in stage_forecasts(p50, daily_plan, daily_actual, stages, update).items():
        out[f"bias_{stage}"] = bias(y, forecast)
        for level, by in keys.items():
            out[f"wape_{level}_{stage}"] = wape(y, forecast) if by is None else wape(*_totals(y, forecast, by))
        for cat in np.unique(cats):
            inside = cats == cat
            out[f"wape_plan_{stage}_category/{cat}"] = wape(*_totals(y[inside], forecast[inside], [month[inside]]))
    return out


# ---------------------------------------------------------------- baselines
def category_mean(train: pd.DataFrame, target: str, rows: pd.DataFrame) -> np.ndarray:
    """Mean launch sales of the SKU's category in the training period (overall mean if unseen)."""
    means = train.groupby("category")[target].mean()
    return rows["category"].map(means).fillna(train[target].mean()).to_numpy(dtype=float)


def analog_knn(pipeline: FeaturePipeline, rows: pd.DataFrame, embeddings: Embeddings, k: int) -> np.ndarray:
    """Similarity-weighted mean sales of the k most similar earlier SKUs (picture + copy)."""
    nb = pipeline.neighbours(rows, embeddings, k)
    valid = nb.index >= 0
    sales = np.where(valid, pipeline.index.sales[np.maximum(nb.index, 0)], 0.0)
    weights = np.where(valid, np.clip(np.nan_to_num(nb.similarity), 0, None), 0.0)
    total = weights.sum(axis=1)
    fallback = pipeline.index.sales.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weights * sales).sum(axis=1) / total, fallback)
