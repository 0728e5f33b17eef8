"""The batch feed's SQL (``series._FEED``) against its spec (``feed.window_feed``), directly.

Hypothesis draws a small hierarchy, the statements visible before a batch and
the batch itself (new statements, stance changes at the same key, moves in
``said_at``, retractions, moves between actors and topics). The database is
set up as the write path leaves it, ``series.update`` writes the feed and the
tips, and the domain alone predicts both: ``window_feed`` on every series a
body stands on (``catalogue.series_of``), with the whole series before the
batch as the window, and the last point of every merged series after it.

The prediction takes a rolled-up series as the merge of the actor's subtree,
its own actor included; for a leaf that is its own series, so the leaf's own
change points are expected once more with ``rollup`` true, as the SQL copies them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stanceline.domain.catalogue import descendants, lineage, series_of
from stanceline.domain.facts import ActorRegistered, StatementBody
from stanceline.domain.feed import Key, Series, window_feed
from stanceline.domain.stance import Stance, default_score
from stanceline.domain.statements import StatementState
from stanceline.store import catalogue, series, statement_rows
from stanceline.store.series import Changed

# Ids whose byte order ("C") differs from a linguistic one: upper case before lower,
# "-" before digits before "_".
ACTOR_IDS = ("r", "Q", "m-1", "m1", "m_2")
TOPIC_IDS = ("t0", "T1")
STATEMENT_IDS = ("s1", "S1", "s-1", "s_1", "s10", "s2", "a", "Z", "z-9", "b_0", "B", "c")

_DAY = datetime(2024, 5, 30, 12, tzinfo=UTC)
SAID_AT = (
    _DAY,
    _DAY.astimezone(timezone(timedelta(hours=2))),  # the same instant, written otherwise
    _DAY + timedelta(days=1),
    _DAY + timedelta(days=2),
)
_REGISTERED = datetime(2024, 1, 1, tzinfo=UTC)

Row = tuple[Any, ...]
"""A feed entry: status, topic, actor, rollup, said_at, statement id, change, stance,
previous statement id, previous stance."""
Tip = tuple[str, str, datetime, str, str]


@dataclass(frozen=True)
class World:
    parents: dict[str, str | None]
    topics: tuple[str, ...]
    before: dict[str, StatementBody]
    """The visible statements before the batch."""
    hidden: dict[str, StatementState]
    """Rows that are no point of any series: retracted, or corrected but not yet recorded."""
    changed: list[Changed]


def _body(actor_id: str, topic_id: str, said_at: datetime, stance: Stance) -> StatementBody:
    return StatementBody(
        actor_id=actor_id,
        topic_id=topic_id,
        said_at=said_at,
        stance=stance,
        score=default_score(stance),
        confidence=0.5,
    )


def _point(body: StatementBody) -> tuple[str, str, datetime, Stance]:
    return (body.actor_id, body.topic_id, body.said_at, body.stance)


_HIDDEN = st.sampled_from((False, False, True))
_MOVES = st.sampled_from(("stance", "said_at", "actor", "topic", "retract", "any"))


@st.composite
def worlds(draw: st.DrawFn) -> World:
    actor_ids = ACTOR_IDS[: draw(st.sampled_from((1, 2, 3, 3, 4, 5)), label="actors")]
    parents: dict[str, str | None] = {actor_ids[0]: None}
    for index, actor_id in enumerate(actor_ids[1:], start=1):
        # Parents come from earlier actors only: a forest, never a cycle, of one or two trees.
        roots = sum(p is None for p in parents.values())
        choices = [*actor_ids[:index], *([None] if roots < 2 else [])]
        parents[actor_id] = draw(st.sampled_from(choices), label=f"parent of {actor_id}")
    topics = TOPIC_IDS[: draw(st.sampled_from((1, 1, 2)), label="topics")]
    bodies = st.builds(
        _body,
        actor_id=st.sampled_from(actor_ids),
        topic_id=st.sampled_from(topics),
        said_at=st.sampled_from(SAID_AT),
        stance=st.sampled_from(Stance),
    )

    ids = draw(st.lists(st.sampled_from(STATEMENT_IDS), min_size=1, max_size=12, unique=True))
    split = draw(st.integers(0, len(ids)), label="statements before")
    before = {sid: draw(bodies, label=sid) for sid in ids[:split]}
    # Mostly small batches over a longer history, so that one key's window is not
    # covered by another's; a few statements that are new, or no point at all.
    moved = draw(st.lists(st.sampled_from(ids[:split]), max_size=4, unique=True)) if split else []
    changed: list[Changed] = [
        (sid, before[sid], _moved(draw, before[sid], actor_ids, topics, bodies)) for sid in moved
    ]
    hidden: dict[str, StatementState] = {}
    for sid in ids[split : split + draw(st.integers(0, 3), label="statements new")]:
        if draw(_HIDDEN, label=f"{sid} hidden"):
            hidden[sid] = StatementState(
                sid, draw(bodies), recorded_by=f"e-{sid}", retracted_by=(_REGISTERED, f"r-{sid}")
            )
        else:
            changed.append((sid, None, draw(bodies, label=sid)))
            if draw(st.booleans(), label=f"{sid} corrected before recorded"):
                hidden[sid] = StatementState(sid, draw(bodies), corrected_by=(_REGISTERED, "c"))
    if not changed:
        sid = ids[0]
        hidden.pop(sid, None)
        changed.append((sid, before.get(sid), None if sid in before else draw(bodies)))
    changed = draw(st.permutations(changed), label="batch order")
    return World(parents, topics, before, hidden, changed)


def _other(draw: st.DrawFn, current: object, choices: Sequence[Any]) -> Any:
    others = [c for c in choices if c != current]
    return draw(st.sampled_from(others)) if others else current


def _moved(
    draw: st.DrawFn,
    old: StatementBody,
    actor_ids: Sequence[str],
    topics: Sequence[str],
    bodies: st.SearchStrategy[StatementBody],
) -> StatementBody | None:
    """Another point for a statement (or none: retracted), mostly one thing moved at a time:
    its stance at the same key, its said_at, its actor or its topic."""
    move = draw(_MOVES, label="move")
    if move == "retract":
        return None
    if move == "stance":
        new = replace(old, stance=_other(draw, old.stance, list(Stance)))
    elif move == "said_at":
        new = replace(old, said_at=_other(draw, old.said_at, SAID_AT))
    elif move == "actor":
        new = replace(old, actor_id=_other(draw, old.actor_id, actor_ids))
    elif move == "topic":
        new = replace(old, topic_id=_other(draw, old.topic_id, topics))
    else:
        new = draw(bodies)
    if _point(new) == _point(old):
        # The write path only passes statements whose point moved.
        new = replace(new, stance=next(s for s in Stance if s != old.stance))
    return new


# ---------------------------------------------------------------------------------------
# The domain's prediction.


def _members(parents: Mapping[str, str | None], actor_id: str, rollup: bool) -> set[str]:
    """The actors whose statements a series holds: a rolled-up series merges the subtree
    (for a leaf, that is its own series)."""
    return descendants(parents, actor_id) if rollup else {actor_id}


def _points(
    statements: Mapping[str, StatementBody], s: Series, parents: Mapping[str, str | None]
) -> dict[Key, Stance]:
    members = _members(parents, s.actor_id, s.rollup)
    return {
        (b.said_at, sid): b.stance
        for sid, b in statements.items()
        if b.topic_id == s.topic_id and b.actor_id in members
    }


def _stands_on(parents: Mapping[str, str | None], body: StatementBody) -> list[Series]:
    return [
        Series(body.topic_id, actor_id, rollup)
        for actor_id, rollup in series_of(lineage(parents, body.actor_id))
    ]


def _after(world: World) -> dict[str, StatementBody]:
    after = dict(world.before)
    for sid, _, new in world.changed:
        after.pop(sid, None)
        if new is not None:
            after[sid] = new
    return after


def expected_feed(world: World) -> Counter[Row]:
    touched = {
        s
        for _, old, new in world.changed
        for body in (old, new)
        if body is not None
        for s in _stands_on(world.parents, body)
    }
    rows: Counter[Row] = Counter()
    for s in touched:
        removed = [
            (old.said_at, sid)
            for sid, old, _ in world.changed
            if old is not None and s in _stands_on(world.parents, old)
        ]
        added = {
            (new.said_at, sid): new.stance
            for sid, _, new in world.changed
            if new is not None and s in _stands_on(world.parents, new)
        }
        window = _points(world.before, s, world.parents)
        withdrawn, fresh = window_feed(s, window, removed, added)
        for status, found in (("withdrawn", withdrawn), ("added", fresh)):
            for p in found:
                rows[
                    (
                        status,
                        *s,
                        p.said_at.astimezone(UTC),
                        p.statement_id,
                        p.change.value,
                        p.stance,
                        p.previous_statement_id,
                        p.previous_stance,
                    )
                ] += 1
    return rows


def expected_tips(world: World, statements: Mapping[str, StatementBody]) -> set[Tip]:
    """The last point of every merged series: of each actor with descendants."""
    tips = set()
    for actor_id in world.parents:
        if descendants(world.parents, actor_id) == {actor_id}:
            continue
        for topic_id in world.topics:
            points = _points(statements, Series(topic_id, actor_id, True), world.parents)
            if points:
                said_at, sid = max(points)
                tips.add(
                    (topic_id, actor_id, said_at.astimezone(UTC), sid, points[(said_at, sid)].value)
                )
    return tips


# ---------------------------------------------------------------------------------------
# The store.


async def _set_up(conn: AsyncConnection, world: World) -> None:
    """The tables as the write path leaves them before the batch."""
    await catalogue.ensure_actors(conn, list(world.parents))
    await catalogue.ensure_topics(conn, world.topics)
    await catalogue.upsert_actors(
        conn,
        [
            ActorRegistered(f"reg-{a}", _REGISTERED, a, name=a, kind="organisation", parent_id=p)
            for a, p in world.parents.items()
        ],
    )
    await catalogue.rebuild_lineage(conn)
    states = [StatementState(sid, b, recorded_by=f"e-{sid}") for sid, b in world.before.items()]
    await statement_rows.save_states(
        conn, [statement_rows.row_from_state(s) for s in [*states, *world.hidden.values()]]
    )
    await series.rebuild_all_tips(conn)


async def _tips(conn: AsyncConnection) -> set[Tip]:
    rows = await conn.execute(
        sa.text("SELECT topic_id, actor_id, said_at, statement_id, stance FROM series_tips")
    )
    return {(r.topic_id, r.actor_id, r.said_at, r.statement_id, r.stance) for r in rows}


async def _feed(conn: AsyncConnection) -> Counter[Row]:
    rows = await conn.execute(
        sa.text(
            "SELECT status, topic_id, actor_id, rollup, said_at, statement_id, change, stance,"
            " previous_statement_id, previous_stance FROM changes"
        )
    )
    return Counter(tuple(r) for r in rows)


def _describe(world: World) -> str:
    def body(b: StatementBody | None) -> str:
        if b is None:
            return "-"
        return f"{b.actor_id}/{b.topic_id}@{b.said_at.astimezone(UTC):%m-%dT%H}:{b.stance.value}"

    lines = [f"parents: {world.parents}", "before:"]
    lines += [f"  {sid}: {body(b)}" for sid, b in sorted(world.before.items())]
    lines += ["hidden:"]
    lines += [
        f"  {sid}: {body(s.body)} ({'retracted' if s.retracted_by else 'not recorded'})"
        for sid, s in sorted(world.hidden.items())
    ]
    lines += ["changed:"]
    lines += [f"  {sid}: {body(old)} -> {body(new)}" for sid, old, new in world.changed]
    return "\n".join(lines)


def _sorted(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=repr)


async def check_feed(engine: AsyncEngine, world: World) -> None:
    async with engine.connect() as conn:
        try:
            await _set_up(conn, world)
            assert await _tips(conn) == expected_tips(world, world.before), "rebuild_all_tips"

            await series.update(conn, world.changed)

            actual, expected = await _feed(conn), expected_feed(world)
            assert actual == expected, (
                f"{_describe(world)}\n"
                f"only in SQL: {_sorted((actual - expected).elements())}\n"
                f"only in spec: {_sorted((expected - actual).elements())}"
            )
            assert await _tips(conn) == expected_tips(world, _after(world)), _describe(world)
        finally:
            await conn.rollback()


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=100, **_SETTINGS)
@given(world=worlds())
async def test_batch_feed_sql_is_window_feed(engine: AsyncEngine, world: World) -> None:
    await check_feed(engine, world)


@pytest.mark.slow
@settings(max_examples=500, **_SETTINGS)
@given(world=worlds())
async def test_batch_feed_sql_is_window_feed_many(engine: AsyncEngine, world: World) -> None:
    await check_feed(engine, world)
