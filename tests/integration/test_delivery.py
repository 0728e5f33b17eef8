"""Delivery under faults: poison past the cap, a Postgres outage, replicas, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from fixtures.servers import PostgresServer, RedisServer
from stanceline.projector.consumer import ensure_group
from stanceline.settings import Settings
from stanceline.store.db import create_engine
from stanceline.store.locks import HIERARCHY_KEY
from support.dump import dump_projection
from support.events import actor, retraction, statement
from support.running import eventually, projector_running


async def scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(sql))


async def pending(client: aioredis.Redis, settings: Settings) -> int:
    return int((await client.xpending(settings.stream, settings.group))["pending"])


def corpus(size: int) -> list[bytes]:
    """The founding example, then statements that drift and flip, corrections,
    retractions (one before its statement) and a hierarchy move."""
    lines = list(founding_lines())
    stances = ["support", "oppose", "neutral"]
    documents: list[dict[str, Any]] = [retraction("early-retraction", "gen.7")]
    for n in range(size):
        documents.append(
            statement(
                f"gen-{n}",
                f"gen.{n}",
                ["us.nsc", "us.dod", "ru.mod", "ua.hur"][n % 4],
                ["us-arms-strikes-inside-russia", "ukraine-behind-belgorod-raid"][n % 2],
                stances[(n * 7) % 3],
                f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
            )
        )
        if n % 10 == 3:
            documents.append(
                statement(
                    f"gen-fix-{n}",
                    f"gen.{n}",
                    "us.dod",
                    "us-arms-strikes-inside-russia",
                    "oppose",
                    "2024-06-15T00:00:00Z",
                    kind="statement.corrected",
                    time=f"2025-02-{1 + n % 28:02d}T00:00:00Z",
                )
            )
    documents.append(actor("move-dod", "us.dod", "us.white-house", time="2025-03-01T00:00:00Z"))
    return lines + [json.dumps(d).encode() for d in documents]


async def publish(client: aioredis.Redis, stream: str, lines: list[bytes]) -> list[str]:
    """XADD each line (one ``event`` field); return the entry ids, in order."""
    pipe = client.pipeline(transaction=False)
    for line in lines:
        pipe.xadd(stream, {"event": line})
    return [bytes(entry_id).decode() for entry_id in await pipe.execute()]


@dataclass(frozen=True)
class Published:
    """A line as the test published it, and what the test made it to be."""

    line: bytes
    event_id: str | None
    """The event id of a line built valid; None for a line built invalid."""


def with_poison_and_repeats(lines: list[bytes]) -> list[Published]:
    """``lines`` (all built valid) with invalid lines and byte-for-byte repeats mixed in.

    Which line is which is known here by construction, not by asking the contract: the
    valid ones are the corpus's documents, and the invalid ones are not JSON, not UTF-8,
    or JSON with none of an event's required attributes but ``specversion`` and ``id``.
    """
    out: list[Published] = []
    for n, line in enumerate(lines):
        out.append(Published(line, json.loads(line)["id"]))
        if n % 41 == 17:
            poison = [
                f"not json: poison line {n}".encode(),
                b"\xff\xfe poison line " + str(n).encode(),
                json.dumps({"specversion": "1.0", "id": f"poison-{n}"}).encode(),
            ][n % 3]
            out.append(Published(poison, None))
        if n % 29 == 11:
            again = lines[n - 7]
            out.append(Published(again, json.loads(again)["id"]))
    return out


async def test_an_entry_past_the_delivery_cap_is_dead_lettered_with_its_count(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    capped = settings.model_copy(update={"max_deliveries": 3, "reclaim_idle_ms": 200})
    await redis_client.xgroup_create(capped.stream, capped.group, id="0", mkstream=True)
    poison, healthy = founding_lines()[0], founding_lines()[1]
    poison_id = (await redis_client.xadd(capped.stream, {"event": poison})).decode()
    await redis_client.xreadgroup(capped.group, "crashed", {capped.stream: ">"}, count=1)
    for _ in range(3):  # three more consumers took it and died: four deliveries in all
        await redis_client.xclaim(capped.stream, capped.group, "crashed", 0, [poison_id])
    await redis_client.hset(f"{capped.stream}:last-errors:{capped.group}", poison_id, "Boom: x")
    healthy_id = (await redis_client.xadd(capped.stream, {"event": healthy})).decode()
    await redis_client.xreadgroup(capped.group, "crashed", {capped.stream: ">"}, count=1)

    async with projector_running(capped, engine):
        await eventually(lambda: pending(redis_client, capped), lambda n: n == 0)

    async with engine.connect() as conn:
        dead = (await conn.execute(sa.text("SELECT * FROM dead_letters"))).one()
        stored = (await conn.execute(sa.text("SELECT stream_entry_id FROM events"))).scalars()
        assert list(stored) == [healthy_id]
    assert dead.stream_entry_id == poison_id
    assert dead.delivery_count == 5
    assert bytes(dead.raw) == poison
    assert "gave up after 5 deliveries" in dead.reason
    assert "last error: Boom: x" in dead.reason


async def test_a_batch_waiting_past_the_reclaim_threshold_is_not_taken_from_its_consumer(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    """Read-ahead batches can wait behind another transaction's locks for longer than
    the reclaim threshold. Reclaimers must not take them from a live consumer: each
    claim would count a delivery, until the cap dead-lettered valid entries."""
    quick = settings.model_copy(update={"reclaim_idle_ms": 300, "max_deliveries": 2})
    lines = founding_lines()[:5]
    async with engine.connect() as blocker:
        # Every batch takes the hierarchy lock first: holding it keeps them all waiting.
        await blocker.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": HIERARCHY_KEY})
        await blocker.commit()
        async with projector_running(quick, engine) as projector:
            try:
                await publish(redis_client, quick.stream, lines)
                await eventually(lambda: pending(redis_client, quick), lambda n: n == len(lines))
                for _ in range(15):  # 1.5 s, five times the threshold
                    taken = await redis_client.xautoclaim(
                        quick.stream, quick.group, "thief", min_idle_time=300, justid=True
                    )
                    assert taken == []
                    await asyncio.sleep(0.1)
                held = await redis_client.xpending_range(
                    quick.stream, quick.group, min="-", max="+", count=100
                )
                assert {p["consumer"].decode() for p in held} == {projector.consumer}
                assert {int(p["times_delivered"]) for p in held} == {1}
            finally:
                unlock = sa.text("SELECT pg_advisory_unlock(:k)")
                await blocker.execute(unlock, {"k": HIERARCHY_KEY})
                await blocker.commit()
            await eventually(lambda: pending(redis_client, quick), lambda n: n == 0)

    assert await scalar(engine, "SELECT count(*) FROM events") == len(lines)
    assert await scalar(engine, "SELECT count(*) FROM dead_letters") == 0


async def test_postgres_going_away_mid_ingest_loses_and_dead_letters_nothing(
    settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    postgres_server: PostgresServer,
) -> None:
    if not postgres_server.controllable:
        pytest.skip("the configured Postgres is not ours to stop")
    lines = corpus(300)
    small = settings.model_copy(update={"batch_size": 20})
    async with projector_running(small, engine) as projector:
        await publish(redis_client, small.stream, lines[:150])
        await eventually(lambda: scalar(engine, "SELECT count(*) FROM events"), lambda n: n > 0)
        await asyncio.to_thread(postgres_server.stop)
        try:
            await publish(redis_client, small.stream, lines[150:])
            await eventually(lambda: _ready(projector.health), lambda ready: not ready)
        finally:
            await asyncio.to_thread(postgres_server.start)
        await eventually(lambda: _lag(redis_client, small), lambda lag: lag == 0, within=60)
        await eventually(lambda: pending(redis_client, small), lambda n: n == 0, within=60)
        await eventually(lambda: _ready(projector.health), lambda ready: ready)

    stored = await scalar(engine, "SELECT count(DISTINCT event_id) FROM events")
    assert stored == len({json.loads(line)["id"] for line in lines})
    assert await scalar(engine, "SELECT count(*) FROM dead_letters") == 0


async def _ready(health: Any) -> bool:
    return bool(health.ready)


async def test_three_replicas_build_the_same_projection_as_one(
    settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    postgres_server: PostgresServer,
    template_database: str,
) -> None:
    from conftest import _admin

    lines = corpus(400)
    single = settings.model_copy(update={"batch_size": 25})
    group = single.model_copy(update={"group": single.group + "-replicas", "batch_size": 7})
    await publish(redis_client, single.stream, lines)
    for name in (single.group, group.group):
        await ensure_group(redis_client, single.stream, name)
    async with projector_running(single, engine):
        await eventually(lambda: pending(redis_client, single), lambda n: n == 0)
        await eventually(lambda: _lag(redis_client, single), lambda lag: lag == 0)
    expected = await dump_projection(engine)

    name = f"replicas_{os.getpid()}_{id(lines)}"
    await _admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    other = create_engine(postgres_server.url_for(name))
    try:
        replicas = [group.model_copy(update={"consumer": f"replica-{n}"}) for n in range(3)]
        async with (
            projector_running(replicas[0], other),
            projector_running(replicas[1], other),
            projector_running(replicas[2], other),
        ):
            await eventually(lambda: _lag(redis_client, group), lambda lag: lag == 0)
            await eventually(lambda: pending(redis_client, group), lambda n: n == 0)
            # All three joined the group and read from it ...
            consumers = await redis_client.xinfo_consumers(group.stream, group.group)
            assert len(consumers) == 3
        assert await dump_projection(other) == expected
        # ... and each left it when it stopped with nothing pending.
        assert await redis_client.xinfo_consumers(group.stream, group.group) == []
    finally:
        await other.dispose()
        await _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _lag(client: aioredis.Redis, settings: Settings) -> int:
    """1 until the group has been handed the stream's last entry (Redis 6.2 has no 'lag')."""
    groups = await client.xinfo_groups(settings.stream)
    group = next(g for g in groups if g["name"].decode() == settings.group)
    last = (await client.xinfo_stream(settings.stream))["last-generated-id"]
    return 0 if group["last-delivered-id"] == last else 1


