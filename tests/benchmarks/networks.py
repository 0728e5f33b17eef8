"""The agreement network figure: 500 actors × 200 topics × 100,000 statements, 52 weekly
windows with a triangular kernel, the JSON answer's time. Target ≤ 2 s on this machine.

The statements are written straight into the projection with SQL (seeded ``random()``;
actors, their lineage rows and topics too): the figure is about reading and computing a
network, not about ingest. Ids start with ``net-``, so the rows sit beside a benchmark
corpus without mixing with it (the request names only these topics).

``run.py`` measures it against its running ``stanceline api``; on its own:

    .venv/bin/python tests/benchmarks/networks.py [--statements N] [--profile]

runs it against the app in this process (httpx's ASGI transport, so no HTTP server is in
the figure) on scratch servers (STANCELINE_TEST_DATABASE_URL's, or embedded ones), and
with --profile prints where the time goes (cProfile, top 25 by cumulative time).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
WEEKS = 52
TARGET_SECONDS = 2.0


@dataclass(frozen=True)
class NetworkSize:
    actors: int = 500
    topics: int = 200
    statements: int = 100_000
    weeks: int = WEEKS


def topic_ids(size: NetworkSize) -> list[str]:
    return [f"net-t{i:03d}" for i in range(size.topics)]


async def seed(dsn: str, size: NetworkSize) -> None:
    """Actors (each its own lineage row), topics and visible statements spread uniformly
    over the weeks, stances uniform; the same rows for the same size every time."""
    days = size.weeks * 7
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO actors (actor_id, name, kind)
            SELECT 'net-a' || lpad(i::text, 3, '0'), 'Network actor ' || i, 'organisation'
              FROM generate_series(0, $1 - 1) i;
            """.replace("$1", str(size.actors))
        )
        await conn.execute(
            "INSERT INTO actor_lineage (actor_id, ancestor_id, depth)"
            " SELECT actor_id, actor_id, 0 FROM actors WHERE actor_id LIKE 'net-a%'"
        )
        await conn.execute(
            "INSERT INTO topics (topic_id, title, kind)"
            " SELECT 'net-t' || lpad(i::text, 3, '0'), 'Network topic ' || i, 'claim'"
            f" FROM generate_series(0, {size.topics - 1}) i"
        )
        await conn.execute("SELECT setseed(0.17)")
        await conn.execute(
            f"""
            INSERT INTO statements
                (statement_id, actor_id, topic_id, said_at, stance, score, confidence,
                 recorded_by)
            SELECT 'net-s' || i,
                   'net-a' || lpad(floor(random() * {size.actors})::int::text, 3, '0'),
                   'net-t' || lpad(floor(random() * {size.topics})::int::text, 3, '0'),
                   timestamptz '{START.isoformat()}' + random() * interval '{days} days',
                   s.stance, 0, 1, 'net-e' || i
              FROM generate_series(1, {size.statements}) i
             CROSS JOIN LATERAL (
                 SELECT (ARRAY['support', 'neutral', 'oppose'])[1 + floor(random() * 3)::int]
                        AS stance
                  WHERE i > 0
             ) s
            """
        )
        await conn.execute("ANALYZE actors; ANALYZE actor_lineage; ANALYZE statements")
    finally:
        await conn.close()


def request_params(size: NetworkSize) -> dict[str, str]:
    return {
        "topics": ",".join(topic_ids(size)),
        "from": START.isoformat(),
        "to": (START + timedelta(weeks=size.weeks)).isoformat(),
        "window": "P7D",
        "kernel": "triangular",
    }


async def measure(http: httpx.AsyncClient, size: NetworkSize, repeats: int = 3) -> dict[str, Any]:
    """One warm-up request, then ``repeats`` timed ones: the whole answer, read."""
    params = request_params(size)
    warm = await http.get("/v1/networks/agreement", params=params, timeout=120)
    warm.raise_for_status()
    body = warm.json()
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        response = await http.get("/v1/networks/agreement", params=params, timeout=120)
        response.raise_for_status()
        seconds.append(time.perf_counter() - began)
    return {
        "size": asdict(size),
        "windows": len(body["windows"]),
        "edges": sum(len(w["edges"]) for w in body["windows"]),
        "nodes": len(body["windows"][0]["nodes"]) if body["windows"] else 0,
        "bytes": len(warm.content),
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_best": round(min(seconds), 3),
        "target_seconds": TARGET_SECONDS,
    }


