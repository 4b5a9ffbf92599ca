"""Registry wiring without training: which store a process talks to, and status of an empty home."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from features.config import Settings
from training.registry import connect, status


def test_connect_follows_the_home_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One process, two homes: the second connect talks to the second store (MLflow exports the
    first URI to MLFLOW_TRACKING_URI, which must not pin every later connect to the first home)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    first, second = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    connect(first)
    assert mlflow.get_tracking_uri() == first.mlflow_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    client = connect(second)
    assert mlflow.get_tracking_uri() == second.mlflow_uri == mlflow.get_registry_uri()
    assert (tmp_path / "b" / "mlflow.db").is_file()
    assert client.get_experiment_by_name("trialcast").artifact_location == second.artifact_root.as_uri()


def test_an_explicit_tracking_uri_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    connect(Settings(home=tmp_path / "a"))
    connect(Settings(home=tmp_path / "b"))
    assert mlflow.get_tracking_uri() == uri
    assert os.environ["MLFLOW_TRACKING_URI"] == uri
    assert (tmp_path / "server.db").is_file() and not (tmp_path / "b" / "mlflow.db").exists()


def test_status_of_an_empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(home=tmp_path / "home")
    state = status(connect(settings), settings)
    assert state["champion"] is None and state["challenger"] is None
    assert state["tracking_uri"] == settings.mlflow_uri
