"""A state folder (``TRIALCAST_HOME``, ``.trialcast/``) that can be moved or copied.

MLflow's SQLite store records absolute artifact locations (``file:///old/home/mlartifacts/...``),
so a copied folder would read, and write, the original's artifacts. ``relocate`` rewrites those
locations to this home's artifact folder when the store is opened from a new place. MLflow has no
API to move an artifact root (``update_experiment`` cannot change it), hence the few SQL updates
below, on the columns that hold such locations; the rewrite is one transaction and idempotent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from features.config import Settings, tracking_uri

# (table, column) pairs of MLflow's SQLite schema that hold artifact locations.
LOCATIONS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
             ("model_versions", "storage_location"), ("model_versions", "source"),
             ("logged_models", "artifact_location"))
ARTIFACTS = "mlartifacts"


def relocate(settings: Settings) -> str | None:
    """Point the home's own SQLite store at the home's own artifact folder. Returns the old
    artifact root when it rewrote it, else None (a server store, or nothing to change)."""
    uri = tracking_uri(settings)
    if uri != settings.mlflow_uri or not uri.startswith("sqlite:///"):
        return None  # MLFLOW_TRACKING_URI / a server: not ours to rewrite
    database = Path(uri.removeprefix("sqlite:///"))
    if not database.is_file():
        return None
    new = settings.artifact_root.as_uri()
    with sqlite3.connect(database, timeout=30) as db:
        try:
            rows = db.execute("SELECT artifact_location FROM experiments").fetchall()
        except sqlite3.DatabaseError:
            return None  # not (yet) an MLflow store
        old = next((loc for (loc,) in rows if isinstance(loc, str) and loc.startswith("file://")
                    and loc.rstrip("/").endswith("/" + ARTIFACTS) and loc.rstrip("/") != new), None)
        if old is None:
            return None
        old = old.rstrip("/")
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in LOCATIONS:
            if table in tables:
                db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                           f"WHERE {column} = ? OR {column} LIKE ? ESCAPE '\\'",
                           (new, len(old) + 1, old, _like_prefix(old + "/")))
    return old


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
