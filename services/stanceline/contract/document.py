"""The stored form of an event, and its canonical text."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

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
    return canonical_text(event_document(event)).decode()


# orjson writes what ``json.dumps(sort_keys=True, separators=(",", ":"),
# ensure_ascii=False)`` writes, ten times faster, except for floats that Python
# spells with an exponent (orjson writes 1e-05 as 0.00001) and integers beyond 64
# bits, which orjson refuses. Text that may hold such a float goes the slow way;
# a test holds the two spellings to each other.
_MAYBE_EXPONENT = re.compile(rb"[0-9][eE]|0\.0000")


def canonical_text(document: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 as is: the text event digests have always been
    taken of, so digests already stored keep matching."""
    try:
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = None
    if text is None or _MAYBE_EXPONENT.search(text):
        spelt = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return spelt.encode()
    return text
