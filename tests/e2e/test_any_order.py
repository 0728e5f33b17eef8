"""Order independence end to end: the same events in any order give the same HTTP answers.

Two real ``stanceline up`` processes, each with its own database and stream. The first
gets the founding example, a retraction and a correction in order; the second gets the
retraction and the correction first (before the statements they amend), then the founding
lines in reverse, with duplicates interleaved. Every order-independent read must answer
byte for byte the same. The changes feed and a statement's events are left out: their
``recorded_at`` and ``position`` rightly depend on arrival.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _admin, founding_events, founding_lines
from stanceline.settings import Settings
from stanceline.store.db import create_engine
from support.running import eventually
from support.service import service_running, stop

if TYPE_CHECKING:
    from fixtures.servers import PostgresServer

ARMS = "us-arms-strikes-inside-russia"
VEHICLES = "us-vehicles-used-in-belgorod-raid"
RETRACTED = "2023-05-24.rdk.us-vehicles-in-belgorod"
CORRECTED = "2024-05-30.us.white-house.arms-inside-russia"
CORRECTED_CONFIDENCE = 0.75
CORRECTED_PUBLISHED_AT = "2024-05-31T09:00:00Z"
AMENDED = (RETRACTED, CORRECTED)
US_HISTORY = f"/v1/actors/us/topics/{ARMS}/history?include_descendants=true"


def _retraction() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "any-order-retract-rdk-vehicles",
        "source": "urn:test:any-order",
        "type": "stanceline.statement.retracted.v1",
        "time": "2023-05-26T09:00:00Z",
        "datacontenttype": "application/json",
        "data": {"statement_id": RETRACTED, "reason": "the coder misread the interview"},
    }


def _correction() -> dict[str, Any]:
    """The whole 2024-05-30 White House statement as it should read: less sure, dated."""
    (original,) = [e for e in founding_events() if e["data"].get("statement_id") == CORRECTED]
    data = copy.deepcopy(original["data"])
    data["confidence"] = CORRECTED_CONFIDENCE
    data["published_at"] = CORRECTED_PUBLISHED_AT
    return {
        "specversion": "1.0",
        "id": "any-order-correct-white-house-2024-05-30",
        "source": "urn:test:any-order",
        "type": "stanceline.statement.corrected.v1",
        "time": "2024-06-02T09:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
    }


RETRACTION = json.dumps(_retraction()).encode()
CORRECTION = json.dumps(_correction()).encode()


def _ids(kind: str, key: str) -> list[str]:
    return [
        e["data"][key] for e in founding_events() if e["type"] == f"stanceline.{kind}.registered.v1"
    ]


ACTORS = _ids("actor", "actor_id")
TOPICS = _ids("topic", "topic_id")


def _reads() -> list[str]:
    """Every order-independent GET compared between the runs."""
    reads = ["/v1/actors", "/v1/topics"]
    for a in ACTORS:
        for t in TOPICS:
            for rollup in ("true", "false"):
                reads.append(f"/v1/actors/{a}/topics/{t}/history?include_descendants={rollup}")
    for a in ACTORS:
        reads.append(f"/v1/actors/{a}/stances?include_descendants=false")
    for a in ("us", "ua", "ru"):
        reads.append(f"/v1/actors/{a}/stances?include_descendants=true")
    for t in TOPICS:
        reads.append(f"/v1/topics/{t}/stances")
        for rollup in ("true", "false"):
            reads.append(f"/v1/topics/{t}/timeline?bucket=month&include_descendants={rollup}")
    actors, topics = quote(",".join(ACTORS)), quote(",".join(TOPICS))
    for rollup in ("true", "false"):
        reads.append(f"/v1/matrix?actors={actors}&topics={topics}&include_descendants={rollup}")
    return reads


READS = _reads()


@dataclass
class Run:
    settings: Settings
    engine: AsyncEngine


@dataclass
class Answers:
    responses: dict[str, tuple[int, Any, bytes]]
    us_history_etag: str
    revalidated: int | None
    statements: dict[str, dict[str, Any]]
    positions: dict[str, int]


@pytest.fixture
async def second_run(
    settings: Settings, postgres_server: PostgresServer, template_database: str
) -> AsyncIterator[Run]:
    """A second database cloned from the migrated template, and a stream and group of its own."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    tag = uuid.uuid4().hex[:10]
    second = settings.model_copy(
        update={
            "database_url": postgres_server.url_for(name),
            "stream": f"test:{tag}:statements",
            "group": f"test-{tag}",
            "consumer": f"consumer-{tag}",
        }
    )
    engine = create_engine(postgres_server.url_for(name))
    try:
        yield Run(second, engine)
    finally:
        await engine.dispose()
        await _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _env(settings: Settings) -> dict[str, str]:
    return {
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
    }


