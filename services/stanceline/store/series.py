"""Recomputing timelines in SQL: only the suffix of each series that changed.

A statement that arrives, moves or disappears changes the points from its
own (``said_at``, statement id) onwards: the change kind of a point depends
only on the point before it. So each affected series is cut at its
earliest touched key, and the tail is rebuilt from ``statements`` with the
one point before the cut as the window's seed. When the cut falls after a
series' last point (in-order ingest) there is nothing to recompute: the new
points are inserted with their change kinds, in one statement for the whole
batch. Any arrival order ends in the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.domain.facts import StatementBody
from stanceline.domain.feed import ChangePoint, feed_diff
from stanceline.domain.stance import Change
from stanceline.store.arrays import insert_rows
from stanceline.store.locks import sorted_locks
from stanceline.store.tables import changes

SeriesKey = tuple[str, str, bool]
"""(topic id, actor id, rollup)."""
Cut = tuple[datetime, str]
"""The first (said_at, statement id) to recompute."""

BEGINNING: Cut = (datetime(1, 1, 1, tzinfo=UTC), "")

CHANGE_KIND = """
    CASE WHEN prev_stance IS NULL OR prev_stance = stance THEN 'none'
         WHEN prev_stance = 'neutral' OR stance = 'neutral' THEN 'shift'
         ELSE 'flip' END"""
"""The domain's change rule (``stance.change_between``) over ``prev_stance`` and ``stance``."""

INSERT_RANKED = f"""
    INSERT INTO series_points
        (topic_id, actor_id, rollup, said_at, statement_id, stance, change,
         previous_statement_id, previous_stance)
    SELECT topic_id, actor_id, rollup, said_at, statement_id, stance, {CHANGE_KIND},
           prev_sid, prev_stance
      FROM ranked"""
"""Points from a ``ranked`` relation (each member with the ``prev_stance`` and
``prev_sid`` before it in its series), change kinds computed as they are inserted."""

_AFFECTED = """
    affected AS (
        SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:actors AS text[]),
                             CAST(:rollups AS boolean[]), CAST(:said AS timestamptz[]),
                             CAST(:sids AS text[]))
            AS a(topic_id, actor_id, rollup, from_said_at, from_sid)
    )
"""

# Both statements hand back only change points: the feed ignores the rest, and most
# points of a series are not changes, so fewer rows travel and become objects.
_DELETE_TAILS = sa.text(
    f"""
    WITH {_AFFECTED},
    gone AS (
        DELETE FROM series_points p USING affected a
         WHERE p.topic_id = a.topic_id AND p.actor_id = a.actor_id AND p.rollup = a.rollup
           AND (p.said_at, p.statement_id) >= (a.from_said_at, a.from_sid COLLATE "C")
        RETURNING p.*
    )
    SELECT * FROM gone WHERE change <> 'none'
    """
)

_INSERT_TAILS = sa.text(
    f"""
    WITH {_AFFECTED},
    members AS (
        SELECT a.topic_id, a.actor_id, a.rollup, m.said_at, m.statement_id, m.stance, m.fresh
          FROM affected a
         CROSS JOIN LATERAL (
            (SELECT p.said_at, p.statement_id, p.stance, false AS fresh
               FROM series_points p
              WHERE p.topic_id = a.topic_id AND p.actor_id = a.actor_id
                AND p.rollup = a.rollup
                AND (p.said_at, p.statement_id) < (a.from_said_at, a.from_sid COLLATE "C")
              ORDER BY p.said_at DESC, p.statement_id DESC
              LIMIT 1)
            UNION ALL
            (SELECT s.said_at, s.statement_id, s.stance, true
               FROM statements s
               JOIN actor_lineage l ON l.actor_id = s.actor_id
              WHERE s.visible AND s.topic_id = a.topic_id
                AND l.ancestor_id = a.actor_id AND (a.rollup OR l.depth = 0)
                AND (s.said_at, s.statement_id) >= (a.from_said_at, a.from_sid COLLATE "C"))
         ) AS m
    ),
    ranked AS (
        SELECT *, lag(stance) OVER w AS prev_stance, lag(statement_id) OVER w AS prev_sid
          FROM members
        WINDOW w AS (PARTITION BY topic_id, actor_id, rollup ORDER BY said_at, statement_id)
    ),
    added AS (
        {INSERT_RANKED}
         WHERE fresh
        RETURNING *
    )
    SELECT * FROM added WHERE change <> 'none'
    """
)

