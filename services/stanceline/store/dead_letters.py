"""Every statement on ``dead_letters``, writes and queries, in one place.

The write path records rejects here, the operator's redrive and purge delete
through here, and the read model's admin routes list and show from here. Keeping
them together keeps one meaning of a reason and a selection for all of them, and
lets the read model query dead letters without loading the projector or the
ingest path that writes them.

A dead letter's *reason* is the field its rejection names (``data.said_at``,
``delivery``, ``store``, ``id``, ...), or ``entry`` when the entry as a whole
was not an event (not UTF-8, not JSON, too big). Filters match it exactly or as
a dotted prefix (``data`` matches ``data.said_at``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.store.db import ReadConnection
from stanceline.store.records import Rejected
from stanceline.store.tables import dead_letters

WHOLE_ENTRY = "entry"


def _reason() -> sa.ColumnElement[str]:
    """Rejections of a whole entry name no field; filing them under ``entry`` lets a
    filter and a count name them like any other reason."""
    return sa.func.coalesce(dead_letters.c.field, WHOLE_ENTRY)


_SUMMARY = (
    dead_letters.c.id,
    dead_letters.c.stream,
    dead_letters.c.stream_entry_id,
    _reason().label("reason_key"),
    dead_letters.c.reason,
    dead_letters.c.event_id,
    dead_letters.c.delivery_count,
    dead_letters.c.first_seen,
    dead_letters.c.last_seen,
    sa.func.octet_length(dead_letters.c.raw).label("size"),
)


class DeadLetter(BaseModel):
    id: int
    stream: str | None
    stream_entry_id: str | None
    reason_key: str = Field(description="The field the rejection names, or `entry`.")
    reason: str
    event_id: str | None
    delivery_count: int
    first_seen: datetime
    last_seen: datetime
    size: int = Field(description="Bytes of the raw entry.")


class DeadLetterDetail(DeadLetter):
    raw_text: str | None = Field(description="The raw bytes as text; null when not UTF-8.")
    raw_base64: str


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetter]
    total: int = Field(description="Dead letters matching the filters, on all pages.")
    next_after: int | None = Field(description="The last id of this page, if more follow.")


@dataclass(frozen=True, slots=True)
class Selection:
    """One filter shared by listing, counting, redrive and purge, so an operator's
    dry run and count name exactly the rows the action then touches; empty is all."""

    ids: Sequence[int] | None = None
    reason: str | None = None
    since: datetime | None = None
    before: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.ids is not None:
            clauses.append(dead_letters.c.id.in_(list(self.ids)))
        if self.reason is not None:
            clauses.append(
                sa.or_(
                    _reason() == self.reason,
                    _reason().startswith(f"{self.reason}.", autoescape=True),
                )
            )
        if self.since is not None:
            clauses.append(dead_letters.c.last_seen >= self.since)
        if self.before is not None:
            clauses.append(dead_letters.c.last_seen < self.before)
        return clauses


async def record(conn: AsyncConnection, stream: str | None, items: Sequence[Rejected]) -> None:
    """Record rejects; a redelivered entry bumps its row instead of adding one."""
    if not items:
        return
    rows = [
        {
            "stream": stream if item.stream_entry_id else None,
            "stream_entry_id": item.stream_entry_id,
            "raw": item.raw,
            "reason": item.reason,
            "field": item.field,
            "event_id": item.event_id,
            "delivery_count": item.delivery_count,
        }
        for item in items
    ]
    statement = insert(dead_letters)
    statement = statement.on_conflict_do_update(
        constraint="uq_dead_letters_stream_entry",
        set_={
            "delivery_count": sa.func.greatest(
                dead_letters.c.delivery_count + 1, statement.excluded.delivery_count
            ),
            "last_seen": sa.func.now(),
            "reason": statement.excluded.reason,
            "field": statement.excluded.field,
        },
    )
    await conn.execute(statement, rows)


async def list_dead_letters(
    conn: ReadConnection, selection: Selection, *, after: int = 0, limit: int = 100
) -> DeadLetterPage:
    """Keyset pages by id, without the raw bytes: a page stays small and stable while
    new dead letters arrive, and the bytes are fetched one at a time by ``show``."""
    where = selection.where()
    rows = (
        await conn.execute(
            sa.select(*_SUMMARY)
            .where(*where, dead_letters.c.id > after)
            .order_by(dead_letters.c.id)
            .limit(limit + 1)
        )
    ).all()
    total = await count(conn, selection)
    page = [DeadLetter.model_validate(row._mapping) for row in rows[:limit]]
    return DeadLetterPage(
        dead_letters=page,
        total=total,
        next_after=page[-1].id if len(rows) > limit else None,
    )


async def show(conn: ReadConnection, dead_letter_id: int) -> DeadLetterDetail | None:
    """The raw bytes twice: as text for reading when they decode, and as base64 so
    bytes that do not decode still reach the operator intact."""
    row = (
        await conn.execute(
            sa.select(*_SUMMARY, dead_letters.c.raw).where(dead_letters.c.id == dead_letter_id)
        )
    ).one_or_none()
    if row is None:
        return None
    raw = bytes(row.raw)
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    fields: dict[str, Any] = dict(row._mapping)
    fields.pop("raw")
    return DeadLetterDetail(**fields, raw_text=text, raw_base64=base64.b64encode(raw).decode())


async def counts_by_reason(conn: ReadConnection) -> dict[str, int]:
    reason = _reason().label("reason")
    rows = await conn.execute(
        sa.select(reason, sa.func.count().label("n")).group_by(reason).order_by(reason)
    )
    return {str(row.reason): int(row.n) for row in rows}


async def count(conn: ReadConnection, selection: Selection) -> int:
    return int(await conn.scalar(_count(selection)) or 0)


def _count(selection: Selection) -> sa.Select[int]:
    return sa.select(sa.func.count()).select_from(dead_letters).where(*selection.where())


async def present(conn: ReadConnection, selection: Selection) -> set[int]:
    """Ids that still exist, so a redrive by id can name the ones already gone."""
    query = sa.select(dead_letters.c.id).where(*selection.where())
    return set((await conn.execute(query)).scalars())


async def rows_after(
    conn: ReadConnection, selection: Selection, *, after: int, limit: int
) -> Sequence[sa.Row[Any]]:
    """Whole rows, raw bytes included, a bounded chunk at a time by id: a redrive of
    every dead letter holds one chunk in memory, and rows it refreshes in place keep
    their id and are not met twice."""
    return (
        await conn.execute(
            sa.select(dead_letters)
            .where(*selection.where(), dead_letters.c.id > after)
            .order_by(dead_letters.c.id)
            .limit(limit)
        )
    ).all()


async def delete(conn: AsyncConnection, selection: Selection) -> int:
    """Takes a write connection: the read model's ``ReadConnection`` cannot reach it."""
    result = await conn.execute(sa.delete(dead_letters).where(*selection.where()))
    return int(getattr(result, "rowcount", 0) or 0)
