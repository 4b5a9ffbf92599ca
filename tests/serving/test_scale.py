"""Batch scoring on a local Ray cluster (2 CPUs, started by the test, stopped after): the same
scores as the single-process path for the same candidates, two workers sharing the chunks, and a
worker killed mid-job still yields every row once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from serving.batch import score_file
from serving.champion import load_champion
from serving.scale import use_ray

SAME = ["sku_id", "p10", "p50", "p90", "curve", "decision", "reasons", "break_even_units", "similar_skus",
        "quantity", "error"]


@pytest.fixture(scope="module")
def predictor(trained: dict):
    predictor, message = load_champion(trained["settings"])
    assert predictor is not None, message
    return predictor


@pytest.fixture(scope="module")
def local(predictor, sample_dir: Path, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("local") / "scores.parquet"
    predictor.settings = predictor.settings.model_copy(update={"score_engine": "local"})
    assert score_file(sample_dir / "candidates.csv", out, predictor, chunk=4, progress=False)["rows"] == 40
    return pd.read_parquet(out)


def ray_predictor(predictor):
    predictor.settings = predictor.settings.model_copy(update={"score_engine": "ray", "ray_workers": 2})
    return predictor


def test_engine_choice() -> None:
    from features.config import Settings

    assert not use_ray(Settings(score_engine="auto", ray_min_rows=100), 99)
    assert use_ray(Settings(score_engine="auto", ray_min_rows=100), 100)
    assert use_ray(Settings(score_engine="ray"), 1) and not use_ray(Settings(score_engine="local"), 10**9)


def test_ray_scores_like_one_process(predictor, local, sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    summary = score_file(sample_dir / "candidates.csv", out, ray_predictor(predictor), chunk=4, progress=False)
    assert summary["engine"] == "ray" and summary["ray_chunks"] == 10 and summary["ray_workers_used"] == 2
    ray_scores = pd.read_parquet(out)
    assert summary["rows"] == 40
    pd.testing.assert_frame_equal(ray_scores[SAME], local[SAME])
    assert ray_scores["forecast_id"].notna().all() and ray_scores["forecast_id"].is_unique


def _scorer_pids() -> list[int]:
    """The Ray worker processes running a ChunkScorer actor (from /proc: no extra dependency)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ChunkScorer" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_a_killed_worker_loses_no_row(predictor, local, sample_dir: Path, logged, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row once in the scores and in the forecast log (a database of this test's own, which
    the Ray workers write to): a chunk retried after its worker died adds no log row."""
    database = f"sqlite:///{tmp_path / 'forecasts.sqlite'}"
    monkeypatch.setattr(predictor, "settings", predictor.settings.model_copy(update={"database_url": database}))
    out = tmp_path / "scores.parquet"
    parts = out.with_name(out.name + ".parts")
    killed: list[int] = []

    def kill_one_when_scoring() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            if parts.exists() and any(parts.glob("*.parquet")) and (pids := _scorer_pids()):
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_when_scoring, daemon=True)
    killer.start()
    summary = score_file(sample_dir / "candidates.csv", out, ray_predictor(predictor), chunk=2, progress=False)
    killer.join(timeout=5)
    assert killed, "no Ray worker was seen scoring"
    scores = pd.read_parquet(out)
    assert summary["rows"] == 40 and scores["sku_id"].is_unique
    pd.testing.assert_frame_equal(scores[SAME], local[SAME])
    assert scores["forecast_id"].notna().all() and scores["forecast_id"].is_unique
    assert logged(database) == dict(zip(scores["forecast_id"], scores["p50"]))
