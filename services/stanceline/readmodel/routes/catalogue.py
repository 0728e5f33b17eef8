"""Who and what is known: actors and topics, cursor-paginated."""

from __future__ import annotations

from fastapi import APIRouter

from stanceline.cursors import encode_cursor
from stanceline.readmodel import schemas
from stanceline.readmodel.params import CursorText, Limit, decode_cursor
from stanceline.readmodel.problems import documented
from stanceline.readmodel.routes.deps import Reader
from stanceline.store import queries

router = APIRouter(tags=["catalogue"])


def _after(cursor: str | None) -> str | None:
    key = decode_cursor(cursor, str)
    return None if key is None else str(key[0])


@router.get("/actors", response_model=schemas.ActorPage, responses=documented(400))
async def list_actors(
    conn: Reader, cursor: CursorText = None, limit: Limit = 100
) -> schemas.ActorPage:
    rows = await queries.actor_page(conn, _after(cursor), limit)
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
async def list_topics(
    conn: Reader, cursor: CursorText = None, limit: Limit = 100
) -> schemas.TopicPage:
    rows = await queries.topic_page(conn, _after(cursor), limit)
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
