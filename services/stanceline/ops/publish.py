"""Publishing JSON lines on the stream exactly as an upstream service would."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

_CHUNK = 500


async def publish_lines(client: aioredis.Redis, stream: str, lines: Iterable[bytes]) -> int:
    """``XADD stream * event <line>`` per non-blank line, pipelined; returns the count.

    Lines are sent as they are: validating is the projector's job, and a bad
    line must reach its dead-letter table like any upstream's mistake would.
    """
    sent = 0
    pipe = client.pipeline(transaction=False)
    for line in lines:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        pipe.xadd(stream, {"event": line})
        sent += 1
        if sent % _CHUNK == 0:
            await pipe.execute()
    await pipe.execute()
    return sent
