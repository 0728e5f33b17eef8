"""The FastStream consumer: read batches from the group, commit, then acknowledge.

FastStream reads the stream (``XREADGROUP``, batches, graceful shutdown); we
keep the rest, because its defaults lose entries here. It would create the
group at ``$``, so entries published before any projector ran would never be
read: we create it at ``0`` before the subscriber starts (`ensure_group`). Its
parser would decode and re-serialise bodies, and unwrap JSON that merely looks
like its own envelope: a pass-through parser hands us the raw bytes, so bytes
that are not UTF-8 reach the contract check and become dead letters. Its
acknowledgement follows the handler, which here returns as soon as the batch
is queued: we ``XACK`` ourselves, only after the transaction commits. And it
never looks at pending entries: a reclaimer brings back those left by a
consumer that died. README.md ("Nothing is lost") tells the whole path.

This module composes the parts: the subscriber and the read-ahead queue here,
`committer` (commit, retry, ack), `reclaim` (reclaim and the delivery cap) and
`heartbeat` (in-flight entries kept from looking abandoned).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from typing import Annotated, Any, cast

import redis.asyncio as aioredis
from faststream import Context
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.opentelemetry import RedisTelemetryMiddleware
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline import telemetry
from stanceline.health import ProjectorHealth
from stanceline.projector import gauges, heartbeat, metrics
from stanceline.projector.committer import Checked, Committer, StreamEntries
from stanceline.projector.reclaim import Claimed, LastErrors, Reclaimer
from stanceline.retry import Stopped, with_backoff
from stanceline.settings import Settings
from stanceline.store.records import Accepted, BatchReport, Rejected

log = logging.getLogger(__name__)

_FASTSTREAM_LOG = logging.getLogger("stanceline.faststream")
"""FastStream's own lines, through our handlers: its warnings and errors, not its chatter
(a line per batch at debug, one per subscriber task at info when it stops)."""
_FASTSTREAM_LOG.setLevel(logging.WARNING)


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
        self.client: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self.broker = RedisBroker(
            redis_url,
            graceful_timeout=30.0,
            logger=_FASTSTREAM_LOG,
            log_level=logging.DEBUG,
            middlewares=(RedisTelemetryMiddleware(),) if telemetry.enabled() else (),
        )
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
        self._ahead: asyncio.Queue[Checked] = asyncio.Queue(maxsize=settings.read_ahead)
        self._in_flight: set[str] = set()
        """Entries delivered to this consumer and not yet committed or given up."""
        errors = LastErrors(self.client, settings)
        self.committer = Committer(
            settings, engine, self.client, self.health, self._in_flight, errors.remember
        )
        self.reclaimer = Reclaimer(
            settings, self.client, self.consumer, self.health, self.committer, errors
        )

    async def _on_batch(self, message: Annotated[Any, Context("message")]) -> None:
        """Validate the batch and queue it for the committer, then let FastStream read on.

        This is the read-ahead: batch k+1 is read and validated while batch k's
        transaction runs, so Python and Postgres work at the same time. Nothing
        is acknowledged here; the committer acks each batch after its commit,
        and a queued batch lost with the process is still pending in Redis.
        """
        raw = message.raw_message
        ids = [i.decode() for i in raw["message_ids"]]
        metrics.CONSUMED.labels("read").inc(len(ids))
        batch = Checked.of(list(zip(ids, raw["data"], strict=True)))
        self._in_flight.update(batch.entry_ids)
        await self._ahead.put(batch)

    async def handle(self, entries: StreamEntries) -> BatchReport:
        """Validate and commit the batch (retrying while Postgres is away), then ack it."""
        return await self.committer.handle(entries)

    async def reclaim_once(self) -> int:
        """Claim entries idle past the threshold, from any consumer, and handle them."""
        return await self.reclaimer.reclaim_once()

    async def _over_the_cap(self, entries: Claimed) -> tuple[Claimed, list[Rejected]]:
        return await self.reclaimer.over_the_cap(entries)

    async def _commit_with_retry(self, items: Sequence[Accepted | Rejected]) -> BatchReport:
        return await self.committer.commit(items)

    async def _keep_in_flight(self) -> None:
        """The heartbeat (see `heartbeat.keep_in_flight`); runs until cancelled."""
        await heartbeat.keep_in_flight(self.client, self.settings, self.consumer, self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; in-flight batches finish, commit and ack first."""
        await self._wait_for_redis(stop)
        if stop.is_set():
            return
        committers = [
            asyncio.create_task(self.committer.commit_ahead(self._ahead))
            for _ in range(self.settings.committers)
        ]
        await self.broker.start()
        self.health.running = True
        reclaimer = asyncio.create_task(self.reclaimer.run(self._stopping))
        beating = asyncio.create_task(self._keep_in_flight())
        watching = asyncio.create_task(
            gauges.watch_group(self.client, self.settings, self._stopping)
        )
        try:
            await stop.wait()
        finally:
            self.health.running = False
            self._stopping.set()
            await self.broker.stop()
            await self._drain(committers)
            await reclaimer
            await watching
            await self._finish_own_pending()
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await self._leave_group_if_done()
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
                    metrics.CONSUMED.labels("read").inc(len(entries))
                    await self.handle(entries)
        except (TimeoutError, RedisError) as exc:
            log.warning("left entries pending at shutdown (%s); a reclaimer will take them", exc)

    async def _leave_group_if_done(self) -> None:
        """A clean stop with nothing pending takes this consumer out of the group.

        Consumer names default to host-pid, so every restart would otherwise leave
        one more idle consumer in ``XINFO CONSUMERS``. With entries still pending
        it stays: deleting it would drop them from the pending list, and a
        reclaimer must find them.
        """
        stream, group = self.settings.stream, self.settings.group
        try:
            held = await self.client.xpending_range(
                stream, group, min="-", max="+", count=1, consumername=self.consumer
            )
            if not held:
                await self.client.xgroup_delconsumer(stream, group, self.consumer)
        except RedisError as exc:
            log.warning("could not leave the consumer group cleanly (%s)", exc)

    async def _wait_for_redis(self, stop: asyncio.Event) -> None:
        """Join the group once Redis answers; return early if ``stop`` is set meanwhile."""

        def down(_exc: BaseException) -> None:
            self.health.redis_ok = False

        with contextlib.suppress(Stopped):
            await with_backoff(
                lambda: ensure_group(self.client, self.settings.stream, self.settings.group),
                on=RedisError,
                what="Redis unavailable",
                log=log,
                failed=down,
                stop=stop,
            )
