"""Eight shards on a real three-master Redis Cluster: nothing lost, nothing doubled.

The founding example and a 20,000-line synthetic corpus (duplicates and invalid lines
included, `faults/corpus.py`) are published across 8 shards with `publish_lines`, the
path of `stanceline publish`. Two `stanceline projector` processes consume them, one
reading shards 0-5 and the other 2-7 (STANCELINE_SHARDS); the second is SIGKILLed twice
mid-ingest and started again under a new name, so what it held comes back only through
the reclaimer. The result is held to the corpus (every valid event once, every invalid
line dead-lettered once, with its shard's stream key) and to a single-stream run of the
same lines through the in-process projector: the projection tables must be equal.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _admin, founding_lines
from faults.corpus import generate
from fixtures.redis_cluster import RedisCluster, running_cluster
from fixtures.servers import PostgresServer
from stanceline.contract import Rejection, parse_event
from stanceline.contract.shards import shard_streams
from stanceline.ops.publish import publish_lines
from stanceline.redis_client import connect
from stanceline.settings import Settings
from stanceline.store.db import create_engine
from support.dump import dump_projection
from support.running import eventually, projector_running
from support.service import projector_child
from support.streams import group_drained

SHARDS = 8
LINES = 20_000


async def _scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(sql)) or 0)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
async def baseline_engine(
    postgres_server: PostgresServer, template_database: str
) -> AsyncIterator[AsyncEngine]:
    name = f"b_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    engine = create_engine(postgres_server.url_for(name))
    yield engine
    await engine.dispose()
    await _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_eight_shards_on_a_cluster_with_a_projector_killed_twice(
    redis_cluster: RedisCluster,
    settings: Settings,
    engine: AsyncEngine,
    baseline_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    corpus = generate(LINES, seed=18)
    lines = founding_lines() + corpus.lines
    now = datetime.now(UTC)
    founding = [parse_event(line, now=now) for line in founding_lines()]
    expected = {e.id for e in corpus.events} | {
        e.id for e in founding if not isinstance(e, Rejection)
    }
    keys = shard_streams(settings.stream, SHARDS)
    assert {redis_cluster.master_of(k) for k in keys} == set(redis_cluster.ports)

    client = connect(redis_cluster.url)
    try:
        sent = await publish_lines(
            client, settings.stream, lines, shards=SHARDS, group=settings.group
        )
        assert sorted(sent) == sorted(keys)
        assert sent.total() == len(lines)
        assert not await client.exists(settings.stream)  # no unsharded key

        env = {
            "STANCELINE_DATABASE_URL": settings.database_url or "",
            "STANCELINE_REDIS_URL": redis_cluster.url,
            "STANCELINE_STREAM": settings.stream,
            "STANCELINE_GROUP": settings.group,
            "STANCELINE_STREAM_SHARDS": str(SHARDS),
            "STANCELINE_BATCH_SIZE": "200",
            "STANCELINE_RECLAIM_IDLE_MS": "1000",
        }
        steady = {**env, "STANCELINE_SHARDS": "0-5", "STANCELINE_CONSUMER": "steady"}
        async with projector_child(steady, tmp_path / "steady.log"):
            for life in range(3):
                victim = {
                    **env,
                    "STANCELINE_SHARDS": "2-7",
                    "STANCELINE_CONSUMER": f"victim-{life}",
                }
                async with projector_child(victim, tmp_path / "victim.log", append=True) as process:
                    if life == 2:
                        await eventually(
                            lambda: group_drained(client, keys, settings.group),
                            bool,
                            within=180,
                        )
                        continue
                    target = len(expected) * (life + 1) // 3
                    await eventually(
                        lambda: _scalar(engine, "SELECT count(*) FROM events"),
                        lambda n, t=target: n >= t,
                        within=120,
                    )
                    process.send_signal(signal.SIGKILL)
                    await process.wait()
        stored = await _scalar(engine, "SELECT count(*) FROM events")
        async with engine.connect() as conn:
            ids = set((await conn.execute(sa.text("SELECT event_id FROM events"))).scalars())
            dead = (await conn.execute(sa.text("SELECT stream, reason FROM dead_letters"))).all()
    finally:
        await client.aclose()

    assert ids == expected, (len(expected - ids), "lost", len(ids - expected), "unexpected")
    assert stored == len(expected)  # 0 duplicated
    assert len(dead) == corpus.invalid, [r for _, r in dead][:5]
    assert {stream for stream, _ in dead} <= set(keys)
    assert not [r for _, r in dead if r.startswith(("delivery", "store"))]

    # The same lines on one stream, through the in-process projector.
    single = settings.model_copy(
        update={"database_url": None, "stream": f"{settings.stream}:single", "batch_size": 500}
    )
    plain = connect(settings.redis_url or "")
    try:
        await publish_lines(plain, single.stream, lines, group=single.group)
        async with projector_running(single, baseline_engine):
            await eventually(
                lambda: _scalar(baseline_engine, "SELECT count(*) FROM events"),
                lambda n: n == len(expected),
                within=180,
            )
            await eventually(
                lambda: group_drained(plain, [single.stream], single.group), bool, within=60
            )
    finally:
        await plain.aclose()
    assert await dump_projection(engine) == await dump_projection(baseline_engine)
