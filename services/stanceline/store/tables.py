"""The Postgres schema: the event store, dead letters and the projections.

``events`` is the source of truth. Every other table except
``dead_letters`` is a projection that ``rebuild`` can recreate from
``events`` alone, so projection rows hold no clock values and nothing that
depends on arrival order: only values taken from the events themselves.
Identifiers use the ``C`` collation so Postgres orders them byte-wise,
exactly as the pure fold does in Python.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = sa.String(128, collation="C")
Tz = sa.DateTime(timezone=True)

events = sa.Table(
    "events",
    metadata,
    sa.Column("position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("event_id", sa.String(128, collation="C"), nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("time", Tz, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("envelope", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("statement_id", Id),
    sa.Column("actor_id", Id),
    sa.Column("topic_id", Id),
    sa.Column("stream_entry_id", sa.Text),
    sa.Column("recorded_at", Tz, nullable=False, server_default=sa.func.now()),
    sa.Index("ix_events_statement_id", "statement_id"),
    sa.Index("ix_events_actor_topic", "actor_id", "topic_id", "recorded_at"),
    sa.Index("ix_events_recorded_at", "recorded_at"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("stream", sa.Text),
    sa.Column("stream_entry_id", sa.Text),
    sa.Column("raw", BYTEA, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("field", sa.Text),
    sa.Column("event_id", sa.Text),
    sa.Column("delivery_count", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("first_seen", Tz, nullable=False, server_default=sa.func.now()),
    sa.Column("last_seen", Tz, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("stream", "stream_entry_id", name="uq_dead_letters_stream_entry"),
    sa.Index("ix_dead_letters_reason", "field", "first_seen"),
)

actors = sa.Table(
    "actors",
    metadata,
    sa.Column("actor_id", Id, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text),
    sa.Column("parent_id", Id),
    sa.Column("aliases", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("registered_time", Tz),
    sa.Column("registered_by", Id),
)

actor_lineage = sa.Table(
    "actor_lineage",
    metadata,
    sa.Column("actor_id", Id, primary_key=True),
    sa.Column("ancestor_id", Id, primary_key=True),
    sa.Column("depth", sa.Integer, nullable=False),
    sa.Index("ix_actor_lineage_ancestor", "ancestor_id", "actor_id"),
)
"""Closure of the hierarchy: each actor with itself (depth 0) and every ancestor."""

topics = sa.Table(
    "topics",
    metadata,
    sa.Column("topic_id", Id, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("kind", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("registered_time", Tz),
    sa.Column("registered_by", Id),
)


def _body_columns(prefix: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"{prefix}actor_id", Id),
        sa.Column(f"{prefix}topic_id", Id),
        sa.Column(f"{prefix}said_at", Tz),
        sa.Column(f"{prefix}stance", sa.Text),
        sa.Column(f"{prefix}score", sa.Float),
        sa.Column(f"{prefix}confidence", sa.Float),
        sa.Column(f"{prefix}speaker_name", sa.Text),
        sa.Column(f"{prefix}speaker_role", sa.Text),
        sa.Column(f"{prefix}quote", sa.Text),
        sa.Column(f"{prefix}source_url", sa.Text),
        sa.Column(f"{prefix}published_at", Tz),
        sa.Column(f"{prefix}speech_act", sa.Text),
        sa.Column(f"{prefix}certainty", sa.Text),
    ]


statements = sa.Table(
    "statements",
    metadata,
    sa.Column("statement_id", Id, primary_key=True),
    # The statement as it reads now (latest correction, else as recorded) ...
    *_body_columns(""),
    # ... and which recording it was (of several identical ones, the smallest event id).
    sa.Column("recorded_by", Id),
    sa.Column("corrected_time", Tz),
    sa.Column("corrected_by", Id),
    sa.Column("retracted_time", Tz),
    sa.Column("retracted_by", Id),
    sa.Column("retraction_reason", sa.Text),
    sa.Column(
        "visible",
        sa.Boolean,
        sa.Computed("recorded_by IS NOT NULL AND retracted_by IS NULL", persisted=True),
    ),
    sa.Index(
        "ix_statements_series",
        "topic_id",
        "actor_id",
        "said_at",
        "statement_id",
        postgresql_where=sa.text("visible"),
        # Window probes and current stances need only the stance: index-only scans.
        postgresql_include=["stance"],
    ),
    # Whether an actor has own points: a visible statement is one (series.any_points_below).
    sa.Index("ix_statements_actor", "actor_id", postgresql_where=sa.text("visible")),
)

series_tips = sa.Table(
    "series_tips",
    metadata,
    sa.Column("topic_id", Id, primary_key=True),
    sa.Column("actor_id", Id, primary_key=True),
    sa.Column("said_at", Tz, nullable=False),
    sa.Column("statement_id", Id, nullable=False),
    sa.Column("stance", sa.Text, nullable=False),
)
"""The last point of each rolled-up series of an actor that has descendants.

