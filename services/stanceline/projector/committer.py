"""Committing validated batches, then acknowledging them: the only place that XACKs.

Each batch is one transaction (through `pipeline.store_checked`, the one path
into the store), retried while Postgres is away, and acked only after it
commits. A batch that fails otherwise stays pending in Redis, with its error
remembered for the delivery cap, and a reclaimer brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.health import ProjectorHealth
from stanceline.projector import metrics, pipeline
from stanceline.projector.entries import Entry, entry_bytes
from stanceline.redis_client import RedisClient
from stanceline.retry import with_backoff
from stanceline.settings import Settings
from stanceline.store.errors import StoreUnavailable
from stanceline.store.records import Accepted, BatchReport, Rejected

log = logging.getLogger(__name__)
_TRACER = trace.get_tracer(__name__)

StreamEntries = Sequence[tuple[str, dict[bytes, bytes] | None]]
"""Entries as Redis hands them over: id and fields, or ``None`` for a trimmed entry."""

InFlight = dict[str, set[str]]
"""Per stream key (shard), the entries delivered to this consumer and not yet committed
or given up: entry ids are unique only within one stream."""

RememberError = Callable[[str, list[str], Exception], Awaitable[None]]
"""Remember why a stream's entries failed, for the delivery cap's dead letter."""


@dataclass(frozen=True, slots=True)
class Checked:
    """A batch of one stream key's entries, validated against the contract, ready to commit."""

    stream: str
    entry_ids: list[str]
    items: list[Accepted | Rejected]

    @classmethod
    def of(cls, stream: str, entries: StreamEntries) -> Checked:
        read: list[Entry | Rejected] = [
            entry_bytes(entry_id, fields)
            if fields is not None
            else Rejected(
                b"",
                "event: the stream entry was trimmed before it was processed",
                "event",
                entry_id,
            )
            for entry_id, fields in entries
        ]
        return cls(
            stream, [entry_id for entry_id, _ in entries], pipeline.check(read, datetime.now(UTC))
        )


def entries_of(batch: Checked) -> dict[str, str]:
    """A log line's context for a batch: its first and last stream entry ids."""
    ids = batch.entry_ids
    return (
        {"stream": batch.stream, "first_entry_id": ids[0], "last_entry_id": ids[-1]} if ids else {}
    )


class Committer:
    """Commits batches for one consumer and acks each after its own commit."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        client: RedisClient,
        health: ProjectorHealth,
        in_flight: InFlight,
        remember_error: RememberError,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.client = client
        self.health = health
        self.in_flight = in_flight
        """Per stream, entries delivered to this consumer and not yet committed (shared)."""
        self._remember_error = remember_error
        self._free_to_commit = asyncio.Event()
        """Cleared while the reclaimer commits what it claimed, so that goes first."""
        self._free_to_commit.set()

    async def commit_ahead(self, ahead: asyncio.Queue[Checked]) -> None:
        """One of ``settings.committers`` tasks, each a transaction on its own connection.

        Several batches in flight keep Postgres busy on several backends while
        Python prepares the next statement of any. They serialise only where
        they touch the same statements or series (advisory locks, always taken
        in one global order), exactly as projector replicas would, and the
        tables do not depend on which commits first. Consecutive batches
        nearly always share a rolled-up series, so the series step runs one
        batch at a time and everything before it overlaps.
        """
        while True:
            await self._free_to_commit.wait()
            batch = await ahead.get()
            try:
                await self.finish(batch)
            except Exception:
                log.exception(
                    "batch left pending; a reclaimer will retry it", extra=entries_of(batch)
                )
            finally:
                ahead.task_done()

    @contextlib.contextmanager
    def before_new_batches(self) -> Iterator[None]:
        """Hold the read-ahead committers back while the block runs.

        Reclaimed entries go first: they have been delivered before, and each
        further claim counts towards the cap. New batches wait.
        """
        self._free_to_commit.clear()
        try:
            yield
        finally:
            self._free_to_commit.set()

    async def handle(self, stream: str, entries: StreamEntries) -> BatchReport:
        """Validate and commit the batch (retrying while Postgres is away), then ack it."""
        batch = Checked.of(stream, entries)
        self.in_flight.setdefault(stream, set()).update(batch.entry_ids)
        return await self.finish(batch)

    async def finish(self, batch: Checked) -> BatchReport:
        started = time.perf_counter()
        with _TRACER.start_as_current_span(
            "stanceline.commit",
            attributes={
                "messaging.batch.message_count": len(batch.entry_ids),
                "messaging.destination.name": batch.stream,
                "stanceline.first_entry_id": batch.entry_ids[0] if batch.entry_ids else "",
                "stanceline.last_entry_id": batch.entry_ids[-1] if batch.entry_ids else "",
            },
        ) as span:
            try:
                report = await self.commit(batch.stream, batch.items)
            except Exception as exc:
                # Left pending: a reclaimer retries it, and the delivery cap ends the loop.
                await self._remember_error(batch.stream, batch.entry_ids, exc)
                raise
            finally:
                self.in_flight.get(batch.stream, set()).difference_update(batch.entry_ids)
            span.set_attribute("stanceline.appended", report.appended)
            span.set_attribute("stanceline.duplicates", report.duplicates)
            span.set_attribute("stanceline.dead_lettered", report.dead_lettered)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.observe_commit(batch.entry_ids)
        metrics.ENTRIES.labels("appended").inc(report.appended)
        metrics.ENTRIES.labels("duplicate").inc(report.duplicates)
        metrics.ENTRIES.labels("dead_lettered").inc(report.dead_lettered)
        metrics.APPENDED.inc(report.appended)
        metrics.DUPLICATES.inc(report.duplicates)
        for reason, count in report.dead_letter_fields.items():
            metrics.DEAD_LETTERS.labels(metrics.reason_label(reason)).inc(count)
        await self.ack(batch.stream, batch.entry_ids)
        return report

    async def commit(self, stream: str, items: Sequence[Accepted | Rejected]) -> BatchReport:
        """One transaction, retried with backoff for as long as Postgres is away.

        ``stream`` is the entries' stream key: their dead letters record it, since
        entry ids are unique only within one shard.
        """
        report = await with_backoff(
            lambda: pipeline.store_checked(self.engine, items, stream=stream),
            on=StoreUnavailable,
            what="Postgres unavailable",
            log=log,
            failed=lambda exc: self._store_state(ok=False, error=str(exc)),
        )
        self._store_state(ok=True, error=None)
        return report

    def _store_state(self, *, ok: bool, error: str | None) -> None:
        self.health.store_ok = ok
        self.health.last_error = error
        metrics.STORE_UP.set(1 if ok else 0)

    async def ack(self, stream: str, entry_ids: list[str]) -> None:
        """A failed XACK loses nothing: the entry is reclaimed and its redelivery is a no-op."""
        try:
            await self.client.xack(stream, self.settings.group, *entry_ids)
            self.health.redis_ok = True
        except RedisError as exc:
            self.health.redis_ok = False
            log.warning(
                "XACK failed (%s); entries stay pending and will be reclaimed",
                exc,
                extra={
                    "stream": stream,
                    "first_entry_id": entry_ids[0],
                    "last_entry_id": entry_ids[-1],
                }
                if entry_ids
                else None,
            )