async def test_sigterm_finishes_the_batch_acks_and_exits_zero(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    published = with_poison_and_repeats(corpus(3000))
    entry_ids = await publish(redis_client, settings.stream, [p.line for p in published])
    what = dict(zip(entry_ids, published, strict=True))
    env = {
        **os.environ,
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
        "STANCELINE_CONSUMER": "to-be-stopped",
        "STANCELINE_BATCH_SIZE": "50",
    }
    log = (tmp_path / "projector.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "stanceline"),
        "projector",
        env=env,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await eventually(lambda: scalar(engine, "SELECT count(*) FROM events"), lambda n: n > 100)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
        log.close()

    assert code == 0, (tmp_path / "projector.log").read_text()
    assert await pending(redis_client, settings) == 0

    # Everything the group handed out (up to its last-delivered id) is acknowledged, so
    # each of those entries must have reached Postgres: its event in ``events`` if the
    # test built it valid, its bytes in ``dead_letters`` if not. Nothing else may be there.
    groups = await redis_client.xinfo_groups(settings.stream)
    group = next(g for g in groups if g["name"].decode() == settings.group)
    last_delivered = group["last-delivered-id"].decode()
    # A RESP2 client (ours) answers [(id, {field: value}), ...], all bytes.
    delivered = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        await redis_client.xrange(settings.stream, min="-", max=last_delivered),
    )
    delivered_ids = [entry_id.decode() for entry_id, _ in delivered]
    assert delivered_ids
    for entry_id, fields in delivered:
        assert fields[b"event"] == what[entry_id.decode()].line
    expected_events = {
        event_id for i in delivered_ids if (event_id := what[i].event_id) is not None
    }
    expected_dead = {i for i in delivered_ids if what[i].event_id is None}
    assert expected_dead, "the stop came before the first invalid line: nothing to check"

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT event_id, stream_entry_id FROM events"))).all()
        dead_rows = (
            await conn.execute(sa.text("SELECT stream_entry_id, raw FROM dead_letters"))
        ).all()
    stored = {event_id for event_id, _ in rows}
    assert len(stored) == len(rows)
    assert stored == expected_events, (
        f"{len(expected_events - stored)} delivered and acknowledged valid events missing "
        f"(e.g. {sorted(expected_events - stored)[:5]}), "
        f"{len(stored - expected_events)} stored that were never delivered as valid"
    )
    assert {entry for _, entry in rows} <= set(delivered_ids)
    assert {entry for entry, _ in dead_rows} == expected_dead
    assert all(bytes(raw) == what[entry].line for entry, raw in dead_rows)


async def test_redis_going_away_mid_ingest_reconnects_and_resumes(
    settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    redis_server: RedisServer,
) -> None:
    if not redis_server.controllable:
        pytest.skip("the configured Redis is not ours to stop")
    lines = corpus(200)
    small = settings.model_copy(update={"batch_size": 20, "reclaim_idle_ms": 1000})
    await ensure_group(redis_client, small.stream, small.group)
    await publish(redis_client, small.stream, lines[:100])
    async with projector_running(small, engine) as projector:
        await eventually(lambda: scalar(engine, "SELECT count(*) FROM events"), lambda n: n > 0)
        await redis_client.execute_command("SAVE")  # the embedded Redis keeps its AOF too
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis_server.start)
        # The test's own client held connections to the old server; the projector's
        # components must find their way back by themselves.
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            await publish(client, small.stream, lines[100:])
            await eventually(lambda: _lag(client, small), lambda lag: lag == 0, within=60)
            await eventually(lambda: pending(client, small), lambda n: n == 0, within=60)
            await eventually(lambda: _ready(projector.health), lambda ready: ready)
        finally:
            await client.aclose()

    stored = await scalar(engine, "SELECT count(DISTINCT event_id) FROM events")
    assert stored == len({json.loads(line)["id"] for line in lines})
    assert await scalar(engine, "SELECT count(*) FROM dead_letters") == 0
