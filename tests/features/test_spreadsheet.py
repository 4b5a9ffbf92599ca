"""Every CSV / xlsx the product writes: formula-looking text neutralised, numbers kept numbers, CSV
with a UTF-8 BOM (Chinese Excel reads it as UTF-8)."""

from __future__ import annotations

import io

import openpyxl
import pandas as pd

from features import spreadsheet

ATTACKS = ['=HYPERLINK("http://evil","click")', "=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "-2+3",
           "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def frame() -> pd.DataFrame:
    return pd.DataFrame({"title": [*ATTACKS, "普通标题", "-5", "+3.5"],
                         "p50": [1.0, 2, 3, 4, 5, 6, 7, 8, -9, 10], "units": pd.array(range(10), dtype="Int64")})


def test_formulas_are_neutralised_and_numbers_stay_numbers() -> None:
    safe = spreadsheet.safe_frame(frame())
    assert safe["title"].tolist()[: len(ATTACKS)] == [f"'{a}" for a in ATTACKS]
    assert safe["title"].tolist()[len(ATTACKS):] == ["普通标题", "-5", "+3.5"]  # plain numbers as text stay
    assert safe["p50"].tolist() == frame()["p50"].tolist()  # numeric columns untouched, negatives too
    assert spreadsheet.neutralise(-3) == -3 and spreadsheet.neutralise(None) is None


def test_csv_has_a_bom_and_reads_back() -> None:
    data = spreadsheet.csv_bytes(frame())
    assert data.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=False, dtype=str)
    assert back["title"].iloc[0] == f"'{ATTACKS[0]}" and back["title"].iloc[7] == "普通标题"


def test_xlsx_cells_are_text_or_numbers_never_formulas() -> None:
    book = openpyxl.load_workbook(io.BytesIO(spreadsheet.xlsx_bytes(frame())))
    sheet = book.active
    cells = [row for row in sheet.iter_rows(min_row=2, values_only=False)]
    for row in cells:
        title, p50, units = row
        assert title.data_type == "s" and not str(title.value).startswith("=")
        assert p50.data_type == "n" and units.data_type == "n"
    assert cells[8][1].value == -9
