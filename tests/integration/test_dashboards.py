"""Dashboard reads over HTTP against real Postgres: stances per actor, calendar timelines,
the actor × topic matrix, statement detail, both time axes, ETags and pagination.

The app is the one ``stanceline api`` serves (``create_app``), driven in process through
httpx's ASGI transport with its lifespan running. Data goes in through the real write path
(contract parsing, then ``store_batch`` in one transaction per batch), so ``recorded_at``
comes from Postgres' clock exactly as it does in production.

Two read paths answer every dashboard route: the projection tables (no ``known_at``) and
the domain fold of ``events`` recorded by ``known_at``. Where a test needs "a moment after
a commit" it asks Postgres' own clock, the clock that stamps ``recorded_at``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_events, founding_lines
from stanceline.contract import Rejection, parse_event
from stanceline.readmodel.app import create_app
from stanceline.store.db import writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import actor, envelope, parsed, raw, retraction, statement
from support.http import serve

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROBLEM_JSON = "application/problem+json"

ARMS = "us-arms-strikes-inside-russia"
VEHICLES = "us-vehicles-used-in-belgorod-raid"
RAID = "ukraine-behind-belgorod-raid"

KIRBY_ARMS = "2023-05-24.us.nsc.arms-inside-russia"
KIRBY_ARMS_EVENT = "founding-stmt-2023-05-24-us-nsc-arms"
KIRBY_QUOTE = "We don't support the use of U.S.-made equipment for attacks inside Russia"
KIRBY = {"name": "John Kirby", "role": "NSC spokesperson"}
WH_LIMITED = "2024-05-30.us.white-house.arms-inside-russia"
WH_SUPPORT = "2024-11-17.us.white-house.arms-inside-russia"
NSC_VEHICLES = "2023-05-24.us.nsc.us-vehicles-in-belgorod"
DOD_VEHICLES = "2023-05-23.us.dod.us-vehicles-in-belgorod"
RDK_VEHICLES = "2023-05-24.rdk.us-vehicles-in-belgorod"
UA_RAID = "2023-05-22.ua.ukraine-behind-raid"
RU_MOD_RAID = "2023-05-24.ru.mod.ukraine-behind-raid"
RU_MOD_VEHICLES = "2023-05-24.ru.mod.us-vehicles-in-belgorod"

US_HISTORY = f"/v1/actors/us/topics/{ARMS}/history"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# --- loading data through the real write path ---------------------------------------------


async def store(engine: AsyncEngine, *documents: dict[str, Any]) -> None:
    """One batch, one transaction, exactly as the projector stores a batch."""
    items = [Accepted(parsed(d), raw(d)) for d in documents]
    async with writing(engine) as conn:
        report = await store_batch(conn, items)
    assert (report.appended, report.dead_lettered) == (len(items), 0), report


async def load_founding(engine: AsyncEngine) -> None:
    items = []
    for line in founding_lines():
        event = parse_event(line, now=NOW)
        assert not isinstance(event, Rejection), event
        items.append(Accepted(event, line))
    async with writing(engine) as conn:
        report = await store_batch(conn, items)
    assert (report.appended, report.dead_lettered) == (len(items), 0)


async def pg_clock(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        moment: datetime = await conn.scalar(sa.text("SELECT clock_timestamp()"))
    return moment


async def moment_after_commits(engine: AsyncEngine) -> datetime:
    """A moment strictly after every commit so far and strictly before anything later."""
    await asyncio.sleep(0.005)
    moment = await pg_clock(engine)
    await asyncio.sleep(0.005)
    return moment


def correction(
    event_id: str,
    statement_id: str,
    actor_id: str,
    topic_id: str,
    stance: str,
    said_at: str,
    time: str,
    **extra: Any,
) -> dict[str, Any]:
    return statement(
        event_id,
        statement_id,
        actor_id,
        topic_id,
        stance,
        said_at,
        kind="statement.corrected",
        time=time,
        **extra,
    )


def retraction_because(
    event_id: str, statement_id: str, reason: str, time: str = "2025-06-01T00:00:00Z"
) -> dict[str, Any]:
    data = {"statement_id": statement_id, "reason": reason}
    return envelope(event_id, "statement.retracted", time, data)


# --- the app ------------------------------------------------------------------------------


@pytest.fixture
async def bare(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The app over an empty event store."""
    async with serve(create_app(engine=engine)) as http:
        yield http


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the founding example."""
    await load_founding(engine)
    async with serve(create_app(engine=engine)) as http:
        yield http


async def ok(http: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await http.get(url, params=params)
    assert response.status_code == 200, (url, params, response.text)
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def problem(
    http: httpx.AsyncClient, url: str, status: int, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await http.get(url, params=params)
    assert response.status_code == status, (url, params, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == ("/problems/bad-request" if status == 400 else "/problems/not-found")
    assert body["title"]
    return body


async def walk(
    http: httpx.AsyncClient, url: str, items: str, key: str, **params: Any
) -> list[list[str]]:
    """Follow ``next_cursor`` to the end; each page's ids."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        body = await ok(http, url, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([item[key] for item in body[items]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= 20, "pagination does not end"


def stance_rows(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (s["actor_id"], s["topic_id"], s["stance"], s["score"], at(s["said_at"]), s["statement_id"])
        for s in body["stances"]
    ]


# --- 1. an actor's stances on every topic -------------------------------------------------


