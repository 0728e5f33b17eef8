"""The ``/v1`` routes. Each request reads one consistent snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from stanceline.readmodel import schemas
from stanceline.readmodel.params import AsOf, Cursor, Limit, encode_cursor
from stanceline.readmodel.problems import NotFound, documented
from stanceline.store import queries
from stanceline.store.db import ReadConnection, reading

router = APIRouter(prefix="/v1")


async def reader(request: Request) -> AsyncIterator[ReadConnection]:
    async with reading(request.app.state.engine) as conn:
        yield conn


Reader = Annotated[ReadConnection, Depends(reader)]
IncludeDescendants = Annotated[
    bool,
    Query(description="Merge the actor's sub-organisations into one series (roll-up)."),
]


@router.get("/actors", response_model=schemas.ActorPage, responses=documented(400))
async def list_actors(conn: Reader, cursor: Cursor, limit: Limit = 100) -> schemas.ActorPage:
    rows = await queries.actor_page(conn, cursor, limit)
    return schemas.ActorPage(
        actors=[
            schemas.Actor(
                actor_id=r.actor_id,
                name=r.name,
                kind=r.kind,
                parent_id=r.parent_id,
                aliases=list(r.aliases),
                registered=r.registered_by is not None,
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].actor_id) if len(rows) == limit else None,
    )


@router.get("/topics", response_model=schemas.TopicPage, responses=documented(400))
async def list_topics(conn: Reader, cursor: Cursor, limit: Limit = 100) -> schemas.TopicPage:
    rows = await queries.topic_page(conn, cursor, limit)
    return schemas.TopicPage(
        topics=[
            schemas.Topic(
                topic_id=r.topic_id,
                title=r.title,
                kind=r.kind,
                description=r.description,
                registered=r.registered_by is not None,
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].topic_id) if len(rows) == limit else None,
    )


async def _known(conn: ReadConnection, actor_id: str | None, topic_id: str) -> None:
    if actor_id is not None and not await queries.actor_exists(conn, actor_id):
        raise NotFound(f"no actor with id {actor_id!r}")
    if not await queries.topic_exists(conn, topic_id):
        raise NotFound(f"no topic with id {topic_id!r}")


@router.get(
    "/actors/{actor_id}/topics/{topic_id}/history",
    response_model=schemas.History,
    responses=documented(400, 404),
)
async def history(
    conn: Reader,
    actor_id: str,
    topic_id: str,
    as_of: AsOf,
    include_descendants: IncludeDescendants = False,
) -> schemas.History:
    """An actor's stance on a topic over time, oldest first, with each change explained."""
    await _known(conn, actor_id, topic_id)
    rows = await queries.history(
        conn, actor_id, topic_id, include_descendants=include_descendants, as_of=as_of
    )
    points = [_point(r) for r in rows]
    current = None
    if points:
        last = points[-1]
        tree = (
            await queries.tree_stances(conn, actor_id, topic_id, as_of)
            if (include_descendants)
            else [last]
        )
        supporting = sorted(t.actor_id for t in tree if t.stance == "support")
        opposing = sorted(t.actor_id for t in tree if t.stance == "oppose")
        current = schemas.Current(
            statement_id=last.statement_id,
            actor_id=last.actor_id,
            said_at=last.said_at,
            stance=last.stance,
            score=last.score,
            contested=bool(supporting and opposing),
            supporting=supporting,
            opposing=opposing,
        )
    return schemas.History(
        actor_id=actor_id,
        topic_id=topic_id,
        include_descendants=include_descendants,
        as_of=as_of,
        points=points,
        current=current,
    )


def _point(r: Any) -> schemas.HistoryPoint:
    speaker = schemas.Speaker(name=r.speaker_name, role=r.speaker_role) if r.speaker_name else None
    return schemas.HistoryPoint(
        statement_id=r.statement_id,
        actor_id=r.actor_id,
        topic_id=r.topic_id,
        said_at=r.said_at,
        stance=r.stance,
        score=r.score,
        confidence=r.confidence,
        speaker=speaker,
        quote=r.quote,
        source_url=r.source_url,
        published_at=r.published_at,
        speech_act=r.speech_act,
        certainty=r.certainty,
        change=r.change,
        previous_statement_id=r.previous_statement_id,
    )


@router.get(
    "/topics/{topic_id}/stances",
    response_model=schemas.TopicStances,
    responses=documented(400, 404),
)
async def topic_stances(conn: Reader, topic_id: str, as_of: AsOf) -> schemas.TopicStances:
    """Every actor's own current stance on the topic."""
    await _known(conn, None, topic_id)
    rows = await queries.topic_stances(conn, topic_id, as_of)
    return schemas.TopicStances(
        topic_id=topic_id,
        as_of=as_of,
        stances=[
            schemas.CurrentStance(
                actor_id=r.actor_id,
                stance=r.stance,
                score=r.score,
                said_at=r.said_at,
                statement_id=r.statement_id,
            )
            for r in rows
        ],
    )
