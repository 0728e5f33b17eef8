"""Operator work against real Postgres and Redis: replay, group positions, dead letters, status.

Streams are filled with XADD and ingested by the real projector where "already
ingested" matters; dead letters are made by the real write path
(``pipeline.commit``), never inserted by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.ops import dlq, replay, status
from stanceline.ops.migrate import migrate
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.settings import Settings
from stanceline.store import dead_letters
from stanceline.store.db import create_engine, reading
from stanceline.store.records import Rejected
from support.dump import dump_projection
from support.events import actor, raw, statement
from support.running import eventually, projector_running

ARMS = "us-arms-strikes-inside-russia"
POISON = b"not json"


async def publish(client: aioredis.Redis, stream: str, lines: list[bytes]) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for line in lines:
        pipe.xadd(stream, {"event": line})
    return [bytes(i).decode() for i in await pipe.execute()]


async def consumed(client: aioredis.Redis, settings: Settings, last_id: str) -> bool:
    """The group has been handed ``last_id`` and acknowledged everything: all committed."""
    groups = await client.xinfo_groups(settings.stream)
    group = next((g for g in groups if g["name"].decode() == settings.group), None)
    if group is None:  # the projector has not created it yet
        return False
    return bool(group["last-delivered-id"].decode() == last_id and group["pending"] == 0)


async def ingest(
    settings: Settings, engine: AsyncEngine, client: aioredis.Redis, lines: list[bytes]
) -> list[str]:
    """Publish and let the real projector take everything in."""
    ids = await publish(client, settings.stream, lines)
    async with projector_running(settings, engine):
        await eventually(lambda: consumed(client, settings, ids[-1]), bool)
    return ids


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Everything a replay could touch, clocks and positions included."""
    async with engine.connect() as conn:
        tables = {
            name: [tuple(r) for r in await conn.execute(sa.text(f"SELECT * FROM {name} {order}"))]
            for name, order in (
                ("events", "ORDER BY position"),
                ("dead_letters", "ORDER BY id"),
                ("changes", "ORDER BY id"),
            )
        }
    return {**tables, **await dump_projection(engine)}


async def scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(sql))


