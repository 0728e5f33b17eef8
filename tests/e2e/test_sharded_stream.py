"""A sharded stream on one Redis, through the commands an operator runs.

`stanceline publish` creates exactly the N shard keys, each with the group and no
unsharded key; a projector reads them all; `status --json` lists each shard with its
key and length and the total under `stream.length`; `replay` goes over every shard;
the group gauges carry each shard's figures and their sums. The Redis Cluster side is
tests/integration/test_redis_cluster.py.
"""

from __future__ import annotations

import redis.asyncio as aioredis
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from test_cli_ops import environment, stanceline

from conftest import FOUNDING, founding_lines
from stanceline.contract.shards import route, shard_streams
from stanceline.projector import gauges
from stanceline.settings import Settings
from support.running import eventually, projector_running

SHARDS = 4


async def _stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM events")) or 0)


async def test_a_sharded_stream_is_published_consumed_reported_and_replayed_per_shard(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    sharded = settings.model_copy(update={"stream_shards": SHARDS})
    env = {**environment(sharded), "STANCELINE_STREAM_SHARDS": str(SHARDS)}
    keys = shard_streams(settings.stream, SHARDS)
    lines = founding_lines()
    expected = {key: sum(route(settings.stream, SHARDS, line) == key for line in lines)
                for key in keys}  # fmt: skip

    published = (await stanceline(env, "publish", str(FOUNDING), "--json")).json()
    assert published["published"] == len(lines)
    assert published["shards"] == {k: n for k, n in expected.items() if n}
    assert await redis_client.exists(*keys) == SHARDS  # every key, even one with no entry
    assert not await redis_client.exists(settings.stream)
    for key in keys:
        groups = await redis_client.xinfo_groups(key)
        assert [g["name"].decode() for g in groups] == [settings.group]

    before = (await stanceline(env, "status", "--json")).json()["stream"]
    assert before["name"] == settings.stream
    assert before["length"] == len(lines)
    assert [(s["name"], s["length"]) for s in before["shards"]] == list(expected.items())
    assert before["groups"][0]["lag_entries"] == len(lines)

    async with projector_running(sharded, engine):
        await eventually(lambda: _stored(engine), lambda n: n == len(lines), within=60)
        await gauges.refresh(redis_client, sharded)
        for key in keys:
            assert REGISTRY.get_sample_value(
                "stanceline_consumer_group_shard_pending", {"stream": key}
            ) in (0, None)
        assert REGISTRY.get_sample_value("stanceline_consumer_group_pending") == 0

    after = (await stanceline(env, "status", "--json")).json()["stream"]
    assert after["groups"][0]["lag_entries"] == 0
    assert after["groups"][0]["pending"] == 0
    one = (await stanceline(env, "status", "--json", "--stream", keys[0])).json()["stream"]
    assert (one["name"], one["length"]) == (keys[0], expected[keys[0]])

    replayed = (await stanceline(env, "replay", "--from", "-", "--json")).json()
    assert replayed["entries"] == len(lines)
    assert replayed["duplicates"] == len(lines)
    assert [(s["stream"], s["entries"]) for s in replayed["shards"]] == list(expected.items())
    assert replayed["new"] == 0
