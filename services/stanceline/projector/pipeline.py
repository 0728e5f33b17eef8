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
from stanceline.store.errors import StoreUnavailable, exceeds_lock_table, is_transient
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
    and its neighbours are stored as usual. A batch too large for Postgres' lock
    table is split the same way, and an entry alone that still finds the table
    full waits, as for an outage: other sessions hold the locks.
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
        too_many_locks = len(items) > 1 and exceeds_lock_table(exc)
        if is_transient(exc) and not too_many_locks:
            raise StoreUnavailable(str(exc)) from exc
        if too_many_locks:
            # Retrying the same transaction would fail the same way for ever.
            log.warning(
                "a batch of %d entries takes more locks than Postgres' lock table holds"
                " (max_locks_per_transaction); storing it in halves. A smaller"
                " STANCELINE_BATCH_SIZE avoids the failed attempt.",
                len(items),
            )
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