@pytest.fixture
async def fresh_engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second database, migrated but empty: where a replay rebuilds everything."""
    engine = create_engine(empty_database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def corpus() -> list[bytes]:
    """The founding example, a redelivered duplicate, a poison entry, and a correction."""
    lines = founding_lines()
    correction = statement(
        "ops-fix",
        "2024-11-17.us.white-house.arms-inside-russia",
        "us.white-house",
        ARMS,
        "neutral",
        "2024-11-17T12:00:00Z",
        kind="statement.corrected",
        time="2025-03-01T00:00:00Z",
    )
    return [*lines, lines[0], POISON, raw(correction)]


# --- replay -----------------------------------------------------------------------------------


async def test_replaying_an_ingested_range_changes_nothing(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    lines = corpus()
    await ingest(settings, engine, redis_client, lines)
    before = await snapshot(engine)
    assert len(before["events"]) == len(lines) - 2
    assert len(before["dead_letters"]) == 1

    for _ in range(2):
        report = await replay.replay(engine, redis_client, settings.stream, chunk=7)

        assert (report.entries, report.new, report.dead_lettered) == (len(lines), 0, 0)
        assert report.duplicates == len(lines) - 1
        assert report.already_dead_lettered == 1
        assert await snapshot(engine) == before


async def test_replay_into_an_empty_database_reproduces_the_projection(
    settings: Settings,
    engine: AsyncEngine,
    fresh_engine: AsyncEngine,
    redis_client: aioredis.Redis,
) -> None:
    lines = corpus()
    ids = await ingest(settings, engine, redis_client, lines)

    report = await replay.replay(fresh_engine, redis_client, settings.stream, chunk=5)

    assert (report.new, report.duplicates, report.dead_lettered) == (len(lines) - 2, 1, 1)
    assert report.last_entry_id == ids[-1]
    assert await dump_projection(fresh_engine) == await dump_projection(engine)
    for sql in (
        "SELECT event_id, digest, stream_entry_id FROM events ORDER BY event_id",
        "SELECT stream, stream_entry_id, raw, reason FROM dead_letters ORDER BY id",
    ):
        async with engine.connect() as live, fresh_engine.connect() as rebuilt:
            assert (await rebuilt.execute(sa.text(sql))).all() == (
                await live.execute(sa.text(sql))
            ).all()


async def test_replay_dry_run_writes_nothing_and_predicts_the_real_run(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    lines = corpus()
    await publish(redis_client, settings.stream, lines)
    empty = await snapshot(engine)

    trial = await replay.replay(engine, redis_client, settings.stream, dry_run=True, chunk=4)

    assert await snapshot(engine) == empty
    assert (trial.new, trial.duplicates, trial.dead_lettered) == (len(lines) - 2, 1, 1)
    real = await replay.replay(engine, redis_client, settings.stream, chunk=4)
    assert (real.new, real.duplicates, real.dead_lettered) == (
        trial.new,
        trial.duplicates,
        trial.dead_lettered,
    )
    assert await scalar(engine, "SELECT count(*) FROM events") == len(lines) - 2
    assert (await redis_client.xinfo_stream(settings.stream))["groups"] == 0  # no group touched


async def test_replay_takes_an_inclusive_range_across_chunks(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    lines = founding_lines()
    ids = await publish(redis_client, settings.stream, lines)

    report = await replay.replay(engine, redis_client, settings.stream, ids[3], ids[9], chunk=2)

    assert (report.entries, report.new, report.last_entry_id) == (7, 7, ids[9])
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT stream_entry_id FROM events"))).scalars()
        assert sorted(stored) == sorted(ids[3:10])


async def test_replay_refuses_bad_ids_and_missing_streams(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    for bad in ("12-x", "abc", "-1", "1-2-3", "99999999999999999999999"):
        with pytest.raises(ValueError, match="not a stream entry id"):
            replay.check_range(bad, "+")
    with pytest.raises(ValueError, match="after"):
        replay.check_range("5-1", "5-0")
    replay.check_range("5", "5")  # one millisecond: 5-0 .. 5-<max>
    with pytest.raises(replay.ReplayError, match="no stream"):
        await replay.replay(engine, redis_client, settings.stream + ":missing")


# --- consumer group positions --------------------------------------------------------------


async def test_a_group_is_created_at_a_position_and_moved_keeping_its_pending_entries(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    ids = await publish(redis_client, settings.stream, founding_lines()[:6])
    group = settings.group

    trial = await replay.position_group(redis_client, settings.stream, group, ids[1], dry_run=True)
    assert (trial.existed, trial.dry_run) == (False, True)
    assert await redis_client.xinfo_groups(settings.stream) == []

    created = await replay.position_group(redis_client, settings.stream, group, ids[1])
    assert (created.existed, created.previous_position) == (False, None)
    delivered = await redis_client.xreadgroup(group, "c1", {settings.stream: ">"}, count=10)
    assert [i.decode() for i, _ in delivered[0][1]] == ids[2:]  # only entries after it

    moved = await replay.position_group(redis_client, settings.stream, group, "0")
    assert (moved.existed, moved.previous_position) == (True, ids[-1])
    (info,) = await redis_client.xinfo_groups(settings.stream)
    assert (info["last-delivered-id"], info["pending"], info["consumers"]) == (b"0-0", 4, 1)
    assert (await status.stream_info(redis_client, settings.stream)).groups[0].lag_entries == 6

    again = await replay.position_group(redis_client, settings.stream, group, "0")
    assert (again.existed, again.previous_position) == (True, "0-0")
    assert len(await redis_client.xinfo_groups(settings.stream)) == 1


# --- dead letters ---------------------------------------------------------------------------


async def dead_letter(
    engine: AsyncEngine, stream: str, entry_id: str, data: bytes, **rejected: Any
) -> int:
    """Dead-letter an entry through the real write path; returns its dead-letter id."""
    item: Entry | Rejected = Entry(entry_id, data)
    if rejected:
        item = Rejected(data, stream_entry_id=entry_id, **rejected)
    report = await pipeline.commit(engine, [item], stream=stream)
    assert report.dead_lettered == 1
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.text("SELECT id FROM dead_letters WHERE stream_entry_id = :e"), {"e": entry_id}
            )
        )


async def dead_letter_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(sa.text("SELECT * FROM dead_letters ORDER BY id")))


async def parent_of(engine: AsyncEngine, actor_id: str) -> Any:
    return await scalar(engine, f"SELECT parent_id FROM actors WHERE actor_id = '{actor_id}'")


async def test_a_corrected_payload_redrives_into_the_projection_and_reruns_change_nothing(
    settings: Settings, engine: AsyncEngine
) -> None:
    bad = statement("fixme", "ops.fixme", "us.dod", ARMS, "support", "2024-12-01T00:00:00Z")
    bad["data"]["score"] = -1  # contradicts "support"
    letter = await dead_letter(engine, settings.stream, "100-0", raw(bad))
    assert (await dead_letter_rows(engine))[0].field == "data.score"

    trial = await dlq.redrive(engine, dead_letters.Selection(ids=[letter]), dry_run=True)
    assert (trial.projected, trial.removed, trial.still_failing) == (0, 0, 1)
    bad["data"]["score"] = 0.5  # the fix, as an operator would make it
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE dead_letters SET raw = :raw WHERE id = :id"),
            {"raw": raw(bad), "id": letter},
        )
    trial = await dlq.redrive(engine, dead_letters.Selection(ids=[letter]), dry_run=True)
    assert (trial.projected, trial.removed, trial.still_failing) == (1, 1, 0)
    assert len(await dead_letter_rows(engine)) == 1  # a dry run removes nothing

    report = await dlq.redrive(engine, dead_letters.Selection(ids=[letter]))

    assert (report.selected, report.projected, report.removed) == (1, 1, 1)
    assert await dead_letter_rows(engine) == []
    stored = await scalar(engine, "SELECT stream_entry_id FROM events WHERE event_id = 'fixme'")
    assert stored == "100-0"
    points = await scalar(
        engine, "SELECT count(*) FROM statements WHERE statement_id = 'ops.fixme' AND visible"
    )
    assert points > 0
    before = await snapshot(engine)
    again = await dlq.redrive(engine, dead_letters.Selection(ids=[letter]))
    assert (again.selected, again.missing) == (0, [letter])
    assert await snapshot(engine) == before


async def test_a_dead_letter_whose_reason_no_longer_applies_redrives(
    settings: Settings, engine: AsyncEngine
) -> None:
    first = await pipeline.commit(
        engine,
        [Entry("1-0", raw(actor("x-under-y", "x", "y", time="2024-01-01T00:00:00Z")))],
        stream=settings.stream,
    )
    assert first.appended == 1
    cycle = raw(actor("y-under-x", "y", "x", time="2024-02-01T00:00:00Z"))
    await dead_letter(engine, settings.stream, "2-0", cycle)
    assert (await dead_letter_rows(engine))[0].field == "data.parent_id"
    assert await parent_of(engine, "y") is None

    untangled = raw(actor("x-on-top", "x", None, time="2024-03-01T00:00:00Z"))
    await pipeline.commit(engine, [Entry("3-0", untangled)], stream=settings.stream)
    report = await dlq.redrive(engine, dead_letters.Selection(reason="data"))

    assert (report.projected, report.removed, report.still_failing) == (1, 1, 0)
    assert await parent_of(engine, "y") == "x"
    assert await dead_letter_rows(engine) == []


async def test_a_delivery_cap_dead_letter_redrives_from_its_raw_bytes(
    settings: Settings, engine: AsyncEngine
) -> None:
    line = founding_lines()[0]
    await dead_letter(
        engine,
        settings.stream,
        "7-0",
        line,
        reason="delivery: gave up after 6 deliveries; last error: Boom",
        field="delivery",
        delivery_count=6,
    )

    report = await dlq.redrive(engine, dead_letters.Selection(reason="delivery"))

    assert (report.projected, report.removed) == (1, 1)
    assert await scalar(engine, "SELECT count(*) FROM events") == 1


async def test_a_dead_letter_that_still_fails_stays_one_row_with_its_reason_refreshed(
    settings: Settings, engine: AsyncEngine
) -> None:
    letter = await dead_letter(engine, settings.stream, "5-0", b'{"specversion": "1.0"}')
    not_an_event = await dead_letter(
        engine,
        settings.stream,
        "6-0",
        b'{"other": "field"}',
        reason="event: the stream entry has no 'event' field",
        field="event",
    )
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE dead_letters SET reason = 'stale', field = 'stale' WHERE id = :id"),
            {"id": letter},
        )
    (before, untouched) = await dead_letter_rows(engine)

    for _ in range(2):
        report = await dlq.redrive(engine, dead_letters.Selection())
        assert (report.selected, report.still_failing, report.skipped) == (2, 1, 1)

    (after, kept) = await dead_letter_rows(engine)
    assert (after.id, after.stream_entry_id) == (letter, "5-0")
    assert (after.field, after.reason) == (
        "type",
        "type: required (one of the stanceline.*.v1 event types)",
    )
    assert after.delivery_count == before.delivery_count + 2
    assert after.last_seen > before.last_seen
    assert kept == untouched
    assert kept.id == not_an_event


async def test_redrive_converges_after_dying_between_append_and_removal(
    settings: Settings, engine: AsyncEngine
) -> None:
    line = founding_lines()[1]
    await dead_letter(engine, settings.stream, "8-0", line, reason="store: boom", field="store")
    # The first half of a redrive that died: its event went in, its dead letter stayed.
    await pipeline.commit(engine, [Entry("8-0", line)], stream=settings.stream)
    before = await scalar(engine, "SELECT count(*) FROM events")

    report = await dlq.redrive(engine, dead_letters.Selection(reason="store"))

    assert (report.projected, report.removed, report.still_failing) == (0, 1, 0)
    assert await dead_letter_rows(engine) == []
    assert await scalar(engine, "SELECT count(*) FROM events") == before


async def test_listing_filters_pages_and_purge_deletes_only_what_it_says(
    settings: Settings, engine: AsyncEngine
) -> None:
    for n in range(5):
        await dead_letter(engine, settings.stream, f"{n + 1}-0", POISON)
    fields = statement("f", "ops.f", "us", ARMS, "support", "2024-01-01T00:00:00Z")
    del fields["data"]["said_at"]
    await dead_letter(engine, settings.stream, "9-0", raw(fields))
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE dead_letters SET last_seen = :old WHERE stream_entry_id IN ('1-0', '2-0')"
            ),
            {"old": datetime(2020, 1, 1, tzinfo=UTC)},
        )

    async with reading(engine) as conn:
        page = await dead_letters.list_dead_letters(
            conn, dead_letters.Selection(reason="entry"), limit=3
        )
        rest = await dead_letters.list_dead_letters(
            conn, dead_letters.Selection(reason="entry"), after=page.next_after or 0, limit=3
        )
        data = await dead_letters.list_dead_letters(conn, dead_letters.Selection(reason="data"))
        recent = await dead_letters.list_dead_letters(
            conn, dead_letters.Selection(since=datetime.now(UTC) - timedelta(days=1))
        )
        assert await dead_letters.counts_by_reason(conn) == {"data.said_at": 1, "entry": 5}
        detail = await dead_letters.show(conn, page.dead_letters[0].id)

    assert (page.total, len(page.dead_letters), rest.next_after) == (5, 3, None)
    assert [d.stream_entry_id for d in page.dead_letters + rest.dead_letters] == [
        f"{n}-0" for n in range(1, 6)
    ]
    assert [d.reason_key for d in data.dead_letters] == ["data.said_at"]
    assert recent.total == 4
    assert detail is not None
    assert (detail.raw_text, detail.size) == ("not json", len(POISON))

    old = dead_letters.Selection(before=datetime(2021, 1, 1, tzinfo=UTC))
    async with reading(engine) as conn:
        assert await dead_letters.count(conn, old) == 2
    assert await dlq.purge(engine, old) == 2
    assert await dlq.purge(engine, old) == 0
    assert len(await dead_letter_rows(engine)) == 4


# --- status -------------------------------------------------------------------------------


async def test_status_lag_is_what_was_published_but_not_consumed(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    lines = founding_lines()
    await ingest(settings, engine, redis_client, [*lines[:5], POISON])
    waiting = await publish(redis_client, settings.stream, lines[5:8])

    report = await status.status(engine, redis_client, settings.stream)

    stream = report.stream
    assert (stream.length, stream.last_entry_id) == (9, waiting[-1])
    (group,) = stream.groups
    assert (group.name, group.lag_entries, group.pending) == (settings.group, 3, 0)
    age = (datetime.now(UTC).timestamp() * 1000 - int(waiting[0].split("-")[0])) / 1000
    assert 0 <= group.lag_seconds <= age + 1
    assert group.consumers == []  # a clean stop with nothing pending left the group (2a96df0)
    assert (report.store.events, report.store.last_position) == (5, 5)
    assert report.dead_letters.model_dump() == {"total": 1, "by_reason": {"entry": 1}}
    projection = report.projection
    assert projection.revision == projection.head == status.head_revision()
    assert (projection.rebuilt_at, projection.version) == (None, projection.revision)

    async with projector_running(settings, engine):
        await eventually(lambda: consumed(redis_client, settings, waiting[-1]), bool)
    caught_up = await status.status(engine, redis_client, settings.stream)
    assert (caught_up.stream.groups[0].lag_entries, caught_up.stream.groups[0].lag_seconds) == (
        0,
        0.0,
    )


async def test_lag_is_counted_where_redis_reports_none(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    ids = await publish(redis_client, settings.stream, [b"x"] * 2500)
    info = await status.stream_info(redis_client, settings.stream)

    for delivered, expected in (("0-0", 2500), (ids[0], 2499), (ids[1234], 1265), (ids[-1], 0)):
        count, oldest = await status.undelivered(
            redis_client, settings.stream, delivered, info.length, ids[0], ids[-1]
        )
        assert count == expected
        assert oldest == (ids[-expected] if expected else None)
    # Where Redis reports its own count, no scan runs: its number is taken as it is.
    reported = await status.undelivered(
        redis_client, settings.stream, ids[9], info.length, ids[0], ids[-1], known=7
    )
    assert reported == (7, ids[10])


async def test_status_of_a_missing_stream_and_a_rebuilt_projection(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO projection_meta (id, rebuilt_at, events, seconds)"
                " VALUES (1, '2026-01-02T03:04:05Z', 42, 1.5)"
            )
        )

    report = await status.status(engine, redis_client, settings.stream)

    assert (report.stream.exists, report.stream.length, report.stream.groups) == (False, 0, [])
    projection = report.projection
    assert projection.version == f"{projection.revision}+rebuilt.20260102T030405Z"
    assert (projection.rebuilt_events, projection.rebuilt_seconds) == (42, 1.5)
    assert json.loads(report.model_dump_json())["projection"]["rebuilt_events"] == 42


async def test_status_reports_the_configured_group_before_it_exists(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    nothing = await status.status(engine, redis_client, settings.stream, group=settings.group)
    (before_stream,) = nothing.stream.groups
    assert (before_stream.name, before_stream.exists, before_stream.lag_entries) == (
        settings.group,
        False,
        0,
    )

    ids = await publish(redis_client, settings.stream, founding_lines()[:4])
    waiting = await status.status(engine, redis_client, settings.stream, group=settings.group)

    (missing,) = waiting.stream.groups
    assert (missing.name, missing.exists, missing.last_delivered_id) == (
        settings.group,
        False,
        None,
    )
    assert (missing.lag_entries, missing.pending, missing.consumers) == (4, 0, [])
    age = (datetime.now(UTC).timestamp() * 1000 - int(ids[0].split("-")[0])) / 1000
    assert 0 <= missing.lag_seconds <= age + 1

    async with projector_running(settings, engine):
        await eventually(lambda: consumed(redis_client, settings, ids[-1]), bool)
    created = await status.status(engine, redis_client, settings.stream, group=settings.group)
    (group,) = created.stream.groups
    assert (group.exists, group.last_delivered_id, group.lag_entries) == (True, ids[-1], 0)
