"""The export figures: peak memory of ``stanceline export`` at a tenth of the rows and at
all of them (flat when the rows are streamed), and the HTTP export's first byte against
its last.

    .venv/bin/python tests/benchmarks/exports.py [--rows 1000000]

The rows are the network figure's synthetic statements (``networks.seed``), on scratch
servers (STANCELINE_TEST_DATABASE_URL's, or embedded ones); a tenth of them is the same
export filtered to a tenth of the topics. Peak memory is the child's maximum resident
set as ``/usr/bin/time -v`` reports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
import time
from typing import Any

from benchmarks.networks import NetworkSize, seed
from support.service import STANCELINE, free_port


def _export(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        ["/usr/bin/time", "-v", str(STANCELINE), "export", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    report = json.loads(done.stdout)
    return {"rows": report["rows"], "bytes": report["bytes"], "peak_mb": int(peak[1]) // 1024}


def _first_and_last_byte(env: dict[str, str], directory: str) -> dict[str, float]:
    port = free_port()
    api = subprocess.Popen(
        [str(STANCELINE), "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            if (
                subprocess.run(["curl", "-sf", f"{base}/healthz"], capture_output=True).returncode
                == 0
            ):
                break
            time.sleep(0.2)
        timing = subprocess.run(
            ["curl", "-sf", "-o", f"{directory}/all.csv", "-w",
             "%{time_starttransfer} %{time_total}", f"{base}/v1/export/statements"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
    finally:
        api.terminate()
        api.wait()
    return {"first_byte_seconds": float(timing[0]), "last_byte_seconds": float(timing[1])}


async def export_figures(rows: int) -> dict[str, Any]:
    from conftest import _dsn
    from stanceline.ops.migrate import migrate
    from stanceline.store.db import create_engine
    from support.scratch import scratch_servers

    size = NetworkSize(statements=rows)
    url = os.environ.get("STANCELINE_TEST_DATABASE_URL")
    redis = os.environ.get("STANCELINE_TEST_REDIS_URL") or "redis://127.0.0.1:1"
    figures: dict[str, Any] = {"rows": rows}
    async with scratch_servers("exportbench", url, redis) as servers:
        engine = create_engine(servers.database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        await seed(_dsn(servers.database_url), size)
        env = {**os.environ, "STANCELINE_DATABASE_URL": servers.database_url}
        tenth = ",".join(f"net-t{i:03d}" for i in range(size.topics // 10))
        with tempfile.TemporaryDirectory() as directory:
            for fmt in ("csv", "parquet"):
                target = ["--format", fmt, "-o", f"{directory}/out.{fmt}"]
                figures[fmt] = {
                    "tenth": await asyncio.to_thread(
                        _export, ["statements", *target, "--topics", tenth], env
                    ),
                    "all": await asyncio.to_thread(_export, ["statements", *target], env),
                }
            figures["http_csv"] = await asyncio.to_thread(_first_and_last_byte, env, directory)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    figures = asyncio.run(export_figures(args.rows))
    for fmt in ("csv", "parquet"):
        tenth, whole = figures[fmt]["tenth"], figures[fmt]["all"]
        print(
            f"stanceline export statements --format {fmt}: peak {tenth['peak_mb']} MB for "
            f"{tenth['rows']:,} rows, {whole['peak_mb']} MB for {whole['rows']:,} rows"
        )
    http = figures["http_csv"]
    print(
        f"GET /v1/export/statements ({args.rows:,} rows, CSV): first byte "
        f"{http['first_byte_seconds']:.2f} s, last {http['last_byte_seconds']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
