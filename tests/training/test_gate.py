"""The error gate: unit tests of ``check_gate``, the sample champion's acceptance numbers, a
deliberately weak model refused without moving the champion, and ``trialcast status --json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from features.config import Settings
from training.gate import GateDecision, check_gate, gated_key
from training.jobs import config_hash

TRIALCAST = str(Path(sys.executable).with_name("trialcast"))


def metrics(wape: float = 0.10, bias: float = 0.0, **more: float) -> dict[str, float]:
    return {"wape": wape, "bias": bias, "mae": 12.0, **more}


# ---------------------------------------------------------------- check_gate, unit
def test_gate_passes_when_error_and_bias_are_inside() -> None:
    gate = check_gate(metrics(0.12, -0.03), "wape", 0.15, 0.10)
    assert gate.passed
    assert gate.reasons == ()
    assert (gate.metric, gate.value, gate.threshold, gate.bias, gate.max_abs_bias) == ("wape", 0.12, 0.15, -0.03, 0.10)
    assert gate.as_tags()["gate.passed"] == "true"
    assert gate.as_tags()["gate.reasons"] == "passed"


@pytest.mark.parametrize("wape", [0.15, 0.1500001, 0.4, float("inf")])
def test_gate_refuses_error_at_or_over_the_threshold(wape: float) -> None:
    gate = check_gate(metrics(wape, 0.0), "wape", 0.15, 0.10)
    assert not gate.passed
    assert len(gate.reasons) == 1 and "wape" in gate.reasons[0] and "15.0%" in gate.reasons[0]


def test_gate_refuses_nan_error_or_bias() -> None:
    """A NaN number (e.g. from an empty holdout) must never pass, on either side of the gate."""
    assert not check_gate(metrics(float("nan"), 0.0), "wape", 0.15, 0.10).passed
    assert not check_gate(metrics(0.05, float("nan")), "wape", 0.15, 0.10).passed


@pytest.mark.parametrize("bias", [-0.25, -0.1001, 0.1001, 0.3])
def test_gate_is_two_sided_on_bias(bias: float) -> None:
    """A low WAPE does not excuse a total that is far off, in either direction."""
    gate = check_gate(metrics(0.05, bias), "wape", 0.15, 0.10)
    assert not gate.passed
    assert len(gate.reasons) == 1 and "bias" in gate.reasons[0]
    assert gate.as_tags()["gate.passed"] == "false"
    assert "bias" in gate.as_tags()["gate.reasons"]


@pytest.mark.parametrize("bias", [-0.10, 0.0, 0.10])
def test_gate_bias_bound_is_inclusive(bias: float) -> None:
    assert check_gate(metrics(0.14, bias), "wape", 0.15, 0.10).passed


def test_gate_reports_every_reason() -> None:
    gate = check_gate(metrics(0.30, -0.40), "wape", 0.15, 0.10)
    assert not gate.passed
    assert len(gate.reasons) == 2
    assert "; " in gate.as_tags()["gate.reasons"]


def test_gate_thresholds_and_metric_are_configurable() -> None:
    m = metrics(0.20, 0.15)
    assert not check_gate(m, "wape", 0.15, 0.10).passed
    assert check_gate(m, "wape", 0.25, 0.20).passed
    assert not check_gate(m, "wape", 0.25, 0.10).passed
    # Another metric name from the holdout metrics.
    assert check_gate(m, "mae", 20.0, 0.20).passed
    assert not check_gate(m, "mae", 10.0, 0.20).passed


def test_gate_unknown_metric_is_an_error() -> None:
    with pytest.raises(KeyError, match="screening"):
        check_gate(metrics(), "screening", 0.5, 0.1)


def test_gate_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRIALCAST_GATE_* configure the gate, and a changed gate is a changed training config (a
    retrain after changing the gate is not a no-op)."""
    default = Settings()
    assert (default.gate_metric, default.gate_threshold, default.gate_max_abs_bias) == ("wape", 0.15, 0.10)
    monkeypatch.setenv("TRIALCAST_GATE_THRESHOLD", "0.2")
    monkeypatch.setenv("TRIALCAST_GATE_MAX_ABS_BIAS", "0.05")
    changed = Settings()
    assert (changed.gate_threshold, changed.gate_max_abs_bias) == (0.2, 0.05)
    assert config_hash(changed) != config_hash(default)
    assert config_hash(Settings()) == config_hash(changed)  # deterministic


def test_gate_decision_round_trips_as_dict() -> None:
    gate = check_gate(metrics(0.2, 0.0), "wape", 0.15, 0.10)
    assert GateDecision(**{**gate.as_dict(), "reasons": tuple(gate.as_dict()["reasons"])}) == gate


