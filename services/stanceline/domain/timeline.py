"""A series of statements as a timeline of points, each with its change kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stanceline.domain.facts import StatementBody
from stanceline.domain.stance import Change, Stance, change_between


@dataclass(frozen=True, slots=True)
class Point:
    statement_id: str
    body: StatementBody
    change: Change
    previous_statement_id: str | None


def point_order(statement_id: str, body: StatementBody) -> tuple[datetime, str]:
    """Ties on ``said_at`` are broken by statement id so every reader agrees."""
    return (body.said_at, statement_id)


def timeline(statements: Iterable[tuple[str, StatementBody]]) -> list[Point]:
    ordered = sorted(statements, key=lambda item: point_order(*item))
    points: list[Point] = []
    previous: tuple[str, Stance] | None = None
    for statement_id, body in ordered:
        change = change_between(previous[1] if previous else None, body.stance)
        points.append(Point(statement_id, body, change, previous[0] if previous else None))
        previous = (statement_id, body.stance)
    return points


def as_of(points: list[Point], moment: datetime | None) -> list[Point]:
    """The points said at or before ``moment``; their change kinds stay valid."""
    if moment is None:
        return points
    return [p for p in points if p.body.said_at <= moment]
