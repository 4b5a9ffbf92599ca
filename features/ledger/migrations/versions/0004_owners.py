"""Who created each batch job and each kept single forecast (issue 14, item 7: jobs tied to their
creator). ``owner`` is a SHA-256 of the caller's identity (the API token's, or the browser's
HttpOnly cookie), never the secret itself; rows from before this revision have none and are shown
to nobody (they expire with the retention).

Revision ID: 0004_owners
Revises: 0003_batch_jobs
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_owners"
down_revision = "0003_batch_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_jobs") as table:
        table.add_column(sa.Column("owner", sa.String(64)))
        table.create_index("ix_batch_jobs_owner", ["owner"])
    with op.batch_alter_table("forecast_answers") as table:
        table.add_column(sa.Column("owner", sa.String(64)))
        table.create_index("ix_forecast_answers_owner", ["owner"])


def downgrade() -> None:
    with op.batch_alter_table("forecast_answers") as table:
        table.drop_index("ix_forecast_answers_owner")
        table.drop_column("owner")
    with op.batch_alter_table("batch_jobs") as table:
        table.drop_index("ix_batch_jobs_owner")
        table.drop_column("owner")
