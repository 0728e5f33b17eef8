"""Roll-ups over timelines: current stances, *contested*, calendar buckets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from stanceline.domain.stance import Stance
from stanceline.domain.timeline import Point


@dataclass(frozen=True, slots=True)
class Contest:
    contested: bool
    supporting: tuple[str, ...]
    opposing: tuple[str, ...]


def current(points: list[Point], moment: datetime | None = None) -> Point | None:
    """The last point said at or before ``moment`` (points are in timeline order)."""
    for point in reversed(points):
        if moment is None or point.body.said_at <= moment:
            return point
    return None


def contest(current_by_actor: Iterable[tuple[str, Stance]]) -> Contest:
    """Contested when the actor's own and descendants' current stances take both sides."""
    pairs = sorted(current_by_actor)
    supporting = tuple(a for a, s in pairs if s is Stance.SUPPORT)
    opposing = tuple(a for a, s in pairs if s is Stance.OPPOSE)
    return Contest(bool(supporting and opposing), supporting, opposing)


BucketUnit = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    mean_score: float | None
    """Confidence-weighted mean; None when every point has confidence 0."""
    count: int
    last_stance: Stance
    last_statement_id: str


def bucket_start(moment: datetime, unit: BucketUnit) -> datetime:
    """Calendar buckets in UTC; weeks start on Monday (ISO 8601, like Postgres)."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def buckets(points: list[Point], unit: BucketUnit) -> list[Bucket]:
    """Roll a timeline (in timeline order) up into calendar buckets."""
    groups: dict[datetime, list[Point]] = {}
    for point in points:
        groups.setdefault(bucket_start(point.body.said_at, unit), []).append(point)
    result = []
    for start, members in sorted(groups.items()):
        weight = sum(p.body.confidence for p in members)
        weighted = sum(p.body.score * p.body.confidence for p in members)
        result.append(
            Bucket(
                start=start,
                mean_score=weighted / weight if weight else None,
                count=len(members),
                last_stance=members[-1].body.stance,
                last_statement_id=members[-1].statement_id,
            )
        )
    return result
