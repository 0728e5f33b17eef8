"""A database holding the benchmark's corpus, fast: for measuring the reads alone.

    .venv/bin/python tests/benchmarks/seed.py --database-url URL [--events 1000000]

The corpus is ``run.py``'s (the same generator, sizes and seed), but instead of draining it
through the projector (minutes at 1M, all of it on the write path) its valid events are
parsed by the contract, copied into ``events`` in publishing order with ``COPY`` and the
projections are built by the real ``rebuild``, which the rebuild tests hold equal to what
the projector writes. The database must exist; it is migrated here. Then
``reads.py --database-url URL`` measures the read figures against it as often as needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from benchmarks.bare import COLUMNS
from benchmarks.workload import Hierarchy, generate, sizes_for
from conftest import _dsn
from fixtures.servers import _asyncpg_url
from stanceline.contract import Rejection, parse_event
from stanceline.ops.migrate import migrate
from stanceline.ops.rebuild import rebuild
from stanceline.store.append import event_row
from stanceline.store.db import create_engine
from stanceline.store.records import Accepted

CHUNK = 20_000


def _say(message: str) -> None:
    print(f"[seed] {message}", file=sys.stderr, flush=True)


def _record(item: Accepted) -> tuple[Any, ...]:
    row = event_row(item)
    row["data"] = orjson.dumps(row["data"]).decode()
    row["envelope"] = orjson.dumps(row["envelope"]).decode()
    return tuple(row[c] for c in COLUMNS)


async def seed(url: str, events: int, seed_: int, hierarchy: Hierarchy) -> dict[str, Any]:
    started = time.perf_counter()
    workload = generate(sizes_for(events, moves=0), seed_, hierarchy)
    _say(f"corpus: {workload.describe()} ({time.perf_counter() - started:.1f}s)")
    engine = create_engine(url)
    try:
        await migrate(engine)
        conn = await asyncpg.connect(_dsn(url))
        try:
            if await conn.fetchval("SELECT count(*) FROM events"):
                raise SystemExit("seed: the database already holds events")
            now = datetime.now(UTC)
            seen: set[str] = set()
            copied = 0
            records: list[tuple[Any, ...]] = []
            for n, line in enumerate(workload.lines):
                result = parse_event(line, now=now)
                if isinstance(result, Rejection) or result.id in seen:
                    continue
                seen.add(result.id)
                records.append(_record(Accepted(result, line, f"{n + 1}-0")))
                if len(records) >= CHUNK:
                    await conn.copy_records_to_table("events", records=records, columns=COLUMNS)
                    copied += len(records)
                    records = []
                    _say(f"copied {copied:,} events")
            if records:
                await conn.copy_records_to_table("events", records=records, columns=COLUMNS)
                copied += len(records)
            await conn.execute("VACUUM ANALYZE events")
        finally:
            await conn.close()
        copied_at = time.perf_counter()
        report = await rebuild(engine)
        conn = await asyncpg.connect(_dsn(url))
        try:
            await conn.execute("VACUUM ANALYZE")
            statements = await conn.fetchval("SELECT count(*) FROM statements")
        finally:
            await conn.close()
    finally:
        await engine.dispose()
    return {
        "events": copied,
        "expected_events": workload.distinct_valid,
        "statements": int(statements),
        "rebuild_seconds": round(report.seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "copy_seconds": round(copied_at - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an existing database")
    parser.add_argument("--events", type=int, default=1_000_000, help="corpus lines")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hierarchy", choices=["upfront", "spread"], default="upfront")
    args = parser.parse_args(argv)
    result = asyncio.run(
        seed(_asyncpg_url(args.database_url), args.events, args.seed, args.hierarchy)
    )
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
