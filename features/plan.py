"""The season plan: which candidates to launch, and how many of each to make first, within a budget.

A planner has more candidates than launches. Each candidate's forecast band (P10/P50/P90 of 7-day
units, read as the lognormal of ``features.quantity``) gives, for any first-batch quantity q,

- the expected margin: (list - cost) x q - (list - salvage) x E[(q - D)+] - launch cost, i.e. the
  margin of what sells, minus the cost of what is left over (sold at the salvage value), minus the
  fixed launch cost; a concave curve in q;
- the chance to pay back: P(D >= break-even units) when q reaches the break-even, else 0 (what is
  not made cannot be sold);
- the capital it ties up: cost price x q.

Each candidate's curve is read at a few quantities (``QUANTILES`` of its band, plus the newsvendor
quantity that maximises it): a piecewise-linear curve whose knots are exact. The plan is the 0/1
choice of at most one knot per candidate that maximises the total expected margin under the
budget (number of launches, capital, or both), solved exactly by SciPy's mixed-integer solver
(``scipy.optimize.milp``, HiGHS branch and bound): the budget holds exactly, not after rounding.

A candidate whose P90 misses its break-even (even the optimistic case loses money) is never chosen:
the lognormal's tail can give such a SKU a positive expected margin when its band is wide, and a
planner would be choosing a lottery ticket. Neither is a candidate without a cost price (no break-even),
nor one whose every quantity loses money in expectation.

The plan is shown beside two other ways to spend the same budget: launching all (every candidate
at its best quantity, no budget) and picking by the analog kNN (the most units by the analogs'
similarity-weighted mean sales, in that order while the budget lasts), each with the same
expected success rate, margin and capital.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix
from scipy.stats import norm

from features.quantity import lognormal_band, newsvendor

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)  # first-batch quantities considered: these quantiles of the band


@dataclass(frozen=True)
class Budget:
    """At most ``launches`` SKUs and at most ``capital`` in first batches (cost x units); None: no limit."""

    launches: int | None = None
    capital: float | None = None

    def errors(self) -> list[dict[str, str]]:
        """Field problems, in the words of ``features/messages.json`` (``err.not_positive``)."""
        out = []
        if self.launches is not None and self.launches < 1:
            out.append({"field": "budget_launches", "reason": f"must be positive, got {self.launches}"})
        if self.capital is not None and not (math.isfinite(self.capital) and self.capital > 0):
            out.append({"field": "budget_capital", "reason": f"must be positive, got {self.capital}"})
        return out


@dataclass(frozen=True)
class Candidate:
    """One scored SKU: its band, the prices its break-even was made with, and the kNN rule's units."""

    sku_id: str
    p10: float
    p50: float
    p90: float
    list_price: float
    cost_price: float | None
    launch_cost: float
    knn_units: float | None = None  # the analogs' similarity-weighted mean 7-day units
    decision: str | None = None

    @property
    def break_even(self) -> float:
        if self.cost_price is None or not math.isfinite(self.cost_price) or self.list_price <= self.cost_price:
            return math.inf
        return self.launch_cost / (self.list_price - self.cost_price)


@dataclass(frozen=True)
class Option:
    """One knot of a candidate's curve: make ``units`` first."""

    units: float
    margin: float  # expected, net of the launch cost
    p_success: float  # chance to pay back the launch cost
    capital: float
    leftover: float  # expected units left over
    margin_at_p10: float  # the margin if demand is the P10


@dataclass
class Plan:
    picks: list[dict[str, Any]]
    left_out: list[dict[str, Any]]
    totals: dict[str, dict[str, Any]]
    budget: dict[str, Any] = field(default_factory=dict)
    solver: str = "scipy.optimize.milp (HiGHS)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def knn_units(analogs: list[dict[str, Any]]) -> float | None:
    """The like-item rule: the shown analogs' 7-day units, weighted by their similarity."""
    pairs = [(float(a["sales"]), max(float(a["similarity"]), 0.0)) for a in analogs
             if a.get("sales") is not None and a.get("similarity") is not None]
    weight = sum(w for _, w in pairs)
    return sum(s * w for s, w in pairs) / weight if weight > 0 else None


