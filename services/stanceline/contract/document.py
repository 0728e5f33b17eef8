"""The stored form of an event, and its canonical text."""

from __future__ import annotations

import json
from typing import Any

from stanceline.contract.events import Event


def event_document(event: Event) -> dict[str, Any]:
    """The JSON-able document the store keeps: every field, extras included.

    Absent optional fields come out as `null`, so a document parses back to an
    equal event.
    """
    return event.model_dump(mode="json", exclude_none=False)


def canonical_json(event: Event) -> str:
    """Deterministic text of an event, for telling "same id, same body" apart
    from "same id, different body".

    Two entries that differ only in key order, whitespace, `-1` against `-1.0`,
    or an explicit `null` against an absent optional field give the same text.
    """
    return json.dumps(
        event_document(event),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
