"""What was known at a moment K: the events recorded by then, folded by the domain.

The projection tables hold only the present. A read with ``known_at`` instead
loads the events that bear on the question (the registrations, and every event
of each statement that touched the asked actors and topics) with
``recorded_at <= K`` from ``events``, and folds them with the same pure fold the
projection is tested against. Statements retracted or corrected after K show
as they were then.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from stanceline.contract import (
    ACTOR_REGISTERED,
    EVENT_ADAPTER,
    TOPIC_REGISTERED,
    Event,
)
from stanceline.domain.catalogue import descendants
from stanceline.domain.projection import Projection
from stanceline.store.db import ReadConnection
from stanceline.store.tables import events
from stanceline.store.translate import fact_of


def rehydrate(row: Any) -> Event:
    """A stored row back into the contract event it was parsed from."""
    document = {
        **row.envelope,
        "id": row.event_id,
        "source": row.source,
        "type": row.type,
        "time": row.time.isoformat(),
        "data": row.data,
    }
    return EVENT_ADAPTER.validate_python(document)


_HORIZON = sa.text(
    """
    SELECT least(now(), min(xact_start)) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
    """
)


async def settled(conn: ReadConnection, known_at: datetime) -> datetime:
    """The latest moment not after ``known_at`` whose answer can no longer change.

    ``recorded_at`` is the appending transaction's start (``now()``), so any
    transaction still open, even one that has not written yet, may still add
    events recorded before ``known_at``; one that starts later records after our
    own start. Answering only up to just before the oldest open transaction's
    start (and never past our own) keeps every known_at answer final. Callers
    report the moment they used; with short transactions it trails now by
    milliseconds.
    """
    horizon: datetime = await conn.scalar(_HORIZON)
    if horizon <= known_at:
        return horizon - timedelta(microseconds=1)
    return known_at


async def known_projection(
    conn: ReadConnection,
    known_at: datetime,
    *,
    actors: Collection[str] | None = None,
    topics: Collection[str] | None = None,
    include_descendants: bool = False,
) -> Projection:
    """The projection as it stood at ``known_at``, restricted to these actors and topics.

    With ``include_descendants`` the actors' descendants come too, as the
    hierarchy was known at ``known_at``.
    """
    known = events.c.recorded_at <= known_at
    projection = Projection()
    registrations = sa.select(events).where(
        known, events.c.type.in_((ACTOR_REGISTERED, TOPIC_REGISTERED))
    )
    for row in await conn.execute(registrations.order_by(events.c.position)):
        projection.apply(fact_of(rehydrate(row)))

    scope: set[str] | None = None
    if actors is not None:
        scope = set(actors)
        if include_descendants:
            parents = projection.parents
            scope = set().union(*(descendants(parents, a) for a in actors))
    touching = sa.select(events.c.statement_id).where(known, events.c.statement_id.is_not(None))
    if scope is not None:
        touching = touching.where(events.c.actor_id.in_(sorted(scope)))
    if topics is not None:
        touching = touching.where(events.c.topic_id.in_(sorted(topics)))
    statement_events = (
        sa.select(events)
        .where(known, events.c.statement_id.in_(touching))
        .order_by(events.c.position)
    )
    for row in await conn.execute(statement_events):
        projection.apply(fact_of(rehydrate(row)))
    return projection


async def statement_events(
    conn: ReadConnection, statement_id: str, known_at: datetime | None
) -> list[Any]:
    query = sa.select(events).where(events.c.statement_id == statement_id)
    if known_at is not None:
        query = query.where(events.c.recorded_at <= known_at)
    return list((await conn.execute(query.order_by(events.c.position))).all())