_ALL_ROLLUP_SERIES = sa.text(
    """
    SELECT s.topic_id, l.ancestor_id AS actor_id
      FROM statements s JOIN actor_lineage l ON l.actor_id = s.actor_id
     WHERE s.visible
    UNION
    SELECT topic_id, actor_id FROM series_points WHERE rollup
    """
)


_PLACED = """
    bodies AS (
        SELECT * FROM unnest(CAST(:sids AS text[]), CAST(:actors AS text[]),
                             CAST(:topics AS text[]), CAST(:said AS timestamptz[]),
                             CAST(:stances AS text[]), CAST(:is_current AS boolean[]))
            AS b(statement_id, actor_id, topic_id, said_at, stance, is_current)
    ),
    placed AS (
        SELECT b.topic_id, l.ancestor_id AS actor_id, r.rollup, b.said_at,
               b.statement_id COLLATE "C" AS statement_id, b.stance, b.is_current
          FROM bodies b
          JOIN actor_lineage l ON l.actor_id = b.actor_id
         CROSS JOIN (VALUES (false), (true)) AS r(rollup)
         WHERE CASE WHEN r.rollup THEN NOT :own_only ELSE l.depth = 0 END
    )
"""
"""Each body on every series it stands on: its actor's own, and (unless ``own_only``)
the rolled-up series of the actor and each of its ancestors."""

# The key text of a series lock is what ``locks.lock_keys(conn, "series", ...)`` made of
# f"{topic}/{actor}/{rollup}" before this statement took the locks itself, so projectors
# of either version still exclude each other during a rolling upgrade.
_LOCK_SERIES = sa.text(
    f"WITH {_PLACED} "
    + sorted_locks(
        "SELECT 'series:' || topic_id || '/' || actor_id || '/'"
        " || CASE WHEN rollup THEN 'True' ELSE 'False' END AS key FROM placed"
    )
)

_UPDATE = sa.text(
    f"""
    WITH {_PLACED},
    cuts AS (
        SELECT DISTINCT ON (topic_id, actor_id, rollup)
               topic_id, actor_id, rollup, said_at, statement_id
          FROM placed
         ORDER BY topic_id, actor_id, rollup, said_at, statement_id
    ),
    classified AS (
        SELECT c.*, t.statement_id AS tip_sid, t.stance AS tip_stance,
               t.statement_id IS NULL
               OR (t.said_at, t.statement_id) < (c.said_at, c.statement_id) AS appends
          FROM cuts c
          LEFT JOIN LATERAL (
            SELECT p.said_at, p.statement_id, p.stance
              FROM series_points p
             WHERE p.topic_id = c.topic_id AND p.actor_id = c.actor_id AND p.rollup = c.rollup
             ORDER BY p.said_at DESC, p.statement_id DESC
             LIMIT 1) AS t ON true
    ),
    ranked AS (
        SELECT p.topic_id, p.actor_id, p.rollup, p.said_at, p.statement_id, p.stance,
               coalesce(lag(p.stance) OVER w, c.tip_stance) AS prev_stance,
               coalesce(lag(p.statement_id) OVER w, c.tip_sid) AS prev_sid
          FROM placed p
          JOIN classified c USING (topic_id, actor_id, rollup)
         WHERE c.appends AND p.is_current
        WINDOW w AS (PARTITION BY p.topic_id, p.actor_id, p.rollup
                     ORDER BY p.said_at, p.statement_id)
    ),
    added AS (
        {INSERT_RANKED}
        RETURNING *
    ),
    fed AS (
        INSERT INTO changes
            (status, topic_id, actor_id, rollup, said_at, statement_id, change, stance,
             previous_statement_id, previous_stance)
        SELECT 'added', topic_id, actor_id, rollup, said_at, statement_id, change, stance,
               previous_statement_id, previous_stance
          FROM added
         WHERE change <> 'none'
         ORDER BY topic_id, actor_id, rollup, said_at, statement_id
    )
    SELECT topic_id, actor_id, rollup, said_at, statement_id FROM classified WHERE NOT appends
    """
)

