"""The batch jobs' table (migration 0002) and the runner's clean-up, on a fresh SQLite database:
no server, no model."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import inspect, update

from features.config import Settings
from features.ledger import jobs as store
from features.ledger import open_ledger
from features.ledger.store import now


def settings_for(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def test_the_migration_creates_the_tables_beside_the_forecast_log(tmp_path: Path) -> None:
    engine = open_ledger(settings_for(tmp_path))
    tables = set(inspect(engine).get_table_names())
    assert {"forecasts", "actuals", "batch_jobs", "forecast_answers"} <= tables
    columns = {c["name"] for c in inspect(engine).get_columns("batch_jobs")}
    assert not any("path" in c or "folder" in c for c in columns)  # a job row never holds a server path


def test_queue_order_status_and_expiry(tmp_path: Path) -> None:
    engine = open_ledger(settings_for(tmp_path))
    for job_id in ("a" * 32, "b" * 32, "c" * 32):
        store.create_job(engine, job_id, lang="zh", filename="c.csv", total=3, summary={"rows": 3})
        time.sleep(0.01)
    store.set_job(engine, "b" * 32, status="running", done=1)
    assert [j["id"] for j in store.active_jobs(engine)] == ["b" * 32, "a" * 32, "c" * 32]  # running first
    store.set_job(engine, "a" * 32, status="done", done=3)
    store.set_job(engine, "c" * 32, status="cancelled")
    with engine.begin() as connection:  # "a" finished long ago
        connection.execute(update(store.batch_jobs).where(store.batch_jobs.c.id == "a" * 32)
                           .values(updated_at=now() - timedelta(days=40)))
    assert store.expire_jobs(engine, timedelta(days=30)) == ["a" * 32]
    assert store.get_job(engine, "a" * 32) is None and store.get_job(engine, "b" * 32)["done"] == 1
    assert store.job_ids(engine) == {"b" * 32, "c" * 32}


def test_jobs_are_listed_to_their_owner_only(tmp_path: Path) -> None:
    engine = open_ledger(settings_for(tmp_path))
    store.create_job(engine, "a" * 32, lang="en", filename="a.csv", total=1, summary={}, owner="alice")
    store.create_job(engine, "b" * 32, lang="en", filename="b.csv", total=1, summary={}, owner="bob")
    store.create_job(engine, "c" * 32, lang="en", filename="c.csv", total=1, summary={})  # before owners
    assert [j["id"] for j in store.recent_jobs(engine, owner="alice")] == ["a" * 32]
    assert store.recent_jobs(engine) == [] and store.get_job(engine, "b" * 32)["owner"] == "bob"


def test_answers_are_kept_whole_and_listed_newest_first(tmp_path: Path) -> None:
    engine = open_ledger(settings_for(tmp_path))
    for i in range(3):
        store.write_answers(engine, [{"forecast_id": f"{i:032d}", "created_at": now(), "source": "predict",
                                      "title": f"t{i}", "answer": {"forecast": {"p50": i}}, "owner": "me"}])
        time.sleep(0.01)
    store.write_answers(engine, [{"forecast_id": "8" * 32, "created_at": now(), "source": "predict",
                                  "title": "theirs", "answer": {}, "owner": "someone else"}])
    assert [r["title"] for r in store.recent_answers(engine, 2, owner="me")] == ["t2", "t1"]
    assert store.recent_answers(engine, 10) == []  # an unknown caller lists nobody's answers
    assert store.read_answer(engine, f"{1:032d}")["answer"] == {"forecast": {"p50": 1}}
    assert store.read_answer(engine, "9" * 32) is None


def test_clean_removes_expired_jobs_and_folders_no_job_owns(tmp_path: Path) -> None:
    from serving.jobs import JobRunner

    settings = settings_for(tmp_path)
    runner = JobRunner(settings, lambda: None)
    root = settings.home / "batch_jobs"
    store.create_job(runner.engine, "d" * 32, lang="en", filename="x.csv", total=1, summary={})
    for name in ("d" * 32, "e" * 32, "f" * 32):
        (root / name).mkdir(parents=True)
        (root / name / "candidates.csv").write_text("title\n")
    old = time.time() - 2 * 3600
    os.utime(root / ("e" * 32), (old, old))  # an upload refused by a crash, two hours ago
    runner.clean()
    assert sorted(p.name for p in root.iterdir()) == ["d" * 32, "f" * 32]  # "f" may still be an upload in flight


def test_a_failed_job_names_no_server_path() -> None:
    from serving.jobs import scrub_paths

    text = "FileNotFoundError: [Errno 2] No such file: '/srv/trialcast/.trialcast/batch_jobs/ab12/candidates.csv'"
    assert scrub_paths(text) == "FileNotFoundError: [Errno 2] No such file: '…'"
    assert scrub_paths(r"OSError: C:\Users\me\trialcast\x.csv") == "OSError: …"
    assert scrub_paths("P10/P90 too wide; 1/2 of rows") == "P10/P90 too wide; 1/2 of rows"
