"""Fit the forecaster honestly: choose on an inner time fold, measure on the most recent launches,
backtest on rolling origins, then refit on everything for serving.

Timeline of one run (oldest launches left):
    |------------- development --------------|---- holdout (most recent) ----|
    |------ fit ------|--- calibration ------|
The loss, boosting rounds, bias scale and band width are chosen on the calibration fold; the
holdout is touched once, to report the metrics the gate reads. Analog features of every row see
only SKUs launched before it, and the holdout's index holds development SKUs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from features.assemble import FeaturePipeline
from features.cache import EmbeddingCache
from features.config import Settings
from features.embed import Embeddings, copy_entries, embed_copy
from features.engine import fits_on_ray
from features.novelty import Floors
from features.schema import mask_optional
from features.threads import apply as apply_threads
from features.threads import fit_threads
from training.absence import absence_costs, blank
from training.data import Dataset, holdout_split, rolling_origins
from training.decisions import decision_metrics, evidence_rows, labels, rule_of
from training.evaluate import (
    analog_knn,
    bias,
    category_mean,
    curve_wape,
    interval_metrics,
    level_stage_metrics,
    point_metrics,
    wape,
)
from training.fits import CacheEntries, run_side_by_side
from training.forecaster import LOSSES, Forecaster


@dataclass
class Fitted:
    pipeline: FeaturePipeline
    forecaster: Forecaster

    def predict(self, frame: pd.DataFrame, embeddings, today=None) -> pd.DataFrame:
        return self.forecaster.predict(self.pipeline.transform(frame, embeddings, today=today))


@dataclass
class TrainResult:
    final: Fitted  # refit on the whole catalogue: what serves
    loss: str
    loss_comparison: dict[str, dict[str, float]]
    holdout_metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]]
    backtest: list[dict[str, float]]
    holdout: pd.DataFrame  # per-SKU actual vs forecasts, for plots
    n_train: int
    n_holdout: int
    train_end: str
    holdout_start: str
    params: dict[str, object] = field(default_factory=dict)
    absence: dict[str, dict[str, float]] = field(default_factory=dict)  # holdout with one optional field absent
    floors: Floors | None = None  # novelty floors per modality, set on the holdout


def _masked(data: Dataset, settings: Settings) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame with the optional fields masked on a share of rows, and which rows lost their
    description (the title alone is their copy, as it would be in serving)."""
    masked = mask_optional(data.frame, settings.mask_share, settings.mask_seed)
    return masked, ((masked["description"] == "") & (data.frame["description"] != "")).to_numpy()


def _embed_ahead(frames: list[pd.DataFrame], settings: Settings) -> CacheEntries | None:
    """Embed the copies the side-by-side stage will ask for, here, once, so that its workers only
    read them: from the cache, or, when the fits run on Ray, from the entries returned here (a
    cluster has no access to the cache)."""
    cache = EmbeddingCache(settings.cache_path)
    try:
        frames = [frame for frame in frames if len(frame)]
        for frame in frames:
            embed_copy(frame, settings, cache=cache)
        return copy_entries(frames, settings, cache) if fits_on_ray(settings) else None
    finally:
        cache.close()


def _title_only(data: Dataset, settings: Settings) -> pd.DataFrame:
    """The rows ``_xy`` gives a title-only copy, as it embeds them."""
    masked, blanked = _masked(data, settings)
    return masked[blanked]


def _xy(pipeline: FeaturePipeline, data: Dataset, settings: Settings) -> tuple[pd.DataFrame, np.ndarray]:
    """Training features, with the optional fields masked on a share of rows (features.schema):
    the model meets "absent" here, with the meaning serving gives it, not first in production."""
    masked, blanked = _masked(data, settings)
    embeddings = data.embeddings
    if blanked.any():  # the title alone is the copy of these rows, as it would be in serving
        cache = EmbeddingCache(settings.cache_path)
        try:
            copy = embeddings.copy.copy()
            copy[blanked] = embed_copy(masked[blanked], settings, cache=cache)
        finally:
            cache.close()
        embeddings = Embeddings(embeddings.picture, copy, embeddings.picture_encoder, embeddings.copy_encoder)
    return pipeline.transform(masked, embeddings), data.frame[pipeline.target].to_numpy(dtype=float)


