"""Turn a failed validation into one short reason that names the field.

Runs only for entries that failed, so it may parse the bytes a second time to
report problems in the order a publisher should fix them: encoding, JSON,
shape, `specversion`, `type`, then the first field error.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, from_json

from stanceline.contract.events import EVENT_TYPES, SPEC_VERSION

ECHO_LIMIT = 80

_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def clip(text: str) -> str:
    """Publisher text made safe to log: escaped, one line, at most ECHO_LIMIT chars."""
    escaped = json.dumps(text, ensure_ascii=True)[1:-1]
    return escaped if len(escaped) <= ECHO_LIMIT else escaped[: ECHO_LIMIT - 1] + "…"


def echo(value: Any) -> str:
    """A JSON value as the publisher wrote it, clipped: `"2.0"` and `2.0` differ."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 1] + "…"


def diagnose(raw: bytes, error: ValidationError) -> tuple[str, str | None]:
    """(reason, field) for an entry that `validate_json` refused."""
    details = error.errors(include_url=False, include_input=False)
    first = details[0] if details else None
    if first is None or first["type"] == "json_invalid":
        return _not_json(raw, first)
    try:
        document = from_json(raw)
    except ValueError:  # validate_json parsed these bytes; this is only belt and braces
        return _field_problem(first)
    shape = _envelope_problem(document)
    if shape is not None:
        return shape
    return _field_problem(first)


def _not_json(raw: bytes, first: ErrorDetails | None) -> tuple[str, str | None]:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"entry is not UTF-8 (invalid byte at offset {error.start})", None
    context = first.get("ctx") if first is not None else None
    detail = context.get("error", "unparseable") if context else "unparseable"
    return f"entry is not JSON: {clip(str(detail))}", None


def _envelope_problem(document: Any) -> tuple[str, str | None] | None:
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "a number")
        return f"entry is {kind}, not a JSON object", None
    if "specversion" not in document:
        return f'specversion: required (CloudEvents "{SPEC_VERSION}")', "specversion"
    if document["specversion"] != SPEC_VERSION or not isinstance(document["specversion"], str):
        found = echo(document["specversion"])
        return f'specversion: unsupported {found}, expected "{SPEC_VERSION}"', "specversion"
    if "type" not in document:
        return "type: required (one of the stanceline.*.v1 event types)", "type"
    event_type = document["type"]
    if event_type not in EVENT_TYPES or not isinstance(event_type, str):
        return f"type: unknown event type {echo(event_type)}", "type"
    return None


def _field_problem(first: ErrorDetails) -> tuple[str, str | None]:
    location = list(first["loc"])
    # A discriminated union puts the chosen tag first; the publisher never wrote it.
    if location and location[0] in EVENT_TYPES:
        location = location[1:]
    field = ".".join(str(part) for part in location) or None
    message = first["msg"].removeprefix("Value error, ")
    return (f"{field}: {message}" if field else message), field
