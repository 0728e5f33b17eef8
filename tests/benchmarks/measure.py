"""The benchmark's phases: ingest (bare and real), rebuild, reads, lag.

Every phase measures real components from the outside: processes started as users start
them, throughput read off the consumer group in Redis, latencies taken by HTTP clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import statistics
import sys
import time
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks import processes
from benchmarks.environment import TreeCpu
from benchmarks.load import closed_loop, percentiles
from benchmarks.workload import LAG_TOPIC, lag_event, lag_statement_id
from stanceline.cursors import encode_cursor
from stanceline.ops.rebuild import rebuild

PIPELINE = 500
"""Entries per pipelined XADD round trip when loading the stream before an ingest."""


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the stream -------------------------------------------------------------------------------


def _encode(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, seq = text.split("-")
    return (int(ms) << 20) | int(seq)


class Stream:
    """The run's stream, what was published on it, and where each consumer group stands."""

    def __init__(self, client: aioredis.Redis, name: str) -> None:
        self.client = client
        self.name = name
        self.ids = array("q")
        """Every entry id published, encoded, in order: a group's last-delivered id
        bisects into it to give how many entries the group has handed out."""

    async def create_group(self, group: str) -> None:
        with contextlib.suppress(ResponseError):
            await self.client.xgroup_create(self.name, group, id="0", mkstream=True)

    async def publish(self, lines: Sequence[bytes]) -> float:
        """Publish every line (one ``event`` field each); returns the seconds it took."""
        started = time.perf_counter()
        for start in range(0, len(lines), PIPELINE):
            pipe = self.client.pipeline(transaction=False)
            for line in lines[start : start + PIPELINE]:
                pipe.xadd(self.name, {"event": line})
            self.ids.extend(_encode(i) for i in await pipe.execute())
        return time.perf_counter() - started

    async def acknowledged(self, group: str) -> tuple[int, int]:
        """(delivered, acknowledged) entries of the group, counted over what we published."""
        for info in await self.client.xinfo_groups(self.name):
            name = info["name"]
            if (name.decode() if isinstance(name, bytes) else name) == group:
                delivered = bisect_right(self.ids, _encode(info["last-delivered-id"]))
                return delivered, delivered - int(info["pending"])
        return 0, 0


# --- ingest -----------------------------------------------------------------------------------


@dataclass
class IngestWatch:
    entries: int
    seconds: float
    events_per_second: float
    cpu_cores: float
    """The consumer process's CPU over the window, in cores (1.0 = one core busy)."""
    server_cpu_cores: dict[str, float]
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    """(seconds since the first delivery, entries acknowledged, consumer RSS bytes)."""
    rss_peak_sampled: int = 0
    completed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "cpu_cores": round(self.cpu_cores, 2),
            "server_cpu_cores": {k: round(v, 2) for k, v in self.server_cpu_cores.items()},
            "completed": self.completed,
        }


async def watch_ingest(
    stream: Stream,
    group: str,
    child: processes.Child,
    total: int,
    server_pids: dict[str, int],
    *,
    poll: float = 0.05,
    stall_timeout: float = 180.0,
    on_start: Callable[[], None] | None = None,
) -> IngestWatch:
    """Watch a consumer drain ``total`` entries: from the first look at which the group has
    delivered anything to the first at which everything is acknowledged.

    Both the bare loop and the real projector are timed this way, by the same 20 Hz poll
    of ``XINFO GROUPS`` (one cheap command), so any bias is the same for both.
    """
    first: float | None = None
    own = TreeCpu(child.pid)
    servers = {name: TreeCpu(pid) for name, pid in server_pids.items()}
    samples: list[tuple[float, int, int]] = []
    peak = 0
    moved_at, last_acked, reported = time.monotonic(), -1, 0.0
    acked = 0
    while True:
        now = time.perf_counter()
        delivered, acked = await stream.acknowledged(group)
        if first is None and delivered > 0:
            first = now
            for tree in (own, *servers.values()):
                tree.start()
            if on_start is not None:
                on_start()
        if first is not None:
            for tree in (own, *servers.values()):
                tree.sample()
            rss = processes.rss_bytes(child.pid)
            peak = max(peak, rss)
            if not samples or now - first - samples[-1][0] >= 0.5 or acked >= total:
                samples.append((now - first, acked, rss))
        if acked >= total:
            break
        if acked != last_acked:
            moved_at, last_acked = time.monotonic(), acked
        elif time.monotonic() - moved_at > stall_timeout:
            _say(f"{child.name}: no progress for {stall_timeout:.0f}s at {acked}/{total}")
            break
        if not child.alive():
            _say(f"{child.name} exited at {acked}/{total}:\n{child.tail()}")
            break
        if time.monotonic() - reported > 10:
            reported = time.monotonic()
            _say(f"{child.name}: {acked}/{total} acknowledged")
        await asyncio.sleep(poll)
    end = time.perf_counter()
    seconds = end - first if first is not None else 0.0
    cpu = own.seconds()
    server_cpu = {name: tree.seconds() for name, tree in servers.items()}
    return IngestWatch(
        entries=acked,
        seconds=seconds,
        events_per_second=acked / seconds if seconds else 0.0,
        cpu_cores=cpu / seconds if seconds else 0.0,
        server_cpu_cores={k: v / seconds for k, v in server_cpu.items()} if seconds else {},
        samples=samples,
        rss_peak_sampled=peak,
        completed=acked >= total,
    )


