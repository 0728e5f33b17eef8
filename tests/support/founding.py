"""The founding example stored through the real write path, for tests that read it back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.contract import Rejection, parse_event
from stanceline.store.db import writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import NOW


async def load_founding(engine: AsyncEngine) -> int:
    """Store every line of the founding example in one batch; the number of events."""
    accepted = []
    for line in founding_lines():
        event = parse_event(line, now=NOW)
        assert not isinstance(event, Rejection), event
        accepted.append(Accepted(event, line))
    async with writing(engine) as conn:
        report = await store_batch(conn, accepted)
    assert (report.appended, report.dead_lettered) == (len(accepted), 0)
    return len(accepted)
