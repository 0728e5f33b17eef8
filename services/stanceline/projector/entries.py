"""From a Redis stream entry's fields to the bytes of one v1 event.

Upstream publishers write the event JSON in the ``event`` field; FastStream's
own publisher writes ``__data__`` in its binary format (or as plain bytes).
Nothing here decodes text: bytes that are not UTF-8 must reach the contract
check, and from there the dead-letter table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from faststream.redis.parser import BinaryMessageFormatV1

from stanceline.store.records import Rejected

EVENT_FIELD = b"event"
FASTSTREAM_FIELD = b"__data__"


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str
    raw: bytes


def entry_bytes(entry_id: str, fields: dict[bytes, bytes]) -> Entry | Rejected:
    if EVENT_FIELD in fields:
        return Entry(entry_id, fields[EVENT_FIELD])
    if FASTSTREAM_FIELD in fields:
        return Entry(entry_id, _unwrap_faststream(fields[FASTSTREAM_FIELD]))
    return Rejected(
        raw=_fields_as_bytes(fields),
        reason="event: the stream entry has no 'event' field",
        field="event",
        stream_entry_id=entry_id,
    )


def _unwrap_faststream(value: bytes) -> bytes:
    """Only FastStream's binary envelope is unwrapped (its magic header says so).

    FastStream's own parser would also unwrap any JSON whose ``data`` is a
    string (a legacy envelope), silently rewriting a CloudEvent; we do not.
    """
    if value.startswith(BinaryMessageFormatV1.IDENTITY_HEADER):
        body, _headers = BinaryMessageFormatV1.parse(value)
        return body
    return value


def _fields_as_bytes(fields: dict[bytes, bytes]) -> bytes:
    """Keep every field, losslessly enough to read and redrive by hand."""
    readable = {
        k.decode("utf-8", "backslashreplace"): v.decode("utf-8", "backslashreplace")
        for k, v in fields.items()
    }
    return json.dumps(readable, ensure_ascii=False).encode()