def rss_figures(watch: IngestWatch, peak_hwm: int, total: int) -> dict[str, Any]:
    """Peak RSS, and whether it stays flat: growth from 20% of the ingest to its end."""
    mb = 2**20
    samples = [s for s in watch.samples if s[2] > 0]
    after_warmup = [s for s in samples if s[1] >= 0.2 * total] or samples
    start_rss = after_warmup[0][2] if after_warmup else 0
    end_rss = after_warmup[-1][2] if after_warmup else 0
    growth = (end_rss - start_rss) / start_rss if start_rss else 0.0
    return {
        "peak_mb": round(max(peak_hwm, watch.rss_peak_sampled) / mb, 1),
        "peak_hwm_mb": round(peak_hwm / mb, 1),
        "peak_sampled_mb": round(watch.rss_peak_sampled / mb, 1),
        "at_20pct_mb": round(start_rss / mb, 1),
        "at_end_mb": round(end_rss / mb, 1),
        "growth_after_20pct": round(growth, 4),
        "trace": [
            (round(t, 1), n, round(r / mb, 1)) for t, n, r in samples[:: max(1, len(samples) // 60)]
        ],
    }


def throughput_by_part(watch: IngestWatch, parts: int = 4) -> list[float]:
    """Entries per second in each quarter of the ingest (by entries): does it slow down?"""
    samples = watch.samples
    if len(samples) < 2 or watch.entries == 0:
        return []
    rates = []
    for k in range(parts):
        lo, hi = watch.entries * k / parts, watch.entries * (k + 1) / parts
        inside = [s for s in samples if lo <= s[1] <= hi]
        if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
            rates.append(round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 1))
        else:
            rates.append(0.0)
    return rates


# --- where the projector's time goes ----------------------------------------------------------

_ACTIVITY = """
    SELECT state, left(regexp_replace(query, '\\s+', ' ', 'g'), 1000) AS query
      FROM pg_stat_activity
     WHERE application_name = 'stanceline' AND backend_type = 'client backend'
       AND pid <> pg_backend_pid() AND state <> 'idle'
"""
_VERBS = re.compile(r"\b(INSERT INTO \S+|DELETE FROM \S+|UPDATE \S+|COMMIT|BEGIN)")


def _label(query: str) -> str:
    """A short name for a statement: its DML verb and table, else its first words."""
    query = query.strip()
    if query.upper().startswith("WITH") and (verb := _VERBS.search(query)):
        return f"WITH ... {verb.group(1)}"
    words = query.split()
    if words[:1] == ["SELECT"] and "FROM" in words:
        where = words.index("FROM")
        return " ".join(words[: min(where, 4)]) + " ... FROM " + " ".join(words[where + 1 :][:1])
    return " ".join(words[:6])


async def sample_sql(dsn: str, stop: asyncio.Event, period: float = 0.02) -> dict[str, Any]:
    """Sample what the stanceline backends are doing, ``1/period`` times a second.

    Each backend in a sample is either running a statement in Postgres (``active``, by
    statement) or waiting for its client inside an open transaction (``idle in
    transaction``: the client's Python is working, or waiting for its event loop); a
    sample with neither counts as no connection busy (for the projector: Redis,
    FastStream, validation and XACK happen outside the transaction). Shares are summed
    over connections, so with several they can exceed 100%. Run only while nothing else
    of stanceline's talks to the database.
    """
    conn = await asyncpg.connect(dsn)
    counts: Counter[str] = Counter()
    samples = 0
    try:
        while not stop.is_set():
            rows = await conn.fetch(_ACTIVITY)
            samples += 1
            if not rows:
                counts["(no connection busy or in a transaction)"] += 1
            for row in rows:
                if row["state"] == "active":
                    counts[f"active: {_label(row['query'])}"] += 1
                else:
                    counts[f"{row['state']} (Python inside the transaction)"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)
    finally:
        await conn.close()
    return {
        "samples": samples,
        "shares": [(k, round(100 * n / samples, 1)) for k, n in counts.most_common(20)]
        if samples
        else [],
    }


# --- rebuild ----------------------------------------------------------------------------------


async def rebuild_figures(engine: AsyncEngine, dsn: str) -> dict[str, Any]:
    """The real ``rebuild(engine)``, after a baseline that reads and rewrites ``events``
    once in plain SQL (``CREATE TABLE AS``): the floor any rebuild stands on."""
    conn = await asyncpg.connect(dsn)
    try:
        stored = int(await conn.fetchval("SELECT count(*) FROM events"))
        await conn.execute("CHECKPOINT")
        started = time.perf_counter()
        await conn.execute("CREATE TABLE bench_rebuild_baseline AS SELECT * FROM events")
        baseline_seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_rebuild_baseline")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    report = await rebuild(engine)
    baseline = stored / baseline_seconds if baseline_seconds else 0.0
    return {
        "events_stored": stored,
        "events": report.events,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second, 1),
        "baseline_copy_events_per_second": round(baseline, 1),
        "ratio_to_baseline": round(report.events_per_second / baseline, 4) if baseline else 0.0,
    }


