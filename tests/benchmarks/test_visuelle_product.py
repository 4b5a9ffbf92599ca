"""VISUELLE through the product itself, as a retailer would bring it: converted by
``benchmarks.visuelle.convert`` (no prices, pictures for some products, colour / fabric / extra /
season as columns, 7-day units from the weekly sales), trained by ``trialcast train``, scored by
``trialcast score`` and answered by the real service's ``/predict`` with a product photo.

On a small VISUELLE-shaped folder (``build_visuelle``, pictures for a tenth) end to end; on the real
data set (../shared/benchmarks/visuelle) the conversion and the training, with the 7-day error on
test.csv reported.

A model trained on launches this noisy is refused by the 15% gate; the registry keeps it as the
advisory model, which the service and ``trialcast score`` load as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.benchmarks.test_visuelle_benchmark import REAL_DATA, build_visuelle
from training.gate import gated_key

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "trialcast.cli"]  # the checkout's code (the repository root is the cwd)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(home)
    if os.environ.get("TRIALCAST_TEST_CACHE"):
        env["TRIALCAST_CACHE_FILE"] = os.environ["TRIALCAST_TEST_CACHE"]
    return env


def _run(args: list[str], home: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=REPO, env=_env(home), capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args[2:4]} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _summary(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{\n"):])


def convert_and_train(data: Path, out: Path, home: Path) -> dict:
    """``benchmarks.visuelle.convert`` then ``trialcast train`` on its history; the train summary."""
    _run([sys.executable, "-m", "benchmarks.visuelle.convert", "--data", str(data), "--out", str(out)], home)
    return _summary(_run([*CLI, "train", str(out / "history.csv")], home).stdout)


def assert_registered_with_metrics(summary: dict, home: Path) -> None:
    """Training completed, its metrics are in MLflow, and the model is a registered version."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    client = MlflowClient(uri, uri)
    version = client.get_model_version("trialcast", summary["version"])
    metrics = client.get_run(version.run_id).data.metrics
    gate = summary["gate"]
    gated = metrics["holdout_" + gated_key(gate["metric"], gate["level"], gate["stage"])]
    assert np.isfinite(metrics["holdout_wape"]) and gated == pytest.approx(gate["value"])
    assert "baseline_analog_knn_wape" in metrics
    assert summary["alias"] in ("champion", "challenger", "advisory")


def servable(summary: dict, home: Path) -> None:
    """The service loads the trained version as it is: a model the gate refuses is the registry's
    advisory model, which serves (every answer REVIEW, MODEL_ABOVE_GATE); a passing one is champion."""
    from features.config import Settings
    from serving.champion import load_champion

    predictor, message = load_champion(Settings(home=home))
    assert predictor is not None, message
    assert predictor.version == str(summary["version"])
    assert summary["alias"] in ("champion", "advisory")


def score_wape(out: Path, home: Path) -> tuple[pd.DataFrame, float]:
    """``trialcast score`` on the candidates; the scores and their per-SKU 7-day WAPE (%)."""
    scores_path = out / "scores.csv"
    summary = _summary(_run([*CLI, "score", str(out / "candidates.csv"), "--out", str(scores_path)], home).stdout)
    scores = pd.read_csv(scores_path, dtype={"sku_id": str})
    assert summary["failed"] == 0, scores["error"].dropna().head().tolist()
    actual = pd.read_csv(out / "actuals.csv", dtype={"sku_id": str}).set_index("sku_id")["sales_7d"]
    y, f = actual.loc[scores["sku_id"]].to_numpy(), scores["p50"].to_numpy()
    return scores, float(100 * np.abs(y - f).sum() / y.sum())


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("visuelle-product")
    data = build_visuelle(root / "data")  # a picture for every other product: keep one in ten of the history
    index = pd.read_csv(data / "image_index.csv", dtype=str, keep_default_na=False)
    pictured = np.flatnonzero((index["local_image"] != "") & (index["split"] == "train"))
    index.loc[pictured[np.arange(len(pictured)) % 5 != 0], "local_image"] = ""
    index.to_csv(data / "image_index.csv", index=False)
    out, home = root / "catalogue", root / "home"
    return {"out": out, "home": home, "summary": convert_and_train(data, out, home)}


