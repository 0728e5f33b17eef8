"""Reads from a hot standby: the changes feed skips nothing and repeats nothing.

A primary and a standby made with ``pg_basebackup -R`` (fixtures/replication.py).
Writers commit on the primary concurrently and out of order on purpose (one holds its
transaction open while later ones commit, others linger before committing, and a corpus
goes in through the projector's own path), while a follower pages the feed from a real
``stanceline api`` that reads the standby (STANCELINE_READ_DATABASE_URL) with no writer
URL at all. Once the standby has replayed everything, the follower reads to the end, and
what it saw must be the primary's feed table, in order, once each. The standby's
``pg_current_snapshot()`` knows the primary's transactions in flight from the WAL, so the
cursor's horizon holds there as it does on the primary.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from faults.corpus import generate
from fixtures.replication import Replicated, primary_and_standby
from stanceline.ops.migrate import migrate
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.readmodel.app import create_app
from stanceline.settings import Settings
from stanceline.store.db import create_engine, writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import parsed, statement
from support.http import serve
from support.running import eventually
from support.service import service_running

CHANGES = (
    "SELECT status, actor_id, topic_id, statement_id, change FROM changes"
    " WHERE NOT rollup ORDER BY xact_id, id"
)


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    with primary_and_standby() as pair:
        yield pair


@pytest.fixture(scope="module")
async def primary(replicated: Replicated) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(replicated.url(replicated.primary_port))
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def standby(replicated: Replicated, primary: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(replicated.url(replicated.standby_port))
    await caught_up(primary, engine)
    yield engine
    await engine.dispose()


async def caught_up(primary: AsyncEngine, standby: AsyncEngine) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    async with primary.connect() as conn:
        target = await conn.scalar(sa.text("SELECT pg_current_wal_lsn()::text"))

    async def behind() -> bool:
        async with standby.connect() as conn:
            return bool(
                await conn.scalar(
                    sa.text("SELECT pg_last_wal_replay_lsn() < CAST(CAST(:t AS text) AS pg_lsn)"),
                    {"t": target},
                )
            )

    await eventually(behind, lambda b: not b, within=30)


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(sa.text(sql))]


def entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry[k] for k in ("status", "actor_id", "topic_id", "statement_id", "change"))


async def test_the_feed_read_from_a_standby_skips_and_repeats_nothing(
    replicated: Replicated, primary: AsyncEngine, standby: AsyncEngine, tmp_path: Path
) -> None:
    rng = random.Random(18)
    lines = founding_lines() + generate(2000, seed=18).lines
    done = asyncio.Event()

    def flip(actor: str, topic: str, tag: str) -> list[Accepted]:
        documents = [
            statement(f"{tag}-1", f"{tag}.1", actor, topic, "oppose", "2024-01-01T00:00:00Z"),
            statement(f"{tag}-2", f"{tag}.2", actor, topic, "support", "2024-02-01T00:00:00Z"),
        ]
        return [Accepted(parsed(d), b"{}") for d in documents]

    async def lingering(n: int) -> None:
        batch = [a for k in range(3) for a in flip(f"sb-{(n + k) % 4}", f"st-{k}", f"l{n}k{k}")]
        async with writing(primary) as conn:
            await store_batch(conn, batch)
            await asyncio.sleep(rng.uniform(0, 0.3))

    async def early() -> None:
        """Takes a low transaction id and stays open while later ones commit."""
        async with writing(primary) as conn:
            await store_batch(conn, flip("sb-early", "st-early", "early"))
            await asyncio.sleep(1.0)

    async def corpus(part: int) -> None:
        mine = lines[part::3]
        for start in range(0, len(mine), 40):
            chunk = [
                Entry(f"{part}-{start + i}", line)
                for i, line in enumerate(mine[start : start + 40])
            ]
            await pipeline.commit(primary, chunk, stream=f"standby-test-{part}")

    env = {
        "STANCELINE_DATABASE_URL": "",
        "STANCELINE_READ_DATABASE_URL": replicated.url(replicated.standby_port),
        "STANCELINE_REDIS_URL": "",
    }
    async with service_running(["api"], env, tmp_path) as api:
        log = api.output()
        assert "migrat" not in log.lower(), log
        async with httpx.AsyncClient(base_url=api.base_url) as http:

            async def follow() -> list[Any]:
                seen: list[Any] = []
                cursor: str | None = None
                while True:
                    finished = done.is_set()
                    params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
                    answer = await http.get("/v1/changes", params=params)
                    assert answer.status_code == 200, answer.text
                    page, cursor = answer.json()["changes"], answer.json()["next_cursor"]
                    seen += page
                    if finished and not page:
                        return seen
                    if not page:
                        await asyncio.sleep(0.02)

            following = asyncio.create_task(follow())
            await asyncio.gather(early(), *(lingering(n) for n in range(8)), *map(corpus, range(3)))
            await caught_up(primary, standby)
            done.set()
            seen = await following

            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["replica_lag_seconds"] == 0

    expected = await rows(primary, CHANGES)
    assert len(expected) > 1000
    assert [entry_key(e) for e in seen] == expected
    assert await rows(standby, CHANGES) == expected


async def test_readyz_reports_the_standby_lag_and_refuses_beyond_the_limit(
    replicated: Replicated, primary: AsyncEngine, standby: AsyncEngine
) -> None:
    settings = Settings(max_replica_lag_s=0.5)
    app = create_app(database_url=replicated.url(replicated.standby_port), settings=settings)
    async with serve(app) as http:
        idle = await http.get("/readyz")
        assert idle.status_code == 200, idle.text
        assert idle.json()["replica_lag_seconds"] == 0
        async with standby.connect() as conn:
            await conn.execute(sa.text("SELECT pg_wal_replay_pause()"))
            await conn.commit()
        try:
            await asyncio.sleep(1.0)
            async with primary.begin() as conn:  # a commit the standby receives, not replays
                await conn.execute(sa.text("CREATE TEMP TABLE lag_probe (x int)"))
            behind = await eventually(lambda: http.get("/readyz"), lambda r: r.status_code == 503)
            assert "STANCELINE_MAX_REPLICA_LAG_S" in behind.text
        finally:
            async with standby.connect() as conn:
                await conn.execute(sa.text("SELECT pg_wal_replay_resume()"))
                await conn.commit()
        await caught_up(primary, standby)
        again = await http.get("/readyz")
        assert again.status_code == 200, again.text
        assert again.json()["replica_lag_seconds"] == 0
