"""The embedded SYNTHETIC sample catalogue: contract, determinism, pictures, copy and learnability."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from features import sample
from features.catalogue import load_catalogue
from features.sample import (
    COLOURS,
    CURVE_COLUMNS,
    MATERIALS,
    PATTERNS,
    STYLES,
    SYNTHETIC_NOTE,
    hidden_sales,
    sample_frames,
    write_sample_catalogue,
)

N = 600
CANDIDATES = 40
CONTRACT = [
    "sku_id", "launch_date", "category", "title", "description", "image",
    "cost_price", "list_price", "channel",
]
SALES = ["sales_7d", *CURVE_COLUMNS]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample_a")
    path = write_sample_catalogue(out, n=N, seed=7, candidates=CANDIDATES)
    assert path == out / "catalogue.parquet"
    return out


@pytest.fixture(scope="module")
def written_again(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample_b")
    write_sample_catalogue(out, n=N, seed=7, candidates=CANDIDATES)
    return out


@pytest.fixture(scope="module")
def default_frames() -> sample.SampleFrames:
    return sample_frames(n=3000, seed=7, candidates=CANDIDATES)


def wape(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.abs(y - p).sum() / y.sum())


def time_split(catalogue: pd.DataFrame, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(pd.to_datetime(catalogue["launch_date"]).to_numpy(), kind="stable")
    cut = round(len(catalogue) * (1 - holdout))
    return order[:cut], order[cut:]


# ---------------------------------------------------------------- contract and files
def test_catalogue_has_exactly_the_contract_columns_and_passes_the_loader(written: Path) -> None:
    frame = pd.read_parquet(written / "catalogue.parquet")
    assert list(frame.columns) == CONTRACT + SALES
    assert len(frame) == N
    assert frame["sku_id"].is_unique
    assert frame["sku_id"].str.fullmatch(r"S\d{5}").all()
    assert frame["category"].nunique() >= 8
    dates = pd.to_datetime(frame["launch_date"], format="%Y-%m-%d")
    assert (dates.max() - dates.min()).days >= 730
    assert (frame["cost_price"] > 0).all()
    assert (frame["list_price"] > frame["cost_price"]).all()
    assert set(frame["channel"]) <= {"app", "web", "store"}
    assert (frame["image"] == "images/" + frame["sku_id"] + ".png").all()
    for column in SALES:
        assert pd.api.types.is_integer_dtype(frame[column]), column
        assert (frame[column] >= 0).all(), column
    assert (frame[list(CURVE_COLUMNS)].sum(axis=1) == frame["sales_7d"]).all()
    assert 60 <= frame["sales_7d"].mean() <= 200

    loaded = load_catalogue(written / "catalogue.parquet")  # the product's own contract check
    assert len(loaded) == N
    assert loaded.curve_columns == list(CURVE_COLUMNS)


def test_candidates_are_new_skus_without_sales_in_utf8(written: Path) -> None:
    raw = (written / "candidates.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM: the loader reads plain UTF-8
    raw.decode("utf-8")
    candidates = pd.read_csv(written / "candidates.csv", dtype=str, encoding="utf-8")
    history = pd.read_parquet(written / "catalogue.parquet")
    assert list(candidates.columns) == CONTRACT
    assert not any(c.startswith("sales") for c in candidates.columns)
    assert len(candidates) == CANDIDATES
    assert set(candidates["sku_id"]).isdisjoint(history["sku_id"])
    assert pd.to_datetime(candidates["launch_date"]).min() > pd.to_datetime(history["launch_date"]).max()
    assert all((written / p).is_file() for p in candidates["image"])
    loaded = load_catalogue(written / "candidates.csv", require_target=False)
    assert len(loaded) == CANDIDATES


def test_files_are_labelled_synthetic(written: Path) -> None:
    metadata = pq.read_schema(written / "catalogue.parquet").metadata
    assert metadata[b"trialcast"].decode("utf-8") == SYNTHETIC_NOTE
    assert SYNTHETIC_NOTE in (written / "README.txt").read_text(encoding="utf-8")
    assert "SYNTHETIC" in sample.__doc__


# ---------------------------------------------------------------- determinism
def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_frames_and_bytes(written: Path, written_again: Path) -> None:
    a = pd.read_parquet(written / "catalogue.parquet")
    b = pd.read_parquet(written_again / "catalogue.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (written / "catalogue.parquet").read_bytes() == (written_again / "catalogue.parquet").read_bytes()
    assert (written / "candidates.csv").read_bytes() == (written_again / "candidates.csv").read_bytes()
    for sku in ("S00001", "S00123", f"S{N:05d}", f"S{N + CANDIDATES:05d}"):
        assert (written / "images" / f"{sku}.png").read_bytes() == (
            written_again / "images" / f"{sku}.png"
        ).read_bytes(), sku
    # Every file, not only a few: the same seed is the same folder, byte for byte.
    first, second = _digests(written), _digests(written_again)
    assert len(first) == N + CANDIDATES + 3  # pictures, catalogue.parquet, candidates.csv, README.txt
    assert first == second


def test_history_window_is_read_where_it_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patching the window in ``features.sample.world`` (the module that reads it) moves the
    launch dates: tests/training/test_retrain.py draws later launches this way."""
    from features.sample import world

    start, end = np.datetime64("2025-07-08"), np.datetime64("2025-09-15")
    default = sample_frames(n=50, seed=11, candidates=0)
    monkeypatch.setattr(world, "HISTORY_START", start)
    monkeypatch.setattr(world, "HISTORY_END", end)
    moved = sample_frames(n=50, seed=11, candidates=0).catalogue
    dates = pd.to_datetime(moved["launch_date"])
    assert dates.min() >= pd.Timestamp("2025-07-08") and dates.max() <= pd.Timestamp("2025-09-15")
    assert not moved["launch_date"].equals(default.catalogue["launch_date"])


