"""The heartbeat: this consumer's in-flight entries must never look abandoned."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from stanceline.redis_client import RedisClient
from stanceline.settings import Settings

log = logging.getLogger(__name__)

_CLAIM_CHUNK = 1000
"""Entry ids per XCLAIM, so one command stays small however much is in flight."""


async def keep_in_flight(
    client: RedisClient, settings: Settings, consumer: str, in_flight: dict[str, set[str]]
) -> None:
    """Keep the entries this consumer holds from looking abandoned; runs until cancelled.

    A batch can wait in the read-ahead queue, or for another batch's locks,
    longer than the reclaim threshold. Reclaimers elsewhere would then claim
    it, each claim counting as a delivery, until the delivery cap dead-letters
    valid entries. So, while the process lives, its in-flight entries are
    re-claimed by itself with ``JUSTID`` (which resets their idle time and
    counts no delivery) once they are idle half the threshold; an entry that
    another consumer claimed more recently is younger than that and is left
    alone. When the process dies the heartbeat stops with it, and its entries
    are reclaimed as before. At shutdown it beats until the last batch is done.
    ``in_flight`` holds each stream key's (shard's) entries.
    """
    half = settings.reclaim_idle_ms // 2
    while True:
        for stream, held in list(in_flight.items()):
            ids: list[Any] = sorted(held)
            try:
                for start in range(0, len(ids), _CLAIM_CHUNK):
                    await client.xclaim(
                        stream,
                        settings.group,
                        consumer,
                        min_idle_time=half,
                        message_ids=ids[start : start + _CLAIM_CHUNK],
                        justid=True,
                    )
            except RedisError as exc:
                log.warning("could not refresh in-flight entries (%s); trying again", exc)
        await asyncio.sleep(half / 2000)
