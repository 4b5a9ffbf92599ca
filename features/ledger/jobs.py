"""Batch jobs of the web page and the answers behind single forecasts, in the forecast log's
database (a table module of its own beside ``tables.py``; migration ``0003_batch_jobs``).

A job row is the whole truth about a job: the service that restarts (or was killed) reads its
queue back from here and resumes each unfinished job from its finished chunks (``serving.batch``).
No row holds a server path: the files of job ``id`` live in ``<home>/batch_jobs/<id>/``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    delete,
    select,
    update,
)

from features.ledger.store import now, replace
from features.ledger.tables import metadata

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")

batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # queued, running, done, failed, cancelled
    Column("lang", String(8), nullable=False),
    Column("filename", String(255)),  # the name the user's file had (no folder)
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("summary", JSON),  # counts by decision, scored / failed, how the file was read
    Column("error", JSON),  # {"code", "params"} when the job failed
    Column("cancel", Integer, nullable=False, default=0),  # 1: asked to stop
    Column("owner", String(64)),  # SHA-256 of who created it (migration 0004_owners); None: nobody's
    Index("ix_batch_jobs_status", "status"),
    Index("ix_batch_jobs_owner", "owner"),
    Index("ix_batch_jobs_created", "created_at"),
)

# The full answer of each single forecast (what the page shows), so a result can be reopened.
forecast_answers = Table(
    "forecast_answers",
    metadata,
    Column("forecast_id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False),  # predict, predict_batch, batch, score
    Column("title", String(200)),
    Column("answer", JSON, nullable=False),
    Column("owner", String(64)),  # SHA-256 of who asked (migration 0004_owners)
    Index("ix_forecast_answers_created", "created_at"),
    Index("ix_forecast_answers_owner", "owner"),
)


def create_job(engine: Engine, job_id: str, *, lang: str, filename: str | None, total: int,
               summary: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    stamp = now()
    row = {"id": job_id, "created_at": stamp, "updated_at": stamp, "status": "queued", "lang": lang,
           "filename": filename, "total": total, "done": 0, "summary": summary, "error": None, "cancel": 0,
           "owner": owner}
    with engine.begin() as connection:
        connection.execute(batch_jobs.insert(), [row])
    return row


def get_job(engine: Engine, job_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(batch_jobs).where(batch_jobs.c.id == job_id)).mappings().first()
        return dict(row) if row else None


def set_job(engine: Engine, job_id: str, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(update(batch_jobs).where(batch_jobs.c.id == job_id).values(updated_at=now(), **values))


def active_jobs(engine: Engine) -> list[dict[str, Any]]:
    """Queued and running jobs, oldest first (after a restart, the running ones are resumed first)."""
    query = select(batch_jobs).where(batch_jobs.c.status.in_(ACTIVE)).order_by(
        (batch_jobs.c.status != "running"), batch_jobs.c.created_at)
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


def recent_jobs(engine: Engine, limit: int = 50, owner: str | None = None) -> list[dict[str, Any]]:
    """The newest jobs of ``owner`` (None: an unknown caller, who lists nothing)."""
    if owner is None:
        return []
    query = select(batch_jobs).where(batch_jobs.c.owner == owner).order_by(batch_jobs.c.created_at.desc()).limit(limit)
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


def expire_jobs(engine: Engine, older_than: timedelta) -> list[str]:
    """Delete finished jobs last touched before ``older_than`` ago; their ids (to remove their files)."""
    cutoff: datetime = now() - older_than
    where = batch_jobs.c.status.in_(FINISHED) & (batch_jobs.c.updated_at < cutoff)
    with engine.begin() as connection:
        ids = [r for r in connection.execute(select(batch_jobs.c.id).where(where)).scalars()]
        connection.execute(delete(batch_jobs).where(batch_jobs.c.id.in_(ids)))
    return ids


def job_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(batch_jobs.c.id)).scalars())


def write_answers(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Keep answers by forecast id; an answer written again under its id replaces the kept one (the
    forecast log's rule, ``features.ledger.store.write_forecasts``), never fails on it."""
    if rows:
        with engine.begin() as connection:
            replace(connection, forecast_answers, rows, "forecast_id")


def read_answer(engine: Engine, forecast_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(forecast_answers).where(
            forecast_answers.c.forecast_id == forecast_id)).mappings().first()
        return dict(row) if row else None


def recent_answers(engine: Engine, limit: int = 50, sources: tuple[str, ...] = ("predict",),
                   owner: str | None = None) -> list[dict[str, Any]]:
    """The newest kept answers of ``owner`` (None: an unknown caller, who lists nothing)."""
    if owner is None:
        return []
    query = (select(forecast_answers.c.forecast_id, forecast_answers.c.created_at, forecast_answers.c.title,
                    forecast_answers.c.source, forecast_answers.c.answer)
             .where(forecast_answers.c.source.in_(sources), forecast_answers.c.owner == owner)
             .order_by(forecast_answers.c.created_at.desc()).limit(limit))
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]
