"""A standalone projector's own port: its counters after the founding example, and its probes.

What the counters must say is read from what the projector did, independently of
the metrics code: the rows in ``events`` and ``dead_letters``, and the lines
published (every line is consumed once: appended, a duplicate, or dead-lettered).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import redis.asyncio as aioredis
import sqlalchemy as sa
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.projector import gauges
from stanceline.settings import Settings
from support.running import eventually, projector_running
from support.service import free_port, projector_process, service_running


def _env(settings: Settings, metrics_port: int) -> dict[str, str]:
    return {
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
        "STANCELINE_METRICS_PORT": str(metrics_port),
    }


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _status(http: httpx.AsyncClient, path: str) -> int:
    try:
        return (await http.get(path)).status_code
    except httpx.TransportError:
        return 0


async def test_a_standalone_projector_counts_what_it_did_on_its_own_port(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    lines = founding_lines()
    published = [*lines, lines[0], lines[-1], b"not json", b'{"specversion": "1.0"}']
    port = free_port()
    async with (
        projector_process(_env(settings, port), tmp_path / "projector.log"),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        await eventually(lambda: _status(http, "/readyz"), lambda s: s == 200, within=60)
        assert (await http.get("/healthz")).status_code == 200
        for line in published:
            await redis_client.xadd(settings.stream, {"event": line})

        async def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            return _samples((await http.get("/metrics")).text)

        read = ("stanceline_stream_entries_consumed_total", (("source", "read"),))
        committed = ("stanceline_projection_latency_seconds_count", ())
        samples = await eventually(
            counted,
            lambda s: s.get(read) == len(published) and s.get(committed) == len(published),
            within=30,
        )

    async with engine.connect() as conn:
        stored = await conn.scalar(sa.text("SELECT count(*) FROM events"))
        dead = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT coalesce(field, 'entry'), count(*) FROM dead_letters GROUP BY 1"
                    )
                )
            ).all()
        )
    assert stored
    assert dead
    assert samples[("stanceline_events_appended_total", ())] == stored
    assert samples[("stanceline_events_duplicate_total", ())] == (
        len(published) - stored - sum(dead.values())
    )
    counted_dead = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "stanceline_dead_letters_total" and value
    }
    assert counted_dead == dead
    assert samples[("stanceline_deliveries_reclaimed_total", ())] == 0
    assert samples[("stanceline_projector_store_up", ())] == 1


async def test_readyz_says_in_words_when_postgres_is_away(
    settings: Settings, tmp_path: Path
) -> None:
    away = f"postgresql://stanceline:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    port = free_port()
    log = tmp_path / "projector.log"
    async with (
        projector_process(_env(settings.model_copy(update={"database_url": away}), port), log),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        await eventually(lambda: _status(http, "/healthz"), lambda s: s == 200, within=60)
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"]
        detail = answer.json()["detail"]
        assert "not consuming" in detail or "Postgres" in detail
        assert "s3cret-pw" not in answer.text
        assert "127.0.0.1" not in answer.text


async def test_the_group_gauges_read_pending_and_lag_from_redis(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    for n in range(5):
        await redis_client.xadd(settings.stream, {"event": f"line {n}"})
    await redis_client.xgroup_create(settings.stream, settings.group, id="0")
    await redis_client.xreadgroup(settings.group, "someone", {settings.stream: ">"}, count=3)
    await redis_client.xack(
        settings.stream, settings.group, *await _first_id(redis_client, settings)
    )

    await gauges.refresh(redis_client, settings)

    assert REGISTRY.get_sample_value("stanceline_consumer_group_pending") == 2
    groups = await redis_client.xinfo_groups(settings.stream)
    if "lag" in groups[0]:  # Redis 7 and later; 6.2 cannot tell, and the gauge is left alone
        assert REGISTRY.get_sample_value("stanceline_consumer_group_lag") == 2


async def _first_id(client: aioredis.Redis, settings: Settings) -> list[bytes]:
    entries = await client.xrange(settings.stream, count=1)
    return [entries[0][0]]


HISTORY_ROUTE = "/v1/actors/{actor_id}/topics/{topic_id}/history"


async def test_the_api_counts_requests_across_its_workers_on_metrics(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """``api --workers 2``: whichever worker answers a scrape counts every worker's requests."""
    for line in founding_lines():
        await redis_client.xadd(settings.stream, {"event": line})
    async with projector_running(settings, engine):
        await eventually(lambda: _events(engine), lambda n: n == len(founding_lines()))
    env = {"STANCELINE_DATABASE_URL": settings.database_url or ""}
    async with (
        service_running(["api", "--workers", "2"], env, tmp_path) as api,
        httpx.AsyncClient(base_url=api.base_url) as http,
    ):
        histories, missing = 12, 5
        for _ in range(histories):
            answer = await http.get("/v1/actors/us/topics/us-arms-strikes-inside-russia/history")
            assert answer.status_code == 200
            # New connections, so the kernel spreads them over both workers.
            http.headers["Connection"] = "close"
        for n in range(missing):
            assert (await http.get(f"/v1/actors/nobody-{n}/topics/t/history")).status_code == 404
        for _ in range(4):  # each scrape may reach either worker: all must see everything
            answer = await http.get("/metrics")
            assert answer.status_code == 200
            samples = _samples(answer.text)
            ok = ("stanceline_http_requests_total", _labels("GET", HISTORY_ROUTE, "200"))
            gone = ("stanceline_http_requests_total", _labels("GET", HISTORY_ROUTE, "404"))
            assert samples.get(ok) == histories, [
                (k, v) for k, v in samples.items() if k[0] == "stanceline_http_requests_total"
            ]
            assert samples.get(gone) == missing
            count = (
                "stanceline_http_request_duration_seconds_count",
                (("method", "GET"), ("route", HISTORY_ROUTE)),
            )
            assert samples.get(count) == histories + missing


def _labels(method: str, route: str, status: str) -> tuple[tuple[str, str], ...]:
    return (("method", method), ("route", route), ("status", status))


async def _events(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM events")) or 0)
