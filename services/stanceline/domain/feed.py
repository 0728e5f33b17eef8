"""Which change points a recomputation added or took away: the changes feed's rule.

A point is *in the feed* when it changes the stance of its series. When a
late statement or a retraction rewrites a series, a change point may appear,
disappear, or now explain a different pair of statements; each difference
becomes one feed entry, so a dashboard that follows the feed always knows
the series' current changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stanceline.domain.stance import Change


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
