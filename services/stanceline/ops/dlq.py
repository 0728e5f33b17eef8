"""Dead letters: redrive them through today's validation, purge them.

These are the operator actions that change dead letters; listing and showing
them are queries in ``store/dead_letters.py``, which the read model uses without
loading this module's write path.

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

from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.ops.replay import Progress, preview
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.store import append, dead_letters
from stanceline.store.db import reading, writing
from stanceline.store.dead_letters import Selection
from stanceline.store.records import Accepted

_NOT_AN_EVENT = "event"
"""Rejections whose raw bytes are the stream entry's fields or nothing, not an event."""


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
        total = await dead_letters.count(conn, selection)
        if selection.ids is not None:
            found = await dead_letters.present(conn, selection)
            report.missing = sorted(set(selection.ids) - found)
    after = 0
    appended: dict[str, str] = {}  # a dry run's would-be appends, across chunks
    while True:
        async with reading(engine) as conn:
            rows = await dead_letters.rows_after(conn, selection, after=after, limit=chunk)
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
            await dead_letters.delete(conn, Selection(ids=done))
    return len(done)


async def purge(engine: AsyncEngine, selection: Selection) -> int:
    """Delete the selected dead letters for good; returns how many went."""
    async with writing(engine) as conn:
        return await dead_letters.delete(conn, selection)
