"""The history's fast path, held to the slow one it replaced.

A history from the projection is one statement (``ReadConnection.only``), run outside a
transaction on the API's own read engine (``create_read_engine``: read-only sessions, no
pre-ping, a first-come-first-served queue before its pool), its rows written straight to
JSON (``views.history_json``). These tests hold the bytes to what ``schemas.History``
dumps for the same rows (so the documented schema and the ETag do not depend on the
path), the answers of the read engine to those of an ordinary one, and the engine to its
promises: nothing written, no statement after the only one, a connection the server
closed replaced without an error, waiting readers served in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _dsn, founding_lines
from stanceline.contract import Rejection, parse_event
from stanceline.cursors import encode_cursor
from stanceline.readmodel import schemas, views
from stanceline.readmodel.app import create_app
from stanceline.store import queries
from stanceline.store.db import (
    ReadConnection,
    SingleRead,
    create_read_engine,
    reading,
    writing,
)
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.http import serve

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ARMS = "us-arms-strikes-inside-russia"

# Statements beside the founding example's, with what a dump must render the same way:
# fractional seconds, offsets other than UTC, floats of every shape, text that JSON escapes,
# a speaker without a role.
EXTRA = [
    {
        "statement_id": "x.1",
        "actor_id": "us.dod",
        "topic_id": ARMS,
        "stance": "support",
        "said_at": "2024-12-01T09:00:00.123456+02:00",
        "score": 0.1 + 0.2,
        "confidence": 1e-05,
        "speaker": {"name": "Sabrina Singh"},
        "quote": 'Line one\nline "two"\t\\ é ü 中文 \u2028 emoji 🛰',
        "source_url": "https://example.org/a?b=c&d=é",
        "published_at": "2024-12-01T10:00:00.5Z",
        "speech_act": "assert",
        "certainty": "probable",
    },
    {
        "statement_id": "x.2",
        "actor_id": "us.nsc",
        "topic_id": ARMS,
        "stance": "oppose",
        "said_at": "2024-12-02T00:00:00Z",
        "score": -1.0,
        "confidence": 0.333333333333333,
    },
    {
        "statement_id": "x.3",
        "actor_id": "us",
        "topic_id": ARMS,
        "stance": "neutral",
        "said_at": "2024-12-02T00:00:00Z",
        "speaker": {"name": "Joe Biden", "role": "President"},
    },
]


def _event(n: int, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"read-path-{n}",
            "source": "urn:test",
            "type": "stanceline.statement.recorded.v1",
            "time": "2025-01-01T00:00:00Z",
            "data": data,
        }
    ).encode()


async def _load(engine: AsyncEngine) -> None:
    lines = [*founding_lines(), *(_event(n, d) for n, d in enumerate(EXTRA))]
    items = []
    for line in lines:
        event = parse_event(line, now=NOW)
        assert not isinstance(event, Rejection), event
        items.append(Accepted(event, line))
    async with writing(engine) as conn:
        report = await store_batch(conn, items)
    assert (report.appended, report.dead_lettered) == (len(items), 0)


@pytest.fixture
async def loaded(engine: AsyncEngine) -> AsyncEngine:
    await _load(engine)
    return engine


@pytest.fixture
async def read_engine(loaded: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_read_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


def _schema_dump(
    read: queries.SeriesRead,
    *,
    actor_id: str,
    topic_id: str,
    include_descendants: bool,
    as_of: datetime | None,
    limit: int,
) -> bytes:
    """The response as the route built it before: schema models, then pydantic's dump."""
    rows = [SimpleNamespace(**dict(r)) for r in read.points]
    points = [views.point_from_row(r) for r in rows]
    last = SimpleNamespace(**dict(read.last)) if read.last is not None else None
    body = schemas.History(
        actor_id=actor_id,
        topic_id=topic_id,
        include_descendants=include_descendants,
        as_of=as_of,
        known_at=None,
        points=points,
        current=views.current(views.point_from_row(last), actor_id, read.members)
        if last is not None
        else None,
        next_cursor=encode_cursor(points[-1].said_at.isoformat(), points[-1].statement_id)
        if len(points) == limit
        else None,
    )
    return body.model_dump_json().encode()