def test_a_visuelle_catalogue_trains_scores_and_answers_through_the_product(small: dict, tmp_path: Path,
                                                                            start_server) -> None:
    out, home, summary = small["out"], small["home"], small["summary"]
    history = pd.read_csv(out / "history.csv", dtype=str, keep_default_na=False)
    assert "cost_price" not in history.columns and "list_price" not in history.columns  # no prices at all
    assert 0 < (history["image"] != "").mean() < 1  # pictures for some products only
    assert_registered_with_metrics(summary, home)

    servable(summary, home)
    scores, error = score_wape(out, home)
    assert np.isfinite(error) and len(scores) == 12
    assert set(scores["decision"]) == {"REVIEW"} and scores["reasons"].str.contains("COST_PRICE_NEEDED").all()

    candidates = pd.read_csv(out / "candidates.csv", dtype=str, keep_default_na=False)
    shot = candidates[candidates["image"] != ""].iloc[0]
    photo = (out / shot["image"]).read_bytes()
    fields = {"title": shot["title"], "description": shot["description"], "category": shot["category"],
              "launch_date": shot["launch_date"]}

    def form(colour: str, picture: bool = True) -> dict:
        """multipart/form-data parts (a part without a file name is a plain field)."""
        parts = {k: (None, v) for k, v in fields.items()}
        parts["attributes"] = (None, json.dumps({"color": colour, "fabric": shot["fabric"]}))
        return {**parts, **({"image": ("photo.jpg", photo, "image/jpeg")} if picture else {})}

    env = {**_env(home), "TRIALCAST_THREADS": "1"}
    with start_server.serving(env, tmp_path) as server:
        model = httpx.get(server["url"] + "/model", timeout=30).json()
        with_photo = httpx.post(server["url"] + "/predict", files=form(shot["color"]), timeout=120)
        without_photo = httpx.post(server["url"] + "/predict", files=form("never-seen", picture=False), timeout=120)
        bad_colour = httpx.post(server["url"] + "/predict", files=form("x" * 300), timeout=120)
        typo = httpx.post(server["url"] + "/predict", files={**form("red"), "attributes": (None, '{"colur": "red"}')},
                          timeout=120)
    assert set(model.get("attributes", {})) == {"season", "color", "fabric", "extra"}
    for response in (with_photo, without_photo):
        assert response.status_code == 200, response.text[:500]
        answer = response.json()
        assert answer["ok"] and answer["forecast"]["p50"] >= 0
        assert answer["decision"]["label"] == "REVIEW" and "COST_PRICE_NEEDED" in answer["decision"]["reasons"]
    assert with_photo.json()["novelty"]["picture"] is not None  # the photo was read
    assert without_photo.json()["novelty"]["picture"] is None
    assert bad_colour.status_code == 422 and bad_colour.json()["detail"][0]["loc"] == ["color"]
    assert typo.status_code == 422 and "unknown attribute colur" in typo.json()["detail"][0]["msg"]


def _sku_photo_is_real(path: Path) -> bool:
    with Image.open(path) as image:
        return image.width > 32 and image.height > 32


@pytest.mark.skipif(not (REAL_DATA / "train.csv").is_file(), reason=f"VISUELLE not found at {REAL_DATA}")
def test_the_real_visuelle_trains_through_the_product_and_its_error_is_reported(tmp_path: Path,
                                                                                record_property) -> None:
    out, home = tmp_path / "catalogue", tmp_path / "home"
    summary = convert_and_train(REAL_DATA, out, home)
    assert len(pd.read_csv(out / "history.csv")) == 5080
    assert_registered_with_metrics(summary, home)
    servable(summary, home)
    scores, error = score_wape(out, home)
    assert len(scores) == 497 and np.isfinite(error)
    record_property("visuelle_test_wape_7d", round(error, 1))
    print(f"VISUELLE test.csv through the product: per-SKU 7-day WAPE {error:.1f}% "
          f"(holdout {100 * summary['gate']['value']:.1f}%)")
    pictured = pd.read_csv(out / "candidates.csv", dtype=str, keep_default_na=False)
    assert _sku_photo_is_real(out / pictured.loc[pictured["image"] != "", "image"].iloc[0])
