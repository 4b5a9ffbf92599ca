"""Daily sales as a history's target: one row per SKU and day (``sku_id``, ``date``, ``units``).

What a till or a marketplace exports is a row per SKU and day, not a 7-day total. Such rows give
each SKU its target and its daily curve, the same columns a catalogue may carry itself:

- the first day is the SKU's **first day with sales** (a launch date in a catalogue is the plan; the
  7 days the model forecasts are the first 7 days on sale). A SKU that sold nothing at all starts on
  its launch date and sold 0.
- ``sales_d1`` .. ``sales_d7`` are the units of that day and the 6 after it (a day without a row
  sold nothing; several rows of one SKU and day, e.g. one per store, are added up), and
  ``sales_7d`` their sum (the names come from the catalogue's ``CatalogueSpec``).
- a SKU whose 7 days are not over by the last day of the file is not history yet: it is left out
  and named in the catalogue's notes (never silently), as are sales rows of SKUs the catalogue
  does not list.

The rows come in a file of their own (``trialcast train CATALOGUE --sales FILE``), or in the
catalogue itself: a table with ``date`` and ``units`` columns and no target holds one row per SKU
and day, the SKU's fields repeated (the first row of each SKU gives them).
"""

from __future__ import annotations

import pandas as pd

from features.catalogue import CatalogueError, CatalogueSpec, Problem
from features.schema import FieldError, check_date, check_sales, check_text

DAILY_COLUMNS = ("sku_id", "date", "units")
HORIZON = 7  # days of the target, from the first day with sales


def is_daily(raw: pd.DataFrame, spec: CatalogueSpec) -> bool:
    """A catalogue that holds daily sales rows instead of a target column."""
    return {"date", "units"} <= set(map(str, raw.columns)) and spec.target not in raw.columns


def with_daily_sales(raw: pd.DataFrame, daily: pd.DataFrame | None,
                     spec: CatalogueSpec) -> tuple[pd.DataFrame, list[str]]:
    """The catalogue with its target and curve made from the daily rows (``daily``, or the
    catalogue's own rows when None), and notes on what was left out. ``CatalogueError`` lists
    every unusable sales row, or a target given twice."""
    if daily is None:
        daily = raw[list(DAILY_COLUMNS)]
        raw = raw.drop(columns=["date", "units"]).drop_duplicates("sku_id", keep="first")
    elif spec.target in raw.columns:
        raise CatalogueError([Problem(None, spec.target, "is given both as a column and as daily sales: keep one")])
    sales = _checked(daily)
    launch = pd.to_datetime(raw["launch_date"].where(raw["launch_date"].astype(str).str.strip() != ""),
                            errors="coerce")
    curve, end = _windows(sales, dict(zip(raw["sku_id"].astype(str).str.strip(), launch)))
    skus = raw["sku_id"].astype(str).str.strip()
    known = skus.isin(curve.index).to_numpy()
    out = raw[known].copy()
    columns = [f"{spec.curve_prefix}{d + 1}" for d in range(HORIZON)]
    values = curve.reindex(skus[known]).to_numpy()
    for d, column in enumerate(columns):
        out[column] = values[:, d]
    out[spec.target] = values.sum(axis=1)
    return out.reset_index(drop=True), _notes(skus, known, sales, end)


def _checked(daily: pd.DataFrame) -> pd.DataFrame:
    """The sales rows typed (sku_id text, date a day, units a number >= 0), or every problem."""
    missing = [c for c in DAILY_COLUMNS if c not in daily.columns]
    if missing:
        raise CatalogueError([Problem(None, c, "required column of the daily sales is missing") for c in missing])
    rows, problems = [], []
    for number, (sku, day, units) in enumerate(daily[list(DAILY_COLUMNS)].itertuples(index=False), start=1):
        try:
            rows.append((check_text("sku_id", sku, max_chars=200, required=True), check_date("date", day),
                         check_sales("units", units)))
        except FieldError as error:
            problems.append(Problem(number, error.column, error.reason))
    if problems:
        raise CatalogueError(problems)
    return pd.DataFrame(rows, columns=list(DAILY_COLUMNS))


def _windows(sales: pd.DataFrame, launch: dict[str, pd.Timestamp]) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Units of days 1..HORIZON of every SKU whose window is over by the file's last day."""
    end = sales["date"].max() if len(sales) else pd.NaT
    sold = sales[sales["units"] > 0].groupby("sku_id")["date"].min()
    planned = pd.Series(launch, dtype="datetime64[ns]")
    first = sold.reindex(planned.index).fillna(planned).dropna()  # the first day with sales, else the launch
    first = first[first + pd.Timedelta(days=HORIZON - 1) <= end]
    rows = sales[sales["sku_id"].isin(first.index)]
    day = (rows["date"] - rows["sku_id"].map(first)).dt.days
    inside = rows[(day >= 0) & (day < HORIZON)].assign(day=day)
    table = inside.pivot_table(index="sku_id", columns="day", values="units", aggfunc="sum", fill_value=0.0)
    return table.reindex(index=first.index, columns=range(HORIZON), fill_value=0.0).astype(float), end


def _notes(skus: pd.Series, known, sales: pd.DataFrame, end: pd.Timestamp) -> list[str]:
    notes = []
    late = skus[~known].tolist()
    if late:
        shown = ", ".join(late[:10]) + (" ..." if len(late) > 10 else "")
        last = "no sales rows at all" if pd.isna(end) else f"by {end.date()}, the last day of the sales"
        notes.append(f"{len(late)} SKU(s) left out of the history: their first {HORIZON} days are not over {last} "
                     f"({shown})")
    strangers = sorted(set(sales["sku_id"]) - set(skus))
    if strangers:
        notes.append(f"{len(strangers)} SKU(s) of the daily sales are not in the catalogue and were not used "
                     f"({', '.join(strangers[:10])}{' ...' if len(strangers) > 10 else ''})")
    return notes
