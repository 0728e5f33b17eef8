"""The API's own CPU per request, without uvicorn, sockets or a load generator.

    .venv/bin/python tests/benchmarks/app_cpu.py --database-url URL [--requests 1500]

Against a database seeded by ``seed.py``: builds the app as each ``stanceline api`` worker
does (``create_app(database_url=...)``), calls it as an ASGI application from 16 concurrent
tasks with ``reads.py``'s history paths (and ``GET /healthz`` as the floor), and prints the
process CPU per request, best of three rounds. On a shared machine whose speed drifts
between runs this is the steadier figure for comparing two versions of the read path
(run both, one after the other, a few times); ``reads.py`` is the figure a client sees.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import uvloop

from benchmarks.measure import choose_history_keys, history_paths
from conftest import _dsn
from fixtures.servers import _asyncpg_url
from stanceline.heap import settle
from stanceline.readmodel.app import create_app

CONCURRENCY = 16


async def _call(app: Any, path: str) -> None:
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"{path}: {sent[0]['status']}")


async def _cpu_per_request(app: Any, paths: Sequence[str], requests: int) -> float:
    each = max(1, requests // CONCURRENCY)

    async def client(k: int) -> None:
        for i in range(each):
            await _call(app, paths[(k * 97 + i) % len(paths)])

    for path in paths[: min(200, requests)]:  # warm: prepared statements, pool, caches
        await _call(app, path)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        await asyncio.gather(*(client(k) for k in range(CONCURRENCY)))
        best = min(best, (time.process_time() - started) / (each * CONCURRENCY))
    return best * 1000


async def measure(url: str, requests: int, points: int, seed: int) -> dict[str, float]:
    url = _asyncpg_url(url)
    keys, _ = await choose_history_keys(_dsn(url), points, seed)
    app = create_app(database_url=url)
    async with app.router.lifespan_context(app):
        settle()
        return {
            "healthz_cpu_ms": await _cpu_per_request(app, ["/healthz"], requests),
            "history_cpu_ms": await _cpu_per_request(app, history_paths(keys, points), requests),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a database seeded by seed.py")
    parser.add_argument("--requests", type=int, default=1500, help="per round")
    parser.add_argument("--history-points", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = uvloop.run(measure(args.database_url, args.requests, args.history_points, args.seed))
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name}: {value:.3f}")


if __name__ == "__main__":
    main()
