"""The newsvendor quantity: the demand quantile at the critical ratio, on a lognormal read from the band."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from features.quantity import newsvendor


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