async def network_figures(dsn: str, base_url: str, size: NetworkSize) -> dict[str, Any]:
    """``run.py``'s figure: seed the database the running API reads, then time it."""
    await seed(dsn, size)
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await measure(http, size)


async def _breakdown(engine: Any, size: NetworkSize) -> str:
    """Where one answer's time goes, part by part (wall and this process's CPU), and the
    top of cProfile's view of the computation (the route runs it in a worker thread, out
    of cProfile's sight, so it is called here directly)."""
    from stanceline.domain.network import Kernel, agreement_networks, layout
    from stanceline.readmodel.network_formats import Answer, as_json
    from stanceline.store.db import reading
    from stanceline.store.network_rows import network_input

    lines = []
    stop = START + timedelta(weeks=size.weeks)
    windows = layout(START, stop, timedelta(days=7), None)

    def timed(name: str, began: tuple[float, float]) -> None:
        wall, cpu = time.perf_counter() - began[0], time.process_time() - began[1]
        lines.append(f"{name:<28} {wall:7.3f} s wall {cpu:7.3f} s cpu")

    began = (time.perf_counter(), time.process_time())
    async with reading(engine) as conn:
        found = await network_input(
            conn,
            topic_ids=topic_ids(size),
            actor_ids=None,
            include_descendants=False,
            start=START,
            stop=stop,
            known_at=None,
        )
    timed(f"read {len(found.said):,} statements", began)
    began = (time.perf_counter(), time.process_time())
    profiler = cProfile.Profile()
    profiler.enable()
    networks = agreement_networks(found.said, windows, kernel=Kernel.TRIANGULAR)
    profiler.disable()
    timed("compute (domain/network.py)", began)
    began = (time.perf_counter(), time.process_time())
    body = as_json(Answer(found.nodes, networks, {}))
    timed(f"JSON ({len(body):,} bytes)", began)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
    return "\n".join(lines) + "\n" + out.getvalue()


async def _alone(size: NetworkSize, profile: bool) -> dict[str, Any]:
    from conftest import _dsn
    from stanceline.ops.migrate import migrate
    from stanceline.readmodel.app import create_app
    from stanceline.store.db import create_engine
    from support.http import serve
    from support.scratch import scratch_servers

    url = os.environ.get("STANCELINE_TEST_DATABASE_URL")
    redis = os.environ.get("STANCELINE_TEST_REDIS_URL") or "redis://127.0.0.1:1"
    async with scratch_servers("netbench", url, redis) as servers:
        engine = create_engine(servers.database_url)
        try:
            await migrate(engine)
            await seed(_dsn(servers.database_url), size)
            async with serve(create_app(engine=engine)) as http:
                figures = await measure(http, size)
                if profile:
                    figures["profile"] = await _breakdown(engine, size)
        finally:
            await engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = NetworkSize()
    parser.add_argument("--actors", type=int, default=defaults.actors)
    parser.add_argument("--topics", type=int, default=defaults.topics)
    parser.add_argument("--statements", type=int, default=defaults.statements)
    parser.add_argument("--profile", action="store_true", help="cProfile one request")
    args = parser.parse_args(argv)
    size = NetworkSize(args.actors, args.topics, args.statements)
    figures = asyncio.run(_alone(size, args.profile))
    profile = figures.pop("profile", None)
    verdict = "ok" if figures["seconds_median"] <= TARGET_SECONDS else "MISSED"
    print(
        f"agreement network {size.actors} actors x {size.topics} topics x "
        f"{size.statements:,} statements, {figures['windows']} weekly windows, triangular: "
        f"{figures['seconds_median']:.3f} s median ({figures['seconds_best']:.3f} s best), "
        f"{figures['edges']:,} edges, {figures['bytes']:,} bytes; target <= "
        f"{TARGET_SECONDS:g} s: {verdict}"
    )
    if profile:
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
