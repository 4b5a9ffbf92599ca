"""The VISUELLE model: the product's feature path and forecaster, plus what the benchmark needs.

Total (units of weeks 0..5): the product's ``FeaturePipeline`` (copy embedding, the time-honest
ridge read-out used as the boosting base, analog features) with the benchmark's extra
columns (``benchmarks.visuelle.features``), fed to the product's ``Forecaster`` once per loss; the
point forecasts of the losses are averaged (arithmetic mean of P50; same for the P10/P90 band).

Curve (weeks 0..11): the total times a share curve. The shares come from a small LightGBM fitted
on every (product, week) cell of the history: target = the week's share of the product's 12-week
units, weighted by those units, from the week index, the launch weekday (week 0 is only the rest
of the calendar week), the ISO week and day of year of that week (holidays, sales periods) and a
few attributes. The forecast of week w is ``total * share_w / (share_0 + .. + share_5)``.

Feature groups (for the ablation; ``GROUPS`` in order; the default model uses
``NO_PICTURE_GROUPS``, and the benchmark passes it embeddings without pictures):
- ``attributes``: category, colour, fabric, extra, season type, calendar (weekday, days in week 0,
  day of year, days into the season), honest target encodings and sales levels;
- ``copy``: the copy embedding -- its PCA axes and the ridge read-out (the boosting base);
- ``analogs``: similar past products by copy (and picture where both have one);
- ``gtrends``: Google Trends of the category / colour / fabric words over the 52 weeks before launch;
- ``picture``: the picture embedding (PCA axes, picture analogs, and in the ridge read-out); used
  only where every product has a picture (``benchmark.picture_subset``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from benchmarks.visuelle import features as vf
from benchmarks.visuelle import rank as vr
from benchmarks.visuelle.adapter import CURVE_COLUMNS, N_WEEKS, TARGET, TARGET_WEEKS, VISUELLE_SPEC
from features.analogs import LIKE_ITEMS
from features.assemble import BASE_MARGIN, FeaturePipeline
from features.catalogue import Catalogue
from features.config import Settings
from features.embed import Embeddings
from training.data import holdout_split
from training.forecaster import BASE_PARAMS, Forecaster

GROUPS = ("attributes", "copy", "analogs", "gtrends", "picture")
# What the benchmark's model uses on all products. Not the picture: in this copy of VISUELLE the
# 572 products that have one are a selection that sells 2.4x the others (median 6-week units 591
# vs 230 in train.csv, 554 vs 246 in test.csv), so a model that sees pictures learns "has a
# picture -> sells more", a signal no real launch carries (every SKU has a picture). The picture's
# own contribution is measured on the subset of products that all have one (see benchmark.py).
NO_PICTURE_GROUPS = ("attributes", "copy", "analogs", "gtrends")
# Pipeline columns that VISUELLE cannot fill (no price, no channel): dropped.
UNUSED = ("log_cost_price", "log_list_price", "margin", "channel", "joint_log_price_gap")
# The 6-week units are known 42 days after launch: analogs, ridge snapshots and target encodings
# only use products launched at least that long before the row.
GAP_DAYS = 42
SHARE_ATTRIBUTES = ("category", "season_type", "days_into_season", "color", "fabric")
SHARE_PARAMS = {
    **BASE_PARAMS,
    "objective": "regression",
    "learning_rate": 0.05,
    "min_data_in_leaf": 50,
}
SHARE_ROUNDS = 300
# LightGBM threads. On 1,600-5,100 rows more threads gain nothing, and when the cores are shared
# with other work OpenMP's spinning threads make 2 threads ~10x slower than 1 (measured here).
LGBM_THREADS = 1


def group_of(column: str) -> str:
    if column.startswith("picture_"):
        return "picture"
    if column.startswith("copy_pc") or column == BASE_MARGIN:
        return "copy"
    if column.startswith(("joint_", "copy_")):
        return "analogs"
    if column.startswith("gt_"):
        return "gtrends"
    return "attributes"


def settings_for(base: Settings) -> Settings:
    """The product's settings with VISUELLE's analog gap (6-week sales are known after 42 days)."""
    return base.model_copy(update={"analog_gap_days": GAP_DAYS})


def without_pictures(embeddings: Embeddings) -> Embeddings:
    return Embeddings(
        np.full_like(embeddings.picture, np.nan), embeddings.copy,
        embeddings.picture_encoder, embeddings.copy_encoder,
    )  # fmt: skip


@dataclass
class FeatureSet:
    history: pd.DataFrame  # adapter rows (sorted by launch), with the extra attribute columns
    target: pd.DataFrame
    X_history: pd.DataFrame
    X_target: pd.DataFrame


def build_features(
    history: pd.DataFrame,
    history_embeddings: Embeddings,
    target: pd.DataFrame,
    target_embeddings: Embeddings,
    settings: Settings,
    gtrends: pd.DataFrame,
    root: Path,
) -> FeatureSet:
    """The product's pipeline fitted on ``history`` plus the benchmark's columns, for both frames."""
    pipeline = FeaturePipeline.fit(Catalogue(history, Path(root), VISUELLE_SPEC), history_embeddings, settings)
    starts = vf.season_starts(history, target)
    vocab = vf.attribute_vocab(history)

    def one(frame: pd.DataFrame, embeddings: Embeddings) -> pd.DataFrame:
        base = pipeline.transform(frame, embeddings).drop(columns=list(UNUSED), errors="ignore")
        extra = [
            vf.calendar_features(frame, starts),
            vf.attribute_frame(frame, vocab),
            vf.target_encodings(history, frame, settings.analog_gap_days),
            vf.gtrends_features(frame, gtrends),
        ]
        return pd.concat([base, *extra], axis=1)

    return FeatureSet(history, target, one(history, history_embeddings), one(target, target_embeddings))


def select(X: pd.DataFrame, groups: tuple[str, ...], like_items: bool = False) -> pd.DataFrame:
    """The columns of ``groups`` (and the analogs' mean units ``LIKE_ITEMS`` with ``like_items``);
    without the copy group the boosting base is the honest mean."""
    columns = [c for c in X.columns if group_of(c) in groups or (like_items and c == LIKE_ITEMS)]
    out = X[columns].copy()
    if "copy" not in groups:
        out[BASE_MARGIN] = X["level_prior"].to_numpy(dtype=float)
    return out


# ---------------------------------------------------------------- weekly shares
def cell_frame(frame: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
    """One row per (product, week 0..11): week index, launch weekday, calendar of that week."""
    n = len(frame)
    launch = pd.to_datetime(frame["launch_date"]).reset_index(drop=True)
    weekday = launch.dt.day_of_week.to_numpy()
    monday = (launch - pd.to_timedelta(weekday, unit="D")).to_numpy().astype("datetime64[D]")
    weeks = np.tile(np.arange(N_WEEKS), n)
    starts = pd.to_datetime(np.repeat(monday, N_WEEKS) + (weeks * 7).astype("timedelta64[D]"))
    cells = pd.DataFrame(
        {
            "week": weeks.astype(float),
            "launch_weekday": np.repeat(weekday, N_WEEKS).astype(float),
            "cell_iso_week": starts.isocalendar().week.to_numpy(dtype=float),
            "cell_doy": starts.day_of_year.to_numpy(dtype=float),
            "launch_doy": np.repeat(launch.dt.day_of_year.to_numpy(), N_WEEKS).astype(float),
        }
    )
    for column in SHARE_ATTRIBUTES:
        values = X[column].reset_index(drop=True)
        if isinstance(values.dtype, pd.CategoricalDtype):
            cells[column] = pd.Categorical(np.repeat(values.to_numpy(), N_WEEKS), categories=values.cat.categories)
        else:
            cells[column] = np.repeat(values.to_numpy(dtype=float), N_WEEKS)
    return cells


@dataclass
class ShareModel:
    threads: int = LGBM_THREADS
    booster: lgb.Booster | None = None

    def fit(self, history: pd.DataFrame, X: pd.DataFrame) -> ShareModel:
        curve = history[CURVE_COLUMNS].to_numpy(dtype=float)
        total = curve.sum(axis=1)
        sold = total > 0
        shares = curve[sold] / total[sold, None]
        cells = cell_frame(history[sold], X[sold])
        data = lgb.Dataset(cells, shares.reshape(-1), weight=np.repeat(total[sold], N_WEEKS))
        self.booster = lgb.train({**SHARE_PARAMS, "num_threads": self.threads}, data, SHARE_ROUNDS)
        return self

    def predict(self, frame: pd.DataFrame, X: pd.DataFrame) -> np.ndarray:
        """Share of each of the 12 weeks (rows sum to 1)."""
        raw = self.booster.predict(cell_frame(frame, X)).reshape(len(frame), N_WEEKS)
        raw = np.clip(raw, 1e-4, None)
        return raw / raw.sum(axis=1, keepdims=True)


def weekday_shares(history: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """The simpler alternative: mean share curve of history products launched on the same weekday."""
    curve = history[CURVE_COLUMNS].to_numpy(dtype=float)
    total = curve.sum(axis=1, keepdims=True)
    shares = np.where(total > 0, curve / np.maximum(total, 1), np.nan)
    weekday = pd.to_datetime(history["launch_date"]).dt.day_of_week.to_numpy()
    overall = np.nanmean(shares, axis=0)
    table = {d: (np.nanmean(shares[weekday == d], axis=0) if (weekday == d).any() else overall) for d in range(7)}
    out = np.stack([table[d] for d in pd.to_datetime(frame["launch_date"]).dt.day_of_week.to_numpy()])
    return out / out.sum(axis=1, keepdims=True)


def curve_from_total(total: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Weekly units: the 6-week total spread by the shares of weeks 0..5, continued to week 11."""
    first = shares[:, :TARGET_WEEKS].sum(axis=1, keepdims=True)
    return np.asarray(total, dtype=float)[:, None] * shares / first


# ---------------------------------------------------------------- the model
@dataclass(frozen=True)
class ModelConfig:
    """Every setting of the VISUELLE model (chosen on the validation folds, never on test)."""

    losses: tuple[str, ...] = ("log_l2", "tweedie")
    groups: tuple[str, ...] = NO_PICTURE_GROUPS
    bias_scale: bool = False  # apply the Forecaster's total-bias scale (set on its calibration fold)
    multiplier: float = 1.0  # a fixed level factor on the total
    shares: str = "model"  # "model" (ShareModel) or "weekday"
    calibration_fraction: float = 0.2
    extras: tuple[str, ...] = ()  # extra honest features of ``rank.EXTRAS`` ("cells", "analog_rank")
    rank_objective: str = "lambdarank"  # the ranker (``rank.Ranker``), used when rank_weight > 0
    rank_weight: float = 0.0  # weight of the ranker's score in the within-season order
    rank_cohort: str = "season"  # the ranker's query groups in the history ("season" or "month")
    rank_groups: tuple[str, ...] | None = None  # the ranker's feature groups (None: ``groups``)
    rank_bins: int = vr.RANK_BINS  # the ranker's relevance labels (within-season quantile bins)
    rank_rounds: int = vr.RANK_ROUNDS
    rank_seeds: int = 1
    rank_extras: tuple[str, ...] | None = None  # the ranker's extra features (None: ``extras``)
    level: bool = False  # each season's mean from ``rank.LevelModel`` instead of the point model
    level_weight: float = 1.0  # weight of the level model's season mean (geometric, vs the point model's)
    # the like-item blend of the product (``features.forecast.like_items_shift``): None = the weight the
    # product's Forecaster calibrates; a number = that weight. ``like_items`` feeds the analogs' mean
    # units to models whose groups lack the analogs (where they have them, it is there anyway).
    analog_weight: float | None = None
    like_items: bool = False

    def label(self) -> str:
        parts = ["+".join(self.losses), f"shares={self.shares}"]
        if self.bias_scale:
            parts.append("bias scale")
        if self.multiplier != 1.0:
            parts.append(f"x{self.multiplier:g}")
        if self.groups != NO_PICTURE_GROUPS:
            parts.append("groups=" + "+".join(self.groups))
        if self.extras:
            parts.append("+" + "+".join(self.extras))
        if self.rank_weight > 0:
            parts.append(f"{self.rank_objective} w={self.rank_weight:g}")
            if self.rank_cohort != "season":
                parts.append(f"rank cohort={self.rank_cohort}")
            if self.rank_groups is not None:
                parts.append("rank groups=" + "+".join(self.rank_groups))
            if (self.rank_bins, self.rank_rounds) != (vr.RANK_BINS, vr.RANK_ROUNDS):
                parts.append(f"rank bins={self.rank_bins} rounds={self.rank_rounds}")
            if self.rank_extras is not None:
                parts.append("rank +" + ("+".join(self.rank_extras) or "nothing"))
            if self.rank_seeds > 1:
                parts.append(f"{self.rank_seeds} rank seeds")
        if self.level:
            parts.append("level model" + (f" w={self.level_weight:g}" if self.level_weight != 1.0 else ""))
        if self.like_items:
            parts.append("+like items")
        if self.analog_weight is not None:
            parts.append(f"like-item weight {self.analog_weight:g}")
        return ", ".join(parts)

    def with_(self, **changes) -> ModelConfig:
        return replace(self, **changes)


@dataclass
class Forecast:
    curve: np.ndarray  # (n, 12) weekly units
    total: pd.DataFrame  # p10, p50, p90 of the 6-week units
    by_loss: dict[str, np.ndarray] = field(default_factory=dict)  # raw P50 of each loss


@dataclass
class VisuelleModel:
    config: ModelConfig
    threads: int = LGBM_THREADS
    forecasters: dict[str, Forecaster] = field(default_factory=dict)
    shares: ShareModel | None = None
    history: pd.DataFrame | None = None
    ranker: vr.Ranker | None = None
    level: vr.LevelModel | None = None

    def _inputs(self, X: pd.DataFrame, frame: pd.DataFrame, cache: dict | None = None,
                groups: tuple[str, ...] | None = None, extras: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The boosters' columns: ``groups`` plus ``extras`` (default: the configuration's), the
        extra honest features of ``frame`` against the history (the history's own are cached)."""
        Xs = select(X, groups or self.config.groups, self.config.like_items)
        extras = self.config.extras if extras is None else extras
        if not extras:
            return Xs
        key = ("extras", extras)
        if cache is not None and key in cache:
            extra = cache[key]
        else:
            extra = vr.extra_features(self.history, frame, extras, GAP_DAYS)
            if cache is not None:
                cache[key] = extra
        return pd.concat([Xs.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)

    def fit(self, history: pd.DataFrame, X: pd.DataFrame, cache: dict | None = None) -> VisuelleModel:
        """Fit on ``history``. ``cache`` (a dict kept by the caller for one history) reuses the
        forecasters and the share model that configurations differing only in level share."""
        cache = {} if cache is None else cache
        self.history = history
        Xs = self._inputs(X, history, cache)
        y = history[TARGET].to_numpy(dtype=float)
        fit_mask, cal_mask = holdout_split(history, self.config.calibration_fraction)
        self.forecasters = {}
        for loss in self.config.losses:
            c = self.config
            key = ("forecaster", loss, c.groups, c.extras, c.like_items, c.calibration_fraction)
            if key not in cache:
                model = Forecaster(loss, self.threads)
                model.calibrate(Xs[fit_mask], y[fit_mask], Xs[cal_mask], y[cal_mask])
                cache[key] = model.refit(Xs, y)
            model = cache[key]
            if c.analog_weight is not None:  # a fixed like-item weight instead of the calibrated one
                model = replace(model, analog_weight=c.analog_weight)
            self.forecasters[loss] = model
        if self.config.rank_weight > 0:
            c = self.config
            extras = c.extras if c.rank_extras is None else c.rank_extras
            key = ("ranker", c.rank_objective, c.rank_cohort, c.rank_groups or c.groups, extras, c.rank_bins,
                   c.rank_rounds, c.rank_seeds)
            if key not in cache:
                Xr = self._inputs(X, history, cache, c.rank_groups, extras)
                ranker = vr.Ranker(c.rank_objective, c.rank_cohort, c.rank_bins, c.rank_rounds, threads=self.threads,
                                   seeds=c.rank_seeds)
                cache[key] = ranker.fit(Xr, history)
            self.ranker = cache[key]
        if self.config.level:
            if "level" not in cache:
                cache["level"] = vr.LevelModel(threads=self.threads).fit(X, y)
            self.level = cache["level"]
        if self.config.shares == "model":
            if "shares" not in cache:
                cache["shares"] = ShareModel(self.threads).fit(history, X)
            self.shares = cache["shares"]
        return self

    def predict(self, frame: pd.DataFrame, X: pd.DataFrame) -> Forecast:
        Xs = self._inputs(X, frame)
        bands, by_loss = [], {}
        m = self.config.multiplier
        for loss, model in self.forecasters.items():
            out = model.predict(Xs)
            raw = out["p50"].to_numpy() / model.scale
            by_loss[loss] = raw
            p50 = raw * (model.scale if self.config.bias_scale else 1.0) * m
            bands.append(pd.DataFrame({"p10": out["p10"] * m, "p50": p50, "p90": out["p90"] * m}))
        total = sum(bands) / len(bands)
        total = self._order_and_level(total, frame, X, Xs)
        total["p10"] = np.minimum(total["p10"], total["p50"])
        total["p90"] = np.maximum(total["p90"], total["p50"])
        if self.config.shares == "model":
            shares = self.shares.predict(frame, X)
        else:
            shares = weekday_shares(self.history, frame)
        return Forecast(curve_from_total(total["p50"].to_numpy(), shares), total, by_loss)

    def _order_and_level(self, total: pd.DataFrame, frame: pd.DataFrame, X: pd.DataFrame, Xs: pd.DataFrame) -> pd.DataFrame:
        """The ranker's order inside each target season, then the level model's season mean; the
        P10/P90 band moves by the same factor as P50."""
        if self.ranker is None and self.level is None:
            return total
        cohort = frame["season"].astype(str).to_numpy()
        p50 = total["p50"].to_numpy(dtype=float)
        new = p50
        if self.ranker is not None:
            c = self.config
            same = c.rank_groups is None and c.rank_extras is None
            Xr = Xs if same else self._inputs(X, frame, None, c.rank_groups, c.rank_extras)
            new = vr.blend_rank(new, self.ranker.predict(Xr), cohort, self.config.rank_weight)
        if self.level is not None:
            # the level model's season mean, moved by the multiplier; a weight < 1 keeps part of the
            # point model's own season mean (geometric mix of the two means)
            m = self.config.multiplier
            new = self.level.rescale(new / m, X, cohort, self.config.level_weight) * m
        factor = new / np.maximum(p50, 1e-9)
        return pd.DataFrame({"p10": total["p10"].to_numpy() * factor, "p50": new, "p90": total["p90"].to_numpy() * factor},
                            index=total.index)

    def scales(self) -> dict[str, float]:
        return {loss: float(m.scale) for loss, m in self.forecasters.items()}

    def like_item_weights(self) -> dict[str, float]:
        """The like-item weight each loss's forecaster uses (calibrated, or the configuration's)."""
        return {loss: float(m.analog_weight) for loss, m in self.forecasters.items()}
