"""The write path's series step: lock the series a batch touches, feed their changes, keep tips.

Series are not stored (``store.members``). What a batch must still write is
the changes feed: the change points it added and withdrew, computed (``_FEED``,
one statement, the SQL form of the domain's ``window_feed``) from a window of
each touched series read before the batch's statements are saved: the points
on either side of every key the batch touches. For an own series that is two
index probes per key. For a rolled-up series the tip (``series_tips``)
answers the common case, a key after the last point, without a probe per
descendant; only a late, corrected or retracted statement probes the merged
series around its key.
Any arrival order ends in the same feed entries per series and the same tips.

A leaf actor's rolled-up series is its own series: it has no tip, and its
own series' feed entries are written for both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.domain.facts import StatementBody
from stanceline.domain.feed import ChangePoint, Key, Series, window_feed
from stanceline.domain.stance import Change, Stance
from stanceline.store.arrays import insert_rows
from stanceline.store.locks import lock_series
from stanceline.store.members import (
    change_kind,
    has_descendants,
    member_actors,
    own_points,
    series_points,
    stands_on,
)
from stanceline.store.tables import changes

Changed = tuple[str, StatementBody | None, StatementBody | None]
"""(statement id, the body its series held before the batch, the body they hold after)."""

_BODIES = """
    SELECT b.statement_id COLLATE "C" AS statement_id, b.removed,
           b.actor_id COLLATE "C" AS actor_id, b.topic_id COLLATE "C" AS topic_id,
           b.said_at, b.stance
      FROM unnest(CAST(:sids AS text[]), CAST(:removed AS boolean[]), CAST(:actors AS text[]),
                  CAST(:topics AS text[]), CAST(:said AS timestamptz[]), CAST(:stances AS text[]))
        AS b(statement_id, removed, actor_id, topic_id, said_at, stance)
"""
"""The bodies a batch moves: the one each changed statement's series held (``removed``)
and the one they hold now, as parameters."""

_TOUCHES = f"""
    SELECT topic_id, series_actor AS actor_id, rollup, said_at, statement_id, removed, stance
      FROM ({stands_on("bodies", "r.topic_id, r.said_at, r.statement_id, r.removed, r.stance")})
        AS placed
