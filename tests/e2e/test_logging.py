"""What the processes print: JSON lines when asked, and no password in any output."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from stanceline.settings import Settings
from support.running import eventually
from support.service import STANCELINE, free_port, service_running


async def test_json_logs_are_one_object_per_line_with_their_fields(
    settings: Settings, tmp_path: Path
) -> None:
    away = f"postgresql://someone:pw-in-url@127.0.0.1:{free_port()}/nowhere"
    log = tmp_path / "projector.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(STANCELINE),
            "projector",
            env={
                **os.environ,
                "STANCELINE_DATABASE_URL": away,
                "STANCELINE_REDIS_URL": settings.redis_url or "",
                "STANCELINE_STREAM": settings.stream,
                "STANCELINE_LOG_FORMAT": "json",
            },
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        text = await eventually(
            lambda: asyncio.to_thread(log.read_text, errors="replace"),
            lambda t: "Postgres unavailable" in t,
            within=60,
        )
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    retrying = [line for line in lines if "Postgres unavailable" in line["message"]]
    assert retrying
    assert {"time", "level", "logger", "message"} <= retrying[0].keys()
    assert retrying[0]["level"] == "WARNING"
    assert "pw-in-url" not in text


async def test_up_masks_the_password_of_a_url_it_was_given(
    database_url: str, tmp_path: Path
) -> None:
    secret = "pw-not-for-printing"
    given = make_url(database_url).set(password=secret).render_as_string(hide_password=False)
    env = {
        "STANCELINE_DATABASE_URL": given,  # Redis is left to the embedded server
        "STANCELINE_DATA_DIR": str(tmp_path / "data"),
        "STANCELINE_EMBEDDED_REDIS_PORT": str(free_port()),
    }
    async with service_running(["up"], env, tmp_path, startup=120) as service:
        async with httpx.AsyncClient(base_url=service.base_url) as http:
            assert (await http.get("/healthz")).status_code == 200
        output = await eventually(
            lambda: asyncio.sleep(0, service.output()), lambda t: "operate:" in t, within=30
        )
    assert secret not in output
    assert ":***@" in output
