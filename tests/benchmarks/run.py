"""The stanceline benchmark: real components, baselines measured in the same run.

From the repository root:

    .venv/bin/python tests/benchmarks/run.py                # default sizes, a few minutes
    .venv/bin/python tests/benchmarks/run.py --full         # the 1M-event figures
    .venv/bin/python tests/benchmarks/run.py --events 50000 --json bench-results/mine.json

It starts its own servers (embedded Postgres and Redis in a temp dir; or a fresh database
and fresh stream keys on the servers named by --database-url / --redis-url or
STANCELINE_TEST_DATABASE_URL / STANCELINE_TEST_REDIS_URL; or, with --in-database, an
existing database that is left behind for the caller to inspect), generates the fault harness's
seeded corpus (``faults/corpus.py``: actors in a three-level hierarchy, topics, statements
whose stances drift and flip, corrections and retractions, 1% duplicates, 1% out of order,
0.5% invalid), publishes it once on one stream with a consumer group per pipeline, then:

1. Ingest: the bare loop (``bare.py``: XREADGROUP 500 → json → COPY → XACK) and the real
   ``stanceline projector``, each a subprocess draining its own group of the same entries,
   timed from outside the same way (``measure.watch_ingest``); events/s and the ratio.
2. Rebuild: the real ``stanceline.ops.rebuild.rebuild(engine)`` over the events the real
   projector stored, beside a plain-SQL copy of ``events`` as the baseline.
3. Reads: ``stanceline api --workers 2`` (uvicorn, a worker per core, as it would be
   deployed on this machine) over HTTP, 4 closed-loop keep-alive clients: a history of 50
   points, a topic's stances, and GET /healthz as the HTTP floor; p50/p95/p99, and the
   history's p99 as a multiple of the floor's. The clients are ``wrk`` (``load.py``, with
   ``rotate.lua`` walking the paths; ``apt-get install -y wrk``) when it is installed, so
   that the load generator is not what limits the figures; else httpx clients in this
   process, with a warning on stderr (``--load-generator`` chooses).
4. Projector RSS over the ingest (psutil samples, and the kernel's VmHWM for the peak).
5. Lag: XADD at a steady 2,000 events/s for ~20-30 s while one client polls the changes
   feed (see ``measure.lag_figures`` for the method); p50/p99 from XADD to visible.
6. Throughput: 64 closed-loop keep-alive clients (the same load generator as 3) reading
   the same histories from the same API for ~12 s, then GET /healthz the same way as the
   floor (what the load generator and the HTTP stack reach at all on this machine);
   requests/s and p50/p99, and the CPU of the API, the servers and the clients.
7. Backfill: the corpus reordered as an archive loaded out of order would arrive
   (``workload.backfill``: the hierarchy and topics first, every other line shuffled, so
   ``said_at`` comes in random order), published on its own stream and drained by another
   real ``stanceline projector`` into a second fresh database on the same server, timed
   like 1; events/s and the ratio to the in-order projector. With ``--backfill-events``
   smaller than the corpus (``--full``: 200k), both orders of a corpus of that size are
   drained that way, each into a fresh database, and compared with each other.

It prints a table (figure, target, measured, result), the machine and the servers, and
writes everything as JSON (default ``bench-results/bench-<UTC time>.json``) so runs can be
compared. Throughputs are quoted beside a baseline measured in the same run; latencies
beside the machine they ran on. Nothing here changes stanceline; ``--profile`` samples the
projector with py-spy during the ingest (``pip install py-spy`` into the venv).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable as a script from the repository root: the test helpers live under tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from rich.console import Console

from benchmarks import processes
from benchmarks.bare import create_copy_table
from benchmarks.environment import Servers, describe_machine, own_servers, server_pids
from benchmarks.load import Generator, choose, wrk_version
from benchmarks.measure import (
    Stream,
    choose_history_keys,
    history_paths,
    lag_figures,
    read_figures,
    rebuild_figures,
    rss_figures,
    sample_sql,
    throughput_by_part,
    throughput_figures,
    watch_ingest,
)
from benchmarks.networks import NetworkSize, network_figures
from benchmarks.report import print_report, verdict_rows, verdicts
from benchmarks.shards import report as shard_report
from benchmarks.shards import shard_figures
from benchmarks.webhooks import webhook_figures
from benchmarks.workload import (
    Hierarchy,
    Workload,
    backfill,
    generate,
    said_at_order,
    sizes_for,
)
from conftest import _admin
from fixtures.servers import PostgresServer
from stanceline.ops.migrate import migrate
from stanceline.store.db import create_engine
from support.service import free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"


@dataclass
class Options:
    events: int = 200_000
    actors: int | None = None
    topics: int | None = None
    moves: int | None = 0
    hierarchy: Hierarchy = "upfront"
    seed: int = 1
    batch_size: int | None = None
    reads: int = 2_000
    clients: int = 4
    api_workers: int = 2
    history_points: int = 50
    lag_rate: float = 2_000.0
    lag_seconds: float = 20.0
    lag_warmup: float = 2.0
    lag_poll_ms: float = 25.0
    lag_actors: int = 100
    throughput_clients: int = 64
    throughput_seconds: float = 12.0
    throughput_warmup: float = 1.0
    load_generator: Generator = "auto"
    """wrk when installed (auto), else httpx clients in this process (see load.py)."""
    backfill_events: int | None = None
    """Entries of the backfill corpus: None for the main corpus's size, 0 for none."""
    profile: bool = False
    database_url: str | None = None
    redis_url: str | None = None
    in_database: str | None = None
    full: bool = False


