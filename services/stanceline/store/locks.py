"""Advisory locks that let several projector processes share one database.

Every batch takes its locks in the same global order, each class sorted:
the hierarchy lock, then statements, then series. Two batches can then
wait for each other but never deadlock. Keys are 64-bit hashes of a
namespaced text; a collision only makes two batches wait for each other.
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


async def lock_hierarchy(conn: AsyncConnection, *, exclusive: bool) -> None:
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(sa.text(f"SELECT {fn}(:key)"), {"key": HIERARCHY_KEY})


async def lock_keys(conn: AsyncConnection, namespace: str, keys: Iterable[str]) -> None:
    """Lock every key in ascending hash order, within the current transaction."""
    texts = sorted({f"{namespace}:{key}" for key in keys})
    if texts:
        await conn.execute(_LOCK_SORTED, {"keys": texts})
