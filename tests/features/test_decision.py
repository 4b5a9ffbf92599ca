"""The go/no-go rule, branch by branch, with its break-even arithmetic."""

from __future__ import annotations

import math

import pytest

from features.decision import DecisionRule, Evidence, break_even_units, decide

# launch cost 2000; list 30 - cost 10 = margin 20 -> break-even 100 units.
RULE = DecisionRule(launch_cost=2000.0, default_markup=2.5, max_relative_spread=1.2, min_similarity=0.6)
COST, PRICE, BE = 10.0, 30.0, 100.0


def test_break_even_is_launch_cost_over_unit_margin() -> None:
    assert break_even_units(COST, PRICE, RULE) == (pytest.approx(BE), False)
    assert break_even_units(45.0, 119.0, RULE) == (pytest.approx(2000 / 74), False)
    assert break_even_units(10.0, 30.0, DecisionRule(launch_cost=16000.0)) == (pytest.approx(800.0), False)


def test_without_a_list_price_the_default_markup_is_assumed() -> None:
    # 10 x 2.5 = 25 -> margin 15 -> 2000 / 15
    for missing in (None, math.nan):
        units, assumed = break_even_units(COST, missing, RULE)
        assert units == pytest.approx(2000 / 15) and assumed is True
    d = decide(200, 300, 400, 0.9, COST, None, RULE)
    assert d.assumed_list_price is True and "ASSUMED_LIST_PRICE" in d.reasons
    assert d.break_even_units == pytest.approx(2000 / 15)
    assert "ASSUMED_LIST_PRICE" not in decide(200, 300, 400, 0.9, COST, PRICE, RULE).reasons


def test_no_positive_margin_means_infinite_break_even() -> None:
    assert break_even_units(30.0, 30.0, RULE)[0] == math.inf
    assert break_even_units(30.0, 20.0, RULE)[0] == math.inf
    d = decide(900, 1000, 1100, 0.9, 30.0, 20.0, RULE)
    assert d.label == "NO_GO" and "no positive margin" in d.message


@pytest.mark.parametrize("similarity", [None, 0.2, 0.5999, math.nan])
def test_nothing_similar_goes_to_review_whatever_the_forecast(similarity) -> None:
    d = decide(900, 1000, 1100, similarity, COST, PRICE, RULE)  # would be a clear GO otherwise
    assert d.label == "REVIEW" and d.reasons[0] == "NO_SIMILAR_HISTORY"
    assert "similar" in d.message


def test_similarity_at_the_floor_counts_as_similar() -> None:
    assert decide(900, 1000, 1100, 0.6, COST, PRICE, RULE).label == "GO"


def test_p50_below_break_even_is_no_go() -> None:
    d = decide(60, 90, 150, 0.9, COST, PRICE, RULE)  # P90 above break-even: only the median fails
    assert d.label == "NO_GO" and d.reasons == ["BELOW_BREAK_EVEN"]
    assert "90 units" in d.message and "100 units" in d.message and "P90" not in d.message


def test_p90_below_break_even_says_even_the_optimistic_case_loses() -> None:
    d = decide(30, 50, 80, 0.9, COST, PRICE, RULE)
    assert d.label == "NO_GO" and d.reasons == ["BELOW_BREAK_EVEN", "BELOW_BREAK_EVEN_AT_P90"]
    assert "optimistic" in d.message


def test_p50_exactly_at_break_even_is_not_no_go() -> None:
    assert decide(99, 100, 110, 0.9, COST, PRICE, RULE).label == "GO"


def test_wide_band_with_p10_below_break_even_is_too_uncertain() -> None:
    # (300 - 50) / 150 = 1.67 > 1.2, P10 = 50 < 100
    d = decide(50, 150, 300, 0.9, COST, PRICE, RULE)
    assert d.label == "REVIEW" and d.reasons == ["TOO_UNCERTAIN", "LEANS_GO"]
    assert "too wide" in d.message


def test_wide_band_whose_p10_clears_break_even_is_go() -> None:
    # (700 - 120) / 300 = 1.93 > 1.2 but even P10 = 120 clears 100
    d = decide(120, 300, 700, 0.9, COST, PRICE, RULE)
    assert d.label == "GO" and d.reasons == ["CLEARS_BREAK_EVEN", "CLEARS_AT_P10"]


def test_narrow_band_above_break_even_is_go() -> None:
    # (160 - 90) / 120 = 0.58 <= 1.2; P10 = 90 below break-even, so no CLEARS_AT_P10
    d = decide(90, 120, 160, 0.9, COST, PRICE, RULE)
    assert d.label == "GO" and d.reasons == ["CLEARS_BREAK_EVEN"]
    assert d.break_even_units == pytest.approx(BE) and d.assumed_list_price is False
    assert "120 units" in d.message and "100 units" in d.message


