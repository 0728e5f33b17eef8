"""Dead letters: list and inspect them, redrive them through today's validation, purge.

A dead letter's *reason* is the field its rejection names (``data.said_at``,
``delivery``, ``store``, ``id``, ...), or ``entry`` when the entry as a whole
was not an event (not UTF-8, not JSON, too big). Filters match it exactly or as
a dotted prefix (``data`` matches ``data.said_at``).

Redrive hands the raw bytes back to ``pipeline.commit`` under their own stream
entry id, so they meet the current contract and store rules, with their
duplicates, conflicts and projection. A dead letter that fails again is
refreshed in place by the store's upsert on (stream, entry id): one row, new
reason. One whose event is now in ``events`` (with the same body) is deleted
afterwards, in a second transaction that checks exactly that; if the process dies
in between, the next redrive finds the event stored, counts a duplicate and
deletes the row, so reruns converge.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.ops.replay import Progress, preview
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.store import append
from stanceline.store.db import ReadConnection, reading, writing
from stanceline.store.records import Accepted
from stanceline.store.tables import dead_letters

WHOLE_ENTRY = "entry"
_NOT_AN_EVENT = "event"
"""Rejections whose raw bytes are the stream entry's fields or nothing, not an event."""


def _reason() -> sa.ColumnElement[str]:
    """The reason a dead letter is filed under."""
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
    """Which dead letters: by id, by reason, last seen since/before a moment; all if empty."""

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


async def list_dead_letters(
    conn: ReadConnection, selection: Selection, *, after: int = 0, limit: int = 100
) -> DeadLetterPage:
    where = selection.where()
    rows = (
        await conn.execute(
            sa.select(*_SUMMARY)
            .where(*where, dead_letters.c.id > after)
            .order_by(dead_letters.c.id)
            .limit(limit + 1)
        )
    ).all()
    total = await conn.scalar(sa.select(sa.func.count()).select_from(dead_letters).where(*where))
    page = [DeadLetter.model_validate(row._mapping) for row in rows[:limit]]
    return DeadLetterPage(
        dead_letters=page,
        total=int(total or 0),
        next_after=page[-1].id if len(rows) > limit else None,
    )


async def show(conn: ReadConnection, dead_letter_id: int) -> DeadLetterDetail | None:
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


class RedriveReport(BaseModel):
    dry_run: bool
    selected: int = 0
    projected: int = Field(default=0, description="New events appended to the store.")
    removed: int = Field(
        default=0, description="Dead letters whose event is now stored (projected, or already)."
    )
    still_failing: int = Field(default=0, description="Kept, with their reason refreshed.")
    skipped: int = Field(
        default=0, description="Kept untouched: no stream entry id, or no event in the raw bytes."
    )
    missing: list[int] = Field(default_factory=list, description="Requested ids not found.")


async def redrive(
    engine: AsyncEngine,
    selection: Selection,
    *,
    dry_run: bool = False,
    chunk: int = 500,
    progress: Progress | None = None,
) -> RedriveReport:
    report = RedriveReport(dry_run=dry_run)
    async with reading(engine) as conn:
        total = int(await conn.scalar(_count(selection)) or 0)
        if selection.ids is not None:
            query = sa.select(dead_letters.c.id).where(*selection.where())
            found = set((await conn.execute(query)).scalars())
            report.missing = sorted(set(selection.ids) - found)
    after = 0
    appended: dict[str, str] = {}  # a dry run's would-be appends, across chunks
    while True:
        async with reading(engine) as conn:
            rows = (
                await conn.execute(
                    sa.select(dead_letters)
                    .where(*selection.where(), dead_letters.c.id > after)
                    .order_by(dead_letters.c.id)
                    .limit(chunk)
                )
            ).all()
        if not rows:
            return report
        after = rows[-1].id
        report.selected += len(rows)
        usable = [r for r in rows if _redrivable(r)]
        report.skipped += len(rows) - len(usable)
        for stream, group in groupby(sorted(usable, key=lambda r: (r.stream, r.id)), _stream):
            await _redrive_one_stream(engine, stream, list(group), report, appended)
        if progress is not None:
            progress(report.selected, total)


def _count(selection: Selection) -> sa.Select[int]:
    return sa.select(sa.func.count()).select_from(dead_letters).where(*selection.where())


def _stream(row: sa.Row[Any]) -> str:
    return str(row.stream)


def _redrivable(row: sa.Row[Any]) -> bool:
    """Redrive needs the entry's own key (so a failure refreshes this row rather than
    adding one) and event bytes to validate."""
    return (
        row.stream is not None
        and row.stream_entry_id is not None
        and row.field != _NOT_AN_EVENT
        and len(row.raw) > 0
    )


async def _redrive_one_stream(
    engine: AsyncEngine,
    stream: str,
    rows: list[sa.Row[Any]],
    report: RedriveReport,
    appended: dict[str, str],
) -> None:
    entries = [Entry(str(r.stream_entry_id), bytes(r.raw)) for r in rows]
    if report.dry_run:
        outcome = await preview(engine, entries, appended)
        report.projected += outcome.appended
        report.removed += outcome.appended + outcome.duplicates
        report.still_failing += outcome.dead_lettered
        return
    outcome = await pipeline.commit(engine, entries, stream=stream)
    removed = await _remove_stored(engine, [r.id for r in rows], entries)
    report.projected += outcome.appended
    report.removed += removed
    report.still_failing += len(rows) - removed


async def _remove_stored(engine: AsyncEngine, ids: list[int], entries: list[Entry]) -> int:
    """Delete the dead letters whose event, body included, is in ``events`` now."""
    checked = pipeline.check(entries, datetime.now(UTC))
    events = {
        dead_letter_id: (item.event.id, item.digest)
        for dead_letter_id, item in zip(ids, checked, strict=True)
        if isinstance(item, Accepted)
    }
    async with writing(engine) as conn:
        stored = await append.stored_digests(conn, [event_id for event_id, _ in events.values()])
        done = [i for i, (event_id, digest) in events.items() if stored.get(event_id) == digest]
        if done:
            await conn.execute(sa.delete(dead_letters).where(dead_letters.c.id.in_(done)))
    return len(done)


async def count(engine: AsyncEngine, selection: Selection) -> int:
    async with reading(engine) as conn:
        return int(await conn.scalar(_count(selection)) or 0)


async def purge(engine: AsyncEngine, selection: Selection) -> int:
    """Delete the selected dead letters for good; returns how many went."""
    async with writing(engine) as conn:
        result = await conn.execute(sa.delete(dead_letters).where(*selection.where()))
    return int(getattr(result, "rowcount", 0) or 0)