def test_another_seed_gives_another_catalogue() -> None:
    a = sample_frames(n=200, seed=7, candidates=5).catalogue
    b = sample_frames(n=200, seed=8, candidates=5).catalogue
    assert not a["sales_7d"].equals(b["sales_7d"])
    assert not a["title"].equals(b["title"])


# ---------------------------------------------------------------- pictures
def test_pictures_are_small_distinct_pngs(written: Path) -> None:
    paths = sorted((written / "images").glob("*.png"))
    assert len(paths) == N + CANDIDATES
    digests = {hashlib.sha1(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == len(paths)  # no two pictures are identical
    with Image.open(paths[0]) as image:
        assert image.format == "PNG"
        assert image.size == (128, 128)
        assert image.mode == "RGB"


def test_pictures_show_the_colour_on_a_light_background(written: Path) -> None:
    attributes = sample_frames(n=N, seed=7, candidates=CANDIDATES).attributes
    solid = attributes[attributes["pattern"] == "solid"].head(40)
    assert len(solid) >= 20
    for row in solid.itertuples():
        with Image.open(written / "images" / f"{row.sku_id}.png") as image:
            counts = sorted(image.convert("RGB").getcolors(128 * 128), reverse=True)
        (_, first), (_, second) = counts[0], counts[1]
        target = np.array(COLOURS[row.colour].rgb)
        close = [np.abs(np.array(c) - target).max() <= 12 for c in (first, second)]
        assert any(close), (row.sku_id, row.colour, first, second)
        background = second if close[0] else first
        assert min(background) >= 225, (row.sku_id, background)


def test_pattern_changes_the_picture() -> None:
    def colours(pattern: str) -> int:
        image = sample.render_picture("T恤", "blue", pattern, "minimal", number=5, seed=7)
        return len(image.getcolors(128 * 128))

    assert colours("stripes") > colours("solid")
    assert colours("print") > colours("solid")


# ---------------------------------------------------------------- copy
def test_copy_states_the_attributes_in_chinese_and_often_english() -> None:
    frames = sample_frames(n=N, seed=7, candidates=CANDIDATES)
    attributes = frames.attributes.set_index("sku_id")
    copy = pd.concat([frames.catalogue, frames.candidates])[["sku_id", "title", "description"]]
    english = 0
    for row in copy.itertuples():
        a = attributes.loc[row.sku_id]
        text = f"{row.title} {row.description}"
        for word in (
            COLOURS[a.colour].cn, PATTERNS[a.pattern].cn, MATERIALS[a.material].cn,
            STYLES[a["style"]].cn, a.category,
        ):
            assert word in text, (row.sku_id, word, text)
        assert any(s in text for s in ("春季新款", "夏季新款", "秋季新款", "秋冬新款")), text
        english += COLOURS[a.colour].en.lower() in text.lower()
    assert english >= 0.6 * len(copy)


# ---------------------------------------------------------------- the hidden function
def test_hidden_function_has_the_documented_season_and_price_effects() -> None:
    def one(category: str, colour: str, material: str, date: str, price: float, cost: float) -> float:
        frame = pd.DataFrame([{
            "category": category, "colour": colour, "pattern": "solid", "material": material,
            "style": "minimal", "launch_date": date, "list_price": price, "cost_price": cost,
        }])
        return float(hidden_sales(frame)[0])

    assert one("T恤", "white", "cotton", "2024-07-10", 99, 40) > 1.3 * one("T恤", "white", "cotton", "2024-01-10", 99, 40)
    assert one("外套", "black", "wool", "2024-01-10", 499, 200) > 1.5 * one("外套", "black", "wool", "2024-07-10", 499, 200)
    assert one("T恤", "white", "cotton", "2024-07-10", 79, 32) > one("T恤", "white", "cotton", "2024-07-10", 129, 52)
    assert one("T恤", "white", "cotton", "2024-04-10", 99, 40) > one("T恤", "green", "polyester", "2024-04-10", 99, 40) * 2


def test_sales_follow_the_hidden_function_with_small_noise(default_frames) -> None:
    catalogue = default_frames.catalogue
    history = default_frames.attributes[default_frames.attributes["split"] == "history"]
    assert list(history["sku_id"]) == list(catalogue["sku_id"])
    expected = hidden_sales(history)
    np.testing.assert_allclose(expected, history["expected_sales"].to_numpy())
    big = expected > 30  # rounding dominates the log-ratio of tiny counts
    log_ratio = np.log(catalogue["sales_7d"].to_numpy()[big] / expected[big])
    assert abs(log_ratio.mean()) < 0.02
    assert 0.07 < log_ratio.std() < 0.11


def test_category_mean_is_weak_and_the_true_attributes_are_learnable(default_frames) -> None:
    """Most recent 20% held out: a per-category mean is far off, LightGBM on the hidden attributes is not."""
    lightgbm = pytest.importorskip("lightgbm")
    catalogue = default_frames.catalogue
    attributes = default_frames.attributes[default_frames.attributes["split"] == "history"].reset_index(drop=True)
    train, test = time_split(catalogue)
    y = catalogue["sales_7d"].to_numpy(dtype=float)

    means = catalogue.iloc[train].groupby("category")["sales_7d"].mean()
    baseline = wape(y[test], catalogue.iloc[test]["category"].map(means).to_numpy())

    features = attributes[["category", "colour", "pattern", "material", "style", "month", "list_price", "cost_price"]].copy()
    for column in ("category", "colour", "pattern", "material", "style"):
        features[column] = features[column].astype("category")
    model = lightgbm.LGBMRegressor(
        n_estimators=2500, learning_rate=0.05, num_leaves=5, min_child_samples=20, reg_lambda=5.0,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=0, deterministic=True,
        n_jobs=1, verbose=-1,
    )
    model.fit(features.iloc[train], np.log1p(y[train]))
    learned = wape(y[test], np.expm1(model.predict(features.iloc[test])))
    oracle = wape(y[test], attributes["expected_sales"].to_numpy()[test])
    print(f"category-mean WAPE {baseline:.3f}, LightGBM on true attributes {learned:.3f}, hidden function {oracle:.3f}")

    assert baseline > 0.30
    assert learned < 0.11
    assert oracle < learned < baseline
