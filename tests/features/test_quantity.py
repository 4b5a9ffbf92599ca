"""The newsvendor quantity: the demand quantile at the critical ratio, on a lognormal read from the band."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from features.decision import DecisionRule, Evidence, decide
from features.quantity import first_batch, newsvendor, sentence


def band(mu: float, sigma: float) -> tuple[float, float, float]:
    z = norm.ppf(0.9)
    return math.exp(mu - z * sigma), math.exp(mu), math.exp(mu + z * sigma)


def test_quantity_is_the_quantile_at_the_critical_ratio() -> None:
    mu, sigma = math.log(200), 0.4
    out = newsvendor(*band(mu, sigma), list_price=100, cost_price=40, salvage_share=0.25)
    ratio = (100 - 40) / (100 - 10)
    assert out["critical_ratio"] == pytest.approx(ratio, abs=1e-4)
    assert out["units"] == pytest.approx(math.exp(mu + sigma * norm.ppf(ratio)), abs=0.1)
    assert out["p_sell_out"] == pytest.approx(1 - ratio, abs=1e-4)


def test_expected_leftover_matches_simulated_demand() -> None:
    mu, sigma = math.log(80), 0.6
    out = newsvendor(*band(mu, sigma), list_price=50, cost_price=30, salvage_share=0.3)
    demand = np.random.default_rng(0).lognormal(mu, sigma, 400_000)
    assert out["expected_leftover"] == pytest.approx(np.maximum(out["units"] - demand, 0).mean(), rel=0.02)
    assert np.mean(demand >= out["units"]) == pytest.approx(out["p_sell_out"], abs=0.01)


def test_a_thin_margin_makes_less_than_a_fat_one() -> None:
    thin = newsvendor(50, 100, 200, list_price=45, cost_price=40, salvage_share=0.3)
    fat = newsvendor(50, 100, 200, list_price=160, cost_price=40, salvage_share=0.3)
    assert thin["units"] < 100 < fat["units"]


def test_no_margin_makes_nothing() -> None:
    assert newsvendor(50, 100, 200, list_price=40, cost_price=40, salvage_share=0.3)["units"] == 0.0
    assert newsvendor(0, 0, 0, list_price=80, cost_price=40, salvage_share=0.3)["units"] == 0.0


# ---------------------------------------------------------------- a quantity only where production is allowed

RULE = DecisionRule(launch_cost=2000.0, default_markup=2.5, max_relative_spread=1.2, min_similarity=0.6)
LIKE = {"joint": 0.9, "picture": 0.9, "copy": 0.9, "picture_floor": 0.7, "copy_floor": 0.5}


def batch_for(p10: float, p50: float, p90: float, evidence: Evidence | None = None, **kw) -> tuple:
    d = decide(p10, p50, p90, 0.9, 10.0, 30.0, RULE, evidence=evidence or Evidence(**LIKE), **kw)
    return d, first_batch(d.label, d.reasons, p10, p50, p90, d.economics, 0.3)


def test_a_go_makes_the_newsvendor_batch_and_pays_back_the_launch_cost() -> None:
    d, q = batch_for(150, 200, 260)
    assert d.label == "GO" and q["status"] == "make" and q["reason"] is None
    assert q["units"] == newsvendor(150, 200, 260, 30.0, 10.0, 0.3)["units"] > 0
    assert q["horizon"] == "first_batch" and q["launch_cost"] == 2000.0
    sold = q["units"] - q["expected_leftover"]
    assert q["expected_profit"] == pytest.approx(20 * sold - 7 * q["expected_leftover"] - 2000, abs=0.05)


@pytest.mark.parametrize(("band", "evidence", "reason"), [
    ((40, 60, 90), None, "NO_GO"),
    ((150, 200, 260), Evidence(**{**LIKE, "picture": 0.3}), "UNLIKE_HISTORY"),
    ((150, 200, 260), Evidence(**{**LIKE, "joint": 0.1}), "UNLIKE_HISTORY"),
    ((5, 10, 20), Evidence(**{**LIKE, "copy": 0.1}), "UNLIKE_HISTORY"),
])
def test_no_go_and_novelty_reviews_make_nothing_and_say_why(band, evidence, reason) -> None:
    d, q = batch_for(*band, evidence=evidence)
    assert d.label != "GO" and q["units"] == 0 and q["status"] == "none" and q["reason"] == reason
    assert q["if_made"]["units"] > 0  # the newsvendor batch is still measured, never offered
    for lang in ("zh", "en"):
        said = sentence(q, d.economics, lang)
        assert ("0 件" if lang == "zh" else "0 units") in said and "{" not in said


def test_a_review_leaning_go_makes_its_batch_only_once_a_person_approves() -> None:
    d, q = batch_for(40, 200, 600)  # too wide a band, leans GO
    assert d.label == "REVIEW" and "LEANS_GO" in d.reasons
    assert q["status"] == "on_approval" and q["units"] > 0
    assert "once a person approves" in sentence(q, d.economics, "en")
    assert "人工批准" in sentence(q, d.economics, "zh")


def test_a_batch_that_cannot_pay_back_the_launch_cost_is_not_made() -> None:
    """Direction: the same band with a launch cost the batch's profit cannot cover makes nothing."""
    d = decide(150, 200, 260, 0.9, 10.0, 30.0, RULE)
    q = first_batch("GO", d.reasons, 150, 200, 260, {**d.economics, "launch_cost": 50000.0}, 0.3)
    assert q["units"] == 0 and q["reason"] == "NO_PROFIT_AFTER_LAUNCH_COST"
    assert q["if_made"]["expected_profit"] < 0


def test_without_a_cost_price_nothing_is_made() -> None:
    d = decide(150, 200, 260, 0.9, math.nan, None, RULE)
    q = first_batch(d.label, d.reasons, 150, 200, 260, d.economics, 0.3)
    assert q["units"] == 0 and q["reason"] == "NO_COST_PRICE"
    assert "cost price" in sentence(q, d.economics, "en") and "成本价" in sentence(q, d.economics, "zh")


def test_the_sentence_says_the_horizon_and_the_launch_cost_in_both_languages() -> None:
    d, q = batch_for(150, 200, 260)
    en, zh = sentence(q, d.economics, "en"), sentence(q, d.economics, "zh")
    assert "first batch" in en and "before the trial" in en and "¥2,000 launch cost" in en
    assert "首批" in zh and "试销前" in zh and "¥2,000" in zh
