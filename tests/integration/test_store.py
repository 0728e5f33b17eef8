"""The write path against real Postgres: idempotence, conflicts, any order, the fold's rows."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.contract import Event
from stanceline.domain.facts import Fact
from stanceline.ops.rebuild import rebuild
from stanceline.store.db import create_engine, reading, writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted, BatchReport
from support.dump import (
    dump_projection,
    feed_balance,
    predicted_change_points,
    predicted_series_rows,
    series_rows,
)
from support.events import actor, event_of, parsed, retraction, statement
from support.strategies import worlds

FOUNDING = [parsed(line) for line in founding_lines()]


async def store(engine: AsyncEngine, events: list[Event], batch: int = 50) -> BatchReport:
    total = BatchReport()
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        async with writing(engine) as conn:
            total += await store_batch(conn, [Accepted(e, b"{}") for e in chunk])
    return total


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


async def test_founding_example_projects_as_the_fold_predicts(engine: AsyncEngine) -> None:
    report = await store(engine, FOUNDING)

    assert report.appended == len(FOUNDING)
    assert await series_rows(engine) == predicted_series_rows(FOUNDING)
    us_tree = [
        r
        for r in await series_rows(engine)
        if r[:3] == ("us-arms-strikes-inside-russia", "us", True)
    ]
    assert [(r[5], r[6]) for r in us_tree] == [
        ("oppose", "none"),
        ("neutral", "shift"),
        ("support", "shift"),
    ]


async def test_redelivery_is_a_no_op(engine: AsyncEngine) -> None:
    await store(engine, FOUNDING)
    before = await dump_projection(engine)

    report = await store(engine, FOUNDING, batch=7)

    assert (report.appended, report.duplicates) == (0, len(FOUNDING))
    assert await dump_projection(engine) == before
    assert await count(engine, "events") == len(FOUNDING)


async def test_same_id_other_body_is_dead_lettered_as_conflict(engine: AsyncEngine) -> None:
    first = statement("e1", "s1", "a", "t", "support", "2024-01-01T00:00:00Z")
    clash = statement("e1", "s1", "a", "t", "oppose", "2024-01-01T00:00:00Z")
    await store(engine, [parsed(first)])

    report = await store(engine, [parsed(clash)])

    assert report.dead_lettered == 1
    async with engine.connect() as conn:
        reason = await conn.scalar(sa.text("SELECT reason FROM dead_letters"))
    assert "conflict" in reason
    assert await count(engine, "events") == 1


async def test_second_recording_with_another_body_is_refused(engine: AsyncEngine) -> None:
    one = statement("e1", "s1", "a", "t", "support", "2024-01-01T00:00:00Z")
    two = statement("e2", "s1", "a", "t", "oppose", "2024-01-01T00:00:00Z")

    report = await store(engine, [parsed(one), parsed(two)], batch=1)

    assert (report.appended, report.dead_lettered) == (1, 1)
    async with engine.connect() as conn:
        field = await conn.scalar(sa.text("SELECT field FROM dead_letters"))
    assert field == "data.statement_id"


@pytest.mark.parametrize(
    ("first", "again"),
    [
        pytest.param({}, {"score": 1.0, "confidence": 1}, id="defaults-written-out"),
        pytest.param({"score": 1, "confidence": 1.0}, {}, id="defaults-left-out"),
        pytest.param(
            {"said_at": "2024-01-01T00:00:00Z"},
            {"said_at": "2024-01-01T00:00:00+00:00"},
            id="Z-and-+00:00",
        ),
        pytest.param(
            {"said_at": "2024-01-01T02:00:00+02:00", "published_at": "2024-01-02T00:00:00Z"},
            {"said_at": "2024-01-01T00:00:00Z", "published_at": "2024-01-01T19:00:00-05:00"},
            id="the-same-instants-at-other-offsets",
        ),
    ],
)
async def test_a_second_recording_of_the_same_body_is_a_duplicate_not_a_conflict(
    engine: AsyncEngine, first: dict[str, Any], again: dict[str, Any]
) -> None:
    """Bodies are compared as the domain reads them, not as the publisher spelt them."""
    base = {"said_at": "2024-01-01T00:00:00Z"}
    one = statement("e1", "s1", "a", "t", "support", **(base | first))
    two = statement("e2", "s1", "a", "t", "support", **(base | again))

    for order in ([one, two], [two, one]):
        async with engine.begin() as conn:
            await conn.execute(sa.text("TRUNCATE events, statements, dead_letters"))
        report = await store(engine, [parsed(d) for d in order], batch=1)
        assert (report.appended, report.dead_lettered) == (2, 0)
        async with engine.connect() as conn:
            named = await conn.scalar(sa.text("SELECT recorded_by FROM statements"))
        assert named == "e1"


async def test_a_second_recording_with_another_default_is_still_a_conflict(
    engine: AsyncEngine,
) -> None:
    one = statement("e1", "s1", "a", "t", "support", "2024-01-01T00:00:00Z")
    two = statement("e2", "s1", "a", "t", "support", "2024-01-01T00:00:00Z", score=0.5)

    report = await store(engine, [parsed(one), parsed(two)], batch=1)

    assert (report.appended, report.dead_lettered) == (1, 1)


async def test_cycle_in_hierarchy_is_dead_lettered(engine: AsyncEngine) -> None:
    events = [parsed(actor("r1", "a", "b")), parsed(actor("r2", "b", "a"))]

    report = await store(engine, events, batch=1)

    assert report.dead_lettered == 1
    async with engine.connect() as conn:
        field = await conn.scalar(sa.text("SELECT field FROM dead_letters"))
    assert field == "data.parent_id"


async def test_retraction_and_correction_before_their_statement(engine: AsyncEngine) -> None:
    said = "2024-01-01T00:00:00Z"
    events = [
        parsed(retraction("x1", "s2")),
        parsed(
            statement(
                "c1",
                "s1",
                "a",
                "t",
                "oppose",
                said,
                kind="statement.corrected",
                time="2025-02-01T00:00:00Z",
            )
        ),
        parsed(statement("r1", "s1", "a", "t", "support", said)),
        parsed(statement("r2", "s2", "a", "t", "support", "2024-02-01T00:00:00Z")),
    ]

    await store(engine, events, batch=1)

    rows = await series_rows(engine)
    assert [(r[4], r[5]) for r in rows if not r[2]] == [("s1", "oppose")]
    assert rows == predicted_series_rows(events)


async def test_moving_an_actor_moves_its_points_between_rollups(engine: AsyncEngine) -> None:
    events = [
        parsed(actor("r1", "child", "left")),
        parsed(statement("s", "s1", "child", "t", "support", "2024-01-01T00:00:00Z")),
        parsed(actor("r2", "child", "right", time="2024-06-01T00:00:00Z")),
    ]

    await store(engine, events, batch=1)

    rollups = {(r[1], r[4]) for r in await series_rows(engine) if r[2]}
    assert rollups == {("child", "s1"), ("right", "s1")}


def _twin(line: bytes, event_id: str) -> dict[str, Any]:
    """The same recording published again under another event id."""
    document: dict[str, Any] = json.loads(line)
    document["id"] = event_id
    return document


def _scenario() -> list[Event]:
    """Founding example plus corrections, retractions, a hierarchy move, and a
    statement recorded twice with the same body (the smaller event id is named)."""
    extra = [
        _twin(founding_lines()[-1], "a-twin-recording"),
        statement(
            "x-corr",
            "2024-05-30.us.white-house.arms-inside-russia",
            "us.white-house",
            "us-arms-strikes-inside-russia",
            "oppose",
            "2024-05-30T12:00:00Z",
            kind="statement.corrected",
            time="2025-01-02T00:00:00Z",
        ),
        statement(
            "x-corr-older",
            "2024-05-30.us.white-house.arms-inside-russia",
            "us.white-house",
            "us-arms-strikes-inside-russia",
            "support",
            "2024-05-30T12:00:00Z",
            kind="statement.corrected",
            time="2025-01-01T00:00:00Z",
        ),
        retraction("x-retract", "2023-05-24.rdk.us-vehicles-in-belgorod"),
        actor("x-move", "us.nsc", "us", time="2025-03-01T00:00:00Z"),
        statement(
            "x-new",
            "x.new",
            "us.dod",
            "us-arms-strikes-inside-russia",
            "oppose",
            "2023-06-01T00:00:00Z",
        ),
    ]
    return FOUNDING + [parsed(e) for e in extra]


SCENARIO = _scenario()


async def _check_any_order(
    database_url: str, events: list[Event], arrival: list[Event], batch: int
) -> None:
    """Store ``events`` in one batch, then ``arrival`` (a permutation with duplicates)
    in batches of ``batch``: the dumps must be equal, the series and the feed's balance
    must be the pure fold's, and a rebuild from ``events`` must find nothing to change."""
    engine = create_engine(database_url)
    tables = "events, dead_letters, actors, actor_lineage, topics, statements, series_tips, changes"
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {tables}"))
        await store(engine, events, batch=len(events))
        expected = await dump_projection(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {tables}"))

        report = await store(engine, arrival, batch=batch)

        assert (report.appended, report.dead_lettered) == (len(events), 0)
        assert await dump_projection(engine) == expected
        assert await series_rows(engine) == predicted_series_rows(events)
        # The feed never drifts from the series: what it added, less what it withdrew,
        # is exactly every change point the fold predicts, whatever the arrival order.
        assert await feed_balance(engine) == predicted_change_points(events)
        rebuilt = await rebuild(engine, dry_run=True)
        assert rebuilt.differences == dict.fromkeys(rebuilt.differences or {}, 0)
    finally:
        await engine.dispose()


def _shuffled(seed: int) -> list[Event]:
    rng = random.Random(seed)
    shuffled = SCENARIO + rng.sample(SCENARIO, k=8)
    rng.shuffle(shuffled)
    return shuffled


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 9))
async def test_any_order_with_duplicates_gives_identical_tables(
    database_url: str, seed: int, batch: int
) -> None:
    await _check_any_order(database_url, SCENARIO, _shuffled(seed), batch)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 40))
