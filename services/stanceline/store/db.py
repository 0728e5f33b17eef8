"""Engines and the two kinds of connection: one that writes, one that only reads.

The read model only ever receives a ``ReadConnection``, whose transaction
is ``READ ONLY``: mypy keeps write helpers away from it and Postgres
rejects any write that slips through anyway. Entry points own their
transactions; store functions take a connection and never commit.

A response read in one statement (a history) needs no transaction at all:
``SingleRead`` (or ``ReadConnection.only``) runs it alone, on the API's read
engine (``create_read_engine``) whose sessions are read-only, so one request
is one round trip.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn

from stanceline.settings import database_url_for_asyncpg

_SESSION = {"timezone": "UTC", "application_name": "stanceline", "jit": "off"}
"""Every session's settings. Timestamps are compared across processes: no session time
zone may leak in. No JIT: our statements are short, and the planner's estimate for the
write path's lateral probes (a few index pages each, estimated as hundreds) crosses
``jit_above_cost``, so a Postgres built with LLVM compiled the feed statement for every
batch: 90 of its 165 ms per 500 events, measured on Postgres 15 at 100,000 events."""


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        database_url_for_asyncpg(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": _SESSION},
    )


def create_read_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An engine for a process that only reads (the API's workers).

    A fixed pool, no overflow: a request waits for a pooled connection rather than
    opening one (a backend start and asyncpg's set-up cost more than the history
    itself, and an overflow connection is closed again as soon as it is returned).
    ``pool_size`` responses are read at once (``reading`` queues the others, in
    order); the pool holds one connection more, so that what connects without
    ``reading`` (``/readyz``) never waits behind the reads.

    No pre-ping: it costs three round trips per checkout (a BEGIN, a ping and a
    ROLLBACK), as many as a whole history. Instead a connection whose socket is already
    closed (Postgres restarted, the backend was terminated: asyncpg notices as soon as
    the server hangs up) is replaced at checkout without a round trip, and one that
    breaks during a request is discarded when the request's error says so, as with any
    engine. Every session is read-only (``default_transaction_read_only``), so a
    statement run outside an explicit transaction (``ReadConnection.only``) cannot write
    either.
    """
    engine = create_async_engine(
        database_url_for_asyncpg(url),
        pool_size=pool_size + 1,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args={"server_settings": {**_SESSION, "default_transaction_read_only": "on"}},
    )
    sa.event.listen(engine.sync_engine, "checkout", _closed_is_disconnected)
    _GATES[engine.sync_engine] = asyncio.Semaphore(pool_size)
    return engine


_GATES: weakref.WeakKeyDictionary[sa.Engine, asyncio.Semaphore] = weakref.WeakKeyDictionary()
"""A read engine's requests queue here, first come first served, before its pool: the
pool's own queue lets a newcomer take a connection returned for a waiter, which sends
the waiter to the back (under a steady load, some requests then wait for seconds)."""


@asynccontextmanager
async def _gate(engine: AsyncEngine) -> AsyncIterator[None]:
    """A read engine's queue, given up after the pool's own timeout (an error, as the
    pool's would be)."""
    gate = _GATES.get(engine.sync_engine)
    if gate is None:
        yield
        return
    if gate.locked():
        timeout = getattr(engine.sync_engine.pool, "_timeout", 30.0)
        try:
            async with asyncio.timeout(timeout):
                await gate.acquire()
        except TimeoutError:
            raise sa.exc.TimeoutError(f"no connection free within {timeout:g}s") from None
    else:
        await gate.acquire()  # free and nobody waiting: it takes the slot without waiting
    try:
        yield
    finally:
        gate.release()


