"""The loop closes: every launched SKU whose first 7 days of actual sales are in the log becomes a
row of training history, with the picture and the copy it was forecast from.

The rows come out as a catalogue would hold them (the catalogue contract's columns, the picture a
file under a folder) so that the one catalogue contract (``features.catalogue``) checks them like
any other history: nothing here decides what a valid history row is.

- one row per launch: a SKU forecast several times (two versions, a re-score) counts once, with
  its latest forecast (what the planner last saw);
- ``launch_date`` is the first day with actual sales, not the date the forecast assumed;
- ``sales_d1..sales_d7`` are the 7 earliest days received, ``sales_7d`` their sum (the live
  error's definition, ``features.ledger.live``);
- ``sku_id`` is the id the SKU was forecast under; a placeholder id (a page upload without one)
  or an id two launches share becomes ``F`` + the forecast id, so no launch hides another.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from features.ledger import store
from features.ledger.live import DAYS, launches

PLACEHOLDER_IDS = frozenset({"", "upload", "new-sku"})  # what serving records when no id was given
COPY = ("title", "description", "category", "cost_price", "list_price", "channel")


def complete_launches(engine: Engine) -> pd.DataFrame:
    """One row per launch with 7 days of actuals: its latest forecast, ``first_day`` and ``daily``."""
    found = launches(engine, complete=True)
    if found.empty:
        return found.assign(first_day=pd.Series(dtype=object), daily=pd.Series(dtype=object))
    latest = found.sort_values("created_at").groupby("subject").tail(1)
    acts = store.read_actuals(engine).sort_values("date")
    first = acts.groupby("subject").head(DAYS).groupby("subject")
    daily = pd.DataFrame({"first_day": first["date"].min(), "daily": first["units"].agg(list)})
    return latest.merge(daily, left_on="subject", right_index=True).reset_index(drop=True)


def _history_id(row: pd.Series, shared: set[str]) -> str:
    sku = str(row["sku_id"] or "").strip()
    if sku in PLACEHOLDER_IDS or sku in shared:
        return f"F{row['id']}"
    return sku


def _picture_file(folder: Path, sha: str, data: bytes) -> str:
    """Write a kept picture once under ``folder/images`` (atomically: a killed export leaves no
    half file) and return its path relative to ``folder``."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            suffix = f".{(image.format or 'img').lower()}"
    except Exception:  # noqa: BLE001  not readable now: the catalogue contract names it as the row's problem
        suffix = ".img"
    relative = Path("images") / f"{sha}{suffix}"
    target = folder / relative
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    return str(relative)


def history_rows(engine: Engine, folder: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The complete launches as raw catalogue rows (pictures written under ``folder``), and the
    launches that cannot be history, each with its reason."""
    found = complete_launches(engine)
    if found.empty:
        return pd.DataFrame(), []
    pictures = store.read_pictures(engine, set(found["image_sha256"].dropna()))
    ids = found["sku_id"].fillna("").astype(str).str.strip()
    shared = set(ids[ids.duplicated(keep=False)])
    rows, left_out = [], []
    for _, launch in found.iterrows():
        sku = _history_id(launch, shared)
        data = pictures.get(launch["image_sha256"] or "")
        if data is None:
            left_out.append({"forecast_id": launch["id"], "sku_id": sku, "reason": "its picture is not on record"})
            continue
        fields = launch["fields"] or {}
        row = {"sku_id": sku, "launch_date": pd.Timestamp(launch["first_day"]).date().isoformat(),
               "image": _picture_file(folder, launch["image_sha256"], data),
               **{k: fields.get(k) for k in COPY}, "forecast_id": launch["id"]}
        row.update({f"sales_d{d + 1}": float(u) for d, u in enumerate(launch["daily"])})
        row["sales_7d"] = float(sum(launch["daily"]))
        rows.append(row)
    return pd.DataFrame(rows), left_out
