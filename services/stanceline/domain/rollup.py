"""Current stances and the *contested* rule over an actor and its descendants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

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
