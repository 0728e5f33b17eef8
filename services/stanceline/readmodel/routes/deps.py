"""Dependencies shared by the routes: one read-only snapshot per request, id checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from stanceline.readmodel.params import identifier, known_at_param
from stanceline.readmodel.problems import NotFound
from stanceline.store import queries
from stanceline.store.db import ReadConnection, reading
from stanceline.store.known import settled


async def reader(request: Request) -> AsyncIterator[ReadConnection]:
    async with reading(request.app.state.engine) as conn:
        yield conn


Reader = Annotated[ReadConnection, Depends(reader)]


async def settled_known_at(
    conn: Reader, known_at: Annotated[datetime | None, Depends(known_at_param)]
) -> datetime | None:
    """``known_at`` as it will be answered: never later than what can still change."""
    return None if known_at is None else await settled(conn, known_at)


KnownAt = Annotated[datetime | None, Depends(settled_known_at)]
IncludeDescendants = Annotated[
    bool, Query(description="Merge the actor's sub-organisations into one series (roll-up).")
]


async def known_actor(conn: ReadConnection, actor_id: str) -> str:
    identifier("actor", actor_id)
    if not await queries.actor_exists(conn, actor_id):
        raise NotFound(f"no actor with id {actor_id!r}")
    return actor_id


async def known_topic(conn: ReadConnection, topic_id: str) -> str:
    identifier("topic", topic_id)
    if not await queries.topic_exists(conn, topic_id):
        raise NotFound(f"no topic with id {topic_id!r}")
    return topic_id


async def known_actor_and_topic(conn: ReadConnection, actor_id: str, topic_id: str) -> None:
    identifier("actor", actor_id)
    identifier("topic", topic_id)
    actor_found, topic_found = await queries.actor_and_topic_exist(conn, actor_id, topic_id)
    if not actor_found:
        raise NotFound(f"no actor with id {actor_id!r}")
    if not topic_found:
        raise NotFound(f"no topic with id {topic_id!r}")
