"""Publishing JSON lines on the stream exactly as an upstream service would."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

_CHUNK = 500


async def publish_lines(client: aioredis.Redis, stream: str, lines: Iterable[bytes]) -> int:
    """``XADD stream * event <line>`` per non-blank line, pipelined; returns the count.

    Lines are sent as they are: validating is the projector's job, and a bad
    line must reach its dead-letter table like any upstream's mistake would.
    Redis is asked first (``PING``), so an unreachable one fails before any input
    is read; a failure after some chunks went through says how many lines did.
    """
    await client.ping()
    sent = confirmed = 0
    pipe = client.pipeline(transaction=False)
    try:
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            pipe.xadd(stream, {"event": line})
            sent += 1
            if sent % _CHUNK == 0:
                await pipe.execute()
                confirmed = sent
        await pipe.execute()
    except RedisError as exc:
        if confirmed:
            exc.add_note(
                f"the first {confirmed} entries were published before the failure; "
                "those after them may or may not have been"
            )
        raise
    return sent
