"""Every CSV and Excel file the product writes goes through here: text cells that a spreadsheet
would run as a formula are neutralised, CSV gets a UTF-8 BOM (Chinese Excel reads it as UTF-8
instead of GBK), and numbers stay numbers.

A cell is neutralised when it is text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return (OWASP's list) and is not itself a plain number: a leading apostrophe makes Excel, LibreOffice
and Sheets show it as the text it was.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet must show it: formula-looking text behind an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.match(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and column name) neutralised; numeric columns untouched."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = out[column].map(neutralise).astype(object)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return safe_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def xlsx_bytes(frame: pd.DataFrame, sheet: str = "trialcast") -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe_frame(frame).to_excel(writer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()


def write(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as ``path`` (.csv or .xlsx) through a temporary file: readers never see half a file."""
    path = Path(path)
    data = xlsx_bytes(frame) if path.suffix.lower() == ".xlsx" else csv_bytes(frame)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
