"""The like-item blend (features.forecast.like_items_shift): the forecast leans on the analogs' mean
sales by a weight the calibration fold chooses, the band moves with P50, the weight is saved with
the model (absent in older models: 0), and the "why" books the lean to the analogs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.analogs import LIKE_ITEMS
from features.assemble import BASE_MARGIN
from features.forecast import QuantileBoosters, lean, like_items_shift
from training.forecaster import ANALOG_WEIGHTS, Forecaster


def test_the_shift_is_the_geometric_blend_and_zero_where_there_is_no_analog() -> None:
    point = np.array([10.0, 100.0, 50.0, 0.0])
    X = pd.DataFrame({LIKE_ITEMS: np.log1p([40.0, 25.0, np.nan, 9.0])})
    shift = like_items_shift(X, point, 0.5)
    blended = np.expm1(np.log1p(point) + shift)
    np.testing.assert_allclose(blended[[0, 1, 3]], np.expm1(0.5 * np.log1p(point) + 0.5 * X[LIKE_ITEMS])[[0, 1, 3]])
    assert blended[2] == 50.0  # no analog: the boosters' forecast stands
    assert (lean(point, np.zeros(4)) == point).all()  # no shift: the very same bits
    assert not like_items_shift(X, point, 0.0).any()
    assert not like_items_shift(X.drop(columns=LIKE_ITEMS), point, 0.5).any()


def test_calibration_leans_on_the_rule_only_where_the_rule_is_better() -> None:
    rng = np.random.default_rng(0)
    truth = np.exp(rng.normal(4, 1, 400))
    y = np.round(truth * np.exp(rng.normal(0, 0.1, 400)))
    noisy_point = truth * np.exp(rng.normal(0, 1.0, 400))  # boosters that rank badly
    sharp = pd.DataFrame({LIKE_ITEMS: np.log1p(truth)})
    noise = pd.DataFrame({LIKE_ITEMS: np.log1p(np.exp(rng.normal(4, 1, 400)))})
    weight, scale = Forecaster._lean(sharp, y, noisy_point)
    assert weight == max(ANALOG_WEIGHTS)
    blended = np.expm1(np.log1p(noisy_point) + like_items_shift(sharp, noisy_point, weight)) * scale
    assert blended.sum() == pytest.approx(y.sum())  # the scale makes the blended total unbiased
    assert Forecaster._lean(noise, y, truth)[0] == 0.0  # a useless rule gets no weight


@pytest.fixture(scope="module")
def fitted() -> tuple[Forecaster, pd.DataFrame]:
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"f0": rng.normal(size=700), LIKE_ITEMS: rng.normal(4, 1, 700)})
    X[BASE_MARGIN] = X[LIKE_ITEMS] + rng.normal(0, 0.5, 700)  # the read-out boosting starts from
    y = np.round(np.expm1(X[LIKE_ITEMS] + 0.3 * X["f0"] + rng.normal(0, 0.3, 700)).clip(0))
    model = Forecaster("log_l2", 1).calibrate(X[:500], y[:500], X[500:], y[500:])
    return model, X[500:]


def test_the_band_moves_with_p50(fitted) -> None:
    model, X = fitted
    leaning, plain = replace(model, analog_weight=0.5), replace(model, analog_weight=0.0)
    a, b = leaning.predict(X), plain.predict(X)
    shift = like_items_shift(X, leaning._raw(X)["point"], 0.5)
    for edge in ("p10", "p90"):  # where neither band edge was clipped to P50 by the ordering
        free = ((a[edge] - a["p50"]) * (b[edge] - b["p50"]) > 0).to_numpy()
        assert free.mean() > 0.5
        np.testing.assert_allclose((np.log1p(a[edge]) - np.log1p(b[edge]))[free], shift[free], atol=1e-9)
    assert (a["p10"] <= a["p50"]).all() and (a["p50"] <= a["p90"]).all()


def test_the_weight_is_saved_and_older_models_read_as_no_lean(fitted, tmp_path) -> None:
    model, X = fitted
    leaning = replace(model, analog_weight=0.25)
    leaning.save(tmp_path / "new")
    loaded = QuantileBoosters.load(tmp_path / "new")
    assert loaded.analog_weight == 0.25
    pd.testing.assert_frame_equal(loaded.predict(X), leaning.predict(X))
    leaning.save(tmp_path / "old")
    stored = json.loads((tmp_path / "old" / "forecaster.json").read_text())
    del stored["analog_weight"]  # as written before the blend existed
    (tmp_path / "old" / "forecaster.json").write_text(json.dumps(stored))
    old = QuantileBoosters.load(tmp_path / "old")
    assert old.analog_weight == 0.0
    pd.testing.assert_frame_equal(old.predict(X), replace(model, analog_weight=0.0).predict(X))


def test_the_why_books_the_lean_to_the_analogs(trained: dict) -> None:
    from features.catalogue import load_catalogue
    from features.model import load_registered

    model, _ = load_registered(trained["settings"])
    frame = load_catalogue(trained["sample"] / "catalogue.parquet").frame.tail(6).reset_index(drop=True)
    leaning = replace(model, forecaster=replace(model.forecaster, analog_weight=0.5))
    plain = replace(model, forecaster=replace(model.forecaster, analog_weight=0.0))
    a, b = (m.forecast(frame, trained["settings"]) for m in (leaning, plain))
    for x, y in zip(a, b):
        fx, fy = ({f["group"]: f["factor"] for f in r["why"]["factors"]} for r in (x, y))
        assert x["why"]["start_units"] == y["why"]["start_units"]
        assert {g: v for g, v in fx.items() if g != "analogs"} == {g: v for g, v in fy.items() if g != "analogs"}
        # the analogs' factor carries the lean: exp(shift), the ratio of the two P50s before the scale
        scale = model.forecaster.scale
        assert fx.get("analogs", 1.0) / fy.get("analogs", 1.0) == pytest.approx(
            (1 + x["p50"] / scale) / (1 + y["p50"] / scale), rel=0.005)
        assert x["p50"] != y["p50"]
