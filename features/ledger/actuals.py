"""Actual daily sales in: validated row by row (every problem named with row, field, reason),
matched to served forecasts, stored idempotently (a day sent again replaces that day)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator, model_validator
from sqlalchemy import Engine

from features.ledger import store

MAX_ID = 200


class ActualRow(BaseModel):
    """One day of one launched SKU: by ``forecast_id`` (a served forecast) or by ``sku_id``."""

    sku_id: str | None = None
    forecast_id: str | None = None
    date: date
    units: float

    @field_validator("sku_id", "forecast_id", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        text = str(value).strip()
        if len(text) > MAX_ID:
            raise ValueError(f"is longer than {MAX_ID} characters")
        return text or None

    @field_validator("units")
    @classmethod
    def _units(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a finite number >= 0")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> ActualRow:
        if self.sku_id is None and self.forecast_id is None:
            raise ValueError("give sku_id or forecast_id")
        return self


def check_rows(rows: list[dict[str, Any]]) -> tuple[list[ActualRow], list[dict[str, Any]]]:
    """The typed rows, and every problem as {row (1-based), field, reason}."""
    good, errors = [], []
    for number, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            errors.append({"row": number, "field": "row", "reason": "is not an object"})
            continue
        try:
            good.append(ActualRow.model_validate(raw))
        except ValidationError as error:
            for e in error.errors(include_url=False):
                name = str(e["loc"][0]) if e["loc"] else "sku_id"
                reason = "is missing" if e["type"] == "missing" else e["msg"].removeprefix("Value error, ")
                errors.append({"row": number, "field": name, "reason": reason})
    return good, errors


def ingest(engine: Engine, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Store daily actuals; all or nothing: any bad row stores none (resending the fixed file is
    safe, it is idempotent). SKUs without a served forecast are stored and listed in ``unmatched``."""
    good, errors = check_rows(rows)
    by_forecast = {r.forecast_id for r in good if r.forecast_id}
    known_ids = store.known(engine, "id", by_forecast)
    for number, r in enumerate(rows, start=1):
        if isinstance(r, dict) and r.get("forecast_id") and str(r["forecast_id"]).strip() not in known_ids:
            if any(e["row"] == number for e in errors):
                continue
            errors.append({"row": number, "field": "forecast_id", "reason": "no served forecast has this id"})
    if errors:
        return {"received": len(rows), "stored": 0, "errors": errors, "unmatched": []}
    known_skus = store.known(engine, "sku_id", {r.sku_id for r in good if r.sku_id and not r.forecast_id})
    unique: dict[tuple[str, date], dict[str, Any]] = {}  # the last of a day sent twice in one payload wins
    for r in good:
        subject = f"forecast:{r.forecast_id}" if r.forecast_id else f"sku:{r.sku_id}"
        unique[(subject, r.date)] = {"subject": subject, "sku_id": r.sku_id, "forecast_id": r.forecast_id,
                                     "date": r.date, "units": float(r.units)}
    store.write_actuals(engine, list(unique.values()))
    unmatched = sorted({r.sku_id for r in good if r.sku_id and not r.forecast_id} - known_skus)
    return {"received": len(rows), "stored": len(unique), "errors": [], "unmatched": unmatched}


def read_file(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV or Parquet actuals file (columns sku_id or forecast_id, date, units)."""
    from features.catalogue import read_table

    frame = read_table(Path(path))
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")
