"""VISUELLE as a retailer would hand it to the product: a history, candidates and their actuals.

    python -m benchmarks.visuelle.convert --data ../shared/benchmarks/visuelle --out DIR

writes, for ``trialcast train DIR/history.csv`` and ``trialcast score DIR/candidates.csv``:

- ``DIR/history.csv``: train.csv in the catalogue contract (``benchmarks.visuelle.adapter``: id,
  release date, category, a title and a description made of the attribute words), the attribute
  columns ``color``, ``fabric``, ``extra``, ``season``, the 7-day units ``sales_7d`` and the daily
  curve ``sales_d1`` .. ``sales_d7``. No price column: VISUELLE has none, and none is made up.
- ``DIR/candidates.csv``: test.csv, the same columns without the sales.
- ``DIR/actuals.csv``: what the candidates really sold (``sku_id``, ``sales_7d``, ``sales_d1..7``).
- ``DIR/images/<code>.jpg``: copies of the pictures there are (about one product in ten), named in
  ``image``; the other products have an empty ``image``.

The 7-day rule. VISUELLE counts sales by calendar week (Monday to Sunday): week 0 is only what is
left of the release day's week, ``d0 = 7 - weekday`` days (a Monday release has 7, a Sunday one 1),
and weeks 1.. are full weeks. The first 7 days on sale are week 0 and the first ``7 - d0`` days of
week 1, whose units are taken as spread evenly over its 7 days:

    sales_7d = week0 + week1 * (7 - d0) / 7

The daily curve spreads week 0 evenly over its ``d0`` days, then week 1 over the remaining days,
so that it sums to ``sales_7d`` (units kept to 2 decimals: a share of a week is not whole).
Negative weekly returns are clipped to 0 as the adapter does.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.visuelle.adapter import ATTRIBUTE_COLUMNS, CURVE_COLUMNS, load_visuelle

HORIZON = 7
CATALOGUE_COLUMNS = ["sku_id", "launch_date", "category", "title", "description", "image", *ATTRIBUTE_COLUMNS]
DAILY = [f"sales_d{d + 1}" for d in range(HORIZON)]


def first_days(weeks: np.ndarray, launch: pd.Series) -> np.ndarray:
    """(n, 7) units of the first 7 days on sale, from weeks 0 and 1 (the module's rule)."""
    d0 = HORIZON - pd.to_datetime(launch).dt.day_of_week.to_numpy()  # days of week 0 on sale
    day = np.arange(HORIZON)[None, :]
    in_week0 = day < d0[:, None]
    return np.where(in_week0, weeks[:, [0]] / d0[:, None], weeks[:, [1]] / HORIZON)


def catalogue(frame: pd.DataFrame, with_sales: bool) -> pd.DataFrame:
    """The adapter's frame as the product's catalogue: contract columns, attributes, 7-day sales."""
    out = frame[CATALOGUE_COLUMNS].copy()
    out["launch_date"] = pd.to_datetime(out["launch_date"]).dt.strftime("%Y-%m-%d")
    if with_sales:
        days = first_days(frame[CURVE_COLUMNS].to_numpy(dtype=float), frame["launch_date"])
        out["sales_7d"] = days.sum(axis=1).round(2)
        for d, column in enumerate(DAILY):
            out[column] = days[:, d].round(2)
    return out


def copy_pictures(frame: pd.DataFrame, data: Path, out: Path) -> int:
    """Copy the pictures the rows name into ``out`` (same relative paths); returns how many."""
    names = [name for name in frame["image"] if isinstance(name, str) and name]
    for name in names:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(data / name, target)
    return len(names)


def convert(data: Path, out: Path) -> dict[str, int]:
    """Write the three tables and the pictures (module docstring); returns what was written."""
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_visuelle(data, "train"), load_visuelle(data, "test")
    history, candidates = catalogue(train, True), catalogue(test, True)
    history.to_csv(out / "history.csv", index=False)
    candidates.drop(columns=["sales_7d", *DAILY]).to_csv(out / "candidates.csv", index=False)
    candidates[["sku_id", "sales_7d", *DAILY]].to_csv(out / "actuals.csv", index=False)
    pictures = copy_pictures(train, data, out) + copy_pictures(test, data, out)
    return {"history": len(history), "candidates": len(candidates), "pictures": pictures}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write VISUELLE as a trialcast history, candidates and actuals.")
    parser.add_argument("--data", type=Path, required=True, help="The VISUELLE folder (train.csv, test.csv, images/).")
    parser.add_argument("--out", type=Path, required=True, help="Folder to write (outside the repository).")
    args = parser.parse_args(argv)
    written = convert(args.data, args.out)
    print(f"wrote {args.out}/history.csv ({written['history']} SKUs), candidates.csv ({written['candidates']}), "
          f"actuals.csv and {written['pictures']} pictures")


if __name__ == "__main__":
    main()
