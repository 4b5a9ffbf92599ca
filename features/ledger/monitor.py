"""The live error in MLflow, beside the holdout numbers it is compared with.

Each publication (after actuals arrive) writes, per model version with complete launches:
- tags on the registered model version: ``live.wape``, ``live.bias``, ``live.coverage``,
  ``live.go_precision``, ``live.n``, ``live.above_gate``, ``live.updated_at`` (what the registry UI
  and `trialcast status` show next to ``gate.value``);
- one run in the experiment ``<model name>-live`` with those numbers as metrics, stepped by the
  number of launches, so the live error's history is a chart in the MLflow UI.
MLflow is imported here only (lazily, as in ``features.model``): the forecast path never needs it.
"""

from __future__ import annotations

from typing import Any

from features.config import Settings, tracking_uri

METRICS = ("wape", "bias", "coverage", "go_precision", "n")


def publish_live(settings: Settings, live: dict[str, dict[str, Any]]) -> list[str]:
    """Write each version's live error to its registered version and to a monitoring run; returns
    the versions written (a version unknown to the registry, e.g. a replay's, gets the run only)."""
    from datetime import UTC, datetime

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(settings)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = f"{settings.model_name}-live"
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = settings.artifact_root.as_uri() if uri.startswith("sqlite:") else None
        try:
            client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another process created it first
            pass
        experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    written = []
    for version, m in live.items():
        if not m.get("n"):
            continue
        values = {f"live_{k}": float(m[k]) for k in METRICS if m.get(k) is not None}
        run = client.create_run(experiment_id, tags={"model_version": version, "kind": "live-error",
                                                     "above_gate": str(bool(m["above_gate"])).lower()},
                                run_name=f"live v{version} {stamp}")
        for key, value in values.items():
            client.log_metric(run.info.run_id, key, value, step=int(m["n"]))
        client.set_terminated(run.info.run_id)
        tags = {**{f"live.{k}": f"{m[k]:.6g}" for k in METRICS if m.get(k) is not None},
                "live.above_gate": str(bool(m["above_gate"])).lower(), "live.updated_at": stamp}
        try:
            for key, value in tags.items():
                client.set_model_version_tag(settings.model_name, version, key, value)
        except MlflowException:  # not a registered version of this store
            continue
        written.append(version)
    return written
