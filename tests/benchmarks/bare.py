"""The baseline: a bare ingest loop, raw redis-py and asyncpg, no framework, no projection.

    XREADGROUP COUNT 500 → json.loads → COPY into a copy of ``events`` → XACK

One consumer, one batch at a time, acknowledged after the COPY commits (the same
at-least-once shape as the real projector, on the same event loop, uvloop, and RESP parser,
hiredis, and nothing more): no validation against the
contract, no dead letters (a line that is not a JSON event is counted and skipped), no
idempotency (duplicates are copied twice), no projection. The table it copies into has the
columns, defaults, identity and indexes of ``events``, with its unique index on
``event_id`` made non-unique, so the bare loop pays the same index upkeep per row without
needing conflict handling. ``run.py`` starts it as a subprocess, like the real projector,
and times both the same way from outside. By hand:

    .venv/bin/python tests/benchmarks/bare.py --redis-url redis://... --dsn postgresql://... \\
        --stream S --group G --table bare_events --expect 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime
from typing import Any, cast

import asyncpg
import redis.asyncio as aioredis
import uvloop

COLUMNS = (
    "event_id",
    "type",
    "source",
    "time",
    "data",
    "envelope",
    "digest",
    "statement_id",
    "actor_id",
    "topic_id",
    "stream_entry_id",
)
_ENVELOPE = {"id", "source", "type", "time", "data"}


async def create_copy_table(conn: asyncpg.Connection, table: str) -> None:
    """``events``'s columns, defaults, identity and indexes, without unique constraints
    (bar the primary key on ``position``)."""
    await conn.execute(
        f"CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY"
        " INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)"
    )
    await conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (position)")
    rows = await conn.fetch(
        "SELECT schemaname, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = current_schema() AND tablename = 'events'"
    )
    for row in rows:
        definition: str = row["indexdef"]
        if row["indexname"].startswith("pk_"):
            continue
        definition = definition.replace("CREATE UNIQUE INDEX", "CREATE INDEX", 1)
        definition = definition.replace(
            f"INDEX {row['indexname']} ON", f"INDEX {table}_{row['indexname']} ON", 1
        )
        schema = row["schemaname"]
        definition = definition.replace(f" ON {schema}.events ", f" ON {schema}.{table} ", 1)
        await conn.execute(definition)


def record(entry_id: bytes, raw: bytes) -> tuple[Any, ...] | None:
    """One row for the copy table, or None for a line that is not a JSON event."""
    try:
        document = json.loads(raw)
        data = document["data"]
        return (
            document["id"],
            document["type"],
            document["source"],
            datetime.fromisoformat(document["time"]),
            json.dumps(data),
            json.dumps({k: v for k, v in document.items() if k not in _ENVELOPE}),
            hashlib.sha256(raw).hexdigest(),
            data.get("statement_id"),
            data.get("actor_id"),
            data.get("topic_id"),
            entry_id.decode(),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


async def consume(
    redis_url: str,
    dsn: str,
    *,
    stream: str,
    group: str,
    consumer: str,
    table: str,
    expect: int,
    batch: int = 500,
    idle_exit: float = 10.0,
) -> dict[str, Any]:
    client = aioredis.Redis.from_url(redis_url)
    conn = await asyncpg.connect(dsn)
    read = copied = skipped = 0
    first: float | None = None
    last = time.perf_counter()
    try:
        while read < expect:
            answer = await client.xreadgroup(group, consumer, {stream: ">"}, count=batch, block=100)
            if not answer:
                if time.perf_counter() - last > idle_exit:
                    break
                continue
            # A RESP2 client answers [[stream, [(id, fields), ...]]].
            entries: list[tuple[bytes, dict[bytes, bytes]]] = cast("Any", answer)[0][1]
            if first is None:
                first = time.perf_counter()
            rows = []
            for entry_id, fields in entries:
                row = record(entry_id, fields.get(b"event", b""))
                if row is None:
                    skipped += 1
                else:
                    rows.append(row)
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=COLUMNS)
                copied += len(rows)
            await client.xack(stream, group, *[entry_id for entry_id, _ in entries])
            read += len(entries)
            last = time.perf_counter()
    finally:
        await conn.close()
        await client.aclose()
    seconds = last - first if first is not None else 0.0
    return {
        "entries": read,
        "copied": copied,
        "skipped": skipped,
        "seconds": seconds,
        "events_per_second": read / seconds if seconds else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--dsn", required=True, help="libpq/asyncpg DSN (postgresql://...)")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", default="bare")
    parser.add_argument("--table", required=True, help="created by create_copy_table first")
    parser.add_argument("--expect", type=int, required=True, help="stop after this many entries")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    # The projector's event loop (stanceline.cli.common.run_async), so the ratio compares
    # the work done, not the loops.
    result = uvloop.run(
        consume(
            args.redis_url,
            args.dsn,
            stream=args.stream,
            group=args.group,
            consumer=args.consumer,
            table=args.table,
            expect=args.expect,
            batch=args.batch,
        )
    )
    print(json.dumps(result))
    return 0 if result["entries"] >= args.expect else 1


if __name__ == "__main__":
    sys.exit(main())
