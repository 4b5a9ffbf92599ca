"""The season plan through the real service (``POST /plan``) and the real command (``trialcast plan``)
on the sample champion: within budget, each pick with why and risk, the same plan from items and
from forecasts already answered, and field errors in both languages."""

from __future__ import annotations

import base64
import json
import subprocess

import httpx
import pandas as pd
import pytest

TIMEOUT = 300


@pytest.fixture(scope="module")
def candidates(server: dict) -> pd.DataFrame:
    return pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False).head(12)


def items_of(frame: pd.DataFrame, folder) -> list[dict]:
    keys = ("sku_id", "title", "description", "cost_price", "list_price", "category", "launch_date", "channel")
    return [{**{k: row[k] for k in keys}, "image_base64": base64.b64encode((folder / row["image"]).read_bytes()).decode()}
            for _, row in frame.iterrows()]


@pytest.fixture(scope="module")
def planned(server: dict, candidates: pd.DataFrame) -> dict:
    body = {"items": items_of(candidates, server["sample"]), "budget_launches": 4}
    response = httpx.post(server["url"] + "/plan", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_plan_keeps_to_the_budget_and_says_why_and_what_it_risks(planned: dict, candidates: pd.DataFrame) -> None:
    assert 1 <= len(planned["picks"]) <= 4 and planned["budget"]["launches"] == 4
    assert len(planned["picks"]) + len(planned["left_out"]) == len(candidates) and planned["refused"] == []
    for pick in planned["picks"]:
        assert pick["p90"] >= pick["break_even_units"] and pick["expected_margin"] > 0
        assert pick["why"] and pick["risk"]["text"] and pick["units"] > 0
    totals = planned["totals"]
    assert totals["all"]["launches"] == len(candidates) and totals["knn"]["launches"] <= 4
    assert totals["plan"]["expected_margin"] >= totals["knn"]["expected_margin"]
    assert totals["plan"]["capital"] == pytest.approx(sum(p["capital"] for p in planned["picks"]), abs=0.05)


def test_forecasts_already_answered_plan_the_same(server: dict, planned: dict, candidates: pd.DataFrame) -> None:
    ids = []
    for _, row in candidates.iterrows():
        fields = {k: row[k] for k in ("title", "description", "cost_price", "list_price", "category", "launch_date",
                                      "channel")}
        picture = (server["sample"] / row["image"]).read_bytes()
        answer = httpx.post(server["url"] + "/predict", files={"image": ("p.png", picture, "image/png")}, data=fields,
                            timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["forecast_id"])
    response = httpx.post(server["url"] + "/plan", json={"forecast_ids": ids, "budget_launches": 4}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    again = response.json()
    # /predict names every SKU "upload": the same choice, read by band and quantity.
    assert [(p["p50"], p["units"]) for p in again["picks"]] == [(p["p50"], p["units"]) for p in planned["picks"]]
    assert again["totals"]["plan"] == planned["totals"]["plan"]


@pytest.mark.parametrize(("lang", "words"), [("en", "must be positive"), ("zh", "必须大于 0")])
def test_a_wrong_budget_is_a_field_error_in_both_languages(server: dict, lang: str, words: str) -> None:
    response = httpx.post(server["url"] + "/plan", json={"forecast_ids": ["x"], "budget_launches": 0},
                          headers={"Accept-Language": lang}, timeout=TIMEOUT)
    assert response.status_code == 422
    assert "budget_launches" in json.dumps(response.json(), ensure_ascii=False)
    assert words in json.dumps(response.json(), ensure_ascii=False)
    missing = httpx.post(server["url"] + "/plan", json={"forecast_ids": ["nope"], "budget_launches": 2}, timeout=TIMEOUT)
    assert missing.status_code == 422 and "unknown forecast nope" in missing.text


def test_trialcast_plan_writes_a_plan_within_budget(cli, server: dict, candidates: pd.DataFrame, tmp_path) -> None:
    folder = tmp_path / "cands"
    (folder / "images").mkdir(parents=True)
    for name in candidates["image"]:
        (folder / name).write_bytes((server["sample"] / name).read_bytes())
    candidates.to_csv(folder / "candidates.csv", index=False)
    out = tmp_path / "plan.csv"
    done = subprocess.run(cli.command("plan", str(folder / "candidates.csv"), "--budget-launches", "3",
                                      "--budget-capital", "20000", "--out", str(out)),
                          env=cli.env, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = cli.summary_of(done.stdout)
    plan = pd.read_csv(out)
    chosen = plan[plan["chosen"]]
    assert len(plan) == len(candidates) and 1 <= len(chosen) <= 3
    assert chosen["capital"].sum() <= 20000 and summary["totals"]["plan"]["capital"] <= 20000
    assert chosen["sku_id"].tolist() == summary["chosen"]
    assert (chosen["p90"] >= chosen["break_even_units"]).all()
    refused = subprocess.run(cli.command("plan", str(folder / "candidates.csv"), "--out", str(out)), env=cli.env,
                             capture_output=True, text=True, timeout=600, check=False)
    assert refused.returncode == 2 and "budget_launches: is missing" in refused.stderr
