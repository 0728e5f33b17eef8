"""The consumer group's lag and pending count, read from Redis for the gauges.

Polled rather than computed: Redis knows both for the whole group (every
replica's entries), which no single consumer does. A sharded stream has a group
per shard: each shard's figures are labelled by its stream key, and the
unlabelled gauges are the sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from stanceline.contract.shards import shard_streams
from stanceline.projector import metrics
from stanceline.redis_client import RedisClient
from stanceline.settings import Settings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0


async def watch_group(
    client: RedisClient,
    settings: Settings,
    stopping: asyncio.Event,
    streams: Sequence[str] | None = None,
) -> None:
    """Refresh the group gauges until ``stopping`` is set."""
    while not stopping.is_set():
        await refresh(client, settings, streams)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), INTERVAL_SECONDS)


async def refresh(
    client: RedisClient, settings: Settings, streams: Sequence[str] | None = None
) -> None:
    """``streams``: the stream keys to read (default: every shard of the stream)."""
    keys = shard_streams(settings.stream, settings.stream_shards) if streams is None else streams
    pending_total, lag_total, lag_known = 0, 0, True
    for stream in keys:
        try:
            groups: list[dict[Any, Any]] = await client.xinfo_groups(stream)
        except RedisError as exc:
            log.debug("no group gauges this time: %s", exc)
            return
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != settings.group:
                continue
            pending = int(group.get("pending") or 0)
            pending_total += pending
            metrics.SHARD_PENDING.labels(stream).set(pending)
            lag = group.get("lag")
            if lag is None:  # Redis answers nil when it cannot tell (a trimmed stream; 6.2)
                lag_known = False
            else:
                lag_total += int(lag)
                metrics.SHARD_LAG.labels(stream).set(int(lag))
    metrics.GROUP_PENDING.set(pending_total)
    if lag_known:
        metrics.GROUP_LAG.set(lag_total)
