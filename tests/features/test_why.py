"""Per-SKU contributions, grouped: they add up to the booster's raw score, and land in the right group."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.why import contributions, explain, group_of


@pytest.mark.parametrize(("feature", "group"), [
    ("picture_pc3", "picture"), ("picture_top1_similarity", "picture"), ("picture_wmean_log_sales", "analogs"),
    ("copy_pc0", "copy"), ("copy_wmean_log_sales", "analogs"), ("joint_median_log_sales", "analogs"),
    ("joint_n_close", "analogs"), ("log_list_price", "price"), ("margin", "price"),
    ("joint_log_price_gap", "price"), ("list_price_assumed", "price"), ("category", "category"),
    ("category_assumed", "category"), ("season_sin", "season"), ("channel", "channel"),
    ("embedding_log_sales", "readout"),
])
def test_each_feature_lands_in_the_group_a_merchandiser_would_name(feature: str, group: str) -> None:
    assert group_of(feature) == group


def test_group_contributions_add_up_to_the_raw_score_and_follow_the_driving_feature() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"log_list_price": rng.normal(size=400), "season_sin": rng.normal(size=400),
                      "picture_pc0": rng.normal(size=400)})
    y = 2.0 * X["log_list_price"] + 0.1 * rng.normal(size=400)  # price drives everything
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1, "deterministic": True},
                        lgb.Dataset(X, y), num_boost_round=50)
    parts = contributions(booster, X.head(20))
    np.testing.assert_allclose(parts.sum(axis=1), booster.predict(X.head(20), raw_score=True), rtol=1e-6, atol=1e-6)
    why = explain(parts.iloc[0], start_units=10.0, p50=30.0, analog_sales=[5.0, 20.0, 11.0])
    assert why["factors"][0]["group"] == "price"
    assert why["analogs"] == {"min": 5.0, "median": 11.0, "max": 20.0}
    assert "sold 5-20 (median 11)" in why["sentence"] and "price" in why["sentence"]
