"""Bytes from a stream entry in, a v1 event or a rejection reason out.

`parse_event` is total: whatever the bytes, it returns, so the projector can
dead-letter a bad entry with a reason instead of losing it. The happy path is
one `validate_json` call; the work of explaining a failure is only done for
entries that fail.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from stanceline.contract.data import StatementData
from stanceline.contract.diagnose import clip, diagnose
from stanceline.contract.events import (
    EVENT_ADAPTER,
    FUTURE_TOLERANCE,
    MAX_ENTRY_BYTES,
    Event,
    StatementCorrected,
    StatementRecorded,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an entry is not a valid v1 event; `field` is a dotted path or None."""

    reason: str
    field: str | None


def parse_event(raw: bytes, *, now: datetime) -> Event | Rejection:
    """Validate one entry against the v1 contract.

    `now` is the moment the entry is being recorded (timezone-aware); it
    bounds how far in the future a statement's `said_at` may lie.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if len(raw) > MAX_ENTRY_BYTES:
        return Rejection(
            f"entry is {len(raw)} bytes, over the limit of {MAX_ENTRY_BYTES} bytes (64 KiB)",
            None,
        )
    try:
        event = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as error:
        reason, field = diagnose(raw, error)
        return Rejection(reason, field)
    return _semantic_rejection(event, raw, now) or event


def _semantic_rejection(event: Event, raw: bytes, now: datetime) -> Rejection | None:
    """Checks that the models cannot make: they need `now`, or see only extras."""
    for path, value in _extras(event):
        if isinstance(value, float) and not math.isfinite(value):
            field = clip(path)
            return Rejection(f"{field}: NaN and Infinity are not JSON numbers", field)
    # Postgres text and jsonb cannot hold U+0000; the JSON escape is the only
    # way it can arrive, so the walk runs only when the escape is present.
    if b"\\u0000" in raw:
        nul_at = _first_nul(event)
        if nul_at is not None:
            field = clip(nul_at)
            return Rejection(f"{field}: contains U+0000, which cannot be stored", field)
    # Exact types: isinstance through pydantic's ABC metaclass is slow, once per event.
    if type(event) is StatementRecorded or type(event) is StatementCorrected:
        ahead = event.data.said_at - now
        if ahead > FUTURE_TOLERANCE:
            hours = FUTURE_TOLERANCE / timedelta(hours=1)
            return Rejection(
                f"data.said_at: {event.data.said_at.isoformat()} is more than {hours:g} hours "
                f"after the entry was recorded ({now.isoformat()})",
                "data.said_at",
            )
    return None


def _extras(event: Event) -> Iterator[tuple[str, Any]]:
    """Every value under an unknown field, with its dotted path."""
    models: list[tuple[str, BaseModel]] = [("", event), ("data.", event.data)]
    # Not getattr(data, "speaker"): on other payloads that would find an extra.
    if type(event.data) is StatementData and event.data.speaker is not None:
        models.append(("data.speaker.", event.data.speaker))
    for prefix, model in models:
        for key, value in (model.model_extra or {}).items():
            yield from _walk(f"{prefix}{key}", value)


def _walk(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(f"{path}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(f"{path}.{index}", item)


def _first_nul(event: Event) -> str | None:
    for key, value in event.model_dump(mode="python").items():
        for path, item in _walk(key, value):
            if "\x00" in path or (isinstance(item, str) and "\x00" in item):
                return path
    return None