FULL = {"events": 1_000_000, "reads": 4_000, "lag_seconds": 30.0, "backfill_events": 200_000}


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _child_env(servers: Servers, stream: str, group: str, options: Options) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STANCELINE_")}
    env |= {
        "STANCELINE_DATABASE_URL": servers.database_url,
        "STANCELINE_REDIS_URL": servers.redis_url,
        "STANCELINE_STREAM": stream,
        "STANCELINE_GROUP": group,
        "STANCELINE_CONSUMER": f"{group}-1",
        "COLUMNS": "200",
    }
    if options.batch_size:
        env["STANCELINE_BATCH_SIZE"] = str(options.batch_size)
    return env


async def _sql(dsn: str, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return [await conn.fetchval(s) for s in statements]
    finally:
        await conn.close()


async def _table_writes(dsn: str) -> dict[str, dict[str, int]]:
    """Rows inserted, deleted and live per projection table after the ingest: how many
    rows the projector wrote for the rows that remain (its write amplification)."""
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.sleep(1.5)  # backends publish their table counters within a second
        rows = await conn.fetch(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_live_tup FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() ORDER BY relname"
        )
        counts = {
            r["relname"]: int(await conn.fetchval(f'SELECT count(*) FROM "{r["relname"]}"'))
            for r in rows
        }
    finally:
        await conn.close()
    return {
        r["relname"]: {
            "inserted": int(r["n_tup_ins"]),
            "updated": int(r["n_tup_upd"]),
            "deleted": int(r["n_tup_del"]),
            "rows": counts[r["relname"]],
        }
        for r in rows
    }


def _git() -> dict[str, Any]:
    """Which code was measured: HEAD and the files changed in the work tree."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            )
        except OSError:
            return ""
        return done.stdout

    changed = git("status", "--porcelain", "--", "services", "migrations", "pyproject.toml")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "changed": [line[3:] for line in changed.splitlines() if line.strip()],
    }


class Profiler:
    """--profile: py-spy on one process and samples of the stanceline connections, per phase."""

    def __init__(self, stem: Path, dsn: str, logs: Path) -> None:
        self.stem = stem
        self.dsn = dsn
        self.logs = logs
        self.phases: dict[str, dict[str, Any]] = {}
        self._running: dict[str, tuple[processes.Child | None, asyncio.Event, Any]] = {}

    def start(self, phase: str, pid: int) -> None:
        stop = asyncio.Event()
        sql = asyncio.create_task(sample_sql(self.dsn, stop))
        path = self._path(phase)
        child = processes.start_profile(pid, path, self.logs)
        if child is None:
            _say("--profile: py-spy is not installed in this venv; SQL samples only")
        self._running[phase] = (child, stop, sql)

    async def stop(self, phase: str) -> None:
        if phase not in self._running:
            return
        child, stop, sql = self._running.pop(phase)
        stop.set()
        if child is not None:
            await asyncio.to_thread(child.stop)
        path = self._path(phase)
        self.phases[phase] = {
            "python_file": str(path) if child is not None else None,
            "python": processes.summarise_profile(path),
            "postgres_activity": await sql,
        }

    @contextlib.asynccontextmanager
    async def phase(self, phase: str, pid: int) -> AsyncIterator[None]:
        self.start(phase, pid)
        try:
            yield
        finally:
            await self.stop(phase)

    def _path(self, phase: str) -> Path:
        return self.stem.with_name(f"{self.stem.name}.{phase}.pyspy.txt")


@contextlib.asynccontextmanager
async def _maybe(profiler: Profiler | None, phase: str, pid: int) -> AsyncIterator[None]:
    if profiler is None:
        yield
        return
    async with profiler.phase(phase, pid):
        yield


@dataclass(frozen=True)
class BackfillPlan:
    shuffled: Workload
    """The corpus to drain in a backfill's order."""
    in_order: Workload | None
    """The same corpus in publishing order, to drain for the comparison; None when it is
    the main corpus (then the main ingest's projector figure is the comparison)."""
    said_at_order: float
    in_order_said_at_order: float


def plan_backfill(options: Options, workload: Workload) -> BackfillPlan | None:
    size = options.events if options.backfill_events is None else options.backfill_events
    if size <= 0:
        return None
    source: Workload | None = None
    if size < len(workload.lines):
        sizes = sizes_for(size, actors=options.actors, topics=options.topics, moves=options.moves)
        source = generate(sizes, options.seed, options.hierarchy)
    shuffled = backfill(source or workload)
    return BackfillPlan(
        shuffled=shuffled,
        in_order=source,
        said_at_order=round(said_at_order(shuffled), 4),
        in_order_said_at_order=round(said_at_order(source or workload), 4),
    )


class Bench:
    def __init__(
        self,
        options: Options,
        workload: Workload,
        servers: Servers,
        logs: Path,
        backfill: BackfillPlan | None = None,
    ):
        self.options = options
        self.workload = workload
        self.backfill = backfill
        self.servers = servers
        self.logs = logs
        self.tag = f"bench-{uuid.uuid4().hex[:8]}"
        self.client = aioredis.Redis.from_url(servers.redis_url)
        self.stream = Stream(self.client, f"{self.tag}:statements")
        self.bare_group = f"{self.tag}-bare"
        self.group = f"{self.tag}-projector"
        self.children: list[processes.Child] = []
        self.document: dict[str, Any] = {}

    async def run(self, profile_stem: Path | None) -> dict[str, Any]:
        servers, options, total = self.servers, self.options, len(self.workload.lines)
        profiler = Profiler(profile_stem, servers.dsn, self.logs) if profile_stem else None
        engine = create_engine(servers.database_url)
        try:
            await migrate(engine)
            self.document["machine"] = (await describe_machine(servers)).as_dict()
            self.document["code"] = _git()
            pids = await server_pids(servers)
            await engine.dispose()  # none of our pooled connections stay open during the ingest
            for group in (self.bare_group, self.group):
                await self.stream.create_group(group)
            published = await self.stream.publish(self.workload.lines)
            self.document["publish"] = {
                "seconds": round(published, 2),
                "entries_per_second": round(total / published, 1) if published else 0.0,
            }
            _say(f"published {total:,} entries in {published:.1f}s")

            bare = await self._bare(total, pids)
            projector, real = await self._projector(total, pids, profiler)
            stored, dead = await _sql(
                servers.dsn, "SELECT count(*) FROM events", "SELECT count(*) FROM dead_letters"
            )
            writes = await _table_writes(servers.dsn)
            self.document["ingest"] = {
                "entries": total,
                "bare": bare,
                "projector": real,
                "ratio": round(real["events_per_second"] / bare["events_per_second"], 4)
                if bare["events_per_second"]
                else 0.0,
                "table_writes": writes,
                "stored": {
                    "events": int(stored),
                    "dead_letters": int(dead),
                    "expected_events": self.workload.distinct_valid,
                    "expected_dead_letters": self.workload.invalid,
                },
            }
            _say(f"ingest: {self.document['ingest']['ratio']:.2f} × bare; rebuilding")
            async with _maybe(profiler, "rebuild", os.getpid()):
                self.document["rebuild"] = await rebuild_figures(engine, servers.dsn)
            _say(f"rebuild: {self.document['rebuild']['events_per_second']:,.0f} ev/s; reads")

            port = free_port()
            api = self._start(
                "api",
                ["api", "--port", str(port), "--workers", str(options.api_workers)],
                _child_env(servers, self.stream.name, self.group, options),
            )
            base_url = f"http://127.0.0.1:{port}"
            await asyncio.to_thread(processes.wait_healthy, api, base_url)
            chosen = await choose_history_keys(servers.dsn, options.history_points, options.seed)
            generator = choose(options.load_generator)
            self.document["load_generator"] = wrk_version() if generator == "wrk" else "httpx"
            async with _maybe(profiler, "reads", api.pid):
                self.document["reads"] = await read_figures(
                    base_url,
                    servers.dsn,
                    clients=options.clients,
                    requests=options.reads,
                    points=options.history_points,
                    seed=options.seed,
                    chosen=chosen,
                    generator=generator,
                ) | {"api_workers": options.api_workers}
            _say("reads done; lag")
            self.document["lag"] = await lag_figures(
                self.stream,
                self.group,
                base_url,
                servers.dsn,
                projector,
                pids,
                rate=options.lag_rate,
                seconds=options.lag_seconds,
                warmup=min(options.lag_warmup, options.lag_seconds / 4),
                actors=options.lag_actors,
                poll_ms=options.lag_poll_ms,
            )
            _say(f"lag done; throughput, {options.throughput_clients} clients")
            # After the lag probe, so the figures measured before are measured as they were;
            # the same series as the 4-client reads (the probe's own are not among them).
            throughput: dict[str, Any] = {
                "clients": options.throughput_clients,
                "api_workers": options.api_workers,
            }
            for name, paths in (
                ("history", history_paths(chosen[0], options.history_points)),
                ("floor_healthz", ["/healthz"]),
            ):
                throughput[name] = await throughput_figures(
                    base_url,
                    paths,
                    api.pid,
                    pids,
                    clients=options.throughput_clients,
                    seconds=options.throughput_seconds,
                    warmup=options.throughput_warmup,
                    seed=options.seed,
                    generator=generator,
                )
                _say(f"{name}: {throughput[name]['requests_per_second']:,.0f} req/s")
            self.document["throughput"] = throughput
            _say("webhooks: a backlog, then alerts at the lag rate")
            self.document["webhooks"] = await webhook_figures(
                self.stream,
                self.group,
                engine,
                self._start,
                _child_env(servers, self.stream.name, self.group, options)
                | {"STANCELINE_WEBHOOK_ALLOW_PRIVATE": "true"},
                rate=options.lag_rate,
                seconds=options.lag_seconds,
                actors=options.lag_actors,
                backlog=int(options.lag_rate * options.lag_seconds / 2),
            )
            hooks = self.document["webhooks"]
            _say(
                f"webhooks: {hooks['deliveries_per_second']:,.0f} deliveries/s, alert p99 "
                f"{hooks['latency_ms']['p99']:.0f} ms"
            )
            if self.backfill is not None:
                self.document["backfill"] = await self._backfill(self.backfill, real, pids)
            _say("the agreement network: 500 actors x 200 topics, 52 weekly windows")
            # Full size from the default corpus up; a smaller corpus (a smoke run) scales it.
            size = NetworkSize(statements=min(100_000, options.events // 2))
            network = await network_figures(servers.dsn, base_url, size)
            self.document["network"] = network
            _say(f"network: {network['seconds_median']:.2f} s, {network['edges']:,} edges")
            if profiler is not None:
                self.document["profile"] = profiler.phases
        finally:
            problems = [f"{c.name} exited with {c.stop()}" for c in reversed(self.children)]
            self.document["stop_problems"] = [p for p in problems if not p.endswith(" 0")]
            await engine.dispose()
            with contextlib.suppress(RedisError):
                await self.client.delete(self.stream.name)
            await self.client.aclose()
        # After everything else, with the run's projectors stopped: its own cluster and
        # databases, so it disturbs none of the figures above.
        _say("shards: ingest on a local Redis Cluster with 1 and 4 shards")
        self.document["shards"] = await shard_figures(
            self.servers.database_url, min(options.events, 20_000), options.seed
        )
        return self.document

    async def _backfill(
        self, plan: BackfillPlan, in_order: dict[str, Any], pids: dict[str, int]
    ) -> dict[str, Any]:
        """The backfill's ingest, and the in-order one it is compared with."""
        result: dict[str, Any] = {
            "corpus": plan.shuffled.describe() | {"said_at_order": plan.said_at_order},
            "in_order_said_at_order": plan.in_order_said_at_order,
        }
        if plan.in_order is None:
            result["compared_with"] = "projector"
            compared = in_order["events_per_second"]
        else:
            _say(f"in-order ingest of {len(plan.in_order.lines):,} entries, for the backfill")
            same_size = await self._fresh_ingest("in-order", plan.in_order, pids)
            result["compared_with"] = "in_order_same_size"
            result["in_order"] = same_size
            compared = same_size["events_per_second"]
        _say(f"backfill ingest of {len(plan.shuffled.lines):,} entries (said_at shuffled)")
        shuffled = await self._fresh_ingest("backfill", plan.shuffled, pids)
        result["backfill"] = shuffled
        result["in_order_events_per_second"] = compared
        result["ratio"] = round(shuffled["events_per_second"] / compared, 4) if compared else 0.0
        rate = shuffled["events_per_second"]
        _say(f"backfill: {rate:,.0f} ev/s = {result['ratio']:.2f} × in-order")
        return result

    async def _fresh_ingest(
        self, name: str, workload: Workload, pids: dict[str, int]
    ) -> dict[str, Any]:
        """A real projector draining ``workload`` from a stream of its own into a database of
        its own, created on the run's server the way the run creates its own and migrated;
        timed like the main ingest, then stopped, and its stream and database dropped."""
        server = PostgresServer(admin_url=self.servers.database_url, kind="env")
        database = f"bench_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        await _admin(server, f"CREATE DATABASE {database}")
        servers = replace(self.servers, database_url=server.url_for(database))
        stream = Stream(self.client, f"{self.tag}:{name}")
        group = f"{self.tag}-{name}"
        child: processes.Child | None = None
        total = len(workload.lines)
        try:
            engine = create_engine(servers.database_url)
            try:
                await migrate(engine)
            finally:
                await engine.dispose()
            await stream.create_group(group)
            published = await stream.publish(workload.lines)
            await _sql(servers.dsn, "CHECKPOINT")
            env = _child_env(servers, stream.name, group, self.options)
            child = self._start(f"projector-{name}", ["projector"], env)
            watch = await watch_ingest(stream, group, child, total, pids)
            stored, dead = await _sql(
                servers.dsn, "SELECT count(*) FROM events", "SELECT count(*) FROM dead_letters"
            )
            writes = await _table_writes(servers.dsn)
        finally:
            if child is not None:
                await asyncio.to_thread(child.stop)
            with contextlib.suppress(RedisError):
                await self.client.delete(stream.name)
            await _admin(server, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        _say(f"projector ({name}): {watch.events_per_second:,.0f} ev/s")
        return {
            **watch.as_dict(),
            "by_quarter_events_per_second": throughput_by_part(watch),
            "publish_seconds": round(published, 2),
            "table_writes": writes,
            "stored": {
                "events": int(stored),
                "dead_letters": int(dead),
                "expected_events": workload.distinct_valid,
                "expected_dead_letters": workload.invalid,
            },
        }

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> processes.Child:
        child = processes.stanceline(name, args, env, self.logs)
        self.children.append(child)
        return child

    async def _bare(self, total: int, pids: dict[str, int]) -> dict[str, Any]:
        table = "bench_bare_events"
        conn = await asyncpg.connect(self.servers.dsn)
        try:
            await create_copy_table(conn, table)
        finally:
            await conn.close()
        args = ["--redis-url", self.servers.redis_url, "--dsn", self.servers.dsn]
        args += ["--stream", self.stream.name, "--group", self.bare_group]
        args += ["--table", table, "--expect", str(total)]
        child = processes.bare(args, dict(os.environ), self.logs)
        self.children.append(child)
        watch = await watch_ingest(self.stream, self.bare_group, child, total, pids)
        await asyncio.to_thread(child.process.wait, 120)
        reported: dict[str, Any] = {}
        for line in reversed(child.log.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                reported = json.loads(line)
                break
        await _sql(self.servers.dsn, f"DROP TABLE {table}", "CHECKPOINT")
        await self.client.xgroup_destroy(self.stream.name, self.bare_group)
        _say(f"bare: {watch.events_per_second:,.0f} ev/s")
        return {**watch.as_dict(), "self_reported": reported}

    async def _projector(
        self, total: int, pids: dict[str, int], profiler: Profiler | None
    ) -> tuple[processes.Child, dict[str, Any]]:
        env = _child_env(self.servers, self.stream.name, self.group, self.options)
        projector = self._start("projector", ["projector"], env)

        def on_start() -> None:
            if profiler is not None:
                profiler.start("ingest", projector.pid)

        watch = await watch_ingest(
            self.stream, self.group, projector, total, pids, on_start=on_start
        )
        peak = processes.peak_rss_bytes(projector.pid)
        if profiler is not None:
            await profiler.stop("ingest")
        self.document["rss"] = rss_figures(watch, peak, total)
        _say(f"projector: {watch.events_per_second:,.0f} ev/s")
        real = {**watch.as_dict(), "by_quarter_events_per_second": throughput_by_part(watch)}
        return projector, real


def _arguments(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    defaults = Options()
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--full",
        action="store_true",
        help="the 1M-event run: "
        + ", ".join(f"{k.replace('_', '-')}={v:,}" for k, v in FULL.items()),
    )
    add("--events", type=int, help=f"stream entries in the corpus (default {defaults.events:,})")
    add("--actors", type=int, help="actors in the hierarchy (default: the corpus's share)")
    add("--topics", type=int, help="topics (default: the corpus's share)")
    add(
        "--moves",
        type=int,
        default=defaults.moves,
        help="actor re-registrations that move the hierarchy mid-stream (default 0)",
    )
    add(
        "--hierarchy",
        choices=["upfront", "spread"],
        default=defaults.hierarchy,
        help="register actors before the statements (upfront, default) or over the first "
        "fifth of the stream (spread, the fault corpus's layout)",
    )
    add("--seed", type=int, default=defaults.seed)
    add("--batch-size", type=int, help="the projector's STANCELINE_BATCH_SIZE (default: its own)")
    add("--reads", type=int, help=f"requests per read figure (default {defaults.reads:,})")
    add("--clients", type=int, default=defaults.clients, help="concurrent HTTP clients")
    add(
        "--api-workers",
        type=int,
        default=defaults.api_workers,
        help="uvicorn worker processes of the API (stanceline api --workers)",
    )
    add("--history-points", type=int, default=defaults.history_points)
    add("--lag-rate", type=float, default=defaults.lag_rate, help="events/s for the lag figure")
    add("--lag-seconds", type=float, help=f"publishing time (default {defaults.lag_seconds:.0f})")
    add("--lag-poll-ms", type=float, default=defaults.lag_poll_ms, help="changes-feed poll period")
    add(
        "--throughput-clients",
        type=int,
        default=defaults.throughput_clients,
        help=f"clients of the history throughput figure (default {defaults.throughput_clients})",
    )
    add(
        "--throughput-seconds",
        type=float,
        default=defaults.throughput_seconds,
        help="its measured window, after a second's warm-up "
        f"(default {defaults.throughput_seconds:.0f})",
    )
    add(
        "--load-generator",
        choices=["auto", "wrk", "httpx"],
        default=defaults.load_generator,
        help="the reads' clients: wrk (C, light; apt-get install -y wrk) or httpx in this "
        "process (auto: wrk when installed, else httpx with a warning)",
    )
    add(
        "--backfill-events",
        type=int,
        help="entries of the backfill corpus (default: the corpus's size; --full: "
        f"{FULL['backfill_events']:,}; 0: no backfill figure); when smaller than the corpus, "
        "an in-order corpus of the same size is drained too, to compare with",
    )
    add(
        "--profile",
        action="store_true",
        help="py-spy the projector during the ingest, the benchmark's own process during the "
        "rebuild and the API during the reads, and sample what their Postgres connections do",
    )
    add("--database-url", help="a Postgres to create the run's database on (default: embedded)")
    add("--redis-url", help="a Redis for the run's stream (default: embedded)")
    add(
        "--in-database",
        metavar="URL",
        help="run in this existing database (empty or migrated) instead of a fresh one, and "
        "leave it behind afterwards, for a caller that checks what was stored (needs a Redis "
        "given by --redis-url or STANCELINE_TEST_REDIS_URL)",
    )
    add("--json", metavar="PATH", help="where to write the figures (default bench-results/)")
    add("--keep-logs", action="store_true", help="keep the child processes' logs")
    args = parser.parse_args(argv)
    sized = FULL if args.full else {}
    options = Options(
        events=args.events or int(sized.get("events", defaults.events)),
        actors=args.actors,
        topics=args.topics,
        moves=args.moves,
        hierarchy=args.hierarchy,
        seed=args.seed,
        batch_size=args.batch_size,
        reads=args.reads or int(sized.get("reads", defaults.reads)),
        clients=args.clients,
        api_workers=args.api_workers,
        history_points=args.history_points,
        lag_rate=args.lag_rate,
        lag_seconds=args.lag_seconds or float(sized.get("lag_seconds", defaults.lag_seconds)),
        lag_poll_ms=args.lag_poll_ms,
        throughput_clients=args.throughput_clients,
        throughput_seconds=args.throughput_seconds,
        load_generator=args.load_generator,
        backfill_events=args.backfill_events
        if args.backfill_events is not None
        else (int(sized["backfill_events"]) if "backfill_events" in sized else None),
        profile=args.profile,
        database_url=args.database_url,
        redis_url=args.redis_url,
        in_database=args.in_database,
        full=args.full,
    )
    return options, args


def main(argv: list[str] | None = None) -> int:
    options, args = _arguments(argv)
    started = datetime.now(UTC)
    json_path = Path(args.json) if args.json else RESULTS / f"bench-{started:%Y%m%d-%H%M%S}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    profile_stem = json_path.with_suffix("") if options.profile else None
    try:
        sizes = sizes_for(
            options.events, actors=options.actors, topics=options.topics, moves=options.moves
        )
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    workload = generate(sizes, options.seed, options.hierarchy)
    _say(f"corpus: {workload.describe()} ({time.perf_counter() - began:.1f}s)")
    try:
        plan = plan_backfill(options, workload)
    except ValueError as exc:
        print(f"bench: backfill: {exc}", file=sys.stderr)
        return 2
    if plan is not None:
        _say(
            f"backfill corpus: {len(plan.shuffled.lines):,} entries, said_at rank correlation "
            f"with arrival {plan.said_at_order:+.3f} (in order: {plan.in_order_said_at_order:+.3f})"
        )
    logs = Path(tempfile.mkdtemp(prefix="stanceline-bench-logs-"))
    ok = False

    async def bench() -> dict[str, Any]:
        async with own_servers(
            options.database_url, options.redis_url, in_database=options.in_database
        ) as servers:
            return await Bench(options, workload, servers, logs, plan).run(profile_stem)

    try:
        document = asyncio.run(bench())
        ok = True
    finally:
        if ok and not args.keep_logs:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            _say(f"child process logs kept in {logs}")
    document = {
        "schema": 1,
        "started_at": started.isoformat(),
        "elapsed_s": round(time.perf_counter() - began, 1),
        "json_path": str(json_path),
        "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
        "options": asdict(options) | {"database_url": None, "redis_url": None, "in_database": None},
        "corpus": workload.describe(),
        **document,
    }
    rows = verdicts(document)
    document["verdicts"] = verdict_rows(rows)
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    console = Console(width=None if sys.stdout.isatty() else 160)
    print_report(console, document, rows)
    console.print(shard_report(document["shards"]), highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