"""
"""Each body on every series it stands on that is kept apart (``members.stands_on``)."""

_SERIES = "topic_id, actor_id, rollup"
_KEY = "(s.said_at, s.statement_id)"
_AT = '(k.said_at, k.statement_id COLLATE "C")'


def _neighbour(side: str, order: str) -> str:
    """The point of series ``k`` right before (``<``) or after (``>``) key ``k``: for an
    own series one index probe, without the merge a rolled-up series needs."""
    where = f"{_KEY} {side} {_AT}"
    own = own_points("k.topic_id", "k.actor_id", where, order, "1")
    merged = series_points("k.topic_id", "k.actor_id", "true", where, order, "1")
    return (
        f"SELECT o.* FROM ({own}) o WHERE NOT k.rollup"
        f" UNION ALL SELECT m.* FROM ({merged}) m WHERE k.rollup"
    )


_FEED = sa.text(
    f"""
    WITH bodies AS ({_BODIES}), touches AS ({_TOUCHES}),
    keys AS (SELECT DISTINCT {_SERIES}, said_at, statement_id FROM touches),
    tipped AS (
        SELECT k.*, t.said_at AS tip_said, t.statement_id AS tip_sid, t.stance AS tip_stance,
               k.rollup AND (t.said_at IS NULL OR (t.said_at, t.statement_id) < {_AT})
                   AS appends
          FROM keys k
          LEFT JOIN series_tips t
            ON k.rollup AND t.topic_id = k.topic_id AND t.actor_id = k.actor_id
    ),
    window_before AS (
        SELECT k.topic_id, k.actor_id, k.rollup, w.said_at, w.statement_id, w.stance
          FROM tipped k
         CROSS JOIN LATERAL (
            SELECT k.tip_said, k.tip_sid, k.tip_stance WHERE k.tip_said IS NOT NULL
            UNION ALL
            SELECT b.* FROM (
                {_neighbour("<", "DESC")}
            ) b WHERE NOT k.appends
            UNION ALL
            SELECT a.* FROM (
                {_neighbour(">", "ASC")}
            ) a WHERE NOT k.appends
         ) AS w(said_at, statement_id, stance)
        UNION
        SELECT {_SERIES}, said_at, statement_id, stance FROM touches WHERE removed
    ),
    points AS (
        SELECT w.*, 0 AS v FROM window_before w
        UNION ALL
        SELECT w.*, 1 FROM window_before w
         WHERE NOT EXISTS (
            SELECT 1 FROM touches r
             WHERE r.removed AND (r.topic_id, r.actor_id, r.rollup, r.said_at, r.statement_id)
                              = (w.topic_id, w.actor_id, w.rollup, w.said_at, w.statement_id))
        UNION ALL
        SELECT {_SERIES}, said_at, statement_id, stance, 1 FROM touches WHERE NOT removed
    ),
    marked AS (
        SELECT {_SERIES}, v, said_at, statement_id, p.stance,
               p.stance IS NOT NULL AS present, k.statement_id IS NOT NULL AS touched
          FROM points p
          FULL JOIN (SELECT keys.*, v FROM keys CROSS JOIN (VALUES (0), (1)) AS vs(v)) k
         USING ({_SERIES}, v, said_at, statement_id)
    ),
    affected AS (
        SELECT *, touched OR coalesce(lag(touched) OVER w, false) AS affected
          FROM marked
        WINDOW w AS (PARTITION BY {_SERIES}, v ORDER BY said_at, statement_id)
    ),
    placed AS (
        SELECT *, lag(statement_id) OVER w AS previous_statement_id,
               lag(stance) OVER w AS previous_stance
          FROM affected WHERE present
        WINDOW w AS (PARTITION BY {_SERIES}, v ORDER BY said_at, statement_id)
    ),
    change_points AS (
        SELECT {_SERIES}, v, said_at, statement_id, stance,
               {change_kind("previous_stance", "stance")} AS change,
               previous_statement_id, previous_stance
          FROM placed
         WHERE affected AND previous_statement_id IS NOT NULL
    ),
    differences AS (
        SELECT CASE c.v WHEN 0 THEN 'withdrawn' ELSE 'added' END AS status, c.*
          FROM change_points c
         WHERE c.change <> '{Change.NONE.value}'
           AND NOT EXISTS (
            SELECT 1 FROM change_points o
             WHERE o.v <> c.v AND o.change <> '{Change.NONE.value}'
               AND (o.topic_id, o.actor_id, o.rollup, o.statement_id, o.said_at, o.stance,
                    o.change, o.previous_statement_id, o.previous_stance)
                 = (c.topic_id, c.actor_id, c.rollup, c.statement_id, c.said_at, c.stance,
                    c.change, c.previous_statement_id, c.previous_stance))
    ),
    fed AS (
        INSERT INTO changes (status, topic_id, actor_id, rollup, said_at, statement_id, change,
                             stance, previous_statement_id, previous_stance)
        SELECT d.status, d.topic_id, d.actor_id, r.rollup, d.said_at, d.statement_id, d.change,
               d.stance, d.previous_statement_id, d.previous_stance
          FROM differences d
         CROSS JOIN LATERAL (
            SELECT d.rollup
            UNION ALL
            SELECT true WHERE NOT d.rollup AND NOT {has_descendants("d.actor_id")}
         ) AS r(rollup)
         ORDER BY d.v, d.topic_id, d.actor_id, r.rollup, d.said_at, d.statement_id
        RETURNING 1
    ),
    tips AS (
        SELECT DISTINCT ON (topic_id, actor_id) topic_id, actor_id, said_at, statement_id, stance
          FROM (SELECT topic_id, actor_id, said_at, statement_id, stance
                  FROM points WHERE rollup AND v = 1
                UNION ALL
                SELECT topic_id, actor_id, NULL, NULL, NULL FROM keys WHERE rollup) AS x
         ORDER BY topic_id, actor_id, said_at DESC NULLS LAST, statement_id DESC
    ),
    saved_tips AS (
        INSERT INTO series_tips AS t (topic_id, actor_id, said_at, statement_id, stance)
        SELECT topic_id, actor_id, said_at, statement_id, stance
          FROM tips WHERE said_at IS NOT NULL
        ON CONFLICT (topic_id, actor_id) DO UPDATE SET said_at = EXCLUDED.said_at,
            statement_id = EXCLUDED.statement_id, stance = EXCLUDED.stance
         WHERE (t.said_at, t.statement_id, t.stance)
               IS DISTINCT FROM (EXCLUDED.said_at, EXCLUDED.statement_id, EXCLUDED.stance)
        RETURNING 1
    ),
    dropped_tips AS (
        DELETE FROM series_tips
         WHERE (topic_id, actor_id) IN (SELECT topic_id, actor_id FROM tips WHERE said_at IS NULL)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM fed), (SELECT count(*) FROM saved_tips),
           (SELECT count(*) FROM dropped_tips)
    """
)
"""``domain.feed.window_feed`` over every touched series of a batch, as one statement.

Around each touched key, the series as it stood before the batch (the point
before and the point after it, or the tip of a rolled-up series the key
comes after) and with the batch's bodies moved in it (version ``v`` 0 and 1).
A point's change kind is read against the point before it, and only where a
touched key can have changed it: a touched key itself, or the first point
after one. The change points that differ between the two versions are the
feed. A rolled-up series' tip is in every window of that series, so the last
point of its window after the batch is its new tip (none: the series emptied); a tip
that stays is not rewritten.