Body = tuple[str, StatementBody, bool]
"""(statement id, body, whether it is the statement's current body or the one it replaced)."""


async def update(conn: AsyncConnection, bodies: Sequence[Body], *, own_only: bool) -> None:
    """Bring every series these bodies stand on up to date, taking the series' locks.

    A series whose last point sorts before every body placed on it only
    gains points, and they are all current bodies of this batch: their change
    kinds follow from that last point, so one statement inserts them as they
    are, and feeds the change points. That is in-order ingest, nearly every
    series of nearly every batch, with no per-point work in Python. Any
    other series (a late statement, a correction, a retraction) is cut at
    its earliest body and its tail recomputed.
    """
    if not bodies:
        return
    params = {
        "sids": [sid for sid, _, _ in bodies],
        "actors": [b.actor_id for _, b, _ in bodies],
        "topics": [b.topic_id for _, b, _ in bodies],
        "said": [b.said_at for _, b, _ in bodies],
        "stances": [b.stance.value for _, b, _ in bodies],
        "is_current": [current for _, _, current in bodies],
        "own_only": own_only,
    }
    await conn.execute(_LOCK_SERIES, params)
    tails = await conn.execute(_UPDATE, params)
    await recompute(
        conn, {(r.topic_id, r.actor_id, r.rollup): (r.said_at, r.statement_id) for r in tails}
    )


async def recompute(conn: AsyncConnection, cuts: Mapping[SeriesKey, Cut]) -> None:
    """Rebuild each series from its cut on; the caller holds the series' locks."""
    if not cuts:
        return
    keys = sorted(cuts)
    params = {
        "topics": [k[0] for k in keys],
        "actors": [k[1] for k in keys],
        "rollups": [k[2] for k in keys],
        "said": [cuts[k][0] for k in keys],
        "sids": [cuts[k][1] for k in keys],
    }
    before = [_change_point(r) for r in await conn.execute(_DELETE_TAILS, params)]
    after = [_change_point(r) for r in await conn.execute(_INSERT_TAILS, params)]
    await _feed(conn, *feed_diff(before, after))


async def _feed(
    conn: AsyncConnection, withdrawn: Sequence[ChangePoint], added: Sequence[ChangePoint]
) -> None:
    feed = [{"status": "withdrawn", **_point_row(p)} for p in withdrawn]
    feed += [{"status": "added", **_point_row(p)} for p in added]
    if feed:
        await insert_rows(conn, changes, feed)


def _change_point(row: Any) -> ChangePoint:
    return ChangePoint(
        row.topic_id,
        row.actor_id,
        row.rollup,
        row.said_at,
        row.statement_id,
        row.stance,
        Change(row.change),
        row.previous_statement_id,
        row.previous_stance,
    )


def _point_row(point: ChangePoint) -> dict[str, Any]:
    return {
        "topic_id": point.topic_id,
        "actor_id": point.actor_id,
        "rollup": point.rollup,
        "said_at": point.said_at,
        "statement_id": point.statement_id,
        "change": point.change.value,
        "stance": point.stance,
        "previous_statement_id": point.previous_statement_id,
        "previous_stance": point.previous_stance,
    }


_ANY_POINTS_BELOW = sa.text(
    """
    SELECT EXISTS (
        SELECT 1 FROM actor_lineage l
          JOIN statements s ON s.actor_id = l.actor_id AND s.visible
         WHERE l.ancestor_id = ANY(CAST(:actors AS text[])))
    """
)


async def any_points_below(conn: AsyncConnection, actor_ids: set[str]) -> bool:
    """Whether any of these actors, or anyone below them, has a point on a timeline:
    a visible statement is an own point."""
    return bool(await conn.scalar(_ANY_POINTS_BELOW, {"actors": sorted(actor_ids)}))


async def recompute_all_rollups(conn: AsyncConnection) -> None:
    """After the hierarchy moved: every rolled-up series, old and new, from the beginning.

    Only under the exclusive hierarchy lock, which keeps every other batch out.
    """
    rows = (await conn.execute(_ALL_ROLLUP_SERIES)).all()
    await recompute(conn, {(r.topic_id, r.actor_id, True): BEGINNING for r in rows})
