"""One place that turns ``STANCELINE_REDIS_URL`` into a client: a server, or a cluster.

``redis+cluster://host:port`` names any one node of a Redis Cluster and selects
redis-py's cluster client, which finds the others and routes each command by
its key's slot. Every other URL is a single server. The projector, the
operator commands, the admin routes and ``publish`` all connect through here,
so a deployment switches to a cluster by changing the URL alone.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
"""A single server's client or a cluster's: both speak the stream commands we use."""

CLUSTER_SCHEME = "redis+cluster://"
_CLUSTER_TLS_SCHEME = "rediss+cluster://"


def is_cluster(url: str) -> bool:
    return url.startswith((CLUSTER_SCHEME, _CLUSTER_TLS_SCHEME))


def connect(url: str, **options: Any) -> RedisClient:
    """A client for ``url``; nothing connects until the first command."""
    if url.startswith(CLUSTER_SCHEME):
        return RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME) :], **options)
    if url.startswith(_CLUSTER_TLS_SCHEME):
        return RedisCluster.from_url("rediss://" + url[len(_CLUSTER_TLS_SCHEME) :], **options)
    return aioredis.Redis.from_url(url, **options)


async def ensure_group(client: RedisClient, stream: str, group: str) -> None:
    """Create the group at ``0`` so entries published before any projector ran count too.

    ``MKSTREAM`` creates the stream key with it: a shard nobody published to yet
    exists, with its group, before the first entry.
    """
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
