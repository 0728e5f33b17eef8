"""Rows from the projection, or points from the ``known_at`` fold, as response schemas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from stanceline.cursors import encode_cursor
from stanceline.domain.facts import StatementBody
from stanceline.domain.rollup import contest
from stanceline.domain.stance import Stance
from stanceline.domain.timeline import Point
from stanceline.readmodel import schemas
from stanceline.store.db import Record


def utc(moment: datetime) -> datetime:
    """Events keep the offset they were published with; responses speak UTC, as Postgres does."""
    return moment.astimezone(UTC)


# Rows from the projection tables are typed by their columns already, so they are built
# without validation (``model_construct``): a third of the cost of a point, and a history
# holds up to thousands. Values from the ``known_at`` fold go through validation as usual.


def point_from_row(r: Any) -> schemas.HistoryPoint:
    speaker = (
        schemas.Speaker.model_construct(name=r.speaker_name, role=r.speaker_role)
        if r.speaker_name
        else None
    )
    return schemas.HistoryPoint.model_construct(
        statement_id=r.statement_id,
        actor_id=r.actor_id,
        topic_id=r.topic_id,
        said_at=r.said_at,
        stance=r.stance,
        score=r.score,
        confidence=r.confidence,
        speaker=speaker,
        quote=r.quote,
        source_url=r.source_url,
        published_at=r.published_at,
        speech_act=r.speech_act,
        certainty=r.certainty,
        change=r.change,
        previous_statement_id=r.previous_statement_id,
    )


def point_from_domain(p: Point) -> schemas.HistoryPoint:
    return _from_body(p.statement_id, p.body, p.change.value, p.previous_statement_id)


def point_from_body(statement_id: str, b: StatementBody) -> schemas.HistoryPoint:
    """A statement that is on no timeline (retracted, or not recorded yet)."""
    return _from_body(statement_id, b, "none", None)


def _from_body(
    statement_id: str, b: StatementBody, change: schemas.ChangeKind, previous: str | None
) -> schemas.HistoryPoint:
    speaker = schemas.Speaker(name=b.speaker_name, role=b.speaker_role) if b.speaker_name else None
    return schemas.HistoryPoint(
        statement_id=statement_id,
        actor_id=b.actor_id,
        topic_id=b.topic_id,
        said_at=utc(b.said_at),
        stance=b.stance.value,
        score=b.score,
        confidence=b.confidence,
        speaker=speaker,
        quote=b.quote,
        source_url=b.source_url,
        published_at=utc(b.published_at) if b.published_at else None,
        speech_act=b.speech_act,
        certainty=b.certainty,
        change=change,
        previous_statement_id=previous,
    )


def stance_of(actor_id: str, topic_id: str, p: Point) -> schemas.CurrentStance:
    return schemas.CurrentStance(
        actor_id=actor_id,
        topic_id=topic_id,
        stance=p.body.stance.value,
        score=p.body.score,
        said_at=utc(p.body.said_at),
        statement_id=p.statement_id,
    )


def stance_from_row(r: Any) -> schemas.CurrentStance:
    return schemas.CurrentStance.model_construct(
        actor_id=r.actor_id,
        topic_id=r.topic_id,
        stance=r.stance,
        score=r.score,
        said_at=r.said_at,
        statement_id=r.statement_id,
    )


def current(
    last: schemas.HistoryPoint | schemas.CurrentStance,
    actor_id: str,
    members: Iterable[tuple[str, str]],
) -> schemas.Current:
    """The summary of a series' last point; ``members`` are (actor, stance) of the tree."""
    verdict = contest((a, Stance(s)) for a, s in members)
    return schemas.Current(
        statement_id=last.statement_id,
        actor_id=last.actor_id if isinstance(last, schemas.HistoryPoint) else actor_id,
        said_at=last.said_at,
        stance=last.stance,
        score=last.score,
        contested=verdict.contested,
        supporting=list(verdict.supporting),
        opposing=list(verdict.opposing),
    )


def page_after(
    points: list[schemas.HistoryPoint], after: tuple[datetime, str] | None, limit: int
) -> list[schemas.HistoryPoint]:
    """The fold path pages in memory, with the same keys as the SQL path."""
    if after is not None:
        points = [p for p in points if (p.said_at, p.statement_id) > after]
    return points[:limit]


# A history from the projection is written straight to JSON: its rows are typed by their
# columns already, and a history holds up to thousands of points. The bytes are those
# ``schemas.History`` would dump (same keys in the same order, instants in UTC with a Z,
# floats the same way: a test holds the two equal), so the schema the route documents is
# the answer's, and its ETag does not depend on which path built it.


def point_json(r: Record) -> dict[str, Any]:
    """A ``schemas.HistoryPoint`` as a dict, from a row of ``queries.read_series``."""
    name = r["speaker_name"]
    return {
        "statement_id": r["statement_id"],
        "actor_id": r["actor_id"],
        "topic_id": r["topic_id"],
        "said_at": r["said_at"],
        "stance": r["stance"],
        "score": r["score"],
        "confidence": r["confidence"],
        "speaker": {"name": name, "role": r["speaker_role"]} if name else None,
        "quote": r["quote"],
        "source_url": r["source_url"],
        "published_at": r["published_at"],
        "speech_act": r["speech_act"],
        "certainty": r["certainty"],
        "change": r["change"],
        "previous_statement_id": r["previous_statement_id"],
    }


def history_json(
    *,
    actor_id: str,
    topic_id: str,
    include_descendants: bool,
    as_of: datetime | None,
    points: Sequence[Record],
    last: Record | None,
    members: Iterable[tuple[str, str]],
    limit: int,
) -> bytes:
    """A ``schemas.History`` (without ``known_at``) as JSON bytes, from the rows of
    ``queries.read_series``."""
    current = None
    if last is not None:
        verdict = contest((a, Stance(s)) for a, s in members)
        current = {
            "statement_id": last["statement_id"],
            "actor_id": last["actor_id"],
            "said_at": last["said_at"],
            "stance": last["stance"],
            "score": last["score"],
            "contested": verdict.contested,
            "supporting": list(verdict.supporting),
            "opposing": list(verdict.opposing),
        }
    next_cursor = None
    if points and len(points) == limit:
        end = points[-1]
        next_cursor = encode_cursor(end["said_at"].isoformat(), end["statement_id"])
    return orjson.dumps(
        {
            "actor_id": actor_id,
            "topic_id": topic_id,
            "include_descendants": include_descendants,
            "as_of": as_of,
            "known_at": None,
            "points": [point_json(r) for r in points],
            "current": current,
            "next_cursor": next_cursor,
        },
        option=orjson.OPT_UTC_Z,
    )


def change_entry(r: Any) -> schemas.ChangeEntry:
    """A row of the changes feed as ``/v1/changes`` and ``/v1/stream`` both serve it."""
    return schemas.ChangeEntry(
        status=r.status,
        actor_id=r.actor_id,
        topic_id=r.topic_id,
        include_descendants=r.rollup,
        said_at=r.said_at,
        statement_id=r.statement_id,
        change=r.change,
        stance=r.stance,
        previous_statement_id=r.previous_statement_id,
        previous_stance=r.previous_stance,
        recorded_at=r.recorded_at,
    )
