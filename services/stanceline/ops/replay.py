"""Re-delivering a range of the stream through the projector's own path.

Replay reads with ``XRANGE``, not through the consumer group: nothing is claimed
or acknowledged and the group's position stays where it is, so a replay can run
beside live projectors. Each chunk goes to ``pipeline.commit``, the one path into
the store, so validation, dedupe by event id, dead letters and projection are
exactly the live ones. Replaying twice changes nothing: a stored event comes back
as a duplicate, and an entry that already has a dead letter is skipped (``dlq
redrive`` retries those, keeping each one's history in a single row).

Moving a consumer group is here too: it is the other way to have the stream
delivered again, this time by the projectors themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from pydantic import BaseModel
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.contract.shards import shard_streams
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry, entry_bytes
from stanceline.redis_client import RedisClient
from stanceline.store import append
from stanceline.store.records import Accepted, BatchReport, Rejected
from stanceline.store.tables import dead_letters

Progress = Callable[[int, int | None], None]
"""Called with (entries handled so far, entries to handle when known)."""

_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
_U64 = 2**64 - 1


class ReplayError(Exception):
    """The request cannot be carried out as asked; the message says why."""


def entry_key(entry_id: str, *, end: bool = False) -> tuple[int, int]:
    """A stream entry id as Redis orders it; ``MS`` alone means ``MS-0`` (or the last
    id of that millisecond at the ``end`` of a range, as ``XRANGE`` reads it)."""
    match = _ID.fullmatch(entry_id)
    if match is None or int(match[1]) > _U64 or int(match[2] or 0) > _U64:
        raise ValueError(
            f"{entry_id!r} is not a stream entry id (MS or MS-SEQ, e.g. 1718000000000-0)"
        )
    default = _U64 if end else 0
    return int(match[1]), int(match[2]) if match[2] is not None else default


def check_range(start: str, end: str) -> None:
    """``-`` and ``+`` are the stream's ends; anything else must be an entry id."""
    low = (0, 0) if start == "-" else entry_key(start)
    high = (_U64, _U64) if end == "+" else entry_key(end, end=True)
    if low > high:
        raise ValueError(f"--from {start} is after --to {end}")


class ReplayReport(BaseModel):
    stream: str
    start: str
    end: str
    dry_run: bool
    entries: int = 0
    new: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    already_dead_lettered: int = 0
    last_entry_id: str | None = None
    shards: list[ReplayReport] = []
    """Each stream key's own report when the stream is sharded (the counts above are their sum)."""


async def replay_shards(
    engine: AsyncEngine,
    client: RedisClient,
    stream: str,
    shards: int,
    start: str = "-",
    end: str = "+",
    *,
    dry_run: bool = False,
    chunk: int = 500,
    progress: Progress | None = None,
) -> ReplayReport:
    """`replay` on every shard of ``stream`` in turn (one shard: the stream itself).

    Entry ids are unique only within a shard, so the range applies to each shard
    by time (an entry id starts with the millisecond Redis stored it).
    """
    keys = shard_streams(stream, shards)
    if len(keys) == 1:
        return await replay(
            engine, client, stream, start, end, dry_run=dry_run, chunk=chunk, progress=progress
        )
    total = ReplayReport(stream=stream, start=start, end=end, dry_run=dry_run)
    for key in keys:
        part = await replay(engine, client, key, start, end, dry_run=dry_run, chunk=chunk)
        total.entries += part.entries
        total.new += part.new
        total.duplicates += part.duplicates
        total.dead_lettered += part.dead_lettered
        total.already_dead_lettered += part.already_dead_lettered
        total.shards.append(part)
        if progress is not None:
            progress(total.entries, None)
    return total


