"""The FastStream consumer: read batches from the group, commit, then acknowledge.

FastStream reads the stream (``XREADGROUP``, batches, graceful shutdown);
we keep the rest, because its defaults lose entries here (see
shared/FASTSTREAM.md): the group is created at ``0`` before the subscriber
starts, entries reach us as raw bytes through a pass-through parser, we
``XACK`` ourselves only after the transaction commits, and a reclaimer
brings back entries left pending by a consumer that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import redis.asyncio as aioredis
from faststream import Context
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.projector import metrics, pipeline
from stanceline.projector.entries import Entry, entry_bytes
from stanceline.projector.health import ProjectorHealth
from stanceline.settings import Settings
from stanceline.store.errors import StoreUnavailable
from stanceline.store.records import Accepted, BatchReport, Rejected

log = logging.getLogger(__name__)


async def ensure_group(client: aioredis.Redis, stream: str, group: str) -> None:
    """Create the group at ``0`` so entries published before any projector ran count too."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _raw(message: Any) -> StreamMessage[Any]:
    """Hand FastStream's raw batch through untouched: no UTF-8 decoding, no re-serialising."""
    return StreamMessage(raw_message=message, body=b"", correlation_id="", message_id="")


async def _nothing(message: StreamMessage[Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Checked:
    """A batch of stream entries, validated against the contract, ready to commit."""

    entry_ids: list[str]
    items: list[Accepted | Rejected]

    @classmethod
    def of(cls, entries: Sequence[tuple[str, dict[bytes, bytes] | None]]) -> _Checked:
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
        return cls([entry_id for entry_id, _ in entries], pipeline.check(read, datetime.now(UTC)))


class Projector:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        redis_url: str,
        health: ProjectorHealth | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.redis_url = redis_url
        self.health = health or ProjectorHealth()
        self.consumer = settings.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.client: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self.broker = RedisBroker(redis_url, graceful_timeout=30.0, log_level=logging.DEBUG)
        self.broker.subscriber(
            stream=StreamSub(
                settings.stream,
                group=settings.group,
                consumer=self.consumer,
                batch=True,
                max_records=settings.batch_size,
                polling_interval=settings.block_ms,
            ),
            parser=_raw,
            decoder=_nothing,
            ack_policy=AckPolicy.MANUAL,
        )(self._on_batch)
        self._stopping = asyncio.Event()
        self._ahead: asyncio.Queue[_Checked] = asyncio.Queue(maxsize=settings.read_ahead)
        self._in_flight: set[str] = set()
        """Entries delivered to this consumer and not yet committed or given up."""
        self._free_to_commit = asyncio.Event()
        """Cleared while the reclaimer commits what it claimed, so that goes first."""
        self._free_to_commit.set()

    async def _on_batch(self, message: Annotated[Any, Context("message")]) -> None:
        """Validate the batch and queue it for the committer, then let FastStream read on.

        This is the read-ahead: batch k+1 is read and validated while batch k's
        transaction runs, so Python and Postgres work at the same time. Nothing
        is acknowledged here; the committer acks each batch after its commit,
        and a queued batch lost with the process is still pending in Redis.
        """
        raw = message.raw_message
        ids = [i.decode() for i in raw["message_ids"]]
        batch = _Checked.of(list(zip(ids, raw["data"], strict=True)))
        self._in_flight.update(batch.entry_ids)
        await self._ahead.put(batch)

    async def _commit_ahead(self) -> None:
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
            batch = await self._ahead.get()
            try:
                await self._finish(batch)
            except Exception:
                log.exception("batch left pending; a reclaimer will retry it")
            finally:
                self._ahead.task_done()

    async def handle(self, entries: Sequence[tuple[str, dict[bytes, bytes] | None]]) -> BatchReport:
        """Validate and commit the batch (retrying while Postgres is away), then ack it."""
        batch = _Checked.of(entries)
        self._in_flight.update(batch.entry_ids)
        return await self._finish(batch)

    async def _finish(self, batch: _Checked) -> BatchReport:
        started = time.perf_counter()
        try:
            report = await self._commit_with_retry(batch.items)
        except Exception as exc:
            # Left pending: a reclaimer retries it, and the delivery cap ends the loop.
            await self._remember_error(batch.entry_ids, exc)
            raise
        finally:
            self._in_flight.difference_update(batch.entry_ids)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.ENTRIES.labels("appended").inc(report.appended)
        metrics.ENTRIES.labels("duplicate").inc(report.duplicates)
        metrics.ENTRIES.labels("dead_lettered").inc(report.dead_lettered)
        await self._ack(batch.entry_ids)
        return report

    async def _commit_with_retry(self, items: Sequence[Accepted | Rejected]) -> BatchReport:
        delay = 0.1
        while True:
            try:
                report = await pipeline.store_checked(
                    self.engine, items, stream=self.settings.stream
                )
            except StoreUnavailable as exc:
                self._store_state(ok=False, error=str(exc))
                log.warning("Postgres unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._store_state(ok=True, error=None)
            return report

    def _store_state(self, *, ok: bool, error: str | None) -> None:
        self.health.store_ok = ok
        self.health.last_error = error
        metrics.STORE_UP.set(1 if ok else 0)

    async def _ack(self, entry_ids: list[str]) -> None:
        """A failed XACK loses nothing: the entry is reclaimed and its redelivery is a no-op."""
        try:
            await self.client.xack(self.settings.stream, self.settings.group, *entry_ids)
            self.health.redis_ok = True
        except RedisError as exc:
            self.health.redis_ok = False
            log.warning("XACK failed (%s); entries stay pending and will be reclaimed", exc)

    @property
    def _errors_key(self) -> str:
        return f"{self.settings.stream}:last-errors:{self.settings.group}"

    async def _remember_error(self, entry_ids: list[str], exc: Exception) -> None:
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        with contextlib.suppress(RedisError):
            await self.client.hset(self._errors_key, mapping=dict.fromkeys(entry_ids, text))

    async def _over_the_cap(
        self, entries: list[tuple[str, dict[bytes, bytes] | None]]
    ) -> tuple[list[tuple[str, dict[bytes, bytes] | None]], list[Rejected]]:
        """Split claimed entries into those to retry and those that used up their deliveries.

        Redis counts deliveries (each claim adds one). An entry past the cap has failed
        for a reason other than validation, or killed its consumers, again and again: it is
        dead-lettered with the count and the last error instead of cycling forever.
        """
        ids = [entry_id for entry_id, _ in entries]
        pending = await self.client.xpending_range(
            self.settings.stream,
            self.settings.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 2 + 10,
            consumername=self.consumer,
        )
        deliveries = {
            (
                p["message_id"].decode() if isinstance(p["message_id"], bytes) else p["message_id"]
            ): int(p["times_delivered"])
            for p in pending
        }
        over = {i for i in ids if deliveries.get(i, 1) > self.settings.max_deliveries}
        if not over:
            return entries, []
        errors = await self.client.hmget(self._errors_key, sorted(over))
        last = dict(zip(sorted(over), errors, strict=True))
        capped = []
        for entry_id, fields in entries:
            if entry_id not in over:
                continue
            error = last[entry_id]
            if isinstance(error, bytes):
                error = error.decode(errors="replace")
            reason = (
                f"delivery: gave up after {deliveries[entry_id]} deliveries; last error: "
                f"{error or 'none recorded (its consumer stopped while handling it)'}"
            )
            item = entry_bytes(entry_id, fields) if fields is not None else None
            capped.append(
                Rejected(
                    item.raw if isinstance(item, Entry) else b"",
                    reason,
                    "delivery",
                    entry_id,
                    delivery_count=deliveries[entry_id],
                )
            )
        return [e for e in entries if e[0] not in over], capped

    async def reclaim_once(self) -> int:
        """Claim entries idle longer than the threshold, from any consumer, and handle them.

        Not while Postgres is away: claiming counts as a delivery, and an outage must
        never push healthy entries over the delivery cap.
        """
        if not self.health.store_ok:
            return 0
        start = "0-0"
        handled = 0
        while True:
            next_id, claimed, *_ = await self.client.xautoclaim(
                self.settings.stream,
                self.settings.group,
                self.consumer,
                min_idle_time=self.settings.reclaim_idle_ms,
                start_id=start,
                count=self.settings.batch_size,
            )
            entries = [(i.decode(), fields) for i, fields in claimed if i is not None]
            if entries:
                retry, capped = await self._over_the_cap(entries)
                if capped:
                    await self._commit_with_retry(capped)
                    await self._ack([r.stream_entry_id or "" for r in capped])
                    with contextlib.suppress(RedisError):
                        await self.client.hdel(
                            self._errors_key, *[r.stream_entry_id or "" for r in capped]
                        )
                if retry:
                    # Reclaimed entries go first: they have been delivered before, and
                    # each further claim counts towards the cap. New batches wait.
                    self._free_to_commit.clear()
                    try:
                        await self.handle(retry)
                    finally:
                        self._free_to_commit.set()
                handled += len(entries)
            start = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
            if start == "0-0":
                return handled

    async def _keep_in_flight(self) -> None:
        """Keep the entries this consumer holds from looking abandoned.

        A batch can wait in the read-ahead queue, or for another batch's locks,
        longer than the reclaim threshold. Reclaimers elsewhere would then claim
        it, each claim counting as a delivery, until the delivery cap dead-letters
        valid entries. So, while the process lives, its in-flight entries are
        re-claimed by itself with ``JUSTID`` (which resets their idle time and
        counts no delivery) once they are idle half the threshold; an entry that
        another consumer claimed more recently is younger than that and is left
        alone. When the process dies the heartbeat stops with it, and its entries
        are reclaimed as before. At shutdown it beats until the last batch is done.
        """
        half = self.settings.reclaim_idle_ms // 2
        while True:
            ids: list[Any] = sorted(self._in_flight)
            try:
                for start in range(0, len(ids), 1000):
                    await self.client.xclaim(
                        self.settings.stream,
                        self.settings.group,
                        self.consumer,
                        min_idle_time=half,
                        message_ids=ids[start : start + 1000],
                        justid=True,
                    )
            except RedisError as exc:
                log.warning("could not refresh in-flight entries (%s); trying again", exc)
            await asyncio.sleep(half / 2000)

    async def _reclaim_forever(self) -> None:
        interval = self.settings.reclaim_idle_ms / 2000
        while not self._stopping.is_set():
            try:
                await self.reclaim_once()
                self.health.redis_ok = True
            except RedisError as exc:
                self.health.redis_ok = False
                log.warning("reclaim failed (%s); trying again", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; in-flight batches finish, commit and ack first."""
        await self._wait_for_redis(stop)
        if stop.is_set():
            return
        committers = [
            asyncio.create_task(self._commit_ahead()) for _ in range(self.settings.committers)
        ]
        await self.broker.start()
        self.health.running = True
        reclaimer = asyncio.create_task(self._reclaim_forever())
        heartbeat = asyncio.create_task(self._keep_in_flight())
        try:
            await stop.wait()
        finally:
            self.health.running = False
            self._stopping.set()
            await self.broker.stop()
            await self._drain(committers)
            await reclaimer
            await self._finish_own_pending()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self.client.aclose()

    async def _drain(self, committers: list[asyncio.Task[None]], within: float = 30.0) -> None:
        """Commit what was read ahead; if Postgres stays away, leave it pending instead."""
        try:
            async with asyncio.timeout(within):
                await self._ahead.join()
        except TimeoutError:
            log.warning("left read-ahead batches pending at shutdown; a reclaimer will take them")
        for committer in committers:
            committer.cancel()
        await asyncio.gather(*committers, return_exceptions=True)

    async def _finish_own_pending(self, within: float = 20.0) -> None:
        """Handle what Redis already delivered to us before exiting.

        Stopping FastStream can cancel an XREADGROUP that Redis has already
        answered: those entries are ours but were never handled. Reading our own
        pending list (id ``0``) finishes them now instead of leaving them for a
        reclaimer. Bounded: if Postgres is away, they stay pending, as before.
        """
        try:
            async with asyncio.timeout(within):
                while True:
                    # A RESP2 client (ours) answers [[stream, [(id, fields), ...]]].
                    answer = await self.client.xreadgroup(
                        self.settings.group,
                        self.consumer,
                        {self.settings.stream: "0"},
                        count=self.settings.batch_size,
                    )
                    entries: list[tuple[str, dict[bytes, bytes] | None]] = [
                        (bytes(i).decode(), fields)
                        for _, batch in cast("list[Any]", answer)
                        for i, fields in batch
                    ]
                    if not entries:
                        return
                    await self.handle(entries)
        except (TimeoutError, RedisError) as exc:
            log.warning("left entries pending at shutdown (%s); a reclaimer will take them", exc)

    async def _wait_for_redis(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                await ensure_group(self.client, self.settings.stream, self.settings.group)
                return
            except RedisError as exc:
                self.health.redis_ok = False
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
