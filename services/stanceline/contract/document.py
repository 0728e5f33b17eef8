"""The stored form of an event, and its canonical text."""

from __future__ import annotations

import json
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
# bits, which orjson refuses. Text that may hold such a float (a digit before an
# ``e`` or ``E``, or ``0.0000``) goes the slow way; a test holds the two spellings to
# each other. The digit-before-e test maps every digit to 0 and E to e, then looks for
# ``0e``: a regular expression with the same meaning cost five times as much, a
# twentieth of validating an entry.
_DIGITS_AND_E = bytes.maketrans(b"123456789E", b"000000000e")


def _may_hold_exponent(text: bytes) -> bool:
    return b"0.0000" in text or b"0e" in text.translate(_DIGITS_AND_E)


def canonical_text(document: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 as is: the text event digests have always been
    taken of, so digests already stored keep matching."""
    try:
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = None
    if text is None or _may_hold_exponent(text):
        spelt = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return spelt.encode()
    return text
