"""Rebuilding the projection from ``events`` alone, with readers and writers running."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from test_store import SCENARIO, store

from stanceline.contract import Event
from stanceline.ops import rebuild as rebuilding
from stanceline.readmodel.app import create_app
from stanceline.store import shadow
from stanceline.store.db import reading, writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from stanceline.store.tables import metadata
from support.dump import dump_projection, predicted_series_rows, series_rows
from support.events import parsed, statement
from support.http import serve

US_HISTORY = "/v1/actors/us/topics/us-arms-strikes-inside-russia/history?include_descendants=true"


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_rebuild_reproduces_the_live_projection_and_keeps_the_schema(
    engine: AsyncEngine,
) -> None:
    await store(engine, SCENARIO, batch=5)
    live = await dump_projection(engine)

    trial = await rebuilding.rebuild(engine, dry_run=True, chunk=7)
    assert trial.swapped is False
    assert trial.differences == dict.fromkeys(trial.differences, 0)
    assert await dump_projection(engine) == live

    report = await rebuilding.rebuild(engine, chunk=7)

    assert report.swapped
    assert report.events == len(SCENARIO)
    assert await dump_projection(engine) == live
    async with engine.connect() as conn:
        assert await conn.run_sync(_drift) == []
        meta = (await conn.execute(sa.text("SELECT events FROM projection_meta"))).one()
        schemas = await conn.scalar(
            sa.text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'stanceline_%'")
        )
    assert meta.events == len(SCENARIO)
    assert schemas == 0


async def test_an_interrupted_rebuild_leaves_live_tables_alone_and_can_be_rerun(
    engine: AsyncEngine,
) -> None:
    await store(engine, SCENARIO, batch=9)
    live = await dump_projection(engine)
    # Half a rebuild, then the process "dies": the shadow schema stays behind.
    async with engine.begin() as conn:
        await shadow.create_shadow(conn)
    await rebuilding._catch_up(engine, "public", 0, 10, 5, None, 0)
    assert await dump_projection(engine) == live

    report = await rebuilding.rebuild(engine)

    assert report.swapped
    assert await dump_projection(engine) == live


def _more(n: int) -> list[Event]:
    return [
        parsed(
            statement(
                f"late-{n}-{k}",
                f"late.{n}.{k}",
                "us.dod",
                "us-arms-strikes-inside-russia",
                ["support", "oppose"][k % 2],
                f"2025-0{1 + k % 9}-1{n % 10}T00:00:00Z",
            )
        )
        for k in range(5)
    ]


async def test_rebuild_while_reading_and_writing_fails_no_read(engine: AsyncEngine) -> None:
    await store(engine, SCENARIO, batch=3)
    app = create_app(engine=engine)
    written: list[Event] = list(SCENARIO)
    statuses: list[int] = []
    finished = asyncio.Event()

    async def reader(client: httpx.AsyncClient) -> None:
        while not finished.is_set():
            statuses.append((await client.get(US_HISTORY)).status_code)

    async def writer() -> None:
        n = 0
        while not finished.is_set():
            batch = _more(n)
            async with writing(engine) as conn:
                await store_batch(conn, [Accepted(e, b"{}") for e in batch])
            written.extend(batch)
            n += 1
            await asyncio.sleep(0.005)

    async with serve(app) as client:
        tasks = [asyncio.create_task(reader(client)) for _ in range(3)]
        tasks.append(asyncio.create_task(writer()))
        report = await rebuilding.rebuild(engine, chunk=4)
        finished.set()
        await asyncio.gather(*tasks)

    assert report.swapped
    assert statuses
    assert set(statuses) == {200}, f"{len([s for s in statuses if s != 200])} failed reads"
    assert len(written) > len(SCENARIO), "nothing was written during the rebuild"
    assert await series_rows(engine) == predicted_series_rows(written)
    check = await rebuilding.rebuild(engine, dry_run=True)
    assert check.differences == dict.fromkeys(check.differences, 0)


async def test_dropping_retired_tables_lets_a_reader_holding_some_of_them_finish(
    engine: AsyncEngine,
) -> None:
    """After a swap, a read whose prepared statement was planned on the tables now
    retired locks them again while Postgres re-plans it, in its own order. Here the
    reader holds ``b``, the drop takes ``a`` and waits for ``b``, and the reader then
    asks for ``a``: a plain DROP SCHEMA deadlocks with it (one of the two fails after
    Postgres's deadlock_timeout); the drop must let go and try again instead."""
    retired = shadow.RETIRED
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {retired}"))
        for name in ("a", "b"):
            await conn.execute(sa.text(f"CREATE TABLE {retired}.{name} (x int PRIMARY KEY)"))

    async def drop() -> None:
        async with engine.begin() as conn:
            await shadow.drop_schema(conn, retired)

    async with engine.connect() as reader, engine.connect() as watcher:
        await reader.execute(sa.text(f"SELECT count(*) FROM {retired}.b"))
        dropping = asyncio.create_task(drop())
        held = sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'a' AND c.relnamespace = CAST(:schema AS regnamespace)"
            " AND l.mode = 'AccessExclusiveLock' AND l.granted"
        )
        for _ in range(400):
            if await watcher.scalar(held, {"schema": retired}):
                break
            await watcher.rollback()
            await asyncio.sleep(0.005)
        else:
            pytest.fail("the drop never took the first table")
        await reader.execute(sa.text(f"SELECT count(*) FROM {retired}.a"))
        await reader.commit()
    await asyncio.wait_for(dropping, 10)
    async with engine.connect() as conn:
        left = await conn.scalar(
            sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :schema"),
            {"schema": retired},
        )
    assert left == 0


async def test_a_second_rebuild_at_the_same_time_is_refused_and_changes_nothing(
    engine: AsyncEngine,
) -> None:
    await store(engine, SCENARIO, batch=10)
    live = await dump_projection(engine)
    async with engine.connect() as other:  # stands for a rebuild running elsewhere
        await other.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": rebuilding._REBUILD_KEY})
        with pytest.raises(rebuilding.RebuildRunning, match="another rebuild is running"):
            await rebuilding.rebuild(engine)
        await other.execute(
            sa.text("SELECT pg_advisory_unlock(:k)"), {"k": rebuilding._REBUILD_KEY}
        )
    assert await dump_projection(engine) == live
    assert (await rebuilding.rebuild(engine)).swapped


async def test_the_swap_waits_for_a_reader_that_holds_tables_in_another_order(
    engine: AsyncEngine,
) -> None:
    """A read snapshot holding ``statements`` then asking for ``actors`` must not deadlock
    with the swap, which moves ``actors`` first: the swap lets go and tries again."""
    await store(engine, SCENARIO, batch=10)
    async with reading(engine) as conn:
        await conn.execute(sa.text("SELECT count(*) FROM statements"))
        swap = asyncio.create_task(rebuilding.rebuild(engine))
        await asyncio.sleep(1.0)  # the swap is queued behind our snapshot by now
        assert not swap.done()
        actors = await conn.scalar(sa.text("SELECT count(*) FROM actors"))
        assert actors
    report = await swap
    assert report.swapped
    assert await series_rows(engine) == predicted_series_rows(SCENARIO)
