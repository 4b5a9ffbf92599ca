"""A model its gate refused still serves, honestly.

It is registered ``advisory``, never champion; the real service starts ready on it and answers
every SKU REVIEW with MODEL_ABOVE_GATE (which gate, measured value against threshold, in English
and Chinese), still with the band, the lean, the analogs and the economics; ``/model``, the page
and ``trialcast status`` say so, and what would help. A model that passes afterwards becomes
champion, and the restarted service serves it without the reason. The gate's level and stage are
settings stored with each version: the refused model was gated at the plan level after a 3-day
trial, the passing one per SKU after a 1-day trial.

One catalogue of 120 drawn SKUs, trained twice into one home: first with a threshold no model can
meet (0.1%), then with a lenient one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from features.config import Settings
from features.decision import (
    MODEL_ABOVE_GATE,
    DecisionRule,
    Evidence,
    above_gate,
    decide,
    gate_failures,
)
from features.messages import gate_sentence

CJK = re.compile(r"[\u4e00-\u9fff]")
TRIALCAST = str(Path(sys.executable).with_name("trialcast"))
REFUSED_GATE = {"gate_threshold": 0.001, "gate_level": "plan", "gate_stage": "trial_3d"}
PASSING_GATE = {"gate_threshold": 0.9, "gate_max_abs_bias": 0.5, "gate_min_go_precision": 0.0,
                "gate_min_go_recall": 0.0, "gate_level": "sku", "gate_stage": "trial_1d"}
# A full SKU, a bare one (title and cost only) and one unlike the history.
SKUS = [
    ({"title": "纯棉白色T恤 新款", "description": "夏季短袖 纯棉", "cost_price": "12", "list_price": "30",
      "category": "tshirt", "launch_date": "2024-09-05"}, ("circle", "red")),
    ({"title": "陶瓷马克杯", "cost_price": "15"}, ("square", "blue")),
    ({"title": "火箭发射器 rocket launcher", "cost_price": "40"}, ("stripes", "purple")),
]


# ---------------------------------------------------------------- the rule, unit
def _gate(**change) -> dict:
    return {"metric": "wape", "level": "plan", "stage": "trial_3d", "value": 0.31, "threshold": 0.15, "bias": 0.02,
            "max_abs_bias": 0.10, "passed": False, "go_precision": 0.40, "min_go_precision": 0.48,
            "go_recall": 0.9, "min_go_recall": 0.5, "base_rate": 0.35, **change}


def test_gate_failures_name_each_failed_check_with_its_numbers() -> None:
    failures = gate_failures(_gate())
    assert [f["code"] for f in failures] == ["error", "go_precision"]
    assert failures[0]["params"] == {"metric": "WAPE", "level": "plan", "stage": "trial_3d", "value": "31.0%",
                                     "threshold": "15.0%"}
    assert failures[1]["params"] == {"value": "40%", "threshold": "48%", "base": "35%"}
    assert [f["code"] for f in gate_failures(_gate(value=0.1, bias=-0.3))] == ["bias", "go_precision"]
    assert gate_failures(_gate(value=0.1, go_precision=0.6)) == []


def test_the_gate_sentence_is_said_in_both_languages() -> None:
    failures = gate_failures(_gate())
    english, chinese = gate_sentence(failures, "en"), gate_sentence(failures, "zh")
    for said in (english, chinese):
        assert "31.0%" in said and "15.0%" in said and "40%" in said and "35%" in said and "{" not in said
    assert "per category × launch month" in english and "after a 3-day trial" in english
    assert CJK.search(chinese) and "品类×上新月合计" in chinese and "试销 3 天后" in chinese


@pytest.mark.parametrize("p50, label", [(900.0, "GO"), (50.0, "NO_GO")])
def test_an_advisory_answer_is_review_with_the_lean_and_keeps_the_rule_s_numbers(p50: float, label: str) -> None:
    rule = DecisionRule(launch_cost=2000.0)
    decision = decide(0.9 * p50, p50, 1.1 * p50, 0.95, 10.0, 30.0, rule)
    assert decision.label == label
    advised = above_gate(decision, _gate(), p50, 1.1 * p50)
    assert advised.label == "REVIEW" and advised.reasons[0] == MODEL_ABOVE_GATE
    assert ("LEANS_GO" if label == "GO" else "LEANS_NO_GO") in advised.reasons
    assert advised.break_even_units == decision.break_even_units and advised.economics == decision.economics
    assert advised.extra["label_before_gate"] == label
    assert advised.extra["gate"]["failures"] == gate_failures(_gate())
    assert "31.0%" in advised.message and decision.message in advised.message


def test_an_advisory_answer_keeps_a_review_s_own_lean_or_its_reason_for_none() -> None:
    rule = DecisionRule(launch_cost=2000.0)
    junk = Evidence(0.95, picture=0.1, picture_floor=0.5)  # a picture unlike any product leans no way
    review = decide(900.0, 1000.0, 1100.0, 0.95, 10.0, 30.0, rule, evidence=junk)
    assert review.label == "REVIEW" and "LEANS_GO" not in review.reasons
    advised = above_gate(review, _gate(), 1000.0, 1100.0)
    assert advised.reasons == [MODEL_ABOVE_GATE, *review.reasons]


# ---------------------------------------------------------------- trained twice, served twice
def _settings(home: Path, **gate) -> Settings:
    cache = os.environ.get("TRIALCAST_TEST_CACHE")
    return Settings(home=home, cache_file=Path(cache) if cache else None, launch_cost=300.0, **gate)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(home)
    if os.environ.get("TRIALCAST_TEST_CACHE"):
        env["TRIALCAST_CACHE_FILE"] = os.environ["TRIALCAST_TEST_CACHE"]
    return env


def _status(home: Path, *flags: str) -> str:
    done = subprocess.run([TRIALCAST, "status", *flags], env=_env(home), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ask(url: str, kit) -> dict:
    """Every SKU in English and Chinese, a JSON batch, the model facts, readiness and the page."""
    answers: dict[str, list[dict]] = {"en": [], "zh": []}
    for lang, said in answers.items():
        for fields, (shape, colour) in SKUS:
            picture = kit.picture_bytes(kit.draw_picture(shape, colour))
            response = httpx.post(url + "/predict", files={"image": ("p.png", picture, "image/png")}, data=fields,
                                  headers={"Accept-Language": lang}, timeout=120)
            assert response.status_code == 200, response.text
            said.append(response.json())

    items = [{"sku_id": f"B{i}", **fields, "image_base64": base64.b64encode(
        kit.picture_bytes(kit.draw_picture(shape, colour))).decode()} for i, (fields, (shape, colour)) in enumerate(SKUS)]
    batch = httpx.post(url + "/predict_batch", json={"items": items}, timeout=120)
    assert batch.status_code == 200, batch.text
    return {"answers": answers, "batch": batch.json(), "model": httpx.get(url + "/model", timeout=30).json(),
            "ready": httpx.get(url + "/readyz", timeout=30).status_code,
            "page": httpx.get(url + "/", timeout=30).text, "script": httpx.get(url + "/static/app.js", timeout=30).text}


@pytest.fixture(scope="module")
def advisory_home(tmp_path_factory, kit) -> dict:
    """The catalogue trained once with a threshold no model meets: refused, registered advisory."""
    from training.jobs import run_train

    folder = tmp_path_factory.mktemp("advisory")
    catalogue = kit.write_catalogue(folder / "catalogue", kit.catalogue_rows(120, every_days=2, seed=3))
    home = folder / "home"
    lines: list[str] = []
    summary = run_train(catalogue, _settings(home, **REFUSED_GATE), progress=False, echo=lines.append)
    return {"folder": folder, "catalogue": catalogue, "home": home, "summary": summary, "lines": lines,
            "status": _status(home), "status_json": json.loads(_status(home, "--json"))}


@pytest.fixture(scope="module")
def advisory_answers(advisory_home: dict, start_server, kit) -> dict:
    """The real service on the home with only the advisory model: what it answers."""
    with start_server.serving(_env(advisory_home["home"]), advisory_home["folder"]) as running:
        return _ask(running["url"], kit)


@pytest.fixture(scope="module")
def champion_answers(advisory_home: dict, advisory_answers: dict, start_server, kit) -> dict:
    """Then a model that passes its (lenient) gate, trained into the same home, and the restarted service."""
    from training.jobs import run_train

    home = advisory_home["home"]
    summary = run_train(advisory_home["catalogue"], _settings(home, **PASSING_GATE), progress=False,
                        echo=lambda *_: None)
    with start_server.serving(_env(home), advisory_home["folder"]) as running:
        asked = _ask(running["url"], kit)
    return {**asked, "summary": summary, "status_json": json.loads(_status(home, "--json"))}


def test_a_refused_model_is_registered_advisory_never_champion(advisory_home: dict) -> None:
    from training.registry import connect

    summary = advisory_home["summary"]
    assert not summary["gate"]["passed"] and summary["alias"] == "advisory"
    assert (summary["gate"]["level"], summary["gate"]["stage"]) == ("plan", "trial_3d")
    assert summary["gate"]["value"] == pytest.approx(summary["holdout"]["wape_plan_trial_3d"])
    settings = _settings(advisory_home["home"])
    client = connect(settings)
    assert str(client.get_model_version_by_alias(settings.model_name, "advisory").version) == summary["version"]
    state = advisory_home["status_json"]
    assert state["champion"] is None and state["advisory"]["version"] == summary["version"]
    assert (state["advisory"]["gate"]["level"], state["advisory"]["gate"]["stage"]) == ("plan", "trial_3d")


def test_after_a_refusal_train_and_status_say_what_was_measured_and_what_would_help(advisory_home: dict) -> None:
    for said in ("\n".join(advisory_home["lines"]), advisory_home["status"]):
        assert "refused by the gate at the plan level, trial_3d" in said
        assert re.search(r"trial_3d +sku \d+\.\d%, plan \d+\.\d%, category \d+\.\d%", said), said
        assert "what would help" in said and "more history" in said and "advisory" in said
        assert "train one" not in said and "trialcast train" not in said
    assert advisory_home["summary"]["advice"] == advisory_home["lines"][-len(advisory_home["summary"]["advice"]):]


def test_the_service_is_ready_on_the_advisory_model_and_every_answer_is_review(advisory_answers: dict) -> None:
    assert advisory_answers["ready"] == 200
    everything = [*advisory_answers["answers"]["en"], *advisory_answers["answers"]["zh"], *advisory_answers["batch"]]
    assert len(everything) == 3 * len(SKUS)
    for answer in everything:
        assert answer["ok"], answer
        decision = answer["decision"]
        assert decision["label"] == "REVIEW" and decision["reasons"][0] == MODEL_ABOVE_GATE, decision
        assert {"LEANS_GO", "LEANS_NO_GO"} & set(decision["reasons"])
        band = answer["forecast"]
        assert 0 <= band["p10"] <= band["p50"] <= band["p90"]
        assert answer["analogs"] and decision["economics"]["break_even_units"] > 0 and answer["quantity"]
        failure = decision["extra"]["gate"]["failures"][0]
        assert failure["code"] == "error" and failure["params"]["threshold"] == "0.1%"
        assert (failure["params"]["level"], failure["params"]["stage"]) == ("plan", "trial_3d")
        assert answer["model"]["advisory"] is True


def test_advisory_answers_say_which_gate_and_by_how_much_in_both_languages(advisory_answers: dict) -> None:
    for lang, answers in advisory_answers["answers"].items():
        for answer in answers:
            value = answer["decision"]["extra"]["gate"]["failures"][0]["params"]["value"]
            for said in (answer["decision"]["message"], answer["display"]["gate"]):
                assert value in said and "0.1%" in said, said
            if lang == "zh":
                assert "未通过误差门槛" in answer["decision"]["message"] and "试销 3 天后" in answer["display"]["gate"]
                assert answer["display"]["reasons"][0] == "模型未通过误差门槛：需要人工决定，预测只是倾向"
            else:
                assert "refused by its error gate" in answer["decision"]["message"]
                assert "after a 3-day trial" in answer["display"]["gate"]


def test_model_facts_and_the_page_show_the_advisory_model(advisory_answers: dict, advisory_home: dict) -> None:
    facts = advisory_answers["model"]
    assert facts["ready"] is True and facts["advisory"] is True and facts["gate_passed"] is False
    assert facts["version"] == advisory_home["summary"]["version"]
    assert (facts["gate_level"], facts["gate_stage"]) == ("plan", "trial_3d")
    assert facts["gate_failures"][0]["code"] == "error" and facts["gate_reasons"]
    # The page's banner is filled from these facts (serving/web/app.js: renderFacts, gateText).
    assert 'id="model-banner"' in advisory_answers["page"]
    assert "facts.advisory" in advisory_answers["script"] and "modelFacts.gate_failures" in advisory_answers["script"]


def test_a_model_that_passes_afterwards_is_champion_and_serves_without_the_reason(champion_answers: dict,
                                                                                  advisory_home: dict) -> None:
    summary = champion_answers["summary"]
    assert summary["gate"]["passed"] and summary["alias"] == "champion", summary["reason"]
    assert int(summary["version"]) == int(advisory_home["summary"]["version"]) + 1
    assert champion_answers["ready"] == 200
    facts = champion_answers["model"]
    assert facts["version"] == summary["version"] and facts["advisory"] is False and facts["gate_failures"] == []
    for answer in [*champion_answers["answers"]["en"], *champion_answers["answers"]["zh"], *champion_answers["batch"]]:
        assert answer["ok"] and MODEL_ABOVE_GATE not in answer["decision"]["reasons"], answer["decision"]
        assert answer["model"]["advisory"] is False and not answer.get("display", {}).get("gate")


def test_the_gate_setting_decides_which_error_is_gated_and_is_stored_and_shown(champion_answers: dict,
                                                                                advisory_home: dict) -> None:
    gate, holdout = champion_answers["summary"]["gate"], champion_answers["summary"]["holdout"]
    assert (gate["level"], gate["stage"]) == ("sku", "trial_1d")
    assert gate["value"] == pytest.approx(holdout["wape_sku_trial_1d"])
    assert gate["bias"] == pytest.approx(holdout["bias_trial_1d"])
    state = champion_answers["status_json"]
    assert (state["champion"]["gate"]["level"], state["champion"]["gate"]["stage"]) == ("sku", "trial_1d")
    assert state["advisory"]["version"] == advisory_home["summary"]["version"]  # still there, no longer served
    facts = champion_answers["model"]
    assert (facts["gate_level"], facts["gate_stage"]) == ("sku", "trial_1d")
    from training.registry import connect

    settings = _settings(advisory_home["home"])
    mv = connect(settings).get_model_version(settings.model_name, champion_answers["summary"]["version"])
    assert (mv.tags["gate.level"], mv.tags["gate.stage"]) == ("sku", "trial_1d")
