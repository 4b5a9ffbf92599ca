"""Alembic environment, driven from code (``features.ledger.store.migrate``): the connection comes in
``config.attributes["connection"]``; there is no alembic.ini and no logging set-up here."""

from __future__ import annotations

from alembic import context

from features.ledger.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