# --- reads ------------------------------------------------------------------------------------


async def choose_history_keys(
    dsn: str, points: int, seed: int, count: int = 400
) -> tuple[list[tuple[str, str, bool]], int]:
    """Series with at least ``points`` points (own or rolled up), or the longest ones when
    none is that long; returns (keys, series that long)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT l.ancestor_id AS actor_id, s.topic_id, r.rollup, count(*) AS n"
            " FROM statements s JOIN actor_lineage l ON l.actor_id = s.actor_id"
            " CROSS JOIN (VALUES (false), (true)) AS r(rollup)"
            " WHERE s.visible AND (r.rollup OR l.depth = 0)"
            " GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3"
        )
    finally:
        await conn.close()
    long_enough = [r for r in rows if r["n"] >= points]
    pool = long_enough or rows[:count]
    keys = sorted((r["actor_id"], r["topic_id"], bool(r["rollup"])) for r in pool)
    random.Random(seed).shuffle(keys)
    return keys[:count], len(long_enough)


async def topic_ids(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["topic_id"] for r in await conn.fetch("SELECT topic_id FROM topics ORDER BY 1")]
    finally:
        await conn.close()


def history_paths(keys: Sequence[tuple[str, str, bool]], points: int) -> list[str]:
    """The history reads of ``points`` points for the chosen series (own or rolled up)."""
    return [
        f"/v1/actors/{a}/topics/{t}/history?limit={points}"
        + ("&include_descendants=true" if rollup else "")
        for a, t, rollup in keys
    ]


async def read_figures(
    base_url: str,
    dsn: str,
    *,
    clients: int,
    requests: int,
    points: int,
    seed: int,
    chosen: tuple[list[tuple[str, str, bool]], int] | None = None,
    generator: str = "httpx",
) -> dict[str, Any]:
    """Latencies of ``clients`` closed-loop clients: the history of ``points`` points, a
    topic's stances and GET /healthz (the floor). ``chosen``: the series to read, as
    ``choose_history_keys`` returns them (chosen here when not given); ``generator``:
    ``wrk`` or ``httpx`` (``load.choose``)."""
    keys, long_series = chosen or await choose_history_keys(dsn, points, seed)
    history = history_paths(keys, points)
    stances = [f"/v1/topics/{t}/stances" for t in await topic_ids(dsn)]
    # One pass over every path first: warms the caches, checks the answers, counts points.
    sizes: list[int] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        for path in history:
            response = await http.get(path)
            response.raise_for_status()
            sizes.append(len(response.json()["points"]))
        stance_sizes = []
        for path in stances:
            response = await http.get(path)
            response.raise_for_status()
            stance_sizes.append(len(response.json()["stances"]))
    result: dict[str, Any] = {"clients": clients, "load_generator": generator}
    for name, paths in (
        ("floor_healthz", ["/healthz"]),
        ("history", history),
        ("topic_stances", stances),
    ):
        load = await closed_loop(
            generator, base_url, paths, clients=clients, requests=requests, seed=seed
        )
        result[name] = {**load.latency_ms, "errors": load.errors}
    result["history"] |= {
        "series": len(keys),
        "series_with_enough_points": long_series,
        "rolled_up_share": round(sum(1 for k in keys if k[2]) / max(1, len(keys)), 3),
        "points_requested": points,
        "mean_points_returned": round(statistics.fmean(sizes), 1) if sizes else 0.0,
    }
    result["topic_stances"] |= {
        "topics": len(stances),
        "mean_stances_returned": round(statistics.fmean(stance_sizes), 1) if stance_sizes else 0.0,
    }
    floor = result["floor_healthz"]["p99"]
    result["history_p99_over_floor_p99"] = (
        round(result["history"]["p99"] / floor, 2) if floor else 0.0
    )
    return result


async def throughput_figures(
    base_url: str,
    paths: Sequence[str],
    api_pid: int,
    server_pids: dict[str, int],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    seed: int,
    generator: str = "httpx",
) -> dict[str, Any]:
    """Requests/s of ``clients`` closed-loop keep-alive clients reading ``paths`` for
    ``seconds`` after a ``warmup`` (the same generator as ``read_figures``), with the
    latencies and the CPU of the API, the servers and the load generator (near a whole
    core, it rather than the API may be what limits the figure)."""
    trees = {"api": TreeCpu(api_pid)} | {name: TreeCpu(pid) for name, pid in server_pids.items()}
    cpu: dict[str, float] = {}
    window: list[float] = []

    async def meter() -> None:
        await asyncio.sleep(warmup)
        for tree in trees.values():
            tree.start()
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            await asyncio.sleep(min(0.5, seconds - elapsed))
            for tree in trees.values():
                tree.sample()
        wall = time.perf_counter() - started
        window.append(wall)
        cpu.update({name: tree.seconds() / wall for name, tree in trees.items()})

    metering = asyncio.create_task(meter())
    load = await closed_loop(
        generator,
        base_url,
        paths,
        clients=clients,
        seconds=seconds,
        warmup=warmup,
        seed=seed,
    )
    await metering
    cpu["client"] = load.client_cpu_seconds / load.seconds if load.seconds else 0.0
    return {
        "clients": clients,
        "load_generator": generator,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "requests": load.requests,
        "requests_per_second": round(load.requests_per_second, 1),
        "latency_ms": load.latency_ms,
        "errors": load.errors,
        "series": len(paths),
        "cpu_cores": {name: round(value, 2) for name, value in cpu.items()},
        "cpu_ms_per_request": {
            name: round(1000 * value / load.requests_per_second, 3)
            if load.requests_per_second
            else 0.0
            for name, value in cpu.items()
        },
        "metered_seconds": round(window[0], 2) if window else 0.0,
    }


# --- lag --------------------------------------------------------------------------------------


async def _feed_cursor(dsn: str) -> str | None:
    """A changes-feed cursor at the feed's current end (the API would page to it)."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT xact_id, id FROM changes ORDER BY xact_id DESC, id DESC LIMIT 1"
        )
    finally:
        await conn.close()
    return encode_cursor(row["xact_id"], row["id"]) if row else None


