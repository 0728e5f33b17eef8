"""Building v1 events for tests, as dicts (wire form) and as parsed contract events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from stanceline.contract import Event, Rejection, parse_event
from stanceline.domain.facts import (
    ActorRegistered,
    Fact,
    StatementBody,
    StatementCorrected,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def envelope(event_id: str, type_: str, time: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:test",
        "type": f"stanceline.{type_}.v1",
        "time": time,
        "data": data,
    }


def statement(
    event_id: str,
    statement_id: str,
    actor_id: str,
    topic_id: str,
    stance: str,
    said_at: str,
    *,
    kind: str = "statement.recorded",
    time: str = "2025-01-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    data = {
        "statement_id": statement_id,
        "actor_id": actor_id,
        "topic_id": topic_id,
        "stance": stance,
        "said_at": said_at,
        **extra,
    }
    return envelope(event_id, kind, time, data)


def retraction(
    event_id: str, statement_id: str, time: str = "2025-06-01T00:00:00Z"
) -> dict[str, Any]:
    return envelope(event_id, "statement.retracted", time, {"statement_id": statement_id})


def actor(
    event_id: str, actor_id: str, parent_id: str | None = None, time: str = "2023-01-01T00:00:00Z"
) -> dict[str, Any]:
    data: dict[str, Any] = {"actor_id": actor_id, "name": actor_id.upper(), "kind": "organisation"}
    if parent_id is not None:
        data["parent_id"] = parent_id
    return envelope(event_id, "actor.registered", time, data)


def raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def parsed(document: dict[str, Any] | bytes) -> Event:
    result = parse_event(document if isinstance(document, bytes) else raw(document), now=NOW)
    assert not isinstance(result, Rejection), result
    return result


def event_of(fact: Fact) -> dict[str, Any]:
    """The v1 event an upstream would publish for a domain fact (for property tests)."""
    time = fact.time.isoformat()
    match fact:
        case StatementRecorded() | StatementCorrected():
            kind = (
                "statement.recorded"
                if isinstance(fact, StatementRecorded)
                else "statement.corrected"
            )
            data = {"statement_id": fact.statement_id, **_body_data(fact.body)}
            return envelope(fact.event_id, kind, time, data)
        case StatementRetracted():
            retracted = {"statement_id": fact.statement_id, "reason": fact.reason}
            return envelope(fact.event_id, "statement.retracted", time, retracted)
        case ActorRegistered():
            registered = {
                "actor_id": fact.actor_id,
                "name": fact.name,
                "kind": fact.kind,
                "parent_id": fact.parent_id,
                "aliases": list(fact.aliases),
            }
            return envelope(fact.event_id, "actor.registered", time, registered)
        case TopicRegistered():
            topic = {
                "topic_id": fact.topic_id,
                "title": fact.title,
                "kind": fact.kind,
                "description": fact.description,
            }
            return envelope(fact.event_id, "topic.registered", time, topic)


def _body_data(body: StatementBody) -> dict[str, Any]:
    speaker = {"name": body.speaker_name, "role": body.speaker_role} if body.speaker_name else None
    data = {
        "actor_id": body.actor_id,
        "topic_id": body.topic_id,
        "said_at": body.said_at.isoformat(),
        "stance": body.stance.value,
        "score": body.score,
        "confidence": body.confidence,
        "speaker": speaker,
        "quote": body.quote,
        "source_url": body.source_url,
        "published_at": body.published_at.isoformat() if body.published_at else None,
        "speech_act": body.speech_act,
        "certainty": body.certainty,
    }
    return {k: v for k, v in data.items() if v is not None}
