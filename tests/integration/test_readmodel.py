"""The read model over HTTP, against real Postgres loaded through the real write path.

The app is the one ``stanceline api`` serves (``create_app``), driven in process
through httpx's ASGI transport with its lifespan running; the data is the
founding example, parsed by the contract and stored by ``store_batch``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.contract import Rejection, parse_event
from stanceline.health import ProjectorHealth
from stanceline.readmodel.app import create_app
from stanceline.store.db import create_engine, writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.http import serve
from support.service import free_port

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROBLEM_JSON = "application/problem+json"

ARMS = "us-arms-strikes-inside-russia"
VEHICLES = "us-vehicles-used-in-belgorod-raid"
RAID = "ukraine-behind-belgorod-raid"
US_HISTORY = f"/v1/actors/us/topics/{ARMS}/history"
VEHICLE_STANCES = f"/v1/topics/{VEHICLES}/stances"

KIRBY_ARMS = "2023-05-24.us.nsc.arms-inside-russia"
WH_LIMITED = "2024-05-30.us.white-house.arms-inside-russia"
WH_SUPPORT = "2024-11-17.us.white-house.arms-inside-russia"
KIRBY_QUOTE = "We don't support the use of U.S.-made equipment for attacks inside Russia"

# (actor_id, name, kind, parent_id, aliases), as registered by the founding example.
ACTORS = [
    ("lsr", "Legion of Free Russia", "armed-group", None, []),
    ("rdk", "Russian Volunteer Corps", "armed-group", None, ["RDK"]),
    ("ru", "Russia", "state", None, []),
    ("ru.mod", "Russian Ministry of Defence", "organisation", "ru", []),
    ("ua", "Ukraine", "state", None, []),
    ("ua.hur", "Ukraine's Military Intelligence (HUR)", "organisation", "ua", ["HUR"]),
    ("us", "United States", "state", None, []),
    ("us.dod", "US Department of Defense (Pentagon)", "organisation", "us", ["Pentagon"]),
    ("us.nsc", "US National Security Council", "organisation", "us.white-house", ["NSC"]),
    ("us.white-house", "The White House", "organisation", "us", []),
]
TOPICS = [
    (RAID, "Ukraine was behind the May 2023 Belgorod incursion", "claim"),
    (ARMS, "Ukraine may use US-made weapons and equipment for attacks inside Russia", "policy"),
    (VEHICLES, "US-made vehicles were used in the May 2023 Belgorod incursion", "claim"),
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def founding() -> list[Accepted]:
    accepted = []
    for line in founding_lines():
        event = parse_event(line, now=NOW)
        assert not isinstance(event, Rejection), event
        accepted.append(Accepted(event, line))
    return accepted


async def load_founding(engine: AsyncEngine) -> None:
    items = founding()
    async with writing(engine) as conn:
        report = await store_batch(conn, items)
    assert (report.appended, report.dead_lettered) == (len(items), 0)


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await load_founding(engine)
    async with serve(create_app(engine=engine)) as http:
        yield http


async def ok(http: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await http.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def problem(
    http: httpx.AsyncClient, url: str, status: int, params: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await http.get(url, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


# --- history ------------------------------------------------------------------------------


async def test_us_history_with_descendants_is_the_founding_story(
    client: httpx.AsyncClient,
) -> None:
    body = await ok(client, US_HISTORY, include_descendants="true")

    assert (body["actor_id"], body["topic_id"]) == ("us", ARMS)
    assert body["include_descendants"] is True
    assert body["as_of"] is None
    points = body["points"]
    assert [
        (p["statement_id"], p["actor_id"], at(p["said_at"]), p["stance"], p["change"])
        for p in points
    ] == [
        (KIRBY_ARMS, "us.nsc", utc(2023, 5, 24, 12), "oppose", "none"),
        (WH_LIMITED, "us.white-house", utc(2024, 5, 30, 12), "neutral", "shift"),
        (WH_SUPPORT, "us.white-house", utc(2024, 11, 17, 12), "support", "shift"),
    ]
    # In the merged series the White House's first word changes the position of the US
    # as a whole, so its previous point is the NSC's, not nothing.
    assert [p["previous_statement_id"] for p in points] == [None, KIRBY_ARMS, WH_LIMITED]
    assert [(p["score"], p["confidence"]) for p in points] == [
        (-1.0, 0.95),
        (0.0, 0.9),
        (1.0, 0.8),
    ]

    kirby = points[0]
    assert kirby["topic_id"] == ARMS
    assert kirby["speaker"] == {"name": "John Kirby", "role": "NSC spokesperson"}
    assert kirby["quote"] == KIRBY_QUOTE
    assert kirby["source_url"] is None
    assert (kirby["speech_act"], kirby["certainty"]) == ("assert", "certain")
    # The two White House points are paraphrases: no speaker, no quote.
    assert [(p["speaker"], p["quote"]) for p in points[1:]] == [(None, None), (None, None)]
    assert [(p["speech_act"], p["certainty"]) for p in points[1:]] == [("act", "certain")] * 2

    current = body["current"]
    assert current == {
        "statement_id": WH_SUPPORT,
        "actor_id": "us.white-house",
        "said_at": points[2]["said_at"],
        "stance": "support",
        "score": 1.0,
        "contested": True,
        "supporting": ["us.white-house"],
        "opposing": ["us.nsc"],
    }


async def test_us_own_history_is_empty_but_found(client: httpx.AsyncClient) -> None:
    body = await ok(client, US_HISTORY)

    assert body["include_descendants"] is False
    assert body["points"] == []
    assert body["current"] is None


async def test_own_history_of_a_sub_organisation(client: httpx.AsyncClient) -> None:
    body = await ok(client, f"/v1/actors/us.nsc/topics/{ARMS}/history")

    assert [(p["statement_id"], p["change"]) for p in body["points"]] == [(KIRBY_ARMS, "none")]
    current = body["current"]
    assert (current["statement_id"], current["stance"], current["score"]) == (
        KIRBY_ARMS,
        "oppose",
        -1.0,
    )
    assert (current["contested"], current["supporting"], current["opposing"]) == (
        False,
        [],
        ["us.nsc"],
    )


# --- as_of --------------------------------------------------------------------------------


async def test_as_of_a_date_cuts_at_the_end_of_that_day(client: httpx.AsyncClient) -> None:
    body = await ok(client, US_HISTORY, include_descendants="true", as_of="2024-06-01")

    assert at(body["as_of"]) == datetime(2024, 6, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert [p["statement_id"] for p in body["points"]] == [KIRBY_ARMS, WH_LIMITED]
    current = body["current"]
    assert (current["statement_id"], current["stance"], current["actor_id"]) == (
        WH_LIMITED,
        "neutral",
        "us.white-house",
    )
    # In June 2024 the NSC's word still stood and the White House was neutral: no conflict.
    assert (current["contested"], current["supporting"], current["opposing"]) == (
        False,
        [],
        ["us.nsc"],
    )


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2024-05-30T11:59:59Z", [KIRBY_ARMS]),
        ("2024-05-30T12:00:00Z", [KIRBY_ARMS, WH_LIMITED]),  # said_at <= as_of
        ("2024-05-30T13:59:59+02:00", [KIRBY_ARMS]),  # the offset is honoured
        ("2024-05-29", [KIRBY_ARMS]),
        ("2024-05-30", [KIRBY_ARMS, WH_LIMITED]),  # a date is the whole of that day
        ("2024-11-17T12:00:00.000001Z", [KIRBY_ARMS, WH_LIMITED, WH_SUPPORT]),
        ("2023-05-24T11:59:59Z", []),
    ],
)
async def test_as_of_boundaries(client: httpx.AsyncClient, as_of: str, expected: list[str]) -> None:
    body = await ok(client, US_HISTORY, include_descendants="true", as_of=as_of)

    assert [p["statement_id"] for p in body["points"]] == expected
    if expected:
        assert body["current"]["statement_id"] == expected[-1]
    else:
        assert body["current"] is None


# --- topic stances ------------------------------------------------------------------------


async def test_belgorod_vehicles_stances(client: httpx.AsyncClient) -> None:
    body = await ok(client, VEHICLE_STANCES)

    assert (body["topic_id"], body["as_of"]) == (VEHICLES, None)
    stances = {s["actor_id"]: s for s in body["stances"]}
    assert [s["actor_id"] for s in body["stances"]] == ["rdk", "ru.mod", "us.dod", "us.nsc"]
    assert {a: s["stance"] for a, s in stances.items()} == {
        "rdk": "support",
        "ru.mod": "support",
        "us.dod": "oppose",
        "us.nsc": "neutral",
    }
    russia = stances["ru.mod"]
    assert set(russia) == {"actor_id", "topic_id", "stance", "score", "said_at", "statement_id"}
    assert russia["statement_id"] == "2023-05-24.ru.mod.us-vehicles-in-belgorod"
    assert at(russia["said_at"]) == utc(2023, 5, 24, 12)
    assert russia["score"] == 1.0
    pentagon = stances["us.dod"]
    assert (pentagon["statement_id"], pentagon["score"], at(pentagon["said_at"])) == (
        "2023-05-23.us.dod.us-vehicles-in-belgorod",
        -0.3,
        utc(2023, 5, 23, 12),
    )
    assert (stances["us.nsc"]["score"], stances["rdk"]["score"]) == (0.0, 0.3)


async def test_stances_as_of_the_day_before_kirby(client: httpx.AsyncClient) -> None:
    body = await ok(client, VEHICLE_STANCES, as_of="2023-05-23")

    assert [(s["actor_id"], s["stance"]) for s in body["stances"]] == [("us.dod", "oppose")]


# --- catalogue ----------------------------------------------------------------------------


async def test_actors_are_listed_with_their_registration(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/actors")

    assert body["next_cursor"] is None
    assert [
        (a["actor_id"], a["name"], a["kind"], a["parent_id"], a["aliases"]) for a in body["actors"]
    ] == ACTORS
    assert all(a["registered"] is True for a in body["actors"])


async def test_topics_are_listed_with_their_registration(client: httpx.AsyncClient) -> None:
    body = await ok(client, "/v1/topics")

    assert body["next_cursor"] is None
    assert [(t["topic_id"], t["title"], t["kind"]) for t in body["topics"]] == TOPICS
    assert all(t["registered"] is True for t in body["topics"])
    descriptions = {t["topic_id"]: t["description"] for t in body["topics"]}
    assert descriptions[ARMS] is None
    assert descriptions[VEHICLES].startswith("The armed incursion into Russia's Belgorod region")


async def walk(http: httpx.AsyncClient, url: str, key: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        body = await ok(http, url, **params)
        pages.append([item[f"{key}_id"] for item in body[f"{key}s"]])
        if body["next_cursor"] is None:
            return pages
        assert len(pages) <= 20, "pagination does not end"
        params["cursor"] = body["next_cursor"]


async def test_actor_pages_visit_every_actor_once(client: httpx.AsyncClient) -> None:
    pages = await walk(client, "/v1/actors", "actor", limit=3)

    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [a for page in pages for a in page] == [a[0] for a in ACTORS]


async def test_topic_pages_visit_every_topic_once(client: httpx.AsyncClient) -> None:
    pages = await walk(client, "/v1/topics", "topic", limit=2)

    assert [t for page in pages for t in page] == [t[0] for t in TOPICS]


# --- problems -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"/v1/actors/nobody/topics/{ARMS}/history", "nobody"),
        ("/v1/actors/us/topics/nothing/history", "nothing"),
        ("/v1/topics/nothing/stances", "nothing"),
    ],
)
async def test_unknown_actor_or_topic_is_a_404_problem(
    client: httpx.AsyncClient, url: str, named: str
) -> None:
    body = await problem(client, url, 404)

    assert named in body["detail"]
    assert body["instance"] == url


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = await problem(client, "/v1/no-such-thing", 404)

    assert body["type"] == "/problems/not-found"
    assert body["instance"] == "/v1/no-such-thing"


async def test_a_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/actors")

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == 405


@pytest.mark.parametrize(
    ("url", "params", "named"),
    [
        (US_HISTORY, {"as_of": "yesterday"}, "as_of"),
        (US_HISTORY, {"as_of": "2024-06-01T00:00:00"}, "as_of"),  # no offset
        (US_HISTORY, {"as_of": "2024-13-01"}, "as_of"),
        (VEHICLE_STANCES, {"as_of": "yesterday"}, "as_of"),
        ("/v1/actors", {"limit": "0"}, "limit"),
        ("/v1/actors", {"limit": "1001"}, "limit"),
        ("/v1/actors", {"limit": "abc"}, "limit"),
        ("/v1/topics", {"limit": "-1"}, "limit"),
        ("/v1/actors", {"cursor": "a"}, "cursor"),
        ("/v1/topics", {"cursor": "_w"}, "cursor"),  # decodes to a byte that is not UTF-8
        (US_HISTORY, {"include_descendants": "perhaps"}, "include_descendants"),
    ],
)
async def test_a_bad_parameter_is_a_400_problem_naming_it(
    client: httpx.AsyncClient, url: str, params: dict[str, str], named: str
) -> None:
    body = await problem(client, url, 400, params)

    assert named in body["detail"]
    assert [p["name"] for p in body["invalid-params"]] == [named]


# --- OpenAPI ------------------------------------------------------------------------------


async def openapi_operations(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    spec = await ok(http, "/openapi.json")
    return {
        f"{method.upper()} {path}": operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


async def test_every_v1_route_documents_its_problems(client: httpx.AsyncClient) -> None:
    operations = await openapi_operations(client)

    v1 = {name: op for name, op in operations.items() if name.split()[1].startswith("/v1/")}
    assert set(v1) == {
        "GET /v1/actors",
        "GET /v1/topics",
        "GET /v1/actors/{actor_id}/topics/{topic_id}/history",
        "GET /v1/topics/{topic_id}/stances",
        "GET /v1/actors/{actor_id}/stances",
        "GET /v1/topics/{topic_id}/timeline",
        "GET /v1/matrix",
        "GET /v1/changes",
        "GET /v1/statements/{statement_id}",
        "GET /v1/stream",
        "GET /v1/networks/agreement",
        "GET /v1/export/statements",
        "GET /v1/export/changes",
    }
    for name, operation in v1.items():
        problems = {s: r for s, r in operation["responses"].items() if s in ("400", "404")}
        assert problems, f"{name} documents neither 400 nor 404"
        for status, response in problems.items():
            assert PROBLEM_JSON in response["content"], f"{name} {status}"
    assert "404" in operations["GET /v1/topics/{topic_id}/stances"]["responses"]
    assert "503" in operations["GET /readyz"]["responses"]


async def test_no_route_documents_a_422(client: httpx.AsyncClient) -> None:
    operations = await openapi_operations(client)

    assert [name for name, op in operations.items() if "422" in op["responses"]] == []


# --- health -------------------------------------------------------------------------------


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert await ok(client, "/healthz") == {"status": "ok"}
    assert await ok(client, "/readyz") == {"status": "ready", "replica_lag_seconds": 0}


async def test_readyz_with_a_consuming_projector(engine: AsyncEngine) -> None:
    app = create_app(engine=engine, projector=ProjectorHealth(running=True))
    async with serve(app) as http:
        assert await ok(http, "/readyz") == {"status": "ready", "replica_lag_seconds": 0}


async def test_readyz_is_503_while_the_projector_is_not_running(engine: AsyncEngine) -> None:
    app = create_app(engine=engine, projector=ProjectorHealth(running=False))
    async with serve(app) as http:
        body = await problem(http, "/readyz", 503)
        assert "projector" in body["detail"]
        assert await ok(http, "/healthz") == {"status": "ok"}


async def test_readyz_is_503_when_postgres_does_not_answer(database_url: str) -> None:
    missing = make_url(database_url).set(database="no_such_database_here")
    engine = create_engine(missing.render_as_string(hide_password=False))
    try:
        async with serve(create_app(engine=engine)) as http:
            body = await problem(http, "/readyz", 503)
            assert body["detail"].startswith("the database is unreachable")
            assert "no_such_database_here" not in str(body)
            assert (await http.get("/readyz")).headers["retry-after"] == "5"
    finally:
        await engine.dispose()


async def test_reads_answer_503_with_retry_after_while_postgres_is_away(
    database_url: str,
) -> None:
    """An outage, not a bug: problem+json 503 with Retry-After, never a 500 or the
    driver's words (host, user, database)."""
    # No query: an embedded server's URL names its socket directory there.
    away = make_url(database_url).set(
        host="127.0.0.1", port=free_port(), username="someone", password="s3cret", query={}
    )
    url = away.render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        # Handed an engine (``stanceline up``), and on its own read engine (``api``).
        for app in (create_app(engine=engine), create_app(database_url=url)):
            await _all_unavailable(app)
    finally:
        await engine.dispose()


