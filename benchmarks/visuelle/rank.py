"""Ranking inside launch cohorts (issue 15): what the folds measured, and what the model keeps.

A buyer screens the products of one season against each other, so what matters is the order inside
a launch cohort (the season); the level of the whole season is a different question. Here:

- ``cell_encodings``: honest mean log 6-week units of the category x colour x fabric cell, shrunk
  to category x colour, to category and to the honest overall mean (each level a pseudo-count
  ``CELL_SHRINK`` of its parent), from products launched >= ``gap_days`` before the row.
- ``analog_rank``: where a product's honest attribute neighbours (k=11 over category / colour /
  fabric, ties kept, launched >= ``gap_days`` before) stood in their own season: each neighbour's
  log units as a z-score against its season's products known at the row's launch (launched
  >= ``gap_days`` before it), averaged.
- ``Ranker``: a LightGBM ranking objective (``lambdarank`` / ``rank_xendcg``) over groups = the
  seasons of the history, relevance = the within-season decile of the 6-week units; or
  ``relative``: a regression on the within-season z-score of log units (a pointwise ranker).
- ``blend_rank``: the blended order (z-scores of log P50 and of the ranker's score, weight
  ``w`` on the ranker) carried onto the point forecast's own values by rank matching inside each
  target season, so the ranker moves the order and never the level.
- ``LevelModel``: a Tweedie booster on the level features alone (recent and last year's sales
  levels, calendar), whose mean over a target season replaces the point forecast's season mean.

Why by hand: these are a few lines of numpy over ``features._honest_means``-style cumulative
sums; no library computes time-honest cohort encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from benchmarks.visuelle import features as vf
from benchmarks.visuelle.adapter import TARGET
from features.analogs import day_numbers
from training.forecaster import BASE_PARAMS

CELL_LEVELS = (("category",), ("category", "color"), ("category", "color", "fabric"))
CELL_SHRINK = 10.0
KNN_K = 11
RANK_BINS = 10
RANK_ROUNDS = 300
LEVEL_ROUNDS = 300
LEVEL_COLUMNS = ("level_recent", "level_last_year", "level_prior", "level_recent_vs_prior", "level_yoy",
                 vf.LEVEL_REFERENCE, "launch_doy", "days_into_season", "launch_weekday")  # fmt: skip
RANK_PARAMS = {**BASE_PARAMS, "learning_rate": 0.05, "min_data_in_leaf": 30}


# ---------------------------------------------------------------- honest features
def _log_units(history: pd.DataFrame) -> np.ndarray:
    return np.log1p(history[TARGET].to_numpy(dtype=float))


def cell_encodings(history: pd.DataFrame, frame: pd.DataFrame, gap_days: int) -> pd.DataFrame:
    """Hierarchically shrunk honest cell means (minus the overall mean) and the cell's count."""
    h_days, q_days, h_log = day_numbers(history["launch_date"]), day_numbers(frame["launch_date"]), _log_units(history)
    s, n = vf._honest_means(h_days, np.full(len(history), "all"), h_log, q_days, np.full(len(frame), "all"), gap_days)
    prior = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    estimate = prior
    for level in CELL_LEVELS:
        s, n = vf._honest_means(h_days, vf._keys(history, level), h_log, q_days, vf._keys(frame, level), gap_days)
        estimate = (s + CELL_SHRINK * estimate) / (n + CELL_SHRINK)
    return pd.DataFrame({"cell_shrunk": estimate - prior, "cell_n": n})


