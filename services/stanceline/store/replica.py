"""How far a hot standby's reads are behind its primary, asked of Postgres itself.

A standby serves what it has replayed. ``pg_last_xact_replay_timestamp()`` is
the commit time of the last transaction replayed, so "now minus it" grows
while the primary is idle although nothing is missing: the lag counts only
when WAL has been received and not yet replayed. On a primary there is nothing
to replay, and the lag is 0.
"""

from __future__ import annotations

import sqlalchemy as sa

from stanceline.store.db import ReadConnection

_LAG = sa.text(
    """
    SELECT CASE
             WHEN NOT pg_is_in_recovery() THEN 0
             WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
             ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
           END::float8 AS lag,
           pg_is_in_recovery() AS standby
    """
)


async def replica_lag_seconds(conn: ReadConnection) -> tuple[bool, float]:
    """(whether this server is a standby, seconds of received WAL not yet replayed)."""
    row = (await conn.execute(_LAG)).one()
    return bool(row.standby), float(row.lag or 0.0)