def _waves(events: list[bytes]) -> list[list[bytes]]:
    """Run 2's arrival, one wait for the projector after each wave.

    The amendments (the last two of ``events``) come first and are committed before their
    statements exist. Then the founding lines in reverse, with an earlier entry sent again
    after every third: the first half one entry per wave (one batch each), the rest in one
    burst, so duplicates also meet inside a single batch.
    """
    amendments, founding = events[-2:], events[:-2]
    order = list(reversed(founding))
    with_duplicates: list[bytes] = []
    for i, line in enumerate(order):
        with_duplicates.append(line)
        if i % 3 == 2:
            with_duplicates.append(order[i - 2])
    half = len(with_duplicates) // 2
    return [
        [*amendments, amendments[0]],
        *([line] for line in with_duplicates[:half]),
        [*with_duplicates[half:], amendments[1]],
    ]


async def _run(
    run: Run,
    waves: list[list[bytes]],
    redis_client: aioredis.Redis,
    tmp_path: Path,
    *,
    if_none_match: str | None = None,
) -> Answers:
    expected_events = len({line for wave in waves for line in wave})
    async with (
        service_running(["up"], _env(run.settings), tmp_path) as service,
        httpx.AsyncClient(base_url=service.base_url, timeout=10) as http,
    ):
        for wave in waves:
            last_id = b""
            for line in wave:
                last_id = await redis_client.xadd(run.settings.stream, {"event": line})
            await eventually(
                lambda: _consumed(redis_client, run.settings),
                lambda group, last=last_id: group == (last, 0),
            )
        assert await _count(run.engine, "events") == expected_events
        assert await _count(run.engine, "dead_letters") == 0

        responses: dict[str, tuple[int, Any, bytes]] = {}
        for path in READS:
            response = await http.get(path)
            responses[path] = (response.status_code, response.json(), response.content)
        etag = (await http.get(US_HISTORY)).headers["etag"]
        revalidated = None
        if if_none_match is not None:
            conditional = await http.get(US_HISTORY, headers={"If-None-Match": if_none_match})
            revalidated = conditional.status_code
        statements = {s: (await http.get(f"/v1/statements/{s}")).json() for s in AMENDED}

        assert await stop(service) == 0, service.output()
    return Answers(responses, etag, revalidated, statements, await _positions(run.engine))


async def _consumed(client: aioredis.Redis, settings: Settings) -> tuple[bytes, int] | None:
    """The group's last delivered entry id and how many entries are still unacknowledged."""
    for group in await client.xinfo_groups(settings.stream):
        if group["name"] == settings.group.encode():
            return group["last-delivered-id"], group["pending"]
    return None