def option(c: Candidate, units: float, salvage_share: float) -> Option:
    """The expected margin, chance to pay back, capital and leftover of making ``units`` of ``c``."""
    mu, sigma = lognormal_band(c.p10, c.p50, c.p90)
    cost = c.cost_price or 0.0
    salvage = salvage_share * cost
    z = (math.log(units) - mu) / sigma
    leftover = max(units * norm.cdf(z) - math.exp(mu + sigma**2 / 2) * norm.cdf(z - sigma), 0.0)
    margin = (c.list_price - cost) * units - (c.list_price - salvage) * leftover - c.launch_cost
    be = c.break_even
    p_success = float(norm.sf((math.log(be) - mu) / sigma)) if units >= be and math.isfinite(be) else 0.0
    at_p10 = (c.list_price - cost) * min(c.p10, units) - (cost - salvage) * max(units - c.p10, 0) - c.launch_cost
    return Option(round(units, 1), margin, p_success, cost * units, leftover, at_p10)


def options(c: Candidate, salvage_share: float) -> list[Option]:
    """The knots of ``c``'s curve: whole units at ``QUANTILES`` of its band and the newsvendor quantity."""
    mu, sigma = lognormal_band(c.p10, c.p50, c.p90)
    grid = {max(1.0, math.ceil(math.exp(mu + sigma * norm.ppf(q)))) for q in QUANTILES}
    best = newsvendor(c.p10, c.p50, c.p90, c.list_price, c.cost_price or 0.0, salvage_share)["units"]
    if best and best > 0:
        grid.add(max(1.0, math.ceil(best)))
    return [option(c, q, salvage_share) for q in sorted(grid)]


def _excluded(c: Candidate) -> str | None:
    """Why ``c`` may not be chosen at all, as a code (None: it may)."""
    if c.cost_price is None or not math.isfinite(c.cost_price):
        return "COST_PRICE_NEEDED"
    if not all(math.isfinite(x) for x in (c.p10, c.p50, c.p90)) or c.p50 <= 0:
        return "INVALID_FORECAST"
    if not math.isfinite(c.break_even):
        return "NO_POSITIVE_MARGIN"
    if c.p90 < c.break_even:
        return "BELOW_BREAK_EVEN_AT_P90"
    return None


def solve(menu: list[list[Option]], budget: Budget) -> list[int | None]:
    """The knot chosen per candidate (None: not launched) maximising the total expected margin
    under ``budget``, with ``scipy.optimize.milp``. Knots that lose money in expectation are never
    worth a launch and are left out of the problem."""
    keys = [(i, k) for i, opts in enumerate(menu) for k, o in enumerate(opts) if o.margin > 0]
    if not keys:
        return [None] * len(menu)
    rows = len(menu) + (budget.launches is not None) + (budget.capital is not None)
    A, upper = lil_matrix((rows, len(keys))), [1.0] * len(menu)
    for j, (i, k) in enumerate(keys):
        A[i, j] = 1.0  # at most one quantity per candidate
        r = len(menu)
        if budget.launches is not None:
            A[r, j] = 1.0
            r += 1
        if budget.capital is not None:
            A[r, j] = menu[i][k].capital
    upper += [float(budget.launches)] if budget.launches is not None else []
    upper += [float(budget.capital)] if budget.capital is not None else []
    cost = -np.array([menu[i][k].margin for i, k in keys])
    result = milp(cost, integrality=np.ones(len(keys)), bounds=Bounds(0, 1),
                  constraints=LinearConstraint(A.tocsr(), -np.inf, np.array(upper)))
    if result.x is None:
        raise RuntimeError(f"the plan's solver failed: {result.message}")
    chosen: list[int | None] = [None] * len(menu)
    for j, (i, k) in enumerate(keys):
        if result.x[j] > 0.5:
            chosen[i] = k
    return chosen


def _fit(menu: list[list[Option]], chosen: list[int | None], budget: Budget) -> list[int | None]:
    """``chosen`` within the budget to the last unit: the solver's feasibility tolerance (1e-7) may
    let the capital row pass by a fraction of a cent; the pick with the least margin goes then."""
    chosen = list(chosen)

    def capital() -> float:
        return sum(menu[i][k].capital for i, k in enumerate(chosen) if k is not None)

    while budget.capital is not None and capital() > budget.capital:
        worst = min((i for i, k in enumerate(chosen) if k is not None), key=lambda i: menu[i][chosen[i]].margin)
        chosen[worst] = None
    return chosen


def _summary(picked: list[Option], candidates: int) -> dict[str, Any]:
    """Expected success rate (mean chance to pay back), expected margin and capital of a set."""
    return {"launches": len(picked), "of_candidates": candidates,
            "expected_success_rate": round(float(np.mean([o.p_success for o in picked])), 4) if picked else None,
            "expected_margin": round(sum(o.margin for o in picked), 2),
            "capital": round(sum(o.capital for o in picked), 2),
            "expected_leftover_units": round(sum(o.leftover for o in picked), 1)}


