"""Behavioural tests of the trained sample champion (Made-With-ML style): invariances, directional
expectations and minimum functionality, on its model and through the served MLflow pyfunc.

The sample's hidden sales function (features/sample/world.py) has a price elasticity of 0.6, sales
that do not depend on the channel or the SKU id, and tees that sell more in summer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalogue import load_catalogue


@pytest.fixture(scope="module")
def champion(trained: dict):
    from training.jobs import load_model

    return load_model(trained["settings"])[0]


@pytest.fixture(scope="module")
def candidates(trained: dict) -> pd.DataFrame:
    """The sample's 40 candidate SKUs (launching after the history), validated."""
    return load_catalogue(trained["sample"] / "candidates.csv", require_target=False).frame


def _p50(model, frame: pd.DataFrame, settings) -> np.ndarray:
    return np.array([r["p50"] for r in model.forecast(frame.reset_index(drop=True), settings)])


# ---------------------------------------------------------------- minimum functionality
def test_quantiles_are_ordered_and_the_curve_sums_to_p50(champion, candidates, trained) -> None:
    out = champion.forecast(candidates, trained["settings"])
    assert len(out) == len(candidates)
    for row in out:
        assert 0 <= row["p10"] <= row["p50"] <= row["p90"]
        assert row["p90"] > row["p10"]  # a real band, not a point
        assert len(row["curve"]) == 7
        assert all(v >= 0 for v in row["curve"])
        assert sum(row["curve"]) == pytest.approx(row["p50"], abs=0.01 * 7)
        assert len(row["analogs"]) == 5
    # Forecasts are in the range of launch sales the sample has, not degenerate.
    p50 = np.array([r["p50"] for r in out])
    assert 5 < p50.min() and p50.max() < 2000 and p50.std() > 0


def test_forecast_tracks_the_hidden_sales_of_new_launches(champion, trained) -> None:
    """On the candidates (never trained on) the forecast is close to the noise-free sales."""
    from features.sample import sample_frames

    settings = trained["settings"]
    frames = sample_frames()  # the default sample's tables, with hidden attributes
    hidden = frames.attributes.query("split == 'candidate'").set_index("sku_id")["expected_sales"]
    frame = load_catalogue(trained["sample"] / "candidates.csv", require_target=False).frame
    p50 = _p50(champion, frame, settings)
    expected = hidden.reindex(frame["sku_id"]).to_numpy()
    wape = np.abs(p50 - expected).sum() / expected.sum()
    assert wape < 0.25, wape
    assert np.corrcoef(np.log(p50), np.log(expected))[0, 1] > 0.8


# ---------------------------------------------------------------- invariance
def test_sku_id_and_row_order_do_not_change_a_forecast(champion, candidates, trained) -> None:
    """Same rows, same forecasts: up to float rounding (BLAS sums depend on the batch's shape, which
    moves a forecast by ~1e-7 of itself; a real dependence on other rows would be far larger)."""
    settings = trained["settings"]
    base = _p50(champion, candidates, settings)
    renamed = _p50(champion, candidates.assign(sku_id=[f"NEW-{i}" for i in range(len(candidates))]), settings)
    np.testing.assert_allclose(renamed, base, rtol=1e-9)
    reversed_ = _p50(champion, candidates.iloc[::-1], settings)[::-1]
    np.testing.assert_allclose(reversed_, base, rtol=1e-5)
    alone = [_p50(champion, candidates.iloc[[i]], settings)[0] for i in (0, 8, 21)]
    np.testing.assert_allclose(alone, base[[0, 8, 21]], rtol=1e-5)


def test_channel_barely_moves_the_forecast(champion, candidates, trained) -> None:
    """The channel does not drive sample sales: switching it moves forecasts by a few percent at most."""
    settings = trained["settings"]
    app = _p50(champion, candidates.assign(channel="app"), settings)
    web = _p50(champion, candidates.assign(channel="web"), settings)
    ratio = np.abs(np.log(web / app))
    assert np.median(ratio) < 0.05 and ratio.max() < 0.20, ratio


# ---------------------------------------------------------------- direction
def test_a_higher_list_price_does_not_increase_the_forecast(champion, candidates, trained) -> None:
    """Price elasticity 0.6 (and fat markups sell less): +50% on the list price, all else equal,
    should cut launch sales by ~25-30%; it must never raise them by more than noise."""
    settings = trained["settings"]
    base = _p50(champion, candidates, settings)
    dearer = _p50(champion, candidates.assign(list_price=candidates["list_price"] * 1.5), settings)
    ratio = dearer / base
    assert ratio.max() <= 1.05, ratio
    assert np.median(ratio) < 0.92, ratio
    cheaper = _p50(champion, candidates.assign(list_price=candidates["list_price"] / 1.5), settings)
    assert np.median(cheaper / base) > 1.05


def test_tees_sell_more_in_summer_than_in_winter(champion, trained) -> None:
    """Same tees (picture, copy without season words, prices), launched in July vs January."""
    settings = trained["settings"]
    catalogue = load_catalogue(trained["sample"] / "catalogue.parquet").frame
    tees = catalogue[catalogue["category"] == "T恤"].tail(30).reset_index(drop=True)
    neutral = tees.assign(title=tees["title"].str.replace(r"^\d{4}\S+新款\s*", "", regex=True),
                          description="纯棉 T恤 cotton tee")
    summer = _p50(champion, neutral.assign(launch_date=pd.Timestamp("2025-07-15")), settings)
    winter = _p50(champion, neutral.assign(launch_date=pd.Timestamp("2025-01-15")), settings)
    assert np.median(summer / winter) > 1.1, summer / winter


