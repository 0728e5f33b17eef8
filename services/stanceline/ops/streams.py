"""Where a stream stands in Redis: its length, its consumer groups, their lag, per shard.

Lag, per group, is what the group has not been handed yet: the entries after its
last-delivered id (Redis 7's own ``lag`` when it reports one; counted with
``XRANGE`` otherwise, as Redis 6.2 has no such field), and in seconds, the age of
the oldest of them by the Redis clock (an entry id's first part is the
millisecond Redis stored it). Entries handed out but not acknowledged yet are
*pending*, reported beside it, never counted as lag.

A sharded stream (``STANCELINE_STREAM_SHARDS``) is reported per shard, each
stream key with its own groups, and in total: lengths, lag and pending summed,
ages the oldest of any shard.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, Field
from redis.exceptions import ResponseError

from stanceline.contract.shards import shard_streams
from stanceline.redis_client import RedisClient

_COUNT_CHUNK = 1000


class Consumer(BaseModel):
    name: str
    pending: int
    idle_seconds: float = Field(description="Since the consumer last read or claimed.")


class Group(BaseModel):
    name: str
    exists: bool = Field(
        True,
        description="false: the configured group has not been created yet (no projector has "
        "started); its lag is then the whole stream, which a projector will read from 0.",
    )
    last_delivered_id: str | None = Field(
        description="null: the group does not exist yet, or this is the total of several"
        " shards (each shard has its own)."
    )
    consumers: list[Consumer]
    pending: int = Field(description="Delivered to a consumer, not acknowledged yet.")
    oldest_pending_seconds: float | None
    lag_entries: int = Field(description="Entries after the last-delivered id.")
    lag_seconds: float = Field(description="Age of the oldest of them; 0 without lag.")


class ShardStatus(BaseModel):
    name: str = Field(description="The shard's stream key.")
    exists: bool
    length: int
    first_entry_id: str | None
    last_entry_id: str | None
    groups: list[Group]


class StreamStatus(ShardStatus):
    name: str = Field(description="The stream's configured name (STANCELINE_STREAM).")
    length: int = Field(description="Entries in all its shards.")
    shards: list[ShardStatus] = Field(
        default_factory=list,
        description="Each stream key, with its own groups; one shard is the stream itself.",
    )


async def sharded_info(
    client: RedisClient, stream: str, group: str | None = None, shards: int = 1
) -> StreamStatus:
    """Each shard's `stream_info`, and their total."""
    parts = [await stream_info(client, key, group) for key in shard_streams(stream, shards)]
    if shards == 1:
        (only,) = parts
        return only.model_copy(update={"shards": [ShardStatus(**_fields(only))]})
    firsts = [p.first_entry_id for p in parts if p.first_entry_id]
    lasts = [p.last_entry_id for p in parts if p.last_entry_id]
    names = list(dict.fromkeys(g.name for p in parts for g in p.groups))
    return StreamStatus(
        name=stream,
        exists=any(p.exists for p in parts),
        length=sum(p.length for p in parts),
        first_entry_id=min(firsts, key=_entry_key) if firsts else None,
        last_entry_id=max(lasts, key=_entry_key) if lasts else None,
        groups=[_total([g for p in parts for g in p.groups if g.name == n]) for n in names],
        shards=[ShardStatus(**_fields(p)) for p in parts],
    )


def _fields(part: StreamStatus) -> dict[str, Any]:
    return part.model_dump(exclude={"shards"})


def _total(groups: list[Group]) -> Group:
    """One group over every shard: counts summed, ages the oldest, consumers merged."""
    consumers: dict[str, Consumer] = {}
    for c in (c for g in groups for c in g.consumers):
        seen = consumers.get(c.name)
        consumers[c.name] = (
            c
            if seen is None
            else Consumer(
                name=c.name,
                pending=seen.pending + c.pending,
                idle_seconds=min(seen.idle_seconds, c.idle_seconds),
            )
        )
    pending_ages = [g.oldest_pending_seconds for g in groups if g.oldest_pending_seconds]
    return Group(
        name=groups[0].name,
        exists=all(g.exists for g in groups),
        last_delivered_id=groups[0].last_delivered_id if len(groups) == 1 else None,
        consumers=list(consumers.values()),
        pending=sum(g.pending for g in groups),
        oldest_pending_seconds=max(pending_ages) if pending_ages else None,
        lag_entries=sum(g.lag_entries for g in groups),
        lag_seconds=max(g.lag_seconds for g in groups),
    )


