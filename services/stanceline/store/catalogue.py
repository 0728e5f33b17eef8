"""Writes to actors, topics and the hierarchy closure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.domain.catalogue import wins
from stanceline.domain.facts import ActorRegistered, TopicRegistered, Version, version_of
from stanceline.store.arrays import insert_rows
from stanceline.store.tables import actor_lineage, actors, topics

Parents = dict[str, str | None]


F = TypeVar("F", ActorRegistered, TopicRegistered)


def latest_per_key(registrations: Iterable[F], key: str) -> list[F]:
    """One registration per id: the one that would win, so one upsert touches each row once."""
    best: dict[str, F] = {}
    for fact in registrations:
        k = getattr(fact, key)
        if wins(version_of(best[k]) if k in best else None, version_of(fact)):
            best[k] = fact
    return [best[k] for k in sorted(best)]


async def load_hierarchy(conn: AsyncConnection) -> tuple[Parents, dict[str, Version | None]]:
    rows = await conn.execute(
        sa.select(
            actors.c.actor_id, actors.c.parent_id, actors.c.registered_time, actors.c.registered_by
        )
    )
    parents: Parents = {}
    versions: dict[str, Version | None] = {}
    for r in rows:
        parents[r.actor_id] = r.parent_id
        versions[r.actor_id] = (
            (r.registered_time, r.registered_by) if r.registered_by is not None else None
        )
    return parents, versions


async def upsert_actors(conn: AsyncConnection, facts: Sequence[ActorRegistered]) -> None:
    if not facts:
        return
    rows = [
        {
            "actor_id": f.actor_id,
            "name": f.name,
            "kind": f.kind,
            "parent_id": f.parent_id,
            "aliases": list(f.aliases),
            "registered_time": f.time,
            "registered_by": f.event_id,
        }
        for f in latest_per_key(facts, "actor_id")
    ]
    statement = insert(actors)
    excluded = statement.excluded
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[actors.c.actor_id],
            set_={
                c: excluded[c]
                for c in (
                    "name",
                    "kind",
                    "parent_id",
                    "aliases",
                    "registered_time",
                    "registered_by",
                )
            },
            where=sa.or_(
                actors.c.registered_by.is_(None),
                sa.tuple_(actors.c.registered_time, actors.c.registered_by)
                < sa.tuple_(excluded.registered_time, excluded.registered_by),
            ),
        ),
        rows,
    )


async def upsert_topics(conn: AsyncConnection, facts: Sequence[TopicRegistered]) -> None:
    if not facts:
        return
    rows = [
        {
            "topic_id": f.topic_id,
            "title": f.title,
            "kind": f.kind,
            "description": f.description,
            "registered_time": f.time,
            "registered_by": f.event_id,
        }
        for f in latest_per_key(facts, "topic_id")
    ]
    statement = insert(topics)
    excluded = statement.excluded
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[topics.c.topic_id],
            set_={
                c: excluded[c]
                for c in ("title", "kind", "description", "registered_time", "registered_by")
            },
            where=sa.or_(
                topics.c.registered_by.is_(None),
                sa.tuple_(topics.c.registered_time, topics.c.registered_by)
                < sa.tuple_(excluded.registered_time, excluded.registered_by),
            ),
        ),
        rows,
    )


async def ensure_actors(conn: AsyncConnection, actor_ids: Iterable[str]) -> None:
    """Actors named before registration exist under their id, each its own lineage root."""
    ids = sorted(set(actor_ids))
    if not ids:
        return
    inserted = await insert_rows(
        conn,
        actors,
        [{"actor_id": a, "name": a} for a in ids],
        tail="ON CONFLICT (actor_id) DO NOTHING RETURNING actor_id",
    )
    created = sorted(inserted.scalars())
    if created:
        await insert_rows(
            conn,
            actor_lineage,
            [{"actor_id": a, "ancestor_id": a, "depth": 0} for a in created],
            tail="ON CONFLICT DO NOTHING",
        )


async def ensure_topics(conn: AsyncConnection, topic_ids: Iterable[str]) -> None:
    ids = sorted(set(topic_ids))
    if ids:
        await insert_rows(
            conn,
            topics,
            [{"topic_id": t, "title": t} for t in ids],
            tail="ON CONFLICT (topic_id) DO NOTHING",
        )


_REBUILD_LINEAGE = sa.text(
    """
    INSERT INTO actor_lineage (actor_id, ancestor_id, depth)
    WITH RECURSIVE up(actor_id, ancestor_id, depth) AS (
        SELECT actor_id, actor_id, 0 FROM actors
        UNION ALL
        SELECT up.actor_id, a.parent_id, up.depth + 1
          FROM up JOIN actors a ON a.actor_id = up.ancestor_id
         WHERE a.parent_id IS NOT NULL AND up.depth < 1000
    )
    SELECT actor_id, ancestor_id, min(depth) FROM up GROUP BY actor_id, ancestor_id
    """
)


async def rebuild_lineage(conn: AsyncConnection) -> None:
    """Recompute the closure from ``actors``; only under the exclusive hierarchy lock."""
    await conn.execute(sa.delete(actor_lineage))
    await conn.execute(_REBUILD_LINEAGE)
