"""The consumer group's lag and pending count, read from Redis for the gauges.

Polled rather than computed: Redis knows both for the whole group (every
replica's entries), which no single consumer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stanceline.projector import metrics
from stanceline.settings import Settings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0


async def watch_group(client: aioredis.Redis, settings: Settings, stopping: asyncio.Event) -> None:
    """Refresh the group gauges until ``stopping`` is set."""
    while not stopping.is_set():
        await refresh(client, settings)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), INTERVAL_SECONDS)


async def refresh(client: aioredis.Redis, settings: Settings) -> None:
    try:
        groups: list[dict[Any, Any]] = await client.xinfo_groups(settings.stream)
    except RedisError as exc:
        log.debug("no group gauges this time: %s", exc)
        return
    for group in groups:
        name = group.get("name")
        if (name.decode() if isinstance(name, bytes) else name) != settings.group:
            continue
        metrics.GROUP_PENDING.set(int(group.get("pending") or 0))
        lag = group.get("lag")
        if lag is not None:  # Redis answers nil when it cannot tell (a trimmed stream)
            metrics.GROUP_LAG.set(int(lag))
