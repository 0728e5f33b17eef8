"""Reading one stream key's new entries for the group, ahead of the commits.

One reader per shard: ``XREADGROUP … STREAMS <key> >`` takes up to a batch of
entries nobody in the group has had yet, validates them and queues them for
the committers. The queue is the read-ahead: while batch k commits, batch k+1
is read and validated, and a full queue stops the reading. Nothing is
acknowledged here, and a queued batch lost with the process stays pending in
Redis for a reclaimer. A read never covers two keys: on a cluster they may
live on different nodes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from opentelemetry import trace
from redis.exceptions import RedisError, ResponseError

from stanceline.health import ProjectorHealth
from stanceline.projector import metrics
from stanceline.projector.committer import Checked, InFlight, StreamEntries
from stanceline.redis_client import RedisClient, ensure_group
from stanceline.retry import Stopped, with_backoff
from stanceline.settings import Settings

log = logging.getLogger(__name__)
_TRACER = trace.get_tracer(__name__)


async def read(
    client: RedisClient,
    group: str,
    consumer: str,
    stream: str,
    *,
    count: int,
    block: int | None = None,
    after: str = ">",
) -> StreamEntries:
    """One ``XREADGROUP``: ``after=">"`` new entries, ``"0"`` this consumer's own pending
    ones; ``block=None`` does not wait."""
    # A RESP2 client answers [[stream, [(id, fields), ...]]]; a trimmed entry has no fields.
    answer = await client.xreadgroup(group, consumer, {stream: after}, count=count, block=block)
    return [
        (bytes(entry_id).decode(), fields)
        for _, batch in cast("list[Any]", answer or [])
        for entry_id, fields in batch
    ]


class Reader:
    """Reads one stream key into the shared read-ahead queue until told to stop."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        consumer: str,
        stream: str,
        health: ProjectorHealth,
        in_flight: InFlight,
    ) -> None:
        self.settings = settings
        self.client = client
        self.consumer = consumer
        self.stream = stream
        self.health = health
        self.in_flight = in_flight

    async def run(self, ahead: asyncio.Queue[Checked], stopping: asyncio.Event) -> None:
        """Stops between reads, never inside one: an answer Redis sent is always queued."""
        while not stopping.is_set():
            try:
                entries = await with_backoff(
                    self._read,
                    on=RedisError,
                    what=f"Redis unavailable reading {self.stream}",
                    log=log,
                    failed=self._down,
                    stop=stopping,
                )
            except Stopped:
                return
            self.health.redis_ok = True
            if entries:
                await self.queue(ahead, entries)

    async def _read(self) -> StreamEntries:
        try:
            return await read(
                self.client,
                self.settings.group,
                self.consumer,
                self.stream,
                count=self.settings.batch_size,
                block=self.settings.block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis came back without its data: join again
                await ensure_group(self.client, self.stream, self.settings.group)
            raise

    def _down(self, _exc: BaseException) -> None:
        self.health.redis_ok = False

    async def queue(self, ahead: asyncio.Queue[Checked], entries: StreamEntries) -> None:
        """Validate the batch and queue it for a committer (the span per consumed batch)."""
        with _TRACER.start_as_current_span(
            f"{self.stream} process",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "redis",
                "messaging.operation": "process",
                "messaging.destination.name": self.stream,
                "messaging.consumer.group.name": self.settings.group,
                "messaging.batch.message_count": len(entries),
            },
        ):
            metrics.CONSUMED.labels("read").inc(len(entries))
            batch = Checked.of(self.stream, entries)
            self.in_flight.setdefault(self.stream, set()).update(batch.entry_ids)
        await ahead.put(batch)
