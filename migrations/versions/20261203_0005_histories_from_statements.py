"""histories are read from statements; rolled-up series keep only their tips

A visible statement is its own series' point, so ``series_points`` held every
statement once more, plus a copy per ancestor: about 3.7 rows per statement,
each with a five-column key, written on every batch and by every rebuild.
Histories are now merged from ``statements`` when they are read (the series
index gains the stance, so probes are index-only), and the write path keeps
only the last point of each rolled-up series of an actor with descendants,
to tell an append from an insertion without a probe per descendant.

The changes feed is a log and is kept as it is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.String(length=128, collation="C")


def upgrade() -> None:
    op.create_table(
        "series_tips",
        sa.Column("topic_id", Id, nullable=False),
        sa.Column("actor_id", Id, nullable=False),
        sa.Column("said_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statement_id", Id, nullable=False),
        sa.Column("stance", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("topic_id", "actor_id", name=op.f("pk_series_tips")),
    )
    op.execute(
        """
        INSERT INTO series_tips (topic_id, actor_id, said_at, statement_id, stance)
        SELECT DISTINCT ON (s.topic_id, l.ancestor_id)
               s.topic_id, l.ancestor_id, s.said_at, s.statement_id, s.stance
          FROM statements s JOIN actor_lineage l ON l.actor_id = s.actor_id
         WHERE s.visible
           AND EXISTS (SELECT 1 FROM actor_lineage d
                        WHERE d.ancestor_id = l.ancestor_id AND d.depth > 0)
         ORDER BY s.topic_id, l.ancestor_id, s.said_at DESC, s.statement_id DESC
        """
    )
    op.drop_index("ix_statements_series", table_name="statements")
    op.create_index(
        "ix_statements_series",
        "statements",
        ["topic_id", "actor_id", "said_at", "statement_id"],
        postgresql_where=sa.text("visible"),
        postgresql_include=["stance"],
    )
    op.drop_table("series_points")


def downgrade() -> None:
    op.create_table(
        "series_points",
        sa.Column("topic_id", Id, nullable=False),
        sa.Column("actor_id", Id, nullable=False),
        sa.Column("rollup", sa.Boolean(), nullable=False),
        sa.Column("said_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statement_id", Id, nullable=False),
        sa.Column("stance", sa.Text(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("previous_statement_id", Id, nullable=True),
        sa.Column("previous_stance", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "topic_id",
            "actor_id",
            "rollup",
            "said_at",
            "statement_id",
            name=op.f("pk_series_points"),
        ),
    )
    op.execute(
        """
        INSERT INTO series_points
        SELECT topic_id, actor_id, rollup, said_at, statement_id, stance,
               CASE WHEN prev IS NULL OR prev = stance THEN 'none'
                    WHEN prev = 'neutral' OR stance = 'neutral' THEN 'shift'
                    ELSE 'flip' END,
               prev_sid, prev
          FROM (SELECT m.*, lag(stance) OVER w AS prev, lag(statement_id) OVER w AS prev_sid
                  FROM (SELECT s.topic_id, l.ancestor_id AS actor_id, r.rollup, s.said_at,
                               s.statement_id, s.stance
                          FROM statements s JOIN actor_lineage l ON l.actor_id = s.actor_id
                         CROSS JOIN (VALUES (false), (true)) AS r(rollup)
                         WHERE s.visible AND (r.rollup OR l.depth = 0)) AS m
                WINDOW w AS (PARTITION BY topic_id, actor_id, rollup
                             ORDER BY said_at, statement_id)) AS ranked
        """
    )
    op.drop_index("ix_statements_series", table_name="statements")
    op.create_index(
        "ix_statements_series",
        "statements",
        ["topic_id", "actor_id", "said_at", "statement_id"],
        postgresql_where=sa.text("visible"),
    )
    op.drop_table("series_tips")
