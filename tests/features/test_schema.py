"""The one SKU schema: field rules and messages, and what each absent optional field means."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.schema import ABSENT, MASKED, Completion, LaunchedSku, Sku, mask_optional, validate

GOOD = {"title": "白色纯棉T恤 white cotton tee", "cost_price": "45"}


def problems(model, record, context=None) -> dict[str, str]:
    return dict(validate(model, record, context)[1])


def test_a_candidate_needs_only_a_title_and_a_cost_price() -> None:
    sku, found = validate(Sku, GOOD)
    assert found == []
    assert (sku.title, sku.cost_price) == ("白色纯棉T恤 white cotton tee", 45.0)
    assert (sku.list_price, sku.category, sku.channel, sku.launch_date, sku.description) == (None,) * 5
    assert sku.exclude_analogs == sku.pin_analogs == ()


def test_analogs_to_exclude_or_pin_come_as_a_list_or_a_comma_separated_text() -> None:
    sku, _ = validate(Sku, {**GOOD, "exclude_analogs": "S1, S2,,S1", "pin_analogs": ["S9"]}, {"history": {"S1", "S2", "S9"}})
    assert sku.exclude_analogs == ("S1", "S2") and sku.pin_analogs == ("S9",)
    found = problems(Sku, {**GOOD, "pin_analogs": "S1,NOPE"}, {"history": {"S1"}})
    assert found == {"pin_analogs": "unknown past SKU NOPE: the model's history does not hold it"}


@pytest.mark.parametrize(("record", "field", "words"), [
    ({"cost_price": 45}, "title", "missing"),
    ({**GOOD, "title": "  "}, "title", "is empty"),
    ({**GOOD, "title": "好" * 6000}, "title", "6,000 characters"),
    ({"title": "t"}, "cost_price", "missing"),
    ({**GOOD, "cost_price": "-5"}, "cost_price", "must be positive, got -5"),
    ({**GOOD, "cost_price": "NaN"}, "cost_price", "finite"),
    ({**GOOD, "cost_price": "cheap"}, "cost_price", "must be a number"),
    ({**GOOD, "cost_price": True}, "cost_price", "must be a number"),
    ({**GOOD, "list_price": "40"}, "list_price", "above the cost price (45)"),
    ({**GOOD, "list_price": "0"}, "list_price", "positive"),
    ({**GOOD, "launch_date": "2025-02-30"}, "launch_date", "not a date"),
    ({**GOOD, "category": "x" * 300}, "category", "300 characters"),
])
def test_each_bad_field_is_named_with_its_reason(record: dict, field: str, words: str) -> None:
    found = problems(Sku, record)
    assert list(found) == [field], found
    assert words in found[field]


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    found = problems(Sku, {"title": "", "cost_price": "NaN", "category": "火箭"}, {"categories": ["T恤"]})
    assert set(found) == {"title", "cost_price", "category"}
    assert "unknown category '火箭'; known: T恤" == found["category"]


def test_blank_optional_fields_are_absent_and_numbers_given_for_text_stay_text() -> None:
    sku, _ = validate(Sku, {**GOOD, "title": 123, "list_price": "", "category": " ", "launch_date": None})
    assert sku.title == "123" and sku.list_price is None and sku.category is None and sku.launch_date is None


def test_a_message_with_braces_in_the_input_is_not_a_template() -> None:
    found = problems(Sku, {**GOOD, "cost_price": "{cost}"})
    assert "{cost}" in found["cost_price"]


def test_history_rows_need_id_category_and_launch_date() -> None:
    found = problems(LaunchedSku, GOOD)
    assert set(found) == {"sku_id", "category", "launch_date"}
    sku, found = validate(LaunchedSku, {**GOOD, "sku_id": "S1", "category": "T恤", "launch_date": "2025-03-01"})
    assert found == [] and sku.launch_date == date(2025, 3, 1)


def test_benchmark_data_without_cost_price_is_allowed_only_when_the_context_says_so() -> None:
    assert "cost_price" in problems(Sku, {"title": "t"})
    assert problems(Sku, {"title": "t"}, {"require_cost_price": False}) == {}


# ---------------------------------------------------------------- what absent means
def history() -> pd.DataFrame:
    return pd.DataFrame({
        "category": ["T恤", "T恤", "T恤", "帽子", "帽子"],
        "cost_price": [10.0, 20.0, 30.0, 10.0, 10.0],
        "list_price": [20.0, 40.0, 90.0, 40.0, 40.0],  # T恤 markups 2, 2, 3 -> 2; 帽子 4; all 3
    })


def test_an_absent_list_price_is_cost_times_the_categorys_usual_markup() -> None:
    completion = Completion.fit(history(), default_markup=2.5)
    assert completion.markups == {"T恤": 2.0, "帽子": 4.0} and completion.markup == 3.0
    rows = pd.DataFrame({"category": ["T恤", "帽子", None, "T恤"], "cost_price": [50.0, 50.0, 50.0, 50.0],
                         "list_price": [np.nan, np.nan, np.nan, 119.0], "launch_date": [pd.NaT] * 4})
    done = completion.prices(Completion.dates(rows))
    assert done["list_price"].tolist() == [100.0, 200.0, 150.0, 119.0]
    assert done["list_price_assumed"].tolist() == [True, True, True, False]


def test_without_any_price_in_the_history_the_default_markup_stands_in() -> None:
    frame = history().assign(list_price=np.nan)
    assert Completion.fit(frame, default_markup=2.5).markup == 2.5


def test_an_absent_launch_date_is_today_and_flagged_and_completing_twice_keeps_the_flags() -> None:
    rows = pd.DataFrame({"category": ["T恤"], "cost_price": [10.0], "list_price": [np.nan],
                         "launch_date": [pd.NaT], "description": [None]})
    completion = Completion({"T恤": 2.0}, 2.0)
    once = completion.prices(Completion.dates(rows, today=date(2026, 3, 1)))
    twice = completion.prices(Completion.dates(once, today=date(2030, 1, 1)))
    for done in (once, twice):
        assert done["launch_date"].iloc[0] == pd.Timestamp("2026-03-01")
        assert bool(done["launch_date_assumed"].iloc[0]) and bool(done["list_price_assumed"].iloc[0])
        assert done["description"].iloc[0] == ""
    assert Completion.dates(rows.drop(columns="launch_date"))["launch_date"].iloc[0] == pd.Timestamp(date.today())


def test_training_masks_each_optional_field_on_its_share_of_rows_and_nothing_else() -> None:
    n = 4000
    frame = pd.DataFrame({"sku_id": [f"S{i}" for i in range(n)], "category": "T恤", "channel": "app",
                          "description": "夏季", "cost_price": 10.0, "list_price": 25.0,
                          "launch_date": pd.Timestamp("2025-01-01"), "title": "t"})
    masked = mask_optional(frame, 0.15, seed=3)
    for column in MASKED:
        share = masked[column].map(lambda v: v is None or v == "" or (isinstance(v, float) and np.isnan(v))).mean()
        assert 0.12 < share < 0.18, (column, share)
    untouched = [c for c in frame if c not in MASKED]
    pd.testing.assert_frame_equal(masked[untouched], frame[untouched])
    pd.testing.assert_frame_equal(mask_optional(frame, 0.15, seed=3), masked)  # same seed, same mask
    assert not mask_optional(frame, 0.15, seed=4).equals(masked)
    assert mask_optional(frame, 0.0, seed=3).equals(frame)


def test_every_optional_field_of_the_schema_has_one_stated_meaning() -> None:
    optional = [name for name, f in Sku.model_fields.items() if not f.is_required()
                and name not in ("sku_id", "cost_price", "exclude_analogs", "pin_analogs")]
    assert sorted(optional) == sorted(ABSENT), "every optional input needs its meaning in ABSENT"
    assert set(MASKED) <= set(ABSENT)


def test_nan_is_an_empty_cell_in_a_table_and_a_bad_number_in_a_request() -> None:
    assert problems(Sku, {**GOOD, "cost_price": float("nan")}, {"table": True}) == {"cost_price": "is missing"}
    assert "finite" in problems(Sku, {**GOOD, "cost_price": float("nan")})["cost_price"]
    assert problems(Sku, {**GOOD, "list_price": float("nan")}, {"table": True}) == {}


# ---------------------------------------------------------------- plausible values (issue 14)
import pytest as _pytest

from features.schema import FieldError as _FieldError
from features.schema import check_date as _check_date
from features.schema import check_price as _check_price
from features.schema import check_text as _check_text


@_pytest.mark.parametrize("value", [1e308, 1e-320, 0.001, 1_000_001, "90000000000000000", "0.000001"])
def test_prices_outside_the_documented_bounds_are_refused(value) -> None:
    with _pytest.raises(_FieldError, match="between 0.01 and 1,000,000"):
        _check_price("cost_price", value, required=True)


@_pytest.mark.parametrize("value", [0.01, 45, 1_000_000])
def test_prices_inside_the_bounds_pass(value) -> None:
    assert _check_price("cost_price", value, required=True) == float(value)


@_pytest.mark.parametrize("value,words", [(20250702, "not a date"), (20250702.0, "not a date"), (True, "not a date"),
                                          ("20250702", "not a date"), ("0001-01-01", "between"),
                                          ("9999-12-31", "between"), ("1999-12-31", "between"),
                                          ("2025-07-02junk", "not a date")])
def test_launch_dates_are_iso_dates_within_the_window(value, words) -> None:
    with _pytest.raises(_FieldError, match=words):
        _check_date("launch_date", value)


def test_iso_dates_and_date_objects_pass() -> None:
    import datetime

    import pandas as pd

    assert str(_check_date("d", "2025-07-02").date()) == "2025-07-02"
    assert str(_check_date("d", "2025-07-02T23:00:00").date()) == "2025-07-02"
    assert str(_check_date("d", datetime.date(2025, 7, 2)).date()) == "2025-07-02"
    assert str(_check_date("d", pd.Timestamp("2025-07-02")).date()) == "2025-07-02"


@_pytest.mark.parametrize("text", ["lone \ud800 surrogate", "nul \x00 inside"])
def test_text_that_cannot_be_encoded_is_refused_by_name(text: str) -> None:
    with _pytest.raises(_FieldError, match="title"):
        _check_text("title", text, max_chars=100, required=True)
