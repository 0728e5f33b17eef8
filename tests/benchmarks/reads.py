"""The read figures alone, against a database that already holds a corpus.

    .venv/bin/python tests/benchmarks/seed.py --database-url URL            # once, ~2 min at 1M
    .venv/bin/python tests/benchmarks/reads.py --database-url URL [--profile]

Runs ``run.py``'s phases 3 and 6 as it runs them (``stanceline api --workers 2``, the same
series, the same load generator, the same figures and verdict rows) without the ingest,
the rebuild and the lag probe before them: for working on the read path. ``--profile``
adds a window of history reads with py-spy on the API's workers, and reports the API's
and Postgres's CPU per request.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import shutil
import tempfile
from typing import Any

import asyncpg
from rich.console import Console

from benchmarks import processes
from benchmarks.environment import Servers, server_pids
from benchmarks.load import choose, wrk_version
from benchmarks.measure import (
    choose_history_keys,
    history_paths,
    read_figures,
    throughput_figures,
)
from benchmarks.report import FULL_SCALE, Verdict, print_profile, read_verdicts
from conftest import _dsn
from fixtures.servers import _asyncpg_url
from support.service import free_port


def _say(message: str) -> None:
    print(f"[reads] {message}", file=sys.stderr, flush=True)


async def _stored(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def measure(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    url = _asyncpg_url(args.database_url)
    dsn = _dsn(url)
    redis = os.environ.get("STANCELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    pids = await server_pids(Servers(url, redis, False, False))
    generator = choose(args.load_generator)
    document: dict[str, Any] = {
        "events_stored": await _stored(dsn),
        "load_generator": wrk_version() if generator == "wrk" else "httpx",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("STANCELINE_")}
    env |= {"STANCELINE_DATABASE_URL": url, "STANCELINE_REDIS_URL": redis}
    port = free_port()
    api = processes.stanceline(
        "api", ["api", "--port", str(port), "--workers", str(args.api_workers)], env, logs
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(processes.wait_healthy, api, base_url)
        chosen = await choose_history_keys(dsn, args.history_points, args.seed)
        history = history_paths(chosen[0], args.history_points)
        if args.profile:
            output = logs / "reads.pyspy.txt"
            profiler = processes.start_profile(api.pid, output, logs)
            if profiler is None:
                _say("--profile: py-spy is not installed in this venv")
            profiled = await throughput_figures(
                base_url,
                history,
                api.pid,
                pids,
                clients=args.throughput_clients,
                seconds=args.throughput_seconds,
                warmup=1.0,
                seed=args.seed,
                generator=generator,
            )
            if profiler is not None:
                await asyncio.to_thread(profiler.stop)
                kept = Path(args.profile_output or "bench-results/reads.pyspy.txt")
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(output, kept)
                document["profile"] = {
                    "reads": {
                        "python_file": str(kept),
                        "python": processes.summarise_profile(output),
                    }
                }
            document["profiled_window"] = profiled
        document["reads"] = await read_figures(
            base_url,
            dsn,
            clients=args.clients,
            requests=args.reads,
            points=args.history_points,
            seed=args.seed,
            chosen=chosen,
            generator=generator,
        ) | {"api_workers": args.api_workers}
        _say("reads done; throughput")
        throughput: dict[str, Any] = {
            "clients": args.throughput_clients,
            "api_workers": args.api_workers,
        }
        for name, paths in (("history", history), ("floor_healthz", ["/healthz"])):
            throughput[name] = await throughput_figures(
                base_url,
                paths,
                api.pid,
                pids,
                clients=args.throughput_clients,
                seconds=args.throughput_seconds,
                warmup=1.0,
                seed=args.seed,
                generator=generator,
            )
            _say(f"{name}: {throughput[name]['requests_per_second']:,.0f} req/s")
        document["throughput"] = throughput
    finally:
        code = api.stop()
        if code:
            _say(f"api exited with {code}:\n{api.tail()}")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--database-url", required=True, help="a database seeded by seed.py (or run.py)")
    add("--reads", type=int, default=4_000, help="requests per 4-client figure")
    add("--clients", type=int, default=4)
    add("--api-workers", type=int, default=2)
    add("--history-points", type=int, default=50)
    add("--throughput-clients", type=int, default=64)
    add("--throughput-seconds", type=float, default=12.0)
    add("--seed", type=int, default=1)
    add("--load-generator", choices=["auto", "wrk", "httpx"], default="auto")
    add("--profile", action="store_true", help="py-spy the API over a window of history reads")
    add("--profile-output", help="where to keep py-spy's collapsed stacks")
    add("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="stanceline-reads-logs-"))
    document = asyncio.run(measure(args, logs))
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2, default=str) + "\n")
    console = Console(width=None if sys.stdout.isatty() else 160)
    small = document["events_stored"] < FULL_SCALE * 0.95
    rows: list[Verdict] = read_verdicts(document, small=small)
    for row in rows:
        console.print(f"{row.figure} | {row.target} | {row.measured} | {row.result}")
    console.print(
        f"load generator: {document['load_generator']}; "
        f"{document['events_stored']:,} events stored",
        highlight=False,
    )
    window = document.get("profiled_window")
    if window:
        console.print(f"profiled window: {json.dumps(_per_request(window))}", highlight=False)
    for phase, profile in (document.get("profile") or {}).items():
        print_profile(console, phase, profile)
    for name in ("history", "floor_healthz"):
        console.print(
            f"throughput {name}: {json.dumps(_per_request(document['throughput'][name]))}",
            highlight=False,
        )
    shutil.rmtree(logs, ignore_errors=True)
    return 0


def _per_request(figure: dict[str, Any]) -> dict[str, Any]:
    """Requests/s, latencies and the CPU of each metered process, in cores and per request."""
    return {
        "requests_per_second": figure["requests_per_second"],
        "p50_ms": figure["latency_ms"]["p50"],
        "p99_ms": figure["latency_ms"]["p99"],
        "cpu_cores": figure["cpu_cores"],
        "cpu_ms_per_request": figure["cpu_ms_per_request"],
    }


if __name__ == "__main__":
    sys.exit(main())
