"""The rebuild's tables: a shadow schema built beside the live one, compared, swapped in.

Every statement here is DDL or whole-table SQL on the projection tables; the
operator's rebuild (``ops.rebuild``) decides when each runs and in which
transaction. Shadow tables come from the same table definitions Alembic is
checked against, so index and constraint names survive the swap.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, CreateTable

from stanceline.store.tables import PROJECTION_TABLES, changes, events, projection_meta, statements

SHADOW = "stanceline_rebuild"
RETIRED = "stanceline_retired"
_SCRATCH = (changes,)  # written by the fold, never swapped in: the feed is a log, kept as is
_SHADOW_TABLES = (*PROJECTION_TABLES, *_SCRATCH)
_KEYED_AFTER_LOAD = (statements,)
_LAST_POSITION = sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0))


async def live_schema(conn: AsyncConnection) -> str:
    return str(await conn.scalar(sa.text("SELECT current_schema()")))


async def create_shadow(conn: AsyncConnection) -> None:
    """Empty shadow tables. ``statements`` loses its primary key until after the bulk
    build (``index_shadow``): building an index over loaded rows is faster than
    maintaining it row by row, and the set-based build writes each key once anyway."""
    await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE"))
    await conn.execute(sa.text(f"CREATE SCHEMA {SHADOW}"))
    shadow = await conn.execution_options(schema_translate_map={None: SHADOW})
    for table in _SHADOW_TABLES:
        await shadow.execute(CreateTable(table))
    for table in _KEYED_AFTER_LOAD:
        name = table.primary_key.name
        await conn.execute(sa.text(f"ALTER TABLE {SHADOW}.{table.name} DROP CONSTRAINT {name}"))


async def index_shadow(conn: AsyncConnection) -> None:
    """The same indexes, under the same names, as Alembic gives the live tables, and
    planner statistics, so the first reads after the swap are planned as before it."""
    await conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
    for table in _KEYED_AFTER_LOAD:
        key = table.primary_key
        columns = ", ".join(c.name for c in key.columns)
        add = f"ADD CONSTRAINT {key.name} PRIMARY KEY ({columns})"
        await conn.execute(sa.text(f"ALTER TABLE {SHADOW}.{table.name} {add}"))
    shadow = await conn.execution_options(schema_translate_map={None: SHADOW})
    for table in _SHADOW_TABLES:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            await shadow.execute(CreateIndex(index))
        await conn.execute(sa.text(f"ANALYZE {SHADOW}.{table.name}"))


async def shadow_first(conn: AsyncConnection, live: str) -> None:
    await conn.execute(sa.text(f"SET LOCAL search_path TO {SHADOW}, {live}"))


async def lock_events(conn: AsyncConnection, schema: str | None = None) -> None:
    """A SHARE lock on ``events``: it waits for appends in flight and holds new ones."""
    table = f"{schema}.events" if schema else "events"
    await conn.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))


async def high_water(conn: AsyncConnection) -> int:
    """The last position below which nothing can still commit, under ``lock_events``."""
    await lock_events(conn)
    return int(await conn.scalar(_LAST_POSITION) or 0)


async def leave_shadow(conn: AsyncConnection, live: str) -> None:
    await conn.execute(sa.text(f"SET LOCAL search_path TO {live}"))


async def differences(conn: AsyncConnection, live: str) -> dict[str, int]:
    result = {}
    for table in PROJECTION_TABLES:
        name = table.name
        columns = ", ".join(c.name for c in table.columns)
        here, there = (
            f"SELECT {columns} FROM {live}.{name}",
            f"SELECT {columns} FROM {SHADOW}.{name}",
        )
        query = sa.text(
            f"SELECT (SELECT count(*) FROM ({here} EXCEPT ALL {there}) a)"
            f" + (SELECT count(*) FROM ({there} EXCEPT ALL {here}) b)"
        )
        result[name] = int(await conn.scalar(query) or 0)
    return result


_LOCK_WAIT = "100ms"
"""How long the swap, or the drop of what it retired, waits for readers before it lets go
and tries again: well under Postgres's deadlock_timeout (1 s), so a reader that waits
for one of its locks is never the one the deadlock detector fails."""


async def _without_holding_on(conn: AsyncConnection, statement: str) -> None:
    """Run ``statement``, which takes exclusive table locks, without ever waiting long
    while holding one.

    A read holds its tables until its snapshot ends and may meet them in any order,
    so DDL that waited for one table while holding another could deadlock with it,
    and the deadlock detector might fail the read. So the statement runs with a short
    lock timeout; when readers hold on longer, it lets go of what it got (a savepoint)
    and tries again. Its queued request keeps new readers waiting, so it gets its turn
    within a few tries.
    """
    while True:
        attempt = await conn.begin_nested()
        try:
            await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{_LOCK_WAIT}'"))
            await conn.execute(sa.text(statement))
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            await attempt.rollback()
            await asyncio.sleep(0.01)
            continue
        await conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
        await attempt.commit()
        return


async def _lock_live_tables(conn: AsyncConnection, live: str) -> None:
    """Every live projection table, exclusively (``_without_holding_on``)."""
    tables = ", ".join(f"{live}.{table.name}" for table in PROJECTION_TABLES)
    await _without_holding_on(conn, f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")


_LOCK_NOT_AVAILABLE = "55P03"


async def swap(conn: AsyncConnection, live: str) -> None:
    """The shadow tables in, the live ones out to ``RETIRED``, which the caller dropped
    before (``drop_schema``, in a transaction of its own) and drops again after."""
    await _lock_live_tables(conn, live)
    await conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {RETIRED}"))
    for table in PROJECTION_TABLES:
        await conn.execute(sa.text(f"ALTER TABLE {live}.{table.name} SET SCHEMA {RETIRED}"))
        await conn.execute(sa.text(f"ALTER TABLE {SHADOW}.{table.name} SET SCHEMA {live}"))


async def record_rebuild(conn: AsyncConnection, applied: int, seconds: float) -> None:
    row = {"id": 1, "rebuilt_at": datetime.now(UTC), "events": applied, "seconds": seconds}
    statement = insert(projection_meta).values(row)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[projection_meta.c.id],
            set_={k: statement.excluded[k] for k in ("rebuilt_at", "events", "seconds")},
        )
    )


async def drop_schema(conn: AsyncConnection, schema: str) -> None:
    """Drop a schema and its tables (``_without_holding_on``). After a swap, a read whose
    prepared statement was planned on the tables now retired locks them again while
    Postgres re-plans it, an index before its table; a drop that waited for that index
    while holding the table deadlocked with it (seen in ``test_rebuild.py``)."""
    await _without_holding_on(conn, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
