"""Scheduled retraining, evaluation on new launches, promotion and rollback, in a home of their own.

One module-scoped home goes through a model's life, in this order (each stage is a module fixture
that records what it saw; the tests check the records, so each test runs alone or in any order):
  v1 trained on the sample (the same snapshot again is a no-op) -> ``trialcast retrain`` of a
  newer snapshot (the sample + launches after v1's training data) embeds only the new launches,
  then is killed while training: the registry is as it was -> ``trialcast evaluate`` scores v1 on
  the new launches -> the next retrain embeds nothing again and registers v2 -> ``trialcast
  promote`` rolls the champion back and forth.
The home's embedding cache starts as a copy of the ``trained`` fixture's (the sample's vectors).
"""

from __future__ import annotations

import json
import os
import queue
import re
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
from typer.testing import CliRunner

from features.config import Settings
from training.gate import bias_key, gated_key

TRIALCAST = str(Path(sys.executable).with_name("trialcast"))
NEW_LAUNCHES = 400  # > the holdout share of the new snapshot: its holdout is unseen by v1
NEW_START, NEW_END = np.datetime64("2025-07-08"), np.datetime64("2025-09-15")


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a (WAL-mode) SQLite file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _later_launches(folder: Path, n: int) -> pd.DataFrame:
    """``n`` SYNTHETIC SKUs launched after the sample's history (features.sample with a later date
    range and another seed), ids N00001..., pictures in ``folder / 'images'``.

    The window is patched in ``features.sample.world``, the module that reads it."""
    from features import sample
    from features.sample import world

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(world, "HISTORY_START", NEW_START)
        mp.setattr(world, "HISTORY_END", NEW_END)
        sample.write_sample_catalogue(folder / "generated", n=n, seed=11, candidates=0)
    frame = pd.read_parquet(folder / "generated" / "catalogue.parquet")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    renamed = []
    for sku in frame["sku_id"]:
        new = "N" + sku[1:]
        (folder / "generated" / "images" / f"{sku}.png").rename(folder / "images" / f"{new}.png")
        renamed.append(new)
    frame["sku_id"] = renamed
    frame["image"] = [f"images/{s}.png" for s in renamed]
    return frame


@pytest.fixture(scope="module")
def life(trained: dict, small_sample: Path, tmp_path_factory) -> dict:
    """The snapshots and the home (the stages below change the home; see ``v1`` ... ``v2``).

    The old snapshot is the 1,000-SKU third of the sample (``small_sample``): what is checked here is
    the mechanism (no-op, what is embedded, the registry after a kill, promotion), and a third of the
    SKUs trains v1 and v2 in a third of the time. ``trained`` has put its vectors in the cache."""
    root = tmp_path_factory.mktemp("retrain")
    sample_dir = small_sample
    # The newer snapshot: the sample (pictures hard-linked: catalogue pictures must sit inside the
    # catalogue's folder, so no symlinked folder) plus the later launches.
    new_dir = root / "new"
    added = _later_launches(new_dir, NEW_LAUNCHES)
    for picture in (sample_dir / "images").iterdir():
        target = new_dir / "images" / picture.name
        try:
            os.link(picture, target)
        except OSError:
            target.write_bytes(picture.read_bytes())
    old = pd.read_parquet(sample_dir / "catalogue.parquet")
    pd.concat([old, added], ignore_index=True).to_parquet(new_dir / "catalogue.parquet", index=False)

    home = root / "home"
    _copy_sqlite(trained["settings"].cache_path, home / "embeddings.sqlite")
    return {
        "old": sample_dir / "catalogue.parquet",
        "new": new_dir / "catalogue.parquet",
        "added": added,
        "skus": len(old) + len(added),
        "settings": Settings(home=home),
    }


def _registry(settings: Settings) -> dict:
    """Versions (with their decision tags) and the aliases, as plain data."""
    from training.registry import CHALLENGER, CHAMPION, connect

    client = connect(settings)
    versions = {str(mv.version): mv.tags.get("decision") for mv in client.search_model_versions(f"name = '{settings.model_name}'")}
    aliases = {}
    for alias in (CHAMPION, CHALLENGER):
        try:
            aliases[alias] = str(client.get_model_version_by_alias(settings.model_name, alias).version)
        except Exception:  # noqa: BLE001 - MlflowException when the alias is unset
            aliases[alias] = None
    return {"versions": versions, "aliases": aliases}


