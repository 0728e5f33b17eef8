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
from dataclasses import dataclass
from datetime import datetime

from stanceline.domain.stance import Change, Stance, change_between

Key = tuple[datetime, str]
"""A point's place in its series: (said_at, statement id)."""


@dataclass(frozen=True, slots=True)
class ChangePoint:
    topic_id: str
    actor_id: str
    rollup: bool
    said_at: datetime
    statement_id: str
    stance: str
    change: Change
    previous_statement_id: str | None
    previous_stance: str | None

    @property
    def key(self) -> tuple[str, str, bool, str]:
        return (self.topic_id, self.actor_id, self.rollup, self.statement_id)


@dataclass(frozen=True, slots=True)
class Series:
    topic_id: str
    actor_id: str
    rollup: bool


def feed_diff(
    before: Iterable[ChangePoint], after: Iterable[ChangePoint]
) -> tuple[list[ChangePoint], list[ChangePoint]]:
    """(withdrawn, added), each in series order; unchanged change points are not repeated."""
    old = {p.key: p for p in before if p.change is not Change.NONE}
    new = {p.key: p for p in after if p.change is not Change.NONE}
    withdrawn = [p for k, p in old.items() if new.get(k) != p]
    added = [p for k, p in new.items() if old.get(k) != p]

    def order(p: ChangePoint) -> tuple[str, str, bool, datetime, str]:
        return (p.topic_id, p.actor_id, p.rollup, p.said_at, p.statement_id)

    return sorted(withdrawn, key=order), sorted(added, key=order)


def window_feed(
    series: Series,
    window: Mapping[Key, Stance],
    removed: Iterable[Key],
    added: Mapping[Key, Stance],
) -> tuple[list[ChangePoint], list[ChangePoint]]:
    """The feed entries of one write to one series, as (withdrawn, added).

    ``window`` holds the series' points before the write: at least the point
    before the smallest touched key, every point from the smallest to the
    largest touched key, and the point after the largest (each where it
    exists). ``removed`` are keys that leave the series, ``added`` keys that
    join it (a key in both changes stance). With the whole series as the
    window and every key touched, this is the whole-timeline difference.
    """
    gone = set(removed)
    touched = gone | set(added)
    after = {k: s for k, s in window.items() if k not in gone} | dict(added)
    return feed_diff(
        _changes_around(series, window, touched), _changes_around(series, after, touched)
    )


def _changes_around(
    series: Series, points: Mapping[Key, Stance], touched: set[Key]
) -> list[ChangePoint]:
    """The change points a write to ``touched`` can have affected: each touched key
    still present, and the point right after each touched key."""
    keys = sorted(points)
    affected: set[int] = set()
    for key in touched:
        after = bisect_right(keys, key)
        if after and keys[after - 1] == key:
            affected.add(after - 1)
        if after < len(keys):
            affected.add(after)
    found = []
    for i in sorted(affected):
        key = keys[i]
        previous = keys[i - 1] if i else None
        previous_stance = points[previous] if previous is not None else None
        change = change_between(previous_stance, points[key])
        if change is Change.NONE:
            continue
        found.append(
            ChangePoint(
                series.topic_id,
                series.actor_id,
                series.rollup,
                key[0],
                key[1],
                points[key].value,
                change,
                previous[1] if previous is not None else None,
                previous_stance.value if previous_stance is not None else None,
            )
        )
    return found
