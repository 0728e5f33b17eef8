"""Advisory locks that let several projector processes share one database.

Every batch takes its locks in the same global order, each class sorted:
the hierarchy lock, then statements, then series. Two batches can then
wait for each other but never deadlock. Keys are 64-bit hashes of a
namespaced text; a collision only makes two batches wait for each other.

Series are locked by tree: one lock per topic and top-level actor covers every
series a point in that actor's tree stands on. Two batches that touch series of one
tree on one topic share that tree's rolled-up series at the top, so they waited for
each other under a lock per series too; batches on other trees or other topics still
run side by side. A lock per series (own and rolled-up: about 2.6 per statement on
the benchmark's corpus) made a batch of 500 hold some 1,700 locks until it
committed, and Postgres' lock table, shared by every session, holds about
``max_locks_per_transaction × max_connections`` (6,400 by default): a few projector
replicas filled it, and a full table fails other sessions' work too. By tree, the
same batch holds about 900 (its statements and some 400 trees).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

HIERARCHY_KEY = 0x5354_414E_4345  # "STANCE": shared by statement batches, exclusive for moves.


def sorted_locks(keys: str) -> str:
    """SQL taking a transaction lock on each key that ``keys`` (a query with one text
    column, ``key``) yields, in ascending hash order: the one order every locker uses."""
    return (
        "SELECT count(pg_advisory_xact_lock(k)) FROM ("
        f" SELECT DISTINCT hashtextextended(key, 0) AS k FROM ({keys}) AS keys"
        " ORDER BY k) AS sorted"
    )


_LOCK_SORTED = sa.text(sorted_locks("SELECT unnest(CAST(:keys AS text[])) AS key"))


def series_key(topic: str, actor: str) -> str:
    """SQL: the lock key of every series that a point of ``actor`` on ``topic`` stands on
    (``topic`` and ``actor`` are expressions): the topic and the top of the actor's tree,
    from ``actor_lineage`` as it stands under the hierarchy lock."""
    top = (
        "(SELECT top.ancestor_id FROM actor_lineage top"
        f" WHERE top.actor_id = {actor} ORDER BY top.depth DESC LIMIT 1)"
    )
    return f"'series:' || {topic} || '/' || coalesce({top}, {actor})"


_LOCK_SERIES = sa.text(
    sorted_locks(
        f"SELECT {series_key('p.topic_id', 'p.actor_id')} AS key"
        " FROM unnest(CAST(:topics AS text[]), CAST(:actors AS text[])) AS p(topic_id, actor_id)"
    )
)


async def lock_hierarchy(conn: AsyncConnection, *, exclusive: bool) -> None:
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(sa.text(f"SELECT {fn}(:key)"), {"key": HIERARCHY_KEY})


async def lock_series(conn: AsyncConnection, points: Iterable[tuple[str, str]]) -> None:
    """Lock every series that points of these (topic, actor) pairs stand on: their feed
    entries, tips and outbox numbers. After the statements' locks."""
    pairs = sorted(set(points))
    if pairs:
        await conn.execute(
            _LOCK_SERIES, {"topics": [t for t, _ in pairs], "actors": [a for _, a in pairs]}
        )


async def lock_keys(conn: AsyncConnection, namespace: str, keys: Iterable[str]) -> None:
    """Lock every key in ascending hash order, within the current transaction."""
    texts = sorted({f"{namespace}:{key}" for key in keys})
    if texts:
        await conn.execute(_LOCK_SORTED, {"keys": texts})