def _env(life: dict) -> dict:
    return {"TRIALCAST_HOME": str(life["settings"].home), "TRIALCAST_CACHE_FILE": None, "MLFLOW_TRACKING_URI": None}


def _cli(life: dict, *args: str):
    """Run the trialcast CLI in-process (same parsing and exit codes) on this module's home."""
    from trialcast.cli import app

    return CliRunner().invoke(app, list(args), env=_env(life))


def _json_out(text: str) -> dict:
    """The JSON document a command printed (libraries may print a line before it)."""
    start = text.index("{")
    return json.loads(text[start:])


def _missing_vectors(settings: Settings, catalogue: Path) -> int:
    """How many picture and copy vectors of ``catalogue`` the home's cache lacks."""
    from features.cache import EmbeddingCache, content_key
    from features.catalogue import load_catalogue
    from features.encoders import copy_text, get_encoder

    frame = load_catalogue(catalogue).frame
    picture_keys = {content_key(Path(p).read_bytes()) for p in frame["image_path"]}
    copy_keys = {content_key(copy_text(t, d)) for t, d in zip(frame["title"], frame["description"])}
    image_encoder = get_encoder(settings.image_encoder, "image", settings.threads)
    text_encoder = get_encoder(settings.text_encoder, "text", settings.threads)
    cache = EmbeddingCache(settings.cache_path)
    try:
        return (len(picture_keys) - len(cache.get_many(image_encoder.id, picture_keys, image_encoder.dim))
                + len(copy_keys) - len(cache.get_many(text_encoder.id, copy_keys, text_encoder.dim)))
    finally:
        cache.close()


# ---------------------------------------------------------------- what makes a retrain a no-op
@pytest.mark.parametrize(
    "change",
    [{"image_encoder": "resnet18"}, {"analog_k": 10}, {"analog_gap_days": 14}, {"similarity_floor": 0.7},
     {"picture_weight": 0.3}, {"picture_components": 8}, {"copy_components": 8}, {"projection_refit_days": 60},
     {"gate_threshold": 0.2}, {"gate_max_abs_bias": 0.05}, {"holdout_fraction": 0.25}],
)
def test_config_hash_changes_with_every_setting_that_shapes_the_model(change: dict) -> None:
    from training.jobs import config_hash

    assert config_hash(Settings(**change)) != config_hash(Settings())


def test_config_hash_ignores_settings_that_do_not_shape_the_model(tmp_path: Path) -> None:
    from training.jobs import config_hash

    same = Settings(home=tmp_path, threads=1, batch_size=8, analog_show=3)
    assert config_hash(same) == config_hash(Settings())


# ---------------------------------------------------------------- the life of a model, in stages
# Each stage is a module fixture that runs once, whichever test asks for it first, and records what
# it saw at that moment. The stages depend on each other in the life's order (v1 -> killed retrain
# -> evaluate -> v2), so every test gets the same state whether it runs alone, in file order or in
# reverse: no test relies on another test having run.
@pytest.fixture(scope="module")
def v1(life: dict) -> dict:
    """The first training on the sample in the module's home, and the registry right after it."""
    from training.jobs import run_train

    lines: list[str] = []
    summary = run_train(life["old"], life["settings"], retrain=True, progress=False, echo=lines.append)
    return {"summary": summary, "lines": lines, "registry": _registry(life["settings"])}


