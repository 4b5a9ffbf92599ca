"""Metrics and baselines, one code path for the model and every baseline.

- WAPE = sum|y - yhat| / sum y: the share of units mis-forecast (the gate metric).
- bias = (sum yhat - sum y) / sum y: error of the total; negative means stock would run short.
- screening precision: of the SKUs ranked in the top quarter by forecast (the ones the model
  would green-light), the share truly in the top quarter of actual sales. A random pick gets 25%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error

from features.assemble import FeaturePipeline
from features.embed import Embeddings

SCREEN_SHARE = 0.25


def wape(y: np.ndarray, yhat: np.ndarray) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    return float(np.abs(y - yhat).sum() / max(y.sum(), 1e-9))


def bias(y: np.ndarray, yhat: np.ndarray) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    return float((yhat.sum() - y.sum()) / max(y.sum(), 1e-9))


def screening_precision(y: np.ndarray, yhat: np.ndarray, share: float = SCREEN_SHARE) -> float:
    n = max(1, round(len(y) * share))
    picked = np.argsort(-np.asarray(yhat, float), kind="stable")[:n]
    winners = set(np.argsort(-np.asarray(y, float), kind="stable")[:n].tolist())
    return float(np.mean([i in winners for i in picked]))


def point_metrics(y: np.ndarray, yhat: np.ndarray, categories: pd.Series | None = None) -> dict[str, float]:
    out = {
        "wape": wape(y, yhat),
        "mae": float(mean_absolute_error(y, yhat)),
        "bias": bias(y, yhat),
        "screening_precision": screening_precision(y, yhat),
    }
    if categories is not None:
        for cat, idx in pd.Series(range(len(y))).groupby(categories.to_numpy()).groups.items():
            idx = np.asarray(list(idx))
            out[f"wape_category/{cat}"] = wape(np.asarray(y)[idx], np.asarray(yhat)[idx])
    return out


def interval_metrics(y: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, float)
    return {
        "coverage_p10_p90": float(np.mean((y >= p10) & (y <= p90))),
        "below_p10": float(np.mean(y < p10)),
        "above_p90": float(np.mean(y > p90)),
    }


def curve_wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """WAPE over every SKU x period of the sales curve."""
    return wape(np.asarray(actual).ravel(), np.asarray(forecast).ravel())


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
