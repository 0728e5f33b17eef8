"""The v1 contract as an AsyncAPI 3.0 document, built from the generated JSON Schemas.

A publisher's tooling (AsyncAPI Studio, code generators) reads one document
that names the stream, the entry field and the five messages; its payloads are
the JSON Schemas of `contract.schemas`, moved under `components/schemas` because
AsyncAPI resolves `$ref` against the whole document, not against each schema's
own `$id`. The stream name and the entry field belong to layers above the
contract, so the caller passes them in.

The YAML is written here rather than by PyYAML so the command needs nothing
beyond the service's own dependencies; the document is plain data (mappings,
lists, strings, numbers, booleans, null), and a test reads it back with a real
YAML parser.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from stanceline.contract.events import EVENT_TYPES, FUTURE_TOLERANCE, MAX_ENTRY_BYTES
from stanceline.contract.schemas import EVENT_WORDS, event_schemas

ASYNCAPI_VERSION: Final = "3.0.0"
CONTENT_TYPE: Final = "application/cloudevents+json"
"""CloudEvents' media type for an event in structured JSON form, which an entry holds."""

CHANNEL: Final = "statements"
OPERATION: Final = "projectEvents"
FIELD_EXTENSION: Final = "x-stanceline-entry-field"
"""Where the document names the entry field: AsyncAPI's Redis bindings define no fields."""


def asyncapi_document(
    *,
    stream: str,
    field: str,
    examples: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The document for a stream (its default name) and the entry field events travel in.

    ``examples`` (event type to example events) are shown under each message.
    """
    schemas = event_schemas()
    components: dict[str, Any] = {}
    for event_type in EVENT_TYPES:
        schema = schemas[event_type]
        for name, definition in schema["$defs"].items():
            known = components.setdefault(name, _relocated(definition))
            if known != _relocated(definition):
                raise ValueError(f"the event schemas disagree on {name}")
        components[event_type] = _relocated(
            {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
        )
    shared = sorted(name for name in components if name not in EVENT_TYPES)
    messages = {
        event_type: _message(event_type, (examples or {}).get(event_type, ()))
        for event_type in EVENT_TYPES
    }
    hours = FUTURE_TOLERANCE / timedelta(hours=1)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "stanceline",
            "version": "1.0.0",
            "description": (
                "The v1 events that upstream services publish to stanceline. Each is a"
                " CloudEvents 1.0 event in structured JSON form (UTF-8, at most"
                f" {MAX_ENTRY_BYTES} bytes), one per stream entry. `id` is the idempotency"
                " key: an event published again with the same id and body is stored once."
                " Events may arrive in any order; corrections and registrations are"
                " ordered by (`time`, `id`). A statement's `said_at` may lie at most"
                f" {hours:g} hours after the event is recorded. An entry that is not a"
                " valid event is kept as a dead letter with the reason, never dropped."
                " Generated from the code by `stanceline contracts write`; the JSON Schemas"
                " are also under contracts/schemas/."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "redis": {
                "host": "127.0.0.1:6379",
                "protocol": "redis",
                "description": (
                    "The Redis that stanceline reads (STANCELINE_REDIS_URL); this host is"
                    " only an example."
                ),
            }
        },
        "channels": {
            CHANNEL: {
                "address": stream,
                "title": "The statement stream",
                "description": (
                    f"A Redis stream, `{stream}` unless STANCELINE_STREAM names another."
                    f" Each event is one entry whose field `{field}` holds the event's JSON"
                    f" text: `XADD {stream} * {field} '<event JSON>'`. An entry without"
                    " that field is dead-lettered. Publishers should not trim the stream"
                    " (XADD MAXLEN or MINID): an entry trimmed before the projectors read it"
                    " is lost."
                ),
                "messages": {
                    event_type: {"$ref": f"#/components/messages/{event_type}"}
                    for event_type in EVENT_TYPES
                },
                FIELD_EXTENSION: field,
            }
        },
        "operations": {
            OPERATION: {
                "action": "receive",
                "title": "Project the v1 events",
                "summary": (
                    "stanceline's projectors read the stream in a consumer group, store each"
                    " event and project it; an entry is acknowledged only after it is stored."
                ),
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "messages": [
                    {"$ref": f"#/channels/{CHANNEL}/messages/{event_type}"}
                    for event_type in EVENT_TYPES
                ],
            }
        },
        "components": {
            "messages": messages,
            "schemas": {name: components[name] for name in [*shared, *EVENT_TYPES]},
        },
    }


def _message(event_type: str, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    title, meaning = EVENT_WORDS[event_type]
    message: dict[str, Any] = {
        "name": event_type,
        "title": title,
        "summary": meaning,
        "payload": {"$ref": f"#/components/schemas/{event_type}"},
    }
    if examples:
        message["examples"] = [
            {"name": str(example["id"]), "payload": example} for example in examples
        ]
    return message


def _relocated(node: Any) -> Any:
    """A copy whose `#/$defs/...` references point under `#/components/schemas/`."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/$defs/", "#/components/schemas/", 1)
                if key == "$ref" and isinstance(value, str)
                else _relocated(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_relocated(item) for item in node]
    return node


