"""The benchmark command end to end with tiny sizes, on the session's servers.

It checks that the documented command runs and that its JSON holds every figure with sane
values. It asserts nothing about speed: no figure is compared with a target here (timings
on a shared machine are the benchmark's business, not a test's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fixtures.servers import PostgresServer, RedisServer

RUN = Path(__file__).resolve().with_name("run.py")
ROOT = RUN.parents[2]
EVENTS = 2_000
READS = 40
RESULTS = {"pass", "MISS", "pass*", "MISS*", "baseline", "info"}


def _ordered(figure: dict[str, Any]) -> bool:
    return bool(0 < figure["p50"] <= figure["p95"] <= figure["p99"] <= figure["max"])


def test_benchmark_runs_end_to_end_and_writes_every_figure(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    output = tmp_path / "bench.json"
    command = [sys.executable, str(RUN), "--events", str(EVENTS), "--reads", str(READS)]
    command += ["--lag-seconds", "3", "--json", str(output)]
    command += ["--database-url", postgres_server.admin_url, "--redis-url", redis_server.url]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "stanceline benchmark" in result.stdout
    document = json.loads(output.read_text())

    machine = document["machine"]
    assert machine["cpus"] > 0
    assert machine["ram_gb"] > 0
    assert machine["postgres"]
    assert machine["redis"]
    assert machine["postgres_server"] == machine["redis_server"] == "configured"

    corpus = document["corpus"]
    assert corpus["lines"] == EVENTS
    assert corpus["duplicates"] > 0
    assert corpus["invalid"] > 0

    ingest = document["ingest"]
    for side in ("bare", "projector"):
        assert ingest[side]["completed"], side
        assert ingest[side]["entries"] == EVENTS
        assert ingest[side]["events_per_second"] > 0
        assert ingest[side]["seconds"] > 0
    assert ingest["ratio"] > 0
    # The real projector stored exactly the distinct valid events and dead-lettered the rest.
    stored = ingest["stored"]
    assert stored["events"] == stored["expected_events"] == corpus["distinct_valid"]
    assert stored["dead_letters"] == stored["expected_dead_letters"] == corpus["invalid"]
    assert ingest["bare"]["self_reported"]["entries"] == EVENTS

    rebuilt = document["rebuild"]
    assert rebuilt["events"] == rebuilt["events_stored"] == stored["events"]
    assert rebuilt["events_per_second"] > 0
    assert rebuilt["baseline_copy_events_per_second"] > 0

    reads = document["reads"]
    assert reads["clients"] == 4
    for name in ("floor_healthz", "history", "topic_stances"):
        assert reads[name]["n"] == READS, name
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

    verdicts = document["verdicts"]
    assert len(verdicts) == 9
    assert {v["result"] for v in verdicts} <= RESULTS
    assert document["stop_problems"] == []
