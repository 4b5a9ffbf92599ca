"""One conversion of the feature frame for every booster (features.forecast.lgb_matrix): the
boosters and the contributions read the same matrix and give the bits LightGBM's own pandas path
gives, on a synthetic frame with every awkward case and on the trained sample's real features."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.forecast import lgb_matrix


def frame(n: int, seed: int, categories: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n).astype(np.float32),
        "count": rng.integers(0, 5, n),
        "flag": rng.random(n) < 0.5,
        "category": pd.Categorical(rng.choice(categories, n), categories=categories),
        "gap": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
    })
    return out


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    X = frame(600, 1, ["衬衫", "T恤", "dress"])
    y = X["a"] * 2 + (X["category"] == "T恤") * 3 + np.random.default_rng(2).normal(size=len(X))
    params = {"objective": "regression", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5,
              "cat_smooth": 1, "min_data_per_group": 5, "deterministic": True}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=40)


def test_the_matrix_gives_the_pandas_path_bits(booster) -> None:
    # Another category order, a category never trained on, an absent category: all as LightGBM maps them.
    X = frame(200, 3, ["dress", "T恤", "衬衫", "风衣"])
    X.loc[X.index[:7], "category"] = np.nan
    matrix = lgb_matrix(X, booster.pandas_categorical)
    assert matrix.shape == X.shape and matrix.dtype == np.float64
    for kwargs in ({}, {"raw_score": True}, {"pred_contrib": True}, {"num_iteration": 10}):
        np.testing.assert_array_equal(booster.predict(matrix, **kwargs), booster.predict(X, **kwargs))
    unseen = X["category"] == "风衣"
    assert unseen.any() and np.isnan(matrix[unseen.to_numpy(), X.columns.get_loc("category")]).all()


def test_a_frame_that_does_not_match_the_booster_is_refused(booster) -> None:
    X = frame(10, 4, ["衬衫"]).drop(columns="category")
    with pytest.raises(ValueError, match="has 0 categorical columns, the booster was trained on 1"):
        lgb_matrix(X, booster.pandas_categorical)


def test_the_sample_model_forecasts_the_same_from_one_conversion(trained: dict) -> None:
    from features.model import load_registered
    from features.why import contributions
    from training.data import load_dataset

    model, _ = load_registered(trained["settings"])
    data = load_dataset(trained["sample"] / "catalogue.parquet", trained["settings"], progress=False)
    last = data.subset(np.arange(len(data.frame)) >= len(data.frame) - 64)
    features = model.pipeline.transform(last.frame, last.embeddings)
    matrix = model.forecaster.matrix(features)
    for name, b in model.forecaster.boosters.items():
        np.testing.assert_array_equal(b.predict(matrix, raw_score=True), b.predict(features, raw_score=True),
                                      err_msg=name)
    point = model.forecaster.boosters["point"]  # the "why" reads the same matrix
    pd.testing.assert_frame_equal(contributions(point, features, matrix), contributions(point, features),
                                  check_exact=True)