def test_spread_exactly_at_the_limit_is_not_too_uncertain() -> None:
    # (170 - 50) / 100 = 1.2, not above the limit
    assert decide(50, 100, 170, 0.9, COST, PRICE, RULE).label == "GO"


@pytest.mark.parametrize("p10, p50, p90", [(math.nan, 100, 200), (10, math.nan, 200), (10, 100, math.inf)])
def test_a_broken_forecast_is_never_go(p10, p50, p90) -> None:
    d = decide(p10, p50, p90, 0.9, COST, PRICE, RULE)
    assert d.label == "REVIEW" and d.reasons[0] == "INVALID_FORECAST"


def test_the_served_rule_comes_from_the_settings() -> None:
    from features.config import Settings
    from serving.predictor import decision_rule

    s = Settings(launch_cost=5000, default_markup=3, max_relative_spread=0.9, ood_similarity=0.7)
    assert decision_rule(s) == DecisionRule(5000, 3, 0.9, 0.7)


def test_as_dict_is_what_the_service_returns() -> None:
    d = decide(150, 200, 260, 0.9, COST, None, RULE).as_dict()  # break-even 133.3 (assumed price 25)
    assert set(d) >= {"label", "reasons", "message", "break_even_units", "assumed_list_price"}
    assert d["label"] == "GO"
    assert d["reasons"] == ["CLEARS_BREAK_EVEN", "CLEARS_AT_P10", "ASSUMED_LIST_PRICE"]


# ---------------------------------------------------------------- novelty per modality, leaning, economics
def evidence(**changes) -> Evidence:
    base = {"joint": 0.9, "picture": 0.9, "copy": 0.9, "picture_floor": 0.7, "copy_floor": 0.5, "category": "T恤",
            "picture_category": "T恤", "category_agrees": True}
    return Evidence(**{**base, **changes})


@pytest.mark.parametrize(("changes", "reason"), [
    ({"picture": 0.4}, "PICTURE_UNLIKE_HISTORY"),
    ({"picture": None}, "PICTURE_UNLIKE_HISTORY"),
    ({"copy": 0.2}, "COPY_UNLIKE_HISTORY"),
    ({"category_agrees": False, "picture_category": "外套"}, "CATEGORY_PICTURE_MISMATCH"),
])
def test_a_sku_novel_in_one_modality_goes_to_review_even_with_a_confident_forecast(changes, reason) -> None:
    d = decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, evidence=evidence(**changes))
    assert d.label == "REVIEW" and reason in d.reasons
    # a picture or copy unlike any product is no evidence for GO; a category mismatch still leans
    assert ("LEANS_GO" in d.reasons) == (reason == "CATEGORY_PICTURE_MISMATCH")
    assert "a person decides" in d.message


@pytest.mark.parametrize("changes", [{"picture": 0.4}, {"copy": 0.2}, {"picture": 0.4, "copy": 0.2}])
def test_junk_never_leans_go_but_still_says_when_it_loses_money(changes) -> None:
    go = decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, evidence=evidence(**changes))
    assert not {"LEANS_GO", "TOO_UNCERTAIN"} & set(go.reasons) and "no lean towards GO" in go.message
    loses = decide(5, 10, 20, 0.9, COST, PRICE, RULE, evidence=evidence(**changes))
    assert {"LEANS_NO_GO", "BELOW_BREAK_EVEN_AT_P90"} <= set(loses.reasons)


def test_a_review_says_when_even_the_optimistic_case_loses_money() -> None:
    d = decide(5, 10, 20, 0.9, COST, PRICE, RULE, evidence=evidence(picture=0.1))
    assert d.label == "REVIEW"
    assert {"PICTURE_UNLIKE_HISTORY", "LEANS_NO_GO", "BELOW_BREAK_EVEN_AT_P90"} <= set(d.reasons)


def test_without_floors_only_the_joint_similarity_is_checked() -> None:
    d = decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, evidence=Evidence(0.9, picture=0.01, copy=0.01))
    assert d.label == "GO"


def test_every_answer_carries_the_derivation_of_its_break_even() -> None:
    d = decide(200, 300, 400, 0.9, COST, PRICE, RULE)
    e = d.as_dict()["economics"]
    assert e["launch_cost"] == RULE.launch_cost and e["cost_price"] == COST and e["list_price"] == PRICE
    assert e["unit_margin"] == pytest.approx(PRICE - COST) and e["markup"] == pytest.approx(PRICE / COST)
    assert e["break_even_units"] == pytest.approx(RULE.launch_cost / (PRICE - COST)) == d.break_even_units
    assert e["list_price_assumed"] is False