It is ``window_feed``'s SQL form, written here because a batch touches about
three series per statement and Python spent more time shaping windows than
Postgres spends on this statement. The any-order property tests hold it to the
fold's whole timelines (``feed_balance == predicted_change_points``), as
``tests/unit/test_feed.py`` holds ``window_feed``; ``regroup`` uses the latter."""


async def update(conn: AsyncConnection, changed: Sequence[Changed]) -> None:
    """Feed what these statement changes do to every series they stand on, and keep the
    rolled-up series' tips. Runs before the statements are saved: it reads the series as
    they were. Takes the series' locks, after the caller's statement locks."""
    params: dict[str, list[Any]] = {
        "sids": [],
        "removed": [],
        "actors": [],
        "topics": [],
        "said": [],
        "stances": [],
    }
    for sid, old, new in changed:
        # The body a series held leaves it; the body it holds now joins it.
        for removed, body in ((True, old), (False, new)):
            if body is not None:
                params["sids"].append(sid)
                params["removed"].append(removed)
                params["actors"].append(body.actor_id)
                params["topics"].append(body.topic_id)
                params["said"].append(body.said_at)
                params["stances"].append(body.stance.value)
    if not params["sids"]:
        return
    await lock_series(conn, zip(params["topics"], params["actors"], strict=True))
    await conn.execute(_FEED, params)


async def _feed(
    conn: AsyncConnection, withdrawn: Sequence[ChangePoint], added: Sequence[ChangePoint]
) -> None:
    feed = [{"status": "withdrawn", **p._asdict()} for p in sorted(withdrawn)]
    feed += [{"status": "added", **p._asdict()} for p in sorted(added)]
    if feed:
        for row in feed:
            row["change"] = row["change"].value
        await insert_rows(conn, changes, feed)


_ANY_POINTS_BELOW = sa.text(
    f"""
    SELECT EXISTS (
        SELECT 1 FROM unnest(CAST(:actors AS text[])) AS a(actor_id)
         CROSS JOIN LATERAL ({member_actors("a.actor_id", "true")}) m
          JOIN statements s ON s.actor_id = m.actor_id AND s.visible)
    """
)


async def any_points_below(conn: AsyncConnection, actor_ids: set[str]) -> bool:
    """Whether any of these actors, or anyone below them, has a point on a timeline:
    a visible statement is an own point."""
    return bool(await conn.scalar(_ANY_POINTS_BELOW, {"actors": sorted(actor_ids)}))


_WHOLE_ROLLUPS = sa.text(
    f"""
    SELECT t.topic_id, a.actor_id, p.said_at, p.statement_id, p.stance
      FROM unnest(CAST(:actors AS text[])) AS a(actor_id)
     CROSS JOIN topics t
     CROSS JOIN LATERAL (
        {series_points("t.topic_id", "a.actor_id", "true", "true", "ASC", "ALL")}) p
    """
)

_REBUILD_TIPS = sa.text(
    f"""
    INSERT INTO series_tips (topic_id, actor_id, said_at, statement_id, stance)
    SELECT t.topic_id, a.actor_id, p.said_at, p.statement_id, p.stance
      FROM unnest(CAST(:actors AS text[])) AS a(actor_id)
     CROSS JOIN topics t
     CROSS JOIN LATERAL (
        {series_points("t.topic_id", "a.actor_id", "true", "true", "DESC", "1")}) p
     WHERE {has_descendants("a.actor_id")}
    """
)


async def rebuild_all_tips(conn: AsyncConnection) -> None:
    """Every tip from the statements and the lineage: for a rebuild, into empty tables."""
    trees = await conn.scalars(
        sa.text(f"SELECT a.actor_id FROM actors a WHERE {has_descendants('a.actor_id')}")
    )
    await conn.execute(_REBUILD_TIPS, {"actors": sorted(trees)})


async def whole_rollups(
    conn: AsyncConnection, actors: Iterable[str]
) -> dict[Series, dict[Key, Stance]]:
    """Every point of these actors' rolled-up series, on every topic."""
    points: dict[Series, dict[Key, Stance]] = defaultdict(dict)
    for row in await conn.execute(_WHOLE_ROLLUPS, {"actors": sorted(set(actors))}):
        series = Series(row.topic_id, row.actor_id, True)
        points[series][(row.said_at, row.statement_id)] = Stance(row.stance)
    return points


async def regroup(
    conn: AsyncConnection,
    actors: Iterable[str],
    before: Mapping[Series, dict[Key, Stance]] | None,
) -> None:
    """After the hierarchy changed under ``actors``: their rolled-up series' tips again,
    and, given the series as they were (``before``), the feed of every difference.

    Only under the exclusive hierarchy lock, which keeps every other batch out.
    """
    names = sorted(set(actors))
    await conn.execute(
        sa.text("DELETE FROM series_tips WHERE actor_id = ANY(CAST(:actors AS text[]))"),
        {"actors": names},
    )
    await conn.execute(_REBUILD_TIPS, {"actors": names})
    if before is None:
        return
    after = await whole_rollups(conn, names)
    withdrawn: list[ChangePoint] = []
    added: list[ChangePoint] = []
    for series in sorted(before.keys() | after.keys()):
        old, new = before.get(series, {}), after.get(series, {})
        gone, fresh = window_feed(series, old, old.keys(), new)
        withdrawn += gone
        added += fresh
    await _feed(conn, withdrawn, added)
