"""Batch jobs of the web page, and the full answers behind single forecasts (features/ledger/jobs.py).

Revision ID: 0003_batch_jobs
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_batch_jobs"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("summary", sa.JSON),
        sa.Column("error", sa.JSON),
        sa.Column("cancel", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_batch_jobs_status", "batch_jobs", ["status"])
    op.create_index("ix_batch_jobs_created", "batch_jobs", ["created_at"])
    op.create_table(
        "forecast_answers",
        sa.Column("forecast_id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("answer", sa.JSON, nullable=False),
    )
    op.create_index("ix_forecast_answers_created", "forecast_answers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_forecast_answers_created", "forecast_answers")
    op.drop_table("forecast_answers")
    op.drop_index("ix_batch_jobs_created", "batch_jobs")
    op.drop_index("ix_batch_jobs_status", "batch_jobs")
    op.drop_table("batch_jobs")
