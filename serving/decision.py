"""The go/no-go rule: turn a forecast band and its analogs into GO / REVIEW / NO_GO with reasons.

Minimum viable volume = break-even units = launch cost / unit margin (list price - cost price).
Without a list price, the margin assumes the configured default markup (and says so).

In order:
0. A forecast that is not a finite number:                      REVIEW  INVALID_FORECAST
1. No similar past SKU (nothing above the similarity floor):    REVIEW  NO_SIMILAR_HISTORY
2. P50 below break-even:                                         NO_GO   BELOW_BREAK_EVEN
   (with P90 also below: even the optimistic case loses money:   + BELOW_BREAK_EVEN_AT_P90)
3. P50 clears break-even but the band is too wide
   ((P90 - P10) / P50 > max_relative_spread) and P10 does not:   REVIEW  TOO_UNCERTAIN
4. Otherwise:                                                    GO      CLEARS_BREAK_EVEN
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DecisionRule:
    launch_cost: float = 2000.0
    default_markup: float = 2.5
    max_relative_spread: float = 1.2
    min_similarity: float = 0.8


@dataclass
class Decision:
    label: str  # GO, REVIEW or NO_GO
    reasons: list[str]  # machine-readable codes
    message: str  # one sentence for people
    break_even_units: float
    assumed_list_price: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def break_even_units(cost_price: float, list_price: float | None, rule: DecisionRule) -> tuple[float, bool]:
    """Units needed to pay back the launch cost, and whether the list price was assumed."""
    assumed = list_price is None or not math.isfinite(list_price)
    price = cost_price * rule.default_markup if assumed else list_price
    margin = price - cost_price
    if margin <= 0:
        return math.inf, assumed
    return rule.launch_cost / margin, assumed


def decide(p10: float, p50: float, p90: float, top_similarity: float | None, cost_price: float,
           list_price: float | None, rule: DecisionRule) -> Decision:
    units, assumed = break_even_units(cost_price, list_price, rule)
    codes = ["ASSUMED_LIST_PRICE"] if assumed else []
    spread = (p90 - p10) / p50 if p50 > 0 else math.inf
    be = "no positive margin" if math.isinf(units) else f"{units:.0f} units"

    if not all(math.isfinite(x) for x in (p10, p50, p90)):  # never let a broken number read as GO
        return Decision("REVIEW", ["INVALID_FORECAST", *codes],
                        f"The model gave no usable forecast (P10/P50/P90 = {p10}/{p50}/{p90}): "
                        "a person should judge this SKU.", units, assumed)
    if top_similarity is None or not math.isfinite(top_similarity) or top_similarity < rule.min_similarity:
        sim = "none" if top_similarity is None or not math.isfinite(top_similarity) else f"{top_similarity:.2f}"
        return Decision("REVIEW", ["NO_SIMILAR_HISTORY", *codes],
                        f"No past SKU is similar enough (best similarity {sim} < {rule.min_similarity:.2f}): "
                        "the forecast has nothing comparable to learn from, a person should judge it.", units, assumed)
    if p50 < units:
        extra = ["BELOW_BREAK_EVEN_AT_P90"] if p90 < units else []
        return Decision("NO_GO", ["BELOW_BREAK_EVEN", *extra, *codes],
                        f"Expected {p50:.0f} units in 7 days is below the break-even of {be}"
                        + (" even in the optimistic case (P90)." if extra else "."), units, assumed)
    if spread > rule.max_relative_spread and p10 < units:
        return Decision("REVIEW", ["TOO_UNCERTAIN", *codes],
                        f"Expected {p50:.0f} units clears the break-even of {be}, but the range "
                        f"{p10:.0f}-{p90:.0f} is too wide to commit without a second look.", units, assumed)
    return Decision("GO", ["CLEARS_BREAK_EVEN", *(["CLEARS_AT_P10"] if p10 >= units else []), *codes],
                    f"Expected {p50:.0f} units (range {p10:.0f}-{p90:.0f}) clears the break-even of {be}.",
                    units, assumed)