async def _all_unavailable(app: Any) -> None:
    async with serve(app) as http:
        for path in (
            "/v1/actors/us/topics/us-arms-strikes-inside-russia/history",
            "/v1/topics/us-arms-strikes-inside-russia/stances",
            "/v1/changes",
        ):
            answer = await http.get(path)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["retry-after"] == "5"
            assert "s3cret" not in answer.text
            assert "someone" not in answer.text


# --- no parameter crashes the server ------------------------------------------------------

# Inputs the read model mishandles today, pinned one bug at a time. All but `%%%` crash it:
# a 500 with a text/plain body, not even a problem. The fuzz test below found them.
DATE_AT_THE_END_OF_TIME = "9999-12-31"
INSTANT_BEFORE_YEAR_ONE = "0001-01-01T00:00:00+01:00"
INSTANT_AFTER_YEAR_9999 = "9999-12-31T23:59:59-01:00"
CURSOR_OF_A_NUL = "AA"  # urlsafe base64 of b"\x00"

OVERFLOW = (
    "parse_moment computes the end of a date as day + 1 day, which raises OverflowError "
    "(not ValueError) for 9999-12-31, so it escapes as a 500"
)
OUT_OF_RANGE = (
    "parse_moment accepts an aware datetime whose UTC instant lies outside year 1..9999; "
    "asyncpg then fails to encode it ('date value out of range'), a 500"
)
NUL_KEY = (
    "a cursor (or path id) that decodes to text containing NUL reaches Postgres, which "
    "rejects it ('invalid byte sequence for encoding \"UTF8\": 0x00'), a 500"
)