def _closed_is_disconnected(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Checkout: a connection whose socket has closed is replaced (the pool retries)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise sa.exc.DisconnectionError("the connection was closed by the server")


_CUSTOM_PLANS = sa.text("SET LOCAL plan_cache_mode = force_custom_plan")


class Record(Protocol):
    """A row as asyncpg returns it: its values by column name or by position."""

    def __getitem__(self, key: str | int, /) -> Any: ...


@dataclass(slots=True)
class ReadConnection:
    """A connection inside a read-only transaction (begun at its first statement)."""

    _conn: AsyncConnection
    _alone: bool = False
    """A statement has run outside a transaction (``only``): no other may follow."""

    async def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        self._check()
        return await self._conn.execute(statement, params)

    async def scalar(self, statement: Executable, params: Any = None) -> Any:
        self._check()
        return await self._conn.scalar(statement, params)

    async def stream(
        self, statement: Executable, params: Any, batch: int
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Rows off a server-side cursor, ``batch`` at a time: an export of a million rows
        never holds more than one batch (the cursor lives in this read transaction)."""
        self._check()
        result = await self._conn.stream(statement, params, execution_options={"yield_per": batch})
        try:
            async for rows in result.partitions(batch):
                yield [tuple(r) for r in rows]
        finally:
            await result.close()

    async def only(self, statement: sa.TextClause, params: Mapping[str, Any]) -> list[Record]:
        """The response's only statement, its rows as asyncpg records.

        Inside an open transaction it runs in that one; else alone (``_fetch_alone``).
        Either way it skips SQLAlchemy's result layer (the statement is compiled once,
        then sent through asyncpg's prepared statement cache), and no statement may
        follow it outside a transaction: one response, one snapshot.
        """
        self._check()
        sql, args = _bound(statement, self._conn.dialect, params)
        raw = await self._conn.get_raw_connection()
        driver: Any = raw.driver_connection  # an asyncpg.Connection
        try:
            if self._conn.in_transaction():
                return cast(list[Record], await driver.fetch(sql, *args))
            self._alone = True
            return await _fetch_alone(driver, sql, args)
        except BaseException as error:
            if _unusable(driver, error):
                await self._conn.invalidate()
            raise

    def _check(self) -> None:
        if self._alone:
            raise RuntimeError("a statement already ran outside a transaction (only)")


@dataclass(frozen=True, slots=True)
class SingleRead:
    """A response read in one statement, straight off the engine's pool.

    ``ReadConnection.only`` without the ``AsyncConnection`` around it: checking a
    connection out through SQLAlchemy's connection object, setting its options and
    rolling it back cost the API about as much CPU as the history's own fetch
    (0.24 against 0.06 ms for ``SELECT 1``, measured); the pooled DBAPI connection
    costs 0.12. The pool, its checkout check and its queue (``_gate``) are the same.
    """

    engine: AsyncEngine

    async def only(self, statement: sa.TextClause, params: Mapping[str, Any]) -> list[Record]:
        sql, args = _bound(statement, self.engine.dialect, params)
        async with _gate(self.engine):
            pooled = await self.engine.raw_connection()
            try:
                driver: Any = pooled.driver_connection  # an asyncpg.Connection
                try:
                    return await _fetch_alone(driver, sql, args)
                except BaseException as error:
                    if _unusable(driver, error):
                        await greenlet_spawn(pooled.invalidate, error)
                    raise
            finally:
                await greenlet_spawn(pooled.close)


class OneStatement(Protocol):
    """What a response read in one statement needs: ``ReadConnection`` or ``SingleRead``."""

    async def only(self, statement: sa.TextClause, params: Mapping[str, Any]) -> list[Record]: ...


async def _fetch_alone(driver: Any, sql: str, args: list[Any]) -> list[Record]:
    """One statement outside any transaction: a single statement sees one snapshot on its
    own. On a read-only session (``create_read_engine``) that needs no BEGIN and no
    ROLLBACK; on another engine it gets a read-only transaction of its own."""
    if getattr(driver.get_settings(), "default_transaction_read_only", None) == "on":
        return cast(list[Record], await driver.fetch(sql, *args))
    async with driver.transaction(isolation="repeatable_read", readonly=True):
        return cast(list[Record], await driver.fetch(sql, *args))


def _unusable(driver: Any, error: BaseException) -> bool:
    """An error Postgres reported (it has an SQLSTATE) leaves the connection usable; a
    broken or an interrupted one is not to be reused. The pool learns it from the caller,
    as SQLAlchemy would have told it."""
    return bool(driver.is_closed()) or getattr(error, "sqlstate", None) is None


def _bound(
    statement: sa.TextClause, dialect: Dialect, params: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    sql, names = _positional(statement, dialect)
    return sql, [params[name] for name in names]


_COMPILED: dict[tuple[int, type[Dialect]], tuple[sa.TextClause, str, tuple[str, ...]]] = {}


def _positional(statement: sa.TextClause, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """The statement as asyncpg takes it (``$1``, ``$2``...) and its parameters' names,
    compiled once per statement (module-level constants) and kind of dialect."""
    key = (id(statement), type(dialect))
    found = _COMPILED.get(key)
    if found is None or found[0] is not statement:
        compiled = statement.compile(dialect=dialect)
        found = (statement, str(compiled), tuple(compiled.positiontup or ()))
        _COMPILED[key] = found
    return found[1], found[2]


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: commit on success, roll back on any error.

    Plans are made for each statement's own parameters. A generic plan cached
    while a table was still empty (a new deployment, a benchmark) scans it
    sequentially ever after; a batch's statements take arrays of ids whose
    best plan depends on the table, and planning costs little next to them.
    """
    async with engine.begin() as conn:
        await conn.execute(_CUSTOM_PLANS)
        yield conn


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[ReadConnection]:
    """One consistent snapshot for a whole response (REPEATABLE READ, READ ONLY)."""
    async with _gate(engine), engine.connect() as conn:
        # One BEGIN ... REPEATABLE READ READ ONLY: a round trip fewer than SET TRANSACTION.
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        try:
            yield ReadConnection(conn)
        finally:
            await conn.rollback()