async def _positions(engine: AsyncEngine) -> dict[str, int]:
    """Each stored event's position in ``events``: the order it was appended in."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT event_id, position FROM events"))
        return {r.event_id: r.position for r in rows}


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_any_order_with_duplicates_gives_the_same_answers_as_in_order(
    settings: Settings,
    engine: AsyncEngine,
    second_run: Run,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    events = [*founding_lines(), RETRACTION, CORRECTION]
    waves = _waves(events)
    shuffled = [line for wave in waves for line in wave]
    assert len(shuffled) - len(events) >= 8
    assert set(shuffled) == set(events)

    in_order = await _run(Run(settings, engine), [events], redis_client, tmp_path)
    any_order = await _run(
        second_run, waves, redis_client, tmp_path, if_none_match=in_order.us_history_etag
    )

    # The second run really stored each amendment before its statement, the first after it.
    for amendment, amended in (
        (_retraction()["id"], "founding-stmt-2023-05-24-rdk-vehicles"),
        (_correction()["id"], "founding-stmt-2024-05-30-us-white-house-arms"),
    ):
        assert in_order.positions[amended] < in_order.positions[amendment]
        assert any_order.positions[amendment] < any_order.positions[amended]

    # Not vacuous: the roll-up is the founding story, with the correction applied ...
    us = in_order.responses[US_HISTORY][1]
    assert [(p["said_at"][:10], p["stance"], p["change"]) for p in us["points"]] == [
        ("2023-05-24", "oppose", "none"),
        ("2024-05-30", "neutral", "shift"),
        ("2024-11-17", "support", "shift"),
    ]
    assert us["points"][1]["statement_id"] == CORRECTED
    assert us["points"][1]["confidence"] == CORRECTED_CONFIDENCE
    assert us["points"][1]["published_at"].startswith(CORRECTED_PUBLISHED_AT[:19])
    # ... and without the retracted statement.
    belgorod = in_order.responses[f"/v1/topics/{VEHICLES}/stances"][1]
    assert {s["actor_id"] for s in belgorod["stances"]} == {"us.dod", "us.nsc", "ru.mod"}
    assert RETRACTED not in {s["statement_id"] for s in belgorod["stances"]}
    rdk = in_order.responses[f"/v1/actors/rdk/topics/{VEHICLES}/history?include_descendants=false"]
    assert (rdk[1]["points"], rdk[1]["current"]) == ([], None)

    for answers in (in_order, any_order):
        not_ok = {p: r[0] for p, r in answers.responses.items() if r[0] != 200}
        assert not not_ok, not_ok

    # The claim itself: the same answers, parsed and byte for byte, and the same ETag.
    differing = [p for p in READS if in_order.responses[p][:2] != any_order.responses[p][:2]]
    assert not differing, _first_difference(differing, in_order, any_order)
    differing_bytes = [p for p in READS if in_order.responses[p][2] != any_order.responses[p][2]]
    assert not differing_bytes, _first_difference(differing_bytes, in_order, any_order)
    assert in_order.us_history_etag == any_order.us_history_etag
    assert any_order.revalidated == 304, "run 1's ETag should be current for run 2"

    # A statement's detail: its events carry arrival (position, recorded_at); the rest agrees.
    retracted, corrected = (in_order.statements[s] for s in AMENDED)
    assert (retracted["recorded"], retracted["retracted"], retracted["corrected"]) == (
        True,
        True,
        False,
    )
    assert retracted["retraction_reason"] == _retraction()["data"]["reason"]
    assert (corrected["recorded"], corrected["retracted"], corrected["corrected"]) == (
        True,
        False,
        True,
    )
    white_house = in_order.responses[
        f"/v1/actors/us.white-house/topics/{ARMS}/history?include_descendants=false"
    ][1]
    assert corrected["reads_now"] == white_house["points"][0]
    for s in AMENDED:
        left, right = in_order.statements[s], any_order.statements[s]
        assert {e["event_id"] for e in left.pop("events")} == {
            e["event_id"] for e in right.pop("events")
        }
        assert left == right, s


def _first_difference(paths: list[str], left: Answers, right: Answers) -> str:
    path = paths[0]
    return (
        f"{len(paths)} of {len(READS)} reads differ, e.g. {path}:\n"
        f"in order:  {left.responses[path][2].decode()}\n"
        f"any order: {right.responses[path][2].decode()}"
    )
