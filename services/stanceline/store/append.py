"""Appending to the event store (dead letters: ``store.dead_letters``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.store.arrays import any_of, insert_rows
from stanceline.store.records import Accepted
from stanceline.store.tables import events

_ENVELOPE_COLUMNS = {"id", "source", "type", "time", "data"}


def event_row(item: Accepted) -> dict[str, Any]:
    event = item.event
    document = item.document
    data = document["data"]
    return {
        "event_id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time,
        "data": data,
        "envelope": {k: v for k, v in document.items() if k not in _ENVELOPE_COLUMNS},
        "digest": item.digest,
        "statement_id": data.get("statement_id"),
        "actor_id": data.get("actor_id"),
        "topic_id": data.get("topic_id"),
        "stream_entry_id": item.stream_entry_id,
    }


async def stored_digests(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, str]:
    rows = await conn.execute(
        sa.select(events.c.event_id, events.c.digest).where(events.c.event_id == any_of("ids")),
        {"ids": list(event_ids)},
    )
    return {r.event_id: r.digest for r in rows}


_EVENT_COLUMNS = tuple(c.name for c in events.columns if c.name not in ("position", "recorded_at"))


async def append_events(conn: AsyncConnection, items: Sequence[Accepted]) -> set[str]:
    """Append; return the ids actually inserted (a concurrent twin may have won)."""
    if not items:
        return set()
    result = await insert_rows(
        conn,
        events,
        [event_row(item) for item in items],
        columns=_EVENT_COLUMNS,
        tail="ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    return set(result.scalars())
