"""Building v1 events for tests, as dicts (wire form) and as parsed contract events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from stanceline.contract import Event, Rejection, parse_event

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
