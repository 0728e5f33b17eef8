"""A batch too large for Postgres' lock table, on a Postgres of its own.

The write path takes a transaction-scoped advisory lock per statement and per tree and
topic a batch touches, and one server's lock table holds them for all its sessions together. A
batch that does not fit fails with "out of shared memory", an error of the class that
also means an outage; retried as it is, it would fail for ever. Filling the table
troubles every other session on that server, so that trial runs on a private embedded
Postgres with a small table, never on the shared test server. How many locks a batch
holds is counted on the shared one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _dsn
from stanceline.embedded import EmbeddedPostgres
from stanceline.ops.migrate import migrate
from stanceline.projector import pipeline
from stanceline.store.db import create_engine, writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import actor, parsed, statement


@pytest.fixture
async def small_server(embedded_data_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(embedded_data_dir)
    server.start()
    try:
        admin = await asyncpg.connect(_dsn(server.admin_url()))
        try:
            await admin.execute("ALTER SYSTEM SET max_locks_per_transaction = 16")
            await admin.execute("ALTER SYSTEM SET max_connections = 20")
        finally:
            await admin.close()
        server.stop()
        server.start()  # both settings take effect only at server start
        yield server
    finally:
        server.stop()


async def _lock_capacity(url: str) -> int:
    """How many advisory locks one transaction can take on this server, found by trying:
    the table's nominal size (16 x 20) leaves out the spare shared memory it may grow
    into."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        size, fits = 250, 0
        while True:
            try:
                async with conn.transaction():
                    await conn.fetchval(
                        "SELECT count(pg_advisory_xact_lock(k))"
                        f" FROM generate_series(1, {size}) AS keys(k)"
                    )
            except asyncpg.exceptions.OutOfMemoryError:
                return fits
            fits, size = size, size * 5 // 4
    finally:
        await conn.close()


@pytest.fixture
async def small_engine(small_server: EmbeddedPostgres) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(small_server.url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


async def test_a_batch_too_large_for_the_lock_table_is_stored_in_halves(
    small_server: EmbeddedPostgres, small_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    capacity = await _lock_capacity(small_server.url)
    assert capacity > 100  # the probe found a table, not a broken server
    # One statement lock each, plus the series: twice what the table holds in one
    # transaction (the probe's steps are a quarter apart); a quarter of it fits.
    n = 2 * capacity
    documents = [
        statement(
            f"big-{i}", f"s-{i}", f"a{i % 7}", "t", "support", f"2024-01-01T00:00:{i % 60:02d}Z"
        )
        for i in range(n)
    ]
    items = [
        Accepted(parsed(document), json.dumps(document).encode(), f"{i + 1}-0")
        for i, document in enumerate(documents)
    ]

    with caplog.at_level("WARNING"):
        report = await pipeline.store_checked(small_engine, items, stream="s")

    assert (report.appended, report.dead_lettered) == (n, 0)
    assert await _count(small_engine, "events") == n
    assert await _count(small_engine, "statements") == n
    assert await _count(small_engine, "dead_letters") == 0
    warned = [
        r.getMessage() for r in caplog.records if "max_locks_per_transaction" in r.getMessage()
    ]
    assert warned
    assert f"a batch of {n} entries" in warned[0]


async def test_a_batch_holds_a_lock_per_statement_and_per_tree_and_topic(
    engine: AsyncEngine,
) -> None:
    """The lock budget of a batch, counted in pg_locks before it commits: the hierarchy's,
    one per statement, and one per (topic, top-level actor) its points fall under, not one
    per series (own and rolled-up, about three per statement here)."""
    registrations = [
        actor("r1", "us"),
        actor("r2", "us-nsc", "us"),
        actor("r3", "us-dod", "us"),
        actor("r4", "us-dod-press", "us-dod"),
        actor("r5", "ru"),
    ]
    speakers = ["us", "us-nsc", "us-dod", "us-dod-press", "ru", "ua"]  # ua: never registered
    topics = ["arms", "strikes"]
    documents = [
        statement(
            f"e{i}",
            f"s{i}",
            speakers[i % 6],
            topics[i % 4 // 2],
            "support",
            f"2024-05-{i + 1:02d}T00:00:00Z",
        )
        for i in range(24)
    ]
    trees = {
        "us": "us",
        "us-nsc": "us",
        "us-dod": "us",
        "us-dod-press": "us",
        "ru": "ru",
        "ua": "ua",
    }
    expected = (
        1
        + len(documents)
        + len({(d["data"]["topic_id"], trees[d["data"]["actor_id"]]) for d in documents})
    )

    async with writing(engine) as conn:
        await store_batch(
            conn, [Accepted(parsed(d), json.dumps(d).encode()) for d in registrations]
        )
    async with writing(engine) as conn:
        report = await store_batch(
            conn, [Accepted(parsed(d), json.dumps(d).encode()) for d in documents]
        )
        held = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        )

    assert report.appended == len(documents)
    assert held == expected  # 1 + 24 + 6
