"""Entries → contract → one transaction in the store, with poison isolation.

Transport-free, so the stream consumer, the reclaimer, ``replay`` and
``dlq redrive`` all share exactly one path into the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.contract import Rejection, parse_event
from stanceline.projector.entries import Entry
from stanceline.store.db import writing
from stanceline.store.errors import StoreUnavailable, is_transient
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted, BatchReport, Rejected

log = logging.getLogger(__name__)


def check(entries: Sequence[Entry | Rejected], now: datetime) -> list[Accepted | Rejected]:
    checked: list[Accepted | Rejected] = []
    for entry in entries:
        if isinstance(entry, Rejected):
            checked.append(entry)
            continue
        result = parse_event(entry.raw, now=now)
        if isinstance(result, Rejection):
            checked.append(Rejected(entry.raw, result.reason, result.field, entry.entry_id))
        else:
            checked.append(Accepted(result, entry.raw, entry.entry_id))
    return checked


async def commit(
    engine: AsyncEngine, entries: Sequence[Entry | Rejected], *, stream: str | None
) -> BatchReport:
    """Validate and store a batch; raise ``StoreUnavailable`` if the database is away.

    When a batch fails for another reason, it is split in halves until the
    entry that fails it is alone; that entry is dead-lettered with the error,
    and its neighbours are stored as usual.
    """
    return await store_checked(engine, check(entries, datetime.now(UTC)), stream=stream)


async def store_checked(
    engine: AsyncEngine, items: Sequence[Accepted | Rejected], *, stream: str | None
) -> BatchReport:
    """``commit``'s second half, for a caller that validated the batch ahead of time."""
    return await _commit(engine, items, stream)


async def _commit(
    engine: AsyncEngine, items: Sequence[Accepted | Rejected], stream: str | None
) -> BatchReport:
    try:
        async with writing(engine) as conn:
            return await store_batch(
                conn,
                [i for i in items if isinstance(i, Accepted)],
                [i for i in items if isinstance(i, Rejected)],
                stream=stream,
            )
    except Exception as exc:
        if is_transient(exc):
            raise StoreUnavailable(str(exc)) from exc
        if len(items) > 1:
            middle = len(items) // 2
            report = await _commit(engine, items[:middle], stream)
            report += await _commit(engine, items[middle:], stream)
            return report
        (item,) = items
        if isinstance(item, Rejected):
            raise  # not even its dead letter can be written: leave it pending, loudly
        log.exception(
            "entry %s fails the store; dead-lettering it",
            item.stream_entry_id,
            extra={"event_id": item.event.id, "stream_entry_id": item.stream_entry_id},
        )
        failed = Rejected(
            item.raw,
            f"store: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            "store",
            item.stream_entry_id,
            item.event.id,
        )
        return await _commit(engine, [failed], stream)
