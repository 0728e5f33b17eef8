"""The benchmark command end to end with tiny sizes, on the session's servers.

It checks that the documented command runs, that its JSON holds every figure with sane
values, and that the product did the right thing with the benchmark's corpus: the events
and dead letters the run left in its database (``--in-database``, a database this test
owns) are exactly the workload's valid and invalid lines, and the histories the read
model serves over HTTP are the pure fold's. It asserts nothing about speed: no figure is
compared with a target here (timings on a shared machine are the benchmark's business,
not a test's).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa

from benchmarks import app_cpu
from benchmarks.run import Options
from benchmarks.workload import Workload, generate, sizes_for
from stanceline.contract import Event, Rejection, parse_event
from stanceline.domain.catalogue import descendants
from stanceline.domain.projection import Projection, SeriesKey, project
from stanceline.store.db import create_engine
from stanceline.store.translate import fact_of
from support.service import service_running

if TYPE_CHECKING:
    from fixtures.servers import RedisServer

RUN = Path(__file__).resolve().with_name("run.py")
ROOT = RUN.parents[2]
EVENTS = 2_000
READS = 40
SEED = 3
MOVES = 3
"""Actor re-registrations mid-stream, so the rolled-up histories checked below have
been regrouped by the projector (the benchmark's default is none)."""
SAMPLE = 20
"""Series whose HTTP history is compared with the fold's."""

Row = tuple[str, str, str, str, str | None]
"""A history point as compared: statement, actor, stance, change, previous statement."""


def _ordered(figure: dict[str, Any]) -> bool:
    return bool(0 < figure["p50"] <= figure["p95"] <= figure["p99"] <= figure["max"])


def _event_id(line: bytes) -> str:
    return str(json.loads(line)["id"])


def _distinct_valid(workload: Workload) -> list[bytes]:
    """The workload's valid lines, each once, in publishing order (valid or not is the
    generator's label, set when it built the line, not the contract's verdict)."""
    seen: set[bytes] = set()
    lines: list[bytes] = []
    for n, line in enumerate(workload.lines):
        if n in workload.invalid_at or line in seen:
            continue
        seen.add(line)
        lines.append(line)
    return lines


def _invalid_lines(workload: Workload) -> list[bytes]:
    """The lines the generator built invalid: each must be a dead letter."""
    return [workload.lines[n] for n in sorted(workload.invalid_at)]


def _fold(lines: list[bytes]) -> Projection:
    """The pure fold over the valid events in publishing order (what apply rejects, it skips)."""
    now = datetime.now(UTC)
    events: list[Event] = []
    for line in lines:
        result = parse_event(line, now=now)
        assert not isinstance(result, Rejection), (result, line[:200])
        events.append(result)
    return project(fact_of(event) for event in events)


def _sample(projection: Projection) -> list[SeriesKey]:
    """About SAMPLE series, chosen by a fixed seed: rolled-up histories of actors with
    descendants (half of them), own histories, and the longest of each kind."""
    series = projection.series()
    parents = projection.parents
    rolled = sorted(k for k in series if k[2] and len(descendants(parents, k[0])) > 1)
    own = sorted(k for k in series if not k[2])
    rng = random.Random(SEED)
    chosen = rng.sample(rolled, min(len(rolled), SAMPLE // 2 - 1))
    chosen += rng.sample(own, min(len(own), SAMPLE // 2 - 1))
    chosen.append(max(rolled, key=lambda k: (len(series[k]), k)))
    chosen.append(max(own, key=lambda k: (len(series[k]), k)))
    return sorted(set(chosen))


def _predicted(projection: Projection, key: SeriesKey) -> list[Row]:
    return [
        (
            p.statement_id,
            p.body.actor_id,
            p.body.stance.value,
            p.change.value,
            p.previous_statement_id,
        )
        for p in projection.history(*key)
    ]


async def _served(http: httpx.AsyncClient, key: SeriesKey) -> list[Row]:
    actor_id, topic_id, rolled_up = key
    response = await http.get(
        f"/v1/actors/{actor_id}/topics/{topic_id}/history",
        params={"include_descendants": str(rolled_up).lower(), "limit": "10000"},
    )
    assert response.status_code == 200, (key, response.text[:500])
    body = response.json()
    assert body["next_cursor"] is None, key
    points = body["points"]
    if points:
        assert body["current"]["statement_id"] == points[-1]["statement_id"], key
    return [
        (
            p["statement_id"],
            p["actor_id"],
            p["stance"],
            p["change"],
            p["previous_statement_id"],
        )
        for p in points
    ]


async def test_benchmark_runs_end_to_end_and_the_product_did_what_the_workload_asks(
    tmp_path: Path, empty_database_url: str, redis_server: RedisServer
) -> None:
    # The expectation, computed here from the workload alone (the same seed and sizes
    # the command is given), before anything runs.
    workload = generate(sizes_for(EVENTS, moves=MOVES), SEED, "upfront")
    valid_lines = _distinct_valid(workload)
    invalid_lines = _invalid_lines(workload)
    assert len(valid_lines) == workload.distinct_valid
    assert len(invalid_lines) == workload.invalid
    corpus_ids = {_event_id(line) for line in valid_lines}
    assert len(corpus_ids) == len(valid_lines)
    projection = _fold(valid_lines)
    keys = _sample(projection)

    output = tmp_path / "bench.json"
    command = [sys.executable, str(RUN), "--events", str(EVENTS), "--reads", str(READS)]
    command += ["--seed", str(SEED), "--moves", str(MOVES), "--hierarchy", "upfront"]
    command += ["--lag-seconds", "3", "--json", str(output)]
    command += ["--in-database", empty_database_url, "--redis-url", redis_server.url]
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "stanceline benchmark" in result.stdout
    document = json.loads(output.read_text())
    # The run published the workload computed above, not another one.
    assert document["corpus"] == workload.describe()

    machine = document["machine"]
    assert machine["cpus"] > 0
    assert machine["ram_gb"] > 0
    assert machine["postgres"]
    assert machine["redis"]

    ingest = document["ingest"]
    for side in ("bare", "projector"):
        assert ingest[side]["completed"], side
        assert ingest[side]["entries"] == len(workload.lines), side
        assert ingest[side]["events_per_second"] > 0
        assert ingest[side]["seconds"] > 0
    assert ingest["ratio"] > 0
    # Counted by the run in the database right after the ingest, before the lag probe.
    assert ingest["stored"]["events"] == workload.distinct_valid
    assert ingest["stored"]["dead_letters"] == workload.invalid

    rebuilt = document["rebuild"]
    assert rebuilt["events"] == rebuilt["events_stored"] == workload.distinct_valid
    assert rebuilt["events_per_second"] > 0
    assert rebuilt["baseline_copy_events_per_second"] > 0

    reads = document["reads"]
    for name in ("floor_healthz", "history", "topic_stances"):
        assert reads[name]["n"] > 0, name
        assert reads[name]["errors"] == 0, name
        assert _ordered(reads[name]), name
    assert 0 < reads["history"]["mean_points_returned"] <= 50
    assert reads["topic_stances"]["mean_stances_returned"] > 0

    rss = document["rss"]
    assert 0 < rss["at_20pct_mb"] <= rss["peak_mb"] < 4096
    assert rss["peak_hwm_mb"] > 0

    lag = document["lag"]
    assert lag["published"] > 0
    assert lag["measured"] > 0
    assert lag["not_seen"] == 0
    assert _ordered(lag["lag_ms"])
    assert lag["polls"] > 0
    assert document["stop_problems"] == []

    # What the projector left in the database: the corpus's distinct valid events, the lag
    # probe's (its warm-up statements and every one it published), and nothing else; the
    # corpus's invalid lines as dead letters, byte for byte.
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            stored = list((await conn.execute(sa.text("SELECT event_id FROM events"))).scalars())
            dead = [
                bytes(raw)
                for raw in (await conn.execute(sa.text("SELECT raw FROM dead_letters"))).scalars()
            ]
    finally:
        await engine.dispose()
    assert len(stored) == len(set(stored))
    # Every flip the ten subscriptions watch reached the receiver: the backlog's and
    # those published at the lag rate.
    hooks = document["webhooks"]
    assert hooks["backlog_delivered"] == hooks["backlog"] > 0
    assert hooks["measured"] > 0
    assert hooks["not_received"] == 0
    # The webhooks phase publishes more probe statements, numbered [first, end).
    first, end = document["webhooks"]["probe_numbers"]
    probe = Options().lag_actors + lag["published"] + (end - first)
    lag_ids = {f"bench-lag-{n:08d}" for n in [*range(probe - end + first), *range(first, end)]}
    assert set(stored) - lag_ids == corpus_ids, (
        f"missing {sorted(corpus_ids - set(stored))[:5]}, "
        f"unexpected {sorted(set(stored) - lag_ids - corpus_ids)[:5]}"
    )
    assert set(stored) & lag_ids == lag_ids
    assert len(stored) - probe == workload.distinct_valid
    assert Counter(dead) == Counter(invalid_lines)
    assert len(dead) == workload.invalid

    # The histories the read model serves over HTTP are the fold's, point for point.
    env = {"STANCELINE_DATABASE_URL": empty_database_url, "STANCELINE_REDIS_URL": redis_server.url}
    async with (
        service_running(["api"], env, tmp_path) as api,
        httpx.AsyncClient(base_url=api.base_url, timeout=30) as http,
    ):
        served = {key: await _served(http, key) for key in keys}
    predicted = {key: _predicted(projection, key) for key in keys}
    assert len(keys) >= SAMPLE - 2
    assert sum(1 for key in keys if key[2]) >= SAMPLE // 2 - 1
    # The rolled-up sample must hold points of descendants, or it would test nothing more.
    assert any(row[1] != key[0] for key in keys if key[2] for row in predicted[key])
    mismatched = [key for key in keys if served[key] != predicted[key]]
    assert not mismatched, "\n".join(
        _difference(key, served[key], predicted[key]) for key in mismatched
    )

    # app_cpu.py (the read path's CPU without uvicorn) runs on the same database: every
    # history it asks for is answered 200 (it raises on anything else).
    figures = await app_cpu.measure(empty_database_url, requests=32, points=50, seed=SEED)
    assert figures["history_cpu_ms"] > 0
    assert figures["healthz_cpu_ms"] > 0


def _difference(key: SeriesKey, served: list[Row], predicted: list[Row]) -> str:
    """Where a served history first parts from the fold's, in a few lines."""
    first = next(
        (n for n, (a, b) in enumerate(zip(served, predicted, strict=False)) if a != b),
        min(len(served), len(predicted)),
    )
    return (
        f"{key}: {len(served)} points served, {len(predicted)} folded; from point {first}:\n"
        f"  served {served[first : first + 3]}\n  folded {predicted[first : first + 3]}"
    )
