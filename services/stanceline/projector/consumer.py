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
from typing import Annotated, Any

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
from stanceline.store.records import BatchReport, Rejected

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

    async def _on_batch(self, message: Annotated[Any, Context("message")]) -> None:
        raw = message.raw_message
        ids = [i.decode() for i in raw["message_ids"]]
        await self.handle(list(zip(ids, raw["data"], strict=True)))

    async def handle(self, entries: Sequence[tuple[str, dict[bytes, bytes] | None]]) -> BatchReport:
        """Commit the batch (retrying while Postgres is away), then acknowledge it."""
        started = time.perf_counter()
        items: list[Entry | Rejected] = [
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
        report = await self._commit_with_retry(items)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.ENTRIES.labels("appended").inc(report.appended)
        metrics.ENTRIES.labels("duplicate").inc(report.duplicates)
        metrics.ENTRIES.labels("dead_lettered").inc(report.dead_lettered)
        await self._ack([entry_id for entry_id, _ in entries])
        return report

    async def _commit_with_retry(self, items: list[Entry | Rejected]) -> BatchReport:
        delay = 0.1
        while True:
            try:
                report = await pipeline.commit(self.engine, items, stream=self.settings.stream)
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

    async def reclaim_once(self) -> int:
        """Claim entries idle longer than the threshold, from any consumer, and handle them."""
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
                await self.handle(entries)
                handled += len(entries)
            start = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
            if start == "0-0":
                return handled

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
        await self.broker.start()
        self.health.running = True
        reclaimer = asyncio.create_task(self._reclaim_forever())
        try:
            await stop.wait()
        finally:
            self.health.running = False
            self._stopping.set()
            await self.broker.stop()
            await reclaimer
            await self.client.aclose()

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
