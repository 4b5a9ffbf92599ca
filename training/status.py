"""The registry's state for ``trialcast status``, without importing MLflow when it need not.

Why by hand: importing MLflow costs 10-40 s on a busy 2-core laptop (and the client's SQL store
checks its migrations on open), to print a few numbers. The default store is SQLite under home,
so four read-only SQL queries against MLflow's own tables (``registered_model_aliases``,
``model_versions``, ``model_version_tags``, ``latest_metrics``, ``tags``) give the same answer as
``training.registry.status`` (a test compares both on a trained home). Any other store (a server,
PostgreSQL) or a schema these queries do not match goes through the MLflow client as before.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from features.config import Settings, tracking_uri

CHAMPION, CHALLENGER, ADVISORY = "champion", "challenger", "advisory"  # the same names as training.registry
_WORKSPACE = "default"  # MLflow's default workspace: a local store has only that one


def _sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI, or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///"):].split("?", 1)[0]))  # "sqlite:////abs" or "sqlite:///rel"


def status(settings: Settings) -> dict[str, Any]:
    """Champion, challenger and advisory with their gate, holdout and baseline numbers (``registry.status``)."""
    uri = tracking_uri(settings)
    path = _sqlite_file(uri)
    if path is not None:
        if not path.exists():  # nothing trained yet: nothing to read, and nothing to create
            return {"model_name": settings.model_name, "tracking_uri": uri, "undecided": [], CHAMPION: None,
                    CHALLENGER: None, ADVISORY: None}
        try:
            return _from_sqlite(path, settings, uri)
        except sqlite3.DatabaseError:  # another MLflow schema, a locked or damaged file: ask MLflow
            pass
    from training.registry import connect
    from training.registry import status as registry_status

    return registry_status(connect(settings), settings)


def gate_of(tags: dict[str, str]) -> dict[str, Any]:
    """A version's gate, from its tags (level and stage: per SKU before launch for older versions)."""
    def number(key: str) -> float:
        return float(tags.get(key, "nan"))

    return {"metric": tags.get("gate.metric"), "level": tags.get("gate.level", "sku"),
            "stage": tags.get("gate.stage", "pre_launch"), "value": number("gate.value"),
            "threshold": number("gate.threshold"), "bias": number("gate.bias"),
            "max_abs_bias": number("gate.max_abs_bias"), "passed": tags.get("gate.passed") == "true",
            "reasons": tags.get("gate.reasons"), "go_precision": number("gate.go_precision"),
            "go_recall": number("gate.go_recall"), "base_rate": number("gate.base_rate")}


def _from_sqlite(path: Path, settings: Settings, uri: str) -> dict[str, Any]:
    out: dict[str, Any] = {"model_name": settings.model_name, "tracking_uri": uri}
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
        out["undecided"] = _undecided(db, settings.model_name)
        for alias in (CHAMPION, CHALLENGER, ADVISORY):
            out[alias] = _version(db, settings.model_name, alias)
    return out


def _undecided(db: sqlite3.Connection, name: str) -> list[str]:
    """Versions registered without a ``decision`` tag (``registry.pending``: a killed run's)."""
    rows = db.execute(
        "SELECT v.version FROM model_versions v WHERE v.name = ? AND v.workspace = ? AND v.current_stage != 'Deleted_Internal' AND NOT EXISTS ("
        " SELECT 1 FROM model_version_tags t WHERE t.name = v.name AND t.version = v.version"
        " AND t.workspace = v.workspace AND t.key = 'decision')", (name, _WORKSPACE)).fetchall()
    return sorted((str(v) for (v,) in rows), key=int)


def _version(db: sqlite3.Connection, name: str, alias: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT v.version, v.run_id FROM registered_model_aliases a JOIN model_versions v"
        " ON v.name = a.name AND v.version = a.version AND v.workspace = a.workspace"
        " WHERE a.name = ? AND a.alias = ? AND a.workspace = ?", (name, alias, _WORKSPACE)).fetchone()
    if row is None:
        return None
    version, run_id = row
    tags = dict(db.execute("SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?"
                           " AND workspace = ?", (name, version, _WORKSPACE)))
    run_tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
    m = {key: (math.nan if is_nan else value) for key, value, is_nan in db.execute(
        "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,))}
    return {
        "version": str(version),
        "run_id": run_id,
        "decision": tags.get("decision"),
        "gate": gate_of(tags),
        "holdout": {k[len("holdout_"):]: v for k, v in m.items() if k.startswith("holdout_") and "category/" not in k},
        "baselines": {
            base: {k[len(f"baseline_{base}_"):]: v for k, v in m.items() if k.startswith(f"baseline_{base}_")}
            for base in ("category_mean", "analog_knn")
        },
        "trained_on": int(run_tags.get("n_train", 0)) + int(run_tags.get("n_holdout", 0)),
        "train_end": run_tags.get("train_end"),
        "data_fingerprint": run_tags.get("data_fingerprint"),
    }
