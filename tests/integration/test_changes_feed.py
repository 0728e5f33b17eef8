"""The changes feed never skips a change, even when writers commit out of order.

The trap (Marten, Eventuous): positions are taken at insert time but
transactions commit in another order, so a reader that has passed position
42 misses a 41 committed a moment later. Here a writer holds its transaction
open while a later one commits, and a poller follows the feed throughout.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.readmodel.app import create_app
from stanceline.store.db import writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import parsed, statement
from support.http import serve


def flip(actor: str, topic: str, tag: str) -> list[Accepted]:
    """Two statements that make one flip in (actor, topic)."""
    documents = [
        statement(f"{tag}-1", f"{tag}.1", actor, topic, "oppose", "2024-01-01T00:00:00Z"),
        statement(f"{tag}-2", f"{tag}.2", actor, topic, "support", "2024-02-01T00:00:00Z"),
    ]
    return [Accepted(parsed(d), b"{}") for d in documents]


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(engine=engine)) as client:
        yield client


async def poll(http: httpx.AsyncClient, cursor: str | None) -> tuple[list[Any], str]:
    params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
    response = await http.get("/v1/changes", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["changes"], body["next_cursor"]


async def drain(http: httpx.AsyncClient, cursor: str | None) -> tuple[list[Any], str | None]:
    seen: list[Any] = []
    while True:
        page, cursor = await poll(http, cursor)
        seen += page
        if not page:
            return seen, cursor


def entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (
        entry["status"],
        entry["actor_id"],
        entry["topic_id"],
        entry["statement_id"],
        entry["change"],
    )


async def table(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT status, actor_id, topic_id, statement_id, change FROM changes"
                " WHERE NOT rollup ORDER BY xact_id, id"
            )
        )
        return [tuple(r) for r in rows]


async def test_a_change_committed_late_is_not_skipped(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    early = await engine.connect()
    transaction = await early.begin()
    # Disjoint actors and topics: the late writer must not wait on the early one's rows.
    await store_batch(early, flip("a", "t1", "early"))  # takes the lower transaction id ...
    async with writing(engine) as late:
        await store_batch(late, flip("b", "t2", "late"))  # ... this one commits first

    seen, cursor = await drain(http, None)
    assert seen == [], "the feed served a change past a transaction still in flight"

    await transaction.commit()
    await early.close()
    more, cursor = await drain(http, cursor)

    assert [(e["actor_id"], e["change"]) for e in more] == [("a", "flip"), ("b", "flip")]
    assert (await drain(http, cursor))[0] == []


async def test_concurrent_writers_deliver_every_change_exactly_once(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    rng = random.Random(7)
    writers_done = asyncio.Event()

    async def writer(n: int) -> None:
        # One batch per transaction, as the projector commits; writers share series, so
        # some wait on each other's locks, and each lingers before committing.
        batch = [
            a for k in range(3) for a in flip(f"actor-{(n + k) % 4}", f"topic-{k}", f"w{n}k{k}")
        ]
        async with writing(engine) as conn:
            await store_batch(conn, batch)
            await asyncio.sleep(rng.uniform(0, 0.15))

    async def follower() -> list[Any]:
        seen: list[Any] = []
        cursor = None
        while True:
            finished = writers_done.is_set()
            page, cursor = await poll(http, cursor)
            seen += page
            if finished and not page:
                return seen
            if not page:
                await asyncio.sleep(0.01)

    following = asyncio.create_task(follower())
    await asyncio.gather(*(writer(n) for n in range(8)))
    writers_done.set()
    seen = await following

    # Every row of the log, once, in the log's order: nothing skipped, nothing repeated.
    assert [entry_key(e) for e in seen] == await table(engine)
    # Writers shared series, so later commits rewrote earlier change points: the feed
    # carries those rewrites (withdrawn, then added again) rather than stale entries.
    statuses = {e["status"] for e in seen}
    assert statuses == {"added", "withdrawn"}
