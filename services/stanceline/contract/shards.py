"""Which stream key an entry goes to when the stream is split into shards.

Part of the contract because every publisher, in any language, must route the
same way (docs/publishing.md restates the rule in Python and Node.js, and a
test holds both to this module). Routing only spreads load: the projection is
order-independent, so an entry is correct on any shard.

Names: with one shard the stream keeps its name (``stanceline:statements``);
with N > 1, shard i is ``<stream>:{<tag>}``, where ``<tag>`` is ``SHARD_TAGS[i]``.
The braces are a Redis Cluster hash tag: only the tag decides the key's slot.
The tags are chosen so that the first N of them spread over the masters of
an evenly split cluster (no master of three holds more than N/3 rounded up;
with 2, 4, 6 or 8 masters, at most one more), and each starts with its shard
number so an operator reads it. A tag shared by every shard (``{stanceline:statements}:0``) would
put them all in one slot, on one master.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SHARD_TAGS = (
    "0a", "1a", "2a", "3a", "4g", "5c", "6c", "7c",
    "8d", "9d", "10b", "11c", "12a", "13u", "14a", "15i",
)  # fmt: skip
"""Found once by a greedy search over ``<i><letters>``: each next tag is the one that keeps
every master count of 2 to 8 evenly split masters the most even (`tests/unit/test_shards.py`
holds the spread)."""

MAX_SHARDS = len(SHARD_TAGS)


def shard_streams(stream: str, shards: int) -> list[str]:
    """The stream keys of a stream split into ``shards``; one shard is the stream itself."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"a stream has 1 to {MAX_SHARDS} shards, not {shards}")
    if shards == 1:
        return [stream]
    return [f"{stream}:{{{tag}}}" for tag in SHARD_TAGS[:shards]]


def shard_key(line: bytes) -> bytes:
    """What an entry is routed by: its ``data.actor_id`` when it has one (statements,
    actor registrations), else its event ``id`` (retractions, topic registrations),
    else the line itself (an entry that is not an event still goes somewhere)."""
    try:
        document: Any = json.loads(line)
    except ValueError:
        return line
    if not isinstance(document, dict):
        return line
    data = document.get("data")
    if isinstance(data, dict) and isinstance(data.get("actor_id"), str):
        return str(data["actor_id"]).encode()
    if isinstance(document.get("id"), str):
        return str(document["id"]).encode()
    return line


def shard_of(key: bytes, shards: int) -> int:
    """The shard for a routing key: the first 8 bytes of its SHA-256, big-endian, mod N.

    SHA-256 because every language has it in its standard library, so the rule is
    the same few lines everywhere.
    """
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % shards


def route(stream: str, shards: int, line: bytes) -> str:
    """The stream key ``line`` is published to."""
    return shard_streams(stream, shards)[shard_of(shard_key(line), shards)]


def selected(spec: str | None, shards: int) -> list[int]:
    """The shards a projector reads: all of them, or those ``spec`` names (``0-3,6``)."""
    if spec is None or not spec.strip():
        return list(range(shards))
    chosen: set[int] = set()
    for part in spec.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise ValueError(f"STANCELINE_SHARDS: {part.strip()!r} is not N or N-M") from None
        if not 0 <= first <= last < shards:
            raise ValueError(
                f"STANCELINE_SHARDS: {part.strip()!r} is outside 0-{shards - 1} "
                f"(STANCELINE_STREAM_SHARDS is {shards})"
            )
        chosen.update(range(first, last + 1))
    return sorted(chosen)
