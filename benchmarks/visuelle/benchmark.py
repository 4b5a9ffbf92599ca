"""The VISUELLE benchmark, end to end: ``python -m benchmarks.visuelle --data DIR --out DIR``.

1. Read train.csv / test.csv into the catalogue contract and embed pictures and copy through the
   embedding cache (``home``; never inside the repository).
2. Harness check: the fixed baselines on test.csv against the README's reference values.
3. Validation (train.csv only): four pooled tail folds (``protocol.pooled_tail_folds``: two
   seasons' tails each, as test.csv pools SS19's and AW19's); every candidate configuration is
   scored on them and the rule in ``choose`` picks the final one. (Until session 9 the folds were
   the five single-season tails of ``protocol.season_tail_folds``, which never measured the level of
   one season against the other that a pooled ranking depends on.)
4. Final: the chosen configuration fitted on all of train.csv, scored once on test.csv, with
   bootstrap intervals; the ablation (attributes -> + copy -> + analogs -> + Google Trends) on the
   validation folds and on test; the picture's contribution on the products that have one.

The model never sees a picture on the whole data set: in this copy, having a picture marks a
product that sells 2.4x the others, which the model would learn instead of anything about the
product (see ``model.NO_PICTURE_GROUPS``).
5. Write ``visuelle.md`` (report with plots), ``visuelle.json`` (every number of the report) and
   ``visuelle_test_forecasts.csv`` (external_code, week, forecast units; weeks 0..11).
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.visuelle import protocol
from benchmarks.visuelle.adapter import TARGET, load_gtrends, load_validated_visuelle
from benchmarks.visuelle.model import (
    GROUPS,
    NO_PICTURE_GROUPS,
    Forecast,
    ModelConfig,
    VisuelleModel,
    build_features,
    settings_for,
    without_pictures,
)
from features.cache import EmbeddingCache
from features.config import Settings
from features.embed import Embeddings, embed_frame
from features.metrics import interval_coverage

GOAL = {"wape6_gain_vs_knn": 5.0, "max_abs_bias6": 0.10, "screen_p25": 0.48}
# log-L2 + Tweedie blend, share-model curve, every group but the picture, and the product's like-item
# blend with the weight its Forecaster calibrates (``features.forecast.like_items_shift``)
BASE = ModelConfig()
ATTRIBUTES_ONLY = ("attributes",)
# Issue 15, session 5: the order inside a season from a LightGBM lambdarank carried onto the point
# forecast's values by rank matching (``rank``). Not a candidate any more: a SKU's forecast then
# depends on the other SKUs of its season, which the product cannot serve one SKU at a time, and on
# the pooled folds it ranks worse than the like-item blend (visuelle_explore_pooled.md).
RANK_EXTRAS = ("cells", "analog_rank")
RANKED = {"rank_weight": 1.0, "rank_groups": NO_PICTURE_GROUPS, "rank_extras": RANK_EXTRAS}
# The candidates scored on the validation folds, every one a forecast the product can make for one
# SKU alone: losses, curve shape, level, the like-item weight (calibrated as the product does, fixed,
# or none) and the attribute model chosen before session 9. Configurations that differ only in level
# or like-item weight share their fitted forecasters.
CANDIDATES: list[ModelConfig] = [
    BASE.with_(losses=("log_l2",)),
    BASE.with_(losses=("tweedie",)),
    BASE.with_(shares="weekday"),
    BASE.with_(bias_scale=True),
    *(BASE.with_(multiplier=m) for m in (1.0, 1.1, 1.15, 1.2, 1.3)),
    *(BASE.with_(analog_weight=w, multiplier=1.15) for w in (0.0, 0.25, 0.5, 0.75)),
    BASE.with_(analog_weight=0.0, multiplier=1.2),
    BASE.with_(groups=ATTRIBUTES_ONLY, multiplier=1.2),  # the choice before issue 15 (no analogs: no blend)
]
# Growing feature groups, all products, no picture (see model.NO_PICTURE_GROUPS for why), without
# the like-item blend; then the chosen configuration itself (groups None).
ABLATION = [
    ("attributes only", ATTRIBUTES_ONLY),
    ("+ copy embedding", ("attributes", "copy")),
    ("+ analog features", ("attributes", "copy", "analogs")),
    ("+ Google Trends", NO_PICTURE_GROUPS),
    ("chosen, with the like-item blend", None),
]
# The picture is measured on the products that have one; fewer than this in train.csv: not measured.
MIN_PICTURE_HISTORY = 100


def default_home() -> Path:
    """Where the embedding cache goes: $TRIALCAST_HOME, else a folder under the system temp dir."""
    return Path(os.environ.get("TRIALCAST_HOME") or Path(tempfile.gettempdir()) / "trialcast-visuelle")


@dataclass
class Split:
    frame: pd.DataFrame
    embeddings: Embeddings

    def subset(self, mask: np.ndarray) -> Split:
        e = self.embeddings
        return Split(
            self.frame[mask].reset_index(drop=True),
            Embeddings(e.picture[mask], e.copy[mask], e.picture_encoder, e.copy_encoder),
        )


def load_split(data_dir: Path, split: str, settings: Settings, cache: EmbeddingCache) -> Split:
    frame = load_validated_visuelle(data_dir, split)
    attrs = dict(frame.attrs)
    frame = frame.sort_values(["launch_date", "sku_id"], kind="stable").reset_index(drop=True)
    frame.attrs = attrs
    return Split(frame, embed_frame(frame, settings, cache=cache))


def choose(table: pd.DataFrame, max_abs_bias: float = GOAL["max_abs_bias6"]) -> str:
    """The selection rule, on the mean over validation folds: the lowest 6-week WAPE among the
    candidates whose mean 6-week bias is within +-max_abs_bias; if none is, the smallest |bias|."""
    ok = table[table["bias6"].abs() <= max_abs_bias]
    if len(ok):
        return str(ok["wape6"].idxmin())
    return str(table["bias6"].abs().idxmin())


def _baselines(history: pd.DataFrame, target: pd.DataFrame) -> dict[str, dict[str, float]]:
    return protocol.run_baselines(history, target).to_dict(orient="index")


def _round(obj, digits: int = 4):
    if isinstance(obj, dict):
        return {str(k): _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, digits) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else round(float(obj), digits)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def run_validation(
    train: Split,
    settings: Settings,
    gtrends: pd.DataFrame,
    root: Path,
    echo: Callable[[str], None],
    candidates: list[ModelConfig] = CANDIDATES,
) -> dict:
    """Every candidate and the fixed baselines on the pooled tail folds of train.csv (shaped like
    test.csv: two seasons' tails), the chosen candidate (``choose``), and the ablation of the chosen
    one on the same folds."""
    rows: dict[str, dict[str, dict[str, float]]] = {c.label(): {} for c in candidates}
    baselines: dict[str, dict[str, dict[str, float]]] = {}
    folds = []
    fitted = []  # per fold: its feature set and fitted-model cache, reused by the ablation
    for name, fit_mask, val_mask in protocol.pooled_tail_folds(train.frame):
        start = time.perf_counter()
        fit, val = train.subset(fit_mask), train.subset(val_mask)
        sets = feature_set(fit, val, settings, gtrends, root)
        y = protocol.curve_matrix(val.frame)
        for config in candidates:
            curve = fit_predict(config, sets)
            rows[config.label()][name] = protocol.evaluate(y, curve)
        fitted.append((name, y, sets))
        baselines[name] = _baselines(fit.frame, val.frame)
        folds.append(
            {
                "fold": name,
                "n_fit": int(fit_mask.sum()),
                "n_validation": int(val_mask.sum()),
                "validation_launches": [str(val.frame["launch_date"].min().date()), str(val.frame["launch_date"].max().date())],
                "fit_mean_units6": float(fit.frame[TARGET].mean()),
                "validation_mean_units6": float(val.frame[TARGET].mean()),
            }
        )
        echo(f"  validation fold {name}: {len(val.frame)} products, {time.perf_counter() - start:.0f}s")
    mean = {label: pd.DataFrame(per_fold).T.mean().to_dict() for label, per_fold in rows.items()}
    for name in ("attribute kNN (k=11)", "attribute kNN honest (k=11, >=84 d)", "mean curve"):
        mean[name] = pd.DataFrame({f: baselines[f][name] for f in baselines}).T.mean().to_dict()
    table = pd.DataFrame(mean).T
    chosen_label = choose(table.loc[[c.label() for c in candidates]])
    chosen = next(c for c in candidates if c.label() == chosen_label)
    echo("  ablation on the validation folds ...")
    ablation: dict[str, dict[str, dict[str, float]]] = {label: {} for label, _ in ABLATION}
    for name, y, sets in fitted:
        for label, curve in ablation_curves(chosen, sets).items():
            ablation[label][name] = protocol.evaluate(y, curve)
    ablation_mean = {label: pd.DataFrame(per_fold).T.mean().to_dict() for label, per_fold in ablation.items()}
    return {
        "folds": folds, "candidates": rows, "baselines": baselines, "mean": mean, "chosen": chosen_label,
        "ablation": ablation, "ablation_mean": ablation_mean,
    }  # fmt: skip


def feature_set(history: Split, target: Split, settings: Settings, gtrends: pd.DataFrame, root: Path) -> dict:
    """The features of one (history, target) pair and a cache of the models fitted on them
    (configurations that differ only in level or blending share their fitted forecasters)."""
    fs = build_features(history.frame, history.embeddings, target.frame, target.embeddings, settings, gtrends, root)
    return {"features": fs, "cache": {}}


def fit_predict(config: ModelConfig, feature_set: dict) -> np.ndarray:
    fs = feature_set["features"]
    model = VisuelleModel(config).fit(fs.history, fs.X_history, feature_set["cache"])
    return model.predict(fs.target, fs.X_target).curve


def ablation_curves(chosen: ModelConfig, sets: dict) -> dict[str, np.ndarray]:
    """The chosen configuration on growing feature groups without its like-item blend (or ranking),
    then as chosen (``ABLATION``)."""
    plain = chosen.with_(extras=(), rank_weight=0.0, level=False, analog_weight=0.0)
    return {label: fit_predict(chosen if groups is None else plain.with_(groups=groups), sets)
            for label, groups in ABLATION}


def has_picture(split: Split) -> np.ndarray:
    return split.frame["image"].astype(str).str.len().to_numpy() > 0


def picture_subset(
    train: Split, test: Split, chosen: ModelConfig, settings: Settings, gtrends: pd.DataFrame, root: Path
) -> dict:
    """The picture's contribution where it cannot stand for its own availability: fitted on the
    train.csv products that have a picture and scored on the test.csv products that have one, the
    chosen configuration with every group but the picture vs with the picture as well."""
    history, target = train.subset(has_picture(train)), test.subset(has_picture(test))
    out: dict = {"n_train": len(history.frame), "n_test": len(target.frame)}
    if len(history.frame) < MIN_PICTURE_HISTORY or len(target.frame) == 0:
        out["skipped"] = f"fewer than {MIN_PICTURE_HISTORY} training products with a picture, or no test product with one"
        return out
    y = protocol.curve_matrix(target.frame)
    blind = feature_set(
        Split(history.frame, without_pictures(history.embeddings)),
        Split(target.frame, without_pictures(target.embeddings)), settings, gtrends, root,
    )  # fmt: skip
    seeing = feature_set(history, target, settings, gtrends, root)
    without = fit_predict(chosen.with_(groups=NO_PICTURE_GROUPS), blind)
    with_picture = fit_predict(chosen.with_(groups=GROUPS), seeing)
    out["without_picture"] = protocol.evaluate(y, without)
    out["with_picture"] = protocol.evaluate(y, with_picture)
    out["with_minus_without_interval"] = protocol.bootstrap_intervals(y, with_picture, without)
    return out


def _subset_metrics(y: np.ndarray, f: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    return {
        "n": int(mask.sum()),
        "wape6": protocol.wape(y[mask], f[mask], 6),
        "wape12": protocol.wape(y[mask], f[mask], 12),
        "bias6": protocol.bias(y[mask], f[mask], 6),
    }


def run_benchmark(
    data_dir: Path,
    out_dir: Path,
    *,
    home: Path | None = None,
    threads: int = 2,  # encoders (torch / numpy); LightGBM uses model.LGBM_THREADS
    validation: bool = True,
    config: ModelConfig | None = None,
    candidates: list[ModelConfig] | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run the whole benchmark and write the report; returns the JSON document.

    ``validation=False`` skips the validation folds and uses ``config`` (default: the blend with
    model shares); the report then says that nothing was chosen on validation in this run.
    ``candidates`` replaces the validation's candidate list (tests use a short one).
    """
    candidates = candidates or CANDIDATES
    started = time.perf_counter()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    home = Path(home) if home else default_home()
    settings = settings_for(Settings(home=home, threads=threads))
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        return time.perf_counter()

    t = time.perf_counter()
    cache = EmbeddingCache(settings.cache_path)
    try:
        train = load_split(data_dir, "train", settings, cache)
        test = load_split(data_dir, "test", settings, cache)
    finally:
        cache.close()
    gtrends = load_gtrends(data_dir)
    root = data_dir.resolve()
    # The model never sees a picture (see model.NO_PICTURE_GROUPS); picture_subset measures it.
    blind_train = Split(train.frame, without_pictures(train.embeddings))
    blind_test = Split(test.frame, without_pictures(test.embeddings))
    echo(f"loaded {len(train.frame)} train / {len(test.frame)} test products; embeddings cache {settings.cache_path}")
    t = lap("load_and_embed", t)

    y_test = protocol.curve_matrix(test.frame)
    published = {name: fn(train.frame, test.frame) for name, fn in protocol.BASELINES.items()}
    test_baselines = {name: protocol.evaluate(y_test, f) for name, f in published.items()}
    harness = {
        name: {m: {"measured": test_baselines[name][m], "readme": ref} for m, ref in refs.items()}
        for name, refs in protocol.REFERENCE_TEST.items()
    }

    val = None
    if validation:
        echo("validation on the pooled tail folds of train.csv ...")
        val = run_validation(blind_train, settings, gtrends, root, echo, candidates)
        chosen = next(c for c in candidates if c.label() == val["chosen"])
        t = lap("validation", t)
    else:
        chosen = config or BASE
    echo(f"chosen configuration: {chosen.label()}")

    echo("final fit on train.csv ...")
    sets = feature_set(blind_train, blind_test, settings, gtrends, root)
    full = sets["features"]
    model = VisuelleModel(chosen).fit(full.history, full.X_history, sets["cache"])
    forecast: Forecast = model.predict(full.target, full.X_target)
    metrics = protocol.evaluate(y_test, forecast.curve)
    intervals = {
        "level": 0.9,
        "model": protocol.bootstrap_intervals(y_test, forecast.curve, published["attribute kNN (k=11)"]),
        "attribute kNN (k=11)": protocol.bootstrap_intervals(y_test, published["attribute kNN (k=11)"]),
        "model_vs_honest_knn": protocol.bootstrap_intervals(
            y_test, forecast.curve, published["attribute kNN honest (k=11, >=84 d)"]
        ),
    }
    t = lap("final_fit", t)

    echo("ablation and the picture on the products that have one ...")
    curves = ablation_curves(chosen, sets)
    pictured = has_picture(test)
    ablation = [
        {
            "step": label,
            "groups": list(groups or chosen.groups),
            **protocol.evaluate(y_test, curves[label]),
            "with_picture_subset": _subset_metrics(y_test, curves[label], pictured),
            "validation": val["ablation_mean"][label] if val else None,
        }
        for label, groups in ABLATION
    ]
    pictures = {
        "n_train_with_picture": int(has_picture(train).sum()),
        "n_test_with_picture": int(pictured.sum()),
        "median_units6_with_without": {
            name: [
                float(np.median(split.frame[TARGET][has_picture(split)])) if has_picture(split).any() else None,
                float(np.median(split.frame[TARGET][~has_picture(split)])) if (~has_picture(split)).any() else None,
            ]
            for name, split in (("train", train), ("test", test))
        },
        "subset": picture_subset(train, test, chosen, settings, gtrends, root),
    }
    t = lap("ablation", t)

    knn = test_baselines["attribute kNN (k=11)"]
    total = y_test[:, :6].sum(axis=1)
    coverage = interval_coverage(total, forecast.total["p10"], forecast.total["p90"])["coverage"]
    goal = {
        "wape6_target": knn["wape6"] - GOAL["wape6_gain_vs_knn"],
        "wape6": metrics["wape6"],
        "wape6_gain_vs_knn": knn["wape6"] - metrics["wape6"],
        "wape6_met": metrics["wape6"] <= knn["wape6"] - GOAL["wape6_gain_vs_knn"],
        "bias6": metrics["bias6"],
        "bias6_met": abs(metrics["bias6"]) <= GOAL["max_abs_bias6"],
        "screen_p25": metrics["screen_p25"],
        "screen_p25_met": metrics["screen_p25"] >= GOAL["screen_p25"],
        "screen_above_both_knn": bool(
            metrics["screen_p25"] > max(test_baselines[k]["screen_p25"] for k in
                                        ("attribute kNN (k=11)", "attribute kNN honest (k=11, >=84 d)"))
        ),
    }
    goal["all_met"] = bool(goal["wape6_met"] and goal["bias6_met"] and goal["screen_p25_met"]
                           and goal["screen_above_both_knn"])
    by_season = {
        season: {
            "n": int(mask.sum()),
            "model": protocol.evaluate(y_test[mask], forecast.curve[mask]),
            "attribute kNN (k=11)": protocol.evaluate(y_test[mask], published["attribute kNN (k=11)"][mask]),
        }
        for season in sorted(test.frame["season"].unique())
        for mask in [(test.frame["season"] == season).to_numpy()]
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    protocol.write_forecasts(out_dir / "visuelle_test_forecasts.csv", test.frame, forecast.curve)
    timings["total"] = round(time.perf_counter() - started, 1)
    document = {
        "data": {
            "dir": str(data_dir),
            "n_train": len(train.frame),
            "n_test": len(test.frame),
            "train_launches": [str(train.frame["launch_date"].min().date()), str(train.frame["launch_date"].max().date())],
            "test_launches": [str(test.frame["launch_date"].min().date()), str(test.frame["launch_date"].max().date())],
            "clipped_negative_values": int(train.frame.attrs.get("clipped_negative_values", 0)),
            "clipped_negative_units": int(train.frame.attrs.get("clipped_negative_units", 0)),
        },
        "config": {**asdict(chosen), "label": chosen.label(), "analog_gap_days": settings.analog_gap_days,
                   "image_encoder": settings.image_encoder, "text_encoder": settings.text_encoder,
                   "picture_components": settings.picture_components, "copy_components": settings.copy_components,
                   "projection_components": getattr(settings, "projection_components", None),
                   "bias_scales_of_forecasters": model.scales(),
                   "like_item_weights_of_forecasters": model.like_item_weights()},
        "goal": goal,
        "test": {
            "model": metrics,
            "baselines": test_baselines,
            "p10_p90_coverage_of_6w_total": coverage,
            "bootstrap_intervals": intervals,
            "by_season": by_season,
        },
        "harness_check": harness,
        "ablation": ablation,
        "pictures": pictures,
        "validation": val,
        "timings_seconds": timings,
        "environment": {"python": platform.python_version(), "threads": threads},
    }
    document = _round(document)
    (out_dir / "visuelle.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    from benchmarks.visuelle.report import write_report

    write_report(document, out_dir, test.frame, y_test, forecast.curve, published)
    echo(f"wrote {out_dir / 'visuelle.md'}, visuelle.json and visuelle_test_forecasts.csv in {timings['total']:.0f}s")
    return document
