"""The season plan's optimiser (features/plan.py): the budget holds exactly, the choice is the best
one under it (checked against every subset on small cases), and a SKU whose P90 misses its
break-even is never chosen while a better one fits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from features.plan import Budget, Candidate, candidate_of, knn_units, make_plan, options

SALVAGE = 0.3


def random_candidates(n: int, seed: int) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p50 = float(rng.uniform(20, 400))
        p10, p90 = p50 * float(rng.uniform(0.3, 0.8)), p50 * float(rng.uniform(1.3, 2.5))
        cost = float(rng.uniform(10, 60))
        out.append(Candidate(f"S{i}", p10, p50, p90, cost * float(rng.uniform(1.6, 3.5)), cost, 2000.0,
                             knn_units=float(rng.uniform(10, 400))))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_the_budget_of_launches_and_capital_is_never_exceeded(seed: int) -> None:
    candidates = random_candidates(40, seed)
    capital = 40_000.0
    plan = make_plan(candidates, Budget(launches=8, capital=capital), SALVAGE)
    assert 0 < len(plan.picks) <= 8
    assert sum(p["capital"] for p in plan.picks) <= capital
    assert plan.totals["plan"]["capital"] <= capital and plan.totals["knn"]["capital"] <= capital
    assert plan.totals["knn"]["launches"] <= 8
    assert {p["sku_id"] for p in plan.picks}.isdisjoint(o["sku_id"] for o in plan.left_out)
    assert len(plan.picks) + len(plan.left_out) == len(candidates)
    # Launches alone: as many as the budget allows whenever that many pay in expectation.
    paying = sum(any(o.margin > 0 for o in options(c, SALVAGE)) for c in candidates)
    only = make_plan(candidates, Budget(launches=8), SALVAGE)
    assert len(only.picks) == min(8, paying)
    assert only.totals["plan"]["expected_margin"] >= plan.totals["plan"]["expected_margin"]


def brute_force(candidates: list[Candidate], budget: Budget) -> float:
    """The best total expected margin over every choice of one knot (or none) per candidate."""
    menus = [[None, *[o for o in options(c, SALVAGE) if o.margin > 0]] for c in candidates]
    best = 0.0
    for choice in itertools.product(*menus):
        picked = [o for o in choice if o is not None]
        if budget.launches is not None and len(picked) > budget.launches:
            continue
        if budget.capital is not None and sum(o.capital for o in picked) > budget.capital:
            continue
        best = max(best, sum(o.margin for o in picked))
    return best


@pytest.mark.parametrize("seed", range(3))
def test_the_plan_is_the_best_choice_under_the_budget(seed: int) -> None:
    candidates = random_candidates(6, 100 + seed)
    budget = Budget(launches=3, capital=12_000.0)
    plan = make_plan(candidates, budget, SALVAGE)
    assert plan.totals["plan"]["expected_margin"] == pytest.approx(brute_force(candidates, budget), abs=0.05)
    assert plan.totals["plan"]["expected_margin"] >= plan.totals["knn"]["expected_margin"] - 0.05


def lottery() -> Candidate:
    """P90 (99) below the break-even (100) but a band so wide that making ~1,000 pays in expectation."""
    return Candidate("LOTTERY", 1.0, 70.0, 99.0, 100.0, 10.0, 9000.0, knn_units=500.0)


def test_a_sku_whose_p90_misses_break_even_is_never_chosen_when_a_better_one_fits() -> None:
    steady = Candidate("STEADY", 80.0, 130.0, 200.0, 100.0, 10.0, 9000.0, knn_units=120.0)
    best_lottery = max(o.margin for o in options(lottery(), SALVAGE))
    best_steady = max(o.margin for o in options(steady, SALVAGE))
    assert best_lottery > best_steady > 0  # margin alone would choose the lottery ticket
    plan = make_plan([lottery(), steady], Budget(launches=1), SALVAGE)
    assert [p["sku_id"] for p in plan.picks] == ["STEADY"]
    assert {o["sku_id"]: o["reason"] for o in plan.left_out} == {"LOTTERY": "BELOW_BREAK_EVEN_AT_P90"}
    # The kNN rule, which reads the analogs only, takes the lottery ticket: less likely to pay back.
    assert plan.totals["knn"]["expected_success_rate"] < plan.totals["plan"]["expected_success_rate"]
    assert plan.totals["all"]["launches"] == 2


def test_every_pick_says_why_it_is_in_and_what_it_risks() -> None:
    plan = make_plan(random_candidates(12, 7), Budget(launches=4), SALVAGE)
    for rank, pick in enumerate(plan.picks, 1):
        assert pick["rank"] == rank and pick["expected_margin"] > 0
        assert "chance to pay back" in pick["why"] and "P10" in pick["risk"]["text"]
        assert pick["risk"]["margin_at_p10"] < pick["expected_margin"]
        assert math.isclose(pick["risk"]["p_loss"], 1 - pick["p_success"], abs_tol=1e-4)
    margins = [p["expected_margin"] for p in plan.picks]
    assert margins == sorted(margins, reverse=True)
    assert plan.totals["all"]["launches"] == 12 and plan.totals["plan"]["launches"] == 4


def test_candidates_without_a_break_even_are_left_out_with_the_reason() -> None:
    plan = make_plan([Candidate("NOCOST", 10, 50, 90, math.nan, None, 2000.0),
                      Candidate("LOSS", 10, 50, 90, 5.0, 10.0, 2000.0)], Budget(launches=2), SALVAGE)
    assert plan.picks == []
    assert {o["sku_id"]: o["reason"] for o in plan.left_out} == {"NOCOST": "COST_PRICE_NEEDED",
                                                                 "LOSS": "NO_POSITIVE_MARGIN"}


def test_budget_errors_name_the_field() -> None:
    assert [e["field"] for e in Budget(launches=0, capital=-1.0).errors()] == ["budget_launches", "budget_capital"]
    assert Budget(launches=3).errors() == []


def test_an_answer_becomes_a_candidate_with_the_knn_units_it_carries() -> None:
    answer = {"ok": True, "sku_id": "A", "forecast": {"p10": 10.0, "p50": 20.0, "p90": 40.0},
              "decision": {"label": "GO", "economics": {"list_price": 50.0, "cost_price": 20.0, "launch_cost": 300.0}},
              "analogs": [{"sales": 10.0, "similarity": 0.9}, {"sales": 40.0, "similarity": 0.3}]}
    c = candidate_of(answer)
    assert c is not None and c.break_even == pytest.approx(10.0)
    assert c.knn_units == pytest.approx((10 * 0.9 + 40 * 0.3) / 1.2) == knn_units(answer["analogs"])
    assert candidate_of({"ok": False, "errors": []}) is None
