"""What an answer says about itself, rendered in both languages (no server: the localiser alone):
every reason at once, a missing input named in words with what leaving it out costs."""

from __future__ import annotations

import pytest

from features.decision import DecisionRule, Evidence, decide
from serving.localise import display

RULE = DecisionRule(launch_cost=2000.0, default_markup=2.5, max_relative_spread=1.2, min_similarity=0.6)


def answer_of(decision) -> dict:
    return {"forecast": {"p10": 900.0, "p50": 1000.0, "p90": 1100.0, "curve": []}, "decision": decision.as_dict(),
            "quantity": {"units": 0.0}, "analogs": [], "novelty": {"category": "T恤"}}


@pytest.mark.parametrize(("lang", "words"), [("zh", ["上新日期", "22%", "图片与所有历史商品都不像"]),
                                             ("en", ["launch date", "22%", "picture is unlike"])])
def test_a_missing_input_is_named_in_words_beside_the_novelty_reasons(lang: str, words: list[str]) -> None:
    evidence = Evidence(0.9, picture=0.4, copy=0.9, picture_floor=0.7, copy_floor=0.5)
    decision = decide(900, 1000, 1100, 0.9, 10.0, 30.0, RULE, evidence=evidence, assumed=("launch_date",),
                      costly={"launch_date": 0.22})
    shown = display(answer_of(decision), lang, "¥")
    said = " ".join(shown["reasons"])
    assert all(w in said for w in words), said
    assert "launch_date" not in said and "{fields}" not in said
    assert all(w in shown["message"] for w in words[:2]), shown["message"]
