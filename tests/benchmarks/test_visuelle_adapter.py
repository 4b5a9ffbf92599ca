"""VISUELLE adapter and protocol on a tiny fake VISUELLE folder built here (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.visuelle import adapter, protocol
from benchmarks.visuelle.adapter import (
    CURVE_COLUMNS,
    SCALE,
    gtrends_window_dates,
    load_gtrends,
    load_validated_visuelle,
    load_visuelle,
    product_gtrends,
    validate_visuelle,
)
from features.catalogue import CatalogueError

CATEGORIES = ["culottes", "long sleeve", "doll dress"]
COLORS = ["red", "blue", "black"]
FABRICS = ["bengaline", "acrylic", "tulle"]
N_TRAIN = 30
WITH_IMAGE = {"3", "17"}


def _units(code: int) -> np.ndarray:
    """Deterministic whole-unit weekly curve of product ``code``."""
    return np.array([(code * 7 + w * 3) % 40 + w for w in range(12)], dtype=float)


def _row(code: int, release: pd.Timestamp, season: str, units: np.ndarray) -> dict:
    row = {str(w): units[w] / SCALE for w in range(12)}
    row.update(
        external_code=code,
        season=season,
        category=CATEGORIES[code % 3],
        release_date=release.strftime("%Y-%m-%d"),
        day=0.5,
        week=0.5,
        month=0.5,
        year=1.0,
        image_path=f"PE18/{code:05d}.png",
        color=COLORS[(code // 3) % 3],
        fabric=FABRICS[(code // 9) % 3],
        extra="hem",
    )
    return row


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "visuelle"
    (root / "images").mkdir(parents=True)
    start = pd.Timestamp("2018-03-07")  # a Wednesday
    train = []
    for code in range(1, N_TRAIN + 1):
        units = _units(code)
        if code == 5:
            units[4] = -2  # a negative return, to be clipped
        season = "SS18" if code <= 15 else "AW18"
        train.append(_row(code, start + pd.Timedelta(days=7 * code), season, units))
    columns = [str(w) for w in range(12)] + [
        "external_code", "season", "category", "release_date", "day", "week", "month", "year",
        "image_path", "color", "fabric", "extra",
    ]  # fmt: skip
    pd.DataFrame(train)[columns].to_csv(root / "train.csv", index=False)
    test = [_row(100 + i, pd.Timestamp("2019-01-02"), "SS19", _units(100 + i)) for i in range(3)]
    pd.DataFrame(test)[columns].to_csv(root / "test.csv", index=False)

    index = [
        {
            "external_code": code,
            "split": "train",
            "image_path_official": f"PE18/{code:05d}.png",
            "local_image": f"images/{code}.jpg" if str(code) in WITH_IMAGE else "",
        }
        for code in range(1, N_TRAIN + 1)
    ]
    pd.DataFrame(index).to_csv(root / "image_index.csv", index=False)
    for code in WITH_IMAGE:
        Image.new("RGB", (8, 8), (200, 30, 30)).save(root / "images" / f"{code}.jpg", "JPEG")

    # Weekly Google Trends on Mondays; every value encodes its own week index, so the test can see
    # exactly which weeks entered a window. "tulle" is -1 throughout (no data).
    dates = pd.date_range("2017-01-02", "2019-06-24", freq="7D")
    trends = {"date": dates.strftime("%Y-%m-%d")}
    for word in CATEGORIES + COLORS + FABRICS:
        trends[word] = np.arange(len(dates), dtype=float)
    trends["tulle"] = -1.0
    pd.DataFrame(trends).to_csv(root / "gtrends.csv", index=False)
    return root


def test_adapter_output_passes_the_catalogue_contract(data_dir: Path) -> None:
    frame = load_validated_visuelle(data_dir, "train")
    assert len(frame) == N_TRAIN
    typed = validate_visuelle(frame, data_dir)
    assert list(typed["sku_id"]) == [str(c) for c in range(1, N_TRAIN + 1)]
    for column in ("season", "color", "fabric", "extra"):
        assert column in frame.columns
    first = frame.iloc[0]
    assert first["title"] == "red bengaline long sleeve"
    assert first["description"] == (
        "season SS18, category long sleeve, colour red, fabric bengaline, detail hem"
    )
    assert first["launch_date"] == pd.Timestamp("2018-03-14")
    assert (frame["channel"] == "").all()
    assert set(load_visuelle(data_dir, "test")["sku_id"]) == {"100", "101", "102"}


def test_units_target_clipping_and_no_fake_price(data_dir: Path) -> None:
    frame = load_visuelle(data_dir, "train")
    for code in (1, 2, 29):
        row = frame.loc[frame["sku_id"] == str(code)].iloc[0]
        expected = _units(code)
        assert row[CURVE_COLUMNS].to_numpy(dtype=float).tolist() == expected.tolist()
        assert row["sales_6w"] == expected[:6].sum()
    clipped = frame.loc[frame["sku_id"] == "5"].iloc[0]
    assert clipped["sales_w4"] == 0
    assert clipped["sales_6w"] == _units(5)[:6].sum() - _units(5)[4]
    assert frame.attrs["clipped_negative_values"] == 1
    assert frame.attrs["clipped_negative_units"] == 2
    assert (frame[CURVE_COLUMNS] >= 0).all().all()
    assert (frame["sales_6w"] == frame[CURVE_COLUMNS[:6]].sum(axis=1)).all()
    assert frame["cost_price"].isna().all() and frame["list_price"].isna().all()


def test_images_resolved_only_where_present(data_dir: Path) -> None:
    frame = load_validated_visuelle(data_dir, "train")
    with_image = frame[frame["image"] != ""]
    assert set(with_image["sku_id"]) == WITH_IMAGE
    assert all(
        img == f"images/{sku}.jpg" for sku, img in zip(with_image["sku_id"], with_image["image"])
    )
    for path in with_image["image_path"]:
        assert Path(path).is_file() and Path(path).is_relative_to(data_dir.resolve())
    assert frame.loc[frame["image"] == "", "image_path"].isna().all()


def test_broken_picture_is_reported(data_dir: Path) -> None:
    (data_dir / "images" / "3.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CatalogueError, match="image"):
        load_validated_visuelle(data_dir, "train")


def test_gtrends_window_uses_only_past_weeks(data_dir: Path) -> None:
    gtrends = load_gtrends(data_dir)
    assert gtrends["tulle"].isna().all()  # -1 means no data
    products = load_visuelle(data_dir, "train")
    windows = product_gtrends(products, gtrends, weeks=52)
    assert windows.shape == (N_TRAIN, 3, 52)
    week_of = {d: i for i, d in enumerate(gtrends.index)}
    for (_, product), window in zip(products.iterrows(), windows):
        launch = product["launch_date"]
        dates = gtrends_window_dates(gtrends, launch, 52)
        assert len(dates) == 52 and (np.diff(dates.values) == np.timedelta64(7, "D")).all()
        # Every week used is over before the launch day; the next week would not be.
        assert (dates + pd.Timedelta(days=7) <= launch).all()
        assert dates[-1] + pd.Timedelta(days=14) > launch
        # The values are those of exactly these weeks (NaN before the table starts).
        expected = np.array([week_of.get(d, np.nan) for d in dates], dtype=float)
        np.testing.assert_array_equal(window[0], expected)
        if product["fabric"] == "tulle":
            assert np.isnan(window[2]).all()
    # A launch on a Monday must not see that Monday's week.
    monday = pd.Timestamp("2018-06-04")
    assert gtrends_window_dates(gtrends, monday, 4)[-1] == pd.Timestamp("2018-05-28")
    assert gtrends_window_dates(gtrends, monday + pd.Timedelta(days=1), 4)[-1] == pd.Timestamp(
        "2018-05-28"
    )
    assert gtrends_window_dates(gtrends, monday + pd.Timedelta(days=7), 4)[-1] == monday


def test_metrics_on_hand_computed_examples() -> None:
    y = np.zeros((2, 12))
    f = np.zeros((2, 12))
    y[0, :6] = [10, 10, 10, 10, 10, 10]
    y[1, :6] = [0, 5, 5, 5, 5, 0]
    f[0, :6] = [12, 8, 10, 10, 10, 10]  # |err| 4
    f[1, :6] = [0, 5, 5, 5, 5, 10]  # |err| 10
    y[:, 6:] = 1
    f[:, 6:] = 3  # |err| 2 on 12 cells = 24
    # 6 weeks: sum|e| = 14, sum y = 80, 12 cells.
    assert protocol.wape(y, f, 6) == pytest.approx(100 * 14 / 80)
    assert protocol.mae(y, f, 6) == pytest.approx(14 / 12)
    # 12 weeks: sum|e| = 38, sum y = 92, 24 cells.
    assert protocol.wape(y, f, 12) == pytest.approx(100 * 38 / 92)
    assert protocol.mae(y, f, 12) == pytest.approx(38 / 24)
    # bias6: sum f = 90 vs sum y = 80.
    assert protocol.bias(y, f, 6) == pytest.approx(10 / 80)
    scores = protocol.evaluate(y, f)
    assert set(scores) == {"wape6", "mae6", "wape12", "mae12", "bias6", "screen_p25"}


def test_screening_precision_by_hand() -> None:
    # 8 products -> top quarter = 2. Actual top two: products 0 and 1.
    actual = np.array([100, 90, 50, 40, 30, 20, 10, 5], dtype=float)
    y = np.zeros((8, 12))
    y[:, 0] = actual
    f = np.zeros((8, 12))
    f[:, 0] = [95, 10, 80, 1, 1, 1, 1, 1]  # picks 0 (right) and 2 (wrong)
    assert protocol.screening_precision(y, f) == pytest.approx(0.5)
    f[:, 0] = actual  # perfect ranking
    assert protocol.screening_precision(y, f) == pytest.approx(1.0)
    f[:, 0] = 7.0  # constant forecast: ties shared out evenly -> 2/8
    assert protocol.screening_precision(y, f) == pytest.approx(0.25)
    f[:, 0] = [50, 1, 50, 50, 1, 1, 1, 1]  # three tied for two places, one of them truly top
    assert protocol.screening_precision(y, f) == pytest.approx((2 / 3) / 2)
    # 9 products -> ceil(9/4) = 3 places; the forecast gets 2 of the true top 3.
    y9 = np.zeros((9, 12))
    y9[:, 0] = np.arange(9, 0, -1)
    f9 = np.zeros((9, 12))
    f9[:, 0] = [9, 8, 0, 7, 0, 0, 0, 0, 0]
    assert protocol.screening_precision(y9, f9) == pytest.approx(2 / 3)


def _frame(rows: list[tuple], curves: list[list[float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["sku_id", "launch_date", "category", "color", "fabric"])
    frame["launch_date"] = pd.to_datetime(frame["launch_date"])
    for w, column in enumerate(CURVE_COLUMNS):
        frame[column] = [c[w] for c in curves]
    return frame


def test_knn_keeps_all_ties_and_honest_respects_lead() -> None:
    train = _frame(
        [
            ("a", "2019-01-01", "dress", "red", "silk"),  # 3 matches
            ("b", "2019-03-01", "dress", "red", "wool"),  # 2 matches
            ("c", "2019-03-20", "dress", "blue", "silk"),  # 2 matches
            ("d", "2019-01-01", "coat", "blue", "wool"),  # 0 matches
        ],
        [[10.0] * 12, [20.0] * 12, [40.0] * 12, [1000.0] * 12],
    )
    target = _frame([("t", "2019-04-01", "dress", "red", "silk")], [[0.0] * 12])
    # k=1: the single best. k=2: the 2nd place is a tie between b and c -> both kept.
    assert protocol.knn_attribute_forecast(train, target, k=1)[0, 0] == pytest.approx(10)
    assert protocol.knn_attribute_forecast(train, target, k=2)[0, 0] == pytest.approx(70 / 3)
    # k larger than the pool: everyone.
    assert protocol.knn_attribute_forecast(train, target, k=11)[0, 0] == pytest.approx(1070 / 4)
    # Honest, 84 days: only a and d launched by 2019-01-07 -> k=2 uses both.
    honest = protocol.knn_honest_forecast(train, target, k=2)
    assert honest.shape == (1, 12)
    assert honest[0, 0] == pytest.approx((10 + 1000) / 2)
    early = _frame([("e", "2019-01-02", "dress", "red", "silk")], [[0.0] * 12])
    with pytest.raises(ValueError, match="no eligible neighbour"):
        protocol.knn_honest_forecast(train, early)
    mean = protocol.mean_curve_forecast(train, target)
    assert mean.shape == (1, 12) and mean[0, 3] == pytest.approx(1070 / 4)


def test_baselines_split_and_forecast_csv(data_dir: Path, tmp_path: Path) -> None:
    train = load_visuelle(data_dir, "train")
    fit, val = protocol.train_validation_split(train, validation_seasons=("AW18",))
    assert len(fit) + len(val) == N_TRAIN
    assert set(val["season"]) == {"AW18"} and "AW18" not in set(fit["season"])
    assert fit["launch_date"].max() < val["launch_date"].min()
    table = protocol.run_baselines(fit, val)
    assert list(table.columns) == ["wape6", "mae6", "wape12", "mae12", "bias6", "screen_p25"]
    assert np.isfinite(table.to_numpy()).all()
    forecast = protocol.knn_attribute_forecast(fit, val)
    assert forecast.shape == (len(val), 12)
    out = protocol.write_forecasts(tmp_path / "out" / "f.csv", val, forecast)
    written = pd.read_csv(out, dtype={"external_code": str})
    assert list(written.columns) == ["external_code", "week", "forecast"]
    assert len(written) == 12 * len(val)
    assert written["week"].tolist()[:12] == list(range(12))
    first = written[written["external_code"] == val["sku_id"].iloc[0]]
    np.testing.assert_allclose(first["forecast"], forecast[0])
    assert adapter.VISUELLE_SPEC.target == "sales_6w"
