"""the actor index moves from series points to visible statements

``ix_series_points_actor`` served one question, whether an actor that moved
in the hierarchy has points below it, and every read goes by topic first.
A visible statement is exactly an own point, so the question is asked of
``statements``, a quarter of the rows, and every point written (by the
projector and by a rebuild) maintains one index fewer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_statements_actor",
        "statements",
        ["actor_id"],
        postgresql_where=sa.text("visible"),
    )
    op.drop_index("ix_series_points_actor", table_name="series_points")


def downgrade() -> None:
    op.create_index(
        "ix_series_points_actor",
        "series_points",
        ["actor_id", "rollup", "topic_id", "said_at"],
    )
    op.drop_index("ix_statements_actor", table_name="statements")