# ---------------------------------------------------------------- the sample champion (acceptance)
def test_sample_champion_passes_the_gate(trained: dict) -> None:
    summary = trained["summary"]
    gate = summary["gate"]
    assert summary["alias"] == "champion", summary["reason"]
    assert gate["passed"], gate["reasons"]
    assert gate["metric"] == "wape"
    assert gate["value"] < 0.15
    assert abs(gate["bias"]) <= 0.10
    # Read where the settings say: by default the plan level (category x launch month) after a 3-day trial.
    assert (gate["level"], gate["stage"]) == ("plan", "trial_3d")
    assert summary["holdout"][gated_key("wape", gate["level"], gate["stage"])] == pytest.approx(gate["value"])
    assert summary["holdout"]["wape"] < 0.15  # and per SKU before launch too, on this sample
    # The P10-P90 band is calibrated on held-out launches: roughly 80% coverage on the holdout.
    assert 0.65 <= summary["holdout"]["coverage_p10_p90"] <= 0.95


def test_sample_champion_beats_both_baselines_by_a_clear_margin(trained: dict) -> None:
    summary = trained["summary"]
    model = summary["holdout"]["wape"]
    for name in ("category_mean", "analog_knn"):
        baseline = summary["baselines"][name]["wape"]
        assert model <= baseline - 0.10, f"{name}: model WAPE {model:.3f} vs baseline {baseline:.3f}"
    # And it ranks launches better than the category mean (screening precision, 25% is random).
    assert summary["holdout"]["screening_precision"] > summary["baselines"]["category_mean"]["screening_precision"]


def test_sample_champion_is_recorded_in_the_registry(trained: dict) -> None:
    from training.registry import connect

    settings = trained["settings"]
    client = connect(settings)
    mv = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(mv.version) == str(trained["summary"]["version"])
    assert mv.tags["gate.passed"] == "true"
    assert mv.tags["decision"].startswith("champion")
    assert mv.tags["data_fingerprint"] == trained["summary"]["fingerprint"]
    run = client.get_run(mv.run_id)
    assert run.data.metrics["holdout_wape"] == pytest.approx(trained["summary"]["holdout"]["wape"])
    assert run.data.tags["data_fingerprint"] == trained["summary"]["fingerprint"]
    assert run.data.tags["code_version"]
    artifacts = {a.path for a in client.list_artifacts(mv.run_id)}
    assert {"evaluation.json", "plots"} <= artifacts


# ---------------------------------------------------------------- a deliberately weak model
@pytest.fixture(scope="module")
def weak(trained: dict, small_sample: Path) -> dict:
    """A model trained on shuffled targets, on the trained home: it must not become champion (it
    is registered advisory, which serves only while there is no champion).
    Trained on the 1,000-SKU third of the sample: shuffled targets fail the gate at any size."""
    from training.jobs import run_train
    from training.registry import champion, connect

    settings = trained["settings"]
    client = connect(settings)
    before = champion(client, settings)
    versions_before = {str(mv.version) for mv in client.search_model_versions(f"name = '{settings.model_name}'")}
    summary = run_train(small_sample / "catalogue.parquet", settings, shuffle_target=True, progress=False,
                        echo=lambda *_: None)
    return {"summary": summary, "champion_before": str(before.version), "versions_before": versions_before}


def test_weak_model_is_refused_by_the_gate(weak: dict) -> None:
    summary = weak["summary"]
    assert not summary["noop"]
    assert not summary["gate"]["passed"]
    assert summary["gate"]["value"] >= 0.15  # at the plan level after a 3-day trial (the default)
    assert summary["holdout"]["wape"] >= 0.15  # and per SKU before launch
    assert summary["alias"] == "advisory"
    assert summary["reason"].startswith("refused by the gate")
    # The decision gate refuses it too: it finds (almost) none of the launches that paid back.
    assert summary["holdout"]["go_recall"] < 0.5
    assert any("GO recall" in r for r in summary["gate"]["reasons"])


def test_weak_model_is_registered_as_advisory_with_the_reason(trained: dict, weak: dict) -> None:
    from training.registry import connect

    settings = trained["settings"]
    client = connect(settings)
    version = str(weak["summary"]["version"])
    assert version not in weak["versions_before"]
    mv = client.get_model_version(settings.model_name, version)
    assert mv.tags["gate.passed"] == "false"
    assert "wape_plan_trial_3d" in mv.tags["gate.reasons"] and "GO recall" in mv.tags["gate.reasons"]
    assert mv.tags["decision"].startswith("advisory: refused by the gate")
    assert str(client.get_model_version_by_alias(settings.model_name, "advisory").version) == version