CASES = [
    ("us", ARMS, True, None, None, 1000),
    ("us", ARMS, False, None, None, 1000),
    ("us.white-house", ARMS, True, None, None, 1000),
    ("us.dod", ARMS, False, None, None, 1000),
    ("us", ARMS, True, datetime(2024, 6, 1, 23, 59, 59, 999999, tzinfo=UTC), None, 1000),
    ("us", ARMS, True, None, None, 2),
    ("us", ARMS, True, None, (datetime(2024, 5, 30, 12, tzinfo=UTC), "x"), 2),
    ("us", ARMS, True, None, (datetime(2024, 12, 1, 7, tzinfo=UTC), "x.0"), 1),
    ("ru", ARMS, True, None, None, 1000),
    ("nobody", ARMS, True, None, None, 1000),
]


@pytest.mark.parametrize(("actor_id", "topic_id", "rollup", "as_of", "after", "limit"), CASES)
async def test_history_bytes_are_what_the_schema_dumps(
    read_engine: AsyncEngine,
    actor_id: str,
    topic_id: str,
    rollup: bool,
    as_of: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> None:
    async with reading(read_engine) as conn:
        read = await queries.read_series(
            conn,
            actor_id,
            topic_id,
            include_descendants=rollup,
            as_of=as_of,
            after=after,
            limit=limit,
        )
    fast = views.history_json(
        actor_id=actor_id,
        topic_id=topic_id,
        include_descendants=rollup,
        as_of=as_of,
        points=read.points,
        last=read.last,
        members=read.members,
        limit=limit,
    )
    slow = _schema_dump(
        read,
        actor_id=actor_id,
        topic_id=topic_id,
        include_descendants=rollup,
        as_of=as_of,
        limit=limit,
    )
    assert fast == slow
    schemas.History.model_validate_json(fast)


async def test_the_extra_statements_are_in_the_history(read_engine: AsyncEngine) -> None:
    """The cases above see the awkward values (not an empty page compared with itself)."""
    async with reading(read_engine) as conn:
        read = await queries.read_series(
            conn, "us", ARMS, include_descendants=True, as_of=None, limit=1000
        )
    ids = [r["statement_id"] for r in read.points]
    assert {"x.1", "x.2", "x.3"} <= set(ids)
    assert read.last is not None
    assert read.last["statement_id"] == "x.3"  # said at the same instant as x.2, later key
    assert read.actor_found
    assert read.topic_found


HISTORIES = [
    "/v1/actors/us/topics/us-arms-strikes-inside-russia/history?include_descendants=true",
    "/v1/actors/us/topics/us-arms-strikes-inside-russia/history?limit=1",
    "/v1/actors/us.white-house/topics/us-arms-strikes-inside-russia/history"
    "?include_descendants=true&limit=2&cursor="
    + encode_cursor("2024-05-30T12:00:00+00:00", "2024-05-30.us.white-house.arms-inside-russia"),
    "/v1/actors/us/topics/us-arms-strikes-inside-russia/history?as_of=2024-06-01"
    "&include_descendants=true",
    "/v1/actors/nobody/topics/us-arms-strikes-inside-russia/history",
    "/v1/actors/us/topics/nothing/history",
]


async def test_the_api_answers_the_same_on_its_own_read_engine(
    loaded: AsyncEngine, database_url: str
) -> None:
    """``create_app(database_url=...)`` (what each ``stanceline api`` worker runs) builds a
    read engine; a handed-in engine is an ordinary one: same status, bytes and ETag."""
    async with (
        serve(create_app(engine=loaded)) as shared,
        serve(create_app(database_url=database_url)) as own,
    ):
        for url in HISTORIES:
            a, b = await shared.get(url), await own.get(url)
            assert (a.status_code, a.content) == (b.status_code, b.content), url
            assert a.headers.get("etag") == b.headers.get("etag"), url
            assert a.headers["content-type"] == b.headers["content-type"], url
            if a.status_code == 200:
                tag = a.headers["etag"]
                again = await own.get(url, headers={"If-None-Match": tag})
                assert (again.status_code, again.content) == (304, b""), url


async def test_read_sessions_cannot_write(read_engine: AsyncEngine) -> None:
    async with read_engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            await conn.execute(sa.text("CREATE TEMPORARY TABLE t (x int)"))


async def test_only_runs_outside_a_transaction_and_nothing_may_follow(
    read_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_transaction(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("only() began a transaction")

    probe = sa.text("SELECT CAST(:x AS int) AS x")
    async with read_engine.connect() as raw:
        conn = ReadConnection(raw)
        # Every BEGIN, SQLAlchemy's or ours, goes through asyncpg's transaction().
        monkeypatch.setattr(asyncpg.Connection, "transaction", no_transaction)
        (row,) = await conn.only(probe, {"x": 7})
        monkeypatch.undo()
        assert row["x"] == 7
        driver = (await raw.get_raw_connection()).driver_connection
        assert driver is not None
        assert not driver.is_in_transaction()
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await conn.execute(sa.text("SELECT 1"))


async def test_only_inside_an_open_transaction_runs_in_it(read_engine: AsyncEngine) -> None:
    async with reading(read_engine) as conn:
        first = await conn.scalar(sa.text("SELECT pg_current_snapshot()::text"))
        await asyncio.sleep(0.01)
        (row,) = await conn.only(sa.text("SELECT pg_current_snapshot()::text AS snapshot"), {})
        assert row["snapshot"] == first
        assert await conn.scalar(sa.text("SELECT 1")) == 1  # still the same transaction


ALONE = ["reading", "single"]
"""The two ways to run a response's one statement alone: ``ReadConnection.only`` in a
``reading`` block, and ``SingleRead`` (straight off the pool, the history route's)."""


def _checked_out(engine: AsyncEngine) -> int:
    pool = engine.sync_engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    return pool.checkedout()


async def _alone(
    form: str, engine: AsyncEngine, statement: sa.TextClause, params: dict[str, Any]
) -> list[Any]:
    if form == "single":
        return await SingleRead(engine).only(statement, params)
    async with reading(engine) as conn:
        return await conn.only(statement, params)


async def test_a_single_read_runs_outside_a_transaction(
    read_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_transaction(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("SingleRead began a transaction")

    probe = sa.text("SELECT CAST(:x AS int) AS x")
    await SingleRead(read_engine).only(probe, {"x": 0})  # the pool's first connect begins one
    monkeypatch.setattr(asyncpg.Connection, "transaction", no_transaction)
    (row,) = await SingleRead(read_engine).only(probe, {"x": 7})
    assert row["x"] == 7
    monkeypatch.undo()
    async with read_engine.connect() as raw:  # what it returned to the pool is idle
        driver = (await raw.get_raw_connection()).driver_connection
        assert driver is not None
        assert not driver.is_in_transaction()
        assert _checked_out(read_engine) == 1  # this one only


@pytest.mark.parametrize("form", ALONE)
async def test_only_on_an_ordinary_engine_is_read_only_too(loaded: AsyncEngine, form: str) -> None:
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await _alone(form, loaded, sa.text("CREATE TEMPORARY TABLE t (x int)"), {})
    assert _checked_out(loaded) == 0  # returned after the error


@pytest.mark.parametrize("form", ALONE)
async def test_a_connection_the_server_closed_is_replaced_without_an_error(
    read_engine: AsyncEngine, database_url: str, form: str
) -> None:
    async def backend() -> int:
        (row,) = await _alone(form, read_engine, sa.text("SELECT pg_backend_pid() AS pid"), {})
        return int(row["pid"])

    first = await backend()
    admin = await asyncpg.connect(_dsn(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the client's event loop sees the server hang up
    for _ in range(3):  # every pooled connection, whichever the pool hands out
        assert await backend() != first


@pytest.mark.parametrize("form", ALONE)
@pytest.mark.parametrize("interruption", ["terminated", "cancelled"])
async def test_a_connection_broken_during_the_statement_is_not_reused(
    read_engine: AsyncEngine, database_url: str, interruption: str, form: str
) -> None:
    """The backend dies, or the request is cancelled (a client gone), mid-statement: the
    request fails, and the next ones get a working connection."""
    slow = sa.text("SELECT pg_backend_pid() AS pid, pg_sleep(CAST(:s AS float8)) AS slept")

    async def reader() -> None:
        await _alone(form, read_engine, slow, {"s": 5})

    admin = await asyncpg.connect(_dsn(database_url))
    try:
        task = asyncio.create_task(reader())
        pid = None
        for _ in range(100):
            await asyncio.sleep(0.02)
            pid = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CAST%'"
                " AND state = 'active' AND pid <> pg_backend_pid()"
            )
            if pid:
                break
        assert pid
        if interruption == "terminated":
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(Exception, match=r"terminat|closed"):
                await task
        else:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await admin.close()
    for _ in range(3):
        (row,) = await _alone(form, read_engine, slow, {"s": 0})
        assert row["pid"] != pid
    assert _checked_out(read_engine) == 0


async def test_waiting_readers_are_served_in_arrival_order(database_url: str) -> None:
    engine = create_read_engine(database_url, pool_size=1)
    order: list[int] = []
    release = asyncio.Event()

    async def reader(n: int) -> None:
        async with reading(engine) as conn:
            order.append(n)
            await conn.scalar(sa.text("SELECT 1"))
            if n == 0:
                await release.wait()

    try:
        tasks = [asyncio.create_task(reader(0))]
        await asyncio.sleep(0.05)
        for n in range(1, 6):
            tasks.append(asyncio.create_task(reader(n)))
            await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*tasks)
    finally:
        await engine.dispose()
    assert order == list(range(6))


async def test_readyz_does_not_wait_behind_the_reads(database_url: str) -> None:
    engine = create_read_engine(database_url, pool_size=1)
    held = asyncio.Event()
    release = asyncio.Event()

    async def busy_reader() -> None:
        async with reading(engine) as conn:
            await conn.scalar(sa.text("SELECT 1"))
            held.set()
            await release.wait()

    try:
        async with serve(create_app(engine=engine)) as http:
            task = asyncio.create_task(busy_reader())
            await held.wait()
            async with asyncio.timeout(2):
                response = await http.get("/readyz")
            assert response.status_code == 200, response.text
            release.set()
            await task
    finally:
        await engine.dispose()


async def test_the_read_engine_serves_concurrent_histories(read_engine: AsyncEngine) -> None:
    """More requests than connections: each answered, none with an error."""
    app = create_app(engine=read_engine)
    async with serve(app) as http:
        responses = await asyncio.gather(*(http.get(HISTORIES[n % 4]) for n in range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    assert len({r.content for r in responses}) == 4


def test_history_json_matches_the_schema_for_a_hand_made_row() -> None:
    """Without a database: the cases a row from Postgres rarely has (no speaker name, no
    score), dumped both ways."""
    row = {
        "statement_id": "s",
        "actor_id": "a",
        "topic_id": "t",
        "said_at": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "stance": "support",
        "score": 1.0,
        "confidence": 0.0,
        "speaker_name": "",
        "speaker_role": "role without a name",
        "quote": None,
        "source_url": None,
        "published_at": None,
        "speech_act": None,
        "certainty": None,
        "change": "none",
        "previous_statement_id": None,
    }
    point = views.point_from_row(SimpleNamespace(**row))
    body = schemas.History(
        actor_id="a",
        topic_id="t",
        include_descendants=False,
        as_of=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        known_at=None,
        points=[point],
        current=views.current(point, "a", [("a", "support"), ("b", "oppose")]),
        next_cursor=encode_cursor(point.said_at.isoformat(), point.statement_id),
    )
    fast = views.history_json(
        actor_id="a",
        topic_id="t",
        include_descendants=False,
        as_of=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        points=[row],
        last=row,
        members=[("a", "support"), ("b", "oppose")],
        limit=1,
    )
    assert fast == body.model_dump_json().encode()
