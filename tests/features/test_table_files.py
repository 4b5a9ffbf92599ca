"""Tables as people have them: UTF-8 with or without BOM, GBK / GB18030, comma / semicolon / tab,
Excel .xlsx; all read into the same frame, and a missing column named once for the table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.catalogue import CatalogueError, missing_columns, read_table_format

ROWS = pd.DataFrame({
    "sku_id": ["N1", "N2", "N3"],
    "title": ["白色纯棉T恤 white tee", "黑色牛仔裤；修身", "帽子, 夏季"],  # separators inside quoted cells
    "description": ["夏季新款 宽松", "", "棉质"],
    "image": ["images/N1.png", "N2.jpg", ""],
    "cost_price": ["45", "60.5", "12"],
})


def write(frame: pd.DataFrame, path: Path, **options) -> Path:
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False, **options)
    return path


@pytest.mark.parametrize("name, options, encoding, delimiter", [
    ("utf8.csv", {"encoding": "utf-8"}, "utf-8", ","),
    ("bom.csv", {"encoding": "utf-8-sig"}, "utf-8", ","),
    ("gbk.csv", {"encoding": "gbk"}, "gb18030", ","),
    ("gb18030-semicolon.csv", {"encoding": "gb18030", "sep": ";"}, "gb18030", ";"),
    ("semicolon.csv", {"encoding": "utf-8-sig", "sep": ";"}, "utf-8", ";"),
    ("tab.txt", {"encoding": "utf-8", "sep": "\t"}, "utf-8", "\t"),
    ("excel.xlsx", {}, None, None),
])
def test_every_format_reads_into_the_same_table(tmp_path: Path, name, options, encoding, delimiter) -> None:
    frame, fmt = read_table_format(write(ROWS, tmp_path / name, **options))
    pd.testing.assert_frame_equal(frame, ROWS)
    assert (fmt.encoding, fmt.delimiter) == (encoding, delimiter)
    assert fmt.kind == ("xlsx" if name.endswith(".xlsx") else "csv")
    assert fmt.guessed == (encoding == "gb18030")  # said when the encoding was not the default


def test_gbk_bytes_are_not_utf8(tmp_path: Path) -> None:
    """The file of the issue: what Chinese Excel writes, refused before with "'utf-8' codec can't decode"."""
    path = write(ROWS, tmp_path / "excel-export.csv", encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert read_table_format(path)[0]["title"].tolist() == ROWS["title"].tolist()


def test_a_missing_column_is_named_once(tmp_path: Path) -> None:
    frame, _ = read_table_format(write(ROWS.drop(columns=["cost_price", "image"]), tmp_path / "c.csv"))
    assert missing_columns(list(frame.columns)) == ["cost_price", "image"]
    assert missing_columns(list(frame.columns), require_image=False) == ["cost_price"]


def test_other_files_are_refused_with_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "notes.docx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(CatalogueError) as caught:
        read_table_format(path)
    assert len(caught.value.problems) == 1 and ".xlsx" in caught.value.problems[0].reason
