"""Publishing JSON lines on the stream exactly as an upstream service would."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from redis.exceptions import RedisError

from stanceline.contract.shards import route, shard_streams
from stanceline.redis_client import RedisClient, ensure_group

_CHUNK = 500


async def publish_lines(
    client: RedisClient,
    stream: str,
    lines: Iterable[bytes],
    *,
    shards: int = 1,
    group: str | None = None,
) -> Counter[str]:
    """``XADD <shard key> * event <line>`` per non-blank line, pipelined; counts per key.

    Each line goes to the shard `contract.shards.route` names (with one shard, the
    stream itself), the same rule every publisher follows. With ``group``, every
    shard key is created first with the consumer group on it (at ``0``), so the
    stream exists as exactly its N keys, each ready for the projectors.

    Lines are sent as they are: validating is the projector's job, and a bad
    line must reach its dead-letter table like any upstream's mistake would.
    Redis is asked first (``PING``), so an unreachable one fails before any input
    is read; a failure after some chunks went through says how many lines did.
    """
    await client.ping()
    if group is not None:
        for key in shard_streams(stream, shards):
            await ensure_group(client, key, group)
    sent: Counter[str] = Counter()
    confirmed = 0
    pipe = client.pipeline(transaction=False)
    try:
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            key = route(stream, shards, line)
            pipe.xadd(key, {"event": line})
            sent[key] += 1
            if sent.total() % _CHUNK == 0:
                await pipe.execute()
                confirmed = sent.total()
        await pipe.execute()
    except RedisError as exc:
        if confirmed:
            exc.add_note(
                f"the first {confirmed} entries were published before the failure; "
                "those after them may or may not have been"
            )
        raise
    return sent