def fit(data: Dataset, settings: Settings, losses: tuple[str, ...] = LOSSES) -> tuple[Fitted, dict[str, dict[str, float]]]:
    """Fit the pipeline on ``data``, calibrate each loss on its last launches, keep the best by
    calibration WAPE and refit it on all of ``data``. Returns the model and the loss comparison."""
    pipeline = FeaturePipeline.fit(data.catalogue, data.embeddings, settings)
    X, y = _xy(pipeline, data, settings)
    # Calibrated (rounds, bias scale, band) on the fold as it is: the masked rows teach the boosters
    # what absence means, they are not launches whose band must be 80% wide.
    # Only the calibration rows are read (a row's features do not depend on its batch).
    fit_mask, cal = holdout_split(data.frame, settings.holdout_fraction)
    calibration = data.subset(cal)
    given = pipeline.transform(calibration.frame, calibration.embeddings)
    comparison: dict[str, dict[str, float]] = {}
    candidates: dict[str, Forecaster] = {}
    threads, quantiles = fit_threads(settings, *X.shape), None
    for loss in losses:
        model = Forecaster(loss, threads).calibrate(X[fit_mask], y[fit_mask], given, y[cal], quantiles)
        quantiles = model.quantile_boosters  # the same for every point loss: fitted once
        # Score the uncorrected point forecast: the bias scale was set on this same fold.
        raw = model.predict(given)["p50"].to_numpy() / model.scale
        comparison[loss] = {"wape": wape(y[cal], raw), "bias": bias(y[cal], raw), "scale": model.scale}
        candidates[loss] = model
    best = min(comparison, key=lambda name: comparison[name]["wape"])
    return Fitted(pipeline, candidates[best].refit(X, y)), comparison


