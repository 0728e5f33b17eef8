"""Where ingestion stands: the stream, its consumer groups, dead letters, the store.

Lag, per group, is what the group has not been handed yet: the entries after its
last-delivered id (Redis 7's own ``lag`` when it reports one; counted with
``XRANGE`` otherwise, as Redis 6.2 has no such field), and in seconds, the age of
the oldest of them by the Redis clock (an entry id's first part is the
millisecond Redis stored it). Entries handed out but not acknowledged yet are
*pending*, reported beside it, never counted as lag.

The configured group (``STANCELINE_GROUP``) is always reported: before any
projector has created it, as missing, with the whole stream as its lag (a
projector creates it at ``0`` and then reads every entry).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

import redis.asyncio as aioredis
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from pydantic import BaseModel, Field
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.ops.migrate import alembic_config
from stanceline.store.db import ReadConnection, reading
from stanceline.store.dead_letters import counts_by_reason
from stanceline.store.tables import events, projection_meta

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
    last_delivered_id: str | None = Field(description="null: the group does not exist yet.")
    consumers: list[Consumer]
    pending: int = Field(description="Delivered to a consumer, not acknowledged yet.")
    oldest_pending_seconds: float | None
    lag_entries: int = Field(description="Entries after the last-delivered id.")
    lag_seconds: float = Field(description="Age of the oldest of them; 0 without lag.")


class StreamStatus(BaseModel):
    name: str
    exists: bool
    length: int
    first_entry_id: str | None
    last_entry_id: str | None
    groups: list[Group]


class StoreStatus(BaseModel):
    events: int
    last_position: int | None
    last_recorded_at: datetime | None


class DeadLetterStatus(BaseModel):
    total: int
    by_reason: dict[str, int]


class ProjectionStatus(BaseModel):
    version: str = Field(description="Database revision, plus when it was last rebuilt.")
    revision: str | None = Field(description="The database's Alembic revision.")
    head: str = Field(description="The revision this stanceline expects.")
    rebuilt_at: datetime | None = Field(description="null: never rebuilt.")
    rebuilt_events: int | None
    rebuilt_seconds: float | None


class Status(BaseModel):
    checked_at: datetime
    stream: StreamStatus
    store: StoreStatus
    dead_letters: DeadLetterStatus
    projection: ProjectionStatus


class SchemaNotReady(Exception):
    """The database is not at the revision this code expects."""


async def status(
    engine: AsyncEngine, client: aioredis.Redis, stream: str, group: str | None = None
) -> Status:
    """``group``: the configured consumer group, reported even before it exists."""
    stream_status = await stream_info(client, stream, group)
    async with reading(engine) as conn:
        by_reason = await counts_by_reason(conn)
        return Status(
            checked_at=datetime.now(UTC),
            stream=stream_status,
            store=await _store(conn),
            dead_letters=DeadLetterStatus(total=sum(by_reason.values()), by_reason=by_reason),
            projection=await projection(conn),
        )


async def stream_info(
    client: aioredis.Redis, stream: str, group: str | None = None
) -> StreamStatus:
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
    client: aioredis.Redis,
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


async def _store(conn: ReadConnection) -> StoreStatus:
    row = (
        await conn.execute(
            sa.select(
                sa.func.count().label("events"),
                sa.func.max(events.c.position).label("last_position"),
                sa.func.max(events.c.recorded_at).label("last_recorded_at"),
            )
        )
    ).one()
    return StoreStatus.model_validate(row._mapping)


async def projection(conn: ReadConnection) -> ProjectionStatus:
    revision = await database_revision(conn)
    meta = None
    if revision is not None:
        meta = (await conn.execute(sa.select(projection_meta))).one_or_none()
    version = revision or "none"
    if meta is not None:
        version += f"+rebuilt.{meta.rebuilt_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return ProjectionStatus(
        version=version,
        revision=revision,
        head=head_revision(),
        rebuilt_at=meta.rebuilt_at if meta else None,
        rebuilt_events=meta.events if meta else None,
        rebuilt_seconds=meta.seconds if meta else None,
    )


async def database_revision(conn: ReadConnection) -> str | None:
    if await conn.scalar(sa.text("SELECT to_regclass('alembic_version')")) is None:
        return None
    revision = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return None if revision is None else str(revision)


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return head or "none"


async def require_schema(engine: AsyncEngine) -> None:
    """Operator commands run against a migrated database, or say what to do."""
    async with reading(engine) as conn:
        revision = await database_revision(conn)
    if revision is None:
        raise SchemaNotReady("the database has no stanceline schema: run `stanceline migrate`")
    if revision != head_revision():
        raise SchemaNotReady(
            f"the database is at revision {revision}, this stanceline expects "
            f"{head_revision()}: run `stanceline migrate`"
        )


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
