"""The message catalogue: both languages hold every entry, every reason the schema writes is read
back into a code with its parameters (so it can be said in Chinese), and one rule writes numbers."""

from __future__ import annotations

import re

import pytest

from features import messages as m
from features.schema import Sku, validate

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def test_both_languages_hold_every_entry_with_the_same_placeholders() -> None:
    table = m.catalogue()
    assert set(table["zh"]) == set(table["en"])
    for key, english in table["en"].items():
        assert set(re.findall(r"\{(\w+)\}", english)) == set(re.findall(r"\{(\w+)\}", table["zh"][key])), key


def test_every_sentence_is_said_in_chinese() -> None:
    """A Chinese entry that is a copy of the English one (or has no Chinese at all) is a gap."""
    table = m.catalogue()
    same_in_both = {"batch.col_sku", "batch.col_band", "b.template_csv", "b.template_xlsx", "unit.similarity",
                    "r.similarity_pct", "why.factor_label", "lang.switch_label", "channel.app", "err.other",
                    "decision.sentence", "as.other", "lang.switch", "delim.xlsx", "track.col.sku"}
    for key, chinese in table["zh"].items():
        if key in same_in_both or key.startswith("category."):
            continue
        assert CJK.search(chinese), (key, chinese)
        if not key.startswith("lang."):
            assert not CJK.search(table["en"][key]), (key, table["en"][key])


@pytest.mark.parametrize("record", [
    {"title": "t", "cost_price": "-5"},
    {"title": "t", "cost_price": "cheap"},
    {"title": "t", "cost_price": float("nan")},
    {"title": "", "cost_price": "5"},
    {"title": "好" * 6000, "cost_price": "5"},
    {"title": "t", "cost_price": "5", "launch_date": "next tuesday"},
    {"title": "t", "cost_price": "5", "list_price": "4"},
    {"title": "t", "cost_price": "5", "category": "火箭发射器"},
    {"title": "t", "cost_price": "5", "pin_analogs": ",".join(f"S{i}" for i in range(60))},
    {"title": "t", "cost_price": "5", "exclude_analogs": "NOPE"},
    {"title": "t"},
], ids=lambda r: ",".join(f"{k}" for k in r if k != "title") or "title")
def test_every_schema_reason_reads_back_into_a_code(record: dict) -> None:
    """The schema's own English reasons, for real bad input: each has a catalogue code, and its
    Chinese sentence carries the same parameters (the value the user typed, the limit...)."""
    _, problems = validate(Sku, record, {"categories": ["T恤", "牛仔裤"], "history": frozenset({"S1"})})
    assert problems
    for field, reason in problems:
        code, params = m.parse_reason(reason)
        assert code != "other", (field, reason)
        chinese = m.reason_text(code, params, "zh")
        assert CJK.search(chinese) and "{" not in chinese, chinese
        assert m.reason_text(code, params, "en") == reason  # the English template is the schema's text
        for value in params.values():
            assert value in chinese


def test_a_reason_no_template_knows_is_kept_whole() -> None:
    assert m.parse_reason("something new") == ("other", {"text": "something new"})


def test_language_from_the_request() -> None:
    assert m.language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert m.language("en-GB,en;q=0.9") == "en"
    assert m.language("fr-FR, zh;q=0.5") == "zh"
    assert m.language("zh-CN", asked="en") == "en"  # lang= wins
    assert m.language(None) == m.language("de") == "en"


def test_one_rule_for_numbers() -> None:
    assert [m.units(x) for x in (216.21621621621622, 216.5, 2.5, 16.1, 1234567.4)] == ["216", "217", "3", "16", "1,234,567"]
    assert m.whole(216.5) == 217 and m.whole(float("inf")) is None and m.whole(None) is None
    assert m.money(119) == "¥119" and m.money(45.5) == "¥45.50" and m.money(16000) == "¥16,000"
    assert m.money(9.999, "$") == "$10"
    assert m.percent(0.584) == "58%" and m.percent(0.6) == "60%" and m.percent(0.1325, 1) == "13.3%"
    assert m.factor(1.4) == "×1.40" and m.units(float("nan")) == m.money(None) == m.percent(None) == "–"


def test_names_in_both_languages() -> None:
    assert m.name("category", "T恤", "en") == "T-shirts" and m.name("category", "T恤", "zh") == "T恤"
    assert m.name("channel", "store", "zh") == "门店" and m.name("channel", "store", "en") == "Store"
    assert m.name("category", "火箭", "en") == "火箭"  # a category the catalogue does not know: as the model has it