async def test_any_order_with_duplicates_gives_identical_tables_many(
    database_url: str, seed: int, batch: int
) -> None:
    await _check_any_order(database_url, SCENARIO, _shuffled(seed), batch)


def _arrivals(world: list[Fact], data: st.DataObject) -> tuple[list[Event], list[Event], int]:
    events = [parsed(event_of(fact)) for fact in world]
    again = data.draw(st.lists(st.sampled_from(events), max_size=6), label="duplicates")
    arrival = data.draw(st.permutations(events + again), label="arrival")
    return events, arrival, data.draw(st.integers(1, 8), label="batch")


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(world=worlds(max_statements=12), data=st.data())
async def test_any_world_in_any_order_gives_the_folds_tables(
    database_url: str, world: list[Fact], data: st.DataObject
) -> None:
    """Hypothesis-made worlds (re-registrations, twin recordings, corrections and
    retractions before their statement, shared said_at instants) through the store."""
    await _check_any_order(database_url, *_arrivals(world, data))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(world=worlds(), data=st.data())
async def test_any_world_in_any_order_gives_the_folds_tables_many(
    database_url: str, world: list[Fact], data: st.DataObject
) -> None:
    await _check_any_order(database_url, *_arrivals(world, data))


async def test_an_older_registration_that_loses_is_not_checked_for_cycles(
    engine: AsyncEngine,
) -> None:
    """Like the fold: a registration that loses on (time, id) changes nothing, so it
    cannot make a cycle, and it is stored rather than dead-lettered."""
    events = [
        parsed(actor("new-a", "a", None, time="2024-01-01T00:00:00Z")),
        parsed(actor("b-under-a", "b", "a", time="2024-01-01T00:00:00Z")),
        parsed(actor("old-a", "a", "b", time="2023-01-01T00:00:00Z")),  # loses; would cycle
    ]

    report = await store(engine, events, batch=1)

    assert (report.appended, report.dead_lettered) == (3, 0)
    assert await series_rows(engine) == predicted_series_rows(events)
    async with engine.connect() as conn:
        parents = dict(
            (await conn.execute(sa.text("SELECT actor_id, parent_id FROM actors"))).all()
        )
    assert parents == {"a": None, "b": "a"}


async def test_of_identical_recordings_the_smallest_event_id_is_named_in_any_order(
    engine: AsyncEngine,
) -> None:
    later = _twin(founding_lines()[-1], "zz-twin")
    earlier = _twin(founding_lines()[-1], "00-twin")
    for order in ([earlier, later], [later, earlier]):
        async with engine.begin() as conn:
            await conn.execute(sa.text("TRUNCATE events, statements, series_tips"))
        report = await store(engine, [parsed(order[0]), parsed(order[1])], batch=1)
        assert (report.appended, report.dead_lettered) == (2, 0)
        async with engine.connect() as conn:
            named = await conn.scalar(sa.text("SELECT recorded_by FROM statements"))
        assert named == "00-twin"


async def test_a_read_connection_is_one_read_only_repeatable_read_snapshot(
    engine: AsyncEngine,
) -> None:
    async with reading(engine) as conn:
        assert await conn.scalar(sa.text("SHOW transaction_isolation")) == "repeatable read"
        assert await conn.scalar(sa.text("SHOW transaction_read_only")) == "on"
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await conn.execute(sa.text("INSERT INTO topics (topic_id, title) VALUES ('x', 'x')"))