@dataclass
class HoldoutReport:
    """What the gate and the plots read from the most recent launches (touched once)."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    absence: dict[str, dict[str, float]]
    floors: Floors
    table: pd.DataFrame  # per-SKU actual vs forecasts


def _holdout_report(fitted: Fitted, dev: Dataset, hold: Dataset, settings: Settings) -> HoldoutReport:
    """Score the development model on the holdout as the service would: the forecast and its band,
    the curve, the decision with novelty floors set on the holdout, the baselines, absence costs."""
    target = dev.catalogue.spec.target
    forecast = fitted.predict(hold.frame, hold.embeddings)
    y = hold.frame[target].to_numpy(dtype=float)
    metrics = {
        **point_metrics(y, forecast["p50"].to_numpy(), hold.frame["category"]),
        **interval_metrics(y, forecast["p10"].to_numpy(), forecast["p90"].to_numpy()),
    }
    curve = fitted.pipeline.curve(hold.frame, hold.embeddings)
    curve_columns = hold.catalogue.curve_columns
    daily_plan = daily_actual = None
    if curve is not None and curve_columns:
        daily_plan = curve * forecast["p50"].to_numpy()[:, None]
        daily_actual = hold.frame[curve_columns].to_numpy(dtype=float)
        metrics["curve_wape"] = curve_wape(daily_actual, daily_plan)
    # Where production is decided: per SKU, per plan (category x launch month), per category; before
    # launch and after a trial of the first days (the gate reads one of these: settings gate_level, gate_stage).
    metrics.update(level_stage_metrics(y, forecast["p50"].to_numpy(), hold.frame["category"],
                                       hold.frame["launch_date"], daily_plan, daily_actual))
    # The decision, as the service makes it, on every holdout launch; novelty floors from the holdout.
    novelty = fitted.pipeline.novelty(hold.frame, hold.embeddings)
    floors = Floors.fit(novelty["picture"], novelty["copy"], novelty["category_share"])
    evidence, rule = evidence_rows(novelty, floors), rule_of(settings)
    bands = [forecast[c].to_numpy() for c in ("p10", "p50", "p90")]
    novel = (novelty["joint"] <= novelty["joint"].quantile(0.2)).to_numpy()  # the least similar fifth
    metrics["coverage_p10_p90_novel_fifth"] = interval_metrics(y[novel], bands[0][novel], bands[2][novel])[
        "coverage_p10_p90"]
    metrics.update(decision_metrics(y, *labels(*bands, evidence, hold.frame, rule)))
    knn = analog_knn(fitted.pipeline, hold.frame, hold.embeddings, settings.analog_k)
    baselines = {
        "category_mean": point_metrics(y, category_mean(dev.frame, target, hold.frame)),
        "analog_knn": {**point_metrics(y, knn), **decision_metrics(y, *labels(knn, knn, knn, evidence, hold.frame, rule))},
    }
    absence = absence_costs(fitted, hold.frame, hold.embeddings, settings)

    table = pd.DataFrame(
        {
            "sku_id": hold.frame["sku_id"],
            "category": hold.frame["category"],
            "launch_date": hold.frame["launch_date"],
            "actual": y,
            **{c: forecast[c].to_numpy() for c in ("p10", "p50", "p90")},
        }
    )
    return HoldoutReport(metrics, baselines, absence, floors, table)


def _backtest_fold(i: int, train_part: Dataset, test_part: Dataset, loss: str, settings: Settings) -> dict:
    """One rolling origin: fit on the launches before it with the chosen loss, score the ones after."""
    target = train_part.catalogue.spec.target
    fold_model, _ = fit(train_part, settings, (loss,))
    fold_forecast = fold_model.predict(test_part.frame, test_part.embeddings)
    fold_y = test_part.frame[target].to_numpy(dtype=float)
    return {
        "fold": i,
        "origin": str(test_part.frame["launch_date"].min().date()),
        "n_test": len(test_part.frame),
        **point_metrics(fold_y, fold_forecast["p50"].to_numpy()),
        "category_mean_wape": wape(fold_y, category_mean(train_part.frame, target, test_part.frame)),
    }


def _final_fit(data: Dataset, loss: str, settings: Settings) -> Fitted:
    """The model that serves: the chosen loss refitted on the whole snapshot."""
    return fit(data, settings, (loss,))[0]


def train(
    data: Dataset,
    settings: Settings,
    *,
    losses: tuple[str, ...] = LOSSES,
    backtest_folds: int = 3,
    shuffle_target: bool = False,
    progress: bool = True,
) -> TrainResult:
    """The whole training run on one catalogue snapshot."""
    apply_threads(settings)
    target = data.catalogue.spec.target
    if shuffle_target:  # a deliberately useless model, for testing that the gate refuses it
        shuffled = data.frame.copy()
        shuffled[target] = np.random.default_rng(0).permutation(shuffled[target].to_numpy())
        data = Dataset(type(data.catalogue)(shuffled, data.catalogue.root, data.catalogue.spec), data.embeddings, data.fingerprint)

    steps = tqdm(total=4 + backtest_folds, desc="train", disable=not progress, leave=False)
    dev_mask, hold_mask = holdout_split(data.frame, settings.holdout_fraction)
    dev, hold = data.subset(dev_mask), data.subset(hold_mask)

    fitted, comparison = fit(dev, settings, losses)
    loss = fitted.forecaster.loss
    steps.update()
    # The holdout report, the backtest folds and the final refit do not depend on each other: side by
    # side (training/fits.py). The fitted dev model goes to the report; the loss chosen goes to all.
    folds = [(i, dev.subset(tr), dev.subset(te))
             for i, (tr, te) in enumerate(rolling_origins(dev.frame, backtest_folds, settings.holdout_fraction / 2))
             if tr.sum() >= 100 and te.sum() >= 20]
    entries = _embed_ahead([blank(hold.frame, "description")] + [_title_only(part, settings) for _, part, _ in folds]
                           + [_title_only(data, settings)], settings)
    answers = run_side_by_side([(_final_fit, (data, loss)), (_holdout_report, (fitted, dev, hold))]
                               + [(_backtest_fold, (*fold, loss)) for fold in folds], settings, entries)
    final, report, backtest = answers[0], answers[1], answers[2:]
    steps.update(3 + len(folds))
    steps.close()

    return TrainResult(
        final=final,
        loss=loss,
        loss_comparison=comparison,
        holdout_metrics=report.metrics,
        baseline_metrics=report.baselines,
        backtest=backtest,
        holdout=report.table,
        n_train=len(dev.frame),
        n_holdout=len(hold.frame),
        train_end=str(data.frame["launch_date"].max().date()),
        holdout_start=str(hold.frame["launch_date"].min().date()),
        # Every model-shaping setting (one group of the settings object), plus what training chose.
        params={**settings.model_settings(), "loss": loss, "rounds": final.forecaster.rounds},
        absence=report.absence,
        floors=report.floors,
    )
