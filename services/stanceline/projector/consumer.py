"""The consumer: read batches from the group per shard, commit, then acknowledge.

Plain redis-py, not FastStream: FastStream 0.7 has no Redis Cluster broker, and
of what its subscriber did we had already replaced the group creation (it
creates at ``$``), the parser (it decodes and rewrites bodies), the
acknowledgement (we ack after the commit), the reclaim and the drain; what was
left was a loop around ``XREADGROUP``. One code path serves a single server and
a cluster (docs/architecture.md, *Delivery*, says why). README.md ("Nothing is
lost") tells the whole path.

This module composes the parts: a `reader.Reader` per stream key (shard) and
the read-ahead queue they fill, `committer` (commit, retry, ack), `reclaim`
(reclaim and the delivery cap) and `heartbeat` (in-flight entries kept from
looking abandoned), each per shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.contract.shards import selected, shard_streams
from stanceline.health import ProjectorHealth
from stanceline.projector import gauges, heartbeat
from stanceline.projector.committer import Checked, Committer, InFlight, StreamEntries
from stanceline.projector.reader import Reader, read
from stanceline.projector.reclaim import Claimed, LastErrors, Reclaimer
from stanceline.redis_client import connect, ensure_group
from stanceline.retry import Stopped, with_backoff
from stanceline.settings import Settings
from stanceline.store.records import Accepted, BatchReport, Rejected

log = logging.getLogger(__name__)

__all__ = ["Projector", "ensure_group", "streams_of"]


def streams_of(settings: Settings) -> list[str]:
    """The stream keys this projector reads: every shard, or those STANCELINE_SHARDS names."""
    keys = shard_streams(settings.stream, settings.stream_shards)
    return [keys[i] for i in selected(settings.shards, settings.stream_shards)]


class Projector:
    """One consumer in the group: reads ahead, commits, reclaims, until told to stop."""

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
        self.streams = streams_of(settings)
        self.client = connect(redis_url)
        self._stopping = asyncio.Event()
        self._ahead: asyncio.Queue[Checked] = asyncio.Queue(maxsize=settings.read_ahead)
        self._in_flight: InFlight = {stream: set() for stream in self.streams}
        """Per stream, entries delivered to this consumer and not yet committed or given up."""
        errors = {s: LastErrors(self.client, s, settings.group) for s in self.streams}

        async def remember(stream: str, entry_ids: list[str], exc: Exception) -> None:
            await errors[stream].remember(entry_ids, exc)

        self.committer = Committer(
            settings, engine, self.client, self.health, self._in_flight, remember
        )
        self.reclaimer = Reclaimer(
            settings, self.client, self.consumer, self.health, self.committer, errors
        )
        self.readers = [
            Reader(settings, self.client, self.consumer, s, self.health, self._in_flight)
            for s in self.streams
        ]

    async def handle(self, stream: str, entries: StreamEntries) -> BatchReport:
        """Validate and commit the batch (retrying while Postgres is away), then ack it."""
        return await self.committer.handle(stream, entries)

    async def reclaim_once(self) -> int:
        """Claim entries idle past the threshold, from any consumer, and handle them."""
        return await self.reclaimer.reclaim_once()

    async def _over_the_cap(self, stream: str, entries: Claimed) -> tuple[Claimed, list[Rejected]]:
        return await self.reclaimer.over_the_cap(stream, entries)

    async def _commit_with_retry(
        self, stream: str, items: Sequence[Accepted | Rejected]
    ) -> BatchReport:
        return await self.committer.commit(stream, items)

    async def _keep_in_flight(self) -> None:
        """The heartbeat (see `heartbeat.keep_in_flight`); runs until cancelled."""
        await heartbeat.keep_in_flight(self.client, self.settings, self.consumer, self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; in-flight batches finish, commit and ack first."""
        await self._wait_for_redis(stop)
        if stop.is_set():
            await self.client.aclose()
            return
        committers = [
            asyncio.create_task(self.committer.commit_ahead(self._ahead))
            for _ in range(self.settings.committers)
        ]
        readers = [asyncio.create_task(r.run(self._ahead, self._stopping)) for r in self.readers]
        self.health.running = True
        reclaimer = asyncio.create_task(self.reclaimer.run(self._stopping))
        beating = asyncio.create_task(self._keep_in_flight())
        watching = asyncio.create_task(
            gauges.watch_group(self.client, self.settings, self._stopping, self.streams)
        )
        try:
            await stop.wait()
        finally:
            self.health.running = False
            self._stopping.set()
            await self._stop_reading(readers)
            await self._drain(committers)
            await reclaimer
            await watching
            await self._finish_own_pending()
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await self._leave_group_if_done()
            await self.client.aclose()

    async def _stop_reading(self, readers: list[asyncio.Task[None]], within: float = 30.0) -> None:
        """Let each reader finish its read and queue what Redis answered.

        A reader waits for a free slot in the read-ahead queue; if the committers
        cannot empty it (Postgres away), it is cancelled: what it held is pending
        in Redis and comes back through a reclaimer.
        """
        _done, late = await asyncio.wait(readers, timeout=within)
        for task in late:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

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
        """Handle what Redis already delivered to us and we have not acknowledged.

        A batch whose commit failed is still ours: reading our own pending list
        (id ``0``) gives it one more try now instead of leaving it for a
        reclaimer. Bounded: if Postgres is away, entries stay pending, as before.
        """
        try:
            async with asyncio.timeout(within):
                for stream in self.streams:
                    while True:
                        entries = await read(
                            self.client,
                            self.settings.group,
                            self.consumer,
                            stream,
                            count=self.settings.batch_size,
                            after="0",
                        )
                        if not entries:
                            break
                        await self.handle(stream, entries)
        except (TimeoutError, RedisError) as exc:
            log.warning("left entries pending at shutdown (%s); a reclaimer will take them", exc)

    async def _leave_group_if_done(self) -> None:
        """A clean stop with nothing pending takes this consumer out of each shard's group.

        Consumer names default to host-pid, so every restart would otherwise leave
        one more idle consumer in ``XINFO CONSUMERS``. With entries still pending
        it stays: deleting it would drop them from the pending list, and a
        reclaimer must find them.
        """
        group = self.settings.group
        for stream in self.streams:
            try:
                held = await self.client.xpending_range(
                    stream, group, min="-", max="+", count=1, consumername=self.consumer
                )
                if not held:
                    await self.client.xgroup_delconsumer(stream, group, self.consumer)
            except RedisError as exc:
                log.warning("could not leave the consumer group cleanly (%s)", exc)

    async def _wait_for_redis(self, stop: asyncio.Event) -> None:
        """Join every shard's group once Redis answers; return early if ``stop`` is set."""

        def down(_exc: BaseException) -> None:
            self.health.redis_ok = False

        async def join() -> None:
            for stream in self.streams:
                await ensure_group(self.client, stream, self.settings.group)

        with contextlib.suppress(Stopped):
            await with_backoff(
                join, on=RedisError, what="Redis unavailable", log=log, failed=down, stop=stop
            )
