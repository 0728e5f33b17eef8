"""Read queries for the read model. They take a ``ReadConnection`` only (a response read in
one statement: a ``SingleRead`` too)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa

from stanceline.store.db import OneStatement, ReadConnection, Record
from stanceline.store.members import change_kind, member_actors, own_points, series_points
from stanceline.store.tables import actors, changes, statements, topics


async def actor_page(conn: ReadConnection, after: str | None, limit: int) -> list[Any]:
    query = sa.select(actors).order_by(actors.c.actor_id).limit(limit)
    if after is not None:
        query = query.where(actors.c.actor_id > after)
    return list((await conn.execute(query)).all())


async def topic_page(conn: ReadConnection, after: str | None, limit: int) -> list[Any]:
    query = sa.select(topics).order_by(topics.c.topic_id).limit(limit)
    if after is not None:
        query = query.where(topics.c.topic_id > after)
    return list((await conn.execute(query)).all())


async def actor_exists(conn: ReadConnection, actor_id: str) -> bool:
    query = sa.select(sa.exists().where(actors.c.actor_id == actor_id))
    return bool(await conn.scalar(query))


async def topic_exists(conn: ReadConnection, topic_id: str) -> bool:
    query = sa.select(sa.exists().where(topics.c.topic_id == topic_id))
    return bool(await conn.scalar(query))


_BOTH_EXIST = sa.select(
    sa.exists().where(actors.c.actor_id == sa.bindparam("actor_id")),
    sa.exists().where(topics.c.topic_id == sa.bindparam("topic_id")),
)


async def actor_and_topic_exist(
    conn: ReadConnection, actor_id: str, topic_id: str
) -> tuple[bool, bool]:
    """Both checks in one round trip, for the routes that name an actor and a topic."""
    found = await conn.execute(_BOTH_EXIST, {"actor_id": actor_id, "topic_id": topic_id})
    actor_found, topic_found = tuple(found.one())
    return bool(actor_found), bool(topic_found)


_STATEMENT_COLUMNS = ", ".join(f"st.{c.name}" for c in statements.columns if c.name != "visible")
_AFTER = (
    "(s.said_at, s.statement_id) > (CAST(:after_said_at AS timestamptz),"
    ' CAST(:after_statement_id AS text) COLLATE "C")'
)
_UP_TO_AFTER = _AFTER.replace(">", "<=", 1)
_AS_OF = "s.said_at <= CAST(:as_of AS timestamptz)"

FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


POINT_COLUMNS = (
    "statement_id",
    "actor_id",
    "topic_id",
    "said_at",
    "stance",
    "score",
    "confidence",
    "speaker_name",
    "speaker_role",
    "quote",
    "source_url",
    "published_at",
    "speech_act",
    "certainty",
)
"""The statement columns a history point shows."""
_POINT = ", ".join(f"st.{c}" for c in POINT_COLUMNS)
_NO_POINT = ", ".join(f"NULL AS {c}" for c in POINT_COLUMNS)


def _series_read(paged: bool) -> sa.TextClause:
    """The history statement; ``paged``: after a cursor, so the point before the page is
    read too (without a cursor there is none: the page starts the series)."""
    key = (":topic_id", ":actor_id", ":rollup")
    page = series_points(*key, f"{_AFTER} AND {_AS_OF}", "ASC", "CAST(:limit AS bigint)")
    seed = series_points(*key, _UP_TO_AFTER, "DESC", "1")
    shown = "SELECT *, true AS shown FROM page"
    if paged:
        shown += " UNION ALL SELECT *, false FROM seed"
    return sa.text(
        f"""
    WITH page AS (
        {page}
    ){f", seed AS ({seed})" if paged else ""}, ranked AS (
        SELECT x.*, lag(x.stance) OVER w AS previous_stance,
               lag(x.statement_id) OVER w AS previous_statement_id
          FROM ({shown}) AS x
        WINDOW w AS (ORDER BY x.said_at, x.statement_id)
    ), tree AS (
        SELECT m.actor_id, p.said_at, p.statement_id, p.stance
          FROM ({member_actors(":actor_id", ":rollup")}) m
         CROSS JOIN LATERAL ({own_points(":topic_id", "m.actor_id", _AS_OF, "DESC", "1")}) p
    ), last AS (
        SELECT t.statement_id FROM tree t ORDER BY t.said_at DESC, t.statement_id DESC LIMIT 1
    )
    SELECT 0 AS part, {change_kind("r.previous_stance", "r.stance")} AS change,
           r.previous_statement_id, NULL AS member_id, NULL AS member_stance,
           NULL::boolean AS actor_found, NULL::boolean AS topic_found, {_POINT}
      FROM ranked r JOIN statements st ON st.statement_id = r.statement_id
     WHERE r.shown
    UNION ALL
    SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, {_POINT}
      FROM last l JOIN statements st ON st.statement_id = l.statement_id
    UNION ALL
    SELECT 2, NULL, NULL, t.actor_id, t.stance, NULL, NULL, {_NO_POINT}
      FROM tree t
    UNION ALL
    SELECT 3, NULL, NULL, NULL, NULL,
           EXISTS (SELECT 1 FROM actors WHERE actor_id = :actor_id),
           EXISTS (SELECT 1 FROM topics WHERE topic_id = :topic_id), {_NO_POINT}
     ORDER BY part, said_at, statement_id
    """
    )


_SERIES_READ = {paged: _series_read(paged) for paged in (False, True)}
"""A page of a series in timeline order, each point with the change from the one before
it (after a cursor the point before the page is read too: change kinds are computed as
the page is read), then the series' last point, each member's own last point (for
*contested*; the series' last point is the latest of them) and whether the actor and
topic exist: a history response in one round trip, in one snapshot."""


@dataclass(frozen=True, slots=True)
class SeriesRead:
    actor_found: bool
    topic_found: bool
    points: list[Record]
    """The page, as ``history`` returns it: ``POINT_COLUMNS``, ``change`` and
    ``previous_statement_id``."""
    last: Record | None
    """The series' last point as of the moment asked (``POINT_COLUMNS``)."""
    members: list[tuple[str, str]]
    """(actor, stance): the own last point of each actor the series merges."""


async def read_series(
    conn: OneStatement,
    actor_id: str,
    topic_id: str,
    *,
    include_descendants: bool,
    as_of: datetime | None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> SeriesRead:
    """Everything a history response needs, in one statement (the response's only one)."""
    after_said_at, after_statement_id = after or (FAR_PAST, "")
    params: dict[str, Any] = {
        "actor_id": actor_id,
        "topic_id": topic_id,
        "rollup": include_descendants,
        "as_of": as_of or FAR_FUTURE,
        "after_said_at": after_said_at,
        "after_statement_id": after_statement_id,
        "limit": limit,
    }
    parts: tuple[list[Record], ...] = ([], [], [], [])
    for row in await conn.only(_SERIES_READ[after is not None], params):
        parts[row[0]].append(row)
    (found,) = parts[3]
    return SeriesRead(
        actor_found=bool(found["actor_found"]),
        topic_found=bool(found["topic_found"]),
        points=parts[0],
        last=parts[1][0] if parts[1] else None,
        members=[(r["member_id"], r["member_stance"]) for r in parts[2]],
    )


Scope = Literal["listed", "below", "all"]

_ACTOR_SETS: dict[Scope, str] = {
    "listed": "SELECT actor_id FROM actors WHERE actor_id = ANY(CAST(:actor_ids AS text[]))",
    "below": member_actors(":ancestor_id", "true"),
    "all": "SELECT actor_id FROM actors",
}
_TOPIC_SETS: dict[Scope, str] = {
    "listed": "SELECT topic_id FROM topics WHERE topic_id = ANY(CAST(:topic_ids AS text[]))",
    "all": "SELECT topic_id FROM topics",
}


async def current_stances(
    conn: ReadConnection,
    *,
    topic_ids: Collection[str] | None = None,
    actor_ids: Collection[str] | None = None,
    below: str | None = None,
    rollup: bool = False,
    as_of: datetime | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The last point of each (actor, topic) series in scope, in (actor, topic) order.

    Actors in scope: ``actor_ids``, or the actor ``below`` names and its descendants, or
    else every actor; topics: ``topic_ids``, or else every topic. One backward index
    probe per member's own series, so the cost follows the number of series asked
    about, not the number of points they hold.
    """
    actor_scope: Scope = "listed" if actor_ids is not None else "below" if below else "all"
    topic_scope: Scope = "listed" if topic_ids is not None else "all"
    params: dict[str, Any] = {
        "actor_ids": sorted(actor_ids or ()),
        "ancestor_id": below,
        "topic_ids": sorted(topic_ids or ()),
        "rollup": rollup,
        "as_of": as_of or FAR_FUTURE,
        "after_actor_id": after[0] if after else "",
        "after_topic_id": after[1] if after else "",
        "limit": limit,
    }
    query = _current_query(actor_scope, topic_scope)
    return list((await conn.execute(query, params)).all())


@cache
def _current_query(actor_scope: Scope, topic_scope: Scope) -> sa.TextClause:
    last = series_points("t.topic_id", "a.actor_id", ":rollup", _AS_OF, "DESC", "1")
    return sa.text(
        f"""
        SELECT a.actor_id, t.topic_id, p.stance, st.score, p.said_at, p.statement_id,
               st.actor_id AS said_by
          FROM ({_ACTOR_SETS[actor_scope]}) a
         CROSS JOIN ({_TOPIC_SETS[topic_scope]}) t
         CROSS JOIN LATERAL ({last}) p
          JOIN statements st ON st.statement_id = p.statement_id
         WHERE (a.actor_id, t.topic_id) > (CAST(:after_actor_id AS text) COLLATE "C",
                                            CAST(:after_topic_id AS text) COLLATE "C")
         ORDER BY a.actor_id, t.topic_id
         LIMIT CAST(:limit AS bigint)
        """
    )


_UNITS = ("day", "week", "month")


@cache
def _buckets_query(actor_scope: Scope) -> sa.TextClause:
    points = series_points(":topic_id", "a.actor_id", ":rollup", _AS_OF, "ASC", "ALL")
    # Calendar buckets in UTC, returned as instants (timestamptz) again.
    bucket = "timezone('UTC', date_trunc(:unit, timezone('UTC', p.said_at)))"
    last = "ORDER BY p.said_at DESC, p.statement_id DESC"
    return sa.text(
        f"""
        SELECT a.actor_id, {bucket} AS bucket,
               sum(st.score * st.confidence) / nullif(sum(st.confidence), 0) AS mean_score,
               count(*) AS count,
               (array_agg(p.stance {last}))[1] AS last_stance,
               (array_agg(p.statement_id {last}))[1] AS last_statement_id
          FROM ({_ACTOR_SETS[actor_scope]}) a
         CROSS JOIN LATERAL ({points}) p
          JOIN statements st ON st.statement_id = p.statement_id
         GROUP BY a.actor_id, bucket
         ORDER BY a.actor_id, bucket
        """
    )


async def timeline_buckets(
    conn: ReadConnection,
    topic_id: str,
    *,
    actor_ids: Collection[str] | None,
    rollup: bool,
    unit: str,
    as_of: datetime | None,
) -> list[Any]:
    if unit not in _UNITS:
        raise ValueError(f"unknown bucket unit {unit!r}")
    query = _buckets_query("listed" if actor_ids is not None else "all")
    params = {
        "topic_id": topic_id,
        "actor_ids": sorted(actor_ids or ()),
        "rollup": rollup,
        "unit": unit,
        "as_of": as_of or FAR_FUTURE,
    }
    return list((await conn.execute(query, params)).all())


_FEED_HORIZON: sa.ColumnElement[int] = sa.literal_column(
    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
)


async def changes_page(
    conn: ReadConnection,
    *,
    after: tuple[int, int] | None,
    actor_id: str | None,
    topic_id: str | None,
    kind: str | None,
    rollup: bool,
    as_of: datetime | None,
    known_at: datetime | None,
    limit: int,
) -> list[Any]:
    """Feed entries after the cursor, only from transactions that can no longer commit
    anything older: every transaction below the snapshot's xmin has ended."""
    c = changes.c
    query = (
        sa.select(changes)
        .where(c.xact_id < _FEED_HORIZON, c.rollup == rollup)
        .order_by(c.xact_id, c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(sa.tuple_(c.xact_id, c.id) > sa.tuple_(*after))
    if actor_id is not None:
        query = query.where(c.actor_id == actor_id)
    if topic_id is not None:
        query = query.where(c.topic_id == topic_id)
    if kind is not None:
        query = query.where(c.change == kind)
    if as_of is not None:
        query = query.where(c.said_at <= as_of)
    if known_at is not None:
        query = query.where(c.recorded_at <= known_at)
    return list((await conn.execute(query)).all())


async def feed_end(conn: ReadConnection) -> tuple[int, int]:
    """A cursor at the feed's current end: every entry not yet visible sorts after it, since
    it comes from a transaction at or above the horizon (so a live reader starts here)."""
    horizon = (await conn.execute(sa.select(_FEED_HORIZON))).scalar_one()
    return (int(horizon) - 1, 2**63 - 1)


_STATEMENT_ROW = sa.text(
    f"""
    SELECT {_STATEMENT_COLUMNS},
           CASE WHEN st.visible THEN {change_kind("prev.stance", "st.stance")} END AS change,
           prev.statement_id AS previous_statement_id
      FROM statements st
      LEFT JOIN LATERAL (
        {
        own_points(
            "st.topic_id",
            "st.actor_id",
            "(s.said_at, s.statement_id) < (st.said_at, st.statement_id)",
            "DESC",
            "1",
        )
    }
      ) prev ON st.visible
     WHERE st.statement_id = :statement_id
    """
)


async def statement_row(conn: ReadConnection, statement_id: str) -> Any | None:
    """The statement as it reads now, with its point in its own series if it has one."""
    return (await conn.execute(_STATEMENT_ROW, {"statement_id": statement_id})).first()
