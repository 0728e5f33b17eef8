"""Engines and the two kinds of connection: one that writes, one that only reads.

The read model only ever receives a ``ReadConnection``, whose transaction
is ``READ ONLY``: mypy keeps write helpers away from it and Postgres
rejects any write that slips through anyway. Entry points own their
transactions; store functions take a connection and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from stanceline.settings import database_url_for_asyncpg


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        database_url_for_asyncpg(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Timestamps are compared across processes; never let a session time zone leak in.
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "stanceline"}},
    )


_CUSTOM_PLANS = sa.text("SET LOCAL plan_cache_mode = force_custom_plan")


@dataclass(frozen=True, slots=True)
class ReadConnection:
    """A connection inside a read-only transaction."""

    _conn: AsyncConnection

    async def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        return await self._conn.execute(statement, params)

    async def scalar(self, statement: Executable, params: Any = None) -> Any:
        return await self._conn.scalar(statement, params)


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
    async with engine.connect() as conn:
        # One BEGIN ... REPEATABLE READ READ ONLY: a round trip fewer than SET TRANSACTION.
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        try:
            yield ReadConnection(conn)
        finally:
            await conn.rollback()