def known_bug(reason: str, *values: object, id: str) -> Any:
    """Once a crasher (the reason says how it crashed); kept as a regression case."""
    return pytest.param(*values, id=id)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        known_bug(OUT_OF_RANGE, US_HISTORY, {"as_of": INSTANT_BEFORE_YEAR_ONE}, id="as_of<year 1"),
        known_bug(
            OUT_OF_RANGE, VEHICLE_STANCES, {"as_of": INSTANT_AFTER_YEAR_9999}, id="as_of>year 9999"
        ),
        known_bug(NUL_KEY, "/v1/actors", {"cursor": CURSOR_OF_A_NUL}, id="cursor=NUL"),
        known_bug(
            "decode_cursor decodes base64 leniently, dropping characters outside the "
            "alphabet: '%%%' decodes to the empty key and the first page comes back, 200",
            "/v1/actors",
            {"cursor": "%%%"},
            id="cursor=%%%",
        ),
    ],
)
async def test_an_impossible_parameter_is_a_400_problem(
    client: httpx.AsyncClient, url: str, params: dict[str, str]
) -> None:
    body = await problem(client, url, 400, params)

    assert [p["name"] for p in body["invalid-params"]] == list(params)


@pytest.mark.parametrize(
    "url", ["/v1/topics/a%00b/stances", f"/v1/actors/a%00b/topics/{ARMS}/history"]
)
async def test_an_id_with_a_nul_is_a_client_error(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)

    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"] == PROBLEM_JSON