def _kill_while_training(settings: Settings, catalogue: Path) -> tuple[int, list[str]]:
    """Run `trialcast retrain CATALOGUE`, SIGKILL it 4 s after it starts training (it has embedded
    by then); return its exit status and the lines it printed."""
    env = {**os.environ, "TRIALCAST_HOME": str(settings.home)}
    for name in ("TRIALCAST_CACHE_FILE", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):
        env.pop(name, None)
    with open(settings.home / "killed-retrain.stderr", "w") as stderr:  # progress bars; kept for diagnosis
        proc = subprocess.Popen([TRIALCAST, "retrain", str(catalogue)], env=env, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, start_new_session=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        seen: list[str] = []
        try:
            deadline = time.monotonic() + 1500
            while not any("catalogue " in line for line in seen):  # embedded: training starts now
                assert proc.poll() is None, "".join(seen)
                assert time.monotonic() < deadline, "retrain did not start training in time:\n" + "".join(seen)
                try:
                    seen.append(lines.get(timeout=1))
                except queue.Empty:
                    pass
            time.sleep(4)
            assert proc.poll() is None, "the retrain ended before it could be killed:\n" + "".join(seen)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    return proc.returncode, seen


@pytest.fixture(scope="module")
def killed(life: dict, v1: dict) -> dict:
    """`trialcast retrain NEW` killed while training, with v1 champion and NEW's launches not yet
    embedded (every later stage embeds them): what was missing, printed and left behind."""
    from training.jobs import load_model

    settings = life["settings"]
    before = _registry(settings)
    missing = _missing_vectors(settings, life["new"])
    returncode, seen = _kill_while_training(settings, life["new"])
    model, version = load_model(settings)
    return {"registry_before": before, "missing_before": missing, "returncode": returncode, "seen": seen,
            "registry_after": _registry(settings), "champion_version": str(version.version),
            "champion_fingerprint": model.meta["fingerprint"],
            "missing_after": _missing_vectors(settings, life["new"])}


@pytest.fixture(scope="module")
def evaluation(life: dict, v1: dict, killed: dict) -> dict:
    """`trialcast evaluate` of v1 (still champion) on NEW and on OLD. After the killed retrain:
    evaluating NEW embeds its launches, which the killed retrain must find missing."""
    return {"new": _cli(life, "evaluate", str(life["new"])), "old": _cli(life, "evaluate", str(life["old"]))}


@pytest.fixture(scope="module")
def v2(life: dict, v1: dict, killed: dict, evaluation: dict) -> dict:
    """The next retrain, on NEW (after the killed one, whose vectors it reuses, and after v1 was
    evaluated as champion), the registry before and after it, and a retrain of NEW again."""
    from training.jobs import run_train

    settings = life["settings"]
    before = _registry(settings)
    lines: list[str] = []
    summary = run_train(life["new"], settings, retrain=True, progress=False, echo=lines.append)
    after = _registry(settings)
    again = run_train(life["new"], settings, retrain=True, progress=False, echo=lambda *_: None)
    return {"summary": summary, "lines": lines, "before": before, "after": after, "again": again}


def test_first_training_registers_a_champion(v1: dict) -> None:
    summary, lines, state = v1["summary"], v1["lines"], v1["registry"]
    assert not summary["noop"]
    assert summary["alias"] == "champion" and summary["gate"]["passed"], summary["reason"]
    assert "0 new embeddings" in lines[0]  # every vector came from the (copied) cache
    assert state["versions"] == {summary["version"]: f"champion: {summary['reason']}"}
    assert state["aliases"] == {"champion": summary["version"], "challenger": None}


def test_retraining_the_same_snapshot_changes_nothing(life: dict, v1: dict) -> None:
    from features.catalogue import load_catalogue
    from training.data import fingerprint
    from training.jobs import run_train

    first = v1["summary"]
    before = _registry(life["settings"])
    lines: list[str] = []
    again = run_train(life["old"], life["settings"], retrain=True, progress=False, echo=lines.append)
    assert again["noop"] is True
    assert again["version"] == first["version"]
    assert again["fingerprint"] == first["fingerprint"]
    assert any(line.startswith("no-op") for line in lines)
    assert _registry(life["settings"]) == before
    # The no-op is keyed by the data: the newer snapshot has another fingerprint.
    assert fingerprint(load_catalogue(life["new"])) != first["fingerprint"]


def test_killed_retrain_embeds_only_what_is_new_and_leaves_the_registry_untouched(v1: dict, killed: dict) -> None:
    """`trialcast retrain NEW` embeds only the new launches (the sample's vectors are cached), starts
    training, and is killed (SIGKILL) while training: no version, no alias moved, champion loads."""
    missing = killed["missing_before"]
    assert NEW_LAUNCHES <= missing <= 2 * NEW_LAUNCHES  # every new picture, and the new copy
    assert killed["returncode"] == -signal.SIGKILL
    started = next(line for line in killed["seen"] if "catalogue " in line)
    assert re.search(rf"\b{missing} new embeddings\b", started), started

    assert killed["registry_after"] == killed["registry_before"]
    # The champion still loads, and it is v1.
    assert killed["champion_version"] == v1["summary"]["version"]
    assert killed["champion_fingerprint"] == v1["summary"]["fingerprint"]
    # What the killed job had embedded is kept: nothing will be embedded twice.
    assert killed["missing_after"] == 0


def test_evaluate_reports_metrics_on_launches_after_training(life: dict, v1: dict, evaluation: dict) -> None:
    result = evaluation["new"]
    assert result.exit_code == 0, result.output
    report = _json_out(result.stdout)
    assert str(report["version"]) == v1["summary"]["version"]
    assert report["train_end"] == "2025-06-30"
    assert report["n_unseen"] == NEW_LAUNCHES
    metrics = report["metrics"]
    assert {"wape", "bias", "mae", "coverage_p10_p90"} <= set(metrics)
    # Same hidden sales function, a few weeks later: the model still forecasts well.
    assert metrics["wape"] < 0.25, metrics
    assert abs(metrics["bias"]) < 0.15, metrics
    assert 0.5 <= metrics["coverage_p10_p90"] <= 1.0
    assert report["gate"]["metric"] == "wape"
    # Gated where the settings say (plan level after a 3-day trial by default), measured on these launches too.
    gate = report["gate"]
    assert (gate["level"], gate["stage"]) == (life["settings"].gate_level, life["settings"].gate_stage)
    error, total = metrics[gated_key("wape", gate["level"], gate["stage"])], metrics[bias_key(gate["stage"])]
    assert gate["passed"] == (error < 0.15 and abs(total) <= 0.10)

    # A catalogue with nothing newer than the model says so instead of inventing metrics.
    nothing = _json_out(evaluation["old"].stdout)
    assert nothing["n_unseen"] == 0 and "metrics" not in nothing and "nothing new" in nothing["message"]


def test_next_retrain_works_and_registers_a_version(life: dict, v1: dict, v2: dict) -> None:
    from training.registry import connect

    settings = life["settings"]
    summary, lines, before, after = v2["summary"], v2["lines"], v2["before"], v2["after"]
    assert not summary["noop"]
    assert life["skus"] == 1000 + NEW_LAUNCHES
    assert f"{life['skus']} SKUs" in lines[0] and "0 new embeddings" in lines[0], lines[0]

    assert set(after["versions"]) == set(before["versions"]) | {summary["version"]}
    assert int(summary["version"]) == int(v1["summary"]["version"]) + 1
    assert summary["gate"]["passed"], summary["gate"]
    mv = connect(settings).get_model_version(settings.model_name, summary["version"])
    assert mv.tags["data_fingerprint"] == summary["fingerprint"] != v1["summary"]["fingerprint"]
    # Most of this holdout launched after v1's data: both models were scored on those launches.
    assert re.match(r"both scored on \d+ holdout launches after champion v1", mv.tags["compared_with"])
    if summary["alias"] == "champion":
        assert after["aliases"]["champion"] == summary["version"]
    else:
        assert summary["reason"].startswith("passed the gate but")
        assert after["aliases"] == {"champion": before["aliases"]["champion"], "challenger": summary["version"]}

    # And this snapshot is now a no-op too.
    assert v2["again"]["noop"]


def test_promote_rolls_the_champion_back_and_forth(life: dict, v1: dict, v2: dict) -> None:
    settings = life["settings"]
    first, second = v1["summary"]["version"], v2["summary"]["version"]
    current = _registry(settings)["aliases"]["champion"]
    other = first if current == second else second
    result = _cli(life, "promote", other)
    assert result.exit_code == 0, result.output
    assert _json_out(result.stdout) == {"champion": other, "previous": current}
    assert _registry(settings)["aliases"]["champion"] == other
    from training.jobs import load_model

    assert str(load_model(settings)[1].version) == other
    result = _cli(life, "promote", current)
    assert result.exit_code == 0, result.output
    state = _registry(settings)
    assert state["aliases"]["champion"] == current
    assert state["versions"][current] == "champion: promoted by hand"
    # An unknown version is refused without touching anything.
    assert _cli(life, "promote", "99").exit_code != 0
    assert _registry(settings) == state
