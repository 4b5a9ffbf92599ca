"""Benchmark-specific features for VISUELLE, computed beside the product's ``FeaturePipeline``.

Everything here is time-honest: a row's feature may only use products launched at least
``gap_days`` before it (their 6-week sales were known by then) and Google Trends weeks that ended
before its launch day.

- ``calendar_features``: launch weekday and the days left in week 0 (week 0 is only the rest of
  the calendar week, Monday..Sunday), day of year, and the position inside the product's season
  (days since the season's first launch).
- ``attribute_frame``: colour / fabric / extra / season type as LightGBM categoricals.
- ``target_encodings``: honest smoothed mean log 6-week sales per attribute word (and the
  category x colour / category x fabric pairs), plus the recent sales level (products launched in
  the 8 weeks before the gap) and the level one year earlier.
- ``gtrends_features``: the 52 weeks of Google Trends before launch for the category, colour and
  fabric words, summarised (last 4 / 13 / 52 weeks, trend, and last year's value over the coming
  6 weeks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmarks.visuelle.adapter import GTRENDS_ATTRIBUTES, TARGET, product_gtrends
from features.analogs import day_numbers

ATTRIBUTE_CATEGORICALS = ("color", "fabric", "extra", "season_type")
ENCODED = ("category", "color", "fabric", "extra", ("category", "color"), ("category", "fabric"))
SMOOTHING = 20.0  # pseudo-count of the prior (the honest overall mean) in target encodings
RECENT_DAYS = 56
YEAR = 364  # 52 weeks: the same weekday a year earlier
LAST_YEAR_HALF_WINDOW = 28
LEVEL_REFERENCE = "level_reference"


def _season_type(season: pd.Series) -> pd.Series:
    return season.astype(str).str[:2]


def calendar_features(frame: pd.DataFrame, season_starts: dict[str, pd.Timestamp]) -> pd.DataFrame:
    launch = pd.to_datetime(frame["launch_date"]).reset_index(drop=True)
    weekday = launch.dt.day_of_week.to_numpy()
    start = frame["season"].astype(str).map(season_starts).reset_index(drop=True)
    return pd.DataFrame(
        {
            "launch_weekday": weekday.astype(float),
            "days_in_week0": (7 - weekday).astype(float),
            "launch_doy": launch.dt.day_of_year.to_numpy(dtype=float),
            "days_into_season": (launch - pd.to_datetime(start)).dt.days.to_numpy(dtype=float),
        }
    )


def season_starts(*frames: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """First launch of each season label over the given frames (a planning fact, known ahead)."""
    both = pd.concat([f[["season", "launch_date"]] for f in frames], ignore_index=True)
    return both.groupby(both["season"].astype(str))["launch_date"].min().to_dict()


def attribute_frame(frame: pd.DataFrame, vocab: dict[str, list[str]]) -> pd.DataFrame:
    out = {}
    for column in ATTRIBUTE_CATEGORICALS:
        values = _season_type(frame["season"]) if column == "season_type" else frame[column].astype(str)
        values = values.reset_index(drop=True)
        known = vocab[column]
        out[column] = pd.Categorical(values.where(values.isin(known)), categories=known)
    return pd.DataFrame(out)


def attribute_vocab(history: pd.DataFrame) -> dict[str, list[str]]:
    vocab = {}
    for column in ATTRIBUTE_CATEGORICALS:
        values = _season_type(history["season"]) if column == "season_type" else history[column].astype(str)
        vocab[column] = sorted(values.unique().tolist())
    return vocab


def _keys(frame: pd.DataFrame, key: str | tuple[str, ...]) -> np.ndarray:
    columns = (key,) if isinstance(key, str) else key
    joined = frame[columns[0]].astype(str)
    for column in columns[1:]:
        joined = joined + "|" + frame[column].astype(str)
    return joined.to_numpy(dtype=str)


def _honest_means(
    h_days: np.ndarray, h_keys: np.ndarray, h_values: np.ndarray, q_days: np.ndarray, q_keys: np.ndarray,
    gap_days: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (sum, count) of history values with the same key launched <= day - gap."""
    sums = np.zeros(len(q_days))
    counts = np.zeros(len(q_days))
    order = np.argsort(h_days, kind="stable")
    h_days, h_keys, h_values = h_days[order], h_keys[order], h_values[order]
    for key in np.unique(q_keys):
        rows = q_keys == key
        mine = h_keys == key
        if not mine.any():
            continue
        days = h_days[mine]
        cum = np.concatenate([[0.0], np.cumsum(h_values[mine])])
        n = np.searchsorted(days, q_days[rows] - gap_days, side="right")
        sums[rows] = cum[n]
        counts[rows] = n
    return sums, counts


