"""Bringing back entries left pending, and ending the loop of one that never succeeds.

A consumer that dies leaves its delivered entries pending in the group; the
reclaimer (``XAUTOCLAIM``) takes those idle past the threshold, from any
consumer, and commits them before new batches. Each claim counts as a
delivery, and an entry over ``settings.max_deliveries`` is dead-lettered with
the last error its commits left in the ``<stream>:last-errors:<group>`` hash.
All of it per stream key: a sharded stream is reclaimed shard by shard (the
hash shares its shard's hash tag, so it lives on the same cluster node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from stanceline.health import ProjectorHealth
from stanceline.projector import metrics
from stanceline.projector.committer import Committer
from stanceline.projector.entries import Entry, entry_bytes
from stanceline.redis_client import RedisClient
from stanceline.settings import Settings
from stanceline.store.records import Rejected

log = logging.getLogger(__name__)

Claimed = list[tuple[str, dict[bytes, bytes] | None]]


class LastErrors:
    """Why each pending entry last failed, kept in Redis so any consumer's cap can say it."""

    def __init__(self, client: RedisClient, stream: str, group: str) -> None:
        self.client = client
        self.key = f"{stream}:last-errors:{group}"

    async def remember(self, entry_ids: list[str], exc: Exception) -> None:
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        with contextlib.suppress(RedisError):
            await self.client.hset(self.key, mapping=dict.fromkeys(entry_ids, text))

    async def of(self, entry_ids: list[str]) -> dict[str, str | None]:
        errors = await self.client.hmget(self.key, entry_ids)
        return {
            entry_id: error.decode(errors="replace") if isinstance(error, bytes) else error
            for entry_id, error in zip(entry_ids, errors, strict=True)
        }

    async def forget(self, entry_ids: list[str]) -> None:
        with contextlib.suppress(RedisError):
            await self.client.hdel(self.key, *entry_ids)


class Reclaimer:
    """Reclaims the stream keys it is given, one after the other, on one schedule."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        consumer: str,
        health: ProjectorHealth,
        committer: Committer,
        errors: dict[str, LastErrors],
    ) -> None:
        self.settings = settings
        self.client = client
        self.consumer = consumer
        self.health = health
        self.committer = committer
        self.errors = errors
        """Per stream key: the streams this reclaimer covers, and their last errors."""

    async def run(self, stopping: asyncio.Event) -> None:
        """Reclaim every half threshold until ``stopping`` is set."""
        interval = self.settings.reclaim_idle_ms / 2000
        while not stopping.is_set():
            try:
                await self.reclaim_once()
                self.health.redis_ok = True
            except RedisError as exc:
                self.health.redis_ok = False
                log.warning("reclaim failed (%s); trying again", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)

    async def reclaim_once(self) -> int:
        """Claim entries idle longer than the threshold, from any consumer, and handle them.

        Not while Postgres is away: claiming counts as a delivery, and an outage must
        never push healthy entries over the delivery cap.
        """
        if not self.health.store_ok:
            return 0
        handled = 0
        for stream in self.errors:
            handled += await self._reclaim_stream(stream)
        return handled

    async def _reclaim_stream(self, stream: str) -> int:
        errors = self.errors[stream]
        start = "0-0"
        handled = 0
        while True:
            next_id, claimed, *_ = await self.client.xautoclaim(
                stream,
                self.settings.group,
                self.consumer,
                min_idle_time=self.settings.reclaim_idle_ms,
                start_id=start,
                count=self.settings.batch_size,
            )
            entries = [(i.decode(), fields) for i, fields in claimed if i is not None]
            metrics.RECLAIMED.inc(len(entries))
            metrics.CONSUMED.labels("reclaimed").inc(len(entries))
            if entries:
                retry, capped = await self.over_the_cap(stream, entries)
                if capped:
                    await self.committer.commit(stream, capped)
                    await self.committer.ack(stream, [r.stream_entry_id or "" for r in capped])
                    await errors.forget([r.stream_entry_id or "" for r in capped])
                if retry:
                    with self.committer.before_new_batches():
                        await self.committer.handle(stream, retry)
                handled += len(entries)
            start = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
            if start == "0-0":
                return handled

    async def over_the_cap(self, stream: str, entries: Claimed) -> tuple[Claimed, list[Rejected]]:
        """Split claimed entries into those to retry and those that used up their deliveries.

        Redis counts deliveries (each claim adds one). An entry past the cap has failed
        for a reason other than validation, or killed its consumers, again and again: it is
        dead-lettered with the count and the last error instead of cycling forever.
        """
        ids = [entry_id for entry_id, _ in entries]
        pending = await self.client.xpending_range(
            stream,
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
        last = await self.errors[stream].of(sorted(over))
        capped = []
        for entry_id, fields in entries:
            if entry_id not in over:
                continue
            reason = (
                f"delivery: gave up after {deliveries[entry_id]} deliveries; last error: "
                f"{last[entry_id] or 'none recorded (its consumer stopped while handling it)'}"
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
