"""Metrics of a training run and its baselines: one code path for the model and every baseline.

The metric math lives in ``features.metrics`` (the one implementation, shared with the VISUELLE
benchmark); this module names the numbers a run logs, gates on and compares with its baselines.

- WAPE = sum|y - yhat| / sum y: the share of units mis-forecast (the gate metric).
- bias = (sum yhat - sum y) / sum y: error of the total; negative means stock would run short.
- screening precision: of the SKUs ranked in the top quarter by forecast (the ones the model
  would green-light), the share truly in the top quarter of actual sales. A random pick gets 25%;
  ties are shared out evenly, so the row order never matters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import metrics
from features.assemble import FeaturePipeline
from features.embed import Embeddings

# Re-exported: training code imports these names from here.
from features.metrics import SCREEN_SHARE, bias, curve_wape, screening_precision, wape

__all__ = [
    "SCREEN_SHARE", "analog_knn", "bias", "category_mean", "curve_wape", "interval_metrics",
    "point_metrics", "screening_precision", "wape",
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
