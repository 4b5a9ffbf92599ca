"""The forecast log's tables (SQLAlchemy Core). Alembic migrations (``migrations/``) create and
change them; this module is what the code reads and writes through, and must match the last one."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

forecasts = Table(
    "forecasts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model_version", String(64)),
    Column("sku_id", String(200)),
    Column("image_sha256", String(64)),
    Column("fields", JSON, nullable=False),  # the record as validated (title, prices, category, ...)
    Column("launch_date", Date),  # the one the model used (given or assumed)
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column("curve", JSON, nullable=False),  # 7 daily units, summing to P50
    Column("decision", String(16), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("message", String),
    Column("break_even_units", Float),
    Column("quantity", JSON),  # the newsvendor quantity beside the decision (features.quantity)
    Index("ix_forecasts_sku", "sku_id"),
    Index("ix_forecasts_version", "model_version"),
)

# One row per (subject, day): a subject is "forecast:<id>" or "sku:<id>", so sending a day again
# replaces it (upsert on the unique key) and never adds to it.
actuals = Table(
    "actuals",
    metadata,
    Column("subject", String(220), nullable=False),
    Column("sku_id", String(200)),
    Column("forecast_id", String(32)),
    Column("date", Date, nullable=False),
    Column("units", Float, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("subject", "date", name="uq_actuals_subject_date"),
    Index("ix_actuals_sku", "sku_id"),
)

# The picture of every forecast SKU, once per content hash (forecasts.image_sha256 points here): a
# launched SKU goes back into the training history with the picture it was forecast from.
pictures = Table(
    "pictures",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