async def stream_info(client: RedisClient, stream: str, group: str | None = None) -> StreamStatus:
    """The stream and its groups; ``group``, if it does not exist, as a missing one."""
    try:
        info = await client.xinfo_stream(stream)
    except ResponseError as exc:
        if "no such key" not in str(exc).lower():
            raise
        return StreamStatus(
            name=stream,
            exists=False,
            length=0,
            first_entry_id=None,
            last_entry_id=None,
            groups=[] if group is None else [_missing_group(group, 0, 0.0)],
        )
    first, last = _entry_id(info.get("first-entry")), _entry_id(info.get("last-entry"))
    length = int(info["length"])
    seconds, micros = await client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    groups = []
    for found in await client.xinfo_groups(stream):
        name = _text(found["name"])
        delivered = _text(found["last-delivered-id"])
        reported = found.get("lag")  # Redis 7 and later, when it can tell
        lag, oldest = await undelivered(
            client,
            stream,
            delivered,
            length,
            first,
            last,
            known=reported if isinstance(reported, int) else None,
        )
        pending = int(found["pending"])
        oldest_pending = (await client.xpending(stream, name))["min"] if pending else None
        groups.append(
            Group(
                name=name,
                last_delivered_id=delivered,
                consumers=[
                    Consumer(
                        name=_text(c["name"]),
                        pending=int(c["pending"]),
                        idle_seconds=c["idle"] / 1000,
                    )
                    for c in await client.xinfo_consumers(stream, name)
                ],
                pending=pending,
                oldest_pending_seconds=(
                    _age(now_ms, _text(oldest_pending)) if oldest_pending else None
                ),
                lag_entries=lag,
                lag_seconds=_age(now_ms, oldest) if oldest else 0.0,
            )
        )
    if group is not None and all(g.name != group for g in groups):
        # A projector creates it at 0: everything in the stream is still to be handed out.
        groups.append(_missing_group(group, length, _age(now_ms, first) if first else 0.0))
    return StreamStatus(
        name=stream,
        exists=True,
        length=length,
        first_entry_id=first,
        last_entry_id=last,
        groups=groups,
    )


def _missing_group(name: str, lag: int, lag_seconds: float) -> Group:
    return Group(
        name=name,
        exists=False,
        last_delivered_id=None,
        consumers=[],
        pending=0,
        oldest_pending_seconds=None,
        lag_entries=lag,
        lag_seconds=lag_seconds,
    )


async def undelivered(
    client: RedisClient,
    stream: str,
    delivered: str,
    length: int,
    first: str | None,
    last: str | None,
    *,
    known: int | None = None,
) -> tuple[int, str | None]:
    """(entries after ``delivered``, the oldest of them).

    Neither end of the stream needs a scan, nor does a count that Redis already
    reported (``known``); otherwise the entries are counted a chunk at a time.
    """
    if first is None or last is None or _entry_key(delivered) >= _entry_key(last):
        return 0, None
    if _entry_key(delivered) < _entry_key(first):
        return length, first
    if known is not None:
        head = cast(
            "list[tuple[bytes, Any]]",
            await client.xrange(stream, min=f"({delivered}", max="+", count=1),
        )
        if head:
            return known, _text(head[0][0])
    count, oldest, cursor = 0, None, f"({delivered}"
    while True:
        batch = await client.xrange(stream, min=cursor, max="+", count=_COUNT_CHUNK)
        if not batch:
            return count, oldest
        oldest = oldest or _text(batch[0][0])
        count += len(batch)
        cursor = f"({_text(batch[-1][0])}"


def _entry_key(entry_id: str) -> tuple[int, int]:
    """An entry id Redis handed back (always ``MS-SEQ``) as Redis orders it.

    Not ``ops.replay.entry_key``, which also parses what operators type: importing
    it would load the projector into the read model's process, which serves this
    status on ``/v1/admin/status``.
    """
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _age(now_ms: int, entry_id: str) -> float:
    return max(0.0, (now_ms - _entry_key(entry_id)[0]) / 1000)


def _entry_id(entry: Any) -> str | None:
    return None if not entry else _text(entry[0])


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