def _season_stats(history: pd.DataFrame, q_days: np.ndarray, gap_days: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per query and history season: mean and sd of log units of that season's products launched
    <= query day - gap (NaN where fewer than 5 are known)."""
    seasons = sorted(history["season"].astype(str).unique())
    days, log, season = day_numbers(history["launch_date"]), _log_units(history), history["season"].astype(str).to_numpy()
    mean = np.full((len(q_days), len(seasons)), np.nan)
    sd = np.full_like(mean, np.nan)
    for j, s in enumerate(seasons):
        mine = season == s
        order = np.argsort(days[mine], kind="stable")
        d, v = days[mine][order], log[mine][order]
        c1, c2 = np.concatenate([[0.0], np.cumsum(v)]), np.concatenate([[0.0], np.cumsum(v * v)])
        k = np.searchsorted(d, q_days - gap_days, side="right")
        ok = k >= 5
        m = np.where(ok, c1[k] / np.maximum(k, 1), np.nan)
        var = np.where(ok, c2[k] / np.maximum(k, 1) - m * m, np.nan)
        mean[:, j], sd[:, j] = m, np.sqrt(np.maximum(var, 1e-6))
    return seasons, mean, sd


def analog_rank(history: pd.DataFrame, frame: pd.DataFrame, gap_days: int, chunk: int = 1024) -> pd.DataFrame:
    """Mean within-season z-score of each row's honest attribute neighbours (see module doc)."""
    h_days, q_days, h_log = day_numbers(history["launch_date"]), day_numbers(frame["launch_date"]), _log_units(history)
    seasons, mean, sd = _season_stats(history, q_days, gap_days)
    onehot = (history["season"].astype(str).to_numpy()[:, None] == np.array(seasons)[None, :]).astype(float)
    codes = [pd.factorize(pd.concat([history[a], frame[a]], ignore_index=True).astype(str))[0] for a in ("category", "color", "fabric")]
    hc, qc = [c[: len(history)] for c in codes], [c[len(history):] for c in codes]
    out = np.full(len(frame), np.nan)
    same = np.full(len(frame), np.nan)
    q_season = frame["season"].astype(str).to_numpy()
    for a in range(0, len(frame), chunk):
        b = min(a + chunk, len(frame))
        sim = sum((q[a:b, None] == h[None, :]).astype(np.int16) for q, h in zip(qc, hc))
        known = h_days[None, :] <= q_days[a:b, None] - gap_days
        sim = np.where(known, sim, -1)
        count = known.sum(axis=1)
        kth = -np.sort(-sim, axis=1)[np.arange(b - a), np.clip(np.minimum(KNN_K, count) - 1, 0, None)]
        chosen = ((sim >= kth[:, None]) & known).astype(float)
        n_by = chosen @ onehot  # neighbours per season
        sum_by = chosen @ (onehot * h_log[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            z_by = (sum_by - n_by * mean[a:b]) / sd[a:b]  # summed z per season
            z_by = np.where(n_by > 0, z_by, 0.0)
            valid_n = np.where(np.isfinite(z_by) & (n_by > 0), n_by, 0.0)
            z_by = np.where(np.isfinite(z_by), z_by, 0.0)
            out[a:b] = np.where(valid_n.sum(axis=1) > 0, z_by.sum(axis=1) / valid_n.sum(axis=1), np.nan)
            own = (np.array(seasons)[None, :] == q_season[a:b, None])
            n_own = (valid_n * own).sum(axis=1)
            same[a:b] = np.where(n_own > 0, (z_by * own).sum(axis=1) / np.maximum(n_own, 1), np.nan)
    return pd.DataFrame({"arank_knn_z": out, "arank_knn_z_same_season": same})


EXTRAS = {"cells": cell_encodings, "analog_rank": analog_rank}


def extra_features(history: pd.DataFrame, frame: pd.DataFrame, kinds: tuple[str, ...], gap_days: int) -> pd.DataFrame:
    parts = [EXTRAS[k](history, frame, gap_days) for k in kinds]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=range(len(frame)))


# ---------------------------------------------------------------- ranker and level
def within_cohort(values: np.ndarray, cohort: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(percentile in 0..1, z-score) of each value inside its cohort."""
    s = pd.Series(values)
    g = s.groupby(cohort)
    pct = g.rank(pct=True, method="average").to_numpy()
    z = ((s - g.transform("mean")) / g.transform("std").replace(0, np.nan).fillna(1.0)).fillna(0.0).to_numpy()
    return pct, z


def cohort_of(frame: pd.DataFrame, kind: str) -> np.ndarray:
    """The launch cohort of each row: its season label, or its season and month of launch."""
    season = frame["season"].astype(str)
    if kind == "season":
        return season.to_numpy()
    return (season + "|" + pd.to_datetime(frame["launch_date"]).dt.strftime("%Y-%m")).to_numpy()


@dataclass
class Ranker:
    objective: str = "lambdarank"  # or "rank_xendcg", "relative"
    cohort: str = "season"  # the query groups of the history: "season" or "month" (of launch)
    bins: int = RANK_BINS  # relevance labels: the within-cohort quantile bin of the 6-week units
    rounds: int = RANK_ROUNDS
    threads: int = 1
    seeds: int = 1  # boosters with different seeds, scores averaged (the order is noisy)
    boosters: list[lgb.Booster] | None = None

    def fit(self, X: pd.DataFrame, history: pd.DataFrame) -> Ranker:
        cohort = cohort_of(history, self.cohort)
        pct, z = within_cohort(_log_units(history), cohort)
        params = {**RANK_PARAMS, "num_threads": self.threads}
        if self.objective == "relative":
            data = lgb.Dataset(X, z)
            params["objective"] = "regression"
        else:
            order = np.argsort(cohort, kind="stable")
            label = np.minimum((pct * self.bins).astype(int), self.bins - 1)
            sizes = pd.Series(cohort[order]).value_counts(sort=False).reindex(pd.unique(cohort[order])).to_numpy()
            data = lgb.Dataset(X.iloc[order], label[order], group=sizes)
            # LightGBM's default truncation (the top 30 of a group): every pair of a season was
            # measured too (lambdarank_truncation_level = the season's size): no better, 15x slower
            params.update(objective=self.objective)
            if self.bins > RANK_BINS:
                params["label_gain"] = list(range(self.bins))  # linear gains (the default stops at 31 labels)
        self.boosters = [lgb.train({**params, "seed": params["seed"] + i}, data, self.rounds) for i in range(self.seeds)]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.mean([b.predict(X) for b in self.boosters], axis=0)


def blend_rank(point: np.ndarray, score: np.ndarray, cohort: np.ndarray, weight: float) -> np.ndarray:
    """The point forecast's values, reordered inside each cohort by the blend of z(log point) and
    z(score) (``weight`` on the score): the order changes, the cohort's values do not."""
    if weight <= 0:
        return point
    _, zp = within_cohort(np.log1p(point), cohort)
    _, zs = within_cohort(score, cohort)
    blend = (1 - weight) * zp + weight * zs
    out = np.empty_like(point, dtype=float)
    for c in pd.unique(cohort):
        rows = np.flatnonzero(cohort == c)
        out[rows[np.argsort(blend[rows], kind="stable")]] = np.sort(point[rows])
    return out


@dataclass
class LevelModel:
    """Tweedie booster on the level features only: the expected units of a launch at that time."""

    rounds: int = LEVEL_ROUNDS
    threads: int = 1
    booster: lgb.Booster | None = None

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LevelModel:
        params = {**RANK_PARAMS, "objective": "tweedie", "tweedie_variance_power": 1.3, "min_data_in_leaf": 100,
                  "num_threads": self.threads}
        self.booster = lgb.train(params, lgb.Dataset(X[list(LEVEL_COLUMNS)], y), self.rounds)
        return self

    def rescale(self, point: np.ndarray, X: pd.DataFrame, cohort: np.ndarray, weight: float = 1.0) -> np.ndarray:
        """``point`` with each cohort's mean moved to the level model's mean over that cohort
        (``weight`` < 1: part of the way, geometrically)."""
        level = self.booster.predict(X[list(LEVEL_COLUMNS)])
        out = np.asarray(point, dtype=float).copy()
        for c in pd.unique(cohort):
            rows = cohort == c
            out[rows] *= (level[rows].mean() / max(out[rows].mean(), 1e-9)) ** weight
        return out


def exploration_variants(base):
    """The variants ``explore`` scores on the folds (labels as in the report)."""
    v = {"base (chosen before issue 15)": base}
    for extras in (("cells",), ("analog_rank",), ("cells", "analog_rank")):
        v[f"+ {'+'.join(extras)} features"] = base.with_(extras=extras)
    for objective in ("lambdarank", "rank_xendcg", "relative"):
        for w in (0.25, 0.5, 0.75, 1.0):
            v[f"{objective} blend w={w}"] = base.with_(rank_objective=objective, rank_weight=w)
    for objective in ("lambdarank", "relative"):
        for w in (0.5, 1.0):
            v[f"{objective} blend w={w} + cells+analog_rank"] = base.with_(
                rank_objective=objective, rank_weight=w, extras=("cells", "analog_rank"))
    for cohort in ("season", "month"):
        for groups in (None, ("attributes", "copy", "analogs", "gtrends")):
            if cohort == "season" and groups is None:
                continue  # = "lambdarank blend w=1.0"
            name = f"lambdarank w=1 cohort={cohort} groups={'same' if groups is None else 'all'}"
            v[name] = base.with_(rank_weight=1.0, rank_cohort=cohort, rank_groups=groups)
    all_groups = ("attributes", "copy", "analogs", "gtrends")
    r = base.with_(rank_weight=1.0, rank_groups=all_groups)
    v["lambdarank w=1 groups=all + cells+analog_rank"] = r.with_(extras=("cells", "analog_rank"))
    point_only = r.with_(rank_extras=("cells", "analog_rank"))
    v["point: base; ranker: all groups + cells+analog_rank"] = point_only
    v["point: base; ranker: all groups + cells+analog_rank, 3 seeds"] = point_only.with_(rank_seeds=3)
    v["point: base; ranker: all groups + cells+analog_rank, w=0.75"] = point_only.with_(rank_weight=0.75)
    for m in (1.0, 1.05, 1.1):
        v[f"point: base; ranker: all groups + cells+analog_rank; level model w=0.5 x{m}"] = point_only.with_(
            level=True, level_weight=0.5, multiplier=m)
    v["point: base x1.3; ranker: all groups + cells+analog_rank"] = point_only.with_(multiplier=1.3)
    v["point: base; ranker: all groups + cells"] = point_only.with_(rank_extras=("cells",))
    v["point: base; ranker: all groups + analog_rank"] = point_only.with_(rank_extras=("analog_rank",))
    v["point: base; ranker: all groups + cells+analog_rank, cohort=month"] = point_only.with_(rank_cohort="month")
    v["point: base; ranker: rank_xendcg, all groups + cells+analog_rank"] = point_only.with_(rank_objective="rank_xendcg")
    v["point: base; ranker: relative, all groups + cells+analog_rank"] = point_only.with_(rank_objective="relative")
    v["lambdarank w=1 groups=all bins=32"] = r.with_(rank_bins=32)
    v["lambdarank w=1 groups=all bins=4"] = r.with_(rank_bins=4)
    v["lambdarank w=1 groups=all rounds=100"] = r.with_(rank_rounds=100)
    v["lambdarank w=1 groups=all rounds=600"] = r.with_(rank_rounds=600)
    for m in (1.0, 1.1):
        for w in (1.0, 0.5):
            v[f"level model w={w} x{m}"] = base.with_(level=True, multiplier=m, level_weight=w)
    v.update(like_item_variants(base))
    return v


def like_item_variants(base):
    """Session 9: the product's like-item blend (``features.forecast.like_items_shift``), a per-SKU
    forecast that needs no other SKU of the season, on the attribute model and on every group."""
    v = {}
    every = base.with_(groups=("attributes", "copy", "analogs", "gtrends"))
    for m in (1.1, 1.2, 1.3):
        for w in (0.0, 0.25, 0.5, 0.75):
            v[f"like items w={w} x{m}"] = base.with_(like_items=True, analog_weight=w, multiplier=m)
            v[f"all groups, like items w={w} x{m}"] = every.with_(analog_weight=w, multiplier=m)
        v[f"all groups, like-item weight calibrated x{m}"] = every.with_(multiplier=m)
    return v
