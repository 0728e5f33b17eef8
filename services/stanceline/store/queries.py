"""Read queries for the read model. They take a ``ReadConnection`` only."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on

from stanceline.store.db import ReadConnection
from stanceline.store.tables import (
    actor_lineage,
    actors,
    changes,
    series_points,
    statements,
    topics,
)


async def actor_page(conn: ReadConnection, after: str | None, limit: int) -> list[Any]:
    query = sa.select(actors).order_by(actors.c.actor_id).limit(limit)
    if after is not None:
        query = query.where(actors.c.actor_id > after)
    return list((await conn.execute(query)).all())


async def topic_page(conn: ReadConnection, after: str | None, limit: int) -> list[Any]:
    query = sa.select(topics).order_by(topics.c.topic_id).limit(limit)
    if after is not None:
        query = query.where(topics.c.topic_id > after)
    return list((await conn.execute(query)).all())


async def actor_exists(conn: ReadConnection, actor_id: str) -> bool:
    query = sa.select(sa.exists().where(actors.c.actor_id == actor_id))
    return bool(await conn.scalar(query))


async def topic_exists(conn: ReadConnection, topic_id: str) -> bool:
    query = sa.select(sa.exists().where(topics.c.topic_id == topic_id))
    return bool(await conn.scalar(query))


async def actor_and_topic_exist(
    conn: ReadConnection, actor_id: str, topic_id: str
) -> tuple[bool, bool]:
    """Both checks in one round trip, for the routes that name an actor and a topic."""
    query = sa.select(
        sa.exists().where(actors.c.actor_id == actor_id),
        sa.exists().where(topics.c.topic_id == topic_id),
    )
    actor_found, topic_found = tuple((await conn.execute(query)).one())
    return bool(actor_found), bool(topic_found)


async def history(
    conn: ReadConnection,
    actor_id: str,
    topic_id: str,
    *,
    include_descendants: bool,
    as_of: datetime | None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The series' points in timeline order, each joined to its statement as it reads now."""
    query = (
        sa.select(
            series_points.c.change,
            series_points.c.previous_statement_id,
            *[c for c in statements.columns if c.name not in ("visible",)],
        )
        .join(statements, statements.c.statement_id == series_points.c.statement_id)
        .where(
            series_points.c.topic_id == topic_id,
            series_points.c.actor_id == actor_id,
            series_points.c.rollup == include_descendants,
        )
        .order_by(series_points.c.said_at, series_points.c.statement_id)
        .limit(limit)
    )
    if as_of is not None:
        query = query.where(series_points.c.said_at <= as_of)
    if after is not None:
        query = query.where(
            sa.tuple_(series_points.c.said_at, series_points.c.statement_id) > sa.tuple_(*after)
        )
    return list((await conn.execute(query)).all())


async def current_stances(
    conn: ReadConnection,
    *,
    topic_ids: Collection[str] | None = None,
    actor_ids: Collection[str] | sa.Select[Any] | None = None,
    rollup: bool = False,
    as_of: datetime | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The last point of each (actor, topic) series in scope: ``DISTINCT ON`` over the series."""
    p = series_points.c
    query = (
        sa.select(
            p.actor_id,
            p.topic_id,
            p.stance,
            statements.c.score,
            p.said_at,
            p.statement_id,
            statements.c.actor_id.label("said_by"),
        )
        .join(statements, statements.c.statement_id == p.statement_id)
        .where(p.rollup == rollup)
        .ext(distinct_on(p.actor_id, p.topic_id))
        .order_by(p.actor_id, p.topic_id, p.said_at.desc(), p.statement_id.desc())
        .limit(limit)
    )
    if topic_ids is not None:
        query = query.where(p.topic_id.in_(topic_ids))
    if actor_ids is not None:
        query = query.where(p.actor_id.in_(actor_ids))
    if as_of is not None:
        query = query.where(p.said_at <= as_of)
    if after is not None:
        query = query.where(sa.tuple_(p.actor_id, p.topic_id) > sa.tuple_(*after))
    return list((await conn.execute(query)).all())


def members_of(actor_id: str) -> sa.Select[Any]:
    """The actor and its descendants, as a subquery."""
    return sa.select(actor_lineage.c.actor_id).where(actor_lineage.c.ancestor_id == actor_id)


async def timeline_buckets(
    conn: ReadConnection,
    topic_id: str,
    *,
    actor_ids: Collection[str] | None,
    rollup: bool,
    unit: str,
    as_of: datetime | None,
) -> list[Any]:
    p = series_points.c
    # Calendar buckets in UTC, returned as instants (timestamptz) again.
    utc = sa.func.timezone("UTC", p.said_at)
    bucket = sa.func.timezone("UTC", sa.func.date_trunc(unit, utc)).label("bucket")
    weight = sa.func.sum(statements.c.confidence)
    query = (
        sa.select(
            p.actor_id,
            bucket,
            (
                sa.func.sum(statements.c.score * statements.c.confidence)
                / sa.func.nullif(weight, 0)
            ).label("mean_score"),
            sa.func.count().label("count"),
            sa.literal_column(
                "(array_agg(series_points.stance ORDER BY series_points.said_at DESC,"
                " series_points.statement_id DESC))[1]"
            ).label("last_stance"),
            sa.literal_column(
                "(array_agg(series_points.statement_id ORDER BY series_points.said_at DESC,"
                " series_points.statement_id DESC))[1]"
            ).label("last_statement_id"),
        )
        .join(statements, statements.c.statement_id == p.statement_id)
        .where(p.topic_id == topic_id, p.rollup == rollup)
        .group_by(p.actor_id, bucket)
        .order_by(p.actor_id, bucket)
    )
    if actor_ids is not None:
        query = query.where(p.actor_id.in_(actor_ids))
    if as_of is not None:
        query = query.where(p.said_at <= as_of)
    return list((await conn.execute(query)).all())


_FEED_HORIZON: sa.ColumnElement[int] = sa.literal_column(
    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
)


async def changes_page(
    conn: ReadConnection,
    *,
    after: tuple[int, int] | None,
    actor_id: str | None,
    topic_id: str | None,
    kind: str | None,
    rollup: bool,
    as_of: datetime | None,
    known_at: datetime | None,
    limit: int,
) -> list[Any]:
    """Feed entries after the cursor, only from transactions that can no longer commit
    anything older: every transaction below the snapshot's xmin has ended."""
    c = changes.c
    query = (
        sa.select(changes)
        .where(c.xact_id < _FEED_HORIZON, c.rollup == rollup)
        .order_by(c.xact_id, c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(sa.tuple_(c.xact_id, c.id) > sa.tuple_(*after))
    if actor_id is not None:
        query = query.where(c.actor_id == actor_id)
    if topic_id is not None:
        query = query.where(c.topic_id == topic_id)
    if kind is not None:
        query = query.where(c.change == kind)
    if as_of is not None:
        query = query.where(c.said_at <= as_of)
    if known_at is not None:
        query = query.where(c.recorded_at <= known_at)
    return list((await conn.execute(query)).all())


async def statement_row(conn: ReadConnection, statement_id: str) -> Any | None:
    """The statement as it reads now, with its point in its own series if it has one."""
    p = series_points.c
    own = sa.and_(
        p.statement_id == statements.c.statement_id,
        p.actor_id == statements.c.actor_id,
        p.topic_id == statements.c.topic_id,
        p.rollup.is_(False),
    )
    query = (
        sa.select(statements, p.change, p.previous_statement_id)
        .outerjoin(series_points, own)
        .where(statements.c.statement_id == statement_id)
    )
    return (await conn.execute(query)).first()
