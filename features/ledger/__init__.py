"""After launch: the forecast log (every forecast served), actual sales, the live error per model
version. Serving writes it; the CLI and training read it. SQLite under home by default, any
SQLAlchemy URL by ``Settings.database_url``; the schema is Alembic's, applied on first use."""

from __future__ import annotations

from sqlalchemy import Engine

from features.config import Settings
from features.ledger.store import engine_for


def open_ledger(settings: Settings) -> Engine:
    """The migrated engine of the settings' forecast log."""
    return engine_for(settings.ledger_url)
