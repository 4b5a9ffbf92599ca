"""A catalogue's attribute columns (colour, fabric...) and its holes (no cost price, pictures for some
SKUs): found on load, turned into features and same-attribute analogs, and given one meaning in
training and serving alike. Vectors are drawn here (the feature path only reads them), so no encoder runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.analogs import same_value_sales
from features.assemble import ATTRIBUTE_AGREEMENT, FeaturePipeline
from features.catalogue import Catalogue, CatalogueSpec, load_catalogue, validate_frame
from features.config import Settings
from features.decision import DecisionRule, decide
from features.embed import Embeddings
from serving.predictor import InvalidSku, check_record

COLOURS = ("red", "blue", "black")


def _history(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, Embeddings]:
    """``n`` past SKUs, one every 3 days: red sells most, blue least; no cost price on every 4th SKU,
    a picture on every 3rd."""
    rng = np.random.default_rng(seed)
    colour = [COLOURS[i % 3] for i in range(n)]
    sales = np.array([{"red": 60.0, "blue": 10.0, "black": 30.0}[c] for c in colour]) * rng.uniform(0.8, 1.2, n)
    frame = pd.DataFrame({
        "sku_id": [f"S{i:03d}" for i in range(n)],
        "launch_date": pd.date_range("2024-01-01", periods=n, freq="3D"),
        "category": ["dress", "coat"] * (n // 2), "title": [f"{c} dress {i}" for i, c in enumerate(colour)],
        "description": [""] * n, "image": [None] * n, "image_path": [None] * n,
        "cost_price": [np.nan if i % 4 == 0 else 20.0 for i in range(n)],
        "list_price": [np.nan] * n, "channel": [""] * n,
        "sales_7d": sales, "colour": colour, "fabric": [("silk", "wool", None)[i % 3] for i in range(n)],
    })
    return frame, _vectors(n, rng, every=3)


def _vectors(n: int, rng: np.random.Generator, every: int) -> Embeddings:
    def unit(rows: int) -> np.ndarray:
        v = rng.normal(size=(rows, 8))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    picture = unit(n)
    picture[np.arange(n) % every != 0] = np.nan
    return Embeddings(picture, unit(n), "picture-test", "copy-test")


def _pipeline(frame: pd.DataFrame, embeddings: Embeddings) -> FeaturePipeline:
    spec = CatalogueSpec(attributes=("colour", "fabric"))
    settings = Settings(analog_k=5, picture_components=2, copy_components=2, projection_components=4)
    return FeaturePipeline.fit(Catalogue(frame, frame.attrs.get("root", "."), spec), embeddings, settings)


def test_extra_text_columns_are_attributes_unless_the_settings_name_them(tmp_path, kit) -> None:
    rows = kit.catalogue_rows(4)
    for i, row in enumerate(rows):
        row.update(colour=COLOURS[i % 3], season="SS24", weight_g=str(100 + i), cost_price="", image="")
    path = kit.write_catalogue(tmp_path, rows)
    loaded = load_catalogue(path)
    assert loaded.spec.attributes == ("colour", "season")  # weight_g holds numbers only: not an attribute
    assert loaded.frame["colour"].tolist() == ["red", "blue", "black", "red"]
    assert loaded.frame["cost_price"].isna().all() and loaded.frame["image_path"].isna().all()  # history holes
    named = load_catalogue(path, spec=CatalogueSpec(attributes=("colour",)))
    assert named.spec.attributes == ("colour",) and "season" not in named.frame.columns
    _, problems = validate_frame(pd.read_csv(path, dtype=str), tmp_path, spec=CatalogueSpec(attributes=("fabric",)))
    assert [(p.row, p.column, p.reason) for p in problems] == [(None, "fabric", "required column is missing")]


def test_same_attribute_analogs_see_only_earlier_launches() -> None:
    codes = np.array([0, 0, 1, 0])
    days = np.array([0, 10, 10, 30])
    log_sales = np.array([1.0, 3.0, 5.0, 7.0])
    mean, count = same_value_sales(codes, days, log_sales, np.array([0, 0, 1, -1]), np.array([17, 40, 9, 40]),
                                   gap_days=7, prior_weight=0.0)
    assert count[:3].tolist() == [2, 3, 0]  # day 17 sees days 0 and 10; day 9 sees nothing of code 1
    assert mean[:2].tolist() == [2.0, pytest.approx(11 / 3)]
    assert np.isnan(mean[3]) and np.isnan(count[3])  # no value: absent


def test_attributes_reach_the_features_and_unknown_values_are_absent(tmp_path) -> None:
    frame, embeddings = _history()
    pipeline = _pipeline(frame, embeddings)
    assert pipeline.attributes == {"colour": ["black", "blue", "red"], "fabric": ["silk", "wool"]}
    X = pipeline.transform(frame, embeddings)
    for name in ("attr0_colour", "attr0_colour_log_sales", "attr0_colour_n", "attr1_fabric", ATTRIBUTE_AGREEMENT):
        assert name in X.columns and name in pipeline.feature_names
    assert isinstance(X["attr0_colour"].dtype, pd.CategoricalDtype)
    last = X.iloc[-1]
    assert last["attr0_colour_log_sales"] > X.iloc[-2]["attr0_colour_log_sales"]  # black sells more than blue
    assert np.isnan(X["attr1_fabric_n"].iloc[2])  # SKU 2 has no fabric
    new = frame.tail(2).assign(colour=["purple", "red"], launch_date=pd.Timestamp("2024-12-01")).reset_index(drop=True)
    Y = pipeline.transform(new, Embeddings(embeddings.picture[-2:], embeddings.copy[-2:], "picture-test", "copy-test"))
    assert pd.isna(Y["attr0_colour"].iloc[0]) and np.isnan(Y["attr0_colour_log_sales"].iloc[0])  # unknown: absent
    assert Y["attr0_colour_n"].iloc[1] == 20  # every red of the history launched before it
    pipeline.save(tmp_path / "pipeline")
    again = FeaturePipeline.load(tmp_path / "pipeline")
    pd.testing.assert_frame_equal(again.transform(new, Embeddings(embeddings.picture[-2:], embeddings.copy[-2:],
                                                                  "picture-test", "copy-test")), Y)


def test_absent_cost_price_means_the_same_in_training_and_serving() -> None:
    frame, embeddings = _history()
    pipeline = _pipeline(frame, embeddings)
    assert pipeline.absent_share == {"cost_price": 0.25, "image": pytest.approx(40 / 60)}
    trained = pipeline.transform(frame, embeddings).iloc[[8]].reset_index(drop=True)  # SKU 8: no cost, no picture
    row = frame.iloc[8]
    record = {"sku_id": row["sku_id"], "title": row["title"], "category": row["category"],
              "launch_date": row["launch_date"].date().isoformat(), "colour": row["colour"], "fabric": row["fabric"]}
    settings = Settings()
    with pytest.raises(InvalidSku, match="cost_price: is missing"):  # a model that always had one needs one
        check_record(record, None, settings, ["dress", "coat"], image_required=False)
    clean, _ = check_record(record, None, settings, ["dress", "coat"], image_required=False, cost_required=False,
                            attributes=("colour", "fabric"))
    served_frame = pd.DataFrame([clean]).assign(image=None, image_path=None)
    vectors = Embeddings(embeddings.picture[[8]], embeddings.copy[[8]], "picture-test", "copy-test")
    served = pipeline.transform(served_frame, vectors)
    pd.testing.assert_frame_equal(served, trained)  # same day, same inputs: the same features, holes and all
    assert np.isnan(served["log_cost_price"].iloc[0]) and np.isnan(served["margin"].iloc[0])
    assert served["attr0_colour"].iloc[0] == row["colour"]
    decision = decide(10.0, 20.0, 30.0, 0.9, None, None, DecisionRule())
    assert (decision.label, decision.reasons[0]) == ("REVIEW", "COST_PRICE_NEEDED") and np.isnan(decision.break_even_units)
