"""The write path's series step: lock the series a batch touches, feed their changes, keep tips.

Series are not stored (``store.members``). What a batch must still write is
the changes feed: the change points it added and withdrew, computed by the
domain's ``window_feed`` from a window of each touched series read before
the batch's statements are saved: the points on either side of every key the
batch touches. For an own series that is two index probes per key. For a
rolled-up series the tip (``series_tips``) answers the common case, a key
after the last point, without a probe per descendant; only a late,
corrected or retracted statement probes the merged series around its key.
Any arrival order ends in the same feed entries per series and the same tips.

A leaf actor's rolled-up series is its own series: it has no tip, and its
own series' feed entries are written for both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.domain.catalogue import series_of
from stanceline.domain.facts import StatementBody
from stanceline.domain.feed import ChangePoint, Key, Series, window_feed
from stanceline.domain.stance import Stance
from stanceline.store.arrays import insert_rows
from stanceline.store.locks import lock_keys
from stanceline.store.members import member_actors, series_points
from stanceline.store.tables import changes, series_tips

Changed = tuple[str, StatementBody | None, StatementBody | None]
"""(statement id, the body its series held before the batch, the body they hold after)."""

_LINEAGE = sa.text(
    """
    SELECT l.actor_id, l.ancestor_id, l.depth,
           EXISTS (SELECT 1 FROM actor_lineage d
                    WHERE d.ancestor_id = l.ancestor_id AND d.depth > 0) AS has_descendants
      FROM actor_lineage l
     WHERE l.actor_id = ANY(CAST(:actors AS text[]))
     ORDER BY l.actor_id, l.depth
    """
)

_KEY = "(s.said_at, s.statement_id)"
_AT = '(k.said_at, k.statement_id COLLATE "C")'

_WINDOWS = sa.text(
    f"""
    WITH keys AS (
        SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:actors AS text[]),
                             CAST(:rollups AS boolean[]), CAST(:said AS timestamptz[]),
                             CAST(:sids AS text[]))
            AS k(topic_id, actor_id, rollup, said_at, statement_id)
    ), tipped AS (
        SELECT k.*, t.said_at AS tip_said, t.statement_id AS tip_sid, t.stance AS tip_stance,
               k.rollup AND (t.said_at IS NULL OR (t.said_at, t.statement_id) < {_AT})
                   AS appends
          FROM keys k
          LEFT JOIN series_tips t
            ON k.rollup AND t.topic_id = k.topic_id AND t.actor_id = k.actor_id
    )
    SELECT k.topic_id, k.actor_id, k.rollup, w.said_at, w.statement_id, w.stance
      FROM tipped k
     CROSS JOIN LATERAL (
        SELECT k.tip_said, k.tip_sid, k.tip_stance WHERE k.tip_said IS NOT NULL
        UNION ALL
        SELECT b.* FROM (
            {series_points("k.topic_id", "k.actor_id", "k.rollup", f"{_KEY} < {_AT}", "DESC", "1")}
        ) b WHERE NOT k.appends
        UNION ALL
        SELECT a.* FROM (
            {series_points("k.topic_id", "k.actor_id", "k.rollup", f"{_KEY} > {_AT}", "ASC", "1")}
        ) a WHERE NOT k.appends
     ) AS w(said_at, statement_id, stance)
    """
)
"""Around each touched key of each series, as the series stood before the batch: the
point before it and the point after it (``domain.feed.window_feed``). A rolled-up
series brings its tip; a key past the tip needs nothing more."""

_SAVE_TIPS = (
    "ON CONFLICT (topic_id, actor_id) DO UPDATE SET said_at = EXCLUDED.said_at,"
    " statement_id = EXCLUDED.statement_id, stance = EXCLUDED.stance"
)
_DROP_TIPS = sa.text(
    "DELETE FROM series_tips t USING unnest(CAST(:topics AS text[]), CAST(:actors AS text[]))"
    " AS g(topic_id, actor_id) WHERE t.topic_id = g.topic_id AND t.actor_id = g.actor_id"
)


_STANCES = {s.value: s for s in Stance}


class _Touch(NamedTuple):
    removed: dict[Key, Stance]
    added: dict[Key, Stance]


async def update(conn: AsyncConnection, changed: Sequence[Changed]) -> None:
    """Feed what these statement changes do to every series they stand on, and keep the
    rolled-up series' tips. Runs before the statements are saved: it reads the series as
    they were. Takes the series' locks, after the caller's statement locks."""
    actors = {b.actor_id for _, old, new in changed for b in (old, new) if b is not None}
    if not actors:
        return
    stored, leaves = await _stored_series(conn, actors)
    touches: dict[Series, _Touch] = {}
    for sid, old, new in changed:
        # The body a series held leaves it (side 0, removed); the body it holds now joins it.
        for side, body in enumerate((old, new)):
            if body is None:
                continue
            key = (body.said_at, sid)
            for actor, rollup in stored[body.actor_id]:
                series = Series(body.topic_id, actor, rollup)
                touch = touches.get(series) or touches.setdefault(series, _Touch({}, {}))
                touch[side][key] = body.stance
    ordered = sorted(touches)
    await lock_keys(conn, "series", [f"{t}/{a}/{r}" for t, a, r in ordered])
    windows, open_ended = await _windows(conn, ordered, touches)
    withdrawn: list[ChangePoint] = []
    added: list[ChangePoint] = []
    for series in ordered:
        touch = touches[series]
        gone, fresh = window_feed(series, windows[series], touch.removed, touch.added)
        withdrawn += gone
        added += fresh
    await _feed(conn, _with_leaf_rollups(withdrawn, leaves), _with_leaf_rollups(added, leaves))
    await _save_tips(conn, touches, windows, open_ended)


async def _stored_series(
    conn: AsyncConnection, actors: Iterable[str]
) -> tuple[dict[str, list[tuple[str, bool]]], set[str]]:
    """For each actor, the series its statements stand on that this store keeps apart
    (``catalogue.series_of`` less a leaf's rolled-up series), and which actors are leaves."""
    chains: dict[str, list[str]] = defaultdict(list)
    trees: set[str] = set()
    for actor, ancestor, _depth, has_descendants in await conn.execute(
        _LINEAGE, {"actors": sorted(actors)}
    ):
        chains[actor].append(ancestor)
        if has_descendants:
            trees.add(ancestor)
    stored = {
        # An actor named by a statement in this very batch is a root with no descendants.
        actor: [
            (a, rollup)
            for a, rollup in series_of(chains.get(actor) or [actor])
            if not rollup or a in trees
        ]
        for actor in actors
    }
    return stored, set(actors) - trees


async def _windows(
    conn: AsyncConnection, ordered: Sequence[Series], touches: Mapping[Series, _Touch]
) -> tuple[dict[Series, dict[Key, Stance]], set[Series]]:
    """Each series' window, and the series whose window reaches past its last point.

    The points a batch removes are in the series before it, so they are in the window
    as they were read from the statements (``removed``), with the neighbours the query
    brings around every touched key.
    """
    params: dict[str, list[Any]] = {
        "topics": [],
        "actors": [],
        "rollups": [],
        "said": [],
        "sids": [],
    }
    for series in ordered:
        touch = touches[series]
        for key in touch.removed.keys() | touch.added.keys():
            params["topics"].append(series.topic_id)
            params["actors"].append(series.actor_id)
            params["rollups"].append(series.rollup)
            params["said"].append(key[0])
            params["sids"].append(key[1])
    windows: dict[Series, dict[Key, Stance]] = {s: dict(touches[s].removed) for s in ordered}
    for topic, actor, rollup, said_at, sid, stance in await conn.execute(_WINDOWS, params):
        windows[Series(topic, actor, rollup)][(said_at, sid)] = _STANCES[stance]
    open_ended = set()
    for series in ordered:
        touch = touches[series]
        last = max(touch.removed.keys() | touch.added.keys())
        if all(key <= last for key in windows[series]):
            open_ended.add(series)
    return windows, open_ended


def _with_leaf_rollups(points: list[ChangePoint], leaves: set[str]) -> list[ChangePoint]:
    """A leaf's own change points are its rolled-up series' too."""
    copies = [p._replace(rollup=True) for p in points if not p.rollup and p.actor_id in leaves]
    return points + copies


async def _feed(
    conn: AsyncConnection, withdrawn: Sequence[ChangePoint], added: Sequence[ChangePoint]
) -> None:
    feed = [{"status": "withdrawn", **p._asdict()} for p in sorted(withdrawn)]
    feed += [{"status": "added", **p._asdict()} for p in sorted(added)]
    if feed:
        for row in feed:
            row["change"] = row["change"].value
        await insert_rows(conn, changes, feed)


async def _save_tips(
    conn: AsyncConnection,
    touches: Mapping[Series, _Touch],
    windows: Mapping[Series, dict[Key, Stance]],
    open_ended: set[Series],
) -> None:
    """A rolled-up series' tip moves only when the batch reached its end: then it is the
    last point of the window as the batch leaves it, or there is none left."""
    tips: list[dict[str, Any]] = []
    emptied: list[Series] = []
    for series in sorted(open_ended):
        if not series.rollup:
            continue
        touch = touches[series]
        after = {k: s for k, s in windows[series].items() if k not in touch.removed}
        after.update(touch.added)
        if not after:
            emptied.append(series)
            continue
        last = max(after)
        tips.append(
            {
                "topic_id": series.topic_id,
                "actor_id": series.actor_id,
                "said_at": last[0],
                "statement_id": last[1],
                "stance": after[last].value,
            }
        )
    if tips:
        await insert_rows(conn, series_tips, tips, tail=_SAVE_TIPS)
    if emptied:
        await conn.execute(
            _DROP_TIPS,
            {"topics": [s.topic_id for s in emptied], "actors": [s.actor_id for s in emptied]},
        )


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
     WHERE EXISTS (SELECT 1 FROM ({member_actors("a.actor_id", "true")}) m
                    WHERE m.actor_id <> a.actor_id)
    """
)


async def rebuild_all_tips(conn: AsyncConnection) -> None:
    """Every tip from the statements and the lineage: for a rebuild, into empty tables."""
    trees = await conn.scalars(
        sa.text("SELECT DISTINCT ancestor_id FROM actor_lineage WHERE depth > 0")
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