def test_weak_model_does_not_move_the_champion(trained: dict, weak: dict) -> None:
    from training.jobs import load_model

    settings = trained["settings"]
    model, version = load_model(settings)
    assert str(version.version) == weak["champion_before"] == str(trained["summary"]["version"])
    assert model.meta["gate"]["passed"]


def test_status_json_reports_champion_gate_and_baselines(trained: dict, weak: dict) -> None:
    env = {**os.environ, "TRIALCAST_HOME": str(trained["home"])}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([TRIALCAST, "status", "--json"], env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    summary = trained["summary"]
    champ = state["champion"]
    assert str(champ["version"]) == str(summary["version"])
    assert champ["gate"]["metric"] == "wape"
    assert champ["gate"]["value"] == pytest.approx(summary["gate"]["value"], abs=1e-4)
    assert champ["gate"]["threshold"] == pytest.approx(0.15)
    assert champ["gate"]["max_abs_bias"] == pytest.approx(0.10)
    assert champ["gate"]["passed"] is True
    assert champ["holdout"]["wape"] == pytest.approx(summary["holdout"]["wape"])
    assert {"wape", "bias", "mae", "coverage_p10_p90", "screening_precision"} <= set(champ["holdout"])
    for name in ("category_mean", "analog_knn"):
        assert champ["baselines"][name]["wape"] == pytest.approx(summary["baselines"][name]["wape"])
    assert champ["trained_on"] == 3000
    assert champ["data_fingerprint"] == summary["fingerprint"]
    # The refused model is there too, as advisory, with its reason.
    advisory = state["advisory"]
    assert str(advisory["version"]) == str(weak["summary"]["version"])
    assert advisory["gate"]["passed"] is False
    assert "wape" in advisory["gate"]["reasons"] and "GO recall" in advisory["gate"]["reasons"]


def test_promote_refuses_a_refused_version_unless_forced(trained: dict, weak: dict) -> None:
    """`trialcast promote` will not make a gate-refused version champion without --force; forced,
    it does, and promoting the previous version rolls back. (Restores the champion whatever happens.)"""
    from typer.testing import CliRunner

    from training.jobs import promote
    from training.registry import connect
    from trialcast.cli import app

    settings = trained["settings"]
    original = weak["champion_before"]
    refused = str(weak["summary"]["version"])
    env = {"TRIALCAST_HOME": str(trained["home"]), "MLFLOW_TRACKING_URI": None}
    runner = CliRunner()

    def champion_version() -> str:
        return str(connect(settings).get_model_version_by_alias(settings.model_name, "champion").version)

    try:
        result = runner.invoke(app, ["promote", refused], env=env)
        assert result.exit_code != 0
        assert "did not pass the gate" in result.output + str(result.exception)
        assert champion_version() == original

        result = runner.invoke(app, ["promote", refused, "--force"], env=env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout[result.stdout.index("{"):]) == {"champion": refused, "previous": original}
        assert champion_version() == refused
        mv = connect(settings).get_model_version(settings.model_name, refused)
        assert mv.tags["decision"] == "champion: promoted by hand (forced past the gate)"

        result = runner.invoke(app, ["promote", original], env=env)  # rollback
        assert result.exit_code == 0, result.output
        assert champion_version() == original
    finally:
        if champion_version() != original:
            promote(settings, original)


def test_the_gate_requires_go_launches_that_pay_back_when_asked() -> None:
    good = {**metrics(0.10, 0.0), "go_precision": 0.6}
    assert check_gate(good, "wape", 0.15, 0.10, min_go_precision=0.48).passed
    weak = check_gate({**good, "go_precision": 0.3}, "wape", 0.15, 0.10, min_go_precision=0.48)
    assert not weak.passed and weak.reasons == ("GO precision 30% is under 48%",)
    never = check_gate({**good, "go_precision": float("nan")}, "wape", 0.15, 0.10, min_go_precision=0.48)
    assert not never.passed and "no GO at all" in never.reasons[0]
    assert weak.as_tags()["gate.go_precision"] == "0.3000"
    # screening precision is logged beside WAPE (not gated): NaN when the holdout did not measure it
    assert weak.as_tags()["gate.screening_precision"] == "nan"
    ranked = check_gate({**good, "screening_precision": 0.4}, "wape", 0.15, 0.10)
    assert ranked.passed and ranked.as_tags()["gate.screening_precision"] == "0.4000"
    assert ranked.screening_precision == 0.4
    assert check_gate({**good, "go_precision": 0.3}, "wape", 0.15, 0.10).passed  # not asked
    rare = check_gate({**good, "go_recall": 0.07}, "wape", 0.15, 0.10, min_go_precision=0.48, min_go_recall=0.5)
    assert not rare.passed and rare.reasons == ("GO recall 7% is under 50%: GO is given too rarely to count",)
