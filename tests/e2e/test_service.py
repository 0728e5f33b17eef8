"""The running service end to end: XADD in, stance history out over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from fixtures.servers import traversable_tmpdir
from stanceline.settings import Settings
from support.events import statement
from support.running import eventually
from support.service import STANCELINE, free_port, service_running, stop

US_HISTORY = "/v1/actors/us/topics/us-arms-strikes-inside-russia/history?include_descendants=true"
BELGOROD = "/v1/topics/us-vehicles-used-in-belgorod-raid/stances"


def _env(settings: Settings) -> dict[str, str]:
    return {
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
    }


def _us_points(body: dict[str, object]) -> list[tuple[str, str, str]]:
    points = body["points"]
    assert isinstance(points, list)
    return [(p["said_at"][:10], p["stance"], p["change"]) for p in points]


async def test_plain_xadd_reaches_the_history_and_poison_is_dead_lettered(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    async with (
        service_running(["up"], _env(settings), tmp_path) as service,
        httpx.AsyncClient(base_url=service.base_url) as http,
    ):
        for line in founding_lines():
            await redis_client.xadd(settings.stream, {"event": line})

        body = await eventually(
            lambda: _json(http, US_HISTORY), lambda b: len(b.get("points", [])) == 3
        )
        assert _us_points(body) == [
            ("2023-05-24", "oppose", "none"),
            ("2024-05-30", "neutral", "shift"),
            ("2024-11-17", "support", "shift"),
        ]
        assert body["points"][0]["speaker"]["name"] == "John Kirby"

        live = statement(
            "e2e-live",
            "e2e.live",
            "us.dod",
            "us-arms-strikes-inside-russia",
            "support",
            "2024-12-01T00:00:00Z",
        )
        await redis_client.xadd(settings.stream, {"event": json.dumps(live)})
        body = await eventually(lambda: _json(http, US_HISTORY), lambda b: len(b["points"]) == 4)
        assert body["points"][-1]["statement_id"] == "e2e.live"

        await redis_client.xadd(settings.stream, {"event": "not json"})
        dead = await eventually(lambda: _dead_letters(engine), lambda r: len(r) == 1)
        assert dead[0][0] == b"not json"
        assert "JSON" in dead[0][1]
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200

        assert await stop(service) == 0


async def test_up_demo_on_embedded_servers_and_restart_keeps_data(tmp_path: Path) -> None:
    """The README's first command: no URLs, embedded Postgres and Redis, demo via the stream."""
    with traversable_tmpdir("stanceline-e2e-") as data_dir:
        env = {
            "STANCELINE_DATA_DIR": str(data_dir / ".stanceline"),
            "STANCELINE_EMBEDDED_REDIS_PORT": str(free_port()),
            "STANCELINE_DATABASE_URL": "",
            "STANCELINE_REDIS_URL": "",
        }
        async with (
            service_running(["up", "--demo"], env, tmp_path) as service,
            httpx.AsyncClient(base_url=service.base_url) as http,
        ):
            body = await eventually(
                lambda: _json(http, US_HISTORY), lambda b: len(b.get("points", [])) == 3
            )
            assert [p[:2] for p in _us_points(body)] == [
                ("2023-05-24", "oppose"),
                ("2024-05-30", "neutral"),
                ("2024-11-17", "support"),
            ]
            stances = {s["actor_id"]: s["stance"] for s in (await _json(http, BELGOROD))["stances"]}
            assert stances["ru.mod"] == "support"
            assert stances["us.dod"] != "support"
            assert stances["us.nsc"] != "support"
            # The venv's own redis-cli, whole on one line (absolute: run outside the clone).
            redis_cli = STANCELINE.parent.resolve() / "redis-cli"
            port = env["STANCELINE_EMBEDDED_REDIS_PORT"]
            assert f"publish: {redis_cli} -p {port} XADD" in service.output()
            assert await stop(service) == 0
        assert not _servers_under(data_dir), "embedded servers outlived stanceline"

        async with (
            service_running(["up"], env, tmp_path) as service,
            httpx.AsyncClient(base_url=service.base_url) as http,
        ):
            body = await _json(http, US_HISTORY)
            assert len(body["points"]) == 3
            assert await stop(service) == 0
        assert not _servers_under(data_dir)


async def _json(http: httpx.AsyncClient, path: str) -> dict[str, object]:
    response = await http.get(path)
    return dict(response.json()) if response.status_code == 200 else {}


async def _dead_letters(engine: AsyncEngine) -> list[tuple[bytes, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT raw, reason FROM dead_letters"))
        return [(bytes(r.raw), r.reason) for r in rows]


def _servers_under(data_dir: Path) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(str(data_dir) in part for part in (p.info["cmdline"] or []))
    ]


async def test_api_with_two_workers_serves_and_stops_on_ctrl_c(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """``stanceline api --workers 2``: two processes behind one port, gone after Ctrl-C."""
    env = _env(settings)
    async with service_running(["up"], env, tmp_path) as service:
        for line in founding_lines():
            await redis_client.xadd(settings.stream, {"event": line})
        async with httpx.AsyncClient(base_url=service.base_url) as http:
            await eventually(
                lambda: _json(http, US_HISTORY), lambda b: len(b.get("points", [])) == 3
            )
        assert await stop(service) == 0

    async with service_running(["api", "--workers", "2"], env, tmp_path) as api:
        workers = psutil.Process(api.process.pid).children(recursive=True)
        assert len([w for w in workers if "spawn_main" in " ".join(w.cmdline())]) == 2
        async with httpx.AsyncClient(base_url=api.base_url) as http:
            for _ in range(8):  # several connections, so both workers answer some
                body = await _json(http, US_HISTORY)
                assert [p[:2] for p in _us_points(body)] == [
                    ("2023-05-24", "oppose"),
                    ("2024-05-30", "neutral"),
                    ("2024-11-17", "support"),
                ]
            assert (await http.get("/readyz")).status_code == 200
        assert await stop(api) == 0
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert [w for w in alive if w.status() != psutil.STATUS_ZOMBIE] == []


async def test_a_projector_started_while_postgres_is_away_waits_for_it(
    settings: Settings, tmp_path: Path
) -> None:
    """A replica that starts during a Postgres restart waits, and Ctrl-C still stops it."""
    env = {**_env(settings), "STANCELINE_DATABASE_URL": f"postgresql://x@127.0.0.1:{free_port()}/x"}
    log = tmp_path / "projector.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(STANCELINE),
            "projector",
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        await eventually(
            lambda: asyncio.sleep(0, log.read_text(errors="replace")),
            lambda text: "Postgres unavailable" in text,
        )
        await asyncio.sleep(1)
        assert process.returncode is None, log.read_text(errors="replace")
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0, log.read_text(errors="replace")
