"""Launch economics shared by the decision rule (serving) and its evaluation (training).

A launch "succeeds" when its first-7-day gross margin pays back the fixed launch cost:
units x (list price - cost price) >= launch cost, i.e. units >= break-even units.
"""

from __future__ import annotations

import numpy as np


def break_even_units(
    cost_price: np.ndarray | float, list_price: np.ndarray | float | None, launch_cost: float, default_markup: float
) -> tuple[np.ndarray, np.ndarray]:
    """(break-even units, whether the list price was assumed) per SKU; inf where there is no margin.

    Without a list price the default markup over cost is assumed."""
    cost = np.asarray(cost_price, dtype=float)
    price = np.full_like(cost, np.nan) if list_price is None else np.asarray(list_price, dtype=float)
    assumed = ~np.isfinite(price)
    price = np.where(assumed, cost * default_markup, price)
    margin = price - cost
    with np.errstate(divide="ignore", invalid="ignore"):
        units = np.where(margin > 0, launch_cost / margin, np.inf)
    return units, assumed
