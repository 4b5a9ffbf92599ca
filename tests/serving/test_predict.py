"""A good SKU through the real service: the forecast band, the daily curve, the decision with its
reasons, the analogs, the model facts; and the same numbers as `trialcast score` for the same row."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

LABELS = {"GO", "REVIEW", "NO_GO"}


def post(url: str, picture: bytes, fields: dict, name: str = "sku.png") -> httpx.Response:
    return httpx.post(url + "/predict", files={"image": (name, picture, "image/png")}, data=fields, timeout=180)


def fields_of(row: pd.Series) -> dict[str, str]:
    keys = ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")
    return {k: str(row[k]) for k in keys}


@pytest.fixture(scope="module")
def candidate(server: dict) -> pd.Series:
    return pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False).iloc[0]


@pytest.fixture(scope="module")
def history(server: dict) -> pd.DataFrame:
    return pd.read_parquet(server["sample"] / "catalogue.parquet").set_index("sku_id")


@pytest.fixture(scope="module")
def answer(server: dict, candidate: pd.Series) -> dict:
    picture = (server["sample"] / candidate["image"]).read_bytes()
    response = post(server["url"], picture, fields_of(candidate))
    assert response.status_code == 200, response.text
    return response.json()


def test_forecast_band_and_curve(answer: dict) -> None:
    assert answer["ok"] is True
    f = answer["forecast"]
    assert 0 <= f["p10"] <= f["p50"] <= f["p90"]
    assert f["p50"] > 0
    assert f["unit"] == "units in the first 7 days"
    assert len(f["curve"]) == 7 and all(v >= 0 for v in f["curve"])
    # Each day is rounded to 0.01 and P50 to 0.1: the days add up to P50 within that rounding.
    assert sum(f["curve"]) == pytest.approx(f["p50"], abs=0.1)


def test_decision_with_reasons_and_break_even(answer: dict, candidate: pd.Series, server: dict) -> None:
    from features.decision import decide
    from serving.predictor import decision_rule

    d = answer["decision"]
    assert d["label"] in LABELS
    assert d["reasons"] and all(isinstance(r, str) and r.isupper() for r in d["reasons"])
    assert isinstance(d["message"], str) and len(d["message"]) > 20
    cost, price = float(candidate["cost_price"]), float(candidate["list_price"])
    settings = server["settings"]
    assert d["break_even_units"] == pytest.approx(settings.launch_cost / (price - cost))
    assert d["assumed_list_price"] is False and "ASSUMED_LIST_PRICE" not in d["reasons"]
    # The label is the decision rule applied to the served numbers (nothing else overrides it).
    f = answer["forecast"]
    again = decide(f["p10"], f["p50"], f["p90"], answer["analogs"][0]["similarity"], cost, price,
                   decision_rule(settings))
    assert (again.label, again.reasons) == (d["label"], d["reasons"])


def test_without_list_price_the_markup_is_assumed_and_said(server: dict, candidate: pd.Series) -> None:
    picture = (server["sample"] / candidate["image"]).read_bytes()
    fields = {k: v for k, v in fields_of(candidate).items() if k != "list_price"}
    response = post(server["url"], picture, fields)
    assert response.status_code == 200, response.text
    d = response.json()["decision"]
    settings = server["settings"]
    cost = float(candidate["cost_price"])
    assert d["assumed_list_price"] is True and "ASSUMED_LIST_PRICE" in d["reasons"]
    # The price assumed is cost x the category's usual markup in the history (features.schema).
    history = pd.read_parquet(server["sample"] / "catalogue.parquet")
    same = history[history["category"] == candidate["category"]]
    markup = float((same["list_price"] / same["cost_price"]).median())
    assumed = response.json()["assumed"]["list_price"]
    assert assumed == pytest.approx(cost * markup, abs=0.01)
    assert d["economics"]["list_price"] == assumed and d["economics"]["markup"] == pytest.approx(markup, abs=1e-3)
    assert d["break_even_units"] == pytest.approx(settings.launch_cost / (assumed - cost))


def test_five_analogs_from_the_past_with_similarity_and_sales(answer: dict, candidate: pd.Series,
                                                              history: pd.DataFrame, server: dict) -> None:
    analogs = answer["analogs"]
    assert len(analogs) == 5
    sims = [a["similarity"] for a in analogs]
    assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    launch = pd.Timestamp(candidate["launch_date"])
    gap = pd.Timedelta(days=server["settings"].analog_gap_days)
    for a in analogs:
        past = history.loc[a["sku_id"]]  # a real past SKU, with its real sales
        assert a["sales"] == pytest.approx(float(past["sales_7d"]))
        assert a["title"] == past["title"] and a["category"] == past["category"]
        assert pd.Timestamp(a["launch_date"]) <= launch - gap  # its sales were known at launch


def test_model_version_and_gate_metric(answer: dict, server: dict) -> None:
    facts = httpx.get(server["url"] + "/model", timeout=30).json()
    model = answer["model"]
    assert model["version"] == str(server["summary"]["version"]) == facts["version"]
    assert model["gate_metric"] == server["settings"].gate_metric == facts["gate_metric"]
    assert model["gate_value"] == pytest.approx(facts["gate_value"])
    assert facts["gate_value"] < facts["gate_threshold"]


def test_served_forecast_equals_trialcast_score(server: dict, scored: dict) -> None:
    """The service and the batch command take the same feature path: same row, same answer."""
    frame = scored["frame"].set_index("sku_id")
    for _, row in scored["good"].head(3).iterrows():
        picture = (server["sample"] / row["image"]).read_bytes()
        response = post(server["url"], picture, fields_of(row))
        assert response.status_code == 200, response.text
        served, batch = response.json(), frame.loc[row["sku_id"]]
        for q in ("p10", "p50", "p90"):
            # Rounded to 0.1 on both sides; encoders may differ in the last float bit between a
            # batch of 4 and a single picture, so allow one rounding step, no more.
            assert served["forecast"][q] == pytest.approx(float(batch[q]), abs=0.1 + 1e-9), (row["sku_id"], q)
        assert served["decision"]["label"] == batch["decision"]
        assert ",".join(a["sku_id"] for a in served["analogs"]) == batch["similar_skus"]
        assert served["analogs"][0]["similarity"] == pytest.approx(float(batch["top_similarity"]), abs=1e-4)
