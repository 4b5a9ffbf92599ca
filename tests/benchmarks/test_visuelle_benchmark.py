"""The VISUELLE benchmark pipeline end to end on a small VISUELLE-shaped folder built here, its
time-honest features, and -- where the real data set is present (../shared/benchmarks/visuelle) --
the harness against the README's reference values and the committed report against its forecasts.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.visuelle import features as vf
from benchmarks.visuelle import protocol
from benchmarks.visuelle.adapter import CURVE_COLUMNS, SCALE, load_gtrends, load_visuelle

REPO = Path(__file__).resolve().parents[2]
REAL_DATA = Path(os.environ.get("VISUELLE_DIR", REPO.parent / "shared" / "benchmarks" / "visuelle"))
REPORT_DIR = REPO / "docs" / "benchmarks"
# The benchmark is not part of the installed product: it runs as a module from the repository root.
COMMAND = [sys.executable, "-m", "benchmarks.visuelle"]

CATEGORIES = ["culottes", "long sleeve", "doll dress", "long coat"]
COLORS = ["red", "blue", "black", "white"]
FABRICS = ["bengaline", "acrylic", "tulle"]
EXTRAS = ["hem", "sleeve", "zipper"]
SEASONS = [  # (label, first release, last release)
    ("SS17", "2016-12-01", "2017-05-20"),
    ("AW17", "2017-06-01", "2017-11-30"),
    ("SS18", "2017-12-01", "2018-05-20"),
    ("AW18", "2018-06-01", "2018-11-30"),
    ("SS19", "2018-12-01", "2019-04-10"),
    ("AW19", "2019-05-01", "2019-10-20"),
]
PER_SEASON = 16


def _curve(rng: np.random.Generator, level: float, weekday: int) -> np.ndarray:
    shape = np.array([0.3 * (7 - weekday) / 7, 1.0, 1.1, 1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.45])
    return rng.poisson(level * shape).astype(float)


def _row(code: int, release: pd.Timestamp, season: str, units: np.ndarray, rng: np.random.Generator) -> dict:
    row = {str(w): units[w] / SCALE for w in range(12)}
    row.update(
        external_code=code,
        season=season,
        category=CATEGORIES[code % len(CATEGORIES)],
        release_date=release.strftime("%Y-%m-%d"),
        day=0.5, week=0.5, month=0.5, year=1.0,
        image_path=f"{season}/{code:05d}.png",
        color=COLORS[rng.integers(len(COLORS))],
        fabric=FABRICS[rng.integers(len(FABRICS))],
        extra=EXTRAS[rng.integers(len(EXTRAS))],
    )  # fmt: skip
    return row


def build_visuelle(root: Path, seed: int = 0) -> Path:
    """A small VISUELLE folder: 6 seasons x 16 train products, 12 test products (the tails of SS19
    and AW19), pictures for a few, weekly Google Trends; sales depend on category and colour."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    train, test, index = [], [], []
    code = 1
    for season, first, last in SEASONS:
        dates = pd.date_range(first, last, periods=PER_SEASON + (6 if season in ("SS19", "AW19") else 0))
        for i, release in enumerate(dates):
            release = pd.Timestamp(release).normalize()
            level = 20 + 15 * (code % len(CATEGORIES)) + (10 if code % 3 == 0 else 0)
            row = _row(code, release, season, _curve(rng, level, release.day_of_week), rng)
            is_test = i >= PER_SEASON
            (test if is_test else train).append(row)
            picture = code % 2 == 0
            if picture:
                colour = [(200, 30, 30), (30, 30, 200), (30, 160, 30), (20, 20, 20)][code % 8 // 2]
                Image.new("RGB", (24, 32), colour).save(root / "images" / f"{code}.jpg", "JPEG")
            index.append(
                {
                    "external_code": code,
                    "split": "test" if is_test else "train",
                    "image_path_official": row["image_path"],
                    "local_image": f"images/{code}.jpg" if picture else "",
                }
            )
            code += 1
    columns = [str(w) for w in range(12)] + [
        "external_code", "season", "category", "release_date", "day", "week", "month", "year",
        "image_path", "color", "fabric", "extra",
    ]  # fmt: skip
    pd.DataFrame(train)[columns].to_csv(root / "train.csv", index=False)
    pd.DataFrame(test)[columns].to_csv(root / "test.csv", index=False)
    pd.DataFrame(index).to_csv(root / "image_index.csv", index=False)
    dates = pd.date_range("2015-10-05", "2019-12-16", freq="7D")
    trends = {"date": dates.strftime("%Y-%m-%d")}
    for j, word in enumerate(CATEGORIES + COLORS + FABRICS):
        trends[word] = np.round(50 + 30 * np.sin(np.arange(len(dates)) / 8 + j))
    trends["tulle"] = -1.0
    pd.DataFrame(trends).to_csv(root / "gtrends.csv", index=False)
    return root


@pytest.fixture(scope="module")
def fake_visuelle(tmp_path_factory) -> Path:
    return build_visuelle(tmp_path_factory.mktemp("visuelle") / "data")


# ---------------------------------------------------------------- the pipeline end to end
def test_benchmark_end_to_end_on_a_small_fixture(fake_visuelle: Path, tmp_path: Path, monkeypatch) -> None:
    from benchmarks.visuelle import benchmark
    from benchmarks.visuelle.benchmark import BASE, run_benchmark

    monkeypatch.setattr(benchmark, "MIN_PICTURE_HISTORY", 30)  # the fixture has 48 with a picture

    out = tmp_path / "out"
    candidates = [BASE.with_(losses=("log_l2",)), BASE.with_(losses=("log_l2",), multiplier=1.1)]
    doc = run_benchmark(
        fake_visuelle, out, home=tmp_path / "home", threads=1, candidates=candidates, echo=lambda *_: None
    )
    for name in ("visuelle.md", "visuelle.json", "visuelle_test_forecasts.csv", "visuelle_curve.png",
                 "visuelle_ablation.png", "visuelle_validation.png", "visuelle_scatter.png"):  # fmt: skip
        assert (out / name).is_file(), name
    test = load_visuelle(fake_visuelle, "test")
    forecasts = pd.read_csv(out / "visuelle_test_forecasts.csv", dtype={"external_code": str})
    assert list(forecasts.columns) == ["external_code", "week", "forecast"]
    assert len(forecasts) == 12 * len(test)
    assert set(forecasts["external_code"]) == set(test["sku_id"])
    assert sorted(forecasts["week"].unique()) == list(range(12))
    assert np.isfinite(forecasts["forecast"]).all() and (forecasts["forecast"] >= 0).all()

    # The JSON holds the report's numbers, and they are the metrics of the written forecasts.
    written = json.loads((out / "visuelle.json").read_text())
    assert written["test"]["model"] == doc["test"]["model"]
    wide = forecasts.pivot(index="external_code", columns="week", values="forecast").loc[test["sku_id"]]
    rescored = protocol.evaluate(protocol.curve_matrix(test), wide.to_numpy())
    for metric, value in rescored.items():
        assert written["test"]["model"][metric] == pytest.approx(value, abs=1e-3)
    assert [a["step"] for a in written["ablation"]] == [label for label, _ in benchmark.ABLATION]
    # The picture is measured only on the products that have one, with and without it.
    subset = written["pictures"]["subset"]
    assert (subset["n_train"], subset["n_test"]) == (48, 6)
    assert subset["with_picture"]["wape6"] != subset["without_picture"]["wape6"]
    assert "never sees a picture" in (out / "visuelle.md").read_text()
    # chosen on the pooled tail folds (two seasons' tails each, as test.csv)
    assert [f["fold"] for f in written["validation"]["folds"]] == [
        name for name, _, _ in protocol.pooled_tail_folds(load_visuelle(fake_visuelle, "train"))]
    assert written["validation"]["chosen"] in {c.label() for c in candidates}
    assert written["config"]["label"] == written["validation"]["chosen"]
    low, high = written["test"]["bootstrap_intervals"]["model"]["wape6"]
    assert low <= written["test"]["model"]["wape6"] <= high
    for step in written["ablation"]:
        assert set(step["validation"]) >= {"wape6", "bias6", "screen_p25"}, step["step"]
    report = (out / "visuelle.md").read_text()
    assert "## Test results" in report and "what was tried" in report
    assert "attribute kNN (k=11)" in report


def test_bootstrap_intervals_hold_the_estimate_and_pair_the_difference() -> None:
    rng = np.random.default_rng(3)
    y = rng.poisson(20, (200, 12)).astype(float)
    noisy = y * rng.uniform(0.5, 1.5, (200, 1))
    intervals = protocol.bootstrap_intervals(y, noisy, noisy.copy(), resamples=200)
    for name in ("wape6", "bias6", "screen_p25"):
        low, high = intervals[name]
        assert low <= protocol.evaluate(y, noisy)[name] <= high
        # a forecast against itself: the paired difference is exactly zero on every resample
        assert intervals[f"{name}_minus_reference"] == [0.0, 0.0]
    exact = protocol.bootstrap_intervals(y, y, resamples=200)
    # (a resample repeats products, and repeated products tie at the cut: the tie rule shares them)
    assert exact["wape6"] == [0.0, 0.0] and exact["bias6"] == [0.0, 0.0] and exact["screen_p25"][1] == 1.0
    assert "wape6_minus_reference" not in exact


def test_the_command_names_a_missing_data_file_in_one_line(tmp_path: Path) -> None:
    """A user error (here: a folder without train.csv) ends in one line and exit status 2, no traceback."""
    empty = tmp_path / "not-visuelle"
    empty.mkdir()
    done = subprocess.run(
        [*COMMAND, "--data", str(empty), "--out", str(tmp_path / "out"), "--home", str(tmp_path / "home")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"error: [Errno 2] No such file or directory: '{empty / 'train.csv'}'" in done.stderr.splitlines()
    assert not (tmp_path / "out").exists()


def test_a_bad_command_line_ends_in_one_error_line() -> None:
    """Missing --data: the same one `error:` line and exit status 2 as any other user error."""
    done = subprocess.run(COMMAND, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["error: the following arguments are required: --data"]


# ---------------------------------------------------------------- honest features
def _history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "launch_date": pd.to_datetime(["2018-01-01", "2018-01-20", "2018-02-20", "2018-03-01"]),
            "category": ["dress", "dress", "coat", "dress"],
            "color": ["red", "blue", "red", "red"],
            "fabric": ["silk", "silk", "wool", "silk"],
            "extra": ["hem"] * 4,
            "season": ["SS18"] * 4,
            "sales_6w": [100.0, 300.0, 50.0, 10_000.0],
        }
    )


def test_target_encodings_only_use_products_sold_out_of_their_window() -> None:
    history = _history()
    query = history.iloc[[3]].reset_index(drop=True)  # launched 2018-03-01
    encoded = vf.target_encodings(history, query, gap_days=42)
    # 42 days before 2018-03-01 is 2018-01-18: only the 2018-01-01 product is known.
    assert encoded["te_category_n"].iloc[0] == 1
    assert encoded["level_prior"].iloc[0] == pytest.approx(np.log1p(100))
    # Changing the sales of products launched later than the gap changes nothing.
    changed = history.copy()
    changed.loc[1:, "sales_6w"] = [1.0, 1.0, 1.0]
    pd.testing.assert_frame_equal(encoded, vf.target_encodings(changed, query, gap_days=42))


def test_calendar_week0_and_season_position() -> None:
    frame = pd.DataFrame(
        {"launch_date": pd.to_datetime(["2018-06-04", "2018-06-10"]), "season": ["AW18", "AW18"]}
    )  # a Monday and a Sunday
    cal = vf.calendar_features(frame, {"AW18": pd.Timestamp("2018-06-01")})
    assert cal["days_in_week0"].tolist() == [7.0, 1.0]
    assert cal["days_into_season"].tolist() == [3.0, 9.0]


def test_gtrends_features_use_only_weeks_before_launch(fake_visuelle: Path) -> None:
    gtrends = load_gtrends(fake_visuelle)
    products = load_visuelle(fake_visuelle, "train").head(5)
    base = vf.gtrends_features(products, gtrends)
    later = gtrends.copy()
    later.loc[later.index >= products["launch_date"].max(), :] = 0.0  # the launch week and after
    pd.testing.assert_frame_equal(base, vf.gtrends_features(products, later))


def test_season_tail_folds_are_shaped_like_the_test(fake_visuelle: Path) -> None:
    train = load_visuelle(fake_visuelle, "train")
    folds = protocol.season_tail_folds(train)
    assert [name for name, _, _ in folds] == [f"{s}_tail" for s in protocol.TAIL_SEASONS]
    for name, fit, val in folds:
        season = name.removesuffix("_tail")
        assert set(train.loc[val, "season"]) == {season}
        assert train.loc[fit, "launch_date"].max() < train.loc[val, "launch_date"].min()
        # The tail is the season's last launches.
        assert train.loc[val, "launch_date"].min() >= train.loc[(train["season"] == season) & ~val, "launch_date"].max()


def test_pooled_tail_folds_pool_two_seasons_tails_as_the_test_does(fake_visuelle: Path) -> None:
    train = load_visuelle(fake_visuelle, "train")
    tails = {name.removesuffix("_tail"): val for name, _, val in protocol.season_tail_folds(train)}
    folds = protocol.pooled_tail_folds(train)
    seasons = list(protocol.TAIL_SEASONS)
    assert [name for name, _, _ in folds] == [f"{a}+{b}_tails" for a, b in itertools.pairwise(seasons)]
    for name, fit, val in folds:
        first, second = name.removesuffix("_tails").split("+")
        np.testing.assert_array_equal(val, tails[first] | tails[second])
        assert set(train.loc[val, "season"]) == {first, second}
        assert fit.any() and not (fit & val).any()
        # As train.csv for test.csv: everything else launched before the later tail's first launch.
        later = max(train.loc[tails[first], "launch_date"].min(), train.loc[tails[second], "launch_date"].min())
        np.testing.assert_array_equal(fit, (train["launch_date"] < later).to_numpy() & ~val)


def test_curve_from_total_keeps_the_six_week_total() -> None:
    from benchmarks.visuelle.model import curve_from_total

    shares = np.tile(np.linspace(1, 2, 12), (3, 1))
    shares /= shares.sum(axis=1, keepdims=True)
    curve = curve_from_total(np.array([60.0, 0.0, 12.0]), shares)
    np.testing.assert_allclose(curve[:, :6].sum(axis=1), [60.0, 0.0, 12.0])
    assert curve.shape == (3, 12) and (curve[:, 6:] > curve[:, :1]).all(axis=1)[[0, 2]].all()


# ---------------------------------------------------------------- the real data (here and in CI)
needs_real_data = pytest.mark.skipif(
    not (REAL_DATA / "train.csv").is_file(), reason=f"VISUELLE not found at {REAL_DATA}"
)


@needs_real_data
def test_harness_reproduces_the_readme_references() -> None:
    train = load_visuelle(REAL_DATA, "train")
    test = load_visuelle(REAL_DATA, "test")
    assert (len(train), len(test)) == (5080, 497)
    table = protocol.run_baselines(train, test)
    for name, refs in protocol.REFERENCE_TEST.items():
        for metric, reference in refs.items():
            assert table.loc[name, metric] == pytest.approx(reference, abs=0.15), (name, metric)


@needs_real_data
def test_committed_report_matches_its_forecasts() -> None:
    """The committed numbers are those of the committed test forecasts (re-scored here)."""
    document = json.loads((REPORT_DIR / "visuelle.json").read_text())
    forecasts = pd.read_csv(REPORT_DIR / "visuelle_test_forecasts.csv", dtype={"external_code": str})
    test = load_visuelle(REAL_DATA, "test")
    wide = forecasts.pivot(index="external_code", columns="week", values="forecast").loc[test["sku_id"]]
    assert wide.shape == (497, 12) and np.isfinite(wide.to_numpy()).all()
    rescored = protocol.evaluate(protocol.curve_matrix(test), wide.to_numpy())
    for metric, value in rescored.items():
        assert document["test"]["model"][metric] == pytest.approx(value, abs=1e-3), metric
    knn = protocol.evaluate(protocol.curve_matrix(test), protocol.knn_attribute_forecast(load_visuelle(REAL_DATA, "train"), test))
    assert document["test"]["baselines"]["attribute kNN (k=11)"]["wape6"] == pytest.approx(knn["wape6"], abs=1e-3)
    assert CURVE_COLUMNS[0] == "sales_w0"


def _numbers(document: dict) -> dict:
    """The report's numbers without what depends on the run (timings, folders, machine)."""
    return {k: v for k, v in document.items() if k not in ("timings_seconds", "environment", "data")}


@needs_real_data
def test_benchmark_command_reproduces_the_committed_report(tmp_path: Path) -> None:
    """`python -m benchmarks.visuelle` from scratch (empty embedding cache) writes the committed
    numbers and forecasts: the report in docs/benchmarks is what this code computes."""
    out, home = tmp_path / "out", tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCAST_")}
    done = subprocess.run(
        [*COMMAND, "--data", str(REAL_DATA), "--out", str(out), "--home", str(home)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3000, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    committed = json.loads((REPORT_DIR / "visuelle.json").read_text())
    fresh = json.loads((out / "visuelle.json").read_text())
    assert _numbers(fresh) == _numbers(committed)
    assert {k: v for k, v in fresh["data"].items() if k != "dir"} == {
        k: v for k, v in committed["data"].items() if k != "dir"
    }
    old = pd.read_csv(REPORT_DIR / "visuelle_test_forecasts.csv", dtype={"external_code": str})
    new = pd.read_csv(out / "visuelle_test_forecasts.csv", dtype={"external_code": str})
    pd.testing.assert_frame_equal(new, old, rtol=1e-9)
    for line in ("## Test results", "### Against the goal", "## Where the signal comes from"):
        assert line in (out / "visuelle.md").read_text()
