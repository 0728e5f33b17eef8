"""Which change points a write added or took away: the changes feed's rule.

A point is *in the feed* when it changes the stance of its series. When a
statement arrives, moves, changes stance or disappears, a change point may
appear, disappear, or now explain a different pair of statements; each
difference becomes one feed entry, so a dashboard that follows the feed
always knows the series' current changes.

A point's change kind depends only on the point before it, so a write
affects only its own points and the point right after each of them. That
is what lets the store compute the feed from a *window* around the keys a
batch touches, instead of from whole series: the point before the first
touched key, every point between the first and the last touched key, and
the point after the last. ``window_feed`` is exact on such a window; it is
property-tested against the difference of the whole timelines.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from stanceline.domain.stance import Change, Stance, change_between

Key = tuple[datetime, str]
"""A point's place in its series: (said_at, statement id)."""


class ChangePoint(NamedTuple):
    topic_id: str
    actor_id: str
    rollup: bool
    said_at: datetime
    statement_id: str
    stance: str
    change: Change
    previous_statement_id: str | None
    previous_stance: str | None


class Series(NamedTuple):
    topic_id: str
    actor_id: str
    rollup: bool


def _order(p: ChangePoint) -> tuple[str, str, bool, datetime, str]:
    return (p.topic_id, p.actor_id, p.rollup, p.said_at, p.statement_id)


def feed_diff(
    before: Iterable[ChangePoint], after: Iterable[ChangePoint]
) -> tuple[list[ChangePoint], list[ChangePoint]]:
    """(withdrawn, added), each in series order; unchanged change points are not repeated."""
    old = {_identity(p): p for p in before if p.change is not Change.NONE}
    new = {_identity(p): p for p in after if p.change is not Change.NONE}
    return _difference(old, new)


def _identity(p: ChangePoint) -> tuple[str, str, bool, str]:
    return (p.topic_id, p.actor_id, p.rollup, p.statement_id)


def _difference(
    old: Mapping[Any, ChangePoint], new: Mapping[Any, ChangePoint]
) -> tuple[list[ChangePoint], list[ChangePoint]]:
    withdrawn = [p for k, p in old.items() if new.get(k) != p]
    added = [p for k, p in new.items() if old.get(k) != p]
    return sorted(withdrawn, key=_order), sorted(added, key=_order)


def window_feed(
    series: Series,
    window: Mapping[Key, Stance],
    removed: Iterable[Key],
    added: Mapping[Key, Stance],
) -> tuple[list[ChangePoint], list[ChangePoint]]:
    """The feed entries of one write to one series, as (withdrawn, added).

    ``window`` holds points of the series as it was before the write: at
    least, for every touched key, its own point and the points right before
    and right after it (where they exist); any other true points may be there
    too. ``removed`` are keys that leave the series, ``added`` keys that
    join it (a key in both changes stance). With the whole series as the
    window and every key touched, this is the whole-timeline difference.
    """
    gone = set(removed)
    if not gone and (not window or max(window) < min(added)):
        return [], _appended(series, window, added)
    touched = gone | added.keys()
    after = {k: s for k, s in window.items() if k not in gone}
    after.update(added)
    return _difference(
        _changes_around(series, window, touched), _changes_around(series, after, touched)
    )


def _appended(
    series: Series, window: Mapping[Key, Stance], added: Mapping[Key, Stance]
) -> list[ChangePoint]:
    """Points after the last one: nothing before them changes, so the feed is the change
    points among them, each against the point before it (the write's usual case)."""
    previous = max(window) if window else None
    previous_stance = window[previous] if previous is not None else None
    found = []
    for key in sorted(added):
        stance = added[key]
        change = change_between(previous_stance, stance)
        if change is not Change.NONE and previous is not None and previous_stance is not None:
            found.append(
                ChangePoint(*series, *key, stance.value, change, previous[1], previous_stance.value)
            )
        previous, previous_stance = key, stance
    return found


def _changes_around(
    series: Series, points: Mapping[Key, Stance], touched: set[Key]
) -> dict[str, ChangePoint]:
    """The change points a write to ``touched`` can have affected, by statement id: each
    touched key still present, and the point right after each touched key."""
    keys = sorted(points)
    affected: set[int] = set()
    for key in touched:
        after = bisect_right(keys, key)
        if after and keys[after - 1] == key:
            affected.add(after - 1)
        if after < len(keys):
            affected.add(after)
    topic_id, actor_id, rollup = series
    found = {}
    for i in affected:
        said_at, statement_id = keys[i]
        previous = keys[i - 1] if i else None
        stance = points[keys[i]]
        previous_stance = points[previous] if previous is not None else None
        change = change_between(previous_stance, stance)
        if change is not Change.NONE and previous is not None and previous_stance is not None:
            found[statement_id] = ChangePoint(
                topic_id,
                actor_id,
                rollup,
                said_at,
                statement_id,
                stance.value,
                change,
                previous[1],
                previous_stance.value,
            )
    return found
