"""The state folder can be moved or copied (issue 14, item 4): MLflow's SQLite store records
absolute artifact locations, so a copied home used to read (and write) the original's artifacts.
A copy of the trained home is opened with the original's artifacts out of the way: the champion
still loads, from the copy's own files, and the store names no path of the original."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from features.config import Settings
from features.model import load_registered
from features.store import LOCATIONS, relocate


def _locations(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return [value for table, column in LOCATIONS if table in tables
                for (value,) in db.execute(f"SELECT {column} FROM {table}") if isinstance(value, str)]


def test_a_copied_home_reads_its_own_artifacts(trained: dict, tmp_path: Path) -> None:
    original: Path = trained["home"]
    copy = tmp_path / "moved-home"
    shutil.copytree(original, copy)
    shutil.rmtree(copy / "models", ignore_errors=True)  # no fetched model: it must come from the copy's store
    before = _locations(copy / "mlflow.db")
    assert any(str(original) in value for value in before)  # the control: the copy points at the original
    hidden = tmp_path / "hidden-artifacts"
    (original / "mlartifacts").rename(hidden)
    try:
        settings = Settings(home=copy, cache_file=trained["settings"].cache_file)
        model, version = load_registered(settings)
        assert model.meta["trained_on"] > 0
        assert str(version.version) == str(trained["summary"]["version"])
        assert (copy / "models").is_dir()
        after = _locations(copy / "mlflow.db")
        assert after and not any(str(original) in value for value in after), after
        assert all(str(copy.resolve()) in value for value in after if value.startswith("file:"))
        assert relocate(settings) is None  # idempotent: nothing left to rewrite
    finally:
        hidden.rename(original / "mlartifacts")
