"""The load generators of the read figures: closed-loop keep-alive clients over HTTP.

``wrk`` (C, one thread; Debian: ``apt-get install -y wrk``) with ``rotate.lua`` walking a
seeded shuffle of the paths, when it is installed: it spends a few microseconds of CPU per
request, so on a 2-core machine the figure is the API's. Otherwise httpx clients in this
process, each on its own shuffle: they cost far more CPU per request than the API's
cheapest route (they top out near 660 requests/s on 2 cores), so a throughput measured
with them is the generator's; the run says so on stderr and in its JSON.

Both report the same figures: requests, errors (any status above 399, or a transport
failure), latencies from sending a request to the last byte of its response (p50/p95/p99,
mean, max in ms) and the generator's own CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil

ROTATE = Path(__file__).resolve().with_name("rotate.lua")
Generator = Literal["auto", "wrk", "httpx"]
_WRK_MAX_SECONDS = 600
"""The longest a request-counted wrk run may take (it stops at the count long before)."""


@dataclass(frozen=True)
class LoadResult:
    generator: str
    requests: int
    """Completed in the measured window."""
    seconds: float
    """The measured window."""
    errors: int
    latency_ms: dict[str, float]
    """n, p50, p95, p99, mean, max: ``measure.percentiles``' shape."""
    client_cpu_seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank), mean and max, rounded to 0.01."""
    if not values:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
        return round(ordered[index], 2)

    return {
        "n": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


def wrk_binary() -> str | None:
    return shutil.which("wrk")


_warned = False


def choose(wanted: Generator) -> str:
    """The generator to use: ``wrk`` when installed (or asked for), else ``httpx``, with a
    warning on stderr (once per run) that its throughput is the generator's limit."""
    global _warned
    if wanted == "httpx":
        return "httpx"
    if wrk_binary() is not None:
        return "wrk"
    if wanted == "wrk":
        raise RuntimeError("--load-generator wrk: wrk is not installed (apt-get install -y wrk)")
    if not _warned:
        _warned = True
        print(
            "[bench] wrk is not installed (Debian: apt-get install -y wrk): the reads are "
            "measured with httpx clients in this process instead, which cost more CPU per "
            "request than the API does; throughput figures are then the load generator's "
            "limit, not the API's",
            file=sys.stderr,
            flush=True,
        )
    return "httpx"


def wrk_version() -> str | None:
    binary = wrk_binary()
    if binary is None:
        return None
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    words = (done.stdout or done.stderr).split()
    return " ".join(words[:2]) if words else "wrk"


def _shuffled(paths: Sequence[str], seed: int) -> list[str]:
    order = list(paths)
    random.Random(seed).shuffle(order)
    return order


async def closed_loop(
    generator: str,
    base_url: str,
    paths: Sequence[str],
    *,
    clients: int,
    requests: int | None = None,
    seconds: float | None = None,
    warmup: float = 0.0,
    seed: int,
) -> LoadResult:
    """``clients`` closed-loop keep-alive clients reading ``paths`` in turn: ``requests`` in
    all, or for ``seconds`` after ``warmup`` seconds that are not counted."""
    if (requests is None) == (seconds is None):
        raise ValueError("give either requests or seconds")
    if generator == "wrk":
        return await _wrk(
            base_url,
            paths,
            clients=clients,
            requests=requests,
            seconds=seconds,
            warmup=warmup,
            seed=seed,
        )
    return await _httpx(
        base_url,
        paths,
        clients=clients,
        requests=requests or 0,
        seconds=seconds,
        warmup=warmup,
        seed=seed,
    )


# --- wrk ----------------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _run_wrk(
    base_url: str,
    paths_file: Path,
    *,
    clients: int,
    seconds: float,
    requests: int | None,
) -> tuple[dict[str, Any], float]:
    """One wrk run; returns its JSON figures and the CPU seconds it used."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    marker = paths_file.with_name(f"done-{time.monotonic_ns()}")
    command = [binary, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
    command += ["-s", str(ROTATE), base_url, "--", str(paths_file)]
    command += [str(requests or 0), str(clients), str(marker)]
    cpu_before = _children_cpu()
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    communicating = asyncio.ensure_future(process.communicate())
    while not communicating.done():
        if marker.exists():
            # The thread has stopped; SIGINT ends wrk's sleep (again, in case the first
            # reached the thread rather than the main one).
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        await asyncio.wait({communicating}, timeout=0.02 if not marker.exists() else 0.1)
    out, err = communicating.result()
    cpu = _children_cpu() - cpu_before
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(
            f"wrk failed ({process.returncode}): {err.decode(errors='replace')[-2000:]}"
            f"{out.decode(errors='replace')[-2000:]}"
        )
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures, cpu


async def _wrk(
    base_url: str,
    paths: Sequence[str],
    *,
    clients: int,
    requests: int | None,
    seconds: float | None,
    warmup: float,
    seed: int,
) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="stanceline-wrk-") as tmp:
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("".join(f"{p}\n" for p in _shuffled(paths, seed)))
        if warmup > 0:
            await _run_wrk(base_url, paths_file, clients=clients, seconds=warmup, requests=None)
        limit = _WRK_MAX_SECONDS if seconds is None else seconds
        figures, cpu = await _run_wrk(
            base_url, paths_file, clients=clients, seconds=limit, requests=requests
        )
    latency = figures["latency_us"]
    completed = int(figures["requests"])
    errors = sum(int(v) for v in figures["errors"].values())
    window = int(figures["duration_us"]) / 1e6
    return LoadResult(
        generator="wrk",
        requests=completed,
        seconds=window,
        errors=errors,
        latency_ms={
            "n": completed,
            **{k: round(float(latency[k]) / 1000, 2) for k in ("p50", "p95", "p99", "mean", "max")},
        },
        client_cpu_seconds=cpu,
    )


# --- httpx --------------------------------------------------------------------------------------


async def _httpx(
    base_url: str,
    paths: Sequence[str],
    *,
    clients: int,
    requests: int,
    seconds: float | None,
    warmup: float,
    seed: int,
) -> LoadResult:
    """Each client walks its own shuffle of ``paths`` on one keep-alive connection; with
    ``seconds``, only requests started after the warm-up count."""
    latencies: list[float] = []
    errors = 0
    own = psutil.Process(os.getpid())
    began = time.perf_counter()
    measure_from = began + warmup
    deadline = measure_from + seconds if seconds is not None else None
    cpu_at_start: list[float] = []

    async def client(k: int) -> None:
        nonlocal errors
        order = _shuffled(paths, seed * 31 + k)
        share = requests // clients + (1 if k < requests % clients else 0)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
            i = 0
            while (i < share) if deadline is None else (time.perf_counter() < deadline):
                started = time.perf_counter()
                if started >= measure_from and not cpu_at_start:
                    times = own.cpu_times()
                    cpu_at_start.append(times.user + times.system)
                try:
                    response = await http.get(order[i % len(order)])
                    await response.aread()
                    failed = response.status_code >= 400
                except httpx.TransportError:
                    failed = True
                i += 1
                if started < measure_from:
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                errors += failed

    await asyncio.gather(*(client(k) for k in range(clients)))
    ended = time.perf_counter()
    times = own.cpu_times()
    cpu = times.user + times.system - (cpu_at_start[0] if cpu_at_start else 0.0)
    window = seconds if seconds is not None else ended - measure_from
    return LoadResult(
        generator="httpx",
        requests=len(latencies),
        seconds=window,
        errors=errors,
        latency_ms=percentiles(latencies),
        client_cpu_seconds=cpu,
    )
