"""The MLproject at the repo root: every entry point calls a real trialcast command with valid
arguments, and `mlflow run . -e sample --env-manager local` works offline end to end."""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml

from trialcast.cli import app

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENTRY_POINTS = {"sample", "embed", "train", "retrain", "evaluate", "promote"}


def _project():
    from mlflow.projects import _project_spec

    return _project_spec.load_project(str(REPO))


def test_mlproject_names_the_entry_points_and_calls_the_cli() -> None:
    spec = yaml.safe_load((REPO / "MLproject").read_text(encoding="utf-8"))
    assert spec["name"] == "trialcast"
    assert set(spec["entry_points"]) == ENTRY_POINTS
    for name, entry in spec["entry_points"].items():
        assert entry["command"].startswith(f"python -m trialcast.cli {name}"), entry["command"]
    # `python -m trialcast.cli` runs the app.
    source = (REPO / "trialcast" / "cli.py").read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":' in source


@pytest.mark.parametrize(
    ("entry", "params", "expected"),
    [
        ("sample", {"out": "/tmp/x y", "n": "60"}, ["sample", "--out", "/tmp/x y", "--n", "60", "--seed", "7"]),
        ("embed", {"catalogue": "MLproject"}, ["embed", str(REPO / "MLproject")]),
        ("train", {"catalogue": "MLproject"}, ["train", str(REPO / "MLproject")]),
        ("retrain", {"catalogue": "MLproject"}, ["retrain", str(REPO / "MLproject")]),
        ("evaluate", {"catalogue": "MLproject"}, ["evaluate", str(REPO / "MLproject"), "--alias", "champion"]),
        ("promote", {"version": "3"}, ["promote", "3", "--no-force"]),
        ("promote", {"version": "3", "force": "force"}, ["promote", "3", "--force"]),
    ],
)
def test_entry_point_commands_parse_as_cli_commands(entry: str, params: dict, expected: list[str],
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What `mlflow run -e ENTRY -P ...` would execute is a valid `trialcast` command line."""
    monkeypatch.chdir(REPO)  # path parameters are made absolute from where mlflow run starts
    command = _project().get_entry_point(entry).compute_command(params, str(tmp_path))
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "trialcast.cli"]
    assert argv[3:] == expected
    group = typer.main.get_command(app)
    name, sub, rest = group.resolve_command(group.make_context("trialcast", list(argv[3:]), resilient_parsing=True), argv[3:])
    assert name == entry
    ctx = sub.make_context(name, rest)  # raises click.UsageError on a bad option or argument
    assert ctx.params


def test_mlflow_run_sample_entry_point(tmp_path: Path) -> None:
    out = tmp_path / "out"
    db = tmp_path / "mlflow.db"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    done = subprocess.run(
        [str(BIN / "mlflow"), "run", str(REPO), "-e", "sample", "--env-manager", "local",
         "-P", f"out={out}", "-P", "n=60"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    catalogue = pd.read_parquet(out / "catalogue.parquet")
    assert len(catalogue) == 60
    assert len(list((out / "images").glob("*.png"))) == 60 + 40  # history and candidates
    assert (out / "candidates.csv").is_file()
    # The project run was recorded in the given store, finished, with its parameters.
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT run_uuid, status FROM runs").fetchall()
        assert len(runs) == 1 and runs[0][1] == "FINISHED"
        params = dict(conn.execute("SELECT key, value FROM params WHERE run_uuid = ?", [runs[0][0]]).fetchall())
        tags = dict(conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", [runs[0][0]]).fetchall())
    assert params["out"] == str(out) and params["n"] == "60"
    assert tags["mlflow.project.entryPoint"] == "sample"
    # Nothing was written into the project folder.
    assert not (REPO / "mlruns").exists()


def test_jobs_log_into_the_run_that_mlflow_run_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `mlflow run` (MLFLOW_RUN_ID set, the run in the project's experiment), the train job's
    run is that run, not a refusal for being in another experiment than trialcast's."""
    import mlflow
    from mlflow import MlflowClient

    from features.config import Settings
    from training.registry import connect

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("project", artifact_location=(tmp_path / "artifacts").as_uri())
    project_run = client.create_run(experiment)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", project_run.info.run_id)
    connect(Settings(home=tmp_path / "home"))
    with mlflow.start_run() as active:
        mlflow.log_metric("holdout_wape", 0.1)
    assert active.info.run_id == project_run.info.run_id
    assert client.get_run(project_run.info.run_id).data.metrics["holdout_wape"] == 0.1
    # Without MLFLOW_RUN_ID, jobs log into trialcast's own experiment again.
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    connect(Settings(home=tmp_path / "home"))
    with mlflow.start_run() as own:
        pass
    assert client.get_experiment(own.info.experiment_id).name == "trialcast"
