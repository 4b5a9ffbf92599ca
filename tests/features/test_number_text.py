"""One rule for a number written as text (``features.schema.read_number``), whatever carries it: a
form field, a JSON string, a CSV or an Excel cell. Python's ``float()`` reads other scripts' digits,
underscores, exponents and NaN; the rule does not, and says why in both languages."""

from __future__ import annotations

import pandas as pd
import pytest

from features import messages as m
from features.catalogue import CatalogueError, load_catalogue
from features.schema import MAX_NUMBER_CHARS, FieldError, Sku, read_number, validate

WRITTEN = {"45": 45.0, "45.": 45.0, "1299.50": 1299.5, ".5": 0.5, " 45 ": 45.0, "+3": 3.0, "-5": -5.0,
           "0.30000000000000004": 0.30000000000000004, "007": 7.0}
NOT_DIGITS = ["１２", "٤٥", "४५", "1_000", "1e5", "1E5", "1,299", "1.2.3", "0x1F", "12 345", "١٢.٥", "12€", "."]
NOT_FINITE = ["NaN", "nan", "-inf", "+Infinity", " inf "]


@pytest.mark.parametrize(("text", "number"), WRITTEN.items())
def test_ascii_digits_with_one_decimal_point_are_numbers(text: str, number: float) -> None:
    assert read_number("cost_price", text) == number


@pytest.mark.parametrize("text", NOT_DIGITS)
def test_other_digits_separators_and_exponents_are_refused_though_float_reads_some(text: str) -> None:
    with pytest.raises(FieldError, match="digits 0-9") as refused:
        read_number("cost_price", text)
    assert refused.value.column == "cost_price"


def test_the_control_python_reads_those_digits() -> None:
    """Why the rule exists: each of these is a number to ``float()``."""
    assert [float(t) for t in ("１２", "٤٥", "४५", "1_000", "1e5")] == [12.0, 45.0, 45.0, 1000.0, 100000.0]


@pytest.mark.parametrize("text", NOT_FINITE)
def test_nan_and_infinity_are_not_numbers_here(text: str) -> None:
    with pytest.raises(FieldError, match="finite"):
        read_number("cost_price", text)


@pytest.mark.parametrize("value", ["1" * (MAX_NUMBER_CHARS + 1), "1" * 4301, "0." + "5" * 5000])
def test_an_over_long_number_is_refused_by_its_length_before_it_is_read(value: str) -> None:
    _, found = validate(Sku, {"title": "t", "cost_price": value})
    assert found == [("cost_price", f"is over {MAX_NUMBER_CHARS} characters long, more than any number needs")]


def test_json_numbers_are_numbers_and_a_huge_one_is_refused_not_a_crash() -> None:
    assert validate(Sku, {"title": "t", "cost_price": 12})[0].cost_price == 12.0
    assert validate(Sku, {"title": "t", "cost_price": 12.5})[0].cost_price == 12.5
    _, found = validate(Sku, {"title": "t", "cost_price": 10**400})  # float() would raise OverflowError
    assert [f for f, _ in found] == ["cost_price"] and "characters long" in found[0][1]


@pytest.mark.parametrize("text", ["１２", "1_000", "1e5"])
def test_the_refusal_reads_back_into_its_code_in_both_languages(text: str) -> None:
    _, [(field, reason)] = validate(Sku, {"title": "t", "cost_price": text})
    code, params = m.parse_reason(reason)
    assert (field, code) == ("cost_price", "number_text") and text in params["value"]
    chinese = m.reason_text(code, params, "zh")
    assert "0-9" in chinese and "小数点" in chinese and text in chinese
    code, params = m.parse_reason(f"is over {MAX_NUMBER_CHARS} characters long, more than any number needs")
    assert code == "number_too_long" and "字符" in m.reason_text(code, params, "zh")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_table_cell_is_read_by_the_same_rule_as_a_form_field(make_catalogue, fmt: str) -> None:
    """Training's catalogue reader and serving read a price the same way: the cells a form would
    refuse are refused with the same reason, and a plain or Excel-numeric price is read as such."""
    path = make_catalogue(6)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[1, "cost_price"], frame.loc[2, "cost_price"], frame.loc[3, "list_price"] = "１２", "1_000", "1e5"
    if fmt == "xlsx":
        frame = frame.astype(object)
        frame.loc[0, "cost_price"] = 10.5  # a numeric cell, as Excel stores a typed price
        path = path.with_suffix(".xlsx")
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(path)
    found = {(p.row, p.column): p.reason for p in refused.value.problems}
    assert set(found) == {(2, "cost_price"), (3, "cost_price"), (4, "list_price")}
    for (row, column), reason in found.items():
        typed = frame.loc[row - 1, column]
        assert reason == dict(validate(Sku, {"title": "t", "cost_price": "5", column: typed})[1])[column]
    frame.loc[1:3, ["cost_price", "list_price"]] = [["12", "30"], ["1000", "1999.99"], ["10", "25"]]
    (frame.to_excel(path, index=False) if fmt == "xlsx" else frame.to_csv(path, index=False))
    read = load_catalogue(path).frame
    assert read["cost_price"].iloc[:3].tolist() == [10.5 if fmt == "xlsx" else 10.0, 12.0, 1000.0]
