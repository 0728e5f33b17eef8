"""projection meta, and statements without the recorded digest

``projection_meta`` says when the projection was last rebuilt from ``events``.
``statements.recorded_digest`` goes: a re-recording is now compared with the
stored event it would repeat, so every projection column can be computed in
SQL from ``events`` alone (what ``stanceline rebuild`` does).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 06:22:51.142818
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_projection_meta_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_meta")),
    )
    op.drop_column("statements", "recorded_digest")


def downgrade() -> None:
    op.add_column("statements", sa.Column("recorded_digest", sa.String(64), nullable=True))
    op.drop_table("projection_meta")
