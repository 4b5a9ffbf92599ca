"""Helpers for the files a saved model is made of (see ``features.model`` for the folder layout)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):  # numpy scalars (np.int64 is no int to json)
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=_plain), encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def plain_fields(obj: Any, stored_apart: tuple[str, ...]) -> dict[str, Any]:
    """Every dataclass field of ``obj`` except those ``stored_apart`` (written to their own files).

    Generic on purpose: a field added to the dataclass later is saved without touching the writer.
    A field that JSON cannot hold raises, naming it, rather than silently leaving the model."""
    out = {}
    for f in fields(obj):
        if f.name in stored_apart:
            continue
        value = getattr(obj, f.name)
        try:
            json.dumps(value, default=_plain)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{type(obj).__name__}.{f.name} cannot be saved as JSON ({error}); "
                            "store it in a file of its own") from None
        out[f.name] = value
    return out


def write_table(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False)


def read_table(path: Path) -> pd.DataFrame:
    """A table ``write_table`` wrote, with its dates in their own unit again (Parquet has no
    second-resolution timestamps: ``datetime64[s]`` comes back as ``[ms]`` unless restored)."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    columns = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}")).get("columns", [])
    for column in columns:
        name, kind = column.get("name"), str(column.get("numpy_type"))
        if name in frame and kind.startswith("datetime64") and str(frame[name].dtype) != kind:
            frame[name] = frame[name].astype(kind)
    return frame
