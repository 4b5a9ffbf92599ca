"""The forecast log and actual sales.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("sku_id", sa.String(200)),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("launch_date", sa.Date),
        sa.Column("p10", sa.Float, nullable=False),
        sa.Column("p50", sa.Float, nullable=False),
        sa.Column("p90", sa.Float, nullable=False),
        sa.Column("curve", sa.JSON, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("message", sa.String),
        sa.Column("break_even_units", sa.Float),
        sa.Column("quantity", sa.JSON),
    )
    op.create_index("ix_forecasts_sku", "forecasts", ["sku_id"])
    op.create_index("ix_forecasts_version", "forecasts", ["model_version"])
    op.create_table(
        "actuals",
        sa.Column("subject", sa.String(220), nullable=False),
        sa.Column("sku_id", sa.String(200)),
        sa.Column("forecast_id", sa.String(32)),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("units", sa.Float, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subject", "date", name="uq_actuals_subject_date"),
    )
    op.create_index("ix_actuals_sku", "actuals", ["sku_id"])


def downgrade() -> None:
    op.drop_table("actuals")
    op.drop_table("forecasts")