async def replay(
    engine: AsyncEngine,
    client: RedisClient,
    stream: str,
    start: str = "-",
    end: str = "+",
    *,
    dry_run: bool = False,
    chunk: int = 500,
    progress: Progress | None = None,
) -> ReplayReport:
    check_range(start, end)
    await _require_stream(client, stream)
    report = ReplayReport(stream=stream, start=start, end=end, dry_run=dry_run)
    total = int(await client.xlen(stream)) if (start, end) == ("-", "+") else None
    cursor = start
    appended: dict[str, str] = {}
    while True:
        batch = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await client.xrange(stream, min=cursor, max=end, count=chunk),
        )
        if not batch:
            break
        entries = [(entry_id.decode(), fields) for entry_id, fields in batch]
        known = await _dead_lettered(engine, stream, [entry_id for entry_id, _ in entries])
        todo = [entry_bytes(i, fields) for i, fields in entries if i not in known]
        if not todo:
            outcome = BatchReport()
        elif dry_run:
            outcome = await preview(engine, todo, appended)
        else:
            outcome = await pipeline.commit(engine, todo, stream=stream)
        report.entries += len(entries)
        report.new += outcome.appended
        report.duplicates += outcome.duplicates
        report.dead_lettered += outcome.dead_lettered
        report.already_dead_lettered += len(known)
        report.last_entry_id = entries[-1][0]
        if progress is not None:
            progress(report.entries, total)
        if len(batch) < chunk:
            break
        cursor = f"({report.last_entry_id}"  # exclusive start: Redis 6.2 and later
    return report


async def preview(
    engine: AsyncEngine,
    entries: Sequence[Entry | Rejected],
    seen: dict[str, str] | None = None,
) -> BatchReport:
    """What ``pipeline.commit`` would report, found in a read-only transaction.

    It sees what needs no projection state: contract rejections, and event ids
    already stored or repeated (a duplicate, or a conflict when the body differs).
    A re-recording with another body or a hierarchy cycle is only found by a real
    run: a dry run counts those as new. ``seen`` (event id → digest) carries the
    ids a dry run would have appended from one chunk to the next.
    """
    seen = {} if seen is None else seen
    checked = pipeline.check(entries, datetime.now(UTC))
    accepted = [item for item in checked if isinstance(item, Accepted)]
    async with engine.connect() as conn:
        await conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        seen.update(await append.stored_digests(conn, [item.event.id for item in accepted]))
        await conn.rollback()
    report = BatchReport(dead_lettered=len(checked) - len(accepted))
    for item in accepted:
        digest = item.digest
        known = seen.get(item.event.id)
        if known is None:
            seen[item.event.id] = digest
            report.appended += 1
        elif known == digest:
            report.duplicates += 1
        else:
            report.dead_lettered += 1
    return report


async def _require_stream(client: RedisClient, stream: str) -> None:
    kind = cast("bytes", await client.type(stream))
    if kind != b"stream":
        found = "nothing" if kind == b"none" else f"a {kind.decode()}"
        raise ReplayError(f"no stream named {stream!r} (the key holds {found})")


async def _dead_lettered(engine: AsyncEngine, stream: str, entry_ids: list[str]) -> set[str]:
    query = sa.select(dead_letters.c.stream_entry_id).where(
        dead_letters.c.stream == stream, dead_letters.c.stream_entry_id.in_(entry_ids)
    )
    async with engine.connect() as conn:
        return {str(entry_id) for entry_id in (await conn.execute(query)).scalars()}


class GroupReport(BaseModel):
    stream: str
    group: str
    position: str
    existed: bool
    previous_position: str | None
    dry_run: bool


async def position_group(
    client: RedisClient, stream: str, group: str, position: str, *, dry_run: bool = False
) -> GroupReport:
    """Create the group at ``position``, or move an existing one there.

    An existing group is moved (``XGROUP SETID``), never destroyed: its consumers
    and their pending entries stay, so the reclaimer still finishes what was in
    flight. Entries after ``position`` are delivered to the group again (their
    redelivery is a no-op); entries up to it are not delivered, so a position
    ahead of the current one skips entries on purpose.
    """
    if position != "$":
        entry_key(position)
    await _require_stream(client, stream)
    groups = {
        bytes(g["name"]).decode(): bytes(g["last-delivered-id"]).decode()
        for g in await client.xinfo_groups(stream)
    }
    previous = groups.get(group)
    if not dry_run:
        try:
            await client.xgroup_create(stream, group, id=position)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            await client.xgroup_setid(stream, group, position)
    return GroupReport(
        stream=stream,
        group=group,
        position=position,
        existed=previous is not None,
        previous_position=previous,
        dry_run=dry_run,
    )
