"""Fixtures for the serving tests: a candidates file with bad rows mixed in, and its scores from
the real ``trialcast score`` command (run once per session, shared by the batch and predict tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

# The bad rows, and a piece of the error each must get. Row positions are in ``BAD_AT``.
BAD_ROWS = {
    "BAD-COST": ({"cost_price": "-5"}, "cost_price: must be positive"),
    "BAD-NOPIC": ({"image": "images/does-not-exist.png"}, "does not exist"),
    "BAD-ESCAPE": ({"image": "../outside.png"}, "escapes the catalogue folder"),
    "BAD-CATEGORY": ({"category": "火箭发射器"}, "unknown category"),
    "BAD-BLANKPIC": ({"image": ""}, "image: is missing"),
}
BAD_AT = {"BAD-COST": 5}  # one bad row in the middle; the others are appended at the end
SCORE_CHUNK = 4


def cli_env(trained: dict) -> dict[str, str]:
    """Environment for a ``trialcast`` subprocess on the trained home."""
    # MLflow's set_tracking_uri exports MLFLOW_TRACKING_URI into this process's environment, and
    # training.registry prefers that variable to the home: drop it so the home alone decides.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(trained["home"])
    if trained["settings"].cache_file:
        env["TRIALCAST_CACHE_FILE"] = str(trained["settings"].cache_file)
    return env


def trialcast_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("trialcast")), *args]


def summary_of(stdout: str) -> dict:
    """The JSON summary ``trialcast score`` prints last (libraries may print lines before it)."""
    return json.loads(stdout[stdout.index("{\n"):])


def run_score(trained: dict, candidates: Path, out: Path, chunk: int = SCORE_CHUNK) -> dict:
    done = subprocess.run(
        trialcast_command("score", str(candidates), "--out", str(out), "--chunk", str(chunk)),
        env=cli_env(trained), capture_output=True, text=True, timeout=1200, check=False,
    )
    assert done.returncode == 0, f"trialcast score failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}"
    return summary_of(done.stdout)


@pytest.fixture(scope="session")
def candidates_table(sample_dir: Path, tmp_path_factory) -> dict:
    """The sample's candidates plus bad rows, in a folder of its own (pictures copied next to it)."""
    root = tmp_path_factory.mktemp("candidates")
    folder = root / "batch"
    (folder / "images").mkdir(parents=True)
    good = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False)
    for name in good["image"]:
        shutil.copy(sample_dir / name, folder / name)
    shutil.copy(sample_dir / good["image"].iloc[0], root / "outside.png")  # exists, but outside the folder
    rows = good.to_dict("records")
    template = rows[0]
    for sku, (change, _) in BAD_ROWS.items():
        row = {**template, "sku_id": sku, **change}
        if sku in BAD_AT:
            rows.insert(BAD_AT[sku], row)
        else:
            rows.append(row)
    frame = pd.DataFrame(rows, columns=good.columns)
    path = folder / "candidates.csv"
    frame.to_csv(path, index=False, encoding="utf-8")
    return {"path": path, "input": frame, "good": good}


@pytest.fixture(scope="session")
def scored(trained: dict, candidates_table: dict, tmp_path_factory) -> dict:
    """``trialcast score`` run once, uninterrupted, on the candidates with bad rows."""
    out = tmp_path_factory.mktemp("scores") / "scores.parquet"
    summary = run_score(trained, candidates_table["path"], out)
    return {"out": out, "summary": summary, "frame": pd.read_parquet(out), **candidates_table}


@pytest.fixture(scope="session")
def cli(trained: dict):
    """Helpers to run ``trialcast`` subprocesses on the trained home (test modules cannot import
    this conftest under ``--import-mode=importlib``)."""
    from types import SimpleNamespace

    return SimpleNamespace(env=cli_env(trained), command=trialcast_command, summary_of=summary_of,
                           run_score=lambda candidates, out, chunk=SCORE_CHUNK: run_score(trained, candidates, out, chunk),
                           bad_rows=BAD_ROWS, chunk=SCORE_CHUNK)


def forecast_log_rows(url: str) -> dict[str, float]:
    """The forecast log's rows at ``url``, id -> P50 (an engine of its own, closed after)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(sa.text("SELECT id, p50 FROM forecasts")).all())
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def logged():
    """``logged(url)``: the forecast log's rows, id -> P50 (to check that each forecast is there once)."""
    return forecast_log_rows
