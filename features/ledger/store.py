"""The forecast log's database: an engine per URL, the schema brought to Alembic's head on first use,
and the reads and writes of forecasts and actual sales (SQLAlchemy Core, any SQLAlchemy URL)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url

from features.ledger.tables import actuals, forecasts, pictures

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there): Alembic driven from code,
    so the package carries its migrations and nobody needs an alembic.ini."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL and a busy timeout: the service writes while the CLI reads, from other processes."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def engine_for(url: str) -> Engine:
    """One migrated engine per URL and process (SQLite: its folder is created)."""
    with _LOCK:
        if url in _ENGINES:
            return _ENGINES[url]
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            migrate(engine)
        except Exception:  # noqa: BLE001  two processes migrating the same new database at once: the loser retries
            migrate(engine)
        _ENGINES[url] = engine
        return engine


def _insert(connection: Connection, table: Any) -> Any:
    """The dialect's INSERT that knows ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    name = connection.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise ValueError(f"the forecast log supports SQLite and PostgreSQL, not {name}")
    return insert(table)


def upsert(connection: Connection, table: Any, rows: Sequence[dict[str, Any]], keys: list[str],
           update: list[str]) -> None:
    """Insert rows, replacing the ``update`` columns of a row whose ``keys`` exist (SQLite and
    PostgreSQL ``ON CONFLICT DO UPDATE``); a row sent again with the same values changes nothing."""
    if not rows:
        return
    statement = _insert(connection, table)
    changed = statement.excluded[update[0]] != table.c[update[0]]
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={c: statement.excluded[c] for c in [*update, "received_at"]}, where=changed)
    connection.execute(statement, list(rows))


def replace(connection: Connection, table: Any, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert rows; a row whose ``key`` is already on record replaces that row, every column
    (SQLite and PostgreSQL ``ON CONFLICT DO UPDATE``): writing a row again never adds one."""
    if not rows:
        return
    statement = _insert(connection, table)
    columns = {c.name: statement.excluded[c.name] for c in table.columns if c.name != key}
    connection.execute(statement.on_conflict_do_update(index_elements=[key], set_=columns), list(rows))


def now() -> datetime:
    return datetime.now(UTC)


def write_forecasts(engine: Engine, rows: Iterable[dict[str, Any]], images: Iterable[bytes | None] = ()) -> None:
    """Write forecast rows keyed by their ids (made by the caller, so the answer can carry them) and
    keep their pictures, once per content hash, in the same transaction: a forecast on record always
    has its picture, which is what lets a launched SKU become training history (features.ledger.history).

    A row whose id is already on record replaces that row instead of adding one: a batch chunk
    scored again after a kill (its forecasts logged, its part file not yet written) carries the same
    ids (``serving.batch``), so the log holds each forecast once, as its scores file has it."""
    rows = list(rows)
    if not rows:
        return
    stamp = now()
    kept = {hashlib.sha256(b).hexdigest(): b for b in images if b}
    with engine.begin() as connection:
        replace(connection, forecasts, rows, "id")
        if kept:
            statement = _insert(connection, pictures).on_conflict_do_nothing(index_elements=["sha256"])
            connection.execute(statement, [{"sha256": k, "data": v, "created_at": stamp} for k, v in kept.items()])


def read_pictures(engine: Engine, hashes: set[str]) -> dict[str, bytes]:
    """The kept pictures with one of ``hashes`` (content hash -> bytes)."""
    if not hashes:
        return {}
    with engine.connect() as connection:
        found = connection.execute(select(pictures.c.sha256, pictures.c.data).where(pictures.c.sha256.in_(sorted(hashes))))
        return {str(k): bytes(v) for k, v in found}


def write_actuals(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert daily actuals on (subject, date): a day sent again replaces that day."""
    stamp = now()
    with engine.begin() as connection:
        upsert(connection, actuals, [{**r, "received_at": stamp} for r in rows], ["subject", "date"], ["units"])


def known(engine: Engine, column: str, values: set[str]) -> set[str]:
    """Which of ``values`` appear as forecasts.``column`` (``id`` or ``sku_id``)."""
    if not values:
        return set()
    col = forecasts.c[column]
    with engine.connect() as connection:
        found = connection.execute(select(col).where(col.in_(sorted(values))).distinct()).scalars()
        return {str(v) for v in found}


def read_actuals(engine: Engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(select(actuals)).mappings().all(),
                            columns=[c.name for c in actuals.columns])


def read_forecasts(engine: Engine, ids: set[str], skus: set[str], version: str | None = None) -> pd.DataFrame:
    """Forecasts with one of ``ids`` or of one of ``skus`` (optionally of one model version)."""
    columns = [c.name for c in forecasts.columns]
    if not ids and not skus:
        return pd.DataFrame(columns=columns)
    query = select(forecasts).where(forecasts.c.id.in_(sorted(ids)) | forecasts.c.sku_id.in_(sorted(skus)))
    if version is not None:
        query = query.where(forecasts.c.model_version == version)
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=columns)


def forecast_by_id(engine: Engine, forecast_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(forecasts).where(forecasts.c.id == forecast_id)).mappings().first()
        return dict(row) if row else None