def cursor_of(raw: bytes) -> str:
    """Bytes in the cursor's own encoding, so decoding succeeds and the key reaches SQL."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def assert_no_5xx(http: httpx.AsyncClient, as_of: str, cursor: str, limit: str) -> None:
    requests = [
        (US_HISTORY, {"as_of": as_of, "include_descendants": "true"}),
        (VEHICLE_STANCES, {"as_of": as_of}),
        ("/v1/actors", {"cursor": cursor, "limit": limit}),
        ("/v1/topics", {"cursor": cursor, "limit": limit}),
    ]
    for url, params in requests:
        response = await http.get(url, params=params)
        assert response.status_code < 500, (url, params, response.status_code, response.text)
        if response.status_code != 200:
            assert response.status_code == 400, (url, params, response.text)
            assert response.headers["content-type"] == PROBLEM_JSON


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    as_of=st.text(max_size=40)
    | st.dates().map(str)
    | st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    cursor=st.text(max_size=24) | st.binary(max_size=16).map(cursor_of),
    limit=st.text(max_size=8) | st.integers().map(str),
)
# Former crashers, pinned as regression examples.
@example(as_of=DATE_AT_THE_END_OF_TIME, cursor="", limit="1")
@example(as_of=INSTANT_BEFORE_YEAR_ONE, cursor="", limit="1")
@example(as_of="2024-06-01", cursor=CURSOR_OF_A_NUL, limit="1")
async def test_arbitrary_parameters_never_give_a_5xx(
    client: httpx.AsyncClient, as_of: str, cursor: str, limit: str
) -> None:
    await assert_no_5xx(client, as_of, cursor, limit)


async def test_the_last_day_of_the_calendar_is_a_valid_as_of(client: httpx.AsyncClient) -> None:
    """9999-12-31 once overflowed computing the end of the day (a 500); it is a valid date."""
    response = await client.get(
        US_HISTORY, params={"as_of": DATE_AT_THE_END_OF_TIME, "include_descendants": "true"}
    )

    assert response.status_code == 200
    assert len(response.json()["points"]) == 3
