"""Forecast metrics: the one implementation of each, shared by training, the gate and the benchmarks.

Every function takes actuals ``y`` and forecasts ``f`` of the same shape. A 2-D array (SKU x period)
counts every cell, so the WAPE of sales curves is the WAPE of their flattened cells; a caller that
wants per-SKU totals sums the periods first.

- ``wape``: sum|y - f| / sum y, the share of units mis-forecast (the gate metric). Weighted by units,
  so a big seller counts as much as the stock it ties up, unlike a mean of per-SKU percentages that
  explodes on SKUs that sold almost nothing.
- ``bias``: (sum f - sum y) / sum y, the error of the total; negative means stock would run short.
  WAPE alone rewards median-type forecasts that under-forecast totals.
- ``mae``: mean |y - f| in units, for readers who think in units rather than shares.
- ``interval_coverage``: share of actuals inside [P10, P90] (target 80%), and below / above it, so
  a band that is too narrow on one side only is visible.
- ``screening_precision``: of the SKUs ranked in the top ``share`` by forecast (the ones the model
  would green-light), the share truly in the top ``share`` of actuals. A random pick gets ``share``.

The ratios floor their denominator at ``MIN_TOTAL``: a set that sold nothing gives 0 for a perfect
forecast and a huge finite number otherwise, never a ZeroDivisionError, NaN or infinity that would
break a JSON report or an MLflow metric.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

SCREEN_SHARE = 0.25
MIN_TOTAL = 1e-9


def _pair(y: ArrayLike, f: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of one shape: broadcasting (n,) against (n, 1) would silently score n x n pairs."""
    y, f = np.asarray(y, dtype=float), np.asarray(f, dtype=float)
    if y.shape != f.shape:
        raise ValueError(f"actual and forecast differ in shape: {y.shape} vs {f.shape}")
    return y, f


def _total(y: np.ndarray) -> float:
    """sum y, floored at ``MIN_TOTAL`` (see the module docstring)."""
    return max(float(y.sum()), MIN_TOTAL)


def wape(y: ArrayLike, f: ArrayLike) -> float:
    """sum|y - f| / sum y over every element, as a fraction (0.15 = 15%)."""
    y, f = _pair(y, f)
    return float(np.abs(y - f).sum() / _total(y))


def curve_wape(actual: ArrayLike, forecast: ArrayLike) -> float:
    """WAPE over every SKU x period cell of sales curves (n_skus, n_periods): the shape's error
    counts, not only the total's, since a week-2 miss is stock in the wrong week."""
    return wape(np.ravel(actual), np.ravel(forecast))


def bias(y: ArrayLike, f: ArrayLike) -> float:
    """(sum f - sum y) / sum y, as a fraction; positive = over-forecast."""
    y, f = _pair(y, f)
    return float((f.sum() - y.sum()) / _total(y))


def mae(y: ArrayLike, f: ArrayLike) -> float:
    """Mean |y - f| in units over every element."""
    y, f = _pair(y, f)
    return float(np.abs(y - f).mean())


def interval_coverage(y: ArrayLike, low: ArrayLike, high: ArrayLike) -> dict[str, float]:
    """Shares of actuals inside [low, high] (``coverage``, ends included), below ``low`` and above
    ``high``: a P10-P90 band should hold ~80% with ~10% on each side."""
    y, low = _pair(y, low)
    _, high = _pair(y, high)
    return {
        "coverage": float(np.mean((y >= low) & (y <= high))),
        "below": float(np.mean(y < low)),
        "above": float(np.mean(y > high)),
    }


def top_weights(values: np.ndarray, top: int) -> np.ndarray:
    """Weight in [0, 1] of each item being among the ``top`` largest: 1 above the cut, 0 below, and
    the places left at the cut shared evenly by the items tied there -- the expectation over
    random tie-breaking, so the answer never depends on row order."""
    cut = np.sort(values)[::-1][top - 1]
    above = values > cut
    tied = values == cut
    weight = above.astype(float)
    weight[tied] = (top - above.sum()) / tied.sum()
    return weight


def screening_precision(y: ArrayLike, f: ArrayLike, share: float = SCREEN_SHARE) -> float:
    """Share of the top ``ceil(n * share)`` items by forecast that are truly in the top
    ``ceil(n * share)`` by actual, one value per item (e.g. per-SKU totals).

    Ties at either cut are shared out evenly (``top_weights``): a constant forecast scores
    ``ceil(n * share) / n``, what a random pick would, instead of whatever the row order favours.
    """
    y, f = _pair(y, f)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"screening needs one non-empty value per item, got shape {y.shape}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if not (np.isfinite(y).all() and np.isfinite(f).all()):
        raise ValueError("screening precision of NaN or infinite values: the ranking is undefined")
    top = max(1, math.ceil(share * len(y)))
    return float((top_weights(f, top) * top_weights(y, top)).sum() / top)
