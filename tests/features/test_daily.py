"""Daily sales as the history's target (features.daily): the 7 days from each SKU's first day with
sales become ``sales_7d`` and the curve ``sales_d1..sales_d7``, from a sales file or from a
catalogue that holds the daily rows itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalogue import CatalogueError, load_catalogue

CURVE = [f"sales_d{d}" for d in range(1, 8)]


def _catalogue(kit, folder, n: int = 4):
    rows = kit.catalogue_rows(n, curve=False, every_days=10)
    for row in rows:
        del row["sales_7d"]
    return rows, kit.write_catalogue(folder, rows)


def _sales(rows: list[tuple[str, str, float]], path) -> str:
    pd.DataFrame(rows, columns=["sku_id", "date", "units"]).to_csv(path, index=False)
    return path


def test_first_seven_days_from_the_first_day_with_sales(tmp_path, kit) -> None:
    rows, catalogue = _catalogue(kit, tmp_path / "c")
    launch = pd.Timestamp(rows[0]["launch_date"])
    day = lambda d: (launch + pd.Timedelta(days=d)).date().isoformat()
    sales = [("SKU0000", day(0), 0), ("SKU0000", day(2), 5), ("SKU0000", day(3), 1), ("SKU0000", day(3), 2),
             ("SKU0000", day(8), 4), ("SKU0000", day(9), 100),  # day 9 is the 8th day from the first sale
             ("SKU0001", day(10), 3)]
    sales += [(f"SKU{i:04d}", day(60), 0) for i in range(4)]  # the file runs to day 60
    catalogue_frame = load_catalogue(catalogue, sales=_sales(sales, tmp_path / "daily.csv")).frame.set_index("sku_id")

    first = catalogue_frame.loc["SKU0000"]
    assert first[CURVE].tolist() == [5, 3, 0, 0, 0, 0, 4]  # from day 2; two rows of day 3 added; day 9 is out
    assert first["sales_7d"] == 12
    assert catalogue_frame.loc["SKU0001", "sales_7d"] == 3
    # No sale at all: the window starts on the launch date and sold nothing.
    assert catalogue_frame.loc["SKU0002", CURVE].tolist() == [0] * 7
    assert catalogue_frame.loc["SKU0002", "sales_7d"] == 0


def test_unfinished_windows_and_strangers_are_named_not_dropped_silently(tmp_path, kit) -> None:
    rows, catalogue = _catalogue(kit, tmp_path / "c")
    launch = pd.Timestamp(rows[3]["launch_date"])  # the last launch, 30 days after the first
    end = (launch + pd.Timedelta(days=3)).date().isoformat()
    sales = [("SKU0003", launch.date().isoformat(), 2), ("SKU0000", rows[0]["launch_date"], 1),
             ("SKU0001", end, 0), ("NOT-LISTED", end, 9)]
    loaded = load_catalogue(catalogue, sales=_sales(sales, tmp_path / "daily.csv"))
    assert "SKU0003" not in set(loaded.frame["sku_id"])  # its 7 days are not over by the file's last day
    assert len(loaded.frame) == 3
    assert any("SKU0003" in note and "not over" in note for note in loaded.notes)
    assert any("NOT-LISTED" in note for note in loaded.notes)


def test_a_catalogue_of_daily_rows_is_read_the_same_way(tmp_path, kit) -> None:
    rows, _ = _catalogue(kit, tmp_path / "c", n=2)
    launch = pd.Timestamp(rows[0]["launch_date"])
    long = []
    for row in rows:
        for d, units in enumerate([0, 4, 1, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]):
            long.append({**row, "date": (launch + pd.Timedelta(days=d)).date().isoformat(), "units": units})
    path = tmp_path / "c" / "long.csv"
    pd.DataFrame(long).to_csv(path, index=False)
    frame = load_catalogue(path).frame
    assert frame["sku_id"].tolist() == ["SKU0000", "SKU0001"]
    assert frame.loc[0, CURVE].tolist() == [4, 1, 0, 2, 0, 0, 3]
    assert np.allclose(frame["sales_7d"], 10)
    assert "date" not in frame.columns and "units" not in frame.columns


def test_bad_sales_rows_are_reported_by_row_and_field(tmp_path, kit) -> None:
    _, catalogue = _catalogue(kit, tmp_path / "c")
    sales = [("SKU0000", "2024-01-01", 2), ("SKU0000", "yesterday", 1), ("SKU0001", "2024-01-12", -3)]
    with pytest.raises(CatalogueError) as info:
        load_catalogue(catalogue, sales=_sales(sales, tmp_path / "daily.csv"))
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "date"), (3, "units")]
    assert "must not be negative" in str(info.value)


def test_a_target_given_twice_is_refused(tmp_path, kit) -> None:
    catalogue = kit.write_catalogue(tmp_path / "c", kit.catalogue_rows(3))
    with pytest.raises(CatalogueError, match="both as a column and as daily sales"):
        load_catalogue(catalogue, sales=_sales([("SKU0000", "2024-01-01", 1)], tmp_path / "daily.csv"))