def test_a_price_the_model_assumed_is_used_and_said() -> None:
    d = decide(200, 300, 400, 0.9, COST, 2.2 * COST, RULE, list_price_assumed=True,
               assumed=("list_price", "launch_date"))
    assert d.economics["list_price"] == pytest.approx(2.2 * COST) and d.economics["list_price_assumed"] is True
    assert d.reasons[-2:] == ["ASSUMED_LIST_PRICE", "ASSUMED_LAUNCH_DATE"]


def test_an_absent_input_whose_absence_breaks_the_gate_sends_the_sku_to_a_person() -> None:
    d = decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, assumed=("launch_date",), costly={"launch_date": 0.21})
    assert d.label == "REVIEW" and d.reasons[:2] == ["INPUT_NEEDED", "LEANS_GO"]
    assert "ASSUMED_LAUNCH_DATE" in d.reasons and "launch date (error 21%" in d.message
    assert d.extra["missing"] == [{"field": "launch_date", "error": 0.21}]
    assert decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, assumed=("launch_date",)).label == "GO"


# ---------------------------------------------------------------- every reason at once
def test_a_missing_input_does_not_hide_the_novelty_reasons() -> None:
    """Minimum functionality: a black square with no launch date is said to be both."""
    d = decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, evidence=evidence(picture=0.4, copy=0.1),
               assumed=("launch_date", "description"), costly={"launch_date": 0.22, "description": 0.18})
    assert d.label == "REVIEW"
    assert d.reasons[:3] == ["INPUT_NEEDED", "PICTURE_UNLIKE_HISTORY", "COPY_UNLIKE_HISTORY"]
    assert "LEANS_GO" not in d.reasons
    assert "the launch date (error 22%" in d.message and "the description (error 18%" in d.message
    assert "PICTURE_UNLIKE_HISTORY" in d.message
    assert [m["field"] for m in d.extra["missing"]] == ["launch_date", "description"]


def test_reasons_come_in_the_order_a_person_acts_on_them() -> None:
    """Input needed, novelty per modality, category, economics, lean; then what was assumed."""
    d = decide(50, 300, 900, 0.2, COST, None, RULE, assumed=("list_price", "launch_date"),
               evidence=evidence(joint=0.2, picture=0.4, copy=0.1, category_agrees=False, picture_category="外套"),
               costly={"launch_date": 0.3})
    assert d.reasons == ["INPUT_NEEDED", "NO_SIMILAR_HISTORY", "PICTURE_UNLIKE_HISTORY", "COPY_UNLIKE_HISTORY",
                         "CATEGORY_PICTURE_MISMATCH", "ASSUMED_LIST_PRICE", "ASSUMED_LAUNCH_DATE"]
    d = decide(50, 300, 900, 0.2, COST, None, RULE, assumed=("list_price", "launch_date"),
               evidence=evidence(joint=0.2, category_agrees=False, picture_category="外套"), costly={"launch_date": 0.3})
    assert d.reasons == ["INPUT_NEEDED", "NO_SIMILAR_HISTORY", "CATEGORY_PICTURE_MISMATCH", "TOO_UNCERTAIN", "LEANS_GO",
                         "ASSUMED_LIST_PRICE", "ASSUMED_LAUNCH_DATE"]


def test_a_losing_sku_held_for_input_still_says_it_loses_money() -> None:
    d = decide(5, 10, 20, 0.9, COST, PRICE, RULE, evidence=evidence(category_agrees=False, picture_category="外套"),
               assumed=("launch_date",), costly={"launch_date": 0.3})
    assert d.reasons[:4] == ["INPUT_NEEDED", "CATEGORY_PICTURE_MISMATCH", "LEANS_NO_GO", "BELOW_BREAK_EVEN_AT_P90"]
    assert "even in the optimistic case" in d.message


@pytest.mark.parametrize("costly", [None, {"launch_date": 0.3}])
def test_the_novelty_reasons_are_the_same_with_or_without_a_missing_input(costly) -> None:
    """Invariance: giving or leaving out an input never changes which novelty reasons are said."""
    novel = evidence(picture=0.4, category_agrees=False, picture_category="外套")
    d = decide(900, 1000, 1100, 0.9, COST, PRICE, RULE, evidence=novel, costly=costly)
    assert [c for c in d.reasons if c != "INPUT_NEEDED"][:2] == ["PICTURE_UNLIKE_HISTORY", "CATEGORY_PICTURE_MISMATCH"]


def test_without_a_cost_price_the_missing_input_is_named_too() -> None:
    d = decide(900, 1000, 1100, 0.9, math.nan, None, RULE, evidence=evidence(picture=0.4),
               costly={"launch_date": 0.3})
    assert d.reasons[:3] == ["COST_PRICE_NEEDED", "INPUT_NEEDED", "PICTURE_UNLIKE_HISTORY"]
    assert d.extra["missing"][0]["field"] == "launch_date" and "launch date" in d.message
