"""``python -m benchmarks.visuelle.explore --data DIR --work DIR``: scratch runs on the validation folds.

Issue 15 asks which ways of ranking inside a launch cohort help: a LightGBM ranking objective
blended with the point forecast, analog rank features, shrunk attribute cells and a separate
season level. This command measures them on the season-tail folds of train.csv only (never
test.csv) and prints one row per variant (fold mean of WAPE6, bias6, screening; per-fold WAPE6).
The fold feature sets are pickled under ``--work`` so repeated runs skip the embedding and the
pipeline. The benchmark command does not run this; its candidate list holds what the folds kept.
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.visuelle import protocol
from benchmarks.visuelle import rank as vr
from benchmarks.visuelle.benchmark import Split, feature_set, load_split
from benchmarks.visuelle.adapter import load_gtrends
from benchmarks.visuelle.model import ModelConfig, VisuelleModel, settings_for, without_pictures
from features.cache import EmbeddingCache
from features.config import Settings

ATTR = ("attributes",)
BASE = ModelConfig(groups=ATTR, multiplier=1.2)  # the configuration the folds chose before issue 15


def fold_sets(data: Path, work: Path) -> list[tuple[str, np.ndarray, dict]]:
    """(fold name, actual curves, feature set) per fold; built once and pickled under ``work``."""
    path = work / "folds.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    settings = settings_for(Settings(home=work / "home", threads=2))
    cache = EmbeddingCache(settings.cache_path)
    try:
        train = load_split(data, "train", settings, cache)
    finally:
        cache.close()
    train = Split(train.frame, without_pictures(train.embeddings))
    gtrends, root = load_gtrends(data), data.resolve()
    out = []
    for name, fit_mask, val_mask in protocol.season_tail_folds(train.frame):
        fit, val = train.subset(fit_mask), train.subset(val_mask)
        sets = feature_set(fit, val, settings, gtrends, root)
        out.append((name, protocol.curve_matrix(val.frame), {"features": sets["features"], "cache": {}}))
        print(f"  features of {name}", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def score(folds, config: ModelConfig) -> dict:
    rows = {}
    for name, y, sets in folds:
        fs = sets["features"]
        model = VisuelleModel(config).fit(fs.history, fs.X_history, sets["cache"])
        rows[name] = protocol.evaluate(y, model.predict(fs.target, fs.X_target).curve)
    table = pd.DataFrame(rows).T
    return {**table.mean().to_dict(), "per_fold": table["wape6"].round(1).tolist()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.visuelle.explore")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True, help="scratch folder (embedding cache, pickled folds)")
    p.add_argument("--only", default="", help="comma-separated variant labels to run (default: all)")
    args = p.parse_args(argv)
    folds = fold_sets(args.data, args.work)
    variants = vr.exploration_variants(BASE)
    only = [s for s in args.only.split(",") if s]
    for label, config in variants.items():
        if only and label not in only:
            continue
        t = time.perf_counter()
        r = score(folds, config)
        print(f"{label:60s} wape6 {r['wape6']:5.1f} bias {100 * r['bias6']:+6.1f}% screen {100 * r['screen_p25']:5.1f}% "
              f"folds {r['per_fold']} ({time.perf_counter() - t:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
