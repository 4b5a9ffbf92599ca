"""How much to make: the newsvendor quantity beside the go/no-go decision.

Making one more unit earns the margin (list price - cost) if it sells and loses (cost - salvage) if
it is left over, so the quantity that maximises expected profit is the demand quantile at the
critical ratio (list - cost) / (list - salvage). Demand is the forecast band read as a lognormal:
median P50, spread from P10-P90 in log space (the quantiles interpolated in log units).
"""

from __future__ import annotations

import math

from scipy.stats import norm

Z90 = float(norm.ppf(0.9))
FLOOR = 0.5  # a P10 of 0 units has no logarithm: read it as half a unit


def lognormal_band(p10: float, p50: float, p90: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with median P50 and the band's log width."""
    lo, mid, hi = (math.log(max(x, FLOOR)) for x in (p10, p50, p90))
    return mid, max((hi - lo) / (2 * Z90), 1e-6)


def newsvendor(p10: float, p50: float, p90: float, list_price: float, cost_price: float,
               salvage_share: float) -> dict[str, float | None]:
    """Units to make for 7 days, the critical ratio, expected leftover units and the chance of
    selling out. No positive margin or no expected sale: make nothing."""
    salvage = salvage_share * cost_price
    if not all(math.isfinite(x) for x in (p10, p50, p90, list_price)) or list_price <= cost_price or p50 <= 0:
        return {"units": 0.0, "critical_ratio": None, "expected_leftover": 0.0, "p_sell_out": None,
                "salvage_value": salvage}
    ratio = (list_price - cost_price) / (list_price - salvage)
    mu, sigma = lognormal_band(p10, p50, p90)
    z = float(norm.ppf(ratio))
    units = math.exp(mu + sigma * z)
    # E[(q - D)+] for lognormal D at q = exp(mu + sigma z): q Phi(z) - E[D] Phi(z - sigma).
    leftover = units * norm.cdf(z) - math.exp(mu + sigma**2 / 2) * norm.cdf(z - sigma)
    return {"units": round(units, 1), "critical_ratio": round(ratio, 4),
            "expected_leftover": round(float(max(leftover, 0.0)), 1), "p_sell_out": round(1 - ratio, 4),
            "salvage_value": round(salvage, 2)}


HORIZON = "first_batch"  # the batch made before the trial: the first 7 days' demand, no restock yet
# Reasons a decision holds production back, as the quantity names them (features.decision codes).
UNLIKE = ("NO_SIMILAR_HISTORY", "PICTURE_UNLIKE_HISTORY", "COPY_UNLIKE_HISTORY", "CATEGORY_PICTURE_MISMATCH")
UNTRUSTED = ("LIVE_ERROR_ABOVE_GATE", "MODEL_ABOVE_GATE", "INVALID_FORECAST")


def held_back(label: str, reasons: list[str]) -> str | None:
    """Why no batch may be made on this decision (a code), or None when production is allowed:
    on a GO, or on a REVIEW that leans GO for reasons other than novelty (made once a person approves)."""
    if "COST_PRICE_NEEDED" in reasons:
        return "NO_COST_PRICE"
    if any(code in reasons for code in UNTRUSTED):
        return "MODEL_NOT_TRUSTED"
    if label == "NO_GO":
        return "NO_GO"
    if label == "REVIEW" and any(code in reasons for code in UNLIKE):
        return "UNLIKE_HISTORY"
    if label == "REVIEW" and "LEANS_GO" not in reasons:
        return "LEANS_NO_GO"
    return None


def first_batch(label: str, reasons: list[str], p10: float, p50: float, p90: float, economics: dict,
                salvage_share: float) -> dict:
    """The units to make in the first batch, before the trial's sales are known, for this decision.

    Allowed on GO (``status: make``) and on a REVIEW leaning GO (``on_approval``: made only once a
    person approves); otherwise 0 with ``reason``. The amount is the newsvendor quantity (above);
    the launch cost does not change which quantity maximises profit, but it must be paid back: a
    batch whose expected profit after the launch cost is not positive is not made
    (``NO_PROFIT_AFTER_LAUNCH_COST``). ``if_made`` keeps the newsvendor units for measurement."""
    cost, price = economics.get("cost_price"), economics.get("list_price")
    computable = cost is not None and price is not None and math.isfinite(cost) and math.isfinite(price)
    q = newsvendor(p10, p50, p90, price, cost, salvage_share) if computable else dict(newsvendor(
        math.nan, math.nan, math.nan, math.nan, 0.0, salvage_share), salvage_value=None)
    launch_cost = float(economics.get("launch_cost") or 0.0)
    profit = _expected_profit(q, price, cost, launch_cost) if computable else None
    reason = held_back(label, reasons)
    if reason is None and not (profit is not None and profit > 0):
        reason = "NO_PROFIT_AFTER_LAUNCH_COST"
    if reason:
        return {**q, "units": 0.0, "expected_leftover": 0.0, "p_sell_out": None, "status": "none", "reason": reason,
                "horizon": HORIZON, "launch_cost": launch_cost, "expected_profit": None,
                "if_made": {"units": q["units"], "expected_profit": profit}}
    return {**q, "status": "on_approval" if label == "REVIEW" else "make", "reason": None, "horizon": HORIZON,
            "launch_cost": launch_cost, "expected_profit": profit, "if_made": {"units": q["units"],
                                                                               "expected_profit": profit}}


def sentence(q: dict, economics: dict, lang: str, currency: str = "¥") -> str:
    """How the quantity was chosen, in ``lang``: the batch and what it weighs, or why nothing is made."""
    from features import messages as m

    if q.get("status") not in ("make", "on_approval"):
        reason = m.text(f"quantity.reason.{q.get('reason')}", lang)
        return m.text("quantity.none", lang, reason=reason)
    cost, price = economics["cost_price"], economics["list_price"]
    made = m.text("quantity.make", lang, units=m.units(q["units"]), margin=m.money(price - cost, currency),
                  loss=m.money(cost - q["salvage_value"], currency), launch_cost=m.money(q["launch_cost"], currency),
                  profit=m.money(q["expected_profit"], currency))
    return m.text("quantity.on_approval", lang, make=made) if q["status"] == "on_approval" else made


def _expected_profit(q: dict, price: float, cost: float, launch_cost: float) -> float | None:
    """Expected 7-day profit of making ``q['units']``: margin on the units sold, the loss on those
    left over (cost - salvage), less the launch cost."""
    units, leftover = q["units"], q["expected_leftover"]
    if not units:
        return None
    sold = units - leftover
    return round(float((price - cost) * sold - (cost - q["salvage_value"]) * leftover - launch_cost), 2)