Histories are not stored: a visible statement is its own series' point, and a
rolled-up series is merged from the descendants' statements when it is read.
The write path still needs each touched series' last point, to know whether a
batch only appends to it; for an own series that is one index probe on
``statements``, for a merged one it would be a probe per descendant, so the
tip is kept here. A leaf's rolled-up series is its own series and has no row."""

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "xact_id",
        sa.BigInteger,
        nullable=False,
        server_default=sa.text("(pg_current_xact_id())::text::bigint"),
    ),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("topic_id", Id, nullable=False),
    sa.Column("actor_id", Id, nullable=False),
    sa.Column("rollup", sa.Boolean, nullable=False),
    sa.Column("said_at", Tz, nullable=False),
    sa.Column("statement_id", Id, nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("stance", sa.Text, nullable=False),
    sa.Column("previous_statement_id", Id),
    sa.Column("previous_stance", sa.Text),
    sa.Column("recorded_at", Tz, nullable=False, server_default=sa.func.now()),
    sa.Index("ix_changes_feed", "xact_id", "id"),
)
"""The changes feed: every change point that appeared (``added``) or went away
(``withdrawn``), in the order it became known. A log, not a projection: its
order depends on arrival, so it is kept out of projection comparisons.
``xact_id`` is the writing transaction's id; readers only go up to the oldest
transaction still in flight, so a late commit can never be skipped."""

projection_meta = sa.Table(
    "projection_meta",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rebuilt_at", Tz, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)
"""When the projection was last rebuilt from ``events`` (one row, or none: never)."""

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("actors", ARRAY(sa.Text), nullable=False),
    sa.Column("topics", ARRAY(sa.Text), nullable=False),
    sa.Column("kinds", ARRAY(sa.Text), nullable=False),
    sa.Column("receives", ARRAY(sa.Text), nullable=False),
    sa.Column("include_descendants", sa.Boolean, nullable=False),
    sa.Column("created_at", Tz, nullable=False, server_default=sa.func.now()),
    sa.Column("failing_since", Tz),
    sa.Column("disabled_at", Tz),
    sa.Column("disabled_reason", sa.Text),
)
"""Who is told about which change points (flip alerts). ``receives`` is the set of
``status:change`` pairs the subscription's ``kinds`` select, computed once by
``domain.webhooks.receives`` so the outbox's SQL never restates that rule."""

webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "subscription_id",
        Id,
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("change_id", sa.BigInteger, nullable=False),
    sa.Column("topic_id", Id, nullable=False),
    sa.Column("actor_id", Id, nullable=False),
    sa.Column("rollup", sa.Boolean, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'pending'")),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", Tz, nullable=False, server_default=sa.func.now()),
    sa.Column("created_at", Tz, nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", Tz),
    sa.UniqueConstraint("subscription_id", "change_id", name="uq_webhook_outbox_change"),
    sa.Index(
        "ix_webhook_outbox_due",
        "next_attempt_at",
        "id",
        postgresql_where=sa.text("state = 'pending'"),
    ),
    sa.Index(
        "ix_webhook_outbox_series",
        "subscription_id",
        "topic_id",
        "actor_id",
        "rollup",
        "sequence",
    ),
    # A series' pending messages alone: the claim's "no earlier one pending" is one probe.
    sa.Index(
        "ix_webhook_outbox_pending_series",
        "subscription_id",
        "topic_id",
        "actor_id",
        "rollup",
        "sequence",
        postgresql_where=sa.text("state = 'pending'"),
    ),
)
"""Messages to send: one per (subscription, change point), written in the transaction
that wrote the change point (``store.outbox.fill``), delivered by the dispatcher."""

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "outbox_id",
        sa.BigInteger,
        sa.ForeignKey("webhook_outbox.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("attempted_at", Tz, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_webhook_attempts_outbox", "outbox_id", "id"),
)
"""Each try of each message: the delivery log."""

PROJECTION_TABLES = (actors, actor_lineage, topics, statements, series_tips)
