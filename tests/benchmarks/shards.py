"""Ingest on a local Redis Cluster with 1 and with 4 shards: events/s each.

Three masters from Debian's ``redis-server`` (``fixtures/redis_cluster.py``), a fresh
database per shard count on the run's Postgres, the corpus published with
``stanceline publish``'s own routing (``ops.publish.publish_lines``), then one real
``stanceline projector`` per shard (``STANCELINE_SHARDS=i``), as a deployment scales out,
timed from their start to the moment every shard's group has everything acknowledged
and the store holds every event. On a machine with fewer cores than projectors the
figure says what the cores allow, not what the shards would: quote it with the machine.

Standalone, from the repository root (it also runs as a phase of ``run.py``):

    .venv/bin/python tests/benchmarks/shards.py --events 20000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from conftest import _admin
from faults.corpus import generate
from fixtures.redis_cluster import binaries, running_cluster
from fixtures.servers import PostgresServer
from stanceline.contract.shards import shard_streams
from stanceline.ops.migrate import migrate
from stanceline.ops.publish import publish_lines
from stanceline.redis_client import connect
from stanceline.store.db import create_engine
from support.service import STANCELINE
from support.streams import group_drained

SHARD_COUNTS = (1, 4)


async def _one(
    server: PostgresServer, cluster_url: str, lines: list[bytes], shards: int, distinct: int
) -> dict[str, Any]:
    database = f"bench_shards_{shards}_{uuid.uuid4().hex[:8]}"
    await _admin(server, f"CREATE DATABASE {database}")
    url = server.url_for(database)
    stream, group = f"bench:{uuid.uuid4().hex[:8]}:statements", "bench-shards"
    keys = shard_streams(stream, shards)
    client = connect(cluster_url)
    children: list[asyncio.subprocess.Process] = []
    try:
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        await publish_lines(client, stream, lines, shards=shards, group=group)
        env = {
            **os.environ,
            "STANCELINE_DATABASE_URL": url,
            "STANCELINE_REDIS_URL": cluster_url,
            "STANCELINE_STREAM": stream,
            "STANCELINE_GROUP": group,
            "STANCELINE_STREAM_SHARDS": str(shards),
        }
        for shard in range(shards):
            children.append(
                await asyncio.create_subprocess_exec(
                    str(STANCELINE),
                    "projector",
                    env={**env, "STANCELINE_SHARDS": str(shard)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        conn = await asyncpg.connect(server.url_for(database).replace("+asyncpg", ""))
        try:
            # Timed from the first stored event, so the projectors' start-up is left out.
            first: tuple[float, int] | None = None
            while True:
                stored = int(await conn.fetchval("SELECT count(*) FROM events"))
                if first is None and stored:
                    first = (time.perf_counter(), stored)
                if stored == distinct and await group_drained(client, keys, group):
                    break
                if any(c.returncode is not None for c in children):
                    raise RuntimeError("a projector exited during the shard benchmark")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        assert first is not None
        seconds = time.perf_counter() - first[0]
        timed = distinct - first[1]
    finally:
        for child in children:
            child.send_signal(signal.SIGINT)
        for child in children:
            await asyncio.wait_for(child.wait(), 60)
        await client.aclose()
        await _admin(server, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return {
        "shards": shards,
        "projectors": shards,
        "entries": len(lines),
        "events": distinct,
        "seconds": round(seconds, 2),
        "events_per_second": round(timed / seconds, 1) if seconds else None,
    }


async def shard_figures(
    admin_url: str, events: int, seed: int = 1, counts: Sequence[int] = SHARD_COUNTS
) -> dict[str, Any]:
    """Ingest events/s for each shard count; ``admin_url`` is a database on the Postgres to
    create the runs' databases on. Skipped (with the reason) without ``redis-server``."""
    if binaries() is None:
        return {"skipped": "redis-server and redis-cli are not installed"}
    corpus = generate(events, seed)
    server = PostgresServer(admin_url=admin_url, kind="env")
    with running_cluster() as cluster:
        runs = [
            await _one(server, cluster.url, corpus.lines, n, len(corpus.events)) for n in counts
        ]
    return {"cluster_masters": 3, "cores": os.cpu_count(), "runs": runs}


def report(figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"shards: skipped ({figures['skipped']})"
    rows = [
        f"  {r['shards']} shard(s), {r['projectors']} projector(s): "
        f"{r['events_per_second']:>9,.0f} events/s ({r['events']:,} events in {r['seconds']:.1f}s)"
        for r in figures["runs"]
    ]
    head = (
        f"ingest on a local Redis Cluster ({figures['cluster_masters']} masters, "
        f"{figures['cores']} cores):"
    )
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="corpus lines")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("STANCELINE_TEST_DATABASE_URL"),
        help="a Postgres to create the runs' databases on (default: an embedded one)",
    )
    args = parser.parse_args(argv)

    async def run() -> dict[str, Any]:
        if args.database_url:
            url = args.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
            return await shard_figures(url, args.events, args.seed)
        from support.scratch import scratch_servers

        async with scratch_servers("shards", None, "unused") as scratch:
            return await shard_figures(scratch.database_url, args.events, args.seed)

    print(report(asyncio.run(run())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
