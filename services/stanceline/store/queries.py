"""Read queries for the read model. They take a ``ReadConnection`` only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from stanceline.store.db import ReadConnection
from stanceline.store.tables import actor_lineage, actors, series_points, statements, topics


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


async def history(
    conn: ReadConnection,
    actor_id: str,
    topic_id: str,
    *,
    include_descendants: bool,
    as_of: datetime | None,
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
    )
    if as_of is not None:
        query = query.where(series_points.c.said_at <= as_of)
    return list((await conn.execute(query)).all())


def _current_per_actor(topic_id: str, as_of: datetime | None) -> sa.Select[Any]:
    """Each actor's own last point on the topic: ``DISTINCT ON`` over the own series."""
    query = (
        sa.select(
            series_points.c.actor_id,
            series_points.c.stance,
            statements.c.score,
            series_points.c.said_at,
            series_points.c.statement_id,
        )
        .join(statements, statements.c.statement_id == series_points.c.statement_id)
        .where(series_points.c.topic_id == topic_id, series_points.c.rollup.is_(False))
        .distinct(series_points.c.actor_id)
        .order_by(
            series_points.c.actor_id,
            series_points.c.said_at.desc(),
            series_points.c.statement_id.desc(),
        )
    )
    if as_of is not None:
        query = query.where(series_points.c.said_at <= as_of)
    return query


async def topic_stances(conn: ReadConnection, topic_id: str, as_of: datetime | None) -> list[Any]:
    return list((await conn.execute(_current_per_actor(topic_id, as_of))).all())


async def tree_stances(
    conn: ReadConnection, actor_id: str, topic_id: str, as_of: datetime | None
) -> list[Any]:
    """Current own stances of the actor and each of its descendants (for *contested*)."""
    members = sa.select(actor_lineage.c.actor_id).where(actor_lineage.c.ancestor_id == actor_id)
    query = _current_per_actor(topic_id, as_of).where(series_points.c.actor_id.in_(members))
    return list((await conn.execute(query)).all())
