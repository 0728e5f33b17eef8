"""flip alerts: find a series' earliest pending message without reading its delivered past

The dispatcher claims only the head of each series (no earlier message of that
subscription and series still pending). Answered from the series index, that check
read every message the series ever had before the candidate, delivered ones
included, so claims slowed as deliveries accumulated (137 deliveries/s with a
30,000-message backlog). A partial index over pending messages answers it with one
probe.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_outbox_pending_series",
        "webhook_outbox",
        ["subscription_id", "topic_id", "actor_id", "rollup", "sequence"],
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_pending_series", table_name="webhook_outbox")