async def _drained(stream: Stream, group: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        _, acked = await stream.acknowledged(group)
        if acked >= len(stream.ids):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the projector did not drain the stream within {within:.0f}s")


async def lag_figures(
    stream: Stream,
    group: str,
    base_url: str,
    dsn: str,
    projector: processes.Child,
    server_pids: dict[str, int],
    *,
    rate: float,
    seconds: float,
    warmup: float,
    actors: int,
    poll_ms: float,
    settle: float = 30.0,
) -> dict[str, Any]:
    """Publish at a steady ``rate`` with redis-py; watch the changes feed over HTTP.

    Each probe statement is a flip at the end of its actor's own series, so it appears in
    the feed exactly once (see ``workload.lag_event``). One HTTP client polls
    ``/v1/changes?topic=<lag topic>`` every ``poll_ms``; a poll answers for every statement
    that became visible since the previous one, so the poller's load does not grow with
    the rate. A statement's lag is from just before its XADD to the receipt of the first
    poll that lists it: an upper bound, at most one poll period plus one poll's latency
    above the true moment; the lower bound (the previous poll's start) is reported too.
    """
    # Every lag actor's first statement makes a point with no previous one: no feed entry.
    warm = [lag_event(n, actors) for n in range(actors)]
    await stream.publish(warm)
    await _drained(stream, group, within=120)
    cursor = await _feed_cursor(dsn)

    sent_at: dict[int, float] = {}
    seen: dict[int, tuple[float, float]] = {}
    poll_latencies: list[float] = []
    publishing_done = asyncio.Event()
    first = actors
    trees = {"projector": TreeCpu(projector.pid)}
    trees |= {name: TreeCpu(pid) for name, pid in server_pids.items()}
    for tree in trees.values():
        tree.start()

    async def publisher() -> tuple[int, float]:
        started = time.perf_counter()
        sent = 0
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * rate) - sent
            if due > 0:
                pipe = stream.client.pipeline(transaction=False)
                numbers = range(first + sent, first + sent + due)
                for n in numbers:
                    pipe.xadd(stream.name, {"event": lag_event(n, actors)})
                moment = time.perf_counter()
                for n in numbers:
                    sent_at[n] = moment
                stream.ids.extend(_encode(i) for i in await pipe.execute())
                sent += due
            await asyncio.sleep(0.004)
        publishing_done.set()
        return sent, time.perf_counter() - started

    async def poller() -> None:
        nonlocal cursor
        previous_start = time.perf_counter()
        deadline: float | None = None
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            while True:
                start = time.perf_counter()
                params = {"topic": LAG_TOPIC, "limit": "1000"}
                if cursor:
                    params["cursor"] = cursor
                response = await http.get("/v1/changes", params=params)
                received = time.perf_counter()
                poll_latencies.append((received - start) * 1000)
                response.raise_for_status()
                body = response.json()
                for change in body["changes"]:
                    if change["status"] != "added" or change["include_descendants"]:
                        continue
                    sid = change["statement_id"]
                    n = int(sid.rsplit("s", 1)[1])
                    if n not in seen and lag_statement_id(n) == sid:
                        seen[n] = (previous_start, received)
                cursor = body["next_cursor"]
                previous_start = start
                if publishing_done.is_set():
                    if all(n in seen for n in sent_at):
                        return
                    deadline = deadline or time.perf_counter() + settle
                    if time.perf_counter() > deadline:
                        return
                if len(body["changes"]) < 1000:
                    await asyncio.sleep(max(0.0, start + poll_ms / 1000 - time.perf_counter()))

    began = time.perf_counter()
    poll_task = asyncio.create_task(poller())
    sent, elapsed = await publisher()
    await poll_task
    wall = time.perf_counter() - began
    cpu = {name: round(tree.seconds() / wall, 2) if wall else 0.0 for name, tree in trees.items()}
    measured_from = min(sent_at.values(), default=0.0) + warmup
    upper = [
        (seen[n][1] - t) * 1000 for n, t in sent_at.items() if n in seen and t >= measured_from
    ]
    lower = [
        max(0.0, (seen[n][0] - t) * 1000)
        for n, t in sent_at.items()
        if n in seen and t >= measured_from
    ]
    missing = sum(1 for n, t in sent_at.items() if n not in seen and t >= measured_from)
    return {
        "rate_target": rate,
        "rate_achieved": round(sent / elapsed, 1) if elapsed else 0.0,
        "published": sent,
        "seconds": round(elapsed, 2),
        "warmup_seconds": warmup,
        "measured": len(upper),
        "not_seen": missing,
        "lag_ms": percentiles(upper),
        "lag_ms_lower_bound": percentiles(lower),
        "poll_period_ms": poll_ms,
        "poll_latency_ms": percentiles(poll_latencies),
        "polls": len(poll_latencies),
        "cpu_cores": cpu,
    }
