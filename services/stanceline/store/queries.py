"""Read queries for the read model. They take a ``ReadConnection`` only."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa

from stanceline.store.arrays import any_of
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


_BOTH_EXIST = sa.select(
    sa.exists().where(actors.c.actor_id == sa.bindparam("actor_id")),
    sa.exists().where(topics.c.topic_id == sa.bindparam("topic_id")),
)


async def actor_and_topic_exist(
    conn: ReadConnection, actor_id: str, topic_id: str
) -> tuple[bool, bool]:
    """Both checks in one round trip, for the routes that name an actor and a topic."""
    found = await conn.execute(_BOTH_EXIST, {"actor_id": actor_id, "topic_id": topic_id})
    actor_found, topic_found = tuple(found.one())
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
    query = _history_query(as_of is not None, after is not None, limit is not None)
    params: dict[str, Any] = {
        "actor_id": actor_id,
        "topic_id": topic_id,
        "rollup": include_descendants,
        "as_of": as_of,
        "limit": limit,
    }
    if after is not None:
        params |= {"after_said_at": after[0], "after_statement_id": after[1]}
    return list((await conn.execute(query, params)).all())


# The read queries are built once per shape, with bind parameters, and reused: building a
# SQLAlchemy statement costs more Python than the rest of a request put together.


@cache
def _history_query(as_of: bool, after: bool, limit: bool) -> sa.Select[Any]:
    p = series_points.c
    query = (
        sa.select(
            p.change,
            p.previous_statement_id,
            *[c for c in statements.columns if c.name not in ("visible",)],
        )
        .join(statements, statements.c.statement_id == p.statement_id)
        .where(
            p.topic_id == sa.bindparam("topic_id"),
            p.actor_id == sa.bindparam("actor_id"),
            p.rollup == sa.bindparam("rollup"),
        )
        .order_by(p.said_at, p.statement_id)
    )
    if as_of:
        query = query.where(p.said_at <= sa.bindparam("as_of"))
    if after:
        query = query.where(
            sa.tuple_(p.said_at, p.statement_id)
            > sa.tuple_(sa.bindparam("after_said_at"), sa.bindparam("after_statement_id"))
        )
    if limit:
        query = query.limit(sa.bindparam("limit"))
    return query


async def current_stances(
    conn: ReadConnection,
    *,
    topic_ids: Collection[str] | None = None,
    actor_ids: Collection[str] | None = None,
    below: str | None = None,
    rollup: bool = False,
    as_of: datetime | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The last point of each (actor, topic) series in scope, in (actor, topic) order.

    Actors in scope: ``actor_ids``, or the actor ``below`` names and its descendants, or
    else every actor; topics: ``topic_ids``, or else every topic. One backward index
    probe per candidate series (a lateral ``LIMIT 1``), so the cost follows the number
    of series asked about, not the number of points they hold, as ``DISTINCT ON`` would.
    """
    actor_scope: Scope = "listed" if actor_ids is not None else "below" if below else "all"
    query = _current_query(
        actor_scope,
        "listed" if topic_ids is not None else "all",
        as_of is not None,
        after is not None,
        limit is not None,
    )
    params: dict[str, Any] = {
        "actor_ids": sorted(actor_ids or ()),
        "ancestor_id": below,
        "topic_ids": sorted(topic_ids or ()),
        "rollup": rollup,
        "as_of": as_of,
        "limit": limit,
    }
    if after is not None:
        params |= {"after_actor_id": after[0], "after_topic_id": after[1]}
    return list((await conn.execute(query, params)).all())


Scope = Literal["listed", "below", "all"]


@cache
def _current_query(
    actor_scope: Scope, topic_scope: Scope, as_of: bool, after: bool, limit: bool
) -> sa.Select[Any]:
    actor_set = _id_set(actors.c.actor_id, "actor_ids", actor_scope)
    topic_set = _id_set(topics.c.topic_id, "topic_ids", topic_scope)
    p = series_points.c
    last = (
        sa.select(p.stance, p.said_at, p.statement_id)
        .where(
            p.topic_id == topic_set.c.topic_id,
            p.actor_id == actor_set.c.actor_id,
            p.rollup == sa.bindparam("rollup"),
        )
        .order_by(p.said_at.desc(), p.statement_id.desc())
        .limit(1)
    )
    if as_of:
        last = last.where(p.said_at <= sa.bindparam("as_of"))
    point = last.lateral("point")
    query = (
        sa.select(
            actor_set.c.actor_id,
            topic_set.c.topic_id,
            point.c.stance,
            statements.c.score,
            point.c.said_at,
            point.c.statement_id,
            statements.c.actor_id.label("said_by"),
        )
        .select_from(
            actor_set.join(topic_set, sa.true())
            .join(point, sa.true())
            .join(statements, statements.c.statement_id == point.c.statement_id)
        )
        .order_by(actor_set.c.actor_id, topic_set.c.topic_id)
    )
    if after:
        query = query.where(
            sa.tuple_(actor_set.c.actor_id, topic_set.c.topic_id)
            > sa.tuple_(sa.bindparam("after_actor_id"), sa.bindparam("after_topic_id"))
        )
    if limit:
        query = query.limit(sa.bindparam("limit"))
    return query


def _id_set(column: sa.Column[str], listed: str, scope: Scope) -> sa.Subquery:
    """The ids in scope as a one-column subquery named like ``column``."""
    if scope == "below":
        lineage = actor_lineage.c
        below = sa.select(lineage.actor_id).where(
            lineage.ancestor_id == sa.bindparam("ancestor_id")
        )
        return below.subquery()
    query = sa.select(column)
    if scope == "listed":
        query = query.where(column == any_of(listed))
    return query.subquery()


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
