"""A registry that a kill cannot wedge (issue 14, item 4).

``trialcast retrain`` is killed with SIGKILL right after each registry stage (run created, metrics
logged, version registered, alias set): the process patches the MLflow call of that stage to kill
itself once the call returned, so the kill lands exactly there. After each kill, ``trialcast
status`` works and says what is left; the next ``retrain`` closes runs left RUNNING as FAILED,
decides a version that was registered but never decided (instead of the old no-op "already
trained as version 3 (None)" forever), and ``trialcast serve`` serves the champion.

One home goes through the stages in order (module fixtures; each test checks what a stage saw).
The catalogue is a third of the sample (1,000 SKUs: it still passes the gate, and trains in a
fraction of the time)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

# Runs the CLI with one MLflow call patched to SIGKILL the process right after it returned.
KILLER = """
import os, signal, sys
import mlflow
from mlflow import MlflowClient

stage = os.environ["TRIALCAST_TEST_KILL_AFTER"]
owner, name = {"run_created": (mlflow, "start_run"), "metrics_logged": (mlflow, "log_metrics"),
               "version_registered": (mlflow, "register_model"),
               "alias_set": (MlflowClient, "set_registered_model_alias")}[stage]
original = getattr(owner, name)

def killing(*args, **kwargs):
    result = original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, killing)
from trialcast.cli import main
sys.argv = ["trialcast", *sys.argv[1:]]
main()
"""
TRIALCAST = str(Path(sys.executable).with_name("trialcast"))


@pytest.fixture(scope="module")
def home(small_sample: Path, shared_embedding_cache: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("kill")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(root / "home")
    env["TRIALCAST_CACHE_FILE"] = str(shared_embedding_cache)  # the run's: the sample's vectors are there
    return {"root": root, "catalogue": small_sample / "catalogue.parquet", "env": env, "home": root / "home"}


def retrain(home: dict, kill_after: str | None = None, **settings: str) -> subprocess.CompletedProcess:
    env = {**home["env"], **{f"TRIALCAST_{k.upper()}": v for k, v in settings.items()}}
    if kill_after:
        env["TRIALCAST_TEST_KILL_AFTER"] = kill_after
        command = [sys.executable, "-c", KILLER, "retrain", str(home["catalogue"])]
    else:
        command = [TRIALCAST, "retrain", str(home["catalogue"])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500, check=False)
    if kill_after:
        assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    else:
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return done


def status(home: dict) -> dict:
    done = subprocess.run([TRIALCAST, "status", "--json"], env=home["env"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def registry(home: dict) -> dict:
    """Runs (status), versions (decision tag) and aliases, read straight from the store."""
    from mlflow import MlflowClient

    from features.config import Settings, tracking_uri

    settings = Settings(home=home["home"])
    client = MlflowClient(tracking_uri(settings), tracking_uri(settings))
    experiment = client.get_experiment_by_name(settings.experiment)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]) if experiment else []
    try:
        versions = client.search_model_versions(f"name = '{settings.model_name}'")
        aliases = client.get_registered_model(settings.model_name).aliases
    except Exception:  # noqa: BLE001 - no registered model yet
        versions, aliases = [], {}
    return {"runs": [r.info.status for r in runs],
            "versions": {str(v.version): v.tags.get("decision") for v in versions},
            "aliases": {a: str(v) for a, v in aliases.items()}}


@pytest.fixture(scope="module")
def after_run_created(home: dict) -> dict:
    retrain(home, "run_created")
    return {"registry": registry(home), "status": status(home)}


@pytest.fixture(scope="module")
def after_metrics_logged(home: dict, after_run_created: dict) -> dict:
    done = retrain(home, "metrics_logged")
    return {"registry": registry(home), "status": status(home), "stdout": done.stdout}


@pytest.fixture(scope="module")
def after_version_registered(home: dict, after_metrics_logged: dict) -> dict:
    retrain(home, "version_registered")
    return {"registry": registry(home), "status": status(home)}


@pytest.fixture(scope="module")
def recovered(home: dict, after_version_registered: dict) -> dict:
    done = retrain(home)
    return {"registry": registry(home), "status": status(home), "stdout": done.stdout}


@pytest.fixture(scope="module")
def after_alias_set(home: dict, recovered: dict) -> dict:
    retrain(home, "alias_set", mask_seed="12")  # another model configuration: a real new training
    return {"registry": registry(home), "status": status(home)}


@pytest.fixture(scope="module")
def finally_decided(home: dict, after_alias_set: dict) -> dict:
    done = retrain(home, mask_seed="12")
    return {"registry": registry(home), "status": status(home), "stdout": done.stdout}


def test_kill_at_run_creation_leaves_a_running_run_and_no_version(after_run_created: dict) -> None:
    assert after_run_created["registry"]["runs"] == ["RUNNING"]
    assert after_run_created["registry"]["versions"] == {}
    assert after_run_created["status"]["champion"] is None and after_run_created["status"]["undecided"] == []


def test_next_run_closes_the_killed_run_as_failed(after_metrics_logged: dict) -> None:
    # run 1 (killed at creation) closed by run 2, which was itself killed after logging metrics
    assert after_metrics_logged["registry"]["runs"] == ["FAILED", "RUNNING"]
    assert "closed run" in after_metrics_logged["stdout"]
    assert after_metrics_logged["registry"]["versions"] == {}
    assert after_metrics_logged["status"]["champion"] is None


def test_kill_after_registration_leaves_an_undecided_version_that_status_reports(after_version_registered: dict) -> None:
    reg = after_version_registered["registry"]
    assert reg["runs"] == ["FAILED", "FAILED", "FINISHED"]
    assert reg["versions"] == {"1": None} and reg["aliases"] == {}
    assert after_version_registered["status"]["undecided"] == ["1"]
    assert after_version_registered["status"]["champion"] is None


def test_next_retrain_decides_the_version_instead_of_skipping_it(recovered: dict) -> None:
    reg = recovered["registry"]
    assert reg["aliases"] == {"champion": "1"}, reg
    assert reg["versions"]["1"].startswith("champion: passed the gate")
    assert "decided by the next run" in reg["versions"]["1"]
    assert "no-op" in recovered["stdout"] and "(None)" not in recovered["stdout"]
    assert len(reg["runs"]) == 3  # decided without training again
    assert recovered["status"]["champion"]["version"] == "1" and recovered["status"]["undecided"] == []


def test_kill_after_the_alias_moved_is_finished_by_the_next_run(after_alias_set: dict, finally_decided: dict) -> None:
    reg = after_alias_set["registry"]
    assert reg["versions"]["2"] is None and "2" in reg["aliases"].values(), reg
    assert after_alias_set["status"]["undecided"] == ["2"]
    done = finally_decided["registry"]
    assert done["versions"]["2"] is not None and done["aliases"] == reg["aliases"]
    assert done["runs"].count("RUNNING") == 0
    assert finally_decided["status"]["undecided"] == [] and "no-op" in finally_decided["stdout"]


def test_the_service_serves_the_champion_after_the_kills(home: dict, finally_decided: dict, start_server) -> None:
    champion = finally_decided["status"]["champion"]["version"]
    with start_server.serving(home["env"], home["root"]) as running:
        facts = httpx.get(running["url"] + "/model", timeout=30).json()
    assert facts["ready"] is True and facts["version"] == champion