def _knn_set(candidates: list[Candidate], menu: list[list[Option]], budget: Budget) -> list[Option]:
    """The like-item rule under the same budget: most kNN units first, each at its best quantity,
    while launches and capital last (a SKU whose first batch no longer fits is passed over)."""
    order = sorted((i for i, c in enumerate(candidates) if c.knn_units is not None and menu[i]),
                   key=lambda i: -(candidates[i].knn_units or 0.0))
    picked, capital = [], 0.0
    for i in order:
        best = max(menu[i], key=lambda o: o.margin)
        if budget.launches is not None and len(picked) >= budget.launches:
            break
        if budget.capital is not None and capital + best.capital > budget.capital:
            continue
        picked.append(best)
        capital += best.capital
    return picked


def _pick(c: Candidate, o: Option, rank: int) -> dict[str, Any]:
    """One chosen SKU: why it is in (its expected margin and chance) and what it risks."""
    return {
        "sku_id": c.sku_id, "rank": rank, "units": o.units, "capital": round(o.capital, 2),
        "expected_margin": round(o.margin, 2), "p_success": round(o.p_success, 4),
        "break_even_units": round(c.break_even, 1), "p10": c.p10, "p50": c.p50, "p90": c.p90,
        "knn_units": None if c.knn_units is None else round(c.knn_units, 1), "decision": c.decision,
        "why": (f"expected margin {o.margin:,.0f} on a first batch of {o.units:.0f} units; "
                f"{o.p_success:.0%} chance to pay back (break-even {c.break_even:.0f} units, P50 {c.p50:.0f})"),
        "risk": {"margin_at_p10": round(o.margin_at_p10, 2), "expected_leftover_units": round(o.leftover, 1),
                 "p_loss": round(1 - o.p_success, 4), "capital": round(o.capital, 2),
                 "text": (f"if it sells only its P10 ({c.p10:.0f}) the margin is {o.margin_at_p10:,.0f}; "
                          f"{o.leftover:.0f} units expected left over")},
    }


def make_plan(candidates: list[Candidate], budget: Budget, salvage_share: float) -> Plan:
    """The plan of the module docstring, with what was left out and why, and the totals of the
    plan, of launching all and of the kNN rule under the same budget."""
    excluded = [_excluded(c) for c in candidates]
    # Every candidate with a forecast and a cost price has a curve: launching all and the kNN rule
    # may take any of them; the plan only those ``_excluded`` lets through.
    full = [[] if why in ("COST_PRICE_NEEDED", "INVALID_FORECAST") else options(c, salvage_share)
            for c, why in zip(candidates, excluded)]
    menu = [[] if why else opts for opts, why in zip(full, excluded)]
    chosen = _fit(menu, solve(menu, budget), budget)
    order = sorted((i for i, k in enumerate(chosen) if k is not None), key=lambda i: -menu[i][chosen[i]].margin)
    picks = [_pick(candidates[i], menu[i][chosen[i]], rank) for rank, i in enumerate(order, 1)]
    left_out = []
    for i, c in enumerate(candidates):
        if chosen[i] is None:
            code = excluded[i] or ("NO_POSITIVE_MARGIN" if not any(o.margin > 0 for o in menu[i]) else "OUT_OF_BUDGET")
            left_out.append({"sku_id": c.sku_id, "reason": code, "p50": c.p50, "p90": c.p90,
                             "break_even_units": None if math.isinf(c.break_even) else round(c.break_even, 1)})
    everyone = [max(m, key=lambda o: o.margin) for m in full if m]
    totals = {"plan": _summary([menu[i][chosen[i]] for i in order], len(candidates)),
              "all": _summary(everyone, len(candidates)),
              "knn": _summary(_knn_set(candidates, full, budget), len(candidates))}
    return Plan(picks, left_out, totals, {"launches": budget.launches, "capital": budget.capital})


def candidate_of(answer: dict[str, Any]) -> Candidate | None:
    """A ``/predict`` answer as a plan candidate (None for an answer that is an error)."""
    if not answer.get("ok"):
        return None
    f, d = answer["forecast"], answer["decision"]
    econ = d.get("economics") or {}
    return Candidate(str(answer.get("sku_id")), float(f["p10"]), float(f["p50"]), float(f["p90"]),
                     float(econ.get("list_price") or math.nan), econ.get("cost_price"),
                     float(econ.get("launch_cost") or 0.0), knn_units(answer.get("analogs") or []), d.get("label"))
