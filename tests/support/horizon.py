"""Waiting for the changes feed to show a transaction's entries.

The feed shows an entry once no transaction that could still add an earlier one is in
flight: ``pg_snapshot_xmin`` of the whole cluster. On a Postgres shared with other work
(other tests' databases count too) that can be a moment after the commit, so a test that
reads the feed right after writing waits for the horizon to pass its transaction first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.store.db import writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted

_XID = sa.text("SELECT pg_current_xact_id()::text::bigint")
_HORIZON = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


async def store_visible(engine: AsyncEngine, accepted: Sequence[Accepted]) -> None:
    """Store one batch in one transaction, and return once the feed shows its entries."""
    async with writing(engine) as conn:
        await store_batch(conn, accepted)
        xid = (await conn.execute(_XID)).scalar_one()
    async with asyncio.timeout(30):
        while True:
            async with engine.connect() as conn:
                if (await conn.execute(_HORIZON)).scalar_one() > xid:
                    return
            await asyncio.sleep(0.02)
