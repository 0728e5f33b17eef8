"""Rebuilding every projection from ``events`` alone, while the service keeps running.

1. Shadow tables are created in a schema of their own, from the same table
   definitions Alembic is checked against (so index and constraint names
   survive the swap).
2. Set-based SQL builds them from the events up to a high-water mark
   (``store.bulk``), in slices on several connections, reading only ``events``;
   the secondary indexes are built after the rows.
3. Catch-ups fold the events appended meanwhile with the live write path's own
   projection code, ``search_path`` pointing at the shadow schema first.
4. One short transaction takes the write path's hierarchy lock exclusively
   and a SHARE lock on ``events`` (writers wait; they never fail), folds the
   last events, and swaps the shadow tables in by moving schemas. Readers wait
   for that moment; none of them fails.

Every high-water mark is read under a brief SHARE lock on ``events``: it waits
for in-flight appends, so no position below the mark can still commit later
(the gap problem of position-based catch-up). Applying an event twice changes
nothing, so catch-ups may overlap. An interrupted rebuild leaves the live
tables untouched; the next run drops the shadow schema and starts over.

``--dry-run`` stops before the swap and instead compares the shadow tables
with the live ones inside one snapshot, without blocking writers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stanceline.store import bulk, shadow
from stanceline.store.ingest import project_stored
from stanceline.store.known import rehydrate
from stanceline.store.locks import lock_hierarchy
from stanceline.store.tables import events

_CATCH_UPS = 8
"""Catch-up rounds before the final one under the lock, however fast writers append."""

Progress = Callable[[int, int], None]
"""Called with (events folded so far, events known to fold)."""


_REBUILD_KEY = 0x5245_4255_494C_44  # "REBUILD": one rebuild at a time per database


class RebuildRunning(RuntimeError):
    """Another rebuild holds the shadow schema; two would overwrite each other's work."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    events: int
    seconds: float
    swapped: bool
    differences: dict[str, int] | None
    """Dry runs: rows per table that differ between the rebuilt and the live projection."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def rebuild(
    engine: AsyncEngine,
    *,
    dry_run: bool = False,
    chunk: int = 5000,
    parallel: int = 2,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild (or with ``dry_run`` compare); ``parallel`` connections share the bulk build."""
    async with engine.connect() as guard:
        # A session lock, held on its own connection for the whole run: it goes with
        # the connection if this process dies, so a crashed rebuild never blocks the next.
        if not await guard.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _REBUILD_KEY}):
            raise RebuildRunning("another rebuild is running on this database; try again later")
        # The lock outlives the transaction; an open one would hold vacuum back meanwhile.
        await guard.commit()
        try:
            return await _rebuild(
                engine, dry_run=dry_run, chunk=chunk, parallel=parallel, progress=progress
            )
        finally:
            await guard.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _REBUILD_KEY})


async def _rebuild(
    engine: AsyncEngine, *, dry_run: bool, chunk: int, parallel: int, progress: Progress | None
) -> RebuildReport:
    started = time.perf_counter()
    # What an interrupted rebuild retired and never dropped: gone before the swap, which
    # must not wait for a stale read's locks on it while it holds the live tables.
    await _drop(engine, shadow.RETIRED)
    async with engine.begin() as conn:
        live = await shadow.live_schema(conn)
        await shadow.create_shadow(conn)
    done = await _high_water(engine)
    applied = await _build(engine, live, done, parallel)
    if progress is not None:
        progress(applied, done)
    high = await _high_water(engine)
    for _ in range(_CATCH_UPS):
        backlog = high - done
        if backlog <= chunk:
            break  # small enough to finish in the final transaction
        applied, done = await _catch_up(engine, live, done, high, chunk, progress, applied)
        high = await _high_water(engine)
        if high - done >= backlog:
            break  # writers outpace us: the final transaction takes the rest
    if dry_run:
        differences, applied = await _compare(engine, live, done, chunk, applied)
    else:
        differences = None
        async with engine.begin() as conn:
            # Every write batch takes the hierarchy lock before it touches a table, so
            # holding it exclusively waits for batches in flight and keeps new ones out
            # before the swap's table locks are asked for: no lock-order deadlock.
            await lock_hierarchy(conn, exclusive=True)
            await shadow.lock_events(conn, live)
            applied += await _apply_in(conn, live, done, chunk)
            await shadow.swap(conn, live)
            await shadow.record_rebuild(conn, applied, time.perf_counter() - started)
        await _drop(engine, shadow.RETIRED)
    await _drop(engine, shadow.SHADOW)
    return RebuildReport(applied, time.perf_counter() - started, not dry_run, differences)


async def _build(engine: AsyncEngine, live: str, upto: int, parallel: int) -> int:
    """The set-based build, its slices on ``parallel`` connections (Postgres runs one
    statement on one core); returns how many events it covered."""
    events_table = f"{live}.events"

    async def in_shadow(work: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        async with engine.begin() as conn:
            await shadow.shadow_first(conn, live)
            await work(conn)

    slices = range(parallel)
    await asyncio.gather(
        *(
            in_shadow(
                partial(
                    bulk.build_statements,
                    events_table=events_table,
                    upto=upto,
                    part=part,
                    parts=parallel,
                )
            )
            for part in slices
        )
    )
    await in_shadow(partial(bulk.build_catalogue, events_table=events_table, upto=upto))
    await in_shadow(shadow.index_shadow)
    await in_shadow(bulk.build_tips)
    async with engine.connect() as conn:
        return await bulk.count_events(conn, events_table, upto)


async def _high_water(engine: AsyncEngine) -> int:
    """The last position below which nothing can still commit (see the module docstring)."""
    async with engine.begin() as conn:
        return await shadow.high_water(conn)


async def _catch_up(
    engine: AsyncEngine,
    live: str,
    after: int,
    upto: int,
    chunk: int,
    progress: Progress | None,
    applied: int,
) -> tuple[int, int]:
    """Fold the events after ``after`` up to the high-water mark ``upto``, a chunk per
    transaction."""
    position = after
    while position < upto:
        async with engine.begin() as conn:
            count, position = await _chunk(conn, live, position, upto, chunk)
        applied += count
        if progress is not None:
            progress(applied, applied + upto - position)
    return applied, upto


async def _apply_in(conn: AsyncConnection, live: str, after: int, chunk: int) -> int:
    """Fold every event after ``after`` that this transaction can see."""
    count = 0
    position = after
    while True:
        count_here, position = await _chunk(conn, live, position, None, chunk)
        if count_here == 0:
            return count
        count += count_here


async def _chunk(
    conn: AsyncConnection, live: str, after: int, upto: int | None, chunk: int
) -> tuple[int, int]:
    """Fold the next events into the shadow tables; returns (count, last position)."""
    query = sa.select(events).where(events.c.position > after)
    if upto is not None:
        query = query.where(events.c.position <= upto)
    rows = (await conn.execute(query.order_by(events.c.position).limit(chunk))).all()
    if not rows:
        return 0, after if upto is None else upto
    await shadow.shadow_first(conn, live)
    await project_stored(conn, [rehydrate(r) for r in rows])
    await shadow.leave_shadow(conn, live)
    return len(rows), rows[-1].position


async def _compare(
    engine: AsyncEngine, live: str, after: int, chunk: int, applied: int
) -> tuple[dict[str, int], int]:
    """Catch up and compare inside one snapshot: the live tables and the events it
    sees were committed together, so both sides stand at the same moment."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        applied += await _apply_in(conn, live, after, chunk)
        differences = await shadow.differences(conn, live)
        await conn.rollback()
    return differences, applied


async def _drop(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await shadow.drop_schema(conn, schema)
