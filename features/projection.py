"""A supervised, time-honest reduction of the picture and copy embeddings to one number.

The embeddings are 1,792 numbers per SKU; what sells is mostly a sum of attribute effects that a
linear read-out of them captures well (colour, pattern, material, style), modulated by season,
price and category. A ridge regression from [embeddings, embeddings x season, price, category]
to log launch sales is that read-out. LightGBM then starts from it and learns what is left
(interactions, analog evidence) instead of re-discovering attributes from PCA axes.

It must never see the future: the ridge is refit at regular origins, each snapshot trained only
on SKUs launched at least ``gap_days`` before the origin, and a SKU is scored by the latest
snapshot whose origin is not after its launch. A new SKU (launching after the history) gets the
snapshot fitted on all history, so training and serving read the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

from features.analogs import day_numbers
from features.files import plain_fields, read_json, write_json
from features.linear import LinearModel, Reducer

ALPHAS = (0.03, 0.1, 0.3, 1.0, 3.0)
_REDUCERS = ("picture", "copy")
_ARRAY_FIELDS = ("models", "picture_reducer", "copy_reducer")  # in projection.npz, not the JSON


# Memory at scale (benchmarks/growth.py ``projection``: 9.7 GB at 300k SKUs before these two): the
# PCA axes are fitted on at most PCA_MAX_ROWS rows spread over the history (128 axes of 1,280
# dimensions are pinned down long before 300k rows), and vectors are turned to float64 and projected
# a block at a time. A history up to these sizes (the sample, VISUELLE) gets the same bits as before.
PCA_MAX_ROWS = 50_000
BLOCK_ROWS = 32_768


def _fit_reducer(vectors: np.ndarray, components: int) -> Reducer | None:
    present = np.flatnonzero(~np.isnan(vectors).any(axis=1))
    if len(present) > PCA_MAX_ROWS:
        present = present[np.linspace(0, len(present) - 1, PCA_MAX_ROWS).astype(int)]
    n = min(components, len(present) - 1, vectors.shape[1])
    return Reducer.fit(vectors[present].astype(np.float64), n) if n >= 1 else None


def _reduce(reducer: Reducer | None, vectors: np.ndarray) -> np.ndarray:
    """PCA scores; rows without a vector (no picture) stay NaN."""
    if reducer is None:
        return np.full((len(vectors), 1), np.nan)
    out = np.full((len(vectors), reducer.n_components), np.nan)
    present = np.flatnonzero(~np.isnan(vectors).any(axis=1))
    for start in range(0, len(present), BLOCK_ROWS):
        rows = present[start:start + BLOCK_ROWS]
        out[rows] = reducer.transform(vectors[rows].astype(np.float64))
    return out


def design(frame: pd.DataFrame, picture: np.ndarray, copy: np.ndarray, categories: list[str]) -> np.ndarray:
    """The ridge's inputs for each row (missing pictures and prices become zeros plus a flag).

    An assumed list price (features.schema) counts as a price here: the ridge is fitted on history,
    where prices are known, so a flag it never saw vary would only shift its intercept; the boosters
    see ``list_price_assumed`` and were trained with it."""
    day = pd.to_datetime(frame["launch_date"]).dt.day_of_year.to_numpy(dtype=float)
    season = np.cos(2 * np.pi * (day - 1) / 365.25)[:, None]
    spring = np.sin(2 * np.pi * (day - 1) / 365.25)[:, None]
    has_picture = ~np.isnan(picture).any(axis=1, keepdims=True)
    embedded = np.hstack([np.nan_to_num(picture), np.nan_to_num(copy)])
    with np.errstate(all="ignore"):
        log_price = np.log(frame["list_price"].to_numpy(dtype=float))[:, None]
        markup = np.log(frame["list_price"].to_numpy(dtype=float) / frame["cost_price"].to_numpy(dtype=float))[:, None]
    has_price = np.isfinite(log_price)
    log_price = np.where(has_price, log_price, 0.0)
    markup = np.where(np.isfinite(markup), markup, 0.0)
    one_hot = (frame["category"].astype(str).to_numpy()[:, None] == np.array(categories, dtype=object)[None, :]).astype(float)
    return np.hstack([
        embedded, embedded * season, season, spring, has_picture, has_price, log_price, markup,
        one_hot, one_hot * season, one_hot * log_price,
    ]).astype(np.float64, copy=False)  # hstack of float64 parts: no second copy


@dataclass
class TimeHonestRidge:
    """Embeddings are first compressed by PCA (unsupervised: it never sees sales) to ``components``
    axes each, which keeps each of the ~30 refits a fraction of a second; on the sample this costs
    0.3 points of WAPE against the full 1,792 dimensions (0.120 vs 0.118)."""

    categories: list[str]
    gap_days: int = 7
    refit_days: int = 30
    components: int = 128
    min_rows: int = 100
    origins: list[int] = field(default_factory=list)  # day numbers
    models: list[LinearModel] = field(default_factory=list)
    alpha: float = 1.0
    fallback: float = 0.0  # mean log sales, for rows older than the first origin
    picture_reducer: Reducer | None = None
    copy_reducer: Reducer | None = None

    def design(self, frame: pd.DataFrame, picture: np.ndarray, copy: np.ndarray) -> np.ndarray:
        return design(frame, _reduce(self.picture_reducer, picture), _reduce(self.copy_reducer, copy), self.categories)

    def fit(self, frame: pd.DataFrame, picture: np.ndarray, copy: np.ndarray, log_sales: np.ndarray) -> TimeHonestRidge:
        self.picture_reducer = _fit_reducer(picture, self.components)
        self.copy_reducer = _fit_reducer(copy, self.components)
        X = self.design(frame, picture, copy)
        days = day_numbers(frame["launch_date"])
        order = np.sort(days)
        self.fallback = float(np.mean(log_sales))
        first = order[min(self.min_rows, len(order) - 1)] + self.gap_days
        last = int(order[-1]) + self.gap_days  # the snapshot fitted on all history: serves new SKUs
        origins = [o for o in range(int(first), last, self.refit_days)
                   if (days <= o - self.gap_days).sum() >= self.min_rows] + [last]
        # The penalty is chosen once, by leave-one-out on all history (efficient GCV); each
        # snapshot is then a plain ridge solve, which is what keeps ~30 refits cheap.
        self.alpha = float(RidgeCV(alphas=ALPHAS).fit(X, log_sales).alpha_)
        self.origins = origins
        self.models = [LinearModel.fit_ridge(X[seen], log_sales[seen], self.alpha)
                       for seen in (days <= o - self.gap_days for o in origins)]
        return self

    def predict(self, frame: pd.DataFrame, picture: np.ndarray, copy: np.ndarray) -> np.ndarray:
        """Each row scored by the latest snapshot whose origin is on or before its launch day."""
        out = np.full(len(frame), self.fallback)
        if not self.origins:
            return out
        X = self.design(frame, picture, copy)
        days = day_numbers(frame["launch_date"])
        which = np.searchsorted(np.array(self.origins), days, side="right") - 1
        for snapshot in np.unique(which[which >= 0]):
            rows = which == snapshot
            out[rows] = self.models[snapshot].predict(X[rows])
        return out

    def save(self, folder: Path) -> None:
        """``projection.json``: every field but the arrays; ``projection.npz``: ``coef`` (one row per
        snapshot, in origin order), ``intercept`` and, per reducer, ``<picture|copy>_mean`` and
        ``<picture|copy>_components`` (absent when that embedding had too few rows for a PCA)."""
        arrays = {"coef": np.stack([m.coef for m in self.models]) if self.models else np.zeros((0, 0)),
                  "intercept": np.array([m.intercept for m in self.models], dtype=np.float64)}
        for name in _REDUCERS:
            reducer = getattr(self, f"{name}_reducer")
            if reducer is not None:
                arrays |= {f"{name}_mean": reducer.mean, f"{name}_components": reducer.components}
        np.savez(folder / "projection.npz", **arrays)
        write_json(folder / "projection.json", plain_fields(self, _ARRAY_FIELDS))

    @classmethod
    def load(cls, folder: Path) -> TimeHonestRidge:
        plain = read_json(folder / "projection.json")
        with np.load(folder / "projection.npz", allow_pickle=False) as arrays:
            models = [LinearModel(coef.copy(), float(b)) for coef, b in zip(arrays["coef"], arrays["intercept"])]
            reducers = {f"{name}_reducer": Reducer(arrays[f"{name}_mean"], arrays[f"{name}_components"])
                        if f"{name}_mean" in arrays else None for name in _REDUCERS}
        return cls(**plain, models=models, **reducers)
