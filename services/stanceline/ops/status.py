"""Where ingestion stands: the stream, its consumer groups, dead letters, the store.

The stream's part (lag, pending, per shard and in total) is `ops.streams`. The
configured group (``STANCELINE_GROUP``) is always reported: before any
projector has created it, as missing, with the whole stream as its lag (a
projector creates it at ``0`` and then reads every entry).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.ops.migrate import alembic_config
from stanceline.ops.streams import (
    Consumer,
    Group,
    ShardStatus,
    StreamStatus,
    sharded_info,
    stream_info,
    undelivered,
)
from stanceline.redis_client import RedisClient
from stanceline.store.db import ReadConnection, reading
from stanceline.store.dead_letters import counts_by_reason
from stanceline.store.tables import events, projection_meta

__all__ = [
    "Consumer",
    "Group",
    "ShardStatus",
    "Status",
    "StreamStatus",
    "status",
    "stream_info",
    "undelivered",
]


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
    engine: AsyncEngine,
    client: RedisClient,
    stream: str,
    group: str | None = None,
    *,
    shards: int = 1,
) -> Status:
    """``group``: the configured consumer group, reported even before it exists;
    ``shards``: how many stream keys ``stream`` is split into."""
    stream_status = await sharded_info(client, stream, group, shards)
    async with reading(engine) as conn:
        by_reason = await counts_by_reason(conn)
        return Status(
            checked_at=datetime.now(UTC),
            stream=stream_status,
            store=await _store(conn),
            dead_letters=DeadLetterStatus(total=sum(by_reason.values()), by_reason=by_reason),
            projection=await projection(conn),
        )


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
