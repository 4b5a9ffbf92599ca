"""Issue 15's ranking inside a season: honest cohort features, the rank matching, the level model,
the ranked configuration end to end on the small VISUELLE-shaped fixture, and the explore command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.visuelle import protocol
from benchmarks.visuelle import rank as vr
from benchmarks.visuelle.adapter import load_gtrends, load_visuelle
from tests.benchmarks.test_visuelle_benchmark import _history, build_visuelle


@pytest.fixture(scope="module")
def fake_visuelle(tmp_path_factory) -> Path:
    return build_visuelle(tmp_path_factory.mktemp("visuelle-rank") / "data")


def test_cell_encodings_shrink_to_the_parent_and_only_see_known_launches() -> None:
    history = _history()
    query = history.iloc[[3]].reset_index(drop=True)  # launched 2018-03-01: only 2018-01-01 is known
    cells = vr.cell_encodings(history, query, gap_days=42)
    # one known product, the prior is its own log sales: every level shrinks to it, so 0 above the prior
    assert cells["cell_shrunk"].iloc[0] == pytest.approx(0.0)
    assert cells["cell_n"].iloc[0] == 1
    changed = history.copy()
    changed.loc[1:, "sales_6w"] = [1.0, 1.0, 1.0]
    pd.testing.assert_frame_equal(cells, vr.cell_encodings(changed, query, gap_days=42))
    # with two known products in different cells, the query's own cell pulls it above the prior
    later = pd.DataFrame({**{c: [history[c].iloc[0]] for c in history.columns}})
    later["launch_date"] = pd.Timestamp("2018-06-01")
    two = vr.cell_encodings(history, later, gap_days=42)  # knows all four; its cell (dress|red|silk) sells more
    assert two["cell_n"].iloc[0] == 2 and two["cell_shrunk"].iloc[0] > 0


def test_analog_rank_is_honest_and_reads_the_season_standing(fake_visuelle: Path) -> None:
    train = load_visuelle(fake_visuelle, "train")
    target = train.tail(10).reset_index(drop=True)
    base = vr.analog_rank(train, target, gap_days=42)
    assert list(base.columns) == ["arank_knn_z", "arank_knn_z_same_season"]
    assert np.isfinite(base["arank_knn_z"]).all()
    # a row's features never change with the sales of products launched less than 42 days before it
    for i in (0, len(target) - 1):
        cut = target["launch_date"].iloc[i] - pd.Timedelta(days=42)
        changed = train.copy()
        changed.loc[changed["launch_date"] > cut, "sales_6w"] = 1.0
        again = vr.analog_rank(changed, target, gap_days=42)
        pd.testing.assert_series_equal(base.iloc[i], again.iloc[i])
    # ... and do change with those launched before (the feature reads them)
    early = train.copy()
    early.loc[early["launch_date"] < target["launch_date"].min() - pd.Timedelta(days=60), "sales_6w"] *= 3
    assert not np.allclose(vr.analog_rank(early, target, gap_days=42)["arank_knn_z"], base["arank_knn_z"])


def test_blend_rank_keeps_each_seasons_values_and_takes_the_rankers_order() -> None:
    point = np.array([10.0, 20.0, 30.0, 5.0, 50.0])
    cohort = np.array(["A", "A", "A", "B", "B"])
    score = np.array([3.0, 1.0, 2.0, 0.0, 1.0])  # A: product 0 best, then 2, then 1
    out = vr.blend_rank(point, score, cohort, weight=1.0)
    np.testing.assert_allclose(out, [30.0, 10.0, 20.0, 5.0, 50.0])
    np.testing.assert_allclose(vr.blend_rank(point, score, cohort, weight=0.0), point)
    for c in ("A", "B"):
        assert sorted(out[cohort == c]) == sorted(point[cohort == c])


def test_the_level_model_moves_each_season_to_its_mean() -> None:
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({c: rng.normal(size=n) for c in vr.LEVEL_COLUMNS})
    y = np.exp(2 + X["level_recent"].to_numpy())
    level = vr.LevelModel(rounds=30).fit(X, y)
    cohort = np.where(np.arange(n) < 200, "SS", "AW")
    point = np.full(n, 5.0)
    full = level.rescale(point, X, cohort, 1.0)
    expected = level.booster.predict(X[list(vr.LEVEL_COLUMNS)])
    for c in ("SS", "AW"):
        assert full[cohort == c].mean() == pytest.approx(expected[cohort == c].mean())
    half = level.rescale(point, X, cohort, 0.5)
    assert half[cohort == "SS"].mean() == pytest.approx(np.sqrt(5.0 * expected[cohort == "SS"].mean()))


def test_the_ranked_configuration_end_to_end_on_the_fixture(fake_visuelle: Path, tmp_path: Path) -> None:
    """The benchmark's ranked candidate fits and forecasts; inside each test season its totals are the
    point model's totals in the ranker's order."""
    from benchmarks.visuelle.benchmark import (
        ATTRIBUTES_ONLY,
        BASE,
        RANKED,
        Split,
        feature_set,
        load_split,
    )
    from benchmarks.visuelle.model import VisuelleModel, settings_for, without_pictures
    from features.cache import EmbeddingCache
    from features.config import Settings

    settings = settings_for(Settings(home=tmp_path / "home", threads=1))
    cache = EmbeddingCache(settings.cache_path)
    try:
        train, test = (load_split(fake_visuelle, s, settings, cache) for s in ("train", "test"))
    finally:
        cache.close()
    train = Split(train.frame, without_pictures(train.embeddings))
    test = Split(test.frame, without_pictures(test.embeddings))
    sets = feature_set(train, test, settings, load_gtrends(fake_visuelle), fake_visuelle)
    fs = sets["features"]
    plain = BASE.with_(groups=ATTRIBUTES_ONLY, losses=("log_l2",))
    ranked = plain.with_(**RANKED, level=True, level_weight=0.5)
    p = VisuelleModel(plain).fit(fs.history, fs.X_history, sets["cache"]).predict(fs.target, fs.X_target)
    model = VisuelleModel(plain.with_(**RANKED)).fit(fs.history, fs.X_history, sets["cache"])
    r = model.predict(fs.target, fs.X_target)
    season = fs.target["season"].astype(str).to_numpy()
    for s in np.unique(season):
        rows = season == s
        np.testing.assert_allclose(np.sort(r.total["p50"].to_numpy()[rows]), np.sort(p.total["p50"].to_numpy()[rows]))
    assert (r.total["p10"] <= r.total["p50"]).all() and (r.total["p50"] <= r.total["p90"]).all()
    leveled = VisuelleModel(ranked).fit(fs.history, fs.X_history, sets["cache"]).predict(fs.target, fs.X_target)
    assert np.isfinite(leveled.curve).all() and (leveled.curve >= 0).all()
    assert not np.allclose(leveled.total["p50"], r.total["p50"])  # the level model moved the seasons' means


def test_explore_scores_variants_on_the_folds_and_writes_its_table(fake_visuelle: Path, tmp_path: Path) -> None:
    from benchmarks.visuelle import explore

    work, out = tmp_path / "work", tmp_path / "out"
    labels = ["base (chosen before issue 15)", "point: base; ranker: all groups + cells+analog_rank"]
    explore.main(["--data", str(fake_visuelle), "--work", str(work), "--only", "|".join(labels), "--out", str(out)])
    table = json.loads((out / "visuelle_explore.json").read_text())
    baselines = [label for label in table if label.startswith("baseline: ")]
    assert [label for label in table if label not in baselines] == labels
    assert baselines == [f"baseline: {name}" for name in protocol.BASELINES]
    for r in table.values():
        assert len(r["per_fold"]) == 5 and 0 <= r["screen_p25"] <= 1
    # the ranker reorders inside seasons only: the fold totals (hence the bias) are the point model's
    assert table[labels[1]]["bias6"] == pytest.approx(table[labels[0]]["bias6"])
    assert "| base (chosen before issue 15) |" in (out / "visuelle_explore.md").read_text()
    with pytest.raises(SystemExit):
        explore.main(["--data", str(fake_visuelle), "--work", str(work), "--only", "no such variant"])
    explore.main(["--data", str(fake_visuelle), "--work", str(work), "--only", labels[0], "--out", str(out),
                  "--folds", "pooled"])
    pooled = json.loads((out / "visuelle_explore_pooled.json").read_text())
    assert list(pooled) == [labels[0], *baselines]
    assert all(len(r["per_fold"]) == 4 for r in pooled.values())
    assert pooled[labels[0]]["wape6"] != table[labels[0]]["wape6"]  # other folds, other numbers
    assert "pooled_tail_folds" in (out / "visuelle_explore_pooled.md").read_text()
