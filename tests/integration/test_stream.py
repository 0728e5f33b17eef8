"""``/v1/stream`` on a real uvicorn over a real database: the changes feed, pushed.

The expected messages are always read independently, from ``/v1/changes``: the stream
must carry exactly those entries, in that order, with each ``id:`` the cursor after it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.cursors import encode_cursor
from stanceline.readmodel.app import create_app
from stanceline.settings import Settings
from stanceline.store.db import writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import actor, parsed, retraction, statement
from support.horizon import store_visible
from support.live import Message, messages, uvicorn_serving

BEGINNING = encode_cursor(0, 0)
"""The cursor before every entry (what /v1/changes answers on an empty feed)."""
PING = 0.3
RETRY_MS = 1234


def accepted(*documents: dict[str, Any]) -> list[Accepted]:
    return [Accepted(parsed(d), b"{}") for d in documents]


async def ingest(engine: AsyncEngine, *documents: dict[str, Any]) -> None:
    """One batch, stored and visible in the feed (support/horizon.py) before going on."""
    await store_visible(engine, accepted(*documents))


def said(tag: str, actor_id: str, topic: str, stance: str, when: str) -> dict[str, Any]:
    return statement(f"e-{tag}", tag, actor_id, topic, stance, when)


@pytest.fixture
async def base_url(engine: AsyncEngine, database_url: str) -> AsyncIterator[str]:
    settings = Settings(
        database_url=database_url,
        stream_poll_seconds=0.05,
        stream_ping_seconds=PING,
        stream_retry_ms=RETRY_MS,
        max_streams=2,
    )
    async with uvicorn_serving(create_app(engine=engine, settings=settings)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


async def feed(
    http: httpx.AsyncClient, cursor: str, **filters: str
) -> list[tuple[str, dict[str, Any]]]:
    """Every entry of /v1/changes after ``cursor``, each with the cursor just after it."""
    entries: list[tuple[str, dict[str, Any]]] = []
    while True:
        response = await http.get("/v1/changes", params={"cursor": cursor, "limit": 1, **filters})
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["changes"]:
            return entries
        cursor = page["next_cursor"]
        entries.append((cursor, page["changes"][0]))


async def read_changes(
    http: httpx.AsyncClient, count: int, *, headers: dict[str, str] | None = None, **params: str
) -> list[tuple[str, dict[str, Any]]]:
    """The first ``count`` change messages of a new stream, then disconnect."""
    seen: list[tuple[str, dict[str, Any]]] = []
    if count == 0:
        return seen
    async with (
        asyncio.timeout(15),
        http.stream("GET", "/v1/stream", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in messages(response):
            if message.event == "change":
                assert message.id is not None
                seen.append((message.id, json.loads("\n".join(message.data))))
                if len(seen) == count:
                    return seen
    raise AssertionError(f"the stream ended after {len(seen)} of {count} changes")


async def test_reconnecting_with_last_event_id_loses_nothing_and_repeats_nothing(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Before anyone listens: a flip in one series, so the stream starts mid-feed.
    await ingest(
        engine,
        said("a1", "us", "t", "oppose", "2024-01-01T00:00:00Z"),
        said("a2", "us", "t", "support", "2024-02-01T00:00:00Z"),
    )
    start = [c for c, _ in await feed(http, BEGINNING)][-1]

    # Connected: two more flips arrive while it reads.
    listening = asyncio.create_task(read_changes(http, 2, cursor=start))
    await asyncio.sleep(0.3)
    await ingest(
        engine,
        said("b1", "uk", "t", "support", "2024-01-05T00:00:00Z"),
        said("b2", "uk", "t", "oppose", "2024-03-01T00:00:00Z"),
    )
    await ingest(engine, said("b3", "uk", "t", "support", "2024-04-01T00:00:00Z"))
    first = await listening

    # Disconnected: a retraction (withdraws the first flip), a late statement that splits
    # a flip in two (withdrawn, then two shifts added), and new series with descendants.
    await ingest(engine, retraction("r-a2", "a2"))
    await ingest(engine, said("b0", "uk", "t", "neutral", "2024-02-01T00:00:00Z"))
    await ingest(
        engine,
        actor("act-us.dod", "us.dod", "us"),
        said("c1", "us.dod", "t2", "oppose", "2024-04-01T00:00:00Z"),
        said("c2", "us.dod", "t2", "support", "2024-05-01T00:00:00Z"),
    )

    expected = await feed(http, start)
    missed = len(expected) - len(first)
    assert missed >= 4, expected
    second = await read_changes(http, missed, headers={"Last-Event-ID": first[-1][0]})

    union = first + second
    assert union == expected, "the stream lost or repeated a change across the reconnect"
    assert len({c for c, _ in union}) == len(union)
    assert {e["status"] for _, e in union} == {"added", "withdrawn"}
    for _, entry in union:
        assert {"actor_id", "topic_id", "status", "statement_id", "change", "stance"} <= set(entry)

    # Resuming from the newest id has nothing more to tell (and says so by staying quiet).
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await read_changes(http, 1, headers={"Last-Event-ID": union[-1][0]})


async def test_a_change_committed_late_is_not_skipped(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    listening = asyncio.create_task(read_changes(http, 2, cursor=BEGINNING))
    early = await engine.connect()
    transaction = await early.begin()
    await store_batch(  # takes the lower transaction id ...
        early,
        accepted(
            said("x1", "a", "t1", "oppose", "2024-01-01T00:00:00Z"),
            said("x2", "a", "t1", "support", "2024-02-01T00:00:00Z"),
        ),
    )
    async with writing(engine) as late:  # ... this one commits first
        await store_batch(
            late,
            accepted(
                said("y1", "b", "t2", "oppose", "2024-01-01T00:00:00Z"),
                said("y2", "b", "t2", "support", "2024-02-01T00:00:00Z"),
            ),
        )
    await asyncio.sleep(0.5)
    assert not listening.done(), "the stream sent a change past a transaction in flight"
    await transaction.commit()
    await early.close()

    seen = await listening
    assert [(e["actor_id"], e["change"]) for _, e in seen] == [("a", "flip"), ("b", "flip")]
    assert seen == await feed(http, BEGINNING)


async def test_filters_are_those_of_the_changes_feed(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    await ingest(
        engine,
        actor("act-us.dod", "us.dod", "us"),
        said("d1", "us.dod", "t", "oppose", "2024-01-01T00:00:00Z"),
        said("d2", "us.dod", "t", "neutral", "2024-02-01T00:00:00Z"),
        said("d3", "us.dod", "t", "support", "2024-03-01T00:00:00Z"),
        said("u1", "uk", "t", "support", "2024-01-01T00:00:00Z"),
        said("u2", "uk", "t", "oppose", "2024-02-01T00:00:00Z"),
    )
    for filters in (
        {"actor": "us", "include_descendants": "true"},
        {"actor": "us.dod", "kind": "shift"},
        {"kind": "flip"},
        {"topic": "t", "actor": "uk"},
    ):
        expected = await feed(http, BEGINNING, **filters)
        assert expected, filters
        assert await read_changes(http, len(expected), cursor=BEGINNING, **filters) == expected


async def test_without_a_cursor_the_stream_starts_at_the_end_with_retry_and_heartbeats(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    await ingest(
        engine,
        said("o1", "us", "t", "oppose", "2024-01-01T00:00:00Z"),
        said("o2", "us", "t", "support", "2024-02-01T00:00:00Z"),
    )
    seen: list[Message] = []
    async with asyncio.timeout(10), http.stream("GET", "/v1/stream") as response:
        assert response.headers["cache-control"] == "no-cache"
        async for message in messages(response):
            seen.append(message)
            if sum(1 for m in seen if m.comments and m.event is None and m.retry is None) >= 2:
                break
    assert seen[0].retry == RETRY_MS
    assert not [m for m in seen if m.event == "change"], "an old change was sent again"


async def test_beyond_the_cap_a_stream_is_refused_with_503_problem(
    http: httpx.AsyncClient,
) -> None:
    async with (
        http.stream("GET", "/v1/stream") as one,
        http.stream("GET", "/v1/stream") as two,
    ):
        assert (one.status_code, two.status_code) == (200, 200)
        refused = await http.get("/v1/stream")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert refused.json()["type"] == "/problems/too-many-streams"

    async def reopened() -> int:
        async with http.stream("GET", "/v1/stream") as again:
            return again.status_code

    # The slots come back once the streams have ended (the server notices the disconnect).
    for _ in range(50):
        if await reopened() == 200:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the closed streams never gave their slots back")


@pytest.mark.parametrize(
    ("params", "headers", "name"),
    [
        ({"cursor": "not-a-cursor"}, {}, "cursor"),
        ({}, {"Last-Event-ID": "bm90LWEtY3Vyc29y"}, "Last-Event-ID"),
        ({"kind": "sideways"}, {}, "kind"),
        ({"actor": "no spaces"}, {}, "actor"),
    ],
)
async def test_a_bad_resume_point_or_filter_is_a_400_problem(
    http: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], name: str
) -> None:
    response = await http.get("/v1/stream", params=params, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in response.json()["invalid-params"]] == [name]


async def test_head_answers_the_stream_headers_and_ends(http: httpx.AsyncClient) -> None:
    async with asyncio.timeout(5):
        response = await http.head("/v1/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""
