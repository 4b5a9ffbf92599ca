"""Embedding and retraining on a local Ray cluster (2 CPUs, started here, stopped after): the same
vectors as one process for the same catalogue, through `trialcast embed --engine ray`; a worker
killed mid-job still leaves every vector in the cache once; `trialcast retrain --engine ray` trains
the model one process trains."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalogue import load_catalogue
from features.config import Settings
from features.embed import embed_frame
from features.engine import use_ray


@pytest.fixture(scope="module")
def local_ray():
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _first(sample_dir: Path, n: int, folder: Path) -> Path:
    """The sample's first ``n`` SKUs as a catalogue of their own, pictures copied beside it."""
    frame = pd.read_parquet(sample_dir / "catalogue.parquet").iloc[:n]
    (folder / "images").mkdir()
    for picture in frame["image"]:
        shutil.copyfile(sample_dir / picture, folder / picture)
    frame.to_parquet(folder / "catalogue.parquet")
    return folder / "catalogue.parquet"


@pytest.fixture(scope="module")
def small(sample_dir: Path, tmp_path_factory) -> Path:
    return _first(sample_dir, 48, tmp_path_factory.mktemp("small"))


def _vectors(cache: Path) -> dict[tuple[str, str], bytes]:
    with sqlite3.connect(cache) as db:
        return {(e, k): v for e, k, v in db.execute("SELECT encoder, key, vector FROM embeddings")}


def _cli(*args: str, home: Path, cache: Path) -> str:
    env = {**os.environ, "TRIALCAST_HOME": str(home), "TRIALCAST_CACHE_FILE": str(cache),
           "TRIALCAST_BATCH_SIZE": "8", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([str(Path(sys.executable).with_name("trialcast")), *args], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_engine_choice() -> None:
    assert not use_ray("auto", 99, 100) and use_ray("auto", 100, 100)
    assert use_ray("ray", 1, 10**9) and not use_ray("local", 10**9, 1)


def test_trialcast_embed_on_ray_writes_the_vectors_one_process_writes(small: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _cli("embed", str(small), "--engine", "local", home=home, cache=tmp_path / "local.sqlite")
    out = _cli("embed", str(small), "--engine", "ray", home=home, cache=tmp_path / "ray.sqlite")
    assert "48 SKUs: 96 new vectors" in out  # 48 pictures and 48 copies, none cached before
    local, on_ray = _vectors(tmp_path / "local.sqlite"), _vectors(tmp_path / "ray.sqlite")
    assert len(local) == 96 and local == on_ray  # byte for byte


def _encoder_pids() -> list[int]:
    """Ray worker processes running a ChunkEncoder actor (their title names the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ChunkEncoder" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_a_killed_worker_loses_no_vector(local_ray, small: Path, tmp_path: Path) -> None:
    from features.cache import EmbeddingCache

    frame = load_catalogue(small).frame
    settings = Settings(home=tmp_path, batch_size=4, embed_engine="ray", ray_workers=2)
    reference = embed_frame(frame, settings.model_copy(update={"embed_engine": "local"}))
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    killed: list[int] = []

    def kill_one_when_encoding() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            if cache.count() and (pids := _encoder_pids()):
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_when_encoding, daemon=True)
    killer.start()
    found = embed_frame(frame, settings, cache=cache)
    killer.join(timeout=5)
    assert killed, "no Ray worker was seen encoding"
    np.testing.assert_array_equal(found.picture, reference.picture)
    np.testing.assert_array_equal(found.copy, reference.copy)
    assert cache.count() == 96 and found.computed == 96


def test_retrain_on_ray_trains_the_model_one_process_trains(sample_dir: Path, tmp_path: Path) -> None:
    """300 SKUs from an empty cache embedded on Ray, then trained; the same catalogue trained in
    one process: the same holdout metrics to the last digit (the vectors are the same bits)."""
    catalogue = _first(sample_dir, 300, tmp_path)
    runs = {}
    for engine in ("ray", "local"):
        out = _cli("retrain", str(catalogue), "--engine", engine, "--no-launches",
                   home=tmp_path / engine, cache=tmp_path / f"{engine}.sqlite")
        runs[engine] = json.loads(out[out.index("{"):])
    assert runs["ray"]["noop"] is False and runs["ray"]["fingerprint"] == runs["local"]["fingerprint"]
    for part in ("holdout", "loss_comparison", "backtest", "gate"):
        assert runs["ray"][part] == runs["local"][part], part
    assert _vectors(tmp_path / "ray.sqlite") == _vectors(tmp_path / "local.sqlite")
