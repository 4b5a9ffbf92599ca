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
            "expected_leftover": round(max(leftover, 0.0), 1), "p_sell_out": round(1 - ratio, 4),
            "salvage_value": round(salvage, 2)}
