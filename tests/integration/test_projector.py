"""The projector against real Redis and Postgres: every entry ends in events or dead_letters."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
import sqlalchemy as sa
from faststream.redis import RedisBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.settings import Settings
from support.events import raw, statement
from support.running import eventually, projector_running


async def rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.text(sql))).all())


async def pending(client: aioredis.Redis, settings: Settings) -> int:
    info = await client.xpending(settings.stream, settings.group)
    return int(info["pending"])


async def test_entries_published_before_any_projector_are_consumed(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    lines = founding_lines()
    for line in lines:
        await redis_client.xadd(settings.stream, {"event": line})

    async with projector_running(settings, engine):
        stored = await eventually(
            lambda: rows(engine, "SELECT count(*) FROM events"), lambda r: r[0][0] == len(lines)
        )

    assert stored[0][0] == len(lines)
    assert await pending(redis_client, settings) == 0


async def test_hostile_entries_are_dead_lettered_with_reasons_and_acked(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    good = raw(statement("ok-1", "s1", "a", "t", "support", "2024-01-01T00:00:00Z"))
    hostile: list[dict[str, bytes]] = [
        {"event": b"not json"},
        {"event": b"\xff\xfe\x00 not utf-8"},
        {"other": b"no event field here"},
        {"event": json.dumps({"specversion": "1.0", "id": "x"}).encode()},
        {
            "event": raw(
                statement("bad-score", "s2", "a", "t", "oppose", "2024-01-01T00:00:00Z", score=0.5)
            )
        },
    ]
    ids = [await redis_client.xadd(settings.stream, fields) for fields in hostile]
    await redis_client.xadd(settings.stream, {"event": good})

    async with projector_running(settings, engine):
        dead = await eventually(
            lambda: rows(
                engine, "SELECT stream_entry_id, raw, reason, field FROM dead_letters ORDER BY id"
            ),
            lambda r: len(r) == len(hostile),
        )
        events = await eventually(
            lambda: rows(engine, "SELECT event_id FROM events"), lambda r: len(r) == 1
        )
        await eventually(lambda: pending(redis_client, settings), lambda n: n == 0)

    assert [r.stream_entry_id for r in dead] == [i.decode() for i in ids]
    assert bytes(dead[1].raw) == b"\xff\xfe\x00 not utf-8"
    assert all(r.reason for r in dead)
    assert dead[2].field == "event"
    assert dead[4].field == "data.score"
    assert [e.event_id for e in events] == ["ok-1"]


async def test_faststream_publisher_entries_are_accepted(
    settings: Settings, engine: AsyncEngine
) -> None:
    document = statement("fs-1", "s1", "a", "t", "neutral", "2024-01-01T00:00:00Z")
    async with RedisBroker(settings.redis_url or "") as broker:
        await broker.publish(document, stream=settings.stream)

    async with projector_running(settings, engine):
        found = await eventually(
            lambda: rows(engine, "SELECT event_id FROM events"), lambda r: len(r) == 1
        )
    assert found[0].event_id == "fs-1"


async def test_entries_left_pending_by_a_dead_consumer_are_reclaimed(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    await redis_client.xgroup_create(settings.stream, settings.group, id="0", mkstream=True)
    for line in founding_lines()[:5]:
        await redis_client.xadd(settings.stream, {"event": line})
    # A consumer reads them and dies before acknowledging.
    await redis_client.xreadgroup(settings.group, "dead-consumer", {settings.stream: ">"})
    assert await pending(redis_client, settings) == 5

    async with projector_running(settings, engine):
        await eventually(lambda: pending(redis_client, settings), lambda n: n == 0)

    assert (await rows(engine, "SELECT count(*) FROM events"))[0][0] == 5


async def test_a_clean_stop_with_nothing_pending_leaves_the_group(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    """Restarts must not pile up consumers (named host-pid by default) in the group."""
    lines = founding_lines()
    for line in lines:
        await redis_client.xadd(settings.stream, {"event": line})
    async with projector_running(settings, engine):
        await eventually(
            lambda: rows(engine, "SELECT count(*) FROM events"), lambda r: r[0][0] == len(lines)
        )
        await eventually(lambda: pending(redis_client, settings), lambda n: n == 0)
        assert [c["name"] for c in await _consumers(redis_client, settings)] == [
            settings.consumer.encode() if settings.consumer else b""
        ]
    assert await _consumers(redis_client, settings) == []


async def _consumers(client: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    consumers: list[dict[str, Any]] = await client.xinfo_consumers(settings.stream, settings.group)
    return consumers
