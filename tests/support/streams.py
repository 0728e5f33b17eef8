"""What a consumer group on a (sharded) stream has left to do."""

from __future__ import annotations

from collections.abc import Sequence

from stanceline.redis_client import RedisClient


async def group_drained(client: RedisClient, keys: Sequence[str], group: str) -> bool:
    """Every key's ``group`` has handed out everything (``lag``, where Redis reports it:
    7.0 and later) and had all of it acknowledged (nothing pending)."""
    for key in keys:
        for found in await client.xinfo_groups(key):
            if bytes(found["name"]).decode() == group and (
                int(found["pending"]) or int(found.get("lag") or 0)
            ):
                return False
    return True