async def test_us_stances_roll_up_its_tree(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/actors/us/stances", include_descendants="true")

    assert (body["actor_id"], body["include_descendants"]) == ("us", True)
    assert (body["as_of"], body["known_at"], body["next_cursor"]) == (None, None, None)
    # One entry per topic the US tree spoke on, each the last point of the rolled-up series.
    assert stance_rows(body) == [
        ("us", ARMS, "support", 1.0, utc(2024, 11, 17, 12), WH_SUPPORT),
        ("us", VEHICLES, "neutral", 0.0, utc(2023, 5, 24, 12), NSC_VEHICLES),
    ]
    arms, vehicles = body["stances"]
    # The White House supports while the NSC's 2023 word still stands: contested.
    assert (arms["contested"], arms["supporting"], arms["opposing"]) == (
        True,
        ["us.white-house"],
        ["us.nsc"],
    )
    # The Pentagon doubted, the NSC was looking into it: one side only.
    assert (vehicles["contested"], vehicles["supporting"], vehicles["opposing"]) == (
        False,
        [],
        ["us.dod"],
    )


async def test_us_has_no_stance_of_its_own(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/actors/us/stances")

    assert body["include_descendants"] is False
    assert (body["stances"], body["next_cursor"]) == ([], None)


async def test_russian_mod_stances_without_descendants(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/actors/ru.mod/stances")

    assert stance_rows(body) == [
        ("ru.mod", RAID, "support", 1.0, utc(2023, 5, 24, 12), RU_MOD_RAID),
        ("ru.mod", VEHICLES, "support", 1.0, utc(2023, 5, 24, 12), RU_MOD_VEHICLES),
    ]
    assert [(s["contested"], s["supporting"], s["opposing"]) for s in body["stances"]] == [
        (False, ["ru.mod"], []),
        (False, ["ru.mod"], []),
    ]


async def test_a_parent_rolls_up_its_only_child(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/actors/ru/stances", include_descendants="true")

    assert stance_rows(body) == [
        ("ru", RAID, "support", 1.0, utc(2023, 5, 24, 12), RU_MOD_RAID),
        ("ru", VEHICLES, "support", 1.0, utc(2023, 5, 24, 12), RU_MOD_VEHICLES),
    ]


@pytest.mark.parametrize(
    ("actor_id", "descendants", "topics"),
    [
        ("us", "true", [ARMS, VEHICLES]),
        ("ru.mod", "false", [RAID, VEHICLES]),
        ("us.nsc", "false", [ARMS, VEHICLES]),
        ("ua", "true", [RAID, ARMS]),
    ],
)
@pytest.mark.parametrize("known", [False, True], ids=["projection", "known_at"])
async def test_actor_stance_pages_walk_every_topic_once(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    actor_id: str,
    descendants: str,
    topics: list[str],
    known: bool,
) -> None:
    params: dict[str, Any] = {"include_descendants": descendants, "limit": 1}
    if known:
        params["known_at"] = (await moment_after_commits(engine)).isoformat()
    pages = await walk(client, f"/v1/actors/{actor_id}/stances", "stances", "topic_id", **params)

    flat = [t for page in pages for t in page]
    assert flat == sorted(topics)
    assert all(len(page) == 1 for page in pages[: len(topics)])
    assert pages[len(topics) :] in ([], [[]])  # at most one empty page closes the walk


async def test_actor_stances_of_an_unknown_actor_is_a_404(client: httpx.AsyncClient) -> None:
    body = await problem(client, "/v1/actors/nobody/stances", 404)

    assert "nobody" in body["detail"]


# --- 2. a topic's timeline in calendar buckets --------------------------------------------

BUDGET = "acme-four-day-week"
A1, A2, A3 = "acme.1", "acme.2", "acme.3"
O1, O2 = "acme.ops.1", "acme.ops.2"


def acme_statements() -> list[dict[str, Any]]:
    """A data set whose buckets can be computed by hand.

    acme (own): support 1.0/conf 1.0 on Tuesday 2024-03-05, oppose -0.5/conf 0.5 on Sunday
    2024-03-10 23:00Z, support 1.0/conf 0.6 on 2024-03-31T23:30-02:00, which is Monday
    2024-04-01 01:30 in UTC. acme.ops (a child of acme): neutral 0.0/conf 0.8 on Monday
    2024-04-01 00:30Z, oppose -1.0 with confidence 0 on Friday 2024-05-10.
    """
    return [
        actor("acme-reg", "acme"),
        actor("acme-ops-reg", "acme.ops", parent_id="acme"),
        statement(
            "e-a1", A1, "acme", BUDGET, "support", "2024-03-05T10:00:00Z", score=1.0, confidence=1.0
        ),
        statement(
            "e-a2", A2, "acme", BUDGET, "oppose", "2024-03-10T23:00:00Z", score=-0.5, confidence=0.5
        ),
        statement(
            "e-a3", A3, "acme", BUDGET, "support", "2024-03-31T23:30:00-02:00", confidence=0.6
        ),
        statement(
            "e-o1", O1, "acme.ops", BUDGET, "neutral", "2024-04-01T00:30:00Z", confidence=0.8
        ),
        statement("e-o2", O2, "acme.ops", BUDGET, "oppose", "2024-05-10T09:00:00Z", confidence=0.0),
    ]


MARCH = (1.0 * 1.0 + -0.5 * 0.5) / (1.0 + 0.5)  # 0.5
APRIL_TREE = (1.0 * 0.6 + 0.0 * 0.8) / (0.6 + 0.8)

TIMELINES: list[tuple[str, str, str | None, list[tuple[Any, ...]]]] = [
    (
        "month",
        "false",
        "acme",
        [
            ("acme", utc(2024, 3, 1), MARCH, 2, "oppose", A2),
            ("acme", utc(2024, 4, 1), 1.0, 1, "support", A3),
        ],
    ),
    (
        # Weeks start on Monday: Tuesday 5 and Sunday 10 March share the week of Monday 4.
        "week",
        "false",
        "acme",
        [
            ("acme", utc(2024, 3, 4), MARCH, 2, "oppose", A2),
            ("acme", utc(2024, 4, 1), 1.0, 1, "support", A3),
        ],
    ),
    (
        "day",
        "false",
        "acme",
        [
            ("acme", utc(2024, 3, 5), 1.0, 1, "support", A1),
            ("acme", utc(2024, 3, 10), -0.5, 1, "oppose", A2),
            ("acme", utc(2024, 4, 1), 1.0, 1, "support", A3),
        ],
    ),
    (
        # Rolled up, acme's April holds its own A3 and acme.ops' O1; May holds only O2, whose
        # confidence is 0, so there is no weighted mean at all.
        "month",
        "true",
        "acme",
        [
            ("acme", utc(2024, 3, 1), MARCH, 2, "oppose", A2),
            ("acme", utc(2024, 4, 1), APRIL_TREE, 2, "support", A3),
            ("acme", utc(2024, 5, 1), None, 1, "oppose", O2),
        ],
    ),
    (
        "week",
        "true",
        "acme",
        [
            ("acme", utc(2024, 3, 4), MARCH, 2, "oppose", A2),
            ("acme", utc(2024, 4, 1), APRIL_TREE, 2, "support", A3),
            ("acme", utc(2024, 5, 6), None, 1, "oppose", O2),
        ],
    ),
    (
        "day",
        "true",
        "acme",
        [
            ("acme", utc(2024, 3, 5), 1.0, 1, "support", A1),
            ("acme", utc(2024, 3, 10), -0.5, 1, "oppose", A2),
            ("acme", utc(2024, 4, 1), APRIL_TREE, 2, "support", A3),
            ("acme", utc(2024, 5, 10), None, 1, "oppose", O2),
        ],
    ),
    (
        "month",
        "false",
        None,
        [
            ("acme", utc(2024, 3, 1), MARCH, 2, "oppose", A2),
            ("acme", utc(2024, 4, 1), 1.0, 1, "support", A3),
            ("acme.ops", utc(2024, 4, 1), 0.0, 1, "neutral", O1),
            ("acme.ops", utc(2024, 5, 1), None, 1, "oppose", O2),
        ],
    ),
    (
        "month",
        "true",
        None,
        [
            ("acme", utc(2024, 3, 1), MARCH, 2, "oppose", A2),
            ("acme", utc(2024, 4, 1), APRIL_TREE, 2, "support", A3),
            ("acme", utc(2024, 5, 1), None, 1, "oppose", O2),
            ("acme.ops", utc(2024, 4, 1), 0.0, 1, "neutral", O1),
            ("acme.ops", utc(2024, 5, 1), None, 1, "oppose", O2),
        ],
    ),
    (
        # An actor that never spoke on the topic filters to nothing, not to an error.
        "month",
        "false",
        "acme.ops,nobody",
        [
            ("acme.ops", utc(2024, 4, 1), 0.0, 1, "neutral", O1),
            ("acme.ops", utc(2024, 5, 1), None, 1, "oppose", O2),
        ],
    ),
]


def bucket_rows(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            b["actor_id"],
            at(b["start"]),
            b["mean_score"],
            b["count"],
            b["last_stance"],
            b["last_statement_id"],
        )
        for b in body["buckets"]
    ]


def approximately(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(a, s, None if m is None else pytest.approx(m), *rest) for a, s, m, *rest in rows]


@pytest.mark.parametrize(("bucket", "descendants", "actors", "expected"), TIMELINES)
async def test_timeline_buckets_by_hand(
    bare: httpx.AsyncClient,
    engine: AsyncEngine,
    bucket: str,
    descendants: str,
    actors: str | None,
    expected: list[tuple[Any, ...]],
) -> None:
    await store(engine, *acme_statements())
    params: dict[str, Any] = {"bucket": bucket, "include_descendants": descendants}
    if actors is not None:
        params["actors"] = actors

    live = await ok(bare, f"/v1/topics/{BUDGET}/timeline", **params)
    known_at = (await moment_after_commits(engine)).isoformat()
    then = await ok(bare, f"/v1/topics/{BUDGET}/timeline", **params, known_at=known_at)

    assert (live["topic_id"], live["bucket"], live["include_descendants"]) == (
        BUDGET,
        bucket,
        descendants == "true",
    )
    assert bucket_rows(live) == approximately(expected)
    assert bucket_rows(then) == approximately(expected)
    for body in (live, then):
        for b in body["buckets"]:
            start = at(b["start"])
            assert start.utcoffset() == timedelta(0)
            assert start.time() == datetime.min.time()
            if bucket == "week":
                assert start.weekday() == 0
            if bucket == "month":
                assert start.day == 1


async def test_timeline_mean_is_the_confidence_weighted_mean(
    bare: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await store(engine, *acme_statements())

    body = await ok(bare, f"/v1/topics/{BUDGET}/timeline", actors="acme")

    assert body["bucket"] == "month"  # the default
    assert body["buckets"][0]["mean_score"] == pytest.approx(0.75 / 1.5)
    assert body["buckets"][0]["mean_score"] != pytest.approx((1.0 - 0.5) / 2)  # not unweighted


async def test_timeline_as_of_cuts_by_said_at(bare: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await store(engine, *acme_statements())

    body = await ok(
        bare, f"/v1/topics/{BUDGET}/timeline", actors="acme", bucket="day", as_of="2024-03-09"
    )

    assert bucket_rows(body) == [("acme", utc(2024, 3, 5), 1.0, 1, "support", A1)]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bucket": "year"}, "bucket"),
        ({"bucket": ""}, "bucket"),
        ({"actors": ""}, "actors"),
        ({"actors": "a b"}, "actors"),
        ({"actors": ",".join(f"a{i}" for i in range(101))}, "actors"),
        ({"include_descendants": "maybe"}, "include_descendants"),
    ],
)
async def test_timeline_bad_parameters_are_400_problems(
    bare: httpx.AsyncClient, engine: AsyncEngine, params: dict[str, str], named: str
) -> None:
    await store(engine, *acme_statements())

    body = await problem(bare, f"/v1/topics/{BUDGET}/timeline", 400, params)

    assert [p["name"] for p in body["invalid-params"]] == [named]


async def test_timeline_of_an_unknown_topic_is_a_404(bare: httpx.AsyncClient) -> None:
    body = await problem(bare, "/v1/topics/nothing/timeline", 404)

    assert "nothing" in body["detail"]


# --- 3. the actor × topic matrix ----------------------------------------------------------


def cells(body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(c["actor_id"], c["topic_id"], c["stance"], c["statement_id"]) for c in body["cells"]]


async def test_matrix_has_cells_only_where_a_stance_exists(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/matrix", actors="us,ru.mod,ua", topics=f"{VEHICLES},{ARMS}")

    assert body["actors"] == ["ru.mod", "ua", "us"]
    assert body["topics"] == [ARMS, VEHICLES]
    assert body["include_descendants"] is False
    # Neither the US nor Ukraine spoke in their own name on these topics.
    assert cells(body) == [("ru.mod", VEHICLES, "support", RU_MOD_VEHICLES)]
    cell = body["cells"][0]
    assert (cell["score"], at(cell["said_at"])) == (1.0, utc(2023, 5, 24, 12))


async def test_matrix_with_descendants_uses_the_rolled_up_series(
    client: httpx.AsyncClient,
) -> None:
    body = await ok(
        client,
        "/v1/matrix",
        actors="us,ru.mod,ua",
        topics=f"{ARMS},{VEHICLES}",
        include_descendants="true",
    )

    assert body["include_descendants"] is True
    assert cells(body) == [
        ("ru.mod", VEHICLES, "support", RU_MOD_VEHICLES),
        ("ua", ARMS, "oppose", "2023-05-24.ua.hur.arms-inside-russia"),
        ("us", ARMS, "support", WH_SUPPORT),
        ("us", VEHICLES, "neutral", NSC_VEHICLES),
    ]
    assert [(c["score"], at(c["said_at"])) for c in body["cells"]] == [
        (1.0, utc(2023, 5, 24, 12)),
        (-1.0, utc(2023, 5, 24, 12)),
        (1.0, utc(2024, 11, 17, 12)),
        (0.0, utc(2023, 5, 24, 12)),
    ]


async def test_matrix_as_of_and_unknown_ids(client: httpx.AsyncClient) -> None:
    body = await ok(
        client,
        "/v1/matrix",
        actors="us,nobody",
        topics=f"{ARMS},nothing",
        include_descendants="true",
        as_of="2024-06-01",
    )

    assert (body["actors"], body["topics"]) == (["nobody", "us"], ["nothing", ARMS])
    # As of June 2024 the US had gone neutral; unknown ids are simply empty rows and columns.
    assert cells(body) == [("us", ARMS, "neutral", WH_LIMITED)]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"topics": ARMS}, "actors"),
        ({"actors": "us"}, "topics"),
        ({"actors": "", "topics": ARMS}, "actors"),
        ({"actors": " , ,", "topics": ARMS}, "actors"),
        ({"actors": "us", "topics": ""}, "topics"),
        ({"actors": ",".join(f"a{i}" for i in range(101)), "topics": ARMS}, "actors"),
        ({"actors": "us", "topics": ",".join(f"t{i}" for i in range(101))}, "topics"),
        ({"actors": "us,not an id", "topics": ARMS}, "actors"),
        ({"actors": "us", "topics": ARMS, "include_descendants": "2"}, "include_descendants"),
    ],
)
async def test_matrix_bad_id_lists_are_400_problems(
    client: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    body = await problem(client, "/v1/matrix", 400, params)

    assert [p["name"] for p in body["invalid-params"]] == [named]
    assert named in body["detail"]


async def test_matrix_takes_exactly_one_hundred_ids(client: httpx.AsyncClient) -> None:
    actors = ",".join(["us", *(f"a{i}" for i in range(99))])

    body = await ok(client, "/v1/matrix", actors=actors, topics=ARMS, include_descendants="true")

    assert len(body["actors"]) == 100
    assert cells(body) == [("us", ARMS, "support", WH_SUPPORT)]


# --- 4. statement detail ------------------------------------------------------------------


def founding_event(event_id: str) -> dict[str, Any]:
    [event] = [e for e in founding_events() if e["id"] == event_id]
    return event


async def test_the_kirby_statement_reads_with_its_quote(client: httpx.AsyncClient) -> None:
    body = await ok(client, f"/v1/statements/{KIRBY_ARMS}")

    assert (body["statement_id"], body["known_at"]) == (KIRBY_ARMS, None)
    assert (body["recorded"], body["retracted"], body["corrected"]) == (True, False, False)
    assert body["retraction_reason"] is None
    now = body["reads_now"]
    assert (now["actor_id"], now["topic_id"], now["stance"]) == ("us.nsc", ARMS, "oppose")
    assert (now["quote"], now["speaker"]) == (KIRBY_QUOTE, KIRBY)
    assert (now["score"], now["confidence"], at(now["said_at"])) == (
        -1.0,
        0.95,
        utc(2023, 5, 24, 12),
    )
    assert (now["change"], now["previous_statement_id"]) == ("none", None)
    [event] = body["events"]
    original = founding_event(KIRBY_ARMS_EVENT)
    assert (event["event_id"], event["type"], event["source"]) == (
        KIRBY_ARMS_EVENT,
        "stanceline.statement.recorded.v1",
        original["source"],
    )
    assert at(event["time"]) == utc(2023, 5, 24, 18)
    assert event["data"]["quote"] == KIRBY_QUOTE
    assert event["data"]["statement_id"] == KIRBY_ARMS
    assert isinstance(event["position"], int)
    assert at(event["recorded_at"]).tzinfo is not None


async def test_a_corrected_then_retracted_statement_keeps_every_event(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await pg_clock(engine)
    fixed = "We don't support attacks inside Russia with U.S.-made equipment"
    await store(
        engine,
        correction(
            "fix-kirby",
            KIRBY_ARMS,
            "us.nsc",
            ARMS,
            "oppose",
            "2023-05-24T12:00:00Z",
            time="2025-02-01T00:00:00Z",
            score=-0.9,
            confidence=0.7,
            speaker=KIRBY,
            quote=fixed,
        ),
    )
    await store(engine, retraction_because("pull-kirby", KIRBY_ARMS, "misattributed"))
    after = await pg_clock(engine)

    body = await ok(client, f"/v1/statements/{KIRBY_ARMS}")

    assert (body["recorded"], body["retracted"], body["corrected"]) == (True, True, True)
    assert body["retraction_reason"] == "misattributed"
    events = body["events"]
    assert [(e["event_id"], e["type"]) for e in events] == [
        (KIRBY_ARMS_EVENT, "stanceline.statement.recorded.v1"),
        ("fix-kirby", "stanceline.statement.corrected.v1"),
        ("pull-kirby", "stanceline.statement.retracted.v1"),
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert len(set(positions)) == 3
    recorded_at = [at(e["recorded_at"]) for e in events]
    assert recorded_at[0] < before < recorded_at[1] < recorded_at[2] < after
    assert events[1]["data"]["quote"] == fixed
    assert events[2]["data"]["reason"] == "misattributed"
    # It reads as corrected, and, retracted, it sits on no timeline.
    now = body["reads_now"]
    assert (now["quote"], now["score"], now["confidence"]) == (fixed, -0.9, 0.7)
    assert (now["change"], now["previous_statement_id"]) == ("none", None)

    # Known just before the retraction: corrected, not retracted.
    moment = (recorded_at[2] - timedelta(microseconds=1)).isoformat()
    then = await ok(client, f"/v1/statements/{KIRBY_ARMS}", known_at=moment)
    assert at(then["known_at"]) == recorded_at[2] - timedelta(microseconds=1)
    assert (then["retracted"], then["corrected"], then["retraction_reason"]) == (False, True, None)
    assert [e["event_id"] for e in then["events"]] == [KIRBY_ARMS_EVENT, "fix-kirby"]
    assert then["reads_now"]["quote"] == fixed

    # known_at is inclusive: at the correction's own recorded_at the correction is known.
    exactly = await ok(client, f"/v1/statements/{KIRBY_ARMS}", known_at=recorded_at[1].isoformat())
    assert [e["event_id"] for e in exactly["events"]] == [KIRBY_ARMS_EVENT, "fix-kirby"]
    # Just before the correction: as recorded.
    moment = (recorded_at[1] - timedelta(microseconds=1)).isoformat()
    original = await ok(client, f"/v1/statements/{KIRBY_ARMS}", known_at=moment)
    assert (original["retracted"], original["corrected"]) == (False, False)
    assert original["reads_now"]["quote"] == KIRBY_QUOTE

    # The retraction took Kirby off the US timeline: the White House now opens it.
    history = await ok(client, US_HISTORY, include_descendants="true")
    assert [
        (p["statement_id"], p["change"], p["previous_statement_id"]) for p in history["points"]
    ] == [
        (WH_LIMITED, "none", None),
        (WH_SUPPORT, "shift", WH_LIMITED),
    ]
    assert history["current"]["opposing"] == []
    assert history["current"]["contested"] is False


async def test_statement_known_before_it_was_recorded_is_a_404(
    client: httpx.AsyncClient,
) -> None:
    body = await problem(client, f"/v1/statements/{KIRBY_ARMS}", 404, {"known_at": "2000-01-01"})

    assert KIRBY_ARMS in body["detail"]


@pytest.mark.parametrize("statement_id", ["no-such-statement", "not%20an%20id"])
async def test_an_unknown_statement_is_a_404_problem(
    client: httpx.AsyncClient, statement_id: str
) -> None:
    body = await problem(client, f"/v1/statements/{statement_id}", 404)

    assert body["instance"].startswith("/v1/statements/")


# --- 5. known_at: what was known then ------------------------------------------------------

DOD_ARMS = "2024-09-01.us.dod.arms-inside-russia"


def dod_arms(event_id: str = "dod-arms") -> dict[str, Any]:
    return statement(
        event_id,
        DOD_ARMS,
        "us.dod",
        ARMS,
        "oppose",
        "2024-09-01T12:00:00Z",
        time="2024-09-01T18:00:00Z",
        score=-0.8,
        confidence=0.6,
        quote="We have concerns",
    )


def points(body: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    return [
        (p["statement_id"], p["stance"], p["change"], p["previous_statement_id"])
        for p in body["points"]
    ]


async def test_known_at_shows_a_statement_that_was_later_retracted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await store(engine, dod_arms())
    known = await moment_after_commits(engine)
    await store(engine, retraction("pull-dod", DOD_ARMS))
    k = known.isoformat()

    then = await ok(client, US_HISTORY, include_descendants="true", known_at=k)
    assert at(then["known_at"]) == known
    assert points(then) == [
        (KIRBY_ARMS, "oppose", "none", None),
        (WH_LIMITED, "neutral", "shift", KIRBY_ARMS),
        (DOD_ARMS, "oppose", "shift", WH_LIMITED),
        (WH_SUPPORT, "support", "flip", DOD_ARMS),
    ]
    dod = then["points"][2]
    assert (dod["actor_id"], dod["score"], dod["confidence"], dod["quote"]) == (
        "us.dod",
        -0.8,
        0.6,
        "We have concerns",
    )
    assert then["current"]["opposing"] == ["us.dod", "us.nsc"]
    own = await ok(client, f"/v1/actors/us.dod/topics/{ARMS}/history", known_at=k)
    assert points(own) == [(DOD_ARMS, "oppose", "none", None)]
    assert own["current"]["statement_id"] == DOD_ARMS

    now = await ok(client, US_HISTORY, include_descendants="true")
    assert now["known_at"] is None
    assert points(now) == [
        (KIRBY_ARMS, "oppose", "none", None),
        (WH_LIMITED, "neutral", "shift", KIRBY_ARMS),
        (WH_SUPPORT, "support", "shift", WH_LIMITED),
    ]
    assert now["current"]["opposing"] == ["us.nsc"]
    gone = await ok(client, f"/v1/actors/us.dod/topics/{ARMS}/history")
    assert (gone["points"], gone["current"]) == ([], None)

    # The retraction is itself known only after K.
    assert (await ok(client, f"/v1/statements/{DOD_ARMS}", known_at=k))["retracted"] is False
    assert (await ok(client, f"/v1/statements/{DOD_ARMS}"))["retracted"] is True

    # Other read routes answer as known then, too.
    stances = await ok(client, f"/v1/topics/{ARMS}/stances", known_at=k)
    assert ("us.dod", "oppose", DOD_ARMS) in [
        (s["actor_id"], s["stance"], s["statement_id"]) for s in stances["stances"]
    ]
    stances = await ok(client, f"/v1/topics/{ARMS}/stances")
    assert "us.dod" not in [s["actor_id"] for s in stances["stances"]]
    matrix = await ok(client, "/v1/matrix", actors="us.dod", topics=ARMS, known_at=k)
    assert cells(matrix) == [("us.dod", ARMS, "oppose", DOD_ARMS)]
    assert cells(await ok(client, "/v1/matrix", actors="us.dod", topics=ARMS)) == []


async def test_known_at_shows_a_statement_before_its_correction(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    known = await moment_after_commits(engine)
    await store(
        engine,
        correction(
            "fix-kirby-neutral",
            KIRBY_ARMS,
            "us.nsc",
            ARMS,
            "neutral",
            "2023-05-24T12:00:00Z",
            time="2025-02-01T00:00:00Z",
            speaker=KIRBY,
            quote="We are looking at it",
        ),
    )
    k = known.isoformat()

    then = await ok(client, US_HISTORY, include_descendants="true", known_at=k)
    assert points(then) == [
        (KIRBY_ARMS, "oppose", "none", None),
        (WH_LIMITED, "neutral", "shift", KIRBY_ARMS),
        (WH_SUPPORT, "support", "shift", WH_LIMITED),
    ]
    assert then["points"][0]["quote"] == KIRBY_QUOTE
    assert (then["current"]["contested"], then["current"]["opposing"]) == (True, ["us.nsc"])

    # Corrected to neutral, Kirby no longer opposes, and the May 2024 point changes nothing.
    now = await ok(client, US_HISTORY, include_descendants="true")
    assert points(now) == [
        (KIRBY_ARMS, "neutral", "none", None),
        (WH_LIMITED, "neutral", "none", KIRBY_ARMS),
        (WH_SUPPORT, "support", "shift", WH_LIMITED),
    ]
    assert now["points"][0]["quote"] == "We are looking at it"
    assert (now["current"]["contested"], now["current"]["opposing"]) == (False, [])

    # Timelines follow the same axis.
    then_tl = await ok(client, f"/v1/topics/{ARMS}/timeline", actors="us.nsc", known_at=k)
    now_tl = await ok(client, f"/v1/topics/{ARMS}/timeline", actors="us.nsc")
    assert [(b["last_stance"], b["mean_score"]) for b in then_tl["buckets"]] == [("oppose", -1.0)]
    assert [(b["last_stance"], b["mean_score"]) for b in now_tl["buckets"]] == [("neutral", 0.0)]


async def test_known_at_before_everything_is_empty(client: httpx.AsyncClient) -> None:
    early = "2000-01-01T00:00:00Z"

    history = await ok(client, US_HISTORY, include_descendants="true", known_at=early)
    assert (history["points"], history["current"], history["next_cursor"]) == ([], None, None)
    assert at(history["known_at"]) == utc(2000, 1, 1)
    stances = await ok(client, "/v1/actors/us/stances", include_descendants="true", known_at=early)
    assert stances["stances"] == []
    assert (await ok(client, f"/v1/topics/{ARMS}/stances", known_at=early))["stances"] == []
    timeline = await ok(client, f"/v1/topics/{ARMS}/timeline", known_at=early)
    assert timeline["buckets"] == []
    matrix = await ok(client, "/v1/matrix", actors="us", topics=ARMS, known_at=early)
    assert matrix["cells"] == []


async def test_as_of_and_known_at_combined(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await store(engine, dod_arms())
    known = await moment_after_commits(engine)
    await store(engine, retraction("pull-dod", DOD_ARMS))

    body = await ok(
        client,
        US_HISTORY,
        include_descendants="true",
        known_at=known.isoformat(),
        as_of="2024-09-30",
    )

    assert at(body["as_of"]) == datetime(2024, 9, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert points(body) == [
        (KIRBY_ARMS, "oppose", "none", None),
        (WH_LIMITED, "neutral", "shift", KIRBY_ARMS),
        (DOD_ARMS, "oppose", "shift", WH_LIMITED),
    ]
    current = body["current"]
    assert (current["statement_id"], current["actor_id"], current["stance"]) == (
        DOD_ARMS,
        "us.dod",
        "oppose",
    )
    assert (current["contested"], current["supporting"], current["opposing"]) == (
        False,
        [],
        ["us.dod", "us.nsc"],
    )
    # as_of before the Pentagon spoke, as known then: only the projection's story so far.
    early = await ok(
        client,
        US_HISTORY,
        include_descendants="true",
        known_at=known.isoformat(),
        as_of="2024-08-31",
    )
    assert [p[0] for p in points(early)] == [KIRBY_ARMS, WH_LIMITED]
    stances = await ok(
        client,
        "/v1/actors/us/stances",
        include_descendants="true",
        known_at=known.isoformat(),
        as_of="2024-09-30",
    )
    assert stance_rows(stances)[0] == ("us", ARMS, "oppose", -0.8, utc(2024, 9, 1, 12), DOD_ARMS)


async def test_known_at_uses_the_hierarchy_as_known_then(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    known = await moment_after_commits(engine)
    # The NSC is re-registered outside the US tree (a later registration wins).
    await store(engine, actor("nsc-moves", "us.nsc", parent_id="ua", time="2025-01-01T00:00:00Z"))

    now = await ok(client, US_HISTORY, include_descendants="true")
    assert points(now) == [
        (WH_LIMITED, "neutral", "none", None),
        (WH_SUPPORT, "support", "shift", WH_LIMITED),
    ]
    ua = await ok(client, f"/v1/actors/ua/topics/{ARMS}/history", include_descendants="true")
    # Said at the same moment, the two tie-break by statement id.
    assert [p[0] for p in points(ua)] == ["2023-05-24.ua.hur.arms-inside-russia", KIRBY_ARMS]

    then = await ok(client, US_HISTORY, include_descendants="true", known_at=known.isoformat())
    assert [p[0] for p in points(then)] == [KIRBY_ARMS, WH_LIMITED, WH_SUPPORT]
    assert then["current"]["contested"] is True


# A known_at answer is meant to be "what was known then", so it must not change once
# given. recorded_at is `now()`, the writing transaction's *start*, not its commit: an
# event appended after K in a transaction begun before K is stamped before K.


async def test_a_known_at_answer_does_not_change_after_the_fact(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with writing(engine) as conn:
        await conn.execute(sa.text("SELECT 1"))  # the transaction (and its now()) begins
        known = await moment_after_commits(engine)
        k = known.isoformat()
        during = await ok(client, f"/v1/actors/us.dod/topics/{ARMS}/history", known_at=k)
        assert during["points"] == []  # at K nothing of it was committed, or even appended
        await store_batch(conn, [Accepted(parsed(dod_arms()), raw(dod_arms()))])
    # Committed after K.
    async with engine.connect() as c:
        stamped = await c.scalar(
            sa.text("SELECT recorded_at FROM events WHERE event_id = 'dod-arms'")
        )
    assert stamped < known  # the evidence: stamped before K although appended after it

    # While that transaction was open, known_at=K was answered at the moment before it
    # began, and says so; that answer is final: asked again now, it is the same.
    answered_at = during["known_at"]
    assert datetime.fromisoformat(answered_at.replace("Z", "+00:00")) < known
    later = await ok(client, f"/v1/actors/us.dod/topics/{ARMS}/history", known_at=answered_at)
    assert later == during
    # And K itself, now that nothing older is in flight, includes the late commit.
    settled = await ok(client, f"/v1/actors/us.dod/topics/{ARMS}/history", known_at=k)
    assert [p["statement_id"] for p in settled["points"]] == [
        parsed(dod_arms()).data.statement_id  # type: ignore[union-attr]
    ]


# --- 6. both read paths agree when K is now ------------------------------------------------


def revisions() -> list[list[dict[str, Any]]]:
    """Corrections, retractions, early arrivals and hierarchy moves over the founding example."""
    return [
        [
            # Kirby corrected to neutral; the Pentagon's vehicles doubt moved to the arms topic.
            correction(
                "c-kirby",
                KIRBY_ARMS,
                "us.nsc",
                ARMS,
                "neutral",
                "2023-05-24T12:00:00Z",
                time="2025-02-01T00:00:00Z",
                confidence=0.7,
                speaker=KIRBY,
                quote="We are looking at it",
            ),
            correction(
                "c-dod",
                DOD_VEHICLES,
                "us.dod",
                ARMS,
                "support",
                "2023-06-01T12:00:00Z",
                time="2025-02-01T00:00:00Z",
                score=0.4,
                confidence=0.5,
            ),
            retraction("r-rdk", RDK_VEHICLES),
            retraction("r-ua", UA_RAID),
        ],
        [
            # A correction and a retraction that arrive before their statements.
            correction(
                "c-late",
                "late.1",
                "ua.hur",
                ARMS,
                "support",
                "2024-12-01T12:00:00Z",
                time="2025-03-01T00:00:00Z",
            ),
            retraction("r-ghost", "ghost.1"),
            statement(
                "s-rumod-arms", "rumod.arms", "ru.mod", ARMS, "oppose", "2024-06-01T12:00:00Z"
            ),
            statement("s-state", "state.1", "us.state", ARMS, "oppose", "2024-07-01T12:00:00Z"),
            statement("s-ua-1", "ua.1", "ua", ARMS, "oppose", "2024-01-01T12:00:00Z"),
            statement("s-ua-2", "ua.2", "ua", ARMS, "support", "2024-02-01T12:00:00Z"),
        ],
        [
            statement("s-late", "late.1", "ua.hur", ARMS, "oppose", "2024-11-30T12:00:00Z"),
            statement(
                "s-ghost", "ghost.1", "us.white-house", VEHICLES, "support", "2024-02-01T12:00:00Z"
            ),
            actor("reg-state", "us.state", parent_id="us", time="2024-07-02T00:00:00Z"),
            # Two corrections of one statement: the later (time, id) wins.
            correction(
                "c-wh-2",
                WH_LIMITED,
                "us.white-house",
                ARMS,
                "oppose",
                "2024-05-30T12:00:00Z",
                time="2025-04-02T00:00:00Z",
            ),
            correction(
                "c-wh-1",
                WH_LIMITED,
                "us.white-house",
                ARMS,
                "support",
                "2024-05-30T12:00:00Z",
                time="2025-04-01T00:00:00Z",
            ),
        ],
        [
            # The hierarchy moves: the NSC straight under the US, the RDK under Ukraine, and
            # an older registration of the Pentagon that must lose to the founding one.
            actor("reg-nsc", "us.nsc", parent_id="us", time="2025-06-01T00:00:00Z"),
            actor("reg-rdk", "rdk", parent_id="ua", time="2025-06-01T00:00:00Z"),
            actor("reg-dod-old", "us.dod", parent_id="ru", time="2020-01-01T00:00:00Z"),
        ],
    ]


async def load_revised(engine: AsyncEngine) -> datetime:
    for batch in revisions():
        await store(engine, *batch)
    return await moment_after_commits(engine)


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("known_at", "next_cursor")}


async def catalogue(http: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    actors = [a["actor_id"] for a in (await ok(http, "/v1/actors", limit=1000))["actors"]]
    topics = [t["topic_id"] for t in (await ok(http, "/v1/topics", limit=1000))["topics"]]
    return actors, topics


async def test_the_revised_story_reads_as_expected(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A spot check that the revisions landed, so the agreement below compares real data."""
    await load_revised(engine)

    body = await ok(client, US_HISTORY, include_descendants="true")
    assert points(body) == [
        (KIRBY_ARMS, "neutral", "none", None),
        (DOD_VEHICLES, "support", "shift", KIRBY_ARMS),
        (WH_LIMITED, "oppose", "flip", DOD_VEHICLES),
        ("state.1", "oppose", "none", WH_LIMITED),
        (WH_SUPPORT, "support", "flip", "state.1"),
    ]
    assert body["current"]["opposing"] == ["us.state"]
    assert body["current"]["supporting"] == ["us.dod", "us.white-house"]
    ua = await ok(client, f"/v1/actors/ua/topics/{ARMS}/history", include_descendants="true")
    assert points(ua) == [
        ("2023-05-24.ua.hur.arms-inside-russia", "oppose", "none", None),
        ("ua.1", "oppose", "none", "2023-05-24.ua.hur.arms-inside-russia"),
        ("ua.2", "support", "flip", "ua.1"),
        ("late.1", "support", "none", "ua.2"),
    ]
    vehicles = await ok(
        client, f"/v1/actors/ua/topics/{VEHICLES}/history", include_descendants="true"
    )
    assert vehicles["points"] == []  # the RDK's claim moved under Ukraine, but was retracted
    assert (await ok(client, "/v1/statements/ghost.1"))["retracted"] is True


async def test_both_read_paths_agree_when_known_at_is_now(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    k = (await load_revised(engine)).isoformat()
    actors, topics = await catalogue(client)
    assert {"us.state", "rdk", "us.nsc"} <= set(actors)
    compared = 0

    for actor_id in actors:
        for descendants in ("false", "true"):
            for topic_id in topics:
                url = f"/v1/actors/{actor_id}/topics/{topic_id}/history"
                for as_of in (None, "2024-06-01"):
                    params = {"include_descendants": descendants}
                    if as_of:
                        params["as_of"] = as_of
                    live = await ok(client, url, **params)
                    then = await ok(client, url, **params, known_at=k)
                    assert comparable(live) == comparable(then), (actor_id, topic_id, params)
                    assert at(then["known_at"]) == at(k)
                    compared += bool(live["points"])
            url = f"/v1/actors/{actor_id}/stances"
            live = await ok(client, url, include_descendants=descendants)
            then = await ok(client, url, include_descendants=descendants, known_at=k)
            assert comparable(live) == comparable(then), (actor_id, descendants)

    matrix = {"actors": ",".join(actors), "topics": ",".join(topics)}
    for descendants in ("false", "true"):
        live = await ok(client, "/v1/matrix", **matrix, include_descendants=descendants)
        then = await ok(client, "/v1/matrix", **matrix, include_descendants=descendants, known_at=k)
        assert comparable(live) == comparable(then), descendants
        assert len(live["cells"]) >= 10

    for topic_id in topics:
        live = await ok(client, f"/v1/topics/{topic_id}/stances")
        then = await ok(client, f"/v1/topics/{topic_id}/stances", known_at=k)
        assert comparable(live) == comparable(then), topic_id
        for bucket in ("day", "week", "month"):
            for descendants in ("false", "true"):
                params = {"bucket": bucket, "include_descendants": descendants}
                url = f"/v1/topics/{topic_id}/timeline"
                live = await ok(client, url, **params)
                then = await ok(client, url, **params, known_at=k)
                assert bucket_rows(live) == approximately(bucket_rows(then)), (topic_id, params)
                assert comparable({**live, "buckets": None}) == comparable(
                    {**then, "buckets": None}
                )

    assert compared >= 30


async def test_both_read_paths_agree_on_the_founding_example(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    k = (await moment_after_commits(engine)).isoformat()
    actors, topics = await catalogue(client)

    for actor_id in actors:
        for topic_id in topics:
            url = f"/v1/actors/{actor_id}/topics/{topic_id}/history"
            live = await ok(client, url, include_descendants="true")
            then = await ok(client, url, include_descendants="true", known_at=k)
            assert comparable(live) == comparable(then), (actor_id, topic_id)


# Once a bug: the projection path answered '2024-06-01T12:00:00Z' while the known_at path
# echoed the published '2024-06-01T14:00:00+02:00': same instant, different JSON and ETag.


async def test_both_read_paths_agree_on_a_said_at_with_an_offset(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await store(
        engine,
        statement("s-offset", "offset.1", "ru.mod", ARMS, "oppose", "2024-06-01T14:00:00+02:00"),
    )
    k = (await moment_after_commits(engine)).isoformat()
    url = f"/v1/actors/ru.mod/topics/{ARMS}/history"

    live = await ok(client, url)
    then = await ok(client, url, known_at=k)

    assert at(live["points"][0]["said_at"]) == at(then["points"][0]["said_at"])  # one instant
    assert comparable(live) == comparable(then)


# --- 7. ETags -----------------------------------------------------------------------------


async def test_history_etag_and_conditional_get(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    params = {"include_descendants": "true"}
    first = await client.get(US_HISTORY, params=params)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert len(tag) > 2
    assert first.headers["cache-control"] == "no-cache"

    again = await client.get(US_HISTORY, params=params)
    assert again.headers["etag"] == tag  # the same bytes, the same tag
    assert again.content == first.content

    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        unchanged = await client.get(US_HISTORY, params=params, headers={"If-None-Match": header})
        assert unchanged.status_code == 304, header
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == tag

    other = await client.get(US_HISTORY, params=params, headers={"If-None-Match": '"other"'})
    assert other.status_code == 200
    assert other.content == first.content

    await store(engine, dod_arms())

    changed = await client.get(US_HISTORY, params=params, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert DOD_ARMS in [p["statement_id"] for p in changed.json()["points"]]
    fresh = await client.get(
        US_HISTORY, params=params, headers={"If-None-Match": changed.headers["etag"]}
    )
    assert fresh.status_code == 304


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/actors/us/stances", {"include_descendants": "true"}),
        (f"/v1/topics/{ARMS}/stances", {}),
        (f"/v1/topics/{ARMS}/timeline", {"bucket": "week"}),
        ("/v1/matrix", {"actors": "us", "topics": ARMS, "include_descendants": "true"}),
    ],
)
async def test_dashboard_routes_answer_conditional_gets(
    client: httpx.AsyncClient, url: str, params: dict[str, str]
) -> None:
    first = await client.get(url, params=params)
    tag = first.headers["etag"]

    unchanged = await client.get(url, params=params, headers={"If-None-Match": tag})

    assert (unchanged.status_code, unchanged.content) == (304, b"")


# --- 8. history pagination ----------------------------------------------------------------


@pytest.mark.parametrize("known", [False, True], ids=["projection", "known_at"])
async def test_history_pages_walk_the_us_points_in_order(
    client: httpx.AsyncClient, engine: AsyncEngine, known: bool
) -> None:
    params: dict[str, Any] = {"include_descendants": "true", "limit": 1}
    if known:
        params["known_at"] = (await moment_after_commits(engine)).isoformat()
    bodies = []
    cursor = None
    while True:
        body = await ok(client, US_HISTORY, **params, **({"cursor": cursor} if cursor else {}))
        bodies.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(bodies) <= 10

    pages = [[p["statement_id"] for p in b["points"]] for b in bodies]
    assert [p for page in pages for p in page] == [KIRBY_ARMS, WH_LIMITED, WH_SUPPORT]
    assert pages[:3] == [[KIRBY_ARMS], [WH_LIMITED], [WH_SUPPORT]]
    assert pages[3:] in ([], [[]])
    assert bodies[-1]["next_cursor"] is None
    assert all(b["next_cursor"] for b in bodies[:-1])
    # Every page's change fields still refer to the whole series.
    assert [b["points"][0]["change"] for b in bodies[:3]] == ["none", "shift", "shift"]
    assert [b["points"][0]["previous_statement_id"] for b in bodies[:3]] == [
        None,
        KIRBY_ARMS,
        WH_LIMITED,
    ]
    # ``current`` summarises the whole series on every page.
    assert {b["current"]["statement_id"] for b in bodies} == {WH_SUPPORT}


async def test_a_short_last_page_has_no_cursor(client: httpx.AsyncClient) -> None:
    first = await ok(client, US_HISTORY, include_descendants="true", limit=2)
    assert [p["statement_id"] for p in first["points"]] == [KIRBY_ARMS, WH_LIMITED]

    last = await ok(
        client, US_HISTORY, include_descendants="true", limit=2, cursor=first["next_cursor"]
    )

    assert [p["statement_id"] for p in last["points"]] == [WH_SUPPORT]
    assert last["next_cursor"] is None


def encoded(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


async def test_a_tampered_history_cursor_is_a_400(client: httpx.AsyncClient) -> None:
    first = await ok(client, US_HISTORY, include_descendants="true", limit=1)
    cursor = first["next_cursor"]
    stances = await ok(client, "/v1/actors/us/stances", include_descendants="true", limit=1)

    tampered = [
        cursor[:-2] + "!!",  # outside the alphabet
        cursor[1:],  # truncated: not base64 of a key any more
        encoded(["2024-05-30T12:00:00", WH_LIMITED]),  # a time without offset
        encoded(["2024-05-30T12:00:00+00:00"]),  # one key where two belong
        encoded(["2024-05-30T12:00:00+00:00", "not an id"]),
        encoded({"said_at": "2024-05-30T12:00:00+00:00", "statement_id": WH_LIMITED}),
        stances["next_cursor"],  # another endpoint's cursor
    ]
    for value in tampered:
        for known in ({}, {"known_at": "2030-01-01"}):
            body = await problem(
                client,
                US_HISTORY,
                400,
                {"include_descendants": "true", "cursor": value, **known},
            )
            assert [p["name"] for p in body["invalid-params"]] == ["cursor"], value


# --- 9. change kinds ----------------------------------------------------------------------


async def test_oppose_then_support_is_a_flip(bare: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await store(
        engine,
        statement("e-no", "zz.no", "zz", "zz-topic", "oppose", "2024-01-01T12:00:00Z"),
        statement("e-yes", "zz.yes", "zz", "zz-topic", "support", "2024-02-01T12:00:00Z"),
    )
    k = (await moment_after_commits(engine)).isoformat()
    url = "/v1/actors/zz/topics/zz-topic/history"

    for params in ({}, {"known_at": k}):
        body = await ok(bare, url, **params)
        assert points(body) == [
            ("zz.no", "oppose", "none", None),
            ("zz.yes", "support", "flip", "zz.no"),
        ], params
        assert [p["score"] for p in body["points"]] == [-1.0, 1.0]
        assert body["current"]["stance"] == "support"

    detail = await ok(bare, "/v1/statements/zz.yes")
    assert (detail["reads_now"]["change"], detail["reads_now"]["previous_statement_id"]) == (
        "flip",
        "zz.no",
    )
    flips = await ok(bare, "/v1/changes", actor="zz", kind="flip")
    assert [(c["statement_id"], c["previous_stance"]) for c in flips["changes"]] == [
        ("zz.yes", "oppose")
    ]


async def test_the_us_roll_up_shifts_twice(client: httpx.AsyncClient) -> None:
    body = await ok(client, US_HISTORY, include_descendants="true")

    kinds = {at(p["said_at"]).date().isoformat(): p["change"] for p in body["points"]}
    assert kinds == {"2023-05-24": "none", "2024-05-30": "shift", "2024-11-17": "shift"}
    # No point of the roll-up flips: oppose → neutral → support goes through the middle.
    assert "flip" not in [p["change"] for p in body["points"]]