# ---------------------------------------------------------------- time honesty
def test_analogs_only_come_from_earlier_launches(champion, trained) -> None:
    """Every SKU's analogs (the index holds all 3,000 sample SKUs) launched at least
    ``analog_gap_days`` before it: the holdout's analogs never include itself or later SKUs."""
    from features.analogs import day_numbers
    from training.data import holdout_split, load_dataset

    settings = trained["settings"]
    data = load_dataset(trained["sample"] / "catalogue.parquet", settings, progress=False)
    pipeline = champion.pipeline
    nb = pipeline.neighbours(data.frame, data.embeddings, pipeline.k)
    launch = day_numbers(data.frame["launch_date"])
    valid = nb.index >= 0
    analog_days = pipeline.index.days[np.maximum(nb.index, 0)]
    assert (analog_days[valid] <= np.repeat(launch, valid.sum(axis=1)) - settings.analog_gap_days).all()
    # Launches in the first week have no analog at all; the holdout's all have the full k.
    first_week = launch < launch.min() + settings.analog_gap_days
    assert first_week.any() and not valid[first_week].any()
    _, holdout = holdout_split(data.frame, settings.holdout_fraction)
    assert valid[holdout].all()
    own = pipeline.index.sku_ids[np.maximum(nb.index, 0)]
    assert not (own[holdout] == data.frame["sku_id"].to_numpy()[holdout, None]).any()


def test_analog_features_do_not_change_when_later_sales_change(trained) -> None:
    """Fit the feature path twice, once with every launch from a cut date on sold 3x as much:
    the analog (and every other) feature of SKUs launched before the cut plus the gap must not
    move at all. The embedding read-out (``BASE_MARGIN``) is left out: its ridge penalty and its
    fallback for the first launches are chosen on the whole history it is fitted on, so it moves a
    little (in training that history is the development period: the holdout is never in it)."""
    from features.assemble import BASE_MARGIN, FeaturePipeline
    from features.catalogue import Catalogue
    from training.data import load_dataset

    settings = trained["settings"]
    data = load_dataset(trained["sample"] / "catalogue.parquet", settings, progress=False)
    frame = data.frame
    cut = pd.Timestamp("2025-01-01")
    later = (frame["launch_date"] >= cut).to_numpy()
    inflated = frame.copy()
    inflated.loc[later, "sales_7d"] = inflated.loc[later, "sales_7d"] * 3
    honest = FeaturePipeline.fit(data.catalogue, data.embeddings, settings)
    leaky = FeaturePipeline.fit(Catalogue(inflated, data.catalogue.root, data.catalogue.spec), data.embeddings, settings)
    window = ((frame["launch_date"] >= cut - pd.Timedelta(days=60))
              & (frame["launch_date"] < cut + pd.Timedelta(days=settings.analog_gap_days))).to_numpy()
    assert window.sum() > 100
    part = data.subset(window)
    a = honest.transform(part.frame, part.embeddings).drop(columns=[BASE_MARGIN])
    b = leaky.transform(part.frame, part.embeddings).drop(columns=[BASE_MARGIN])
    assert {"joint_wmean_log_sales", "joint_median_log_sales", "picture_wmean_log_sales",
            "copy_wmean_log_sales", "joint_top1_log_sales"} <= set(a.columns)
    pd.testing.assert_frame_equal(a, b)
    # Sanity: the inflated sales do reach the analog features of SKUs launched well after the cut
    # (through those of their analogs that launched after it; most still launched before).
    after = data.subset((frame["launch_date"] >= cut + pd.Timedelta(days=60)).to_numpy())
    moved = honest.transform(after.frame, after.embeddings)["joint_wmean_log_sales"].to_numpy()
    moved_leaky = leaky.transform(after.frame, after.embeddings)["joint_wmean_log_sales"].to_numpy()
    assert np.mean(moved_leaky > moved + 1e-9) > 0.5
    assert np.nanmean(moved_leaky - moved) > 0.05


# ---------------------------------------------------------------- the served model
def test_served_pyfunc_matches_the_model(trained, champion) -> None:
    """``models:/trialcast@champion`` as MLflow serves it, fed picture bytes in a DataFrame,
    returns the model's P50 for the same rows."""
    import mlflow

    from training.registry import connect

    settings = trained["settings"]
    connect(settings)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    raw = pd.read_csv(trained["sample"] / "candidates.csv", dtype=str).head(6)
    images = [(trained["sample"] / p).read_bytes() for p in raw["image"]]
    request = raw.assign(image=images, cost_price=raw["cost_price"].astype(float),
                         list_price=raw["list_price"].astype(float))
    served = model.predict(request)
    assert isinstance(served, pd.DataFrame) and len(served) == 6
    assert {"p10", "p50", "p90", "curve", "analogs"} <= set(served.columns)
    typed = load_catalogue(trained["sample"] / "candidates.csv", require_target=False).frame.head(6)
    expected = [r["p50"] for r in champion.forecast(typed, settings, images=images)]
    np.testing.assert_allclose(served["p50"].to_numpy(dtype=float), expected, rtol=1e-9)
    # A picture read from a path gives the same answer as its bytes.
    np.testing.assert_allclose(_p50(champion, typed, settings), expected, rtol=1e-5)
    assert Path(typed["image_path"].iloc[0]).is_file()