# --- YAML ----------------------------------------------------------------------------

# A string is written bare only when no YAML 1.1 or 1.2 reader could take it for
# anything else; every other string is written as a JSON string, which YAML's
# double-quoted style reads the same.
_BARE = re.compile(r"[A-Za-z$][A-Za-z0-9 ._/$+-]*")
_BARE_KEY = re.compile(r"[A-Za-z$][A-Za-z0-9._$-]*")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def to_yaml(document: Mapping[str, Any]) -> str:
    """Block-style YAML of plain data, deterministic, one final newline."""
    return "\n".join(_lines(document, 0)) + "\n"


_WIDTH = 100


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            bare = _BARE_KEY.fullmatch(key) and key.lower() not in _RESERVED
            head = f"{pad}{key if bare else _quoted(key)}:"
            if _is_block(item, len(head)):
                lines.append(head)
                lines.extend(_lines(item, indent + 2))
            else:
                lines.extend(_inline(head, item, indent))
        return lines or [pad + "{}"]
    if isinstance(value, list):
        lines = []
        for item in value:
            if _is_block(item, indent + 1):
                nested = _lines(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.extend(_inline(f"{pad}-", item, indent))
        return lines or [pad + "[]"]
    return [pad + _scalar(value)]


def _is_block(value: Any, head: int) -> bool:
    """Mappings always, lists of scalars only when they do not fit on the line."""
    if isinstance(value, Mapping):
        return bool(value)
    if isinstance(value, list):
        return bool(value) and (
            not all(_is_scalar(item) for item in value) or head + 1 + len(_flow(value)) > _WIDTH
        )
    return False


def _inline(head: str, value: Any, indent: int) -> list[str]:
    """``head value``; a long string folds over lines (``>-``), a short list flows."""
    if isinstance(value, list):
        return [f"{head} {_flow(value)}"]
    text = _scalar(value)
    if len(head) + 1 + len(text) <= _WIDTH or not _foldable(value):
        return [f"{head} {text}"]
    width = max(_WIDTH - indent - 2, 40)
    folded = textwrap.wrap(value, width, break_long_words=False, break_on_hyphens=False)
    return [f"{head} >-", *(" " * (indent + 2) + line for line in folded)]


def _foldable(value: Any) -> bool:
    """Prose that folding gives back as is: one line, single spaces, none at either end."""
    return (
        isinstance(value, str)
        and " " in value
        and value == value.strip()
        and "  " not in value
        and all(character.isprintable() for character in value)
    )


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list)


def _flow(items: list[Any]) -> str:
    return "[" + ", ".join(_scalar(item) for item in items) + "]"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return json.dumps(value)
    if isinstance(value, float):
        # YAML 1.1 readers (PyYAML) take 1e-05 for a string: its floats need a dot.
        mantissa, e, exponent = json.dumps(value).partition("e")
        return f"{mantissa}{'' if '.' in mantissa else '.0'}{e}{exponent}"
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    text = str(value)
    bare = _BARE.fullmatch(text) and not text.endswith(" ") and text.lower() not in _RESERVED
    return text if bare else _quoted(text)


def _quoted(text: str) -> str:
    """A double-quoted YAML string; what is not printable is escaped, so that no
    reader sees a line break (U+2028, U+0085) or a character it refuses (U+007F)."""
    return '"' + "".join(_escaped(character) for character in text) + '"'


def _escaped(character: str) -> str:
    if character in ('"', "\\"):
        return "\\" + character
    if character.isprintable():
        return character
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