def target_encodings(history: pd.DataFrame, frame: pd.DataFrame, gap_days: int) -> pd.DataFrame:
    """Honest smoothed mean log1p(6-week units) per attribute word, and recent sales levels."""
    h_days = day_numbers(history["launch_date"])
    q_days = day_numbers(frame["launch_date"])
    h_log = np.log1p(history[TARGET].to_numpy(dtype=float))
    all_sum, all_n = _honest_means(
        h_days, np.full(len(history), "all"), h_log, q_days, np.full(len(frame), "all"), gap_days
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = np.where(all_n > 0, all_sum / np.maximum(all_n, 1), np.nan)
    out: dict[str, np.ndarray] = {}
    for key in ENCODED:
        name = key if isinstance(key, str) else "_x_".join(key)
        s, n = _honest_means(h_days, _keys(history, key), h_log, q_days, _keys(frame, key), gap_days)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"te_{name}"] = (s + SMOOTHING * prior) / (n + SMOOTHING) - prior
        out[f"te_{name}_n"] = n
    # Recent level: products launched in the RECENT_DAYS before the gap; and the same window a year
    # earlier shifted forward by the gap (what sold in the coming weeks last year).
    order = np.argsort(h_days, kind="stable")
    days_sorted, log_sorted = h_days[order], h_log[order]
    cum = np.concatenate([[0.0], np.cumsum(log_sorted)])

    def window_mean(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        a = np.searchsorted(days_sorted, lo, side="left")
        b = np.searchsorted(days_sorted, hi, side="right")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > a, (cum[b] - cum[a]) / np.maximum(b - a, 1), np.nan)

    recent = window_mean(q_days - gap_days - RECENT_DAYS, q_days - gap_days)
    recent_last_year = window_mean(q_days - YEAR - gap_days - RECENT_DAYS, q_days - YEAR - gap_days)
    last_year = window_mean(q_days - YEAR - LAST_YEAR_HALF_WINDOW, q_days - YEAR + LAST_YEAR_HALF_WINDOW)
    out["level_recent"] = recent
    out["level_last_year"] = last_year
    out["level_prior"] = prior
    out["level_recent_vs_prior"] = recent - prior
    out["level_yoy"] = recent - recent_last_year
    # The level reference: what sold around this time last year, moved by this year's change
    # against last year (recent launches vs the same weeks a year earlier); the recent level where
    # there is no year of history, the overall mean where there is not even that.
    reference = last_year + (recent - recent_last_year)
    reference = np.where(np.isfinite(reference), reference, recent)
    out[LEVEL_REFERENCE] = np.where(np.isfinite(reference), reference, prior)
    return pd.DataFrame(out)


def gtrends_features(
    frame: pd.DataFrame, gtrends: pd.DataFrame, attributes: Sequence[str] = GTRENDS_ATTRIBUTES, weeks: int = 52
) -> pd.DataFrame:
    """Summaries of the 52 weeks of Google Trends before launch, per attribute word."""
    windows = product_gtrends(frame.reset_index(drop=True), gtrends, weeks=weeks, attributes=tuple(attributes))
    out = {}
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for j, attribute in enumerate(attributes):
                w = windows[:, j, :]
                m52 = np.nanmean(w, axis=1)
                m13 = np.nanmean(w[:, -13:], axis=1)
                m4 = np.nanmean(w[:, -4:], axis=1)
                ahead = np.nanmean(w[:, :6], axis=1)  # a year before the 6 coming weeks
                out[f"gt_{attribute}_m52"] = m52
                out[f"gt_{attribute}_m4"] = m4
                out[f"gt_{attribute}_m4_rel"] = m4 / np.maximum(m52, 1)
                out[f"gt_{attribute}_trend"] = (m13 - np.nanmean(w[:, -26:-13], axis=1)) / np.maximum(m52, 1)
                out[f"gt_{attribute}_last_year_ahead_rel"] = ahead / np.maximum(m52, 1)
    return pd.DataFrame(out)
